"""Rollback triggers against real databases: orphans left by a load with FOREIGN_KEY_CHECKS=0, and the rest."""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import ROOT, ScratchDB
from dbaudit.core.errors import DbauditError
from dbaudit.live.inspect import take_snapshot
from dbaudit.live.rollback import DeclaredKey, External, evaluate_triggers, load_rules

SCHEMA = [
    "CREATE TABLE workspaces (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL)",
    "CREATE TABLE contacts (id INT AUTO_INCREMENT PRIMARY KEY, workspace_id INT NOT NULL, phone VARCHAR(20), "
    "CONSTRAINT contacts_ws FOREIGN KEY (workspace_id) REFERENCES workspaces (id))",
    "CREATE TABLE chats (id INT AUTO_INCREMENT PRIMARY KEY, workspace_id INT, contact_id INT)",  # no FK, as in blazz
    "CREATE TABLE jobs (id INT AUTO_INCREMENT PRIMARY KEY, queue VARCHAR(20))",
    "CREATE TABLE failed_jobs (id INT AUTO_INCREMENT PRIMARY KEY, payload VARCHAR(20))",
    "INSERT INTO workspaces VALUES (1, 'one'), (2, 'two')",
    "INSERT INTO contacts (workspace_id, phone) VALUES (1, '+1'), (2, '+2'), (2, '+3')",
    "INSERT INTO chats (workspace_id, contact_id) VALUES (1, 1), (2, 2), (NULL, 3)",
    "INSERT INTO jobs (queue) VALUES ('a'), ('b'), ('c')",
]
RULES = """\
format_version: 1
name: rollback-test
rows: {default: no_shrink, any: [jobs]}
rollback:
  foreign_keys:
    - {table: chats, columns: [workspace_id], ref_table: workspaces, ref_columns: [id]}
    - {table: chats, columns: [contact_id], ref_table: contacts, ref_columns: [id]}
  unique_keys:
    - {table: contacts, columns: [phone]}
  queue: {table: jobs, max: 4}
"""


@pytest.fixture
def blazzish(make_mariadb: Callable[[], ScratchDB], tmp_path: Path) -> tuple[ScratchDB, Path, Path]:
    """A healthy database, its expectations and a baseline snapshot taken before the 'migration'."""
    db = make_mariadb()
    db.run_sql(*SCHEMA)
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES)
    baseline = tmp_path / "before.json"
    take_snapshot(db.url).save(baseline)
    return db, rules, baseline


def _by_trigger(result: object, trigger: str) -> dict[str, str]:
    return {c.name: c.status for c in result.checks if c.category == trigger}


def test_a_healthy_database_fires_no_trigger(blazzish: tuple[ScratchDB, Path, Path]) -> None:
    db, rules, baseline = blazzish

    result = evaluate_triggers(db.url, rules, baseline=baseline, external=External(50, 30, 0.5))

    assert result.verdict == "pass", [c.message for c in result.fired]
    assert _by_trigger(result, "fk_orphans") == {
        "contacts(workspace_id) → workspaces(id)": "pass", "chats(workspace_id) → workspaces(id)": "pass",
        "chats(contact_id) → contacts(id)": "pass"}
    assert _by_trigger(result, "auto_increment") == dict.fromkeys(("chats", "contacts", "jobs", "failed_jobs"), "pass")
    assert next(c for c in result.checks if c.name == "contacts").message == "next id 4, MAX(id) 3"


def test_rows_loaded_with_foreign_key_checks_off_are_counted_as_orphans_per_key(
    blazzish: tuple[ScratchDB, Path, Path]
) -> None:
    db, rules, baseline = blazzish
    db.run_sql("SET FOREIGN_KEY_CHECKS = 0",
               "INSERT INTO contacts (workspace_id, phone) VALUES (9, '+9'), (9, '+10')",
               "INSERT INTO chats (workspace_id, contact_id) VALUES (7, 1), (1, 99), (NULL, NULL)")

    result = evaluate_triggers(db.url, rules, baseline=baseline)

    orphans = {c.name: c.value for c in result.checks if c.category == "fk_orphans"}
    assert orphans == {"contacts(workspace_id) → workspaces(id)": 2, "chats(workspace_id) → workspaces(id)": 1,
                       "chats(contact_id) → contacts(id)": 1}
    assert result.verdict == "fail"
    assert "(declared, not enforced)" in next(c.message for c in result.fired if c.name.startswith("chats(work"))


