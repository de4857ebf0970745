"""A hostile table owner against the auditor (issue #9, class 3): none of their code runs with our rights.

The owner is a non-superuser who may create objects in the audited schema. Every trap writes a canary file
through the server (COPY … TO, which only a superuser may run, and which a read-only transaction still
allows): if the file appears, the auditor's rights ran the owner's code.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import ScratchDB
from dbaudit.cli import main
from dbaudit.live.compare import compare
from dbaudit.live.connect import audit_session
from dbaudit.live.fingerprint import Fingerprinter
from dbaudit.live.inspect import take_snapshot


@dataclass
class Hostile:
    db: ScratchDB
    role: str
    canary: Path


def _trap(canary: Path, what: str) -> str:
    """A PL/pgSQL body that writes the canary (as whoever runs it) and says which trap fired."""
    return (f"BEGIN EXECUTE pg_catalog.format('COPY (SELECT %L) TO %L', '{what}', '{canary}'); "
            f"RAISE NOTICE 'dbaudit canary: % ran as %', '{what}', current_user; ")


def run_raw(db: ScratchDB, *statements: str) -> None:
    """Statements sent as written (no driver formatting of % in the owner's SQL)."""
    with db.engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement, execution_options={"no_parameters": True})


@pytest.fixture
def hostile_postgres(postgres_server: sa.Engine, make_postgres: Callable[[], ScratchDB]) -> Iterator[Hostile]:
    """A database whose table owner is a hostile non-superuser: an enum with a cast to text through their own
    function, a domain over it, a composite and an array of it, and functions in public that shadow the
    built-ins dbaudit's SQL calls with arguments that need a cast (so the owner's would win on search_path)."""
    db = make_postgres()
    role = f"dbaudit_t_evil_{uuid.uuid4().hex[:8]}"
    canary = Path(f"/tmp/dbaudit_t_canary_{uuid.uuid4().hex[:8]}.txt")
    with postgres_server.connect() as conn:
        conn.exec_driver_sql(f'CREATE ROLE "{role}" LOGIN')
    try:
        run_raw(db, f'GRANT CREATE ON SCHEMA public TO "{role}"', f'SET ROLE "{role}"',
                "CREATE TYPE mood AS ENUM ('sad', 'happy')",
                "CREATE DOMAIN dmood AS mood",
                "CREATE TYPE pair AS (n int, m mood)",
                "CREATE FUNCTION evil(mood) RETURNS text LANGUAGE plpgsql AS $$"
                f"{_trap(canary, 'cast mood -> text')} RETURN 'x'; END $$",
                "CREATE CAST (mood AS text) WITH FUNCTION evil(mood) AS IMPLICIT",
                "CREATE FUNCTION evil_pair(pair) RETURNS text LANGUAGE plpgsql AS $$"
                f"{_trap(canary, 'cast pair -> text')} RETURN 'x'; END $$",
                "CREATE CAST (pair AS text) WITH FUNCTION evil_pair(pair)",
                "CREATE FUNCTION evil_arr(mood[]) RETURNS text LANGUAGE plpgsql AS $$"
                f"{_trap(canary, 'cast mood[] -> text')} RETURN 'x'; END $$",
                "CREATE CAST (mood[] AS text) WITH FUNCTION evil_arr(mood[])",
                   # Shadows with a better match than pg_catalog's (text, name) / (int, int) / (bytea, int, int).
                "CREATE FUNCTION public.convert_to(text, text) RETURNS bytea LANGUAGE plpgsql AS $$"
                f"{_trap(canary, 'public.convert_to')} RETURN pg_catalog.convert_to($1, $2::name); END $$",
                "CREATE FUNCTION public.generate_series(integer, smallint) RETURNS SETOF integer "
                f"LANGUAGE plpgsql AS $${_trap(canary, 'public.generate_series')} "
                "RETURN QUERY SELECT pg_catalog.generate_series($1, $2::integer); END $$",
                "CREATE TABLE feelings (id int PRIMARY KEY, m mood, d dmood NOT NULL, p pair, a mood[])",
                "INSERT INTO feelings SELECT i, CASE WHEN i % 3 = 0 THEN NULL ELSE 'sad'::mood END, 'happy', "
                "ROW(i, 'sad'::mood)::pair, ARRAY['sad', 'happy']::mood[] FROM generate_series(1, 700) AS i",
                "INSERT INTO feelings VALUES (701, 'happy', 'sad', ROW(NULL, NULL), NULL)",
                "CREATE INDEX feelings_m ON feelings (m, id)",
                "RESET ROLE")
        yield Hostile(db, role, canary)
    finally:
        db.run_sql(f'DROP OWNED BY "{role}" CASCADE')
        with postgres_server.connect() as conn:
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{role}"')
        canary.unlink(missing_ok=True)


def _canonical(url: str, table: str) -> list[str]:
    snap = take_snapshot(url)
    with audit_session(url) as session:
        fp = Fingerprinter(session)
        fp.canon.use_table(session.connection, session.schema, table)
        sql = f"SELECT {fp.canon.row_text(snap.tables[table].columns)} FROM {table} ORDER BY id"
        return [str(v) for v in session.connection.exec_driver_sql(sql).scalars()]


def test_a_table_owners_casts_and_shadowing_functions_never_run_during_snapshot_fingerprints(
        hostile_postgres: Hostile) -> None:
    snap = take_snapshot(hostile_postgres.db.url, fingerprint="chunks")
    assert not hostile_postgres.canary.exists(), hostile_postgres.canary.read_text()
    feelings = snap.tables["feelings"]
    assert feelings.row_count == 701 and feelings.fingerprint and feelings.chunks
    assert [c.type for c in feelings.columns] == ["integer", "mood", "dmood", "pair", "mood[]"]
    assert sorted(i.name for i in feelings.indexes) == ["feelings_m", "feelings_pkey"]


