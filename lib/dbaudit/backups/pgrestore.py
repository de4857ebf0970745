"""restore-check of a pg_dump (plain, custom, tar, directory) into a scratch PostgreSQL database.

Nothing in the dump runs with the operator's rights. The operator's connection only creates, and later drops, a
temporary LOGIN role (`dbaudit_restore_<token>`: no superuser, CREATEDB, CREATEROLE, REPLICATION or BYPASSRLS,
valid until the restore's deadline, its password random, kept in memory and sent to the server only as a SCRAM
verifier) and a scratch database it owns (from template0, CONNECT revoked from PUBLIC). The dump is then executed
over a separate connection that *logs in* as that role: not `SET ROLE` or `SET SESSION AUTHORIZATION` from the
operator's session, which any function the dump defines could undo with `RESET ROLE` and run as superuser.
The snapshot of the restored database is taken as that role too, so a trigger, a view or a SECURITY DEFINER
function of the dump runs at most with the rights of a role that owns the scratch database and nothing else.

No psql: psql runs meta-commands (`\\!`, `\\copy … program`, `\\o |cmd`) itself. The script is split with
`psqlscan.PsqlScanner`, exactly as dump-check reads it, and each statement is sent alone through the extended
query protocol (the server refuses a second statement hidden in one); COPY data goes through the driver's
COPY FROM STDIN. A custom, tar or directory archive is turned into the same script by `pg_restore -f -`,
which writes SQL and never connects (so no restore path of pg_restore runs with anyone's rights), and that script
goes through the same scanner and executor: what runs is what was checked. The dump is read once, and executed as
it is read: each statement is classified whole before any byte of it is sent, and at the first one dump-check
refuses (meta-commands, COPY … PROGRAM, roles, ALTER SYSTEM, other databases, untrusted languages …) the
transaction is rolled back and nothing more is sent. The whole dump is judged again at its end (cut, format checks)
before COMMIT. A refused or cut dump is "not restored": rolled back, its database and role dropped (docs/security.md
makes the case that this is as safe as refusing before anything is created). `ALTER … OWNER TO`, GRANT/REVOKE and the
dump's timeout SETs are not sent (like `pg_restore --no-owner --no-privileges`): the objects belong to the
temporary role, no other role gets rights on the restored data, and the restore's own limits stay. Nor are the
dump's BEGIN/START TRANSACTION/COMMIT/END (pg_dump's around large objects): they would end the restore's one
transaction; ROLLBACK, ABORT, PREPARE TRANSACTION and COMMIT PREPARED (never in a pg_dump) are refused.

The restore runs in one transaction, under `statement_timeout` and a watchdog that terminates the role's
sessions at the deadline (`timeout`). The role and the database are dropped after the check, a failure, an
error, Ctrl-C or SIGTERM; a journal entry (`backups.scratch_journal`) written before they exist lets a later run
drop what a SIGKILLed run left, once the server proves they are that run's (a token in the role's and the
database's comments).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import select
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg import pq
from psycopg.conninfo import make_conninfo
from psycopg.copy import QueuedLibpqWriter
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from tqdm import tqdm

from dbaudit.audit.chunks import FingerprintMode
from dbaudit.audit.diff import diff_snapshots
from dbaudit.backups import pgdump
from dbaudit.backups.checks import count_checks, load_manifest, manifest_path, names_check, safety_check
from dbaudit.backups.dumpfile import CHUNK, DumpContents, DumpFile
from dbaudit.backups.formats import DECOMPRESS_ERRORS, compression_of, decompressed, digest_of, format_of, stream_problem
from dbaudit.backups.pgdump import PgCollector
from dbaudit.backups.psqlscan import COPY_FROM_STDIN, CopyData, MetaCommand, PgStatement, PsqlScanner
from dbaudit.backups.restore import FORMAT_VERSION, KIND, RESTORED, RestoreCheck
from dbaudit.backups.restore_account import ACCOUNT_PREFIX
from dbaudit.backups.scratch_journal import Journal, JournalEntry, abandoned, forget
from dbaudit.backups.statements import DumpTable
from dbaudit.core.checks import Check
from dbaudit.core.errors import DbauditError, first_line
from dbaudit.core.signals import terminate_as_interrupt
from dbaudit.core.snapshot import Snapshot, load_snapshot
from dbaudit.core.terminal import visible
from dbaudit.live.connect import describe_db_error, mask_url, parse_url
from dbaudit.live.inspect import take_snapshot
from dbaudit.live.quiet_read import read_quiet_tables

PREFIX = ACCOUNT_PREFIX  # one prefix for the temporary accounts and roles of every restore-check
DEFAULT_TIMEOUT = 3600.0
BACKEND = "postgresql"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_]{1,63}$")
_SYSTEM = {"postgres", "template0", "template1"}
_MARK = "dbaudit restore-check {}"  # the role's and the database's comment: the proof a later run checks
_SKIPPED_SETTINGS = re.compile(r"^SET\s+(?:SESSION\s+)?(statement_timeout|lock_timeout|idle_in_transaction_session_timeout"
                               r"|idle_session_timeout|transaction_timeout)\b", re.IGNORECASE)
_PRIVILEGES = re.compile(r"^(?:GRANT|REVOKE|ALTER\s+DEFAULT\s+PRIVILEGES)\b", re.IGNORECASE)
# The restore is one transaction, committed only when the whole dump passes: the dump's own transaction control must
# not end it. pg_dump writes BEGIN/COMMIT around large objects (skipped: they are inside the restore's transaction
# anyway); what it never writes, and what would undo or hand over the restore's work, is refused.
_TRANSACTION_REFUSED = re.compile(r"^(?:ROLLBACK|ABORT|PREPARE\s+TRANSACTION|COMMIT\s+PREPARED)\b", re.IGNORECASE)
_TRANSACTION_SKIPPED = re.compile(r"^(?:BEGIN|START\s+TRANSACTION|COMMIT|END)\b", re.IGNORECASE)
_CLEAN = re.compile(r"^[A-Za-z0-9+/=$:._ -]*$")  # what may be written into a literal of the operator's statements


def is_pg_dump(path: str | os.PathLike[str]) -> bool:
    """Whether restore-check should take `path` as a pg_dump (plain, custom, tar or directory), by content."""
    return format_of(Path(path)).startswith("pg_dump")


@dataclass
class _Run:
    token: str
    role: str
    password: str
    scratch: str
    deadline: float  # time.monotonic() when the restore must have ended
    skipped: dict[str, int] = field(default_factory=dict)  # kind of statement not sent -> how many
    created: list[str] = field(default_factory=list)  # "role", "database": what this run made, so may drop


def pg_restore_check(
    dump: str | os.PathLike[str],
    server: str,
    *,
    scratch: str | None = None,
    against: str | os.PathLike[str] | Snapshot | None = None,
    keep: bool = False,
    title: str | None = None,
    progress: bool = False,
    timeout: float | None = None,
    fingerprint: FingerprintMode = "none",
) -> RestoreCheck:
    """Restore the pg_dump `dump` into a new scratch database on `server` as a temporary role, and compare it with
    the dump, its manifest and (optionally) a snapshot of the source (fingerprints included when it has them)."""
    snapshot = load_snapshot(against) if isinstance(against, (str, os.PathLike)) else against
    url = parse_url(server)
    if url.get_backend_name() != BACKEND:
        raise DbauditError(f"a pg_dump restores into PostgreSQL; {mask_url(url)} is not a PostgreSQL server")
    limit = DEFAULT_TIMEOUT if timeout is None else float(timeout)
    if limit <= 0:
        raise DbauditError(f"--restore-timeout must be positive, not {timeout}")
    if scratch is not None and (not _SAFE_NAME.match(scratch) or scratch.lower() in _SYSTEM
                                or scratch.lower() == (url.database or "").lower()):
        raise DbauditError(f"scratch database name {scratch!r}: letters, digits and _ only (at most 63), "
                           "not the source or a system database")
    path = Path(dump)
    form = format_of(path)
    if not form.startswith("pg_dump"):
        raise DbauditError(f"{path} is a {form} dump, not a pg_dump: restore it into MySQL or MariaDB")
    reading = _Reading(path, form, progress)
    admin_url = url.set(database=url.database or "postgres")
    # One operator connection kept for the run's own statements (prepare, create, drop: each a new session cost
    # about as much as the statement), a second one for the watchdog.
    engine = sa.create_engine(admin_url, poolclass=sa.pool.QueuePool, pool_size=1, max_overflow=2,
                              isolation_level="AUTOCOMMIT")
    try:
        version, cleaned = _prepare(engine, admin_url)
        token = secrets.token_hex(8)
        run = _Run(token, f"{PREFIX}{token}", secrets.token_urlsafe(24), scratch or f"{PREFIX}{token}",
                   time.monotonic() + limit)
        _refuse_existing(engine, run.scratch)
        source = url.database or reading.database() or path.name.split(".")[0]
        result = _Result(url.set(database=None), source, run, None, version, title, cleaned)
        unreadable = reading.unlisted()  # an archive whose TOC cannot be read: refused before anything is created
        if unreadable is not None:
            result.contents = unreadable[0]
            return result.build([*cleaned, *_refusal(*unreadable)], None, 0.0, kept=False)
        mode = _fingerprint_mode(snapshot, fingerprint)
        return _restore_and_compare(engine, admin_url, run, result, reading, snapshot, mode, keep, limit)
    finally:
        reading.stop()
        engine.dispose()


def _refusal(contents: DumpContents, format_checks: list[Check]) -> list[Check]:
    """Why the dump is not restored (rolled back, nothing kept): unsafe, cut, or failing its format's checks."""
    safety = safety_check(contents)
    if safety.status == "fail":
        return [Check("dump", "restore safety", "fail", f"not restored: {safety.message}")]
    if not contents.complete:
        return [Check("dump", "complete", "fail", f"not restored: the dump is truncated ({contents.truncation})")]
    failed = [c for c in format_checks if c.status == "fail"]
    return [Check("dump", c.name, "fail", f"not restored: {c.message}") for c in failed]


