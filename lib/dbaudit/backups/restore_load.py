"""Loading a dump statement by statement through PyMySQL, as the temporary account: no client program at all.

The `mariadb`/`mysql` client interprets far more than SQL (backslash commands even inside `/*! */`, an editor,
a pager, `tee`, the user's option files). Here nothing but the server reads the dump: every statement the
scanner (backups.dumpfile.DumpScan) split off is sent on its own with COM_QUERY, on a connection without
CLIENT_MULTI_STATEMENTS (a statement the scanner misread cannot smuggle a second one: the server stops
with a syntax error) and without LOCAL INFILE. `USE`, `CREATE/DROP/ALTER DATABASE` and `SET GLOBAL` are not
sent; DEFINER clauses are stripped and events created disabled (backups.restore_events).

The dump is tokenized once. restore-check's `ScanAhead` runs that one read on a thread ahead of the load and
hands over each statement, judged, with its exact bytes (the first refusal stops the flow). When the dump is
read whole first (`restore_into`, or no scratch name before the scan), `StatementPlan` records each
statement's byte range and a BLAKE2b digest of its text in a temporary file (constant memory, whatever the
number of statements); the load then reads those ranges straight from the file and sends a statement only
when its bytes still have that digest: what runs is exactly what was scanned and judged, even if the file
changes in between. The session starts as the
client's does (autocommit on; the dump's own SET statements decide the rest). A deadline ends it: a
watchdog kills the running statement, then the connection (the server's max_statement_time, on MariaDB,
is only a backstop after it).
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import pymysql
from pymysql.constants import CLIENT, SERVER_STATUS
from sqlalchemy.dialects.mysql.pymysql import MySQLDialect_pymysql
from sqlalchemy.engine import URL

from dbaudit.backups.dumpfile import DumpContents, DumpScan, ScannedStatement, sql_chunks
from dbaudit.backups.lexicon import DEFINER_CLAUSE
from dbaudit.backups.restore_account import RestoreAccount
from dbaudit.backups.restore_events import disabled_event, is_alter_event
from dbaudit.backups.restore_touch import Touches
from dbaudit.backups.statements import NOT_RESTORED
from dbaudit.core.errors import DbauditError, first_line

_KILL_GRACE = 5.0  # seconds between KILL QUERY and KILL CONNECTION
# Statements restore-check refuses besides the scanner's: XA transactions survive the connection (a prepared XA
# transaction holds its locks until someone with XA_RECOVER_ADMIN ends it), and DATA/INDEX DIRECTORY puts table
# files anywhere the server may write.
_XA = re.compile(r"^XA\b", re.IGNORECASE)
_DIRECTORY = re.compile(rb"\b(?:DATA|INDEX)\s+DIRECTORY\b", re.IGNORECASE)
# Storage engines whose tables are other servers or files (FEDERATED, CONNECT, SPIDER, S3): a restored table of
# one would make the server connect out or read files on the dump author's behalf.
_REMOTE_ENGINE = re.compile(rb"\bENGINE\s*=?\s*[`'\"]?(?:FEDERATED|FEDERATEDX|CONNECT|SPIDER|S3)\b", re.IGNORECASE)
_NEAR = re.compile(r" near '.*", re.DOTALL)
_DUPLICATE = re.compile(r"Duplicate entry '.*?' for key", re.DOTALL)


def strip_definer(statement: bytes) -> bytes:
    """`DEFINER=`root`@`host`` out of a view, trigger or routine: it is created with the restoring account as its
    definer (what a non-SUPER account may do), as restores into another server commonly do."""
    return DEFINER_CLAUSE.sub(b"", statement, count=1)


def extra_refusal(st: ScannedStatement) -> str | None:
    """restore-check's own refusals (XA, DATA/INDEX DIRECTORY, remote engines) for a statement the scanner let
    through."""
    if _XA.match(st.head):
        return f"XA transaction statement at byte {st.start:,}"
    if st.kind == "insert":
        return None
    text = st.text if st.text is not None else st.head.encode()
    if _DIRECTORY.search(text):
        return f"DATA/INDEX DIRECTORY clause at byte {st.start:,} (table files outside the server's data directory)"
    if _REMOTE_ENGINE.search(text):
        return f"a table of a remote or file engine (FEDERATED, CONNECT, SPIDER, S3) at byte {st.start:,}"
    return None


@dataclass
class Loaded:
    """How a load ended."""

    seconds: float
    statements: int  # sent to the server
    error: str | None = None  # None: every statement ran
    timed_out: bool = False


def connect_args(server: URL, account: RestoreAccount, database: str) -> dict[str, Any]:
    """PyMySQL arguments for `account`, connected the way `server` is (host and port, or unix_socket; TLS)."""
    _, found = MySQLDialect_pymysql().create_connect_args(account.url(server, database))
    kwargs = dict(found)
    kwargs["client_flag"] = int(kwargs.get("client_flag", 0)) & ~(CLIENT.MULTI_STATEMENTS | CLIENT.LOCAL_FILES)
    # Autocommit as the client has it: the dump's own SET autocommit / COMMIT decide, as in a plain restore (and
    # measured: one transaction per table made the load slower, not faster).
    kwargs.update(local_infile=False, autocommit=True, charset="utf8mb4", user=account.user,
                  password=account.password, database=database)
    return kwargs


class _Watchdog:
    """Kills the load's statement at the deadline (and its connection if that does not end it)."""

    def __init__(self, kill: Callable[[str], None], seconds: float) -> None:
        self.fired = False
        self._kill = kill
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, args=(seconds,), daemon=True, name="dbaudit-watchdog")
        self._thread.start()

    def _watch(self, seconds: float) -> None:
        if self._done.wait(seconds):
            return
        self.fired = True
        self._kill("QUERY")
        if not self._done.wait(_KILL_GRACE):
            self._kill("CONNECTION")

    def stop(self) -> None:
        self._done.set()
        self._thread.join(timeout=_KILL_GRACE + 5)


