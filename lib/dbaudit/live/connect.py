"""Opening an audit session: credentials, a read-only consistent transaction, masked URLs.

Every audit reads inside one read-only transaction on one connection, so the schema, the row counts
and the metrics describe the same instant, and nothing can be written to the audited database.
"""

from __future__ import annotations

import math
import os
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

from dbaudit.core.errors import DbauditError, first_line
from dbaudit.live.dialects import Dialect, dialect_for

PASSWORD_ENV = "DBAUDIT_PASSWORD"


@dataclass
class AuditSession:
    """An open read-only transaction plus what we know of its server."""

    connection: Connection
    dialect: Dialect
    url: URL
    database: str
    schema: str | None

    @property
    def masked_url(self) -> str:
        return mask_url(self.url)


def mask_url(url: str | URL) -> str:
    """The URL as it may be printed, logged or archived: never with its password."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except (ArgumentError, ValueError):
        return "<unparseable URL>"
    return parsed.render_as_string(hide_password=True)


# Schemes other tools (and SQLAlchemy without a driver) use, mapped to the drivers dbaudit installs.
DRIVER_ALIASES = {"mysql": "mysql+pymysql", "mariadb": "mariadb+pymysql", "postgres": "postgresql+psycopg",
                  "postgresql": "postgresql+psycopg"}


def parse_url(url: str) -> URL:
    """Parse a SQLAlchemy URL and fill in the password from the environment when it has none."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        # The text may hold a password, so it is not echoed back.
        detail = f" ({first_line(exc)})" if isinstance(exc, ValueError) else ""
        raise DbauditError(f"not a database URL{detail}; expected e.g. mysql+pymysql://user@host/db") from None
    if parsed.drivername in DRIVER_ALIASES:  # mysql://, postgres:// as other tools write them
        parsed = parsed.set(drivername=DRIVER_ALIASES[parsed.drivername])
    if parsed.password is None and os.environ.get(PASSWORD_ENV) and parsed.get_backend_name() != "sqlite":
        parsed = parsed.set(password=os.environ[PASSWORD_ENV])
    option_file = parsed.query.get("read_default_file")
    if isinstance(option_file, str):
        # PyMySQL hands the path to configparser, which does not expand "~" and skips a missing file silently.
        path = os.path.expanduser(option_file)
        if not os.path.isfile(path) or not os.access(path, os.R_OK):
            raise DbauditError(f"option file {path} (read_default_file) does not exist or cannot be read")
        parsed = parsed.update_query_dict({"read_default_file": path})
    return parsed


def create_audit_engine(url: URL) -> sa.Engine:
    if url.get_backend_name() == "sqlite":
        url = _sqlite_read_only(url)
    try:
        return sa.create_engine(url, poolclass=sa.pool.NullPool)
    except (NoSuchModuleError, ArgumentError, ImportError) as exc:
        raise DbauditError(f"unsupported database URL {mask_url(url)}: {first_line(exc)}") from None


def _sqlite_read_only(url: URL) -> URL:
    """Open SQLite files with mode=ro: an audit must not create or change the file."""
    database = url.database or ""
    if database in ("", ":memory:"):
        return url
    # A file: URI names a path too; it is reopened our way (mode=ro) like a plain path.
    path = Path(database.removeprefix("file:").split("?", 1)[0]).expanduser()
    if not path.is_file():
        raise DbauditError(f"no such SQLite database file: {path}")
    # Percent-encoded: a '#', '?' or '%' in the path must not turn into URI syntax (and open another file).
    uri = f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro"
    return url.set(database=uri).update_query_dict({"uri": "true"})


@contextmanager
def audit_session(url: str | URL, schema: str | None = None,
                  statement_timeout: float | None = None) -> Iterator[AuditSession]:
    """Yield a read-only, consistent session; always rolls back and closes.

    With `statement_timeout` (seconds) the server abandons any one statement that runs longer, so an
    audit cannot hold a production server hostage."""
    parsed = parse_url(url) if isinstance(url, str) else url
    if parsed.get_backend_name() == "postgresql" and not parsed.database:
        # libpq would connect to the database named like the user (usually `postgres`): never audit by accident.
        raise DbauditError(f"{mask_url(parsed)} names no database; add /DBNAME to the URL")
    if statement_timeout is not None and not (math.isfinite(statement_timeout) and statement_timeout > 0):
        raise DbauditError(f"a statement timeout must be a positive number of seconds, not {statement_timeout}")
    dialect = dialect_for(parsed.get_backend_name())
    engine = create_audit_engine(parsed)
    try:
        try:
            connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except DBAPIError as exc:
            raise DbauditError(f"cannot connect to {mask_url(parsed)}: {describe_db_error(exc)}") from None
        try:
            if statement_timeout:
                dialect.set_statement_timeout(connection, statement_timeout)
            dialect.begin_read_only(connection)
            database = dialect.current_database(connection, parsed)
            audited_schema = dialect.default_schema(schema)
            dialect.check_schema(connection, audited_schema)
            yield AuditSession(connection, dialect, parsed, database, audited_schema)
        except DBAPIError as exc:
            raise DbauditError(f"{mask_url(parsed)}: {describe_db_error(exc)}") from None
        finally:
            _end(connection)
    finally:
        engine.dispose()


def _end(connection: Connection) -> None:
    try:
        connection.exec_driver_sql("ROLLBACK")
    except SQLAlchemyError:
        pass  # the connection may already be gone; there is nothing to undo in a read-only session
    finally:
        connection.close()


def describe_db_error(exc: DBAPIError) -> str:
    """The driver's own words, one line, without SQLAlchemy's SQL echo and help links."""
    orig = exc.orig if exc.orig is not None else exc
    args: tuple[Any, ...] = getattr(orig, "args", ())
    if len(args) == 2 and isinstance(args[0], int):
        return first_line(f"({args[0]}) {args[1]}")
    return first_line(orig)
