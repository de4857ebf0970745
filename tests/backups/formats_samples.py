"""The shared sample databases as the backup formats people use: copies in PostgreSQL dumped with pg_dump (plain,
compressed, custom, directory, tar) and mydumper directories of them in MariaDB.

Each sample is loaded into a scratch MariaDB database (dbaudit_t_…), copied row by row into a scratch
PostgreSQL database, given the objects a pg_dump must list (a view, a materialized view, plpgsql and SQL-standard
functions, a trigger, a sequence) and a table of values COPY must escape, then dumped; everything is dropped at
the end of the session.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import MARIADB_URL, POSTGRES_URL, SHARED_DATA, load_sql, unavailable

SAKILA_ROWS = {"payment": 16049, "rental": 16044, "film": 1000, "film_actor": 5462, "inventory": 4581,
               "customer": 599, "address": 603, "city": 600, "country": 109, "actor": 200}
WORLD_ROWS = {"city": 4079, "country": 239, "countrylanguage": 984}
EMPLOYEES_ROWS = {"employee": 10000, "department": 9, "dept_manager": 24, "dept_emp": 11051, "title": 14782,
                  "salary": 94917}
KNOWN_ROWS = {"world": WORLD_ROWS, "sakila": SAKILA_ROWS, "employees": EMPLOYEES_ROWS}  # ../shared/data/README.md
# Values COPY text format must escape, and text that looks like psql commands or end-of-data markers.
TRICKY = ["plain", "tab\there", "line1\nline2", "cr\rlf", "back\\slash", "\\.", "\n\\.\n", "\\! touch /tmp/x",
          "it's 'quoted' and \"double\"", "$$ dollar $$", "ünïcødé ✓", "-- not a comment", "/* nor this */", ""]


@dataclass
class Sample:
    name: str
    mariadb: str  # scratch MariaDB database holding the sample
    postgres: str  # scratch PostgreSQL database holding the copy
    rows: dict[str, int]  # tables in the PostgreSQL copy and their rows (the sample's, plus dbaudit_tricky)
    dumps: dict[str, Path] = field(default_factory=dict)  # pg_dump format -> dump file or directory


def _sample_script(name: str) -> str:
    if name == "world":
        script = (SHARED_DATA / "world" / "world.sql").read_text(encoding="utf-8")
        return re.sub(r"^(DROP SCHEMA IF EXISTS|CREATE SCHEMA|USE) `?world`?;\s*$", "", script, flags=re.M)
    script = (SHARED_DATA / "sakila" / "sakila-mv-schema.sql").read_text(encoding="utf-8")
    script += (SHARED_DATA / "sakila" / "sakila-mv-data.sql").read_text(encoding="utf-8")
    script = re.sub(r"^(DROP SCHEMA IF EXISTS|CREATE SCHEMA|USE) sakila;\s*$", "", script, flags=re.M)
    return script.replace("sakila.", "")


_PG_TYPES = [("int", "bigint"), ("decimal", "numeric"), ("numeric", "numeric"), ("float", "double precision"),
             ("double", "double precision"), ("real", "double precision"), ("datetime", "timestamp"),
             ("timestamp", "timestamp"), ("date", "date"), ("year", "integer"), ("time", "interval"),
             ("blob", "bytea"), ("binary", "bytea"), ("bit", "bytea"), ("geometry", "bytea")]


def _pg_type(mysql_type: str) -> str:
    lowered = mysql_type.lower()
    return next((pg for word, pg in _PG_TYPES if word in lowered), "text")


def copy_to_postgres(mariadb: str, postgres: str) -> dict[str, int]:
    """Every table of the MariaDB database, rows included, into the PostgreSQL database (types made generic)."""
    source = sa.create_engine(f"{MARIADB_URL}/{mariadb}", poolclass=sa.pool.NullPool)
    target = sa.create_engine(f"{POSTGRES_URL}/{postgres}", poolclass=sa.pool.NullPool)
    rows: dict[str, int] = {}
    with source.connect() as src, target.connect() as dst:
        tables = [r[0] for r in src.exec_driver_sql("SHOW FULL TABLES WHERE Table_type = 'BASE TABLE'")]
        raw = dst.connection.dbapi_connection
        assert raw is not None
        for table in tables:
            columns = [(r[0], r[1]) for r in src.exec_driver_sql(f"SHOW COLUMNS FROM `{table}`")]
            ddl = ", ".join(f'"{c}" {_pg_type(t)}' for c, t in columns)
            with raw.cursor() as cur:
                cur.execute(f'CREATE TABLE public."{table}" ({ddl})')
                names = ", ".join(f'"{c}"' for c, _ in columns)
                with cur.copy(f'COPY public."{table}" ({names}) FROM STDIN') as copy:
                    for row in src.exec_driver_sql(f"SELECT * FROM `{table}`"):
                        copy.write_row(["" if v == "" else v for v in row])
            rows[table] = src.exec_driver_sql(f"SELECT COUNT(*) FROM `{table}`").scalar_one()
        raw.commit()
    source.dispose()
    target.dispose()
    return rows


_PG_OBJECTS = """
CREATE SEQUENCE public.dbaudit_ticket_seq START 7

CREATE TABLE public.dbaudit_tricky (id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text, b bytea)

CREATE TABLE public."we ird""name" (k integer)

INSERT INTO public."we ird""name" VALUES (1), (2)

CREATE VIEW public.dbaudit_v AS SELECT count(*) AS n, '$$;\\! no' AS s FROM public.{table}

CREATE MATERIALIZED VIEW public.dbaudit_mv AS SELECT 1 AS one

CREATE FUNCTION public.dbaudit_touch() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
  -- a ; and a quote ' inside a body: psql must not split here
  RETURN NEW;