def _fingerprint_mode(snapshot: Snapshot | None, asked: FingerprintMode) -> FingerprintMode:
    """The source snapshot's fingerprints decide: the restored tables are read the same way to compare."""
    if snapshot is not None:
        if any(t.chunks for t in snapshot.tables.values()):
            return "chunks"
        if any(t.fingerprint for t in snapshot.tables.values()):
            return "table"
    return asked


# --- the operator's side: preparing, creating and dropping ----------------------------------------------------


def _server_key(url: URL) -> str:
    """host:port as the run reached the server (a socket directory given as ?host=… counts as the host)."""
    host = url.query.get("host")
    return f"{host if isinstance(host, str) else url.host or 'localhost'}:{url.port or 5432}"


def _prepare(engine: sa.Engine, url: URL) -> tuple[str, list[Check]]:
    """The server's version, whether the operator may create the role and database, and what dead runs left."""
    try:
        with engine.connect() as conn:
            version = str(conn.exec_driver_sql("SELECT pg_catalog.current_setting('server_version')").scalar_one())
            row = conn.exec_driver_sql("SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_catalog.pg_roles "
                                       "WHERE rolname OPERATOR(pg_catalog.=) CURRENT_USER").one()
    except DBAPIError as exc:
        raise DbauditError(f"cannot connect to {mask_url(url)}: {describe_db_error(exc)}") from None
    if not (row[0] or (row[1] and row[2])):
        raise DbauditError("restore-check restores as a temporary role that owns the scratch database: the "
                           f"connecting role of {mask_url(url)} needs CREATEROLE and CREATEDB (or superuser)")
    return version, _drop_dead_runs(engine, _server_key(url))


