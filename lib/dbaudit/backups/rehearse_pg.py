"""The scratch database of a PostgreSQL rehearsal: restore-check's restore of a pg_dump, kept for the rehearsal.

restore-check (backups/pgrestore.py) restores the dump as a temporary LOGIN role (no superuser, CREATEDB,
CREATEROLE, REPLICATION or BYPASSRLS) into a scratch database that role owns, judges the restore, and drops
both. A rehearsal needs them for longer: the migration must run as the role that owns what the restore
created (only an owner may ALTER a table), and it must *log in* as that role — never `SET ROLE` from the
operator's session, which `RESET ROLE` in the migration (or in a function the dump defined) would undo.
So this module runs the same pieces of pgrestore (the operator's checks, the role and database with their
proof comment, the load, the restore's comparison) and keeps the role able to log in until the block ends.

The journal entry (backups/scratch_journal.py) is written before the role exists and removed only once the
role and database are gone, so a rehearsal killed with SIGKILL leaves an entry the next restore-check or
rehearsal uses to drop them (once the server proves they are that run's). Kept (`keep`), the database and
its role stay, the role no longer able to log in (giving the objects to the operator would make the dump's
SECURITY DEFINER functions run with the operator's rights), and the caller says how to drop them.
"""

from __future__ import annotations

import os
import re
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from dbaudit.backups import pgrestore, scratch_journal
from dbaudit.backups.formats import read_backup
from dbaudit.backups.restore import RestoreCheck
from dbaudit.backups.restore_account import new_password
from dbaudit.core.checks import Check
from dbaudit.core.errors import DbauditError, first_line
from dbaudit.live.connect import describe_db_error, mask_url

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_]{1,63}$")
CONNECTION_LIMIT = 8  # the migration, a command's own connections, the snapshots: never a pool of hundreds


@dataclass
class PgScratch:
    """A restored scratch database on PostgreSQL and the role that owns it, while its block runs."""

    name: str
    role: str
    password: str = field(repr=False)
    url: URL = field(repr=False)  # the role on the scratch database: restore checks, snapshots, steps
    check: RestoreCheck | None = None  # restore-check's judgement of the restore
    restored: bool = False  # loaded and read back: something to migrate
    source: str = ""  # the database the dump was taken of
    version: str = ""
    admin: sa.Engine | None = None  # the operator's connection (no scratch database): only to end sessions
    kept: bool = False
    drop_hint: str = ""  # kept: the statements that drop what was kept

    def terminate(self, pid: int | None = None) -> None:
        """End one session of the role (a runaway statement of a step), or every one of them."""
        if self.admin is None:
            return
        where = "pid OPERATOR(pg_catalog.=) :pid" if pid is not None else "usename OPERATOR(pg_catalog.=) :role"
        with suppress(DBAPIError), self.admin.connect() as conn:
            conn.execute(sa.text(f"SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity "
                                 f"WHERE {where} AND usename OPERATOR(pg_catalog.=) :role"),
                         {"pid": pid, "role": self.role})


def check_pg_scratch_name(name: str, server: URL) -> None:
    if not _SAFE_NAME.match(name) or name.lower() in {"postgres", "template0", "template1"} or \
            name.lower() == (server.database or "").lower():
        raise DbauditError(f"scratch database name {name!r}: letters, digits and _ only (at most 63), not the "
                           "server's database or a system database")


def _admin_engine(server: URL) -> sa.Engine:
    return sa.create_engine(server.set(database=server.database or "postgres"), poolclass=sa.pool.NullPool,
                            isolation_level="AUTOCOMMIT")


def refuse_existing_pg(server: URL, name: str) -> None:
    """Before anything is read or created: a scratch database that exists is somebody's, never ours to drop."""
    engine = _admin_engine(server)
    try:
        pgrestore._refuse_existing(engine, name)
    except DBAPIError as exc:
        raise DbauditError(f"cannot connect to {mask_url(server)}: {describe_db_error(exc)}") from None
    finally:
        engine.dispose()