END
$body$

CREATE FUNCTION public.dbaudit_add(a integer, b integer DEFAULT 2) RETURNS integer LANGUAGE sql
BEGIN ATOMIC
  SELECT a + b;
  SELECT CASE WHEN a > 0 THEN a + b ELSE b END;
END

CREATE TRIGGER dbaudit_trg BEFORE UPDATE ON public.{table} FOR EACH ROW EXECUTE FUNCTION public.dbaudit_touch()
"""  # statements apart by a blank line: bodies hold ; and newlines


def add_postgres_objects(postgres: str, table: str) -> int:
    """The objects a dump must list, and a table of hard-to-COPY values; returns dbaudit_tricky's row count."""
    engine = sa.create_engine(f"{POSTGRES_URL}/{postgres}", poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        with raw.cursor() as cur:
            for statement in _PG_OBJECTS.replace("{table}", table).split("\n\n"):
                if statement.strip():
                    cur.execute(statement)
            for i, value in enumerate(TRICKY):
                cur.execute("INSERT INTO public.dbaudit_tricky (v, b) VALUES (%s, %s)", (value, bytes([i, 0, 92, 10])))
        raw.commit()
    engine.dispose()
    return len(TRICKY)


def pg_args(database: str) -> list[str]:
    url = sa.engine.make_url(POSTGRES_URL)
    return ["-h", url.host or "127.0.0.1", "-p", str(url.port or 5432), "-U", url.username or "postgres", "-d", database]


def pg_dump(database: str, target: Path, *options: str) -> Path:
    dumper = shutil.which("pg_dump")
    if dumper is None:
        unavailable("pg_dump is not installed")
    subprocess.run([str(dumper), *pg_args(database), "-f", str(target), *options], check=True, capture_output=True)
    return target


def dump_every_format(sample: Sample, folder: Path) -> None:
    base = folder / sample.name
    plain = pg_dump(sample.postgres, base.with_suffix(".sql"))
    sample.dumps = {
        "plain": plain,
        "plain.gz": _compressed(plain, "gzip", ".sql.gz"),
        "plain.zst": _compressed(plain, "zstd", ".sql.zst"),
        "custom": pg_dump(sample.postgres, base.with_suffix(".dump"), "-Fc"),
        "directory": pg_dump(sample.postgres, folder / f"{sample.name}.dir", "-Fd"),
        "tar": pg_dump(sample.postgres, base.with_suffix(".tar"), "-Ft"),
    }


def _compressed(source: Path, tool: str, suffix: str) -> Path:
    target = source.with_suffix(suffix)
    with target.open("wb") as out:
        subprocess.run([tool, "-c", str(source)], stdout=out, check=True)
    return target


def _drop_postgres(server: sa.Engine, name: str) -> None:
    with server.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def mariadb_samples(mariadb_server: sa.Engine, mariadb_client: str) -> Iterator[dict[str, str]]:
    """world and sakila loaded into scratch MariaDB databases: sample name -> database."""
    if not SHARED_DATA.is_dir():
        unavailable(f"{SHARED_DATA} is absent")
    made: dict[str, str] = {}
    try:
        for name in ("world", "sakila"):
            made[name] = f"dbaudit_t_fmt_{name}_{uuid.uuid4().hex[:8]}"
            with mariadb_server.connect() as conn:
                conn.exec_driver_sql(f"CREATE DATABASE `{made[name]}`")
            load_sql(mariadb_client, made[name], _sample_script(name))
        yield made
    finally:
        with mariadb_server.connect() as conn:
            for database in made.values():
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{database}`")


@pytest.fixture(scope="session")
def samples(mariadb_samples: dict[str, str], employees: tuple[str, Path], postgres_server: sa.Engine,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Sample]]:
    """The MariaDB samples (world, sakila, employees) copied into PostgreSQL, with every pg_dump format of the copies."""
    made: dict[str, Sample] = {}
    folder = tmp_path_factory.mktemp("pgdumps")
    sources = {**mariadb_samples, "employees": employees[0]}
    try:
        for name, table in (("world", "city"), ("sakila", "film"), ("employees", "employee")):
            sample = Sample(name, sources[name], f"dbaudit_t_fmt_{name}_{uuid.uuid4().hex[:8]}", {})
            made[name] = sample
            with postgres_server.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{sample.postgres}"')
            sample.rows = copy_to_postgres(sample.mariadb, sample.postgres)
            sample.rows["dbaudit_tricky"] = add_postgres_objects(sample.postgres, table)
            sample.rows['we ird"name'] = 2
            dump_every_format(sample, folder)
        yield made
    finally:
        for sample in made.values():
            _drop_postgres(postgres_server, sample.postgres)


def mydumper(database: str, target: Path, *options: str) -> Path:
    """mydumper (Debian's 0.10) of a MariaDB database, as a backup job runs it."""
    binary = shutil.which("mydumper")
    if binary is None:
        unavailable("mydumper is not installed (apt-get install mydumper)")
    url = sa.engine.make_url(MARIADB_URL + "/")
    args = ["-h", url.host or "127.0.0.1", "-P", str(url.port or 3306), "-u", url.username or "root"]
    args += [f"--password={url.password}"] if url.password else []
    # mydumper 0.10 aborts when any session on the server has run a query for 60 s (--long-query-guard) and
    # FLUSH TABLES WITH READ LOCK waits behind such queries; on a shared CI server those belong to other jobs.
    # The fixture databases do not change while dumped, so no global lock is needed.
    args += ["--long-query-guard", "86400", "--no-locks"]
    done = subprocess.run([str(binary), *args, "-B", database, "-o", str(target), "-G", "-E", "-R", "-t", "2", *options],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"mydumper exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    return target