def _drop_dead_runs(engine: sa.Engine, server: str) -> list[Check]:
    """Drop what runs killed before their cleanup left, when the server proves it is theirs."""
    dropped = []
    with abandoned(BACKEND, server) as entries:
        for entry, lock_path in entries:
            dropped += _drop_proven(engine, entry)
            forget(lock_path)  # what it names is gone, or was never provably its run's
    if not dropped:
        return []
    return [Check("restore", "earlier runs", "pass", f"dropped what dead restore-check runs left: {', '.join(dropped)}")]


def _drop_proven(engine: sa.Engine, entry: JournalEntry) -> list[str]:
    """The role is the dead run's when its comment holds the run's token (only a role with CREATEROLE can set it);
    the database is, when that role owns it (the role itself has no CREATEDB)."""
    if not (entry.account_user and entry.account_marker):
        return []  # the run died before it named a role: it created nothing
    with engine.connect() as conn:
        role = conn.execute(sa.text(
            "SELECT rolname FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) :role "
            "AND pg_catalog.shobj_description(oid, 'pg_authid') OPERATOR(pg_catalog.=) :mark"),
            {"role": entry.account_user, "mark": entry.account_marker}).scalar()
        database = role and conn.execute(sa.text(
            "SELECT d.datname FROM pg_catalog.pg_database d JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) "
            "d.datdba WHERE d.datname OPERATOR(pg_catalog.=) :db AND r.rolname OPERATOR(pg_catalog.=) :role"),
            {"db": entry.scratch or "", "role": entry.account_user}).scalar()
    if role is None:
        return []
    dropped = []
    if database is not None and entry.scratch:
        _drop_database(engine, entry.scratch)
        dropped.append(f"database {entry.scratch}")
    _drop_role(engine, entry.account_user)
    return [*dropped, f"role {entry.account_user}"]


def _quote(engine: sa.Engine, name: str) -> str:
    return engine.dialect.identifier_preparer.quote_identifier(name)


def _literal(text: str) -> str:
    if not _CLEAN.match(text):
        raise ValueError("not a literal dbaudit writes")  # never reached: tokens and verifiers are base64/hex
    return f"'{text}'"


def _admin(engine: sa.Engine, statements: list[str], what: str, atomic: bool = False) -> None:
    """The operator's own statements; `atomic`: all or none (a role is never left without its proof comment)."""
    try:
        with engine.connect() as opened_conn:
            conn = opened_conn.execution_options(isolation_level="READ COMMITTED") if atomic else opened_conn
            with conn.begin() if atomic else nullcontext():
                for statement in statements:
                    conn.exec_driver_sql(statement)
    except DBAPIError as exc:
        raise DbauditError(f"{what}: {describe_db_error(exc)}") from None


def _refuse_existing(engine: sa.Engine, scratch: str) -> None:
    with engine.connect() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM pg_catalog.pg_database WHERE datname OPERATOR(pg_catalog.=) :n"),
                              {"n": scratch}).scalar()
    if exists:
        raise DbauditError(f"refusing scratch database {scratch!r}: it already exists (drop it or pick another "
                           "with --scratch)")


def scram_verifier(password: str, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores (RFC 5803): the server, its logs and pg_stat_activity never see
    the password itself, and it still logs in under md5 or scram-sha-256 authentication."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("ascii"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    b64 = lambda b: base64.b64encode(b).decode("ascii")  # noqa: E731
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(hashlib.sha256(client_key).digest())}:{b64(server_key)}"


