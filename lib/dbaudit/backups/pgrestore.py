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
goes through the same scanner and executor: what runs is what was checked. The dump is refused whole, before
anything is created, when dump-check finds it unsafe (meta-commands, COPY … PROGRAM, roles, ALTER SYSTEM, other
databases, untrusted languages …), and every statement is classified again as it is executed, so a file
changed between the two reads cannot slip a statement through. `ALTER … OWNER TO`, GRANT/REVOKE and the
dump's timeout SETs are not sent (like `pg_restore --no-owner --no-privileges`): the objects belong to the
temporary role, no other role gets rights on the restored data, and the restore's own limits stay.

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

from dbaudit.audit.chunks import FingerprintMode
from dbaudit.audit.diff import diff_snapshots
from dbaudit.backups import pgdump
from dbaudit.backups.checks import count_checks, load_manifest, manifest_path, names_check, safety_check
from dbaudit.backups.dumpfile import DumpContents
from dbaudit.backups.formats import DECOMPRESS_ERRORS, compression_of, decompressed, format_of, read_backup
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
from dbaudit.live.connect import describe_db_error, mask_url, parse_url
from dbaudit.live.inspect import take_snapshot

PREFIX = ACCOUNT_PREFIX  # one prefix for the temporary accounts and roles of every restore-check
DEFAULT_TIMEOUT = 3600.0
BACKEND = "postgresql"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_]{1,63}$")
_SYSTEM = {"postgres", "template0", "template1"}
_MARK = "dbaudit restore-check {}"  # the role's and the database's comment: the proof a later run checks
_SKIPPED_SETTINGS = re.compile(r"^SET\s+(?:SESSION\s+)?(statement_timeout|lock_timeout|idle_in_transaction_session_timeout"
                               r"|idle_session_timeout|transaction_timeout)\b", re.IGNORECASE)
