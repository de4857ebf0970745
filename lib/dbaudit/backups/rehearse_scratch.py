"""The scratch database a rehearsal runs on: a restore of the backup, and who may touch it.

MySQL/MariaDB: restore-check (backups/restore.py) restores the dump into a new scratch database and
judges the restore; it is kept (`restore_check(keep=True)`), and a temporary account with ALL PRIVILEGES
on it alone (made by restore_account.create_account like restore-check's own, and named as restore-check's
was: see `_create_account`) is made here for the migrate and rollback steps. PostgreSQL: restore-check's
temporary role, which owns the scratch database and everything the restore created, is kept with it and
logs in for the steps (backups/rehearse_pg.py). SQLite: the backup is a database file, and the "restore" a copy.

Whatever happens (a failure, an error, Ctrl-C, SIGTERM), `open_scratch`'s block ends with the
scratch database dropped (unless kept) and the account dropped, its sessions killed first so a
statement still running cannot hold the drop. A SIGKILL cannot be cleaned up after: the scratch database
and the account are written into the scratch journal (backups/scratch_journal.py) before they exist, in one
entry from restore-check's first step to the drop, so the next rehearse or restore-check on that server drops
them once the server proves they are this run's (the database's comment, the account's password hash or
comment), and nothing else.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from dbaudit.backups import restore, restore_account
from dbaudit.backups.rehearse_pg import PgScratch, pg_scratch
from dbaudit.backups.restore_account import RestoreAccount, clean_abandoned, drop_account, drop_scratch, kill_sessions
from dbaudit.backups.scratch_journal import Journal
from dbaudit.core.checks import Check
from dbaudit.core.errors import DbauditError, first_line
from dbaudit.live.connect import describe_db_error, mask_url

SQLITE_MAGIC = b"SQLite format 3\x00"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")
ACCOUNT_PREFIX = restore_account.REHEARSE_ACCOUNT_PREFIX  # the migrate/rollback accounts (read when one is made)
# Whatever the migration does, it cannot touch another database, an account or the server.
STEP_PRIVILEGES = "ALL PRIVILEGES"


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
    account: RestoreAccount | None = None
    leftovers: list[str] = field(default_factory=list)  # what killed earlier runs left, dropped (or left) first
    kept: bool = False
    dropped: bool = field(default=False)
    drop_hint: str = ""  # kept: how to drop what was kept
    pg: PgScratch | None = None  # PostgreSQL: the restore and its role

    def kill(self, session: int) -> None:
        """Stop a runaway statement of a migrate/rollback step, from the admin connection."""
        if self.pg is not None:
            self.pg.terminate(session)
        elif self.admin is not None:
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
                 account: bool = True, leftovers: Sequence[str] = (), valid_for: float = 7200.0) -> Iterator[Scratch]:
    """Restore `dump` into the new scratch database `name` for the block; see the module's docstring.
    Without `account`, no temporary account is made (a reference restore that is only read; on PostgreSQL the
    restore's role reads it). `leftovers`: what an earlier `refuse_existing` dropped or left, reported with the
    restore's checks (PostgreSQL: restore-check reports its own). `valid_for`: seconds the PostgreSQL role may
    log in after the restore."""
    check_scratch_name(name)
    if server.get_backend_name() == "sqlite":
        with _sqlite_scratch(dump, server, name, keep) as scratch:
            yield scratch
        return
    if server.get_backend_name() == "postgresql":
        with _pg_scratch(dump, server, name, keep, progress, valid_for) as scratch:
            yield scratch
        return
    if server.get_backend_name() not in ("mysql", "mariadb"):
        raise DbauditError(f"rehearse restores MySQL/MariaDB dumps, pg_dumps and SQLite files; {mask_url(server)} "
                           "is none of those servers")
    with _mysql_scratch(dump, server, name, keep, progress, account, leftovers) as scratch:
        yield scratch


# --- MySQL / MariaDB ---------------------------------------------------------------------------------


def refuse_existing(server: URL, name: str) -> list[str]:
    """Before anything is read or created: a scratch database that exists is somebody's, never ours to drop. What
    killed runs left on this server goes first (their scratch database may have this name), dropped only with
    proof: what was dropped or left, one line each (see restore_account.clean_abandoned)."""
    engine = sa.create_engine(server.set(database=None), poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    try:
        return _refuse_existing(engine, server, name)[1]
    finally:
        engine.dispose()


def _refuse_existing(engine: sa.Engine, server: URL, name: str) -> tuple[str, list[str]]:
    """refuse_existing on `engine`: the server's identity (for the journal), and the leftover lines."""
    try:
        with engine.connect() as conn:
            identity = restore_account.server_identity(conn)
            leftovers = clean_abandoned(conn, identity)
            exists = conn.execute(sa.text("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = :n"),
                                  {"n": name}).scalar_one()
    except DBAPIError as exc:
        raise DbauditError(f"cannot connect to {mask_url(server)}: {describe_db_error(exc)}") from None
    if exists:
        raise DbauditError(f"refusing scratch database {name!r}: it already exists on {mask_url(server)} "
                           "(drop it or pick another with --scratch)")
    return identity, leftovers


@contextmanager
def _mysql_scratch(dump: str, server: URL, name: str, keep: bool, progress: bool, account: bool,
                   earlier: Sequence[str]) -> Iterator[Scratch]:
    url = server.set(database=None)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    scratch: Scratch | None = None
    journal: Journal | None = None
    try:
        identity, found = _refuse_existing(engine, server, name)
        leftovers = list(dict.fromkeys([*earlier, *found]))  # an unproven leftover is named by both looks
        journal = Journal(restore_account.BACKEND, identity, "rehearse")
        # restore-check drops the scratch database itself when it fails, errs or is interrupted; kept, it is ours,
        # and stays in this run's journal entry until it is dropped.
        result = restore.restore_check(dump, server.render_as_string(hide_password=False), scratch=name, keep=True,
                                       title=f"restore of {Path(dump).name} for a rehearsal", progress=progress,
                                       journal=journal)
        scratch = Scratch(name, "mysql", result.product, result.version, url.set(database=name), url, {},
                          [], [*result.checks, *_leftover_checks(leftovers)], result.restore_seconds,
                          restored=result.kept, source=result.database, admin=engine, leftovers=leftovers)
        if scratch.restored and result.passed and account:
            scratch.account = _create_account(engine, name, journal, _definer(result.account))
            scratch.step_url, scratch.env = _account_url(server, name, scratch.account)
            scratch.secrets = [scratch.account.password, *([str(server.password)] if server.password else [])]
        yield scratch
    finally:
        try:
            if journal is not None:
                _drop_mysql(engine, scratch, name, keep, journal)
                journal.close()
        finally:
            engine.dispose()


def _leftover_checks(leftovers: list[str]) -> list[Check]:
    if not leftovers:
        return []
    # A pass either way: what is left (unproven, so never dropped) is somebody's, and no fault of this rehearsal.
    return [Check("restore", "earlier runs", "pass", f"what killed earlier runs left on this server: "
                                                    f"{'; '.join(leftovers)}")]


_ACCOUNT = re.compile(r"^'([A-Za-z0-9_]+)'@'[^']*'$")


def _definer(restored_as: str) -> str | None:
    """The user restore-check restored as (`'user'@'host'`): the definer of every restored view, trigger, routine
    and event, since it strips the dump's DEFINER clauses."""
    found = _ACCOUNT.match(restored_as)
    return found[1] if found else None


def _create_account(engine: sa.Engine, scratch: str, journal: Journal, user: str | None = None) -> RestoreAccount:
    """The migrate/rollback account, named `user`: restore-check's account (gone by now), the definer of the
    restored objects, so that a trigger fires, a DEFINER view reads and a routine's body shows during the
    rehearsal as in production (not error 1449, "the user specified as a definer does not exist"), and what a
    rollback recreates has the definer it had before. Without `user`, ACCOUNT_PREFIX and a random part."""
    try:
        with engine.connect() as conn:
            return restore_account.create_account(conn, scratch, journal, privileges=STEP_PRIVILEGES,
                                                  prefix=ACCOUNT_PREFIX, purpose="rehearse migrates", name=user)
    except DBAPIError as exc:
        raise DbauditError(f"rehearse's temporary account: {describe_db_error(exc)}") from None


def _account_url(server: URL, name: str, account: RestoreAccount) -> tuple[URL, dict[str, str]]:
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


def _drop_mysql(engine: sa.Engine, scratch: Scratch | None, name: str, keep: bool, journal: Journal) -> None:
    """The account's sessions ended, the scratch database dropped unless kept, the account dropped; each struck
    from the journal once gone (a kept database is the operator's from then on)."""
    try:
        with engine.connect() as conn:
            if scratch is not None and scratch.account is not None:
                kill_sessions(conn, scratch.account.user)
            try:
                if journal.entry.scratch is not None and not (keep and scratch is not None and scratch.restored):
                    drop_scratch(conn, name)
                    if scratch is not None:
                        scratch.dropped = True
                if scratch is not None:
                    scratch.kept = scratch.restored and keep
                    if scratch.kept:
                        scratch.drop_hint = f"DROP DATABASE {restore_account.quote(conn, name)};"
                journal.record(scratch=None, scratch_marker=None)
            finally:
                if scratch is not None and scratch.account is not None:
                    drop_account(conn, scratch.account, journal)
    except DBAPIError as exc:
        raise DbauditError(f"rehearse's cleanup: {describe_db_error(exc)} (drop {name} and its account by hand)") \
            from None


# --- PostgreSQL: restore-check's role stays, and is the one the steps log in as ------------------------------


@contextmanager
def _pg_scratch(dump: str, server: URL, name: str, keep: bool, progress: bool, valid_for: float) -> Iterator[Scratch]:
    with pg_scratch(dump, server, name, keep=keep, valid_for=valid_for, progress=progress) as pg:
        check = pg.check
        url = pg.url
        scratch = Scratch(name, "postgresql", "PostgreSQL", pg.version, url, url, _pg_env(url), [], [], 0.0,
                          restored=pg.restored, source=pg.source, pg=pg)
        if check is not None:
            scratch.checks, scratch.seconds = check.checks, check.restore_seconds
        if pg.restored:
            scratch.account = RestoreAccount(pg.role, "", pg.password)
            scratch.secrets = [pg.password, *([str(server.password)] if server.password else [])]
        try:
            yield scratch
        finally:
            scratch.pg = None  # the block's end drops the role: nothing left to kill sessions of
    scratch.kept, scratch.dropped, scratch.drop_hint = pg.kept, not pg.kept and pg.restored, pg.drop_hint


def _pg_env(url: URL) -> dict[str, str]:
    """The scratch database as Laravel's pgsql connection reads it (and libpq's PG* variables, so a `psql` or
    `pg_*` tool in the command reaches it as the role too, never the operator's defaults)."""
    socket = url.query.get("host")
    host = socket if isinstance(socket, str) else url.host or "localhost"
    port, database, user, password = str(url.port or 5432), url.database or "", url.username or "", url.password or ""
    return {"DB_CONNECTION": "pgsql", "DB_HOST": host, "DB_PORT": port, "DB_DATABASE": database, "DB_USERNAME": user,
            "DB_PASSWORD": str(password), "DBAUDIT_SCRATCH_URL": url.render_as_string(hide_password=False),
            "PGHOST": host, "PGPORT": port, "PGDATABASE": database, "PGUSER": user, "PGPASSWORD": str(password)}


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