def _create(engine: sa.Engine, run: _Run, limit: float) -> None:
    role, database = _quote(engine, run.role), _quote(engine, run.scratch)
    until = (datetime.now(UTC) + timedelta(seconds=limit + 600)).isoformat(timespec="seconds")
    mark = _literal(_MARK.format(run.token))
    _admin(engine, [
        f"CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS "
        f"CONNECTION LIMIT 4 PASSWORD {_literal(scram_verifier(run.password))} VALID UNTIL {_literal(until)}",
        f"COMMENT ON ROLE {role} IS {mark}",
    ], f"create the temporary role {run.role}", atomic=True)
    run.created.append("role")
    with engine.connect() as conn:
        superuser = conn.exec_driver_sql("SELECT rolsuper FROM pg_catalog.pg_roles "
                                         "WHERE rolname OPERATOR(pg_catalog.=) CURRENT_USER").scalar()
    # PostgreSQL 15: only a member of a role may create a database it owns (the operator in the role, not back).
    steps = [] if superuser else [f"GRANT {role} TO CURRENT_USER"]
    # template0: template1 may hold the operator's own functions, which the dump's code could then call.
    _admin(engine, [*steps, f"CREATE DATABASE {database} OWNER {role} TEMPLATE template0"],
           f"create the scratch database {run.scratch}")
    run.created.append("database")
    _admin(engine, [f"COMMENT ON DATABASE {database} IS {mark}", f"REVOKE ALL ON DATABASE {database} FROM PUBLIC"],
           f"prepare the scratch database {run.scratch}")


def _drop_database(engine: sa.Engine, name: str) -> None:
    _admin(engine, [f"DROP DATABASE IF EXISTS {_quote(engine, name)} WITH (FORCE)"],
           f"drop database {name} (drop it by hand)")


def _drop_role(engine: sa.Engine, name: str) -> None:
    _admin(engine, [f"DROP ROLE IF EXISTS {_quote(engine, name)}"], f"drop role {name} (drop it by hand)")


def _terminate(engine: sa.Engine, role: str) -> None:
    """The watchdog: end every session of the role (a statement may have reset its own statement_timeout)."""
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity "
                                 "WHERE usename OPERATOR(pg_catalog.=) :role"), {"role": role})
    except DBAPIError:
        pass  # the restore ends anyway: its own statement_timeout, or the cleanup's DROP DATABASE … WITH (FORCE)



def _restore_and_compare(engine: sa.Engine, admin_url: URL, run: _Run, result: _Result, reading: _Reading,
                         snapshot: Snapshot | None, mode: FingerprintMode, keep: bool, limit: float) -> RestoreCheck:
    kept = False
    with terminate_as_interrupt():
        journal = Journal(BACKEND, _server_key(admin_url), "restore-check")
        mark = _MARK.format(run.token)
        journal.record(account_user=run.role, account_marker=mark, scratch=run.scratch, scratch_marker=mark)
        try:
            _create(engine, run, limit)
            role_url = admin_url.set(username=run.role, password=run.password, database=run.scratch)
            watchdog = threading.Timer(max(0.0, run.deadline - time.monotonic()), _terminate, (engine, run.role))
            watchdog.daemon = True
            watchdog.start()
            try:
                started = time.monotonic()
                loaded = _load(role_url, run, reading)
                seconds = round(time.monotonic() - started, 3)
                result.contents = loaded.contents
                if loaded.refusal:
                    return result.build([*result.cleaned, *loaded.refusal], None, 0.0, kept=False)
                error = loaded.error
                if error is None and time.monotonic() > run.deadline:
                    error = f"the restore did not end within {limit:g} s (--restore-timeout)"
                if error:
                    return result.build([*result.cleaned, Check("restore", "load", "fail", error)], None, seconds,
                                        kept=False)
                metrics = {m.name: m.sql for m in snapshot.metrics.values()} if snapshot else None
                try:
                    restored, others = _snapshots(role_url, run, loaded.contents, metrics, mode, reading.progress)
                except (DbauditError, DBAPIError) as exc:
                    why = _timed_out(run) or first_line(str(exc))
                    checks = [*result.cleaned, Check("restore", "load", "pass", f"restored in {seconds:.1f} s"),
                              Check("restore", "snapshot", "fail", f"restored, but not read: {why}")]
                    return result.build(checks, None, seconds, kept=False)
            finally:
                watchdog.cancel()
            checks = [*result.cleaned, Check("restore", "load", "pass",
                                             f"restored in {seconds:.1f} s as temporary role {run.role}"),
                      *compare_restored(loaded.contents, restored, snapshot, others)]
            if keep:
                # The role stays (it owns what the dump created; giving that to the operator would make the dump's
                # SECURITY DEFINER functions run as the operator), but cannot log in any more.
                _admin(engine, [f"ALTER ROLE {_quote(engine, run.role)} NOLOGIN"], f"lock role {run.role}")
                kept = True
            return result.build(checks, restored, seconds, kept=kept)
        finally:
            if not kept:
                if "database" in run.created:
                    _drop_database(engine, run.scratch)
                if "role" in run.created:
                    _drop_role(engine, run.role)
            journal.close()