def test_duplicates_queue_depth_failed_jobs_growth_and_row_loss_each_fire(
    blazzish: tuple[ScratchDB, Path, Path]
) -> None:
    db, rules, baseline = blazzish
    db.run_sql("INSERT INTO contacts (workspace_id, phone) VALUES (1, '+2')",
               "INSERT INTO jobs (queue) VALUES ('d'), ('e')",
               "INSERT INTO failed_jobs (payload) VALUES ('x')",
               "DELETE FROM chats WHERE id = 3",
               "DELETE FROM jobs WHERE id = 1")  # jobs may shrink: `rows: any` in the expectations

    result = evaluate_triggers(db.url, rules, baseline=baseline)

    fired = {(c.category, c.name): c.message for c in result.fired}
    assert fired[("unique_violations", "contacts(phone)")].startswith("1 key value(s)")
    assert ("queue_depth", "jobs") not in fired  # 4 jobs: at the limit, not above
    assert fired[("failed_jobs", "failed_jobs")] == "0 → 1 (+1; limit +0)"
    assert fired[("data_loss", "chats")] == "3 → 2 (-1)"
    assert ("data_loss", "jobs") not in fired
    db.run_sql("INSERT INTO jobs (queue) VALUES ('f')")
    again = evaluate_triggers(db.url, rules, baseline=baseline)
    assert ("queue_depth", "jobs") in {(c.category, c.name) for c in again.fired}


@pytest.mark.parametrize(("cpu", "minutes", "rate", "fired"), [
    (95, 6, 4.9, {"cpu"}), (95, 4, 4.9, set()), (90, 60, 5.0, set()), (20, 60, 7.5, {"webhook"}),
])
def test_external_figures_are_judged_against_the_seed_thresholds(
    blazzish: tuple[ScratchDB, Path, Path], cpu: float, minutes: float, rate: float, fired: set[str]
) -> None:
    db, rules, _ = blazzish

    result = evaluate_triggers(db.url, rules, external=External(cpu, minutes, rate))

    assert {c.category for c in result.fired} == fired


def test_declared_keys_naming_a_missing_column_or_unknown_settings_are_input_errors(
    blazzish: tuple[ScratchDB, Path, Path], tmp_path: Path
) -> None:
    db, _, _ = blazzish
    typo = tmp_path / "typo.yml"
    typo.write_text("rollback:\n  foreign_keys:\n    - {table: chats, columns: [workspace], ref_table: workspaces, "
                    "ref_columns: [id]}\n")
    unknown = tmp_path / "unknown.yml"
    unknown.write_text("rollback:\n  queue_max: 5\n")

    with pytest.raises(DbauditError, match="no column"):
        evaluate_triggers(db.url, typo)
    with pytest.raises(DbauditError, match="unknown key"):
        load_rules(unknown)


def test_declared_foreign_key_orphans_are_counted_on_every_server(make_db: Callable[[], ScratchDB]) -> None:
    db = make_db()
    db.run_sql('CREATE TABLE "order" (id INT PRIMARY KEY)' if db.backend != "mariadb"
               else "CREATE TABLE `order` (id INT PRIMARY KEY)",
               "CREATE TABLE line (id INT PRIMARY KEY, order_id INT)",
               'INSERT INTO line VALUES (1, 1), (2, 5), (3, NULL)')
    db.run_sql('INSERT INTO "order" VALUES (1)' if db.backend != "mariadb" else "INSERT INTO `order` VALUES (1)")
    rules = load_rules(None)
    rules.foreign_keys = [DeclaredKey("line", ["order_id"], "order", ["id"])]
    result = evaluate_triggers(db.url, rules=rules)

    assert [(c.name, c.value) for c in result.checks if c.category == "fk_orphans"] == [
        ("line(order_id) → order(id)", 1)]


