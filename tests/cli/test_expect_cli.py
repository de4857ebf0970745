"""`dbaudit expect` and the commands that take a migration where they take expectations, as subprocesses."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dbaudit.audit.result import load_result

SCHEMA = ("CREATE TABLE chats (id INTEGER PRIMARY KEY, contact TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'open');\n"
          "CREATE INDEX chats_status ON chats (status);\n"
          "INSERT INTO chats (id, contact) VALUES (1, 'a'), (2, 'b');\n")
MIGRATION = ("ALTER TABLE chats ADD COLUMN provider_type VARCHAR(20) NULL;\n"
             "CREATE INDEX idx_chats_provider_type ON chats (provider_type);\n"
             "UPDATE chats SET provider_type = 'meta';\n")


def dbaudit(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DBAUDIT_PASSWORD"}
    return subprocess.run([sys.executable, "-m", "dbaudit", *map(str, args)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def _one_error_line(run: subprocess.CompletedProcess[str], text: str) -> None:
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dbaudit: error: ") and text in lines[0], run.stderr
    assert "Traceback" not in run.stderr


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "migration.sql").write_text(MIGRATION)
    for name, script in (("before", SCHEMA), ("after", SCHEMA + MIGRATION)):
        with sqlite3.connect(tmp_path / f"{name}.sqlite") as conn:
            conn.executescript(script)
    return tmp_path


def _snapshots(workdir: Path) -> None:
    for name in ("before", "after"):
        run = dbaudit("snapshot", f"sqlite:///{workdir / name}.sqlite", "-o", f"{name}.json", cwd=workdir)
        assert run.returncode == 0, run.stderr


def test_expect_writes_a_reviewable_file_and_says_what_it_found(workdir: Path) -> None:
    run = dbaudit("expect", "migration.sql", "--dialect", "sqlite", "-o", "expect.yml", cwd=workdir)
    assert run.returncode == 0, run.stderr
    assert "2 required" in run.stdout and "expect.yml" in run.stdout
    assert "warning: migration.sql:3: UPDATE without WHERE" in run.stderr
    data = yaml.safe_load((workdir / "expect.yml").read_text())
    assert data["required"][0] == {"column_added": "chats.provider_type", "type": "VARCHAR(20)", "nullable": True}


def test_the_derived_file_passes_diff_and_the_migration_itself_does_too(workdir: Path) -> None:
    _snapshots(workdir)
    assert dbaudit("expect", "migration.sql", "--from-snapshot", "before.json", "-o", "expect.yml", cwd=workdir) \
        .returncode == 0
    with_file = dbaudit("diff", "before.json", "after.json", "--expect", "expect.yml", cwd=workdir)
    assert with_file.returncode == 0, with_file.stdout
    with_sql = dbaudit("diff", "before.json", "after.json", "--expect", "migration.sql", cwd=workdir)
    assert with_sql.returncode == 0, with_sql.stdout
    assert "verdict: PASS" in with_sql.stdout


def test_from_snapshot_refuses_a_migration_that_cannot_run_before_anything_runs(workdir: Path) -> None:
    _snapshots(workdir)
    (workdir / "again.sql").write_text("ALTER TABLE chats ADD COLUMN status TEXT;\nDROP TABLE nowhere;\n")
    run = dbaudit("expect", "again.sql", "--from-snapshot", "before.json", "-o", "x.yml", cwd=workdir)
    _one_error_line(run, "adds column chats.status, which is already there; again.sql:2: drops table nowhere")
    assert not (workdir / "x.yml").exists()


@pytest.mark.parametrize(("content", "message"), [
    (b"", "an empty migration"),
    (b"Dear DBA,\nplease run the migration.\n", "is not SQL"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "is not SQL: it holds binary data"),
])
def test_bad_migration_files_are_one_line_and_exit_2(workdir: Path, content: bytes, message: str) -> None:
    (workdir / "bad.sql").write_bytes(content)
    _one_error_line(dbaudit("expect", "bad.sql", "-o", "x.yml", cwd=workdir), message)
    assert not (workdir / "x.yml").exists()


def test_unknown_dialects_missing_files_and_empty_laravel_folders_exit_2(workdir: Path) -> None:
    _one_error_line(dbaudit("expect", "migration.sql", "--dialect", "oracle", "-o", "x.yml", cwd=workdir),
                    "invalid choice: 'oracle'")
    _one_error_line(dbaudit("expect", "nope.sql", "-o", "x.yml", cwd=workdir), "migration file not found")
    (workdir / "app").mkdir()
    _one_error_line(dbaudit("expect", "--laravel", "app", "-o", "x.yml", cwd=workdir), "holds no Laravel migrations")
    (workdir / "app" / "database" / "migrations").mkdir(parents=True)
    (workdir / "app" / "database" / "migrations" / "2025_01_01_000000_add_provider.php").write_text("<?php")
    _one_error_line(dbaudit("expect", "--laravel", "app", "-o", "x.yml", cwd=workdir), "has no artisan")
    _one_error_line(dbaudit("expect", "-o", "x.yml", cwd=workdir), "name the migration's SQL files")


def test_laravel_pretend_output_fills_in_the_migrations(workdir: Path) -> None:
    # The format Laravel 10+ prints (read from its source; PHP is not installed here).
    (workdir / "pretend.txt").write_text(
        "\n   INFO  Running migrations.\n\n"
        "  2025_10_22_000001_add_provider ................................................................  \n"
        "  ⇂ alter table \"chats\" add column \"provider_type\" varchar  \n"
        "  ⇂ create index \"chats_provider_type_index\" on \"chats\" (\"provider_type\")  \n\n")
    run = dbaudit("expect", "--laravel", "pretend.txt", "--dialect", "sqlite", "-o", "x.yml", cwd=workdir)
    assert run.returncode == 0, run.stderr
    data = yaml.safe_load((workdir / "x.yml").read_text())
    assert data["migrations"] == {"applied": ["2025_10_22_000001_add_provider"]}
    assert "# 2025_10_22_000001_add_provider (pretend.txt:5)" in (workdir / "x.yml").read_text()


def test_report_takes_a_migration_and_archives_it_with_the_derived_expectations(workdir: Path) -> None:
    _snapshots(workdir)
    run = dbaudit("report", "--before", "before.json", "--after", "after.json", "--expect", "migration.sql",
                  "--out-dir", "reports", cwd=workdir)
    assert run.returncode == 0, run.stdout + run.stderr
    folder = next((workdir / "reports").glob("*-migration"))
    assert (folder / "migration.sql").read_text() == MIGRATION
    derived = (folder / "expectations.yml").read_text()
    assert "derived from the migration itself" in derived and "column_added: chats.provider_type" in derived
    assert load_result(folder / "result.json").verdict == "pass"
    assert "Migrations ledger" in (folder / "report.html").read_text()