def _snapshots(url: URL, run: _Run, contents: DumpContents, metrics: dict[str, str] | None, mode: FingerprintMode,
               progress: bool) -> tuple[Snapshot, dict[str, Snapshot]]:
    """The restored database as the temporary role sees it; a snapshot reads one schema (public), so the dump's
    tables in other schemas are counted in one snapshot each."""
    known = None
    if mode != "none":  # committed and quiet: the fingerprints' key slices are shared by two sessions (both cores)
        read = read_quiet_tables(url, lambda _name: True, mode, timeout=max(1.0, run.deadline - time.monotonic()))
        known = {t.name: t for t in read} if read is not None else None
    restored = take_snapshot(url, metrics, progress=progress, fingerprint=mode,
                             statement_timeout=max(1.0, run.deadline - time.monotonic()), known=known)
    others = {schema: take_snapshot(url, schema=schema, progress=progress,
                                    statement_timeout=max(1.0, run.deadline - time.monotonic()))
              for schema in _other_schemas(contents, restored.schema)}
    return restored, others


# --- the temporary role's side: executing the script ---------------------------------------------------------


class _ScriptRunner:
    """Splits the script as psql would and executes each piece on the role's connection as soon as it is whole.

    Every statement and meta-command is classified before anything of it is sent: at the first one dump-check
    refuses, the transaction is rolled back and nothing more is sent; the rest of the script is only scanned, so
    the refusal names what dump-check names. Without a connection (`conn` None) the script is only scanned."""

    def __init__(self, conn: psycopg.Connection[Any] | None, run: _Run) -> None:
        self.conn, self.run = conn, run
        self.refused: str | None = None  # the first statement or line refused (nothing of it, or after it, was sent)
        self.failed: str | None = None  # why the server stopped the restore (then the rest is only scanned)
        self.collector = PgCollector()
        self.scanner = PsqlScanner(self._statement, self._meta, self._copy_end, self.collector.comment,
                                   self.collector.unsure)
        self.collector.scanner = self.scanner
        self.buf = bytearray()
        self.base = 0  # offset in the script of buf[0]
        self.done = 0  # offset up to which the script was executed, skipped or sent as COPY data
        self.copy: Any = None  # the driver's open Copy while a COPY's data is streamed
        self.copy_stack = ExitStack()
        self.copy_from: int | None = None  # where the current COPY's data starts (None: its line is not read yet)
        self.copy_statement = 0  # the end of the COPY … FROM stdin; statement

    def feed(self, data: bytes) -> None:
        if self.conn is None:
            self.scanner.feed(data)
            return
        self.buf += data
        self.scanner.feed(data)
        if self.conn is None:  # refused inside this piece
            self.buf.clear()
            return
        try:
            self._stream_copy()
        except psycopg.Error as exc:
            self._fail(first_line(str(exc)))
            return
        cut = self.done - self.base
        if cut > 0:
            del self.buf[:cut]
            self.base = self.done

    def finish(self) -> str | None:
        """The scanner's end of the script: None when it ends between statements, else why it looks cut."""
        end = self.scanner.finish()
        if self.conn is not None:
            self._refuse_if("the end of the script")
        return end.problem

    def abort(self) -> None:
        """Nothing of the script is kept: an open COPY is failed, the transaction rolled back, nothing more sent."""
        conn, self.conn = self.conn, None
        if conn is None or conn.closed:
            return
        try:
            if self.copy is not None:
                self.copy = None
                self.copy_stack.__exit__(_Aborted, _Aborted("not restored"), None)  # CopyFail: the server drops it
            _execute(conn, b"ROLLBACK", "ROLLBACK")
        except (psycopg.Error, _Failed):
            conn.close()  # the server rolls back a transaction whose session ends

    def _fail(self, message: str) -> None:
        """The server refused a statement or the COPY data: nothing more is sent, the rest is only scanned (so a
        dump that dump-check refuses still says so); past the restore's deadline the read stops at once."""
        self.failed = message
        self.abort()
        if time.monotonic() >= self.run.deadline - 0.5:
            raise _Failed(message)

    def _bytes(self, start: int, end: int) -> bytes:
        return bytes(self.buf[start - self.base : end - self.base])

    def _refuse_if(self, where: str, unsafe: str | None = None) -> bool:
        """Whether what the collector has seen so far makes dump-check refuse the dump: then nothing more is sent."""
        c = self.collector
        reason = (c.refused or c.client_commands or [f"another database {n[0]}" for n in c.named[:1]]
                  or ([unsafe] if unsafe else []))
        if not reason:
            return False
        self.refused = f"{reason[0]} ({where})"
        self.abort()
        return True

    def _skip(self, kind: str, end: int) -> None:
        self.run.skipped[kind] = self.run.skipped.get(kind, 0) + 1
        self.done = end

    def _statement(self, st: PgStatement) -> None:
        owners, unsafe = len(self.collector.owner_spans), len(self.collector.unsafe)
        self.collector.statement(st)
        if self.conn is None:
            return None
        where = f"statement at byte {st.start:,}"
        if self._refuse_if(where, st.head[:60] if len(self.collector.unsafe) > unsafe else None):
            return None
        if len(self.collector.owner_spans) > owners:
            return self._skip("owner", st.end)
        if _PRIVILEGES.match(st.code):
            return self._skip("privileges", st.end)
        if _SKIPPED_SETTINGS.match(st.code):
            return self._skip("timeouts", st.end)
        if _TRANSACTION_REFUSED.match(st.code):
            self.refused = f"transaction control {' '.join(st.code.split()[:2])[:40]} ({where})"
            self.abort()
            return None
        if _TRANSACTION_SKIPPED.match(st.code):
            return self._skip("transaction control", st.end)
        sql = self._bytes(st.start, st.end)
        self.done = st.end
        label = f"{where} ({' '.join(st.code.split()[:6])[:60]} …)"
        try:
            if COPY_FROM_STDIN.match(st.code):
                cursor = self.conn.cursor()
                # A writer thread sends the data while the scanner reads on: the server loads as the script is split.
                self.copy = self.copy_stack.enter_context(cursor.copy(sql, writer=QueuedLibpqWriter(cursor)))
                self.copy_from, self.copy_statement = None, st.end
                return None
            _execute(self.conn, sql, label)
        except _Failed as exc:
            self._fail(str(exc))
        except psycopg.Error as exc:
            self._fail(f"{label} failed: {first_line(str(exc))}")
        return None

    def _meta(self, m: MetaCommand) -> None:
        unsafe = len(self.collector.unsafe)
        self.collector.meta(m)
        if self.conn is None:
            return
        kinds = {kind for _, _, kind in self.collector.unsafe[unsafe:]}
        if self._refuse_if(f"line at byte {m.start:,}", m.text[:60] if kinds - {"restrict"} else None):
            return
        self.done = max(self.done, m.end)

    def _data_start(self) -> int | None:
        if self.copy_from is None:
            newline = self.buf.find(b"\n", self.copy_statement - self.base)
            if newline >= 0:
                self.copy_from = self.done = self.base + newline + 1
        return self.copy_from

    def _stream_copy(self) -> None:
        """Whole data lines the scanner has passed go to the server; the last line is held back, since the
        scanner may still take it for the `\\.` that ends the data."""
        if self.copy is None or self._data_start() is None:
            return
        last = self.buf.rfind(b"\n", self.done - self.base)
        if last < 0:
            return
        held = self.buf.rfind(b"\n", self.done - self.base, last)
        if held >= 0:
            self.copy.write(self.buf[self.done - self.base : held + 1])
            self.done = self.base + held + 1

    def _copy_end(self, data: CopyData) -> None:
        self.collector.copy(data)
        if self.conn is None or self.copy is None or not data.terminated:
            return
        self._data_start()
        marker = self.buf.rfind(b"\\.", 0, data.end - self.base) + self.base
        if marker > self.done:
            self.copy.write(self.buf[self.done - self.base : marker - self.base])
        self.copy = None
        try:
            self.copy_stack.close()  # ends the COPY: the server checks every row now
        except psycopg.Error as exc:
            self._fail(f"{' '.join(data.statement.code.split()[:3])[:60]} … failed: {first_line(str(exc))}")
        self.done = data.end