Touch = tuple[int, int]  # (NOTHING | EVERYTHING | table index, flags): backups.restore_touch
_RECORD = struct.Struct("<QQBBi16s")  # start, length, flags, touch flags, touched table (restore_touch), digest
_SKIP, _DEFINER, _EVENT, _INSERT = 1, 2, 4, 8


def _digest(text: bytes) -> bytes:
    return hashlib.blake2b(text, digest_size=16).digest()


class StatementPlan:
    """What the load sends, recorded during the scan: one fixed-size record per statement in a temporary file,
    with the table it may change (`touches`, in dump order: see backups.restore_touch)."""

    def __init__(self, touches: Touches | None = None) -> None:
        self._file = tempfile.TemporaryFile(prefix="dbaudit-restore-")  # noqa: SIM115 - closed by close()
        self._buffer = bytearray()
        self.statements = 0
        self.touches = touches or Touches()

    def add(self, st: ScannedStatement) -> None:
        text = st.text or b""
        flags = _flags(st)
        touch, touch_flags = self.touches.classify(st.kind, st.text)
        self._buffer += _RECORD.pack(st.start, len(text), flags, touch_flags, touch, _digest(text))
        self.statements += 1
        if len(self._buffer) >= 1 << 20:
            self._file.write(self._buffer)
            self._buffer.clear()

    def __iter__(self) -> Iterator[tuple[int, int, int, int, int, bytes]]:
        self._file.write(self._buffer)
        self._buffer.clear()
        self._file.seek(0)
        while block := self._file.read(_RECORD.size * 4096):
            yield from _RECORD.iter_unpack(block)

    def close(self) -> None:
        self._file.close()


def _flags(st: ScannedStatement) -> int:
    return (_SKIP if st.kind in NOT_RESTORED else 0) | (_DEFINER if st.definer else 0) \
        | (_EVENT if st.kind == "event" or is_alter_event(st.head) else 0) | (_INSERT if st.kind == "insert" else 0)


_AHEAD_BYTES = 64 << 20  # statements the scan may hold ready for the load (at least one, whatever its size)


