"""Fixtures: throwaway databases on the real local servers, and the shared sample data.

Every test that builds a database gets its own, named dbaudit_t_<random>, dropped afterwards.
With DBAUDIT_REQUIRE_SERVERS=1 (set by .ci/run) a server that does not answer fails the test
instead of skipping it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
SQL_DIR = Path(__file__).parent / "sql"
MARIADB_URL = os.environ.get("DBAUDIT_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306")
POSTGRES_URL = os.environ.get("DBAUDIT_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432")
REQUIRED = os.environ.get("DBAUDIT_REQUIRE_SERVERS") == "1" or os.environ.get("CI") == "true"


def unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"{reason} (servers are required: DBAUDIT_REQUIRE_SERVERS=1 or CI=true)")
    pytest.skip(reason)


@dataclass
class ScratchDB:
    backend: str  # sqlite, mariadb, postgresql
    url: str  # what dbaudit is given
    engine: sa.Engine  # a read-write engine for building the fixture

    def run_sql(self, *statements: str) -> None:
        with self.engine.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)


def _server_engine(base: str, name: str) -> sa.Engine:
    engine = sa.create_engine(base, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except sa.exc.OperationalError as exc:
        unavailable(f"{name} is not answering at {base}: {str(exc.orig).splitlines()[0]}")
    return engine


@pytest.fixture(scope="session")
def mariadb_server() -> sa.Engine:
    return _server_engine(MARIADB_URL + "/", "MariaDB")


@pytest.fixture(scope="session")
def postgres_server() -> sa.Engine:
    return _server_engine(POSTGRES_URL + "/postgres", "PostgreSQL")


def _scratch_name() -> str:
    return f"dbaudit_t_{uuid.uuid4().hex[:10]}"


def _scratch_databases(server: sa.Engine, base_url: str, backend: str, quote: str,
                       drop_options: str = "") -> Iterator[Callable[[], ScratchDB]]:
    created: list[ScratchDB] = []

    def make() -> ScratchDB:
        name = _scratch_name()
        with server.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {quote}{name}{quote}")
        url = f"{base_url}/{name}"
        db = ScratchDB(backend, url, sa.create_engine(url, poolclass=sa.pool.NullPool))
        created.append(db)
        return db

    yield make
    with server.connect() as conn:
        for db in created:
            db.engine.dispose()
            name = db.url.rsplit("/", 1)[1]
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quote}{name}{quote}{drop_options}")


@pytest.fixture
def make_mariadb(mariadb_server: sa.Engine) -> Iterator[Callable[[], ScratchDB]]:
    yield from _scratch_databases(mariadb_server, MARIADB_URL, "mariadb", "`")


@pytest.fixture
def make_postgres(postgres_server: sa.Engine) -> Iterator[Callable[[], ScratchDB]]:
    # FORCE: a test that failed mid-way may leave a session open on its database.
    yield from _scratch_databases(postgres_server, POSTGRES_URL, "postgresql", '"', " WITH (FORCE)")


@pytest.fixture
def make_sqlite(tmp_path: Path) -> Callable[[], ScratchDB]:
    def make() -> ScratchDB:
        path = tmp_path / f"{_scratch_name()}.sqlite"
        engine = sa.create_engine(f"sqlite:///{path}", poolclass=sa.pool.NullPool)

        @sa.event.listens_for(engine, "connect")
        def _fk_on(dbapi_conn, _record):
            dbapi_conn.execute("PRAGMA foreign_keys = ON")

        return ScratchDB("sqlite", f"sqlite:///{path}", engine)

    return make


@pytest.fixture(params=["sqlite", "mariadb", "postgresql"])
def make_db(request: pytest.FixtureRequest) -> Callable[[], ScratchDB]:
    """Parametrizes a test over all three servers; each call makes one fresh database."""
    fixture = {"sqlite": "make_sqlite", "mariadb": "make_mariadb", "postgresql": "make_postgres"}[request.param]
    return request.getfixturevalue(fixture)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        unavailable(f"the shared sample data folder {SHARED_DATA} is absent")
    return SHARED_DATA


@pytest.fixture(scope="session")
def mariadb_client() -> str:
    client = shutil.which("mariadb") or shutil.which("mysql")
    if client is None:
        unavailable("the mariadb command-line client is not installed")
    return str(client)


def client_args() -> list[str]:
    """Connection options for the mariadb command-line tools: the same server as DBAUDIT_TEST_MARIADB."""
    url = sa.engine.make_url(MARIADB_URL + "/")
    args = ["--protocol=tcp", "-h", url.host or "127.0.0.1", "-P", str(url.port or 3306), "-u", url.username or "root"]
    return args + ([f"--password={url.password}"] if url.password else [])


def load_sql(client: str, database: str, sql: str | Path, cwd: Path | None = None) -> None:
    """Feed SQL to the mariadb client, as a DBA restoring a dump would (as bytes: dumps need not be UTF-8)."""
    data = sql.read_bytes() if isinstance(sql, Path) else sql.encode("utf-8")
    subprocess.run([client, *client_args(), database], input=data, check=True, capture_output=True, cwd=cwd)


@contextmanager
def scratch_mariadb_database(server: sa.Engine, tag: str) -> Iterator[str]:
    """A database named dbaudit_t_<tag>_<random> for the length of the block, dropped even on failure."""
    name = f"dbaudit_t_{tag}_{uuid.uuid4().hex[:8]}"
    with server.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{name}`")
    try:
        yield name
    finally:
        with server.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")


def dump_database(database: str, target: Path, *options: str) -> Path:
    """mariadb-dump a database the way a DBA's backup job would."""
    dumper = shutil.which("mariadb-dump") or shutil.which("mysqldump")
    if dumper is None:
        unavailable("mariadb-dump is not installed")
    with target.open("wb") as out:
        subprocess.run([str(dumper), *client_args(), "--single-transaction", "--routines", "--triggers", *options,
                        database], stdout=out, check=True)
    return target


_EMPLOYEE_DATABASE = re.compile(r"^(DROP DATABASE IF EXISTS|CREATE DATABASE IF NOT EXISTS|USE) employee;\s*$", re.M)


@pytest.fixture(scope="session")
def employees(mariadb_server: sa.Engine, mariadb_client: str,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """../shared/data/employees loaded into a scratch database and dumped with mariadb-dump: (database, dump)."""
    folder = SHARED_DATA / "employees"
    if not folder.is_dir():
        unavailable(f"{folder} is absent")
    with scratch_mariadb_database(mariadb_server, "emp") as name:
        # employee.sql creates a database called employee; load it into ours instead.
        script = _EMPLOYEE_DATABASE.sub("", (folder / "employee.sql").read_text(encoding="utf-8"))
        load_sql(mariadb_client, name, script, cwd=folder)
        yield name, dump_database(name, tmp_path_factory.mktemp("employees") / f"{name}.sql")


_SERVER_FIXTURES = {
    "mariadb": {"mariadb_server", "make_mariadb", "mariadb_client", "employees"},
    "postgresql": {"postgres_server", "make_postgres"},
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with the servers it needs (`-m "not mariadb"` runs without one), from its fixtures."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        backend = getattr(getattr(item, "callspec", None), "params", {}).get("make_db")
        for marker, fixtures in _SERVER_FIXTURES.items():
            if names & fixtures or backend == marker:
                item.add_marker(getattr(pytest.mark, marker))