class _Aborted(Exception):
    """Given to an open COPY that must not be kept: psycopg sends CopyFail."""


def _execute(conn: psycopg.Connection[Any], sql: bytes, label: str) -> None:
    """One statement, extended protocol: the server refuses to run a second one hidden in it. Waited for in short
    selects, so Ctrl-C and SIGTERM interrupt a statement that runs long (libpq's blocking wait would not)."""
    pgconn = conn.pgconn
    pgconn.send_query_params(sql, None)
    results = []
    while (result := next_result(pgconn)) is not None:
        results.append(result)
    for result in results:
        if result.status not in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK, pq.ExecStatus.EMPTY_QUERY):
            message = (result.error_message or pgconn.error_message).decode("utf-8", "replace")
            # Named by its first words with strings collapsed: a failing INSERT's values stay out of the result.
            raise _Failed(f"{label} failed: {first_line(message.removeprefix('ERROR:').strip())}")


def next_result(pgconn: pq.abc.PGconn) -> pq.abc.PGresult | None:
    """The statement's next result (None: no more), waited for in short selects so that Ctrl-C and SIGTERM interrupt
    a statement that runs long (libpq's blocking wait would not)."""
    while pgconn.is_busy():
        select.select([pgconn.socket], [], [], 1.0)
        pgconn.consume_input()
    return pgconn.get_result()


class _Failed(Exception):
    pass


