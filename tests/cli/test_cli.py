"""The `dbaudit` command as other tools see it: a subprocess, its output and its exit code.

Contract: 0 = pass / no difference, 1 = fail / differences without expectations, 2 = usage or
input error with exactly one stderr line `dbaudit: error: …`, no traceback and no file written.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import MARIADB_URL, ScratchDB
from dbaudit.audit.result import load_result

SCHEMA = """
CREATE TABLE chats (id INTEGER PRIMARY KEY, contact TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'open');
CREATE TABLE jobs (id INTEGER PRIMARY KEY, queue TEXT NOT NULL);
INSERT INTO chats (id, contact) VALUES (1, 'a'), (2, 'b'), (3, 'c');
INSERT INTO jobs (id, queue) VALUES (1, 'default'), (2, 'mail');
"""

MIGRATION = """
ALTER TABLE chats ADD COLUMN provider_type VARCHAR(20) NULL;
CREATE INDEX idx_chats_provider_type ON chats (provider_type);
INSERT INTO chats (id, contact, provider_type) VALUES (4, 'd', 'webjs');
"""

DECLARED = """\
format_version: 1
name: webjs
required:
  - column_added: chats.provider_type
    nullable: true
allowed:
  - index_added: chats.idx_chats_*
rows:
  default: no_shrink
"""

UNDECLARED_INDEX = """\
name: column-only
required:
  - column_added: chats.provider_type
rows:
  default: no_shrink
"""


def dbaudit(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "DBAUDIT_PASSWORD"} | (env or {})
    return subprocess.run([sys.executable, "-m", "dbaudit", *map(str, args)], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=60)


def build_sqlite(path: Path, script: str = SCHEMA) -> str:
    with sqlite3.connect(path) as conn:
        conn.executescript(script)
    conn.close()
    return f"sqlite:///{path}"


def files_in(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def assert_input_error(proc: subprocess.CompletedProcess[str], *mentions: str) -> str:
    """Exit 2, exactly one stderr line `dbaudit: error: …` naming the problem, nothing on stdout."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("dbaudit: error: ")
    assert proc.stdout == ""
    for text in mentions:
        assert text in lines[0]
    return lines[0]


@dataclass
class Pair:
    """A SQLite database snapshotted before and after a migration, by the command itself."""

    folder: Path
    url: str
    before: Path
    after: Path

    def expectations(self, text: str, name: str = "expect.yml") -> Path:
        path = self.folder / name
        path.write_text(text, encoding="utf-8")
        return path


@pytest.fixture(scope="module")
def snapshot_pair(tmp_path_factory: pytest.TempPathFactory) -> Pair:
    """Taken once per module (each snapshot is a subprocess); tests get copies through `pair`."""
    folder = tmp_path_factory.mktemp("pair")
    url = build_sqlite(folder / "shop.sqlite")
    before, after = folder / "before.json", folder / "after.json"
    assert dbaudit("snapshot", url, "-o", before, cwd=folder).returncode == 0
    build_sqlite(folder / "shop.sqlite", MIGRATION)
    assert dbaudit("snapshot", url, "-o", after, cwd=folder).returncode == 0
    return Pair(folder, url, before, after)


@pytest.fixture
def pair(tmp_path: Path, snapshot_pair: Pair) -> Pair:
    before, after = tmp_path / "before.json", tmp_path / "after.json"
    shutil.copyfile(snapshot_pair.before, before)
    shutil.copyfile(snapshot_pair.after, after)
    return Pair(tmp_path, snapshot_pair.url, before, after)


# --- snapshot ------------------------------------------------------------------------------------