class ScanAhead:
    """The one read of the dump, on a thread, running ahead of the load: each statement is judged before the load
    may take it, and the load sends the very bytes that were judged (no second read, nothing to change between).

    The first statement that must not run (the scanner's refusal, restore-check's own, a statement too long, or a
    client command seen so far) stops the flow: it and everything after it are never handed over. The scan then
    reads on to the end without handing anything over, so `contents()` says what the whole dump holds."""

    def __init__(self, dump: str | os.PathLike[str], *, progress: bool, max_statement: int, touches: Touches) -> None:
        self.scan = DumpScan(dump, progress=progress, keep_text=True, max_statement=max_statement)
        self.touches = touches
        self.own_refusals: list[str] = []  # extra_refusal's, for the verdict
        self.stopped: str | None = None  # why statements stopped flowing
        self._items: deque[tuple[int, int, Touch, bytes] | None] = deque()
        self._bytes = 0
        self._ready = threading.Condition()
        self._cancelled = False
        self._aborted = False
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._read, daemon=True, name="dbaudit-scan")

    def start(self) -> ScanAhead:
        self._thread.start()
        return self

    def _read(self) -> None:
        try:
            for st in self.scan:
                if self._aborted:
                    break
                own = extra_refusal(st)
                if own:
                    self.own_refusals.append(own)
                if self.stopped is not None or self._cancelled:
                    continue
                why = st.refusal or own or (None if st.text is not None else "a statement too long")
                why = why or (self.scan.refusals[0] if self.scan.refusals else None)
                if why:
                    self.stopped = why
                    self._put(None)
                    continue
                self._put((st.start, _flags(st), self.touches.classify(st.kind, st.text), st.text or b""))
        except BaseException as exc:  # noqa: BLE001 - handed to the load's thread
            self._failure = exc
        finally:
            self._put(None)

    def _put(self, item: tuple[int, int, Touch, bytes] | None) -> None:
        with self._ready:
            while item is not None and self._items and self._bytes >= _AHEAD_BYTES and not self._cancelled:
                self._ready.wait()
            if self._cancelled and item is not None:
                return
            self._items.append(item)
            self._bytes += len(item[3]) if item else 0
            self._ready.notify_all()

    def statements(self) -> Iterator[tuple[int, int, Touch, bytes]]:
        """What the load sends, as the scan judges it; ends at the dump's end or at the first refusal."""
        while True:
            with self._ready:
                while not self._items:
                    self._ready.wait()
                item = self._items.popleft()
                self._bytes -= len(item[3]) if item else 0
                self._ready.notify_all()
            if item is None or self.stopped is not None:
                return
            yield item

    def abort(self) -> None:
        """An error or an interrupt: the scan stops at its next statement."""
        self._aborted = True
        self._cancel()

    def finish(self) -> DumpContents:
        """Stop handing statements over, let the scan read to the end, and return what the dump holds."""
        self._cancel()
        if self._failure is not None:
            raise self._failure
        return self.scan.contents()

    def _cancel(self) -> None:
        with self._ready:
            self._cancelled = True
            self._items.clear()
            self._bytes = 0
            self._ready.notify_all()
        if self._thread.is_alive():
            self._thread.join()


def _texts(dump: DumpContents, plan: StatementPlan) -> Iterator[tuple[int, int, Touch, bytes]]:
    """(start, flags, (touched table, touch flags), bytes) of each planned statement, read from the dump in one
    sequential pass; refused when its bytes no longer have the digest the scan recorded."""
    with open(dump.file.path, "rb") as handle:
        chunks = sql_chunks(handle, dump.file.compressed)
        buffer, offset = bytearray(), 0  # the SQL bytes from `offset` on
        for start, length, flags, touch_flags, touch, digest in plan:
            end = start + length
            drop = min(max(0, start - offset), len(buffer))
            del buffer[:drop]
            offset += drop
            while offset + len(buffer) < end:
                data = next(chunks, None)
                if data is None:
                    raise DbauditError("the dump file is shorter than when it was read: it changed; not restored")
                if not buffer and offset + len(data) <= start:
                    offset += len(data)  # wholly before the statement (a skipped client command, comments)
                    continue
                if not buffer and offset < start:
                    data, offset = data[start - offset :], start
                buffer += data
            text = bytes(buffer[start - offset : end - offset])
            if _digest(text) != digest:
                raise DbauditError(f"the statement at byte {start:,} changed since the dump was read: not sent")
            yield start, flags, (touch, touch_flags), text