class _Reading:
    """The dump, read once: its psql script for the runner (a plain dump decompressed, an archive as `pg_restore -f
    -` writes it, the same conversion and environment as dump-check's), its checksums computed beside it on a thread
    of their own (hashlib works outside the GIL), and then dump-check's document of what was read."""

    def __init__(self, path: Path, form: str, progress: bool) -> None:
        self.path, self.form, self.progress = path, form, progress
        self.started = time.monotonic()
        self.size = 0  # bytes of script read
        self.problems: list[str] = []  # why the stream broke (then the dump counts as cut)
        self.listing = pgdump.list_archive(path) if form != "pg_dump plain" else None
        self.compressed = False
        self._stop = threading.Event()
        self._digest: list[DumpFile] = []
        self._hasher = threading.Thread(target=self._hash, name="dbaudit restore-check checksums", daemon=True)
        self._hasher.start()

    def database(self) -> str | None:
        return self.listing[0].get("dbname") if self.listing else None

    def unlisted(self) -> tuple[DumpContents, list[Check]] | None:
        """An archive pg_restore cannot list: its dump-check document (which fails), read before anything is created."""
        if self.listing is None or self.listing[2] is None:
            return None
        return pgdump.archive_contents(self.path, self.form, self._file(), self.listing, PgCollector(), self.listing[2],
                                       0, self.started)

    def stop(self) -> None:
        self._stop.set()

    def _hash(self) -> None:
        if self.path.is_dir():
            self._digest.append(digest_of(self.path))
            return
        # SHA-256 only, as MySQL restore-check (MD5 is dump-check's, for --md5 and manifests): MD5 costs twice
        # SHA-256's CPU here, which the server needs while it loads.
        sha256, size = hashlib.sha256(), 0
        with self.path.open("rb") as handle:
            while not self._stop.is_set() and (data := handle.read(CHUNK)):
                sha256.update(data)
                size += len(data)
        self._digest.append(DumpFile(str(self.path), size, sha256.hexdigest(), "", False, 0))

    def _file(self) -> DumpFile:
        self._hasher.join()
        return self._digest[0]

    def chunks(self) -> Iterator[bytes]:
        """The script, in pieces; a stream that breaks ends it early, with the reason in `problems`."""
        with tqdm(total=self.path.stat().st_size if self.listing is None else None, unit="B", unit_scale=True,
                  leave=False, desc=f"restoring {visible(self.path.name)}", disable=not self.progress,
                  file=sys.stderr) as bar:
            for data in self._script():
                self.size += len(data)
                bar.update(len(data))
                yield data

    def _script(self) -> Iterator[bytes]:
        if self.listing is not None:
            try:
                yield from _gathered(pgdump._restore_script(self.path))
            except RuntimeError as exc:
                self.problems.append(f"pg_restore cannot read the archive whole: {exc}")
            return
        with self.path.open("rb") as handle:
            kind = compression_of(handle.read(6))
            handle.seek(0)
            self.compressed = kind is not None
            try:
                yield from decompressed(handle, kind)
            except DECOMPRESS_ERRORS as exc:
                self.problems.append(stream_problem(exc, kind))

    def contents(self, collector: PgCollector, problem: str | None) -> tuple[DumpContents, list[Check]]:
        """dump-check's document of what was read (as `read_backup` makes it) and its format's checks."""
        problem = self.problems[0] if self.problems else problem
        file = self._file()
        if self.listing is not None:
            return pgdump.archive_contents(self.path, self.form, file, self.listing, collector, problem, self.size,
                                           self.started)
        file.compressed, file.sql_bytes = self.compressed, self.size
        contents = pgdump.contents_of(collector, file, self.form, problem, self.started)
        return contents, pgdump.format_checks(collector, contents)


def _connect(url: URL, run: _Run) -> psycopg.Connection[Any]:
    remaining_ms = max(1000, int((run.deadline - time.monotonic()) * 1000))
    params: dict[str, Any] = {"host": url.host or "localhost", "port": url.port or 5432}
    params.update({k: v for k, v in url.query.items() if isinstance(v, str)})  # host=/socket, sslmode … as given
    conninfo = make_conninfo(**params, user=url.username, password=url.password, dbname=url.database,
                             connect_timeout=30, application_name="dbaudit restore-check",
                             options=f"-c statement_timeout={remaining_ms} -c lock_timeout={remaining_ms}")
    return psycopg.connect(conninfo, autocommit=True, prepare_threshold=None)


def _gathered(pieces: Iterator[bytes], size: int = CHUNK) -> Iterator[bytes]:
    """pg_restore writes its script a few KB at a time: pieces gathered to about `size` cost the scanner, the runner
    and the COPY writer one call per MB instead of one per pipe read (measured: ~4,000 reads for 140 MB)."""
    held: list[bytes] = []
    length = 0
    for piece in pieces:
        held.append(piece)
        length += len(piece)
        if length >= size:
            yield b"".join(held)
            held, length = [], 0
    if held:
        yield b"".join(held)


@dataclass
class _Loaded:
    contents: DumpContents  # dump-check's document of the dump, as read while it was restored
    refusal: list[Check]  # why it was not restored (rolled back): what dump-check refuses, a cut or failed format
    error: str | None  # why the restore failed on the server, or was stopped


