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

from dbaudit.core import secrets
from dbaudit.core.errors import DbauditError, first_line
from dbaudit.core.terminal import visible
from dbaudit.live.dialects import Dialect, dialect_for

PASSWORD_ENV = "DBAUDIT_PASSWORD"
#: How long an audit session waits for a lock another session holds (LOCK TABLES … WRITE, an ALTER, an
#: ACCESS EXCLUSIVE lock) before it fails with a clear message instead of hanging: seconds.
DEFAULT_LOCK_TIMEOUT = 30.0


@dataclass
class AuditSession:
    """An open read-only transaction plus what we know of its server."""

    connection: Connection
    dialect: Dialect
    url: URL
    database: str
    schema: str | None
    server_session: int | None = None  # its id on the server (MySQL connection id, PostgreSQL pid)
    statement_timeout: float | None = None
    lock_timeout: float | None = None

    @property
    def masked_url(self) -> str:
        return mask_url(self.url)

    def reassert(self) -> None:
        """Set the session's limits and name resolution again: code a metric reached (a view's function)
        may have changed them with set_config() or SET SESSION, and what runs next must not inherit that."""
        _guard(self.connection, self.dialect, self.schema, self.statement_timeout, self.lock_timeout)


def _guard(connection: Connection, dialect: Dialect, schema: str | None, statement_timeout: float | None,
           lock_timeout: float | None) -> None:
    if statement_timeout:
        dialect.set_statement_timeout(connection, statement_timeout)
    if lock_timeout:
        dialect.set_lock_timeout(connection, lock_timeout)
    dialect.pin_search_path(connection, schema)


def mask_url(url: str | URL) -> str:
    """The URL as it may be printed, logged or archived: never with its password."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except (ArgumentError, ValueError):
        return "<unparseable URL>"
    # Rendered whole, then masked by the one function that knows every credential form (query too).
    return secrets.mask_url(parsed.render_as_string(hide_password=False))


# Schemes other tools (and SQLAlchemy without a driver) use, mapped to the drivers dbaudit installs.
DRIVER_ALIASES = {"mysql": "mysql+pymysql", "mariadb": "mariadb+pymysql", "postgres": "postgresql+psycopg",
                  "postgresql": "postgresql+psycopg"}


def parse_url(url: str) -> URL:
    """Parse a SQLAlchemy URL and fill in the password from the environment when it has none."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        # Neither the text nor the parser's message is echoed: `u:p@ss:word@h` fails on port 'word@h'.
        detail = " (its port is not a number, or its password holds an unencoded '@' or ':')" \
            if isinstance(exc, ValueError) else ""
        raise DbauditError(f"not a database URL{detail}; expected e.g. mysql+pymysql://user@host/db") from None
    if parsed.drivername in DRIVER_ALIASES:  # mysql://, postgres:// as other tools write them
        parsed = parsed.set(drivername=DRIVER_ALIASES[parsed.drivername])
    try:
        parsed.get_dialect()  # a typo such as mysql+pymsql:// is the user's, told here, not an "unexpected" error later
    except (NoSuchModuleError, ImportError):
        raise DbauditError(f"unsupported database URL {mask_url(parsed)}: no SQLAlchemy driver {parsed.drivername!r}; "
                           "expected e.g. mysql+pymysql://user@host/db") from None
    if parsed.password is None and os.environ.get(PASSWORD_ENV) and parsed.get_backend_name() != "sqlite":
        parsed = parsed.set(password=os.environ[PASSWORD_ENV])
    _check_credentials(parsed)
    option_file = parsed.query.get("read_default_file")
    if isinstance(option_file, str):
        # PyMySQL hands the path to configparser, which does not expand "~" and skips a missing file silently.
        path = os.path.expanduser(option_file)
        if not os.path.isfile(path) or not os.access(path, os.R_OK):
            raise DbauditError(f"option file {path} (read_default_file) does not exist or cannot be read")
        parsed = parsed.update_query_dict({"read_default_file": path})
    return parsed


