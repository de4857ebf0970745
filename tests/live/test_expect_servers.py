"""`dbaudit expect` against real servers: run a migration for real, audit with the expectations derived
from it (must pass), and audit a variant that adds a stray column and skips an index (must fail, naming both).

The migrations (tests/sql/expect/) are of our own writing, one per server, with multi-clause ALTERs,
MySQL-only syntax, renames, drops, views, triggers, routines, data statements and statements sqlglot
cannot parse. Each runs the way its DBA would: the mariadb client, psql-style autocommit, sqlite3.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import SQL_DIR, ScratchDB, load_sql
from dbaudit.audit.derive import derive
from dbaudit.audit.derive.split import split_statements
from dbaudit.audit.result import AuditResult, audit
from dbaudit.core.snapshot import Snapshot
from dbaudit.live.inspect import take_snapshot

CASES = SQL_DIR / "expect"
# The variant: one index the plan creates is skipped, one column nobody planned is added.
SKIPPED = {
    "mariadb": ("CREATE INDEX orders_customer_placed_index ON orders (customer_id, placed_at);", "orders_customer_placed_index"),
    "postgresql": ("CREATE INDEX customers_tier_status_idx ON customers (tier, status);", "customers_tier_status_idx"),
    "sqlite": ("CREATE INDEX customers_tier_status ON customers (tier, status);", "customers_tier_status"),
}
STRAY = "ALTER TABLE customers ADD COLUMN stray_flag int;"


def _run(db: ScratchDB, script: str, mariadb_client: str | None = None) -> None:
    """Run a script the way its server's own client would."""
    if db.backend == "mariadb":
        assert mariadb_client is not None
        load_sql(mariadb_client, db.url.rsplit("/", 1)[1], script)
    elif db.backend == "sqlite":
        with sqlite3.connect(db.url.removeprefix("sqlite:///")) as conn:
            conn.execute("PRAGMA foreign_keys = ON")
            conn.executescript(script)
    else:  # psql runs each statement on its own (CREATE INDEX CONCURRENTLY needs that)
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for statement in split_statements(script, "postgresql")[0]:
                conn.exec_driver_sql(statement.text.replace("%", "%%"))


def _migrated(make: Callable[[], ScratchDB], client: str | None, migration: str) -> tuple[Snapshot, Snapshot]:
    db = make()
    _run(db, (CASES / f"{db.backend}_before.sql").read_text(), client)
    before = take_snapshot(db.url, fingerprint="chunks")
    _run(db, migration, client)
    return before, take_snapshot(db.url, fingerprint="chunks", baseline=before)


def _failures(result: AuditResult) -> list[str]:
    return [f"[{c.category}] {c.name}: {c.message}" for c in result.failed_checks]


@pytest.fixture
def server(request: pytest.FixtureRequest) -> tuple[Callable[[], ScratchDB], str | None]:
    backend = request.param
    make = request.getfixturevalue({"sqlite": "make_sqlite", "mariadb": "make_mariadb",
                                    "postgresql": "make_postgres"}[backend])
    return make, request.getfixturevalue("mariadb_client") if backend == "mariadb" else None


@pytest.mark.parametrize("server", ["mariadb", "postgresql", "sqlite"], indirect=True)
def test_the_derived_expectations_pass_the_migration_they_come_from(server, tmp_path: Path) -> None:
    make, client = server
    backend = make().backend
    path = CASES / f"{backend}_migration.sql"
    before, after = _migrated(make, client, path.read_text())
    dialect = {"mariadb": "mysql"}.get(backend, backend)
    blind = derive([path], dialect)  # from the migration alone
    informed = derive([path], dialect, before)  # checked against the before snapshot
    for derived in (blind, informed):
        result = audit(before, after, derived.expectations)
        assert result.verdict == "pass", _failures(result)
    # Every schema change was required or allowed by an entry, and the file said what it could not read.
    assert len(blind.expectations.required) >= 12
    assert any("read from its leading words" in w for w in blind.warnings)


