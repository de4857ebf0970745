"""rehearse on the real MariaDB: the blazz schema dumped with mariadb-dump, the Web.js migration and its rollback
(tests/sql/webjs_rollback.mysql.sql), and rollbacks that go wrong in the ways the issue names. After every one,
no scratch database and no temporary account may be left."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
import sqlalchemy as sa

from conftest import MARIADB_URL, ROOT, SQL_DIR, dump_database, load_sql, scratch_mariadb_database
from dbaudit.backups import rehearse_scratch, restore, restore_account, scratch_journal
from dbaudit.backups.rehearse import STAGES, Rehearsal, load_rehearsal, rehearse
from dbaudit.cli import main
from dbaudit.core import serde
from dbaudit.demo.sample_data import TABLE_ORDER, sample_rows

EXPECTATIONS = ROOT / "expectations" / "blazz-webjs.yml"
MIGRATION = SQL_DIR / "webjs_migration.mysql.sql"
ROLLBACK = SQL_DIR / "webjs_rollback.mysql.sql"
SCHEMAS = ROOT / "lib" / "dbaudit" / "schemas"
CLI_RESTORE_PREFIX = restore_account.ACCOUNT_PREFIX  # read before any test patches it


@pytest.fixture(scope="module")
def blazz_dump(mariadb_server: sa.Engine, mariadb_client: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The blazz schema with its sample rows, dumped the way a backup job would; the database is gone after."""
    with scratch_mariadb_database(mariadb_server, "rhsrc") as name:
        load_sql(mariadb_client, name, SQL_DIR / "blazz_schema.mysql.sql")
        engine = sa.create_engine(f"{MARIADB_URL}/{name}", poolclass=sa.pool.NullPool)
        rows = sample_rows()
        with engine.begin() as conn:
            for table in TABLE_ORDER:
                if rows.get(table):
                    conn.execute(sa.table(table, *[sa.column(c) for c in rows[table][0]]).insert(), rows[table])
        engine.dispose()
        return dump_database(name, tmp_path_factory.mktemp("rehearse") / "blazz.sql")


@pytest.fixture
def account_prefix(monkeypatch: pytest.MonkeyPatch) -> str:
    """The temporary accounts of this test alone (restore-check's and rehearse's own), so "none left" cannot be
    confused by another test's."""
    prefix = f"dbaudit_t_rh{uuid.uuid4().hex[:6]}_"
    monkeypatch.setattr(restore, "ACCOUNT_PREFIX", prefix)
    # restore_account makes restore-check's account, whose name the migrate/rollback account then takes.
    monkeypatch.setattr(restore_account, "ACCOUNT_PREFIX", prefix)
    monkeypatch.setattr(rehearse_scratch, "ACCOUNT_PREFIX", prefix)
    return prefix