def _load(url: URL, run: _Run, reading: _Reading) -> _Loaded:
    """Read the dump once and execute it as the temporary role as it is read, in one transaction committed only
    when the whole dump passes dump-check's checks: anything refused is rolled back and never sent."""
    error = None
    try:
        conn: psycopg.Connection[Any] | None = _connect(url, run)
    except psycopg.Error as exc:
        conn, error = None, (f"the temporary role cannot log in: {first_line(str(exc))} (pg_hba.conf must let it "
                             "connect the way the operator did)")
    runner = _ScriptRunner(conn, run)
    try:
        if conn is not None:
            _execute(conn, b"BEGIN", "BEGIN")
        for data in reading.chunks():
            runner.feed(data)
        problem = runner.finish()
        contents, checks = reading.contents(runner.collector, problem)
        refusal = _refusal(contents, checks)
        if not refusal and runner.refused:  # refused sooner than dump-check's document says (never expected)
            refusal = [Check("dump", "restore safety", "fail", f"not restored: the script holds {runner.refused}")]
        if refusal:
            runner.abort()
            return _Loaded(contents, refusal, None)
        if runner.failed:
            return _Loaded(contents, [], _timed_out(run) or runner.failed)
        if runner.conn is not None:
            _execute(runner.conn, b"COMMIT", "COMMIT")
        return _Loaded(contents, [], error)
    except _Failed as exc:
        error = _timed_out(run) or str(exc)
    except psycopg.Error as exc:
        error = _timed_out(run) or first_line(str(exc))
    finally:
        if conn is not None:
            conn.close()
    # The server stopped the restore: the rest is not read; the result names the file by its checksums.
    return _Loaded(reading.contents(runner.collector, "the restore stopped before the end")[0], [], error)


def _timed_out(run: _Run) -> str | None:
    if time.monotonic() >= run.deadline - 0.5:
        return "the restore did not end within its time limit (--restore-timeout); stopped and rolled back"
    return None


# --- comparing -----------------------------------------------------------------------------------------------


def _tables_in(contents: DumpContents, schema: str | None) -> dict[str, DumpTable]:
    if len({t.database for t in contents.tables.values()}) <= 1:
        return contents.tables
    return {t.name: t for t in contents.tables.values() if t.database == (schema or "public")}


def _other_schemas(contents: DumpContents, schema: str | None) -> list[str]:
    schemas = {t.database for t in contents.tables.values()}
    return sorted(s for s in schemas if s is not None and s != (schema or "public")) if len(schemas) > 1 else []


def compare_restored(contents: DumpContents, restored: Snapshot, against: Snapshot | None,
                     others: dict[str, Snapshot] | None = None) -> list[Check]:
    """The restored database against the dump, its manifest and the source snapshot (schema, counts, content);
    `others`: snapshots of the restored database's other schemas, whose tables' rows are compared with the dump's."""
    counts = {name: t.row_count or 0 for name, t in restored.tables.items()}
    tables = _tables_in(contents, restored.schema)
    checks = count_checks("dump", {n: t.rows for n, t in tables.items()}, counts, "the dump", RESTORED)
    for schema, snap in (others or {}).items():
        want = {t.name: t.rows for t in contents.tables.values() if t.database == schema}
        got = {name: t.row_count or 0 for name, t in snap.tables.items()}
        checks += count_checks("dump", want, got, f"the dump (schema {schema})", f"{RESTORED} (schema {schema})")
    checks += [names_check("dump", kind, set(getattr(contents, kind)), set(getattr(restored, kind)), "the dump",
                           RESTORED) for kind in ("views", "triggers", "routines")]
    manifest_file = manifest_path(contents.file.path)
    if manifest_file.is_file():
        checks += count_checks("manifest", load_manifest(manifest_file).tables, counts, "the manifest", RESTORED)
    if against is not None:
        changes = diff_snapshots(against, restored)
        if not changes:
            proved = sum(1 for t in restored.tables.values() if t.fingerprint)
            content = f", and the content of {proved} tables (fingerprints)," if proved else ""
            checks.append(Check("source", "identical", "pass", f"schema, {len(against.tables)} tables' row "
                                f"counts{content} and metrics equal the source snapshot"))
        checks += [Check("source", f"{c.kind} {c.target}", "fail", c.describe()) for c in changes]
    return checks


@dataclass
class _Result:
    server: URL
    source: str
    run: _Run
    contents: DumpContents | None  # known once the dump is read (while it is restored)
    version: str
    title: str | None
    cleaned: list[Check]

    def build(self, checks: list[Check], restored: Snapshot | None, seconds: float, kept: bool) -> RestoreCheck:
        assert self.contents is not None, "a result is built once the dump was read"
        failed = sum(1 for c in checks if c.status == "fail")
        return RestoreCheck(
            format_version=FORMAT_VERSION, kind=KIND, verdict="fail" if failed else "pass",
            title=self.title or f"restore of {Path(self.contents.file.path).name}",
            generated_at=datetime.now(UTC).isoformat(timespec="seconds"), dump=self.contents.file,
            server=mask_url(self.server), product="PostgreSQL", version=self.version, database=self.source,
            scratch=self.run.scratch, kept=kept, client="dbaudit (psycopg; pg_restore -f - for archives)",
            skipped_statements=[f"{kind} ×{n}" for kind, n in self.run.skipped.items()], restore_seconds=seconds,
            checks=checks, restored=restored,
            summary={"checks": len(checks), "checks_failed": failed,
                     "tables": len(restored.tables) if restored else 0,
                     "rows": restored.total_rows if restored else 0, "role": self.run.role},
        )