def test_user_typed_values_read_as_their_output_text_without_any_cast(hostile_postgres: Hostile) -> None:
    rows = _canonical(hostile_postgres.db.url, "feelings")
    assert not hostile_postgres.canary.exists(), hostile_postgres.canary.read_text()
    # The same text an I/O cast gives: enum labels, composites and arrays as PostgreSQL prints them.
    assert rows[0] == "1|3|sad|5|happy|7|(1,sad)|11|{sad,happy}"
    assert rows[2] == "3|~|5|happy|7|(3,sad)|11|{sad,happy}"
    assert rows[-1] == "701|5|happy|3|sad|3|(,)|~"


def test_compare_and_the_cli_snapshot_run_none_of_the_owners_code(hostile_postgres: Hostile, tmp_path: Path) -> None:
    url = hostile_postgres.db.url
    result = compare(url, url)
    assert [t.status for t in result.tables] == ["same"]
    assert main(["snapshot", url, "-o", str(tmp_path / "s.json"), "--fingerprint", "table"]) == 0
    assert not hostile_postgres.canary.exists(), hostile_postgres.canary.read_text()


# SQL words that take parentheses but are syntax, not functions a schema could shadow.
_SYNTAX = {"AS", "IN", "ANY", "ARRAY", "OVER", "FILTER", "VALUES", "AND", "OR", "NOT", "WHERE", "FROM", "JOIN",
           "SELECT", "ON", "BY", "EXISTS", "ROW", "THEN", "ELSE", "WHEN", "ALL", "IS", "COALESCE", "OPERATOR"}
_CALL = re.compile(r'(?<![\w."])(?<!AS )(?<!RECURSIVE )([A-Za-z_]\w*)\s*\(')


def _unqualified_calls(sql: str) -> set[str]:
    sql = re.sub(r"--[^\n]*", "", re.sub(r"'(?:[^']|'')*'", "''", re.sub(r'"(?:[^"]|"")*"', '""', sql)))
    return {m.group(1) for m in _CALL.finditer(sql) if m.group(1).upper() not in _SYNTAX}


def test_every_function_dbaudit_sends_to_postgresql_is_schema_qualified(hostile_postgres: Hostile) -> None:
    """The class, not the example: whatever a snapshot, fingerprints and compare send names pg_catalog.fn."""
    sent: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        sent.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", record)
    try:
        take_snapshot(hostile_postgres.db.url, fingerprint="chunks")
        compare(hostile_postgres.db.url, hostile_postgres.db.url)
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", record)
    assert len(sent) > 10
    assert {(name, s[:80]) for s in sent for name in _unqualified_calls(s)} == set()


def test_mariadb_built_ins_are_called_as_the_parser_binds_them_to_the_built_in(
        make_mariadb: Callable[[], ScratchDB]) -> None:
    """`NAME(` with no space is always the built-in; a stored function of that name is only `db.NAME(`."""
    db = make_mariadb()
    db.run_sql("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10), d DATETIME(3))",
               "INSERT INTO t VALUES (1, 'a', NOW(3)), (2, NULL, NULL)",
               # Same-named stored functions: reached only if dbaudit wrote a call the parser may bind to them.
               "CREATE FUNCTION `sha2`(a TEXT, b INT) RETURNS TEXT DETERMINISTIC RETURN 'hijacked'",
               "CREATE FUNCTION `concat_ws`(a TEXT, b TEXT) RETURNS TEXT DETERMINISTIC RETURN 'hijacked'")
    sent: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        sent.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", record)
    try:
        snap = take_snapshot(db.url, fingerprint="table")
        compare(db.url, db.url)
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", record)
    spaced = {m.group(1) for s in sent for m in re.finditer(r"(?<![\w`.])([A-Za-z_]\w*)\s+\(", s)
              if m.group(1).upper() not in _SYNTAX | {"USING", "DISTINCT"}}
    assert spaced == set()
    assert snap.tables["t"].fingerprint and set(snap.routines) == {"sha2", "concat_ws"}


def test_rollback_triggers_compare_keys_with_the_built_in_equality_not_the_owners(
        hostile_postgres: Hostile, tmp_path: Path) -> None:
    from dbaudit.live.rollback import evaluate_triggers

    run_raw(hostile_postgres.db, f'SET ROLE "{hostile_postgres.role}"',
            "CREATE FUNCTION evil_eq(mood, mood) RETURNS boolean LANGUAGE plpgsql AS $$"
            f"{_trap(hostile_postgres.canary, 'operator =(mood, mood)')} RETURN $1::text = $2::text; END $$",
            "CREATE OPERATOR public.= (LEFTARG = mood, RIGHTARG = mood, FUNCTION = evil_eq)",
            "CREATE TABLE moods (m mood PRIMARY KEY)", "INSERT INTO moods VALUES ('sad')",
            "CREATE TABLE diary (id int PRIMARY KEY, m mood)", "INSERT INTO diary VALUES (1, 'sad'), (2, 'happy')",
            "RESET ROLE")
    rules = tmp_path / "rules.yml"
    rules.write_text("format_version: 1\nname: t\nrollback:\n  foreign_keys:\n"
                     "    - {table: diary, columns: [m], ref_table: moods, ref_columns: [m]}\n"
                     "  unique_keys:\n    - {table: diary, columns: [m]}\n")
    result = evaluate_triggers(hostile_postgres.db.url, rules)
    assert not hostile_postgres.canary.exists(), hostile_postgres.canary.read_text()
    orphans = next(c for c in result.checks if c.category == "fk_orphans")
    assert orphans.value == 1