def test_cli_triggers_exits_1_when_a_trigger_fires_and_2_on_bad_input(
    blazzish: tuple[ScratchDB, Path, Path], tmp_path: Path
) -> None:
    db, rules, baseline = blazzish
    dbaudit = str(ROOT / ".venv" / "bin" / "dbaudit")

    ok = subprocess.run([dbaudit, "triggers", db.url, "--expect", str(rules), "--baseline", str(baseline)],
                        capture_output=True, text=True)
    hot = subprocess.run([dbaudit, "triggers", db.url, "--expect", str(rules), "--cpu-percent", "97",
                          "--cpu-minutes", "8", "--json", str(tmp_path / "r.json")], capture_output=True, text=True)
    bad = subprocess.run([dbaudit, "triggers", db.url, "--cpu-percent", "97"], capture_output=True, text=True)

    assert (ok.returncode, hot.returncode, bad.returncode) == (0, 1, 2), ok.stdout + hot.stdout + bad.stderr
    assert "ROLLBACK: 1 trigger(s) fired: cpu" in hot.stdout and (tmp_path / "r.json").is_file()
    assert bad.stderr == "dbaudit: error: --cpu-percent and --cpu-minutes go together\n"


def test_sqlite_references_without_a_column_point_at_the_parent_primary_key_and_orphans_are_counted(
    make_sqlite: Callable[[], ScratchDB]
) -> None:
    db = make_sqlite()
    # Built with a plain sqlite3 connection: foreign keys are off there, so an orphan can be stored.
    with sqlite3.connect(db.url.removeprefix("sqlite:///")) as conn:
        conn.executescript("CREATE TABLE parent (id INTEGER PRIMARY KEY);"
                           "CREATE TABLE child (id INTEGER PRIMARY KEY, pid INTEGER REFERENCES parent);"
                           "INSERT INTO parent VALUES (1); INSERT INTO child VALUES (1, 1), (2, 7), (3, NULL);")

    fk = take_snapshot(db.url).tables["child"].foreign_keys[0]
    result = evaluate_triggers(db.url)

    assert (fk.ref_table, fk.ref_columns) == ("parent", ["id"])
    assert [(c.name, c.value) for c in result.checks if c.category == "fk_orphans"] == [("child(pid) → parent(id)", 1)]


def test_cli_triggers_evaluates_the_given_postgresql_schema_with_a_statement_timeout(
    make_postgres: Callable[[], ScratchDB], tmp_path: Path
) -> None:
    db = make_postgres()
    db.run_sql('CREATE SCHEMA "shop"', 'CREATE TABLE "shop"."order" (id INT PRIMARY KEY)',
               'CREATE TABLE "shop"."line" (id INT PRIMARY KEY, order_id INT)',
               'INSERT INTO "shop"."order" VALUES (1)', 'INSERT INTO "shop"."line" VALUES (1, 1), (2, 5), (3, 6)')
    rules = tmp_path / "rules.yml"
    rules.write_text("format_version: 1\nname: shop\nrollback:\n  foreign_keys:\n"
                     "    - {table: line, columns: [order_id], ref_table: order, ref_columns: [id]}\n")
    dbaudit = str(ROOT / ".venv" / "bin" / "dbaudit")

    run = subprocess.run([dbaudit, "triggers", db.url, "--schema", "shop", "--statement-timeout", "30",
                          "--expect", str(rules), "--json", str(tmp_path / "r.json")], capture_output=True, text=True)

    assert run.returncode == 1, run.stdout + run.stderr
    assert "2 row(s) point at no order row" in run.stdout