def _check_credentials(parsed: URL) -> None:
    """Register the URL's secrets for masking; refuse a password whose `@` was not percent-encoded.

    SQLAlchemy reads `user:p@ss@host` as host `ss@host`, and the driver's error then prints that part of
    the password; the URL is refused before anything connects (naming no part of it)."""
    secrets.remember_secret(parsed.password)
    for key, value in parsed.query.items():
        if secrets.is_secret_key(key):
            for item in (value,) if isinstance(value, str) else value:
                secrets.remember_secret(item)
    if parsed.host and "@" in parsed.host:
        raise DbauditError("the URL's password holds an unencoded '@': write it as %40 (or use DBAUDIT_PASSWORD)")


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


def _check_seconds(what: str, seconds: float | None) -> None:
    if seconds is not None and not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds > 0):
        raise DbauditError(f"a {what} must be a positive number of seconds, not {seconds}")


@contextmanager
def audit_session(url: str | URL, schema: str | None = None,
                  statement_timeout: float | None = None,
                  lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT) -> Iterator[AuditSession]:
    """Yield a read-only, consistent session; always rolls back and closes.

    With `statement_timeout` (seconds) the server abandons any one statement that runs longer, so an
    audit cannot hold a production server hostage. `lock_timeout` (seconds, default DEFAULT_LOCK_TIMEOUT;
    None: the server's own setting) bounds each wait for a lock held by another session. Both are
    rounded up to what the server can express (milliseconds, or whole seconds for MariaDB's lock waits),
    never down to 0, which servers read as "no limit"."""
    parsed = parse_url(url) if isinstance(url, str) else url
    if parsed.get_backend_name() == "postgresql" and not parsed.database:
        # libpq would connect to the database named like the user (usually `postgres`): never audit by accident.
        raise DbauditError(f"{mask_url(parsed)} names no database; add /DBNAME to the URL")
    _check_seconds("statement timeout", statement_timeout)
    _check_seconds("lock timeout", lock_timeout)
    dialect = dialect_for(parsed.get_backend_name())
    engine = create_audit_engine(parsed)
    try:
        try:
            connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except DBAPIError as exc:
            raise DbauditError(f"cannot connect to {mask_url(parsed)}: {describe_db_error(exc)}") from None
        server_session = _server_session(connection, parsed)
        try:
            if statement_timeout:
                dialect.set_statement_timeout(connection, statement_timeout)
            if lock_timeout:
                dialect.set_lock_timeout(connection, lock_timeout)
            dialect.begin_read_only(connection)
            audited_schema = dialect.default_schema(schema)
            dialect.pin_search_path(connection, audited_schema)
            database = dialect.current_database(connection, parsed)
            dialect.check_schema(connection, audited_schema)
            yield AuditSession(connection, dialect, parsed, database, audited_schema, server_session,
                               statement_timeout, lock_timeout)
        except DBAPIError as exc:
            holders = _lock_holders(parsed, exc, server_session)
            raise DbauditError(f"{mask_url(parsed)}: {describe_db_error(exc)}{holders}") from None
        except KeyboardInterrupt:  # Ctrl-C, SIGTERM: the server must not go on waiting or reading for us
            _end_server_session(parsed, server_session)
            raise
        finally:
            _end(connection)
    finally:
        engine.dispose()


# The session's id on its server, and how another session ends it (own sessions need no privilege).
_SESSION_ID = {"mysql": "SELECT CONNECTION_ID()", "mariadb": "SELECT CONNECTION_ID()",
               "postgresql": "SELECT pg_catalog.pg_backend_pid()"}
_END_SESSION = {"mysql": "KILL CONNECTION {id}", "mariadb": "KILL CONNECTION {id}",
                "postgresql": "SELECT pg_catalog.pg_terminate_backend({id})"}
_CANCEL_CONNECT_TIMEOUT = 5  # seconds: an interrupted run must end even if the server stopped answering