_PRIVILEGES = re.compile(r"^(?:GRANT|REVOKE|ALTER\s+DEFAULT\s+PRIVILEGES)\b", re.IGNORECASE)
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
    contents, format_checks = read_backup(dump, progress)
    if not contents.format.startswith("pg_dump"):
        raise DbauditError(f"{contents.file.path} is a {contents.format} dump, not a pg_dump: restore it into MySQL "
                           "or MariaDB")
    source = url.database or contents.header.database or Path(contents.file.path).name.split(".")[0]
    admin_url = url.set(database=url.database or "postgres")
    engine = sa.create_engine(admin_url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    try:
        version, cleaned = _prepare(engine, admin_url)
        token = secrets.token_hex(8)
        run = _Run(token, f"{PREFIX}{token}", secrets.token_urlsafe(24), scratch or f"{PREFIX}{token}",
                   time.monotonic() + limit)
        _refuse_existing(engine, run.scratch)
        result = _Result(url.set(database=None), source, run, contents, version, title, cleaned)
        refusal = _refusal(contents, format_checks)
        if refusal:
            return result.build([*cleaned, *refusal], None, 0.0, kept=False)
        mode = _fingerprint_mode(snapshot, fingerprint)
        return _restore_and_compare(engine, admin_url, run, result, snapshot, mode, keep, progress, limit)
    finally:
        engine.dispose()


def _refusal(contents: DumpContents, format_checks: list[Check]) -> list[Check]:
    """Why the dump is not restored at all (nothing is created): unsafe, cut, or failing its format's checks."""
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



def _restore_and_compare(engine: sa.Engine, admin_url: URL, run: _Run, result: _Result, snapshot: Snapshot | None,
                         mode: FingerprintMode, keep: bool, progress: bool, limit: float) -> RestoreCheck:
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
                error = _load(role_url, run, result.contents, progress)
                seconds = round(time.monotonic() - started, 3)
                if error is None and time.monotonic() > run.deadline:
                    error = f"the restore did not end within {limit:g} s (--restore-timeout)"
                if error:
                    return result.build([*result.cleaned, Check("restore", "load", "fail", error)], None, seconds,
                                        kept=False)
                metrics = {m.name: m.sql for m in snapshot.metrics.values()} if snapshot else None
                try:
                    restored, others = _snapshots(role_url, run, result.contents, metrics, mode, progress)
                except (DbauditError, DBAPIError) as exc:
                    why = _timed_out(run) or first_line(str(exc))
                    checks = [*result.cleaned, Check("restore", "load", "pass", f"restored in {seconds:.1f} s"),
                              Check("restore", "snapshot", "fail", f"restored, but not read: {why}")]
                    return result.build(checks, None, seconds, kept=False)
            finally:
                watchdog.cancel()
            checks = [*result.cleaned, Check("restore", "load", "pass",
                                             f"restored in {seconds:.1f} s as temporary role {run.role}"),
                      *compare_restored(result.contents, restored, snapshot, others)]
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
    restored = take_snapshot(url, metrics, progress=progress, fingerprint=mode,
                             statement_timeout=max(1.0, run.deadline - time.monotonic()))
    others = {schema: take_snapshot(url, schema=schema, progress=progress,
                                    statement_timeout=max(1.0, run.deadline - time.monotonic()))
              for schema in _other_schemas(contents, restored.schema)}
    return restored, others


# --- the temporary role's side: executing the script ---------------------------------------------------------


class _Refused(Exception):
    """The script holds what dump-check would refuse (the file changed since it was read, or a scanner miss)."""


class _ScriptRunner:
    """Splits the script as psql would and executes each piece on the role's connection as soon as it is whole."""

    def __init__(self, conn: psycopg.Connection[Any], run: _Run) -> None:
        self.conn, self.run = conn, run
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
        self.buf += data
        self.scanner.feed(data)
        self._stream_copy()
        cut = self.done - self.base
        if cut > 0:
            del self.buf[:cut]
            self.base = self.done

    def finish(self) -> str | None:
        end = self.scanner.finish()
        self._check("the script")
        return end.problem or pgdump.truncation_of(self.collector, None)

    def _bytes(self, start: int, end: int) -> bytes:
        return bytes(self.buf[start - self.base : end - self.base])

    def _check(self, where: str) -> None:
        c = self.collector
        if c.refused or c.client_commands or c.named:
            reason = (c.refused or c.client_commands or [f"another database {c.named[0][0]}"])[0]
            raise _Refused(f"{reason} ({where})")

    def _skip(self, kind: str, end: int) -> None:
        self.run.skipped[kind] = self.run.skipped.get(kind, 0) + 1
        self.done = end

    def _statement(self, st: PgStatement) -> None:
        owners, unsafe = len(self.collector.owner_spans), len(self.collector.unsafe)
        self.collector.statement(st)
        self._check(f"statement at byte {st.start:,}")
        if len(self.collector.unsafe) > unsafe:
            raise _Refused(f"{st.head[:60]} (statement at byte {st.start:,})")
        if len(self.collector.owner_spans) > owners:
            return self._skip("owner", st.end)
        if _PRIVILEGES.match(st.code):
            return self._skip("privileges", st.end)
        if _SKIPPED_SETTINGS.match(st.code):
            return self._skip("timeouts", st.end)
        sql = self._bytes(st.start, st.end)
        self.done = st.end
        if COPY_FROM_STDIN.match(st.code):
            cursor = self.conn.cursor()
            # A writer thread sends the data while the scanner reads on: the server loads as the script is split.
            self.copy = self.copy_stack.enter_context(cursor.copy(sql, writer=QueuedLibpqWriter(cursor)))
            self.copy_from, self.copy_statement = None, st.end
            return None
        _execute(self.conn, sql, f"statement at byte {st.start:,} ({' '.join(st.code.split()[:6])[:60]} …)")
        return None

    def _meta(self, m: MetaCommand) -> None:
        unsafe = len(self.collector.unsafe)
        self.collector.meta(m)
        self._check(f"line at byte {m.start:,}")
        kinds = {kind for _, _, kind in self.collector.unsafe[unsafe:]}
        if kinds - {"restrict"}:
            raise _Refused(f"{m.text[:60]} (at byte {m.start:,})")
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
        if self.copy is None or not data.terminated:
            return
        self._data_start()
        marker = self.buf.rfind(b"\\.", 0, data.end - self.base) + self.base
        if marker > self.done:
            self.copy.write(self.buf[self.done - self.base : marker - self.base])
        self.copy = None
        self.copy_stack.close()  # ends the COPY: the server checks every row now
        self.done = data.end


def _execute(conn: psycopg.Connection[Any], sql: bytes, label: str) -> None:
    """One statement, extended protocol: the server refuses to run a second one hidden in it. Waited for in short
    selects, so Ctrl-C and SIGTERM interrupt a statement that runs long (libpq's blocking wait would not)."""
    pgconn = conn.pgconn
    pgconn.send_query_params(sql, None)
    results = []
    while True:
        while pgconn.is_busy():
            select.select([pgconn.socket], [], [], 1.0)
            pgconn.consume_input()
        result = pgconn.get_result()
        if result is None:
            break
        results.append(result)
    for result in results:
        if result.status not in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK, pq.ExecStatus.EMPTY_QUERY):
            message = (result.error_message or pgconn.error_message).decode("utf-8", "replace")
            # Named by its first words with strings collapsed: a failing INSERT's values stay out of the result.
            raise _Failed(f"{label} failed: {first_line(message.removeprefix('ERROR:').strip())}")