@pytest.fixture
def scratch(mariadb_server: sa.Engine, account_prefix: str) -> Iterator[str]:
    """A scratch name; after the test, it and its reference restore must be gone, and every account with it."""
    name = f"dbaudit_t_rh_{uuid.uuid4().hex[:8]}"
    try:
        yield name
        assert_nothing_left(mariadb_server, name, account_prefix)
    finally:
        with mariadb_server.connect() as conn:
            for db in (name, f"{name}_ref"):
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{db}`")


def assert_nothing_left(server: sa.Engine, name: str, prefix: str | None = None) -> None:
    with server.connect() as conn:
        databases = {r[0] for r in conn.exec_driver_sql("SHOW DATABASES")}
        grants = conn.exec_driver_sql("SELECT COUNT(*) FROM mysql.db WHERE Db IN (%s, %s)",
                                      (name.replace("_", "\\_"), f"{name}_ref".replace("_", "\\_"))).scalar_one()
        accounts = conn.exec_driver_sql("SELECT COUNT(*) FROM mysql.user WHERE User LIKE %s",
                                        ((prefix or "-").replace("_", "\\_") + "%",)).scalar_one()
    assert not {name, f"{name}_ref"} & databases, "a scratch database was left"
    assert grants == 0, "an account with rights on the scratch database was left"
    assert accounts == 0, "a temporary account was left"


def _rollback_with(tmp_path: Path, *, without: str = "", then: str = "") -> Path:
    text = ROLLBACK.read_text(encoding="utf-8")
    if without:
        assert without in text
        text = text.replace(without, "")
    target = tmp_path / "rollback.sql"
    target.write_text(text + then, encoding="utf-8")
    return target


def _run(dump: Path, scratch: str, **options: object) -> Rehearsal:
    options = {"expect": EXPECTATIONS, "migrate": [MIGRATION], "rollback": [ROLLBACK], **options}
    return rehearse(dump, MARIADB_URL, scratch=scratch, **options)  # type: ignore[arg-type]


def _failed(result: Rehearsal, stage: str) -> list[str]:
    return [c.message for c in result.stage(stage).checks if c.status == "fail"]


def test_a_good_rollback_passes_every_stage_and_the_result_matches_its_schema(
        blazz_dump: Path, scratch: str, tmp_path: Path) -> None:
    result = _run(blazz_dump, scratch)

    assert result.verdict == "pass", [c.message for c in result.failed_checks]
    assert [s.name for s in result.stages] == list(STAGES) and {s.status for s in result.stages} == {"pass"}
    assert result.audit is not None and result.audit.verdict == "pass" and result.triggers is not None
    assert result.proof == [] and not result.kept
    proof = result.stage("proof").checks
    assert {c.name for c in proof if c.category == "table"} >= {"chats", "contacts"} and {c.status for c in proof} == {"pass"}
    assert result.stage("migrate").steps[0].statements == 11
    document = json.loads(serde.dumps(result))
    jsonschema.validate(document, json.loads((SCHEMAS / "rehearsal.schema.json").read_text()))
    jsonschema.validate(document["audit"], json.loads((SCHEMAS / "result.schema.json").read_text()))
    result.save(tmp_path / "r.json")
    assert load_rehearsal(tmp_path / "r.json").stage("proof").status == "pass"


def test_a_rollback_that_forgets_an_index_fails_the_proof_naming_it(
        blazz_dump: Path, scratch: str, tmp_path: Path) -> None:
    rollback = _rollback_with(tmp_path, without="DROP INDEX idx_chats_contact_chat ON chats;\n")

    result = _run(blazz_dump, scratch, rollback=[rollback])

    assert result.verdict == "fail"
    assert result.stage("audit").status == "pass" and result.stage("rollback").status == "pass"
    assert _failed(result, "proof") == ["index chats.idx_chats_contact_chat added"]
    assert [(r.kind, r.target) for r in result.proof] == [("index_added", "chats.idx_chats_contact_chat")]


@pytest.mark.parametrize(("mistake", "table", "named"), [
    ("ALTER TABLE chats DROP COLUMN wam_id;\n"
     "ALTER TABLE chats ADD COLUMN wam_id varchar(128) NULL COMMENT 'WhatsApp message id (wamid.*)' "
     "AFTER whatsapp_session_id, ADD KEY chats_wam_id_index (wam_id);\n", "chats", ["chunk(s): id ", " changed"]),
    # contacts is one chunk: its key range says nothing, the live compare names the row.
    ("UPDATE contacts SET first_name = 'Rolled' WHERE id = 17;\n", "contacts", ["id=17 changed"]),
], ids=["drops-and-re-adds-a-column", "changes-a-row"])
def test_a_rollback_that_loses_data_fails_the_proof_naming_the_table_and_where(
        mistake: str, table: str, named: list[str], blazz_dump: Path, scratch: str, tmp_path: Path) -> None:
    result = _run(blazz_dump, scratch, rollback=[_rollback_with(tmp_path, then=mistake)])

    assert result.verdict == "fail" and result.stage("rollback").status == "pass"
    (message,) = _failed(result, "proof")
    assert message.startswith(f"content of {table} changed")
    assert all(part in message for part in named), message  # its key ranges, and its keys from a live compare
    assert [c.name for c in result.stage("proof").checks if c.status == "fail"] == [table]


def test_a_migration_command_that_exits_1_fails_the_migrate_stage_with_its_output_masked(
        blazz_dump: Path, scratch: str, tmp_path: Path) -> None:
    command = 'echo "migrating $DB_DATABASE as $DB_USERNAME with $DB_PASSWORD"; echo "SQLSTATE[42S01]" >&2; exit 1'

    result = _run(blazz_dump, scratch, migrate=[], migrate_cmd=command)

    migrate = result.stage("migrate")
    assert result.verdict == "fail" and migrate.status == "fail"
    assert migrate.message == "exited with status 1: SQLSTATE[42S01]"
    (step,) = migrate.steps
    assert step.exit_code == 1 and f"migrating {scratch} as dbaudit_t_rh" in step.output
    assert "with ***" in step.output  # the temporary account's password, masked
    assert [s.status for s in result.stages][4:] == ["skipped"] * 3


def test_a_hanging_command_is_killed_at_the_stage_time_limit(blazz_dump: Path, scratch: str) -> None:
    started = time.monotonic()

    result = _run(blazz_dump, scratch, migrate=[], migrate_cmd="echo started; sleep 60", stage_timeout=2)

    assert time.monotonic() - started < 30
    (step,) = result.stage("migrate").steps
    assert step.timed_out and step.output.strip() == "started"
    assert result.stage("migrate").message == "killed at the time limit of 2 s"


def test_a_hanging_statement_in_a_migration_file_is_killed_on_the_server_at_the_limit(
        blazz_dump: Path, scratch: str, tmp_path: Path) -> None:
    migration = tmp_path / "slow.sql"
    migration.write_text("CREATE TABLE t (id int);\nSELECT SLEEP(120);\nDROP TABLE t;\n", encoding="utf-8")
    started = time.monotonic()

    result = _run(blazz_dump, scratch, migrate=[migration], stage_timeout=2)

    assert time.monotonic() - started < 60
    (step,) = result.stage("migrate").steps
    assert step.timed_out and step.statements == 1
    assert result.stage("migrate").message == f"stopped at the time limit in the statement at {migration}:2"


def test_a_command_gets_the_scratch_database_as_laravel_reads_it_and_a_migration_file_derives_the_expectations(
        blazz_dump: Path, scratch: str, tmp_path: Path) -> None:
    # What `php artisan migrate` would do, in Python: read DB_*, connect, run the statements.
    script = tmp_path / "artisan.py"
    script.write_text(
        "import os, sys, pymysql\n"
        "conn = pymysql.connect(host=os.environ['DB_HOST'], port=int(os.environ['DB_PORT']),\n"
        "    user=os.environ['DB_USERNAME'], password=os.environ['DB_PASSWORD'], database=os.environ['DB_DATABASE'])\n"
        "assert 'DBAUDIT_PASSWORD' not in os.environ and os.environ['DB_CONNECTION'] == 'mysql'\n"
        "assert os.environ['DBAUDIT_SCRATCH_URL'].endswith('/' + os.environ['DB_DATABASE'])\n"
        "text = open(sys.argv[1]).read()\n"
        "with conn.cursor() as cur:\n"
        "    print('as', cur.execute('SELECT CURRENT_USER()') and cur.fetchone()[0])\n"
        "    for part in text.split(';\\n'):\n"
        "        if part.strip() and not all(l.startswith('--') for l in part.strip().splitlines()):\n"
        "            cur.execute(part)\n", encoding="utf-8")

    result = _run(blazz_dump, scratch, expect=MIGRATION, migrate=[], rollback=[],
                  migrate_cmd=f"{sys.executable} {script} {MIGRATION}", rollback_cmd=f"{sys.executable} {script} {ROLLBACK}")

    assert result.verdict == "pass", [c.message for c in result.failed_checks]
    assert result.stage("migrate").steps[0].output.startswith("as dbaudit_t_rh")
    assert result.derived_expectations and "required:" in result.derived_expectations
    assert result.audit is not None and result.audit.expectations == result.expectations


@pytest.mark.parametrize("escape", ["\\! touch {canary}", "system touch {canary}"])
def test_a_shell_escape_in_a_migration_file_never_runs_it_fails_the_stage(
        escape: str, blazz_dump: Path, scratch: str, tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    migration = tmp_path / "migration.sql"
    migration.write_text(f"CREATE TABLE t (id int);\n{escape.format(canary=canary)}\n", encoding="utf-8")

    result = _run(blazz_dump, scratch, migrate=[migration], expect=EXPECTATIONS)

    assert not canary.exists()  # the mariadb client would have run it
    assert result.stage("migrate").status == "fail" and "(1064)" in result.stage("migrate").message


def test_a_migration_written_for_the_source_database_with_a_definer_runs_on_the_scratch_database(
        blazz_dump: Path, scratch: str, tmp_path: Path) -> None:
    source = re.search(r"Database: (\S+)", blazz_dump.read_text(encoding="utf-8"))[1]  # type: ignore[index]
    migration = tmp_path / "migration.sql"
    migration.write_text(f"USE `{source}`;\n{MIGRATION.read_text()}\nDELIMITER ;;\n"
                         "CREATE DEFINER=`root`@`localhost` TRIGGER chats_unread BEFORE INSERT ON chats\n"
                         "FOR EACH ROW SET NEW.is_read = 0;;\nDELIMITER ;\n", encoding="utf-8")
    rollback = tmp_path / "rollback.sql"
    rollback.write_text(f"USE {source};\nDROP TRIGGER chats_unread;\n{ROLLBACK.read_text()}", encoding="utf-8")

    result = _run(blazz_dump, scratch, expect=None, migrate=[migration], rollback=[rollback])

    assert result.verdict == "pass", [c.message for c in result.failed_checks]
    assert result.audit is not None and any(c.kind == "trigger_added" for c in result.audit.changes)


@pytest.mark.parametrize("how", ["file", "command"])
def test_a_migration_cannot_touch_another_database_it_runs_as_the_temporary_account(
        how: str, blazz_dump: Path, scratch: str, mariadb_server: sa.Engine, tmp_path: Path) -> None:
    with scratch_mariadb_database(mariadb_server, "rhcanary") as canary:
        with mariadb_server.connect() as conn:
            conn.exec_driver_sql(f"CREATE TABLE `{canary}`.t (id int)")
            conn.exec_driver_sql(f"INSERT INTO `{canary}`.t VALUES (1)")
        attack = f"DELETE FROM `{canary}`.t;\nDROP TABLE `{canary}`.t;\n"
        migration = tmp_path / "migration.sql"
        migration.write_text(attack, encoding="utf-8")
        script = (f"{sys.executable} -c \"import os, pymysql; pymysql.connect(host=os.environ['DB_HOST'], "
                  f"port=int(os.environ['DB_PORT']), user=os.environ['DB_USERNAME'], "
                  f"password=os.environ['DB_PASSWORD']).cursor().execute('DROP TABLE {canary}.t')\"")
        options = {"migrate": [migration]} if how == "file" else {"migrate": [], "migrate_cmd": script}

        result = _run(blazz_dump, scratch, **options)

        assert result.stage("migrate").status == "fail"
        assert "(1142)" in result.stage("migrate").message or "1142" in result.stage("migrate").steps[0].output
        with mariadb_server.connect() as conn:
            assert conn.exec_driver_sql(f"SELECT id FROM `{canary}`.t").all() == [(1,)]


def test_keep_leaves_the_scratch_database_but_never_the_account(
        blazz_dump: Path, mariadb_server: sa.Engine, account_prefix: str) -> None:
    name = f"dbaudit_t_rh_{uuid.uuid4().hex[:8]}"
    try:
        result = _run(blazz_dump, name, keep=True)
        assert result.verdict == "pass" and result.kept
        with mariadb_server.connect() as conn:
            tables = {r[0] for r in conn.exec_driver_sql(f"SHOW TABLES FROM `{name}`")}
            accounts = conn.exec_driver_sql("SELECT COUNT(*) FROM mysql.user WHERE User LIKE %s",
                                            (account_prefix.replace("_", "\\_") + "%",)).scalar_one()
        assert "chats" in tables and "whatsapp_groups" not in tables and accounts == 0
    finally:
        with mariadb_server.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")


LEDGER_ROWS = ("INSERT INTO migrations (migration, batch) VALUES ('2025_10_22_000001_add_chat_provider_and_groups', 99), "
               "('2025_10_22_000002_add_chat_indexes', 99);\n")


@pytest.mark.parametrize("forgets_the_ledger", [False, True], ids=["ledger-rolled-back", "ledger-left-applied"])
def test_laravels_migrations_ledger_must_come_back_too(
        forgets_the_ledger: bool, blazz_dump: Path, scratch: str, tmp_path: Path) -> None:
    migration = tmp_path / "migration.sql"
    migration.write_text(MIGRATION.read_text() + LEDGER_ROWS, encoding="utf-8")
    then = "" if forgets_the_ledger else "DELETE FROM migrations WHERE batch = 99;\n"

    result = _run(blazz_dump, scratch, migrate=[migration], rollback=[_rollback_with(tmp_path, then=then)])

    assert result.stage("audit").status == "pass"
    failed = [c.name for c in result.stage("proof").checks if c.status == "fail"]
    if forgets_the_ledger:
        assert failed == ["migrations", "migration_applied 2025_10_22_000001_add_chat_provider_and_groups",
                          "migration_applied 2025_10_22_000002_add_chat_indexes"]
    else:
        assert result.verdict == "pass", [c.message for c in result.failed_checks]
        assert failed == []


def test_a_scratch_database_that_exists_is_refused_and_left_untouched(
        blazz_dump: Path, mariadb_server: sa.Engine, capsys: pytest.CaptureFixture[str]) -> None:
    with scratch_mariadb_database(mariadb_server, "rhtaken") as taken:
        with mariadb_server.connect() as conn:
            conn.exec_driver_sql(f"CREATE TABLE `{taken}`.canary (id int)")

        code = main(["rehearse", str(blazz_dump), "--server", MARIADB_URL, "--expect", str(EXPECTATIONS),
                     "--migrate", str(MIGRATION), "--rollback", str(ROLLBACK), "--scratch", taken])

        assert code == 2
        assert "already exists" in capsys.readouterr().err
        with mariadb_server.connect() as conn:
            assert conn.exec_driver_sql(f"SHOW TABLES FROM `{taken}`").all() == [("canary",)]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_during_the_migration_drops_the_scratch_database_and_its_account(
        signum: int, blazz_dump: Path, mariadb_server: sa.Engine, tmp_path: Path) -> None:
    name = f"dbaudit_t_rh_{uuid.uuid4().hex[:8]}"
    pidfile = tmp_path / "pid"
    proc = subprocess.Popen([sys.executable, "-m", "dbaudit", "rehearse", str(blazz_dump), "--server", MARIADB_URL,
                             "--expect", str(EXPECTATIONS), "--migrate-cmd", f"echo $$ > {pidfile}; exec sleep 60",
                             "--rollback", str(ROLLBACK),
                             "--scratch", name], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT / "lib")})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not pidfile.exists():  # until the migration command runs
            time.sleep(0.2)
        with mariadb_server.connect() as conn:  # on the scratch database, as its temporary account
            running = conn.exec_driver_sql("SELECT COUNT(*) FROM mysql.db WHERE Db = %s",
                                           (name.replace("_", "\\_"),)).scalar_one()
        assert running, "the rehearsal never reached the migrate stage"
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 128 + signum and ("interrupted" in err or "terminated" in err), err
        assert_nothing_left(mariadb_server, name)
        with pytest.raises(ProcessLookupError):  # the migration command went too
            os.kill(int(pidfile.read_text()), 0)
    finally:
        proc.kill()
        with mariadb_server.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")


def _account_exists(server: sa.Engine, user: str) -> bool:
    with server.connect() as conn:
        return bool(conn.exec_driver_sql("SELECT COUNT(*) FROM mysql.user WHERE User = %s", (user,)).scalar_one())


def _databases(server: sa.Engine) -> set[str]:
    with server.connect() as conn:
        return {r[0] for r in conn.exec_driver_sql("SHOW DATABASES")}


@pytest.mark.parametrize("then", ["rehearse", "restore-check"])
def test_after_kill_9_mid_migration_the_next_run_drops_the_scratch_database_and_account_and_nothing_unproven(
        then: str, blazz_dump: Path, mariadb_server: sa.Engine, tmp_path: Path, scratch: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    journal = tmp_path / "journal"
    monkeypatch.setenv(scratch_journal.JOURNAL_ENV, str(journal))  # this test's runs only
    # The CLI's accounts are named as restore-check's are: the next run must know that prefix as its own.
    monkeypatch.setattr(restore_account, "ACCOUNT_PREFIX", CLI_RESTORE_PREFIX)
    name, decoy_db = f"dbaudit_t_rh_{uuid.uuid4().hex[:8]}", f"dbaudit_t_rh_{uuid.uuid4().hex[:8]}"
    prefix = restore_account.REHEARSE_ACCOUNT_PREFIX  # the CLI's own (this test's in-process runs use another)
    decoy_user = f"{prefix}{uuid.uuid4().hex[:12]}"  # looks like one of rehearse's
    pidfile = tmp_path / "pid"
    proc = subprocess.Popen([sys.executable, "-m", "dbaudit", "rehearse", str(blazz_dump), "--server", MARIADB_URL,
                             "--expect", str(EXPECTATIONS), "--migrate-cmd", f"echo $$ > {pidfile}; exec sleep 120",
                             "--rollback", str(ROLLBACK), "--scratch", name],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT / "lib"), scratch_journal.JOURNAL_ENV: str(journal)})
    user = ""
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not pidfile.exists():  # until the migration command runs
            time.sleep(0.2)
        assert pidfile.exists(), "the rehearsal never reached the migrate stage"
        [entry] = [json.loads(p.read_text()) for p in journal.glob("*.json")]
        user = str(entry["account_user"])
        # named as restore-check's account was, the CLI's own prefix (not this test's in-process one)
        assert entry["scratch"] == name and user.startswith(CLI_RESTORE_PREFIX)
        assert entry["purpose"] == "rehearse" and "password" not in json.dumps(entry).lower()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        os.kill(int(pidfile.read_text()), signal.SIGKILL)  # the orphaned migration command
        assert name in _databases(mariadb_server) and _account_exists(mariadb_server, user)  # nothing cleaned up
        # Someone else's database and account, with names like a dead run's and a forged entry naming them, but no
        # proof on the server (no such comment, another password hash): never dropped.
        with mariadb_server.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE `{decoy_db}` COMMENT 'dbaudit restore-check precious'")
            conn.exec_driver_sql("CREATE USER %s@%s IDENTIFIED BY %s", (decoy_user, entry["account_host"], "Decoy-1a"))
        forged = {**entry, "run": "0" * 16, "account_user": decoy_user, "scratch": decoy_db,
                  "scratch_marker": "dbaudit restore-check " + "0" * 32}
        (journal / f"{'0' * 16}.json").write_text(json.dumps(forged), encoding="utf-8")
        (journal / f"{'0' * 16}.lock").touch()

        if then == "rehearse":
            result = _run(blazz_dump, scratch)
            assert result.verdict == "pass", [c.message for c in result.failed_checks]
            [earlier] = [c.message for c in result.stage("restore").checks if c.name == "earlier runs"]
            lines = earlier.split(": ", 1)[1].split("; ")
        else:
            lines = restore.restore_check(blazz_dump, MARIADB_URL, scratch=scratch).leftovers

        assert name not in _databases(mariadb_server) and not _account_exists(mariadb_server, user)
        assert any(name in line and line.startswith("dropped") for line in lines), lines
        assert any(user in line and "dropped" in line for line in lines), lines
        assert decoy_db in _databases(mariadb_server) and _account_exists(mariadb_server, decoy_user)
        assert any(line.startswith(f"left database {decoy_db}") for line in lines), lines
        assert any(line.startswith(f"left account '{decoy_user}'") for line in lines), lines
        assert [p.name for p in journal.glob("*.json")] == [f"{'0' * 16}.json"]  # only the unproven entry stays
    finally:
        proc.kill()
        with mariadb_server.connect() as conn:
            for db in (name, decoy_db):
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{db}`")
            for account in (user, decoy_user):
                if account:
                    conn.exec_driver_sql("DROP USER IF EXISTS %s@%s", (account, "localhost"))
                    conn.exec_driver_sql("DROP USER IF EXISTS %s@%s", (account, "127.0.0.1"))