def test_snapshot_writes_the_file_and_prints_a_summary(tmp_path: Path) -> None:
    url = build_sqlite(tmp_path / "shop.sqlite")
    proc = dbaudit("snapshot", url, "-o", "out/snap.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.startswith("snapshot of ") and proc.stdout.count("\n") == 1
    assert "SQLite" in proc.stdout and "2 tables, 5 rows, 0 metrics -> out/snap.json" in proc.stdout
    data = json.loads((tmp_path / "out" / "snap.json").read_text(encoding="utf-8"))
    assert data["kind"] == "dbaudit.snapshot" and data["format_version"] == 2
    assert {name: t["row_count"] for name, t in data["tables"].items()} == {"chats": 3, "jobs": 2}


def test_a_failing_metric_is_recorded_as_an_error_without_failing_the_snapshot(tmp_path: Path) -> None:
    url = build_sqlite(tmp_path / "shop.sqlite")
    expect = tmp_path / "m.yml"
    expect.write_text("metrics:\n"
                      "  open_chats: SELECT COUNT(*) FROM chats WHERE status = 'open'\n"
                      "  sessions:\n    sql: SELECT COUNT(*) FROM whatsapp_sessions\n    expect: equal\n")
    proc = dbaudit("snapshot", url, "-o", "s.json", "--expect", expect, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "2 metrics -> s.json" in proc.stdout
    assert "metric sessions: no such table: whatsapp_sessions" in proc.stderr
    metrics = json.loads((tmp_path / "s.json").read_text())["metrics"]
    assert metrics["open_chats"]["value"] == 3 and metrics["open_chats"]["error"] is None
    assert metrics["sessions"]["value"] is None
    assert "whatsapp_sessions" in metrics["sessions"]["error"]


# --- diff ----------------------------------------------------------------------------------------


def test_diff_of_identical_snapshots_exits_0_and_says_so(pair: Pair) -> None:
    proc = dbaudit("diff", pair.before, pair.before, cwd=pair.folder)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "no differences\n", "")


def test_diff_after_a_change_exits_1_and_names_every_change(pair: Pair) -> None:
    proc = dbaudit("diff", pair.before, pair.after, cwd=pair.folder)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.splitlines() == [
        "! column chats.provider_type added: VARCHAR(20) NULL",
        "! index chats.idx_chats_provider_type added",
        "! rows of chats: 3 → 4 (+1)",
    ]
    assert "verdict" not in proc.stdout


def test_diff_with_expectations_declaring_the_change_passes(pair: Pair) -> None:
    proc = dbaudit("diff", pair.before, pair.after, "--expect", pair.expectations(DECLARED), cwd=pair.folder)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1] == "verdict: PASS (4/4 checks passed)"
    assert "  column chats.provider_type added: VARCHAR(20) NULL" in lines
    assert not any(line.startswith(("!", "FAIL")) for line in lines)


def test_an_undeclared_change_fails_the_verdict(pair: Pair) -> None:
    proc = dbaudit("diff", pair.before, pair.after, "--expect", pair.expectations(UNDECLARED_INDEX),
                   cwd=pair.folder)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert "! index chats.idx_chats_provider_type added" in lines
    assert ("FAIL [unexpected] index_added chats.idx_chats_provider_type: "
            "unexpected: index chats.idx_chats_provider_type added") in lines
    assert lines[-1] == "verdict: FAIL (3/4 checks passed)"


def test_a_missing_required_change_fails_the_verdict(pair: Pair) -> None:
    text = DECLARED.replace("allowed:", "  - column_added: chats.group_id\nallowed:")
    proc = dbaudit("diff", pair.before, pair.after, "--expect", pair.expectations(text), cwd=pair.folder)
    assert proc.returncode == 1
    assert "FAIL [required] column_added chats.group_id: required change did not happen" in proc.stdout
    assert proc.stdout.splitlines()[-1] == "verdict: FAIL (4/5 checks passed)"