def _server_session(connection: Connection, url: URL) -> int | None:
    sql = _SESSION_ID.get(url.get_backend_name())
    if sql is None:
        return None
    try:
        return int(connection.exec_driver_sql(sql).scalar_one())
    except (SQLAlchemyError, TypeError, ValueError):
        return None


def end_server_session(session: AuditSession) -> None:
    """End a session from outside (another thread, after an interrupt): its statement fails at once
    instead of running, or waiting on a lock, to its end."""
    _end_server_session(session.url, session.server_session)


# PostgreSQL names no relation in a lock timeout; its catalog functions wait on the table's lock too.
_PG_LOCKED = """
SELECT DISTINCT c.relname FROM pg_catalog.pg_locks l
JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) l.relation
WHERE l.granted AND l.mode OPERATOR(pg_catalog.=) 'AccessExclusiveLock'
  AND l.pid OPERATOR(pg_catalog.<>) %(session)s AND l.pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()
  AND l.database OPERATOR(pg_catalog.=) (SELECT oid FROM pg_catalog.pg_database
                                          WHERE datname OPERATOR(pg_catalog.=) pg_catalog.current_database())
ORDER BY 1 LIMIT 10
"""


def _lock_holders(url: URL, exc: DBAPIError, session: int | None) -> str:
    """On a PostgreSQL lock timeout, the tables other sessions hold exclusively, asked from a second session."""
    if url.get_backend_name() != "postgresql" or getattr(exc.orig, "sqlstate", None) not in _LOCK_SQLSTATES:
        return ""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": _CANCEL_CONNECT_TIMEOUT})
    try:
        with engine.connect() as conn:
            names = [str(r[0]) for r in conn.exec_driver_sql(_PG_LOCKED, {"session": int(session or 0)})]
    except (SQLAlchemyError, OSError):
        return ""
    finally:
        engine.dispose()
    return f"; locked by another session: {', '.join(visible(n) for n in names)}" if names else ""


def _end_server_session(url: URL, session: int | None) -> None:
    """After an interrupt the client just closes its socket, and the server keeps the session waiting (on
    a lock, say) until it next writes to it; end it from a second, short-lived session instead."""
    if session is None:
        return
    backend = url.get_backend_name()
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool,
                              connect_args={"connect_timeout": _CANCEL_CONNECT_TIMEOUT})
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(_END_SESSION[backend].format(id=int(session)))
    except (SQLAlchemyError, OSError):
        pass  # best effort: the session ends on its own when its statement finishes
    finally:
        engine.dispose()


def _end(connection: Connection) -> None:
    try:
        connection.exec_driver_sql("ROLLBACK")
    except SQLAlchemyError:
        pass  # the connection may already be gone; there is nothing to undo in a read-only session
    finally:
        connection.close()


# MySQL/MariaDB: lock wait timeout; PostgreSQL SQLSTATE 55P03 lock_not_available (lock_timeout).
_LOCK_ERRORS = (1205,)
_LOCK_SQLSTATES = ("55P03",)
LOCK_HINT = "another session holds a lock dbaudit needs; it gave up waiting (lock timeout, see docs/security.md)"


def describe_db_error(exc: DBAPIError) -> str:
    """The driver's own words, one line, without SQLAlchemy's SQL echo and help links."""
    orig = exc.orig if exc.orig is not None else exc
    args: tuple[Any, ...] = getattr(orig, "args", ())
    # Masked here too, not only on the terminal: these words go into results and reports.
    if len(args) == 2 and isinstance(args[0], int):
        hint = f" ({LOCK_HINT})" if args[0] in _LOCK_ERRORS else ""
        return secrets.mask_text(first_line(f"({args[0]}) {args[1]}")) + hint
    hint = f" ({LOCK_HINT})" if getattr(orig, "sqlstate", None) in _LOCK_SQLSTATES else ""
    return secrets.mask_text(first_line(orig)) + hint