def test_the_cli_writes_json_and_junit_with_a_testcase_per_stage_and_check(
        blazz_dump: Path, scratch: str, tmp_path: Path) -> None:
    rollback = _rollback_with(tmp_path, without="DROP INDEX idx_chats_contact_chat ON chats;\n")
    code = main(["rehearse", str(blazz_dump), "--server", MARIADB_URL, "--expect", str(EXPECTATIONS), "--migrate",
                 str(MIGRATION), "--rollback", str(rollback), "--scratch", scratch, "--json", str(tmp_path / "r.json"),
                 "--junit", str(tmp_path / "r.xml")])

    assert code == 1
    result = load_rehearsal(tmp_path / "r.json")
    cases = ET.parse(tmp_path / "r.xml").getroot().iter("testcase")
    names = {(c.get("classname"), c.get("name")): c.find("failure") is not None for c in cases}
    assert {("dbaudit.stage", s) for s in STAGES} <= set(names)
    assert names[("dbaudit.stage", "proof")] and names[("dbaudit.proof.table", "chats")]
    assert not names[("dbaudit.stage", "audit")]
    assert len(names) == len(result.checks)
    root = ET.parse(tmp_path / "r.xml").getroot()
    timed = {c.get("name"): float(c.get("time") or 0) for c in root.iter("testcase") if c.get("classname") == "dbaudit.stage"}
    assert timed["restore"] == pytest.approx(result.stage("restore").seconds, abs=0.001) and timed["restore"] > 0
    assert float(root.get("time") or 0) == pytest.approx(sum(s.seconds for s in result.stages), abs=0.01)


