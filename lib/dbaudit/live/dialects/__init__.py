"""Per-dialect SQL: each module holds every statement dbaudit sends to that kind of server.

A dialect turns the server's catalog into the shared snapshot dataclasses. Identifiers are quoted
by SQLAlchemy's preparer for the live connection, never formatted in by hand.
"""

from __future__ import annotations

import contextlib
import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy import text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.sql import quoted_name

from dbaudit.core.errors import DbauditError
from dbaudit.core.snapshot import Definition, Extension, Sequence, Server, Table


class Dialect(ABC):
    name: str

    @abstractmethod
    def begin_read_only(self, conn: Connection) -> None:
        """Start a read-only transaction that sees one consistent snapshot."""

    @abstractmethod
    def current_database(self, conn: Connection, url: URL) -> str: ...

    def default_schema(self, schema: str | None) -> str | None:
        return schema

    def check_schema(self, conn: Connection, schema: str | None) -> None:
        """Refuse a schema that does not exist: it would snapshot as empty and pass every audit."""

    @abstractmethod
    def set_statement_timeout(self, conn: Connection, seconds: float) -> None:
        """Make the server abandon any single statement that runs longer than `seconds`."""

    def set_lock_timeout(self, conn: Connection, seconds: float) -> None:
        """Make the server give up waiting for a lock (another session's LOCK TABLES …) after `seconds`."""

    def pin_search_path(self, conn: Connection, schema: str | None) -> None:
        """Make every unqualified name resolve to the built-ins first, whatever the user's settings say."""

    @abstractmethod
    def server(self, conn: Connection) -> Server: ...

    @abstractmethod
    def tables(self, conn: Connection, schema: str | None) -> dict[str, Table]:
        """Base tables with columns, indexes and foreign keys (row counts are filled in later)."""

    @abstractmethod
    def views(self, conn: Connection, schema: str | None) -> dict[str, Definition]: ...

    @abstractmethod
    def triggers(self, conn: Connection, schema: str | None) -> dict[str, Definition]: ...

    @abstractmethod
    def routines(self, conn: Connection, schema: str | None) -> dict[str, Definition]: ...

    def events(self, conn: Connection, schema: str | None) -> dict[str, Definition]:
        """Scheduled events (MySQL/MariaDB); none elsewhere."""
        return {}

    def sequences(self, conn: Connection, schema: str | None) -> dict[str, Sequence]:
        return {}

    def types(self, conn: Connection, schema: str | None) -> dict[str, Definition]:
        """User-defined types (PostgreSQL enums, domains, composites, ranges); none elsewhere."""
        return {}

    def extensions(self, conn: Connection) -> dict[str, Extension]:
        return {}

    @contextlib.contextmanager
    def catalog_scope(self, conn: Connection, schema: str | None = None) -> Iterator[None]:
        """Session settings under which the catalog is read (PostgreSQL renders definitions under them)."""
        yield

    def auto_increments(self, conn: Connection) -> dict[str, int | None] | None:
        """Each table's next AUTO_INCREMENT value; None where the server has no such counters."""
        return None

    def count_rows(self, conn: Connection, table: str, schema: str | None) -> int:
        query = sa.select(sa.func.count()).select_from(table_ref(table, schema))
        return int(conn.execute(query).scalar_one())


def table_ref(table: str, schema: str | None = None) -> sa.TableClause:
    """A table reference the dialect's compiler always quotes (backticks, quotes, %, : are all safe)."""
    return sa.table(quoted_name(table, True), schema=quoted_name(schema, True) if schema else None)


def rows(conn: Connection, sql: str, **params: Any) -> list[dict[str, Any]]:
    """Run catalog SQL and return rows keyed by lower-case column name (servers differ in case)."""
    result = conn.execute(text(sql), params)
    return [{k.lower(): v for k, v in row.items()} for row in result.mappings()]


def sha256(*parts: str | None) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update((part or "").encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()


def as_text(value: Any) -> str | None:
    """information_schema hands back bytes on some MySQL versions and str on others."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    return str(value)


def dialect_for(backend: str) -> Dialect:
    if backend in ("mysql", "mariadb"):
        from dbaudit.live.dialects.mysql import MySQLDialect

        return MySQLDialect()
    if backend == "postgresql":
        from dbaudit.live.dialects.postgresql import PostgreSQLDialect

        return PostgreSQLDialect()
    if backend == "sqlite":
        from dbaudit.live.dialects.sqlite import SQLiteDialect

        return SQLiteDialect()
    raise DbauditError(f"unsupported database {backend!r}: dbaudit audits MySQL/MariaDB, PostgreSQL and SQLite")