@contextmanager
def pg_scratch(dump: str | os.PathLike[str], server: URL, name: str, *, role_prefix: str, keep: bool = False,
               valid_for: float = 7200.0, title: str | None = None, progress: bool = False,
               timeout: float = pgrestore.DEFAULT_TIMEOUT) -> Iterator[PgScratch]:
    """Restore the pg_dump `dump` into the new database `name` as a new role `<role_prefix><token>` (restore-check's
    safety: see pgrestore), judged as restore-check judges it, for the block; the role may log in for `valid_for`
    seconds after the restore. Dropped at the block's end (kept with `keep`), whatever ends it."""
    check_pg_scratch_name(name, server)
    admin_url = server.set(database=server.database or "postgres")
    engine = _admin_engine(server)
    try:
        version, cleaned = pgrestore._prepare(engine, admin_url)  # also drops what killed runs left
        contents, format_checks = read_backup(dump, progress)
        if not contents.format.startswith("pg_dump"):
            raise DbauditError(f"{contents.file.path} is a {contents.format} dump, not a pg_dump: rehearse it on "
                               "MySQL or MariaDB")
        source = server.database or contents.header.database or Path(contents.file.path).name.split(".")[0]
        token = secrets.token_hex(8)
        # The role's password is registered for masking: a driver error or a command's output never shows it.
        run = pgrestore._Run(token, f"{role_prefix}{token}", new_password(), name, time.monotonic() + timeout)
        pgrestore._refuse_existing(engine, name)
        result = pgrestore._Result(server.set(database=None), source, run, contents, version,
                                   title or f"restore of {Path(contents.file.path).name} for a rehearsal", cleaned)
        scratch = PgScratch(name, run.role, run.password, admin_url.set(username=run.role, password=run.password,
                                                                         database=name),
                            source=source, version=version, admin=engine)
        refusal = pgrestore._refusal(contents, format_checks)
        if refusal:
            scratch.check = result.build([*cleaned, *refusal], None, 0.0, kept=False)
            yield scratch
            return
        entry = _journal(admin_url, run)  # before the role exists: a SIGKILL from here on leaves it findable
        try:
            pgrestore._create(engine, run, timeout)
            scratch.check, scratch.restored = _restore(engine, scratch, run, result, progress, timeout)
            if scratch.restored:
                _extend(engine, run.role, valid_for)
            yield scratch
        finally:
            _end(engine, scratch, run, entry, keep)
    finally:
        engine.dispose()


def _restore(engine: sa.Engine, scratch: PgScratch, run: pgrestore._Run, result: pgrestore._Result, progress: bool,
             timeout: float) -> tuple[RestoreCheck, bool]:
    """Load the dump as the role and compare the restore with the dump, as pg_restore_check does."""
    watchdog = threading.Timer(max(0.0, run.deadline - time.monotonic()), pgrestore._terminate, (engine, run.role))
    watchdog.daemon = True
    watchdog.start()
    try:
        started = time.monotonic()
        error = pgrestore._load(scratch.url, run, result.contents, progress)
        seconds = round(time.monotonic() - started, 3)
        if error is None and time.monotonic() > run.deadline:
            error = f"the restore did not end within {timeout:g} s"
        if error:
            return result.build([*result.cleaned, Check("restore", "load", "fail", error)], None, seconds,
                                kept=False), False
        try:
            restored, others = pgrestore._snapshots(scratch.url, run, result.contents, None, "none", progress)
        except (DbauditError, DBAPIError) as exc:
            checks = [*result.cleaned, Check("restore", "load", "pass", f"restored in {seconds:.1f} s"),
                      Check("restore", "snapshot", "fail", f"restored, but not read: {first_line(str(exc))}")]
            return result.build(checks, None, seconds, kept=False), False
    finally:
        watchdog.cancel()
    checks = [*result.cleaned, Check("restore", "load", "pass", f"restored in {seconds:.1f} s as temporary role "
                                                                f"{run.role}"),
              *pgrestore.compare_restored(result.contents, restored, None, others)]
    return result.build(checks, restored, seconds, kept=True), True


def _journal(admin_url: URL, run: pgrestore._Run) -> scratch_journal.JournalEntry:
    """The run's entry, proven as restore-check's are (the token in the role's comment): a later run drops them."""
    entry = scratch_journal.new_entry(run.token, pgrestore.BACKEND, pgrestore._server_key(admin_url), run.role,
                                      run.scratch)
    scratch_journal.write_entry(entry)
    return entry


def _extend(engine: sa.Engine, role: str, seconds: float) -> None:
    """The role logs in for the rest of the rehearsal (its steps, snapshots, a second restore), then no more."""
    until = (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat(timespec="seconds")
    pgrestore._admin(engine, [f"ALTER ROLE {pgrestore._quote(engine, role)} CONNECTION LIMIT {CONNECTION_LIMIT} "
                              f"VALID UNTIL {pgrestore._literal(until)}"], f"prepare the temporary role {role}")


def _end(engine: sa.Engine, scratch: PgScratch, run: pgrestore._Run, entry: scratch_journal.JournalEntry,
         keep: bool) -> None:
    """Every session of the role ended (a command killed at its limit may leave one running), then the database and
    the role dropped — or, kept, the role locked; the journal entry goes once nothing is left to find."""
    scratch.terminate()
    role, database = pgrestore._quote(engine, run.role), pgrestore._quote(engine, run.scratch)
    if keep and scratch.restored:
        pgrestore._admin(engine, [f"ALTER ROLE {role} NOLOGIN"], f"lock role {run.role}")
        scratch.kept = True
        scratch.drop_hint = f"DROP DATABASE {database} WITH (FORCE); DROP ROLE {role};"
        scratch_journal.remove_entry(entry)
        return
    if "database" in run.created:
        pgrestore._drop_database(engine, run.scratch)
    if "role" in run.created:
        pgrestore._drop_role(engine, run.role)
    scratch_journal.remove_entry(entry)