@pytest.mark.parametrize(("expect", "verdict"), [(DECLARED, "pass"), (UNDECLARED_INDEX, "fail")])
def test_json_result_matches_the_printed_verdict(pair: Pair, expect: str, verdict: str) -> None:
    out = pair.folder / "results" / "r.json"
    proc = dbaudit("diff", pair.before, pair.after, "--expect", pair.expectations(expect), "--json", out,
                   cwd=pair.folder)
    assert proc.returncode == (0 if verdict == "pass" else 1)
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["kind"] == "dbaudit.result" and doc["format_version"] == 1
    assert doc["verdict"] == verdict
    assert f"verdict: {verdict.upper()}" in proc.stdout
    statuses = [c["status"] for c in doc["checks"]]
    passed = statuses.count("pass")
    assert f"({passed}/{len(statuses)} checks passed)" in proc.stdout
    assert doc["summary"]["checks_failed"] == statuses.count("fail") == (0 if verdict == "pass" else 1)
    assert {(c["kind"], c["target"]) for c in doc["changes"]} == {
        ("column_added", "chats.provider_type"),
        ("index_added", "chats.idx_chats_provider_type"),
        ("row_count_changed", "chats"),
    }
    undeclared = [c["target"] for c in doc["changes"] if not c["declared"]]
    assert undeclared == ([] if verdict == "pass" else ["chats.idx_chats_provider_type"])
    assert load_result(out).verdict == verdict  # the document reads back through the library


def test_json_result_without_expectations_lists_the_changes(pair: Pair) -> None:
    out = pair.folder / "r.json"
    proc = dbaudit("diff", pair.before, pair.after, "--json", out, cwd=pair.folder)
    assert proc.returncode == 1
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["verdict"] == "fail" and doc["expectations"] == "no-changes"
    assert doc["summary"]["changes"] == 3 and doc["summary"]["unexpected_changes"] == 2


def test_diff_of_a_metric_only_change_without_expectations_exits_1(tmp_path: Path) -> None:
    url = build_sqlite(tmp_path / "shop.sqlite")
    expect = tmp_path / "m.yml"
    expect.write_text("metrics:\n  open_chats: SELECT COUNT(*) FROM chats WHERE status = 'open'\n")
    assert dbaudit("snapshot", url, "-o", "b.json", "--expect", expect, cwd=tmp_path).returncode == 0
    build_sqlite(tmp_path / "shop.sqlite", "UPDATE chats SET status = 'closed' WHERE id = 1;")
    assert dbaudit("snapshot", url, "-o", "a.json", "--expect", expect, cwd=tmp_path).returncode == 0
    proc = dbaudit("diff", "b.json", "a.json", cwd=tmp_path)
    assert proc.stdout == "! metric open_chats: 3 → 2\n"
    assert proc.returncode == 1


# --- input errors: exit 2, one line, no traceback, no file ----------------------------------------


def test_an_unreachable_server_is_an_input_error(tmp_path: Path) -> None:
    proc = dbaudit("snapshot", "mysql+pymysql://root@127.0.0.1:1/shop", "-o", "s.json", cwd=tmp_path)
    assert_input_error(proc, "cannot connect to mysql+pymysql://root@127.0.0.1:1/shop", "(2003)")
    assert files_in(tmp_path) == set()


@pytest.fixture
def mariadb_user(mariadb_server: sa.Engine, make_mariadb: Callable[[], ScratchDB]) -> Iterator[tuple[str, str, ScratchDB]]:
    """A throwaway database with one table, and a user with a password who may read it."""
    db = make_mariadb()
    db.run_sql("CREATE TABLE chats (id INT PRIMARY KEY, contact VARCHAR(20) NOT NULL)",
               "INSERT INTO chats VALUES (1, 'a'), (2, 'b')")
    user, password = f"dbaudit_u_{uuid.uuid4().hex[:8]}", f"Pw{uuid.uuid4().hex}"
    database = sa.engine.make_url(db.url).database
    with mariadb_server.connect() as conn:
        conn.exec_driver_sql(f"CREATE USER '{user}'@'%%' IDENTIFIED BY '{password}'")
        conn.exec_driver_sql(f"GRANT SELECT, SHOW VIEW ON `{database}`.* TO '{user}'@'%%'")
    try:
        yield user, password, db
    finally:
        with mariadb_server.connect() as conn:
            conn.exec_driver_sql(f"DROP USER IF EXISTS '{user}'@'%%'")