@contextmanager
def _connection(kwargs: dict[str, Any]) -> Iterator[pymysql.connections.Connection]:
    try:
        conn = pymysql.connect(**kwargs)
    except pymysql.Error as exc:
        raise DbauditError(f"the restore account cannot connect: {_message(exc)}") from None
    try:
        yield conn
    finally:
        conn.close()  # a transaction still open is rolled back by the server


# Modes that change how the server tokenizes (ANSI_QUOTES, NO_BACKSLASH_ESCAPES, and the combinations that
# include ANSI_QUOTES): dump-check's scanner reads a dump as a session without them would, so the restore
# session starts without them too, whatever the server's global sql_mode holds.
_TOKENIZING_MODES = frozenset({"ANSI_QUOTES", "NO_BACKSLASH_ESCAPES", "ANSI", "ORACLE", "MSSQL", "DB2", "POSTGRESQL",
                               "MAXDB"})


def _reading_mode(conn: pymysql.connections.Connection) -> None:
    with conn.cursor() as cur:
        cur.execute("SELECT @@SESSION.sql_mode")
        row = cur.fetchone()
        modes = [m for m in str(row[0] if row else "").split(",") if m and m.upper() not in _TOKENIZING_MODES]
        cur.execute("SET SESSION sql_mode = %s", (",".join(modes),))


def _message(exc: BaseException) -> str:
    """The server's words, cut before any quoted statement text or key value (row data stays out of reports)."""
    args: tuple[Any, ...] = tuple(getattr(exc, "args", ()))
    text = f"({args[0]}) {args[1]}" if len(args) == 2 and isinstance(args[0], int) else str(exc)
    text = _DUPLICATE.sub("Duplicate entry (value not shown) for key", _NEAR.sub(" near (text not shown)", text))
    return first_line(text)


class LoadObserver(Protocol):
    """Told of each statement the load ran, on the load's own connection (restore_proof reads tables early)."""

    def executed(self, touch: Touch, conn: pymysql.connections.Connection) -> None: ...

    def step_aside(self) -> bool:
        """A statement met a lock conflict: stop reading early and wait until idle; whether anything was reading."""
        ...


def load_dump(dump: DumpContents | None, plan: StatementPlan | ScanAhead, server: URL, account: RestoreAccount, scratch: str, *,
              server_version: str, timeout: float, observer: LoadObserver | None = None) -> Loaded:
    """Run the planned statements in `scratch` as `account` (read back from `dump`'s file, or handed over by the scan
    running ahead); stop at the first error or the deadline."""
    kwargs = connect_args(server, account, scratch)
    mariadb = "mariadb" in server_version.lower()
    started = time.monotonic()
    with _connection(kwargs) as conn, _connection(kwargs) as control:
        thread = conn.thread_id()
        _reading_mode(conn)

        def kill(what: str) -> None:
            try:
                with control.cursor() as cur:
                    cur.execute(f"KILL {what} {int(thread)}")
            except pymysql.Error:
                pass  # it ended already

        with conn.cursor() as cur:
            if mariadb:
                # A backstop after the watchdog's deadline: an interrupted SLEEP() returns 1 without an error, so
                # only the watchdog's flag tells a statement cut short from one that ended.
                cur.execute(f"SET SESSION max_statement_time = {int(timeout + _KILL_GRACE) + 1}")
        watchdog = _Watchdog(kill, timeout)
        loaded = Loaded(0.0, 0)
        ended = False
        try:
            try:
                source = plan.statements() if isinstance(plan, ScanAhead) else _texts(_given(dump), plan)
                loaded.error = _run(conn, source, scratch, server_version, mariadb, loaded,
                                    lambda: watchdog.fired, observer)
            except DbauditError as exc:  # the file changed under it
                loaded.error = str(exc)
            ended = True
        finally:
            watchdog.stop()
            if not ended:  # Ctrl-C, SIGTERM: the statement running on the server must not outlive us
                kill("CONNECTION")
        loaded.timed_out = watchdog.fired or "max_statement_time" in (loaded.error or "")
        if loaded.timed_out:
            loaded.error = (f"stopped by --restore-timeout after {timeout:g} s (statement {loaded.statements + 1}): "
                            f"{loaded.error or 'killed'}")
    loaded.seconds = round(time.monotonic() - started, 3)
    return loaded