# --- a real application's schema: sakila, with views, triggers, routines and a FULLTEXT table -----------------

SAKILA_MIGRATION = """\
ALTER TABLE customer ADD COLUMN loyalty_tier enum('bronze','silver','gold') NULL AFTER active,
    ADD INDEX idx_customer_loyalty (store_id, loyalty_tier);
CREATE TABLE loyalty_event (
    id int unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY,
    customer_id smallint unsigned NOT NULL,
    points int NOT NULL DEFAULT 0,
    created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT fk_loyalty_event_customer FOREIGN KEY (customer_id) REFERENCES customer (customer_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE INDEX idx_rental_customer_date ON rental (customer_id, rental_date);
CREATE VIEW customer_loyalty AS SELECT customer_id, loyalty_tier FROM customer;
"""
# A data step: customer.last_update is ON UPDATE CURRENT_TIMESTAMP, so no rollback brings the rows back as they were.
BACKFILL = "UPDATE customer SET loyalty_tier = 'gold' WHERE customer_id <= 10;\n"
SAKILA_ROLLBACK = """\
DROP VIEW customer_loyalty;
DROP INDEX idx_rental_customer_date ON rental;
DROP TABLE loyalty_event;
ALTER TABLE customer DROP INDEX idx_customer_loyalty, DROP COLUMN loyalty_tier;
"""


