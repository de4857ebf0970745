"""rehearse on the real PostgreSQL: a blazz-like schema (tests/sql/blazz_schema.pgsql.sql) with the demo's sample
rows, dumped with pg_dump, the Web.js migration (webjs_migration.pgsql.sql) and its rollback, and rollbacks and
migrations that go wrong in the ways the issue names. After every test, no scratch database and no temporary role
of its own may be left (pg_database and pg_roles, by this test's own prefixes)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import jsonschema
import pytest
import sqlalchemy as sa
from formats_samples import pg_dump

from conftest import POSTGRES_URL, ROOT, SQL_DIR, ScratchDB
from dbaudit.backups import pgrestore, scratch_journal
from dbaudit.backups.rehearse import STAGES, Rehearsal, load_rehearsal, rehearse
from dbaudit.backups.rehearse_steps import split_psql
from dbaudit.cli import main
from dbaudit.core import serde
from dbaudit.core.errors import DbauditError
from dbaudit.demo.sample_data import TABLE_ORDER, sample_rows

EXPECTATIONS = SQL_DIR / "blazz-webjs.pgsql.yml"
SCHEMA = SQL_DIR / "blazz_schema.pgsql.sql"
MIGRATION = SQL_DIR / "webjs_migration.pgsql.sql"
ROLLBACK = SQL_DIR / "webjs_rollback.pgsql.sql"
SCHEMAS = ROOT / "lib" / "dbaudit" / "schemas"


@pytest.fixture(scope="module")
def blazz_source(postgres_server: sa.Engine) -> Iterator[str]:
    """The blazz schema with the demo's sample rows in a database of its own, for the module."""
    name = f"dbaudit_t_rhpgsrc_{uuid.uuid4().hex[:8]}"
    with postgres_server.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        engine = sa.create_engine(f"{POSTGRES_URL}/{name}", poolclass=sa.pool.NullPool)
        rows = sample_rows()
        with engine.begin() as conn:
            conn.exec_driver_sql(SCHEMA.read_text(encoding="utf-8"))
            for table in TABLE_ORDER:
                if rows.get(table):
                    conn.execute(sa.table(table, *[sa.column(c) for c in rows[table][0]]).insert(), rows[table])
        engine.dispose()
        yield name
    finally:
        with postgres_server.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def dumps(blazz_source: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("rehearse_pg")
    return {"plain": pg_dump(blazz_source, folder / "blazz.sql"),
            "custom": pg_dump(blazz_source, folder / "blazz.dump", "-Fc"),
            "directory": pg_dump(blazz_source, folder / "blazz.dir", "-Fd")}


@pytest.fixture
def blazz_dump(dumps: dict[str, Path]) -> Path:
    return dumps["plain"]


@pytest.fixture(autouse=True)
def journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A journal of this test's own: a dead run's entry it finds is its own."""
    folder = tmp_path / "journal"
    monkeypatch.setenv(scratch_journal.JOURNAL_ENV, str(folder))
    return folder


@pytest.fixture(autouse=True)
def role_prefix(monkeypatch: pytest.MonkeyPatch, postgres_server: sa.Engine) -> Iterator[str]:
    """The temporary roles of this test alone, so "none left" cannot be confused by another test's. Every test:
    none of them is left, and so no database either (a role that owns one cannot be dropped: it would be left)."""
    prefix = f"dbaudit_t_rhpg{uuid.uuid4().hex[:6]}_"
    monkeypatch.setattr(pgrestore, "PREFIX", prefix)  # restore-check's role, which the rehearsal takes over
    yield prefix
    with postgres_server.connect() as conn:
        owned = conn.execute(sa.text("SELECT 'database ' || d.datname FROM pg_database d JOIN pg_roles r "
                                     "ON r.oid = d.datdba WHERE starts_with(r.rolname, :p)"), {"p": prefix}).scalars().all()
    left = [*owned, *leftovers(postgres_server, "-", prefix)]
    _drop(postgres_server, left)
    assert left == [], f"the rehearsal left {left}"


def leftovers(server: sa.Engine, scratch: str, prefix: str) -> list[str]:
    with server.connect() as conn:
        databases = conn.execute(sa.text("SELECT datname FROM pg_database WHERE starts_with(datname, :s)"),
                                 {"s": scratch}).scalars().all()
        roles = conn.execute(sa.text("SELECT rolname FROM pg_roles WHERE starts_with(rolname, :p)"),
                             {"p": prefix}).scalars().all()
    return [f"database {d}" for d in databases] + [f"role {r}" for r in roles]


def _drop(server: sa.Engine, found: list[str]) -> None:
    with server.connect() as conn:
        for item in sorted(found):  # databases before roles
            kind, name = item.split(" ", 1)
            conn.exec_driver_sql(f'DROP {kind.upper()} IF EXISTS "{name}"{" WITH (FORCE)" if kind == "database" else ""}')


@pytest.fixture
def scratch(postgres_server: sa.Engine, role_prefix: str) -> Iterator[str]:
    """A scratch name; after the test, it and its reference restore must be gone, and every role of the test."""
    name = f"dbaudit_t_rhpg_{uuid.uuid4().hex[:8]}"
    try:
        yield name
        left = leftovers(postgres_server, name, role_prefix)
        assert left == [], f"the rehearsal left {left}"
    finally:
        _drop(postgres_server, leftovers(postgres_server, name, role_prefix))


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
    started = time.monotonic()
    result = rehearse(dump, POSTGRES_URL, scratch=scratch,  # type: ignore[arg-type]
                      log=lambda step: print(f"{time.monotonic() - started:6.1f} s  {step}"), **options)
    print(f"{time.monotonic() - started:6.1f} s  done")  # shown when a test fails: where the time went
    return result


def _failed(result: Rehearsal, stage: str) -> list[str]:
    return [c.message for c in result.stage(stage).checks if c.status == "fail"]


def _role_of(result: Rehearsal) -> str:
    load = next(c for c in result.stage("restore").checks if c.name == "load")
    return load.message.rsplit(" ", 1)[1]


# --- splitting a migration file as psql would (no server) --------------------------------------------------


def test_a_migration_file_splits_as_psql_would_with_the_line_of_each_statement() -> None:
    text = ("\ufeff-- up\nCREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$;\n"
            "INSERT INTO t VALUES ('a;b', E'it\\'s');\n/* a ; in a comment */\n"
            "SET standard_conforming_strings = off;\nINSERT INTO t VALUES ('back\\'slash');\n"
            "SELECT 1")

    statements = split_psql(text, "m.sql")

    assert [line for line, _ in statements] == [2, 3, 5, 6, 7]
    assert statements[0][1].startswith("CREATE FUNCTION") and statements[0][1].endswith("$$;")
    assert statements[1][1] == "INSERT INTO t VALUES ('a;b', E'it\\'s');"
    assert statements[3][1] == "INSERT INTO t VALUES ('back\\'slash');"  # read with backslash escapes, as psql
    assert statements[4][1] == "SELECT 1"  # psql sends the last statement without its ; too


@pytest.mark.parametrize(("text", "refusal"), [
    ("SELECT 1;\n\\! rm -rf /\n", "m.sql:2: a psql meta-command (\\! rm -rf /)"),
    ("SELECT 1;\n\\i other.sql\n", "m.sql:2: a psql meta-command (\\i other.sql)"),
    ("SELECT :'password';\n", "m.sql:1: a psql variable (:'password')"),
    ("COPY t FROM stdin;\n1\n\\.\n", "m.sql:1: COPY … FROM stdin with data lines is psql's to feed"),
    ("SELECT 'unterminated;\n", "the file ends inside a quoted string"),
], ids=["shell-escape", "include", "variable", "copy-data", "open-string"])
def test_what_psql_itself_would_do_in_a_migration_file_is_refused(text: str, refusal: str) -> None:
    with pytest.raises(DbauditError) as caught:
        split_psql(text, "m.sql")
    assert refusal in str(caught.value)


# --- the rehearsal's verdicts --------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["plain", "custom", "directory"])
def test_a_good_rollback_passes_every_stage_from_every_pg_dump_format(
        form: str, dumps: dict[str, Path], scratch: str, role_prefix: str, tmp_path: Path) -> None:
    result = _run(dumps[form], scratch)

    assert result.verdict == "pass", [c.message for c in result.failed_checks]
    assert [s.name for s in result.stages] == list(STAGES) and {s.status for s in result.stages} == {"pass"}
    assert result.product == "PostgreSQL" and result.audit is not None and result.audit.verdict == "pass"
    assert result.proof == [] and not result.kept and result.drop_hint == ""
    assert _role_of(result).startswith(role_prefix)  # restored, migrated and read as the temporary role
    proof = result.stage("proof").checks
    assert {c.name for c in proof if c.category == "table"} >= {"chats", "contacts", "whatsapp_sessions"}
    assert result.stage("migrate").steps[0].statements == 16 and result.stage("rollback").steps[0].statements == 12
    document = json.loads(serde.dumps(result))
    jsonschema.validate(document, json.loads((SCHEMAS / "rehearsal.schema.json").read_text()))
    result.save(tmp_path / "r.json")
    assert load_rehearsal(tmp_path / "r.json").stage("proof").status == "pass"


def test_a_rollback_that_forgets_an_index_fails_the_proof_naming_it(
        blazz_dump: Path, scratch: str, tmp_path: Path) -> None:
    rollback = _rollback_with(tmp_path, without="DROP INDEX idx_chats_contact_chat;\n")

    result = _run(blazz_dump, scratch, rollback=[rollback])

    assert result.verdict == "fail"
    assert result.stage("audit").status == "pass" and result.stage("rollback").status == "pass"
    assert _failed(result, "proof") == ["index chats.idx_chats_contact_chat added"]
    assert [(r.kind, r.target) for r in result.proof] == [("index_added", "chats.idx_chats_contact_chat")]


@pytest.mark.parametrize(("mistake", "table", "named"), [
    # Dropped and added again: the column comes back empty (and last), its content lost.
    ("ALTER TABLE chats DROP COLUMN wam_id;\nALTER TABLE chats ADD COLUMN wam_id varchar(128) NULL;\n"
     "CREATE INDEX chats_wam_id_index ON chats (wam_id);\n", "chats", ["content of chats changed", " changed"]),
    # contacts is one chunk: its key range says nothing, the live compare names the row.
    ("UPDATE contacts SET first_name = 'Rolled' WHERE id = 17;\n", "contacts", ["content of contacts changed",
                                                                                 "id=17 changed"]),
], ids=["drops-and-re-adds-a-column", "changes-a-row"])
def test_a_rollback_that_loses_data_fails_the_proof_naming_the_table(
        mistake: str, table: str, named: list[str], blazz_dump: Path, scratch: str, tmp_path: Path) -> None:
    result = _run(blazz_dump, scratch, rollback=[_rollback_with(tmp_path, then=mistake)])

    assert result.verdict == "fail" and result.stage("rollback").status == "pass"
    assert [c.name for c in result.stage("proof").checks if c.status == "fail"] == [table]
    (message,) = _failed(result, "proof")
    assert all(part in message for part in named), message


def test_a_migration_command_that_exits_1_fails_the_migrate_stage_with_its_output_masked(
        blazz_dump: Path, scratch: str, role_prefix: str) -> None:
    command = ('echo "migrating $DB_DATABASE on $DB_CONNECTION as $DB_USERNAME with $DB_PASSWORD"; '
               'echo "SQLSTATE[42P07]: Duplicate table" >&2; exit 1')

    result = _run(blazz_dump, scratch, migrate=[], migrate_cmd=command)

    migrate = result.stage("migrate")
    assert result.verdict == "fail" and migrate.status == "fail"
    assert migrate.message == "exited with status 1: SQLSTATE[42P07]: Duplicate table"
    (step,) = migrate.steps
    assert step.exit_code == 1 and f"migrating {scratch} on pgsql as {role_prefix}" in step.output
    assert "with ***" in step.output  # the role's password, masked
    assert [s.status for s in result.stages][4:] == ["skipped"] * 3


def test_a_hanging_command_is_killed_at_the_stage_time_limit(blazz_dump: Path, scratch: str) -> None:
    started = time.monotonic()

    result = _run(blazz_dump, scratch, migrate=[], migrate_cmd="echo started; sleep 60", stage_timeout=2)

    assert time.monotonic() - started < 30
    (step,) = result.stage("migrate").steps
    assert step.timed_out and step.output.strip() == "started"
    assert result.stage("migrate").message == "killed at the time limit of 2 s"


def test_a_hanging_statement_in_a_migration_file_is_ended_on_the_server_at_the_limit(
        blazz_dump: Path, scratch: str, tmp_path: Path) -> None:
    migration = tmp_path / "slow.sql"
    # The statement lifts its own statement_timeout first: the limit must not depend on it.
    migration.write_text("CREATE TABLE t (id int);\nSET statement_timeout = 0;\nSELECT pg_sleep(120);\nDROP TABLE t;\n",
                         encoding="utf-8")
    started = time.monotonic()

    result = _run(blazz_dump, scratch, migrate=[migration], stage_timeout=2)

    assert time.monotonic() - started < 60
    (step,) = result.stage("migrate").steps
    assert step.timed_out and step.statements == 2
    assert result.stage("migrate").message == f"stopped at the time limit in the statement at {migration}:3"


def test_a_failing_statement_fails_the_stage_with_its_file_line_and_the_servers_words(
        blazz_dump: Path, scratch: str, tmp_path: Path) -> None:
    migration = tmp_path / "migration.sql"
    migration.write_text("-- adds a column twice\nALTER TABLE chats ADD COLUMN provider_type varchar(20);\n"
                         "ALTER TABLE chats\n    ADD COLUMN provider_type varchar(20);\n", encoding="utf-8")

    result = _run(blazz_dump, scratch, migrate=[migration])

    assert result.stage("migrate").status == "fail"
    assert result.stage("migrate").message == (f"{migration}:3: column \"provider_type\" of relation \"chats\" "
                                                "already exists")


def test_a_file_that_ends_inside_a_transaction_fails_rather_than_lose_its_changes_silently(
        blazz_dump: Path, scratch: str, tmp_path: Path) -> None:
    migration = tmp_path / "migration.sql"
    migration.write_text(f"BEGIN;\n{MIGRATION.read_text(encoding='utf-8')}", encoding="utf-8")

    result = _run(blazz_dump, scratch, migrate=[migration])

    assert result.stage("migrate").status == "fail"
    assert "ends inside a transaction (BEGIN without COMMIT)" in result.stage("migrate").message


FUNCTIONS_MIGRATION = """\
BEGIN;
CREATE FUNCTION chats_touch() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
  -- a ; and a quote ' inside a body: split as psql splits, this is one statement
  NEW.updated_at := now();
  RETURN NEW;
END
$body$;
CREATE TRIGGER chats_touch BEFORE UPDATE ON chats FOR EACH ROW EXECUTE FUNCTION chats_touch();
CREATE FUNCTION unread(ws integer) RETURNS bigint LANGUAGE sql
BEGIN ATOMIC
  SELECT count(*) FROM chats WHERE workspace_id = ws AND is_read = 0;
END;
CREATE VIEW unread_chats AS SELECT workspace_id, unread(workspace_id) AS n FROM chats GROUP BY workspace_id;
COMMIT;
CREATE INDEX CONCURRENTLY idx_chats_unread ON chats (workspace_id) WHERE is_read = 0
"""
FUNCTIONS_ROLLBACK = """\
DROP INDEX CONCURRENTLY idx_chats_unread;
DROP VIEW unread_chats;
DROP FUNCTION unread(integer);
DROP TRIGGER chats_touch ON chats;
DROP FUNCTION chats_touch();
"""


@pytest.mark.parametrize(("rollback", "failed"), [
    (FUNCTIONS_ROLLBACK, []),
    (FUNCTIONS_ROLLBACK.replace("DROP VIEW unread_chats;\n", "").replace("DROP FUNCTION unread(integer);\n", ""),
     ["view unread_chats added"]),
], ids=["rollback", "rollback-leaves-the-view"])
def test_functions_triggers_views_and_concurrent_indexes_split_as_psql_would_and_their_rollback_is_proven(
        rollback: str, failed: list[str], blazz_dump: Path, scratch: str, tmp_path: Path) -> None:
    migration, down = tmp_path / "migration.sql", tmp_path / "rollback.sql"
    migration.write_text(FUNCTIONS_MIGRATION, encoding="utf-8")
    down.write_text(rollback, encoding="utf-8")

    result = rehearse(blazz_dump, POSTGRES_URL, migrate=[migration], rollback=[down], scratch=scratch)

    assert result.stage("migrate").status == "pass", result.stage("migrate").message
    assert result.stage("migrate").steps[0].statements == 7  # the last one without its ; at the end of the file
    assert result.stage("audit").status == "pass", [c.message for c in result.stage("audit").checks
                                                     if c.status == "fail"]
    assert [c.message for c in result.stage("proof").checks if c.status == "fail"][:1] == failed
    assert result.verdict == ("fail" if failed else "pass")


# --- what the temporary role can and cannot do -------------------------------------------------------------


@pytest.mark.parametrize("escape", ["\\! touch {canary}", "\\copy chats to program 'touch {canary}'",
                                    "\\o |touch {canary}", "SELECT :'canary';"])
def test_a_psql_meta_command_in_a_migration_file_refuses_it_before_anything_runs(
        escape: str, blazz_dump: Path, postgres_server: sa.Engine, role_prefix: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    canary = tmp_path / "canary"
    migration = tmp_path / "migration.sql"
    migration.write_text(f"CREATE TABLE t (id int);\n{escape.format(canary=canary)}\n", encoding="utf-8")
    name = f"dbaudit_t_rhpg_{uuid.uuid4().hex[:8]}"

    code = main(["rehearse", str(blazz_dump), "--server", POSTGRES_URL, "--expect", str(EXPECTATIONS), "--migrate",
                 str(migration), "--rollback", str(ROLLBACK), "--scratch", name])

    err = capsys.readouterr().err
    assert code == 2 and f"{migration}:2: a psql " in err and "never to psql" in err, err
    assert not canary.exists()  # psql would have run it
    assert leftovers(postgres_server, name, role_prefix) == []  # nothing was restored, nothing created


@pytest.mark.parametrize("how", ["file", "command"])
def test_a_migration_cannot_touch_another_database(how: str, blazz_dump: Path, scratch: str,
                                                   make_postgres: object, tmp_path: Path) -> None:
    other: ScratchDB = make_postgres()  # type: ignore[operator]
    other.run_sql("CREATE TABLE canary (id int)", "INSERT INTO canary VALUES (1)")
    other_name = other.url.rsplit("/", 1)[1]
    migration = tmp_path / "migration.sql"
    migration.write_text(f"DELETE FROM {other_name}.public.canary;\n", encoding="utf-8")
    script = tmp_path / "attack.py"
    script.write_text(
        "import os, psycopg\n"
        f"conn = psycopg.connect(host=os.environ['DB_HOST'], port=os.environ['DB_PORT'], dbname='{other_name}',\n"
        "    user=os.environ['DB_USERNAME'], password=os.environ['DB_PASSWORD'], autocommit=True)\n"
        "conn.execute('DROP TABLE public.canary')\n", encoding="utf-8")
    options = {"migrate": [migration]} if how == "file" else {"migrate": [], "migrate_cmd": f"{sys.executable} {script}"}

    result = _run(blazz_dump, scratch, **options)

    migrate = result.stage("migrate")
    assert migrate.status == "fail"
    said = migrate.message + migrate.steps[0].output
    assert "cross-database references are not implemented" in said or "must be owner of table canary" in said, said
    with other.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT id FROM canary").all() == [(1,)]


@pytest.mark.parametrize(("statement", "refused"), [
    ("RESET ROLE;\nCREATE ROLE dbaudit_t_rhpg_escape LOGIN;\n", "permission denied to create role"),
    ("SET ROLE postgres;\n", "permission denied to set role"),
    ("ALTER SYSTEM SET work_mem = '1GB';\n", 'permission denied to set parameter "work_mem"'),
    ("COPY chats TO PROGRAM 'true';\n", "pg_execute_server_program"),
    ("CREATE DATABASE dbaudit_t_rhpg_escape;\n", "permission denied to create database"),
], ids=["reset-role", "set-role", "alter-system", "copy-program", "create-database"])
def test_the_migration_runs_as_the_role_without_the_operators_rights(
        statement: str, refused: str, blazz_dump: Path, scratch: str, tmp_path: Path) -> None:
    migration = tmp_path / "migration.sql"
    migration.write_text(statement, encoding="utf-8")

    result = _run(blazz_dump, scratch, migrate=[migration])

    assert result.stage("migrate").status == "fail"
    assert refused in result.stage("migrate").message, result.stage("migrate").message


def test_a_command_gets_the_scratch_database_as_laravel_reads_it_and_a_migration_file_derives_the_expectations(
        blazz_dump: Path, scratch: str, role_prefix: str, tmp_path: Path) -> None:
    # What `php artisan migrate` would do on a pgsql connection, in Python: read DB_*, connect, run the statements.
    script = tmp_path / "artisan.py"
    script.write_text(
        "import os, sys, psycopg\n"
        "assert os.environ['DB_CONNECTION'] == 'pgsql' and 'DBAUDIT_PASSWORD' not in os.environ\n"
        "assert os.environ['DBAUDIT_SCRATCH_URL'].endswith('/' + os.environ['DB_DATABASE'])\n"
        "conn = psycopg.connect(host=os.environ['DB_HOST'], port=os.environ['DB_PORT'], dbname=os.environ['DB_DATABASE'],\n"
        "    user=os.environ['DB_USERNAME'], password=os.environ['DB_PASSWORD'], autocommit=True)\n"
        "print('as', conn.execute('SELECT current_user').fetchone()[0])\n"
        "conn.execute(open(sys.argv[1]).read())\n", encoding="utf-8")

    result = _run(blazz_dump, scratch, expect=MIGRATION, migrate=[], rollback=[],
                  migrate_cmd=f"{sys.executable} {script} {MIGRATION}", rollback_cmd=f"{sys.executable} {script} {ROLLBACK}")

    assert result.verdict == "pass", [c.message for c in result.failed_checks]
    assert result.stage("migrate").steps[0].output.startswith(f"as {role_prefix}")
    assert result.derived_expectations and "required:" in result.derived_expectations


def test_an_operator_with_createrole_and_createdb_rehearses_without_being_superuser(
        blazz_dump: Path, scratch: str, postgres_server: sa.Engine) -> None:
    operator = f"dbaudit_t_operator_{uuid.uuid4().hex[:8]}"
    with postgres_server.connect() as conn:
        conn.exec_driver_sql(f'CREATE ROLE "{operator}" LOGIN CREATEROLE CREATEDB')
    try:
        url = sa.engine.make_url(POSTGRES_URL).set(username=operator).render_as_string(hide_password=False)

        result = rehearse(blazz_dump, url, scratch=scratch, expect=EXPECTATIONS, migrate=[MIGRATION],
                          rollback=[ROLLBACK])

        assert result.verdict == "pass", [c.message for c in result.failed_checks]
    finally:
        with postgres_server.connect() as conn:
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{operator}"')


# --- the scratch database: refused when taken, kept on demand, always cleaned up --------------------------------


def test_a_scratch_database_that_exists_is_refused_and_left_untouched(
        blazz_dump: Path, make_postgres: object, capsys: pytest.CaptureFixture[str]) -> None:
    taken: ScratchDB = make_postgres()  # type: ignore[operator]
    taken.run_sql("CREATE TABLE canary (id int)")

    code = main(["rehearse", str(blazz_dump), "--server", POSTGRES_URL, "--expect", str(EXPECTATIONS),
                 "--migrate", str(MIGRATION), "--rollback", str(ROLLBACK), "--scratch", taken.url.rsplit("/", 1)[1]])

    assert code == 2
    assert "already exists" in capsys.readouterr().err
    with taken.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").all() == [("canary",)]


def test_bad_input_is_refused_in_one_line(blazz_dump: Path, tmp_path: Path) -> None:
    mysql_dump = tmp_path / "mysql.sql"
    mysql_dump.write_text("-- MariaDB dump 10.19\nCREATE TABLE t (id int);\n", encoding="utf-8")
    with pytest.raises(DbauditError, match="not a pg_dump"):
        _run(mysql_dump, "dbaudit_t_rhpg_never")
    with pytest.raises(DbauditError, match="is a pg_dump: rehearse it on a PostgreSQL server"):
        rehearse(blazz_dump, "mysql+pymysql://root@127.0.0.1:3306", expect=EXPECTATIONS, migrate=[MIGRATION],
                 rollback=[ROLLBACK], scratch="dbaudit_t_rhpg_never")
    with pytest.raises(DbauditError, match="scratch database name"):
        _run(blazz_dump, "template1")


def test_keep_leaves_the_database_and_its_role_locked_and_says_how_to_drop_them(
        blazz_dump: Path, postgres_server: sa.Engine, role_prefix: str, capsys: pytest.CaptureFixture[str]) -> None:
    name = f"dbaudit_t_rhpg_{uuid.uuid4().hex[:8]}"
    try:
        code = main(["rehearse", str(blazz_dump), "--server", POSTGRES_URL, "--expect", str(EXPECTATIONS),
                     "--migrate", str(MIGRATION), "--rollback", str(ROLLBACK), "--scratch", name, "--keep"])
        out = capsys.readouterr().out
        assert code == 0, out
        [role] = [r.split()[1] for r in leftovers(postgres_server, name, role_prefix) if r.startswith("role")]
        hint = f'DROP DATABASE "{name}" WITH (FORCE); DROP ROLE "{role}";'
        assert f"scratch database {name} kept; drop it with: {hint}" in out
        with postgres_server.connect() as conn:
            can_login = conn.execute(sa.text("SELECT rolcanlogin FROM pg_roles WHERE rolname = :r"), {"r": role}).scalar()
            owner = conn.execute(sa.text("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = :d"),
                                 {"d": name}).scalar()
        assert can_login is False and owner == role
        with postgres_server.connect() as conn:  # the hint, as given, drops them
            for statement in hint.split("; "):
                conn.exec_driver_sql(statement.rstrip(";"))
        assert leftovers(postgres_server, name, role_prefix) == []
    finally:
        _drop(postgres_server, leftovers(postgres_server, name, role_prefix))


def _start(dump: Path, name: str, prefix: str, journal: Path, pidfile: Path,
           migrate: Path | None = None) -> subprocess.Popen[str]:
    code = ("import sys; from dbaudit.backups import pgrestore; from dbaudit.cli import main; "
            f"pgrestore.PREFIX = {prefix!r}; sys.exit(main(sys.argv[1:]))")
    step = ["--migrate", str(migrate)] if migrate else ["--migrate-cmd", f"echo $$ > {pidfile}; exec sleep 60"]
    return subprocess.Popen([sys.executable, "-c", code, "rehearse", str(dump), "--server", POSTGRES_URL,
                             "--expect", str(EXPECTATIONS), *step, "--rollback", str(ROLLBACK), "--scratch", name],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT / "lib"), scratch_journal.JOURNAL_ENV: str(journal)})


def _wait_for_migration(proc: subprocess.Popen[str], pidfile: Path) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not pidfile.exists():
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    time.sleep(0.2)
    return int(pidfile.read_text())


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_during_the_migration_drops_the_scratch_database_and_its_role(
        signum: int, blazz_dump: Path, postgres_server: sa.Engine, scratch: str, role_prefix: str, journal: Path,
        tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    proc = _start(blazz_dump, scratch, role_prefix, journal, pidfile)
    try:
        command = _wait_for_migration(proc, pidfile)
        assert {r.split()[0] for r in leftovers(postgres_server, scratch, role_prefix)} == {"database", "role"}

        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)

        assert proc.returncode == 128 + signum and ("interrupted" in err or "terminated" in err), err
        assert leftovers(postgres_server, scratch, role_prefix) == []
        assert list(journal.glob("*.json")) == []
        with pytest.raises(ProcessLookupError):  # the migration command went too
            os.kill(command, 0)
    finally:
        proc.kill()
        proc.wait()


def test_sigterm_during_a_statement_of_a_migration_file_ends_it_and_drops_everything(
        blazz_dump: Path, postgres_server: sa.Engine, scratch: str, role_prefix: str, journal: Path,
        tmp_path: Path) -> None:
    migration = tmp_path / "slow.sql"
    migration.write_text("SET statement_timeout = 0;\nSELECT pg_sleep(120);\n", encoding="utf-8")
    proc = _start(blazz_dump, scratch, role_prefix, journal, tmp_path / "pid", migrate=migration)
    try:
        for _ in range(300):  # until the sleep runs on the server, as the role
            with postgres_server.connect() as conn:
                sleeping = conn.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE starts_with(usename, :p) "
                                                "AND query LIKE 'SELECT pg_sleep%'"), {"p": role_prefix}).scalar()
            if sleeping:
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        assert sleeping, "the migration never reached its statement"
        started = time.monotonic()

        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)

        assert time.monotonic() - started < 15 and proc.returncode == 128 + signal.SIGTERM, err
        assert leftovers(postgres_server, scratch, role_prefix) == []
        assert list(journal.glob("*.json")) == []
    finally:
        proc.kill()
        proc.wait()


def test_the_next_run_drops_what_a_killed_rehearsal_left(
        blazz_dump: Path, postgres_server: sa.Engine, scratch: str, role_prefix: str, journal: Path,
        tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    proc = _start(blazz_dump, scratch, role_prefix, journal, pidfile)
    try:
        _wait_for_migration(proc, pidfile)
    finally:
        proc.kill()  # SIGKILL: nothing of its own cleanup runs
        proc.wait(timeout=30)
        if pidfile.exists():
            with suppress(ProcessLookupError):  # its command has a process group of its own
                os.killpg(int(pidfile.read_text()), signal.SIGKILL)
    left = leftovers(postgres_server, scratch, role_prefix)
    assert {r.split()[0] for r in left} == {"database", "role"}
    assert len(list(journal.glob("*.json"))) == 1

    result = _run(blazz_dump, f"{scratch}_next")

    assert result.verdict == "pass", [c.message for c in result.failed_checks]
    earlier = next(c for c in result.stage("restore").checks if c.name == "earlier runs")
    assert all(item.split()[1] in earlier.message for item in left)
    assert leftovers(postgres_server, scratch, role_prefix) == []
    assert list(journal.glob("*.json")) == []


# --- the report ---------------------------------------------------------------------------------------------


def test_the_report_of_a_postgresql_rehearsal_shows_the_proof_and_archives_its_evidence(
        blazz_dump: Path, scratch: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import nbformat

    rollback = _rollback_with(tmp_path, without="DROP INDEX idx_chats_contact_chat;\n")
    out = tmp_path / "reports"

    code = main(["rehearse", str(blazz_dump), "--server", POSTGRES_URL, "--expect", str(EXPECTATIONS), "--migrate",
                 str(MIGRATION), "--rollback", str(rollback), "--scratch", scratch, "--report", "--out-dir", str(out)])

    assert code == 1 and "verdict: FAIL" in capsys.readouterr().out
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    assert {"before.json", "after.json", "rolled-back.json", "rehearsal.json", "expectations.yml", "report.html",
            "migrate-1-webjs_migration.pgsql.sql", "rollback-1-rollback.sql"} <= {p.name for p in folder.iterdir()}
    errors = [o.get("ename") for cell in nbformat.read(folder / "rehearsal.ipynb", as_version=4).cells
              for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert "VERDICT: FAIL" in page and "Stage timeline" in page and "PostgreSQL" in page
    assert "index chats.idx_chats_contact_chat added" in page