def _given(dump: DumpContents | None) -> DumpContents:
    if dump is None:
        raise DbauditError("a statement plan is read back from its dump: the dump's contents are needed")
    return dump


def _run(conn: pymysql.connections.Connection, statements: Iterator[tuple[int, int, Touch, bytes]], scratch: str,
         server_version: str, mariadb: bool, loaded: Loaded, late: Callable[[], bool],
         observer: LoadObserver | None = None) -> str | None:
    for start, flags, touch, scanned in statements:
        if late():
            return "killed"
        if flags & _SKIP:
            continue
        text = scanned
        if flags & _DEFINER:
            text = strip_definer(text)
        if flags & _EVENT:
            disabled = disabled_event(text, server_version, mariadb)
            if disabled is None:
                return f"an event at byte {start:,} cannot be created disabled: not restored"
            text = disabled
        try:
            _execute(conn, text)
        except pymysql.Error as exc:
            # A deadlock or lock wait can only be with the early readers (nothing else uses the scratch database):
            # they step aside, and a statement outside a transaction, which the error left undone, runs again.
            retry = observer is not None and _lock_conflict(exc) and \
                not conn.server_status & SERVER_STATUS.SERVER_STATUS_IN_TRANS and observer.step_aside()
            try:
                if not retry:
                    raise
                _execute(conn, text)
            except pymysql.Error as again:
                return f"{_describe(text, start, flags)} failed: {_message(again)}"
        if late():
            return "killed"
        loaded.statements += 1
        if flags & _EVENT:
            enabled = _enabled_events(conn, scratch)
            if enabled:
                return f"event(s) {', '.join(enabled)} enabled despite the rewrite to DISABLE: not restored"
        if observer is not None:
            try:
                observer.executed(touch, conn)
            except pymysql.Error as exc:
                return f"reading the server's objects after the statement at byte {start:,} failed: {_message(exc)}"
    return None


def _execute(conn: pymysql.connections.Connection, text: bytes) -> None:
    cursor = conn.cursor(pymysql.cursors.SSCursor)  # a result (a dump may SELECT) is read and dropped
    cursor.execute(text)
    cursor.close()


def _lock_conflict(exc: pymysql.Error) -> bool:
    args: tuple[Any, ...] = tuple(getattr(exc, "args", ()))
    return bool(args) and args[0] in (1205, 1213)  # lock wait timeout, deadlock


def _enabled_events(conn: pymysql.connections.Connection, scratch: str) -> list[str]:
    with conn.cursor() as cur:
        cur.execute("SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s AND STATUS = 'ENABLED'",
                    (scratch,))
        names = [str(r[0]) for r in cur.fetchall()]
        for name in names:
            cur.execute(f"ALTER EVENT `{name.replace('`', '``')}` DISABLE")
    return names


def _describe(text: bytes, start: int, flags: int) -> str:
    """Which statement, without its values: its first words (an INSERT's up to VALUES) and byte offset."""
    head = " ".join(text[:300].decode("utf-8", "replace").split())
    if flags & _INSERT:
        head = head.split(" VALUES", 1)[0].split(" values", 1)[0].split("(", 1)[0]
    return f"{' '.join(head.split()[:6])[:100]} (at byte {start:,})"