@pytest.fixture(scope="module")
def sakila_dump(mariadb_server: sa.Engine, mariadb_client: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import SHARED_DATA, unavailable

    if not SHARED_DATA.is_dir():
        unavailable(f"{SHARED_DATA} is absent")
    script = "".join((SHARED_DATA / "sakila" / f).read_text(encoding="utf-8")
                     for f in ("sakila-mv-schema.sql", "sakila-mv-data.sql"))
    script = re.sub(r"^(DROP SCHEMA IF EXISTS|CREATE SCHEMA|USE) sakila;\s*$", "", script, flags=re.M)
    with scratch_mariadb_database(mariadb_server, "rhsak") as name:
        load_sql(mariadb_client, name, script.replace("sakila.", ""))
        return dump_database(name, tmp_path_factory.mktemp("sakila") / "sakila.sql")


@pytest.mark.parametrize(("mistake", "failed"), [
    ("", []),
    ("rollback-leaves-the-view", ["view customer_loyalty added"]),
    ("backfill-touches-last_update", ["content of customer changed in 1 chunk(s): customer_id -511..511; rows that "
                                      "differ from the backup: "
                                      + ", ".join(f"customer_id={i} changed" for i in range(1, 11))]),
], ids=["rollback", "rollback-leaves-the-view", "backfill-touches-last_update"])
def test_sakila_with_its_views_triggers_and_routines_rehearses_a_migration_of_its_own(
        mistake: str, failed: list[str], sakila_dump: Path, scratch: str, tmp_path: Path) -> None:
    migration, rollback = tmp_path / "migration.sql", tmp_path / "rollback.sql"
    migration.write_text(SAKILA_MIGRATION + (BACKFILL if mistake == "backfill-touches-last_update" else ""),
                         encoding="utf-8")
    rollback.write_text(SAKILA_ROLLBACK.replace("DROP VIEW customer_loyalty;\n", "")
                        if mistake == "rollback-leaves-the-view" else SAKILA_ROLLBACK, encoding="utf-8")

    result = rehearse(sakila_dump, MARIADB_URL, migrate=[migration], rollback=[rollback], scratch=scratch)

    assert result.stage("audit").status == "pass", [c.message for c in result.stage("audit").checks
                                                     if c.status == "fail"]
    assert [c.message for c in result.stage("proof").checks if c.status == "fail"] == failed
    assert result.verdict == ("fail" if failed else "pass")
    assert len([c for c in result.stage("proof").checks if c.category == "table"]) == 16