def _user_url(db: ScratchDB, user: str, password: str) -> str:
    return sa.engine.make_url(db.url).set(username=user, password=password).render_as_string(hide_password=False)


def test_a_wrong_password_is_an_input_error_and_is_never_printed(tmp_path: Path, mariadb_user) -> None:
    user, password, db = mariadb_user
    wrong = f"Wrong{uuid.uuid4().hex}"
    proc = dbaudit("snapshot", _user_url(db, user, wrong), "-o", "s.json", cwd=tmp_path)
    line = assert_input_error(proc, "(1045) Access denied", f"{user}:***@")
    assert wrong not in proc.stdout + proc.stderr and password not in line
    assert files_in(tmp_path) == set()
    # The same wrong password given through DBAUDIT_PASSWORD is not printed either.
    proc = dbaudit("snapshot", _user_url(db, user, "").replace(":@", "@"), "-o", "s.json", cwd=tmp_path,
                   env={"DBAUDIT_PASSWORD": wrong})
    assert_input_error(proc, "(1045) Access denied", "***")
    assert wrong not in proc.stderr and files_in(tmp_path) == set()


def test_the_right_password_is_masked_in_the_summary_and_the_snapshot(tmp_path: Path, mariadb_user) -> None:
    user, password, db = mariadb_user
    proc = dbaudit("snapshot", _user_url(db, user, password), "-o", "s.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.replace(password, "<password>")
    assert password not in proc.stdout + proc.stderr
    assert f"from mysql+pymysql://{user}:***@127.0.0.1" in proc.stdout and "1 tables, 2 rows" in proc.stdout
    text = (tmp_path / "s.json").read_text(encoding="utf-8")
    assert password not in text
    assert json.loads(text)["source"].startswith(f"mysql+pymysql://{user}:***@")


def test_an_unknown_database_is_an_input_error(tmp_path: Path, mariadb_server: sa.Engine) -> None:
    name = f"dbaudit_t_missing_{uuid.uuid4().hex[:8]}"
    proc = dbaudit("snapshot", f"{MARIADB_URL}/{name}", "-o", "s.json", cwd=tmp_path)
    assert_input_error(proc, "(1049)", name)
    assert files_in(tmp_path) == set()


def test_a_missing_sqlite_file_is_an_error_and_is_not_created(tmp_path: Path) -> None:
    proc = dbaudit("snapshot", "sqlite:///nope.sqlite", "-o", "s.json", cwd=tmp_path)
    assert_input_error(proc, "no such SQLite database file: nope.sqlite")
    proc = dbaudit("snapshot", f"sqlite:///{tmp_path}/sub/nope.sqlite", "-o", "s.json", cwd=tmp_path)
    assert_input_error(proc, "nope.sqlite")
    assert files_in(tmp_path) == set()


def test_a_missing_sqlite_file_named_like_a_uri_is_not_created(tmp_path: Path) -> None:
    proc = dbaudit("snapshot", "sqlite:///file:nope.sqlite", "-o", "s.json", cwd=tmp_path)
    assert files_in(tmp_path) == set()
    assert_input_error(proc)


@pytest.mark.parametrize("url", ["oracle://scott@x/y", "mysql+nosuchdriver://root@127.0.0.1/db", "just-a-word"])
def test_an_unsupported_or_unparseable_url_is_an_input_error(tmp_path: Path, url: str) -> None:
    line = assert_input_error(dbaudit("snapshot", url, "-o", "s.json", cwd=tmp_path))
    assert any(word in line for word in ("unsupported", "not a database URL"))
    assert files_in(tmp_path) == set()


def test_an_unparseable_url_does_not_print_its_password(tmp_path: Path) -> None:
    proc = dbaudit("snapshot", "mysql+pymysql//root:S3cretPw@127.0.0.1/db", "-o", "s.json", cwd=tmp_path)
    assert_input_error(proc)
    assert "S3cretPw" not in proc.stderr


def test_a_url_with_a_non_numeric_port_is_an_input_error(tmp_path: Path) -> None:
    assert_input_error(dbaudit("snapshot", "mysql+pymysql://root@127.0.0.1:notaport/db", "-o", "s.json",
                               cwd=tmp_path))


def test_malformed_snapshot_json_is_an_input_error(pair: Pair) -> None:
    broken = pair.folder / "broken.json"
    broken.write_text(pair.after.read_text()[:200], encoding="utf-8")
    proc = dbaudit("diff", pair.before, broken, "--json", "r.json", cwd=pair.folder)
    assert_input_error(proc, "broken.json is not valid JSON")
    assert not (pair.folder / "r.json").exists()


def test_a_snapshot_of_another_format_version_is_an_input_error(pair: Pair) -> None:
    data = json.loads(pair.after.read_text())
    data["format_version"] = 3  # a later dbaudit's; format 1 is still read (tests/audit/test_snapshot_versions.py)
    (pair.folder / "v3.json").write_text(json.dumps(data))
    proc = dbaudit("diff", pair.before, "v3.json", "--json", "r.json", cwd=pair.folder)
    assert_input_error(proc, "v3.json has snapshot format_version 3")
    assert not (pair.folder / "r.json").exists()


def test_a_missing_snapshot_file_is_an_input_error(pair: Pair) -> None:
    proc = dbaudit("diff", "gone.json", pair.after, "--json", "r.json", cwd=pair.folder)
    assert_input_error(proc, "snapshot file not found: gone.json")
    assert not (pair.folder / "r.json").exists()


@pytest.mark.parametrize(
    ("text", "mentions"),
    [
        ("required:\n  - column_added: [chats.x\n", ["bad.yml is not valid YAML"]),
        ("allowed:\n  - column_renamed: chats.contact\n", ["allowed[0]", "column_renamed"]),
        ("rows:\n  any: [no_such_table]\n", ["['no_such_table']", "exist in neither snapshot"]),
        ("requried:\n  - column_added: chats.provider_type\n", ["unknown key(s) ['requried']"]),
    ],
    ids=["malformed-yaml", "unknown-change-kind", "rows-table-in-neither-snapshot", "unknown-key"],
)
def test_bad_expectations_are_an_input_error(pair: Pair, text: str, mentions: list[str]) -> None:
    expect = pair.expectations(text, "bad.yml")
    proc = dbaudit("diff", pair.before, pair.after, "--expect", expect, "--json", "r.json", cwd=pair.folder)
    assert_input_error(proc, *mentions)
    assert not (pair.folder / "r.json").exists()


def test_bad_expectations_stop_a_snapshot_before_it_is_written(tmp_path: Path) -> None:
    url = build_sqlite(tmp_path / "shop.sqlite")
    (tmp_path / "bad.yml").write_text("metrics:\n  oops:\n    expect: equal\n")
    proc = dbaudit("snapshot", url, "-o", "s.json", "--expect", "bad.yml", cwd=tmp_path)
    assert_input_error(proc, "metrics.oops needs `sql:`")
    assert files_in(tmp_path) == {"shop.sqlite", "bad.yml"}


def test_diff_refuses_a_file_that_is_not_a_snapshot_json(pair: Pair) -> None:
    proc = dbaudit("diff", pair.url, pair.after, cwd=pair.folder)
    assert_input_error(proc, "diff compares snapshot files (*.json)")


@pytest.mark.parametrize("args", [("frobnicate",), ("snapshot", "sqlite:///x.sqlite"), ("diff", "a.json")],
                         ids=["unknown-subcommand", "snapshot-without-output", "diff-without-after"])
def test_usage_errors_are_one_line(tmp_path: Path, args: tuple[str, ...]) -> None:
    assert_input_error(dbaudit(*args, cwd=tmp_path))


@pytest.mark.parametrize(
    ("args", "mention"),
    [(("frobnicate",), "invalid choice: 'frobnicate'"), (("snapshot", "sqlite:///x.sqlite"), "-o/--output")],
    ids=["unknown-subcommand", "snapshot-without-output"],
)
def test_usage_errors_exit_2_with_an_error_line_and_no_traceback(tmp_path: Path, args: tuple[str, ...],
                                                                 mention: str) -> None:
    proc = dbaudit(*args, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == "" and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("dbaudit: error: ")]
    assert len(errors) == 1 and mention in errors[0]
    assert files_in(tmp_path) == set()


# --- found in review: every bad input is exit 2 and one line, whatever its shape ------------------


@pytest.mark.parametrize("text, mention", [
    ("metrics: [a, b]\n", "metrics must be a mapping"),
    ("required:\n  - {1: chats}\n", "keys must be change kinds"),
    ("metrics:\n  q: {sql: SELECT 1, max: abc}\n", "max must be a number"),
    ("metrics:\n  q: {sql: SELECT 1, min: [1]}\n", "min must be a number"),
])
def test_expectations_of_the_wrong_shape_are_input_errors(pair: Pair, text: str, mention: str) -> None:
    expect = pair.expectations(text)
    assert_input_error(dbaudit("diff", pair.before, pair.after, "--expect", expect, cwd=pair.folder), mention)


def test_a_snapshot_file_with_a_malformed_chunking_label_is_an_input_error(pair: Pair) -> None:
    data = json.loads(pair.before.read_text())
    next(iter(data["tables"].values()))["chunking"] = "range(a)/x"
    broken = pair.folder / "broken.json"
    broken.write_text(json.dumps(data))
    data_after = json.loads(pair.after.read_text())
    next(iter(data_after["tables"].values()))["chunking"] = "range(a)/x"
    proc = dbaudit("diff", broken, pair.after, cwd=pair.folder)
    assert proc.returncode in (1, 2) and "Traceback" not in proc.stderr


@pytest.mark.parametrize("sql, mention", [
    ("SELECT COUNT(*) FROM chats INTO OUTFILE '/tmp/x'", "INTO OUTFILE"),
    ("SELECT id FROM chats FOR UPDATE", "FOR UPDATE"),
    ("SELECT 1; DROP TABLE chats", "a second statement"),
    ("SELECT * INTO copy FROM chats", "INTO copy"),
])
def test_metric_sql_with_side_effects_is_refused_before_connecting(pair: Pair, sql: str, mention: str) -> None:
    expect = pair.expectations(f"metrics:\n  m: \"{sql}\"\n")
    proc = dbaudit("snapshot", pair.url, "-o", pair.folder / "m.json", "--expect", expect, cwd=pair.folder)
    assert_input_error(proc, "must only read", mention)
    assert not (pair.folder / "m.json").exists()


def test_a_sqlite_path_with_uri_characters_audits_that_very_file(tmp_path: Path) -> None:
    build_sqlite(tmp_path / "x", "CREATE TABLE decoy (id INTEGER);")  # what an unencoded 'file:' URI opens
    url = build_sqlite(tmp_path / "x#y.sqlite")
    proc = dbaudit("snapshot", url, "-o", tmp_path / "s.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    snap = json.loads((tmp_path / "s.json").read_text())
    assert snap["database"].endswith("x#y.sqlite") and set(snap["tables"]) == {"chats", "jobs"}


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf"])
def test_a_statement_timeout_must_be_a_positive_number(pair: Pair, value: str) -> None:
    proc = dbaudit("snapshot", pair.url, "-o", pair.folder / "t.json", "--statement-timeout", value, cwd=pair.folder)
    assert_input_error(proc, "positive number of seconds")


def test_json_and_junit_are_written_together_or_not_at_all(pair: Pair) -> None:
    blocked = pair.folder / "a-directory"
    blocked.mkdir()
    proc = dbaudit("diff", pair.before, pair.after, "--json", pair.folder / "out.json", "--junit", blocked,
                   cwd=pair.folder)
    assert_input_error(proc, "is a directory")
    assert not (pair.folder / "out.json").exists()


def test_report_with_bad_expectations_fails_before_creating_a_report_folder(pair: Pair) -> None:
    expect = pair.expectations("rows: {sometimes: [chats]}\n")
    out = pair.folder / "reports"
    proc = dbaudit("report", "--before", pair.before, "--after", pair.after, "--expect", expect,
                   "--out-dir", out, cwd=pair.folder)
    assert_input_error(proc, "rows.sometimes")
    assert not out.exists() or not any(out.iterdir())


def test_an_unknown_postgres_schema_is_an_input_error(make_postgres: Callable[[], ScratchDB], tmp_path: Path) -> None:
    db = make_postgres()
    proc = dbaudit("snapshot", db.url, "-o", tmp_path / "s.json", "--schema", "nosuch", cwd=tmp_path)
    assert_input_error(proc, "no schema 'nosuch'")


def test_a_missing_option_file_is_an_input_error_not_an_empty_password(tmp_path: Path) -> None:
    proc = dbaudit("snapshot", "mysql+pymysql://root@127.0.0.1/x?read_default_file=/nonexistent/my.cnf",
                   "-o", tmp_path / "s.json", cwd=tmp_path)
    assert_input_error(proc, "option file /nonexistent/my.cnf")


def test_report_is_named_after_the_expectations_and_refuses_a_url(pair: Pair) -> None:
    expect = pair.expectations(DECLARED)
    out = pair.folder / "reports"
    named = dbaudit("report", "--before", pair.before, "--after", pair.after, "--expect", expect, "--out-dir", out,
                    cwd=pair.folder)
    assert named.returncode == 0, named.stderr
    assert [p.name.split("-", 1)[1] for p in out.iterdir() if p.is_dir()] == ["webjs"]  # name: webjs, not expect
    assert_input_error(dbaudit("report", "--before", "mysql+pymysql://root@db/x", "--after", pair.after,
                               cwd=pair.folder), "--before takes a snapshot file")


@pytest.mark.parametrize("flags", [("--webhook-error-rate", "150"), ("--cpu-percent", "-5", "--cpu-minutes", "10")])
def test_triggers_refuses_percentages_outside_0_to_100(pair: Pair, flags: tuple[str, ...]) -> None:
    assert_input_error(dbaudit("triggers", pair.url, *flags, cwd=pair.folder), "percentage from 0 to 100")


def test_a_counts_only_compare_says_it_did_not_compare_contents(tmp_path: Path) -> None:
    a, b = build_sqlite(tmp_path / "a.sqlite"), build_sqlite(tmp_path / "b.sqlite")
    proc = dbaudit("compare", a, b, "--counts-only", cwd=tmp_path)
    assert proc.returncode == 0 and "contents not compared" in proc.stdout


def test_grants_prints_the_statements_for_the_server_and_refuses_sqlite(tmp_path: Path, mariadb_server) -> None:
    proc = dbaudit("grants", "--server", f"{MARIADB_URL}/shop_1", "--user", "audit", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("-- first: CREATE USER 'audit'@'%'")
    assert "GRANT SELECT, SHOW VIEW, TRIGGER, EXECUTE ON `shop\\_1`.* TO 'audit'@'%';" in lines
    assert_input_error(dbaudit("grants", "--server", f"sqlite:///{tmp_path / 'x.db'}", cwd=tmp_path), "SQLite has no accounts")
