"""The scratch database of a PostgreSQL rehearsal: restore-check's restore of a pg_dump, kept for the rehearsal.

restore-check (backups/pgrestore.py, `pg_restore_check`) restores the dump as a temporary LOGIN role (no
superuser, CREATEDB, CREATEROLE, REPLICATION or BYPASSRLS) into a scratch database that role owns, and judges the
restore. With `keep=True` it leaves both, the role unable to log in. A rehearsal takes them over: the migration
must run as the role that owns what the restore created (only an owner may ALTER a table), and it must *log in*
as that role — never `SET ROLE` from the operator's session, which `RESET ROLE` in the migration (or in a
function the dump defined) would undo. So the role gets a new random password (sent only as a SCRAM verifier),
may log in again until the rehearsal's time is up, and is dropped with the database when the block ends.
`pg_restore_check` is the only piece of pgrestore's restore used: it can change how it loads a dump.

The journal (backups/scratch_journal.py) names the role and the database from the moment they are taken over
until they are dropped, proven as restore-check's own entries are (the token of the role's comment, which only
a role with CREATEROLE can set), so a rehearsal killed with SIGKILL leaves an entry the next restore-check or
rehearsal uses to drop them. Kept (`keep`), the database and its role stay, the role again unable to log in
(giving the objects to the operator would make the dump's SECURITY DEFINER functions run with the operator's
rights), and the caller says how to drop them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from dbaudit.backups import pgrestore
from dbaudit.backups.restore import RestoreCheck
from dbaudit.backups.restore_account import new_password
from dbaudit.backups.scratch_journal import Journal
from dbaudit.core.errors import DbauditError
from dbaudit.live.connect import describe_db_error, mask_url

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_]{1,63}$")
_MARK = re.compile(r"^dbaudit restore-check [0-9a-f]{8,64}$")  # the role's comment pg_restore_check writes
_VERIFIER = re.compile(r"^SCRAM-SHA-256\$[0-9]+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$")
CONNECTION_LIMIT = 8  # the migration, a command's own connections, the snapshots: never a pool of hundreds


@dataclass
class PgScratch:
    """A restored scratch database on PostgreSQL and the role that owns it, while its block runs."""

    name: str
    url: URL = field(repr=False)  # the role on the scratch database: snapshots, steps, triggers
    admin: sa.Engine | None = None  # the operator's connection: takes over, ends sessions, drops
    role: str = ""
    password: str = field(default="", repr=False)
    check: RestoreCheck | None = None  # restore-check's judgement of the restore
    restored: bool = False  # restored, kept and taken over: something to migrate
    source: str = ""  # the database the dump was taken of
    version: str = ""
    kept: bool = False
    drop_hint: str = ""  # kept: the statements that drop what was kept

    def terminate(self, pid: int | None = None) -> None:
        """End one session of the role (a runaway statement of a step), or every one of them."""
        if self.admin is None or not self.role:
            return
        where = " AND pid OPERATOR(pg_catalog.=) :pid" if pid is not None else ""
        with suppress(DBAPIError), self.admin.connect() as conn:
            conn.execute(sa.text("SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity "
                                 f"WHERE usename OPERATOR(pg_catalog.=) :role{where}"), {"pid": pid, "role": self.role})


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
        with engine.connect() as conn:
            exists = conn.execute(sa.text("SELECT 1 FROM pg_catalog.pg_database WHERE datname OPERATOR(pg_catalog.=) "
                                          ":n"), {"n": name}).scalar()
    except DBAPIError as exc:
        raise DbauditError(f"cannot connect to {mask_url(server)}: {describe_db_error(exc)}") from None
    finally:
        engine.dispose()
    if exists:
        raise DbauditError(f"refusing scratch database {name!r}: it already exists on {mask_url(server)} "
                           "(drop it or pick another with --scratch)")


@contextmanager
def pg_scratch(dump: str | os.PathLike[str], server: URL, name: str, *, keep: bool = False,
               valid_for: float = 7200.0, title: str | None = None, progress: bool = False) -> Iterator[PgScratch]:
    """Restore the pg_dump `dump` into the new database `name` with restore-check (its safety, its temporary role,
    its judgement), and hand the block the role, able to log in for `valid_for` seconds. The database and the role
    are dropped when the block ends (kept with `keep`), whatever ends it."""
    check_pg_scratch_name(name, server)
    admin_url = server.set(database=server.database or "postgres")
    engine = _admin_engine(server)
    scratch = PgScratch(name, admin_url, engine)
    journal: Journal | None = None
    try:
        try:
            # restore-check drops the database and role itself when it fails, errs or is interrupted; kept, ours.
            result = pgrestore.pg_restore_check(dump, server.render_as_string(hide_password=False), scratch=name,
                                                keep=True, progress=progress,
                                                title=title or f"restore of {Path(dump).name} for a rehearsal")
            scratch.check, scratch.source, scratch.version = result, result.database, result.version
            if result.kept:
                scratch.role = str(result.summary["role"])
                journal = _take_over(engine, admin_url, scratch, valid_for)
                scratch.restored = True
            yield scratch
        finally:
            if scratch.role:
                _end(engine, scratch, journal, keep)
    finally:
        engine.dispose()


def _quote(engine: sa.Engine, name: str) -> str:
    return engine.dialect.identifier_preparer.quote_identifier(name)


def _admin(engine: sa.Engine, statements: list[str], what: str) -> None:
    try:
        with engine.connect() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
    except DBAPIError as exc:
        raise DbauditError(f"{what}: {describe_db_error(exc)}") from None


def _take_over(engine: sa.Engine, admin_url: URL, scratch: PgScratch, valid_for: float) -> Journal:
    """Journal the kept role and database (proven by the role's comment, read back from the server), then let the
    role log in with a new password until the rehearsal's time is up."""
    with engine.connect() as conn:
        comment = conn.execute(sa.text("SELECT pg_catalog.shobj_description(oid, 'pg_authid') FROM pg_catalog.pg_roles "
                                       "WHERE rolname OPERATOR(pg_catalog.=) :r"), {"r": scratch.role}).scalar()
    if not _MARK.match(comment or ""):
        raise DbauditError(f"the restore's role {scratch.role} does not carry restore-check's mark: not taken over")
    # Before the role can log in again: a SIGKILL from here on leaves an entry the next run finds, with the proof
    # pgrestore checks (the role's comment; the database is the dead run's when that role owns it).
    journal = Journal(pgrestore.BACKEND, pgrestore._server_key(admin_url), "rehearse")
    journal.record(account_user=scratch.role, account_marker=comment, scratch=scratch.name, scratch_marker=comment)
    # Registered for masking: a driver error or a command's output never shows it.
    password = new_password()
    verifier = pgrestore.scram_verifier(password)
    if not _VERIFIER.match(verifier):
        raise ValueError("not a SCRAM verifier")  # never reached: base64 and digits only
    until = (datetime.now(UTC) + timedelta(seconds=valid_for)).isoformat(timespec="seconds")
    _admin(engine, [f"ALTER ROLE {_quote(engine, scratch.role)} LOGIN CONNECTION LIMIT {CONNECTION_LIMIT} "
                    f"PASSWORD '{verifier}' VALID UNTIL '{until}'"], f"let the temporary role {scratch.role} log in")
    scratch.password = password
    scratch.url = admin_url.set(username=scratch.role, password=password, database=scratch.name)
    return journal


def _end(engine: sa.Engine, scratch: PgScratch, journal: Journal | None, keep: bool) -> None:
    """Every session of the role ended (a command killed at its limit may leave one running), then the database and
    the role dropped — or, kept, the role locked again; the journal entry goes once nothing is left to find."""
    scratch.terminate()
    role, database = _quote(engine, scratch.role), _quote(engine, scratch.name)
    if keep:
        _admin(engine, [f"ALTER ROLE {role} NOLOGIN"], f"lock role {scratch.role}")
        scratch.kept = True
        scratch.drop_hint = f"DROP DATABASE {database} WITH (FORCE); DROP ROLE {role};"
    else:
        _admin(engine, [f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"], f"drop database {scratch.name} (drop it "
                                                                           "and its role by hand)")
        _admin(engine, [f"DROP ROLE IF EXISTS {role}"], f"drop role {scratch.role} (drop it by hand)")
    if journal is not None:
        journal.close()  # not before: a drop that failed stays journaled, for the next run to retry