@pytest.mark.parametrize("server", ["mariadb", "postgresql", "sqlite"], indirect=True)
def test_a_variant_with_a_stray_column_and_a_skipped_index_fails_naming_both(server) -> None:
    make, client = server
    backend = make().backend
    planned = (CASES / f"{backend}_migration.sql").read_text()
    skipped, index = SKIPPED[backend]
    assert skipped in planned
    variant = planned.replace(skipped, "") + "\n" + STRAY + "\n"
    before, after = _migrated(make, client, variant)
    for snapshot in (None, before):
        expectations = derive([CASES / f"{backend}_migration.sql"], {"mariadb": "mysql"}.get(backend, backend),
                              snapshot).expectations
        result = audit(before, after, expectations)
        failures = _failures(result)
        assert result.verdict == "fail"
        assert any("customers.stray_flag" in f and "unexpected" in f for f in failures), failures
        assert any(index in f and "did not happen" in f for f in failures), failures
        assert len(failures) == 2, failures  # nothing else is blamed


def test_the_blazz_migration_derives_what_its_hand_written_expectations_say() -> None:
    """The shipped blazz-webjs.yml was written by hand from the migration; the derived file says at least as much."""
    from conftest import ROOT
    from dbaudit.audit.expectations import load_expectations

    hand = load_expectations(ROOT / "expectations" / "blazz-webjs.yml")
    derived = derive([SQL_DIR / "webjs_migration.mysql.sql"]).expectations
    want = {(p.kind, p.target) for p in hand.required}
    got = {(p.kind, p.target) for p in derived.required}
    assert want <= got, want - got
    assert got - want == {("fk_added", "chats.fk_chats_group_id")}  # the hand-written file only allowed it
    by_target = {p.target: p.attributes for p in derived.required}
    for column in ("provider_type", "chat_type", "group_id"):
        assert by_target[f"chats.{column}"]["nullable"] is True  # the hand-written attribute, derived
    assert by_target["chats.chat_type"]["type"] == "enum('private','group')"
    assert derived.rows.default == hand.rows.default == "no_shrink"


@pytest.mark.mariadb
def test_the_derived_blazz_expectations_pass_on_mariadb(make_mariadb, mariadb_client) -> None:
    db = make_mariadb()
    load_sql(mariadb_client, db.url.rsplit("/", 1)[1], SQL_DIR / "blazz_schema.mysql.sql")
    before = take_snapshot(db.url)
    load_sql(mariadb_client, db.url.rsplit("/", 1)[1], SQL_DIR / "webjs_migration.mysql.sql")
    after = take_snapshot(db.url)
    result = audit(before, after, derive([SQL_DIR / "webjs_migration.mysql.sql"]).expectations)
    assert result.verdict == "pass", _failures(result)
    # The implicit index of fk_chats_group_id came and went inside the migration: no change is left of it.
    assert not [c for c in result.changes if re.search("fk_chats_group_id", c.target) and c.kind.startswith("index")]


@pytest.mark.mariadb
def test_laravel_pretend_output_on_mariadb_with_its_ledger(make_mariadb, mariadb_client) -> None:
    """`php artisan migrate` simulated: the queries Laravel printed run through the client, then each migration
    is logged in `migrations` with the next batch, as Laravel's Migrator does. The derived file must pass,
    ledger included; a run that forgets one migration must fail naming it."""
    from dbaudit.audit.derive.laravel import read_pretend

    pretend = CASES / "laravel_pretend.txt"
    pending, _ = read_pretend(pretend.read_text())
    results = []
    for forget in (None, pending[2].name):
        db = make_mariadb()
        name = db.url.rsplit("/", 1)[1]
        load_sql(mariadb_client, name, CASES / "mariadb_before.sql")
        before = take_snapshot(db.url, fingerprint="chunks")
        script = [f"{sql};" for m in pending if m.name != forget for _, sql in m.queries]
        script += [f"INSERT INTO migrations (migration, batch) VALUES ('{m.name}', 2);" for m in pending if m.name != forget]
        load_sql(mariadb_client, name, "\n".join(script))
        after = take_snapshot(db.url, fingerprint="chunks", baseline=before)
        derived = derive([pretend], "mysql")
        assert derived.expectations.migrations is not None
        assert derived.expectations.migrations.applied == [m.name for m in pending]
        results.append(audit(before, after, derived.expectations))
    assert results[0].verdict == "pass", _failures(results[0])
    failures = _failures(results[1])
    assert any(f"applied {pending[2].name}" in f and "is not in the ledger" in f for f in failures), failures