class _Failed(Exception):
    pass


def _script(contents: DumpContents) -> Iterator[bytes]:
    """The psql script of the dump: a plain one decompressed (not hashed again: dump-check's read did, and every
    statement is checked again as it runs), an archive as `pg_restore -f -` writes it."""
    path = Path(contents.file.path)
    if contents.format == "pg_dump plain":
        with path.open("rb") as handle:
            kind = compression_of(handle.read(6))
            handle.seek(0)
            yield from decompressed(handle, kind)
        return
    yield from pgdump._restore_script(path)  # same conversion, same environment, as dump-check's


def _connect(url: URL, run: _Run) -> psycopg.Connection[Any]:
    remaining_ms = max(1000, int((run.deadline - time.monotonic()) * 1000))
    params: dict[str, Any] = {"host": url.host or "localhost", "port": url.port or 5432}
    params.update({k: v for k, v in url.query.items() if isinstance(v, str)})  # host=/socket, sslmode … as given
    conninfo = make_conninfo(**params, user=url.username, password=url.password, dbname=url.database,
                             connect_timeout=30, application_name="dbaudit restore-check",
                             options=f"-c statement_timeout={remaining_ms} -c lock_timeout={remaining_ms}")
    return psycopg.connect(conninfo, autocommit=True, prepare_threshold=None)


def _load(url: URL, run: _Run, contents: DumpContents, progress: bool) -> str | None:
    """Execute the script as the temporary role, in one transaction; None when it all ran, else why not."""
    try:
        conn = _connect(url, run)
    except psycopg.Error as exc:
        return f"the temporary role cannot log in: {first_line(str(exc))} (pg_hba.conf must let it connect " \
               "the way the operator did)"
    try:
        runner = _ScriptRunner(conn, run)
        _execute(conn, b"BEGIN", "BEGIN")
        try:
            for data in _script(contents):
                runner.feed(data)
            problem = runner.finish()
        except (RuntimeError, *DECOMPRESS_ERRORS) as exc:  # type: ignore[misc]
            return f"the dump cannot be read whole: {first_line(str(exc))}"
        if problem:
            return f"not committed: the script is cut ({problem})"
        _execute(conn, b"COMMIT", "COMMIT")
        return None
    except _Refused as exc:
        return f"stopped and rolled back: the script holds {exc}"
    except _Failed as exc:
        return _timed_out(run) or str(exc)
    except psycopg.Error as exc:
        return _timed_out(run) or first_line(str(exc))
    finally:
        conn.close()


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
    contents: DumpContents
    version: str
    title: str | None
    cleaned: list[Check]

    def build(self, checks: list[Check], restored: Snapshot | None, seconds: float, kept: bool) -> RestoreCheck:
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

