"""Every PostgreSQL case of the matrix (tests/cases/postgresql/*): exactly its expected changes, and none for
clean ones. One database for the module, one schema per case; psql runs the scripts, each statement on its own
(VACUUM FULL, CLUSTER and REINDEX cannot run in a transaction), with the case's schema as its search_path."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from caselib import Case, cases, derived_failures, ids, reported
from conftest import POSTGRES_URL, unavailable
from dbaudit.live.inspect import take_snapshot

CASES = cases("postgresql")


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        unavailable(f"{name} is not installed")
    return str(found)


def _connection(database: str) -> list[str]:
    url = sa.engine.make_url(POSTGRES_URL)
    return ["-h", url.host or "127.0.0.1", "-p", str(url.port or 5432), "-U", url.username or "postgres", "-d", database]


def psql(database: str, script: str, schema: str | None = None) -> None:
    env = {**os.environ, "PGOPTIONS": f"-c search_path={schema}" if schema else ""}
    if sa.engine.make_url(POSTGRES_URL).password:
        env["PGPASSWORD"] = str(sa.engine.make_url(POSTGRES_URL).password)
    subprocess.run([_tool("psql"), "-q", "-X", "-v", "ON_ERROR_STOP=1", *_connection(database)],
                   input=script.encode(), check=True, capture_output=True, env=env)


@pytest.fixture(scope="module")
def case_database(postgres_server: sa.Engine) -> Iterator[str]:
    name = f"dbaudit_t_cases_{uuid.uuid4().hex[:8]}"
    with postgres_server.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with postgres_server.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_a_postgresql_change_is_reported_exactly(case: Case, case_database: str, postgres_server: sa.Engine,
                                                 tmp_path: Path) -> None:
    schema = f"case_{uuid.uuid4().hex[:8]}"
    url = f"{POSTGRES_URL}/{case_database}"
    psql(case_database, f"CREATE SCHEMA {schema};")
    restored = f"dbaudit_t_restored_{uuid.uuid4().hex[:8]}"
    try:
        # As an application's database is set up: its schema on the search_path of every session, the snapshot's
        # too. A case that changes the database's settings then changes what the snapshot's session starts with.
        psql(case_database, f'ALTER DATABASE "{case_database}" SET search_path = {schema}, public;')
        psql(case_database, case.base, schema)
        before = take_snapshot(url, schema=schema)
        if case.mode == "restore":
            dump = subprocess.run([_tool("pg_dump"), *_connection(case_database), "-n", schema], check=True,
                                  capture_output=True).stdout.decode()
            with postgres_server.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{restored}"')
            psql(restored, dump)
            after = take_snapshot(f"{POSTGRES_URL}/{restored}", schema=schema)
        else:
            psql(case_database, case.change, schema)
            after = take_snapshot(url, schema=schema)
    finally:
        psql(case_database, f'DROP SCHEMA IF EXISTS {schema} CASCADE; ALTER DATABASE "{case_database}" RESET ALL;')
        with postgres_server.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{restored}" WITH (FORCE)')
    assert reported(before, after) == sorted(case.expected)
    assert derived_failures(case, before, after, tmp_path) == []  # and `dbaudit expect` agrees