def test_a_sqlite_table_rebuilt_the_laravel_way_is_judged_by_its_differences(make_sqlite) -> None:
    """Laravel (and every SQLite tool) alters a column by building a new table and renaming it over the old."""
    db = make_sqlite()
    _run(db, "CREATE TABLE chats (id INTEGER PRIMARY KEY, status varchar NOT NULL, note text);\n"
             "CREATE INDEX chats_status_index ON chats (status);\nINSERT INTO chats VALUES (1, 'open', 'x');")
    before = take_snapshot(db.url)
    rebuild = ('CREATE TABLE "__temp__chats" ("id" integer primary key not null, "status" varchar(20) not null, '
               '"note" text, "provider" varchar);\n'
               'INSERT INTO "__temp__chats" ("id", "status", "note") SELECT "id", "status", "note" FROM "chats";\n'
               'DROP TABLE "chats";\nALTER TABLE "__temp__chats" RENAME TO "chats";\n'
               'CREATE INDEX "chats_status_index" ON "chats" ("status");\n')
    _run(db, rebuild)
    after = take_snapshot(db.url)
    path = db.url.removeprefix("sqlite:///") + ".migration.sql"
    Path(path).write_text(rebuild)
    for snapshot in (None, before):
        derived = derive([path], "sqlite", snapshot)
        result = audit(before, after, derived.expectations)
        assert result.verdict == "pass", _failures(result)
    required = {f"{p.kind} {p.target}" for p in derive([path], "sqlite", before).expectations.required}
    assert required == {"column_added chats.provider", "column_changed chats.status"}


@pytest.mark.mariadb
def test_a_real_applications_schema_script_passes_as_a_migration(make_mariadb, mariadb_client, shared_data, tmp_path) -> None:
    """Sakila's schema (../shared/data), not written for dbaudit: triggers in DELIMITER blocks, DEFINER views,
    routines sqlglot cannot parse, spatial keys inside MySQL-5.7 executable comments MariaDB skips."""
    script = (shared_data / "sakila" / "sakila-mv-schema.sql").read_text(encoding="utf-8")
    script = re.sub(r"^(DROP SCHEMA IF EXISTS|CREATE SCHEMA|USE) [^;]*;\s*$", "", script, flags=re.M | re.I)
    script = script.replace("sakila.", "")  # it names its own database; ours is a scratch one
    path = tmp_path / "sakila.sql"
    path.write_text(script, encoding="utf-8")
    db = make_mariadb()
    before = take_snapshot(db.url)
    load_sql(mariadb_client, db.url.rsplit("/", 1)[1], path)
    after = take_snapshot(db.url)
    for snapshot in (None, before):
        derived = derive([path], "mysql", snapshot)
        result = audit(before, after, derived.expectations)
        assert result.verdict == "pass", _failures(result)
        assert len(derived.expectations.required) >= 30  # 16 tables, 7 views, 6 triggers, 6 routines …


@pytest.mark.postgresql
def test_pg_dump_schema_output_passes_as_a_migration(make_postgres, tmp_path) -> None:
    """What pg_dump --schema-only writes (SET lines, OWNER TO, sequences OWNED BY, ALTER TABLE ONLY … ADD
    CONSTRAINT, \\restrict lines): replayed into an empty database, judged by the file derived from it."""
    import shutil
    import subprocess

    import sqlalchemy as sa

    from conftest import POSTGRES_URL, unavailable

    if not (shutil.which("pg_dump") and shutil.which("psql")):
        unavailable("pg_dump and psql are not installed")
    source, target = make_postgres(), make_postgres()
    _run(source, (CASES / "postgresql_before.sql").read_text())
    _run(source, (CASES / "postgresql_migration.sql").read_text())
    server = sa.engine.make_url(POSTGRES_URL + "/postgres")
    args = ["-h", server.host or "127.0.0.1", "-p", str(server.port or 5432), "-U", server.username or "postgres"]
    dump = tmp_path / "schema.sql"
    subprocess.run(["pg_dump", "--schema-only", *args, source.url.rsplit("/", 1)[1], "-f", str(dump)], check=True)
    before = take_snapshot(target.url)
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", *args, "-d", target.url.rsplit("/", 1)[1], "-f", str(dump)],
                   check=True, capture_output=True)
    after = take_snapshot(target.url)
    for snapshot in (None, before):
        derived = derive([dump], "postgresql", snapshot)
        result = audit(before, after, derived.expectations)
        assert result.verdict == "pass", _failures(result)
    assert {"table_added invoices", "view_added customer_totals"} <= {f"{p.kind} {p.target}"
                                                                       for p in derived.expectations.required}
