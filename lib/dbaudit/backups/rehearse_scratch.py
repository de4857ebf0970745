"""The scratch database a rehearsal runs on: a restore of the backup, and who may touch it.

MySQL/MariaDB: restore-check (backups/restore.py) restores the dump into a new scratch database and
judges the restore; it is kept (`restore_check(keep=True)`), and a temporary account with rights on it
alone is made here for the migrate and rollback steps. `restore_check` and its result are the only
pieces of restore.py used: this module is the one seam, so restore.py can change how it loads a dump
and how it makes its own account. SQLite: the backup is a database file, and the "restore" a copy.

Whatever happens (a failure, an error, Ctrl-C, SIGTERM), `open_scratch`'s block ends with the
scratch database dropped (unless kept) and the account dropped, its sessions killed first so a
statement still running cannot hold the drop.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from dbaudit.backups import restore
from dbaudit.backups.restore_account import new_password
from dbaudit.core.checks import Check
from dbaudit.core.errors import DbauditError, first_line
from dbaudit.live.connect import describe_db_error, mask_url

SQLITE_MAGIC = b"SQLite format 3\x00"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")
ACCOUNT_PREFIX = "dbaudit_rehearse_"  # the migrate/rollback accounts: easy to find if a SIGKILL leaves one


@dataclass
class Account:
    """The temporary account migrate and rollback run as: ALL PRIVILEGES on the scratch database, nothing else."""

    user: str
    host: str
    password: str = field(repr=False)

    def __str__(self) -> str:
        return f"'{self.user}'@'{self.host}'"


@dataclass
class Scratch:
    """A restored scratch database, while its block runs."""

    name: str
    dialect: str  # mysql or sqlite
    product: str
    version: str
    snapshot_url: URL  # the server's own account on the scratch database: snapshots and triggers
    step_url: URL  # the temporary account on it: migrate and rollback (SQLite: the same file)
    env: dict[str, str]  # handed to a migrate/rollback command
    secrets: list[str]  # masked in every captured output
    checks: list[Check]  # the restore's own checks (restore-check's, or the copy's)
    seconds: float  # how long the restore took
    restored: bool  # False: the restore failed, and nothing is left to migrate
    source: str = ""  # the database the dump was taken of
    admin: sa.Engine | None = None  # MySQL: the server's own account, without a database
    account: Account | None = None
    kept: bool = False
    dropped: bool = field(default=False)

    def kill(self, session: int) -> None:
        """Stop a runaway statement of a migrate/rollback step (MySQL), from the admin connection."""
        if self.admin is not None:
            with suppress(DBAPIError), self.admin.connect() as conn:
                conn.exec_driver_sql(f"KILL CONNECTION {int(session)}")



def is_sqlite_file(path: str | Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(16) == SQLITE_MAGIC
    except OSError:
        return False


def default_scratch_name(dump: str | Path) -> str:
    stem = re.sub(r"[^A-Za-z0-9_]+", "_", Path(dump).name.split(".")[0]).strip("_")[:40] or "backup"
    return f"{stem}_rehearsal"


def check_scratch_name(name: str) -> None:
    if not _SAFE_NAME.match(name):
        raise DbauditError(f"scratch database name {name!r}: use letters, digits and _ only (at most 64)")


@contextmanager
def open_scratch(dump: str, server: URL, name: str, keep: bool, progress: bool = False,
                 account: bool = True) -> Iterator[Scratch]:
    """Restore `dump` into the new scratch database `name` for the block; see the module's docstring.
    Without `account`, no temporary account is made (a reference restore that is only read)."""
    check_scratch_name(name)
    if server.get_backend_name() == "sqlite":
        with _sqlite_scratch(dump, server, name, keep) as scratch:
            yield scratch
        return
    if server.get_backend_name() not in ("mysql", "mariadb"):
        raise DbauditError(f"rehearse restores MySQL/MariaDB dumps and SQLite files; {mask_url(server)} is neither")
    with _mysql_scratch(dump, server, name, keep, progress, account) as scratch:
        yield scratch


# --- MySQL / MariaDB ---------------------------------------------------------------------------------


def refuse_existing(server: URL, name: str) -> None:
    """Before anything is read or created: a scratch database that exists is somebody's, never ours to drop."""
    engine = sa.create_engine(server.set(database=None), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            exists = conn.execute(sa.text("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = :n"),
                                  {"n": name}).scalar_one()
    except DBAPIError as exc:
        raise DbauditError(f"cannot connect to {mask_url(server)}: {describe_db_error(exc)}") from None
    finally:
        engine.dispose()
    if exists:
        raise DbauditError(f"refusing scratch database {name!r}: it already exists on {mask_url(server)} "
                           "(drop it or pick another with --scratch)")


@contextmanager
def _mysql_scratch(dump: str, server: URL, name: str, keep: bool, progress: bool, account: bool) -> Iterator[Scratch]:
    refuse_existing(server, name)
    url = server.set(database=None)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    scratch: Scratch | None = None
    try:
        # restore-check drops the scratch database itself when it fails, errs or is interrupted; kept, it is ours.
        result = restore.restore_check(dump, server.render_as_string(hide_password=False), scratch=name, keep=True,
                                       title=f"restore of {Path(dump).name} for a rehearsal", progress=progress)
        scratch = Scratch(name, "mysql", result.product, result.version, url.set(database=name), url, {},
                          [], result.checks, result.restore_seconds, restored=result.kept, source=result.database,
                          admin=engine)
        if scratch.restored and result.passed and account:
            scratch.account = create_account(engine, name, user=_definer(result.account))
            scratch.step_url, scratch.env = _account_url(server, name, scratch.account)
            scratch.secrets = [scratch.account.password, *([str(server.password)] if server.password else [])]
        yield scratch
    finally:
        try:
            if scratch is not None:
                _drop_mysql(engine, scratch, keep)
        finally:
            engine.dispose()


def _account_url(server: URL, name: str, account: Account) -> tuple[URL, dict[str, str]]:
    query = {k: v for k, v in server.query.items() if k != "read_default_file"}  # its TLS settings, not its user
    url = URL.create(server.drivername, account.user, account.password, server.host or "127.0.0.1",
                     server.port or 3306, name, query)
    env = {"DB_CONNECTION": "mysql", "DB_HOST": url.host or "127.0.0.1", "DB_PORT": str(url.port), "DB_DATABASE": name,
           "DB_USERNAME": account.user, "DB_PASSWORD": account.password,
           "DBAUDIT_SCRATCH_URL": url.set(query={}).render_as_string(hide_password=False)}
    socket = query.get("unix_socket")
    if isinstance(socket, str) and socket:
        # Over the socket the account is 'user'@'localhost', which a TCP connection to DB_HOST:DB_PORT is not:
        # Laravel reads DB_SOCKET (its unix_socket), and the URL says it too.
        env["DB_SOCKET"] = socket
        env["DBAUDIT_SCRATCH_URL"] = url.set(query={"unix_socket": socket}).render_as_string(hide_password=False)
    return url, env


def _drop_mysql(engine: sa.Engine, scratch: Scratch, keep: bool) -> None:
    try:
        if scratch.account is not None:
            _kill_sessions(engine, scratch.account.user)
        if scratch.restored and not keep:
            _drop_database(engine, scratch.name)
            scratch.dropped = True
        scratch.kept = scratch.restored and keep
    finally:
        drop_account(engine, scratch.account)


_ACCOUNT = re.compile(r"^'([A-Za-z0-9_]+)'@'[^']*'$")


def _definer(restored_as: str) -> str | None:
    """The user restore-check restored as (`'user'@'host'`): the definer of every restored view, trigger, routine
    and event, since it strips the dump's DEFINER clauses."""
    found = _ACCOUNT.match(restored_as)
    return found[1] if found else None


def create_account(engine: sa.Engine, scratch: str, user: str | None = None) -> Account:
    """A fresh account with ALL PRIVILEGES on `scratch`.* only: whatever the migration does, it cannot touch
    another database, an account or the server. Refused (never the connecting account instead) when the
    connecting account may not create it. `user`: its name, else ACCOUNT_PREFIX and a random part. A rehearsal
    names it as restore-check's account was named (gone by now): the definer of the restored objects, so that a
    trigger fires, a DEFINER view reads and a routine's body shows during the rehearsal as in production (not
    error 1449, "the user specified as a definer does not exist"), and what a rollback recreates has the
    definer it had before."""
    preparer = engine.dialect.identifier_preparer
    pattern = preparer.quote_identifier(scratch.replace("_", "\\_"))  # in a GRANT, _ would match any character
    password = new_password()
    account = Account(user or f"{ACCOUNT_PREFIX}{secrets.token_hex(6)}", "%", password)
    try:
        with engine.connect() as conn:
            me = str(conn.exec_driver_sql("SELECT USER()").scalar_one())
            account.host = me.rpartition("@")[2] or "%"  # as the server sees this host: '%' could lose to ''@'localhost'
            conn.exec_driver_sql("CREATE USER %s@%s IDENTIFIED BY %s", (account.user, account.host, account.password))
            try:
                conn.exec_driver_sql(f"GRANT ALL PRIVILEGES ON {pattern}.* TO %s@%s", (account.user, account.host))
            except DBAPIError:
                conn.exec_driver_sql("DROP USER IF EXISTS %s@%s", (account.user, account.host))
                raise
    except DBAPIError as exc:
        raise DbauditError(f"rehearse migrates as a temporary account limited to the scratch database, and it "
                           f"cannot be made: {describe_db_error(exc)} (the connecting account needs CREATE USER and "
                           f"GRANT ALL ON `{scratch}`.* … WITH GRANT OPTION)") from None
    return account


def drop_account(engine: sa.Engine, account: Account | None) -> None:
    if account is None:
        return
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("DROP USER IF EXISTS %s@%s", (account.user, account.host))
    except DBAPIError as exc:
        raise DbauditError(f"drop user {account}: {describe_db_error(exc)} (drop it by hand)") from None


def _drop_database(engine: sa.Engine, name: str) -> None:
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {engine.dialect.identifier_preparer.quote_identifier(name)}")
    except DBAPIError as exc:
        raise DbauditError(f"drop database {name}: {describe_db_error(exc)} (drop it by hand)") from None


def _kill_sessions(engine: sa.Engine, user: str) -> None:
    """A command killed at its limit may leave its statement running on the server, holding the database."""
    with suppress(DBAPIError), engine.connect() as conn:
        ids = conn.execute(sa.text("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = :u"), {"u": user}).all()
        for (session,) in ids:
            with suppress(DBAPIError):
                conn.exec_driver_sql(f"KILL CONNECTION {int(session)}")


# --- SQLite: the backup is a file, its restore a copy --------------------------------------------------


@contextmanager
def _sqlite_scratch(dump: str, server: URL, name: str, keep: bool) -> Iterator[Scratch]:
    """`server` is sqlite:///FOLDER (the scratch file FOLDER/<name>.sqlite) or sqlite:// (a temporary folder)."""
    temporary = None if server.database else tempfile.mkdtemp(prefix="dbaudit-rehearse-")
    folder = Path(server.database or temporary or ".")
    target = folder / f"{name}.sqlite"
    if target.exists():
        raise DbauditError(f"refusing scratch database {target}: it already exists (remove it or pick another "
                           "with --scratch)")
    if not folder.is_dir():
        raise DbauditError(f"scratch folder {folder} does not exist (--server sqlite:///FOLDER)")
    url = URL.create("sqlite", database=str(target))
    scratch = Scratch(name, "sqlite", "SQLite", sqlite3.sqlite_version, url, url,
                      {"DB_CONNECTION": "sqlite", "DB_DATABASE": str(target.resolve()),
                       "DBAUDIT_SCRATCH_URL": f"sqlite:///{target.resolve()}"}, [], [], 0.0, restored=False,
                      source=Path(dump).name.split(".")[0])
    try:
        scratch.checks, scratch.seconds = _copy(Path(dump), target)
        scratch.restored = True
        yield scratch
    finally:
        scratch.kept = keep and target.exists()
        if not keep:
            for suffix in ("", "-journal", "-wal", "-shm"):
                Path(f"{target}{suffix}").unlink(missing_ok=True)
            scratch.dropped = True
        if temporary and not keep:
            shutil.rmtree(temporary, ignore_errors=True)


def _copy(source: Path, target: Path) -> tuple[list[Check], float]:
    started = time.monotonic()
    shutil.copyfile(source, target)
    seconds = round(time.monotonic() - started, 3)
    same = _sha256(source) == _sha256(target)
    checks = [Check("restore", "copy", "pass" if same else "fail",
                    f"copied {target.stat().st_size:,} bytes in {seconds:.1f} s"
                    + ("" if same else "; the copy's SHA-256 differs from the backup's"))]
    return checks, seconds


def sqlite_file_checks(path: Path) -> list[Check]:
    """The dump-check of an SQLite backup: the file is a database, and SQLite finds it intact."""
    if not is_sqlite_file(path):
        return [Check("dump", "format", "fail", f"{path} is not an SQLite database file")]
    checks = [Check("dump", "format", "pass", f"SQLite database, {path.stat().st_size:,} bytes, "
                                             f"sha256 {_sha256(path)[:16]}…")]
    try:
        conn = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)
        try:
            answer = [row[0] for row in conn.execute("PRAGMA integrity_check").fetchall()]
            tables = conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' "
                                  "AND name NOT LIKE 'sqlite_%'").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return [*checks, Check("dump", "integrity", "fail", f"SQLite cannot read it: {first_line(exc)}")]
    ok = answer == ["ok"]
    checks.append(Check("dump", "integrity", "pass" if ok else "fail",
                        "PRAGMA integrity_check: ok" if ok else f"PRAGMA integrity_check: {'; '.join(answer[:3])}"))
    checks.append(Check("content", "tables", "pass" if tables else "fail", f"{tables} table(s)"))
    return checks


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
