"""Loading a dump statement by statement through PyMySQL, as the temporary account: no client program at all.

The `mariadb`/`mysql` client interprets far more than SQL (backslash commands even inside `/*! */`, an editor,
a pager, `tee`, the user's option files). Here nothing but the server reads the dump: every statement the
scanner (backups.dumpfile.DumpScan) splits off is sent on its own with COM_QUERY, on a connection without
CLIENT_MULTI_STATEMENTS (a statement the scanner misread cannot smuggle a second one: the server stops
with a syntax error) and without LOCAL INFILE. A statement the scan refuses stops the load before it is
sent; `USE`, `CREATE/DROP/ALTER DATABASE` and `SET GLOBAL` are not sent; DEFINER clauses are stripped and
events created disabled (backups.restore_events).

The scan runs in a second thread, ahead of the server: while the server executes one statement, the next
is tokenized. Statements run in transactions as long as the dump's own (autocommit off; its DDL, LOCK and
UNLOCK TABLES commit) with a commit at least every COMMIT_BYTES. A deadline ends it: the server's
max_statement_time (MariaDB) and a watchdog that kills the running statement, then the connection.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pymysql
from pymysql.constants import CLIENT
from sqlalchemy.dialects.mysql.pymysql import MySQLDialect_pymysql
from sqlalchemy.engine import URL

from dbaudit.backups.dumpfile import DumpScan, ScannedStatement
from dbaudit.backups.lexicon import DEFINER_CLAUSE
from dbaudit.backups.restore_account import RestoreAccount
from dbaudit.backups.restore_events import disabled_event, is_alter_event
from dbaudit.backups.sqlscan import MAX_STATEMENT
from dbaudit.backups.statements import NOT_RESTORED
from dbaudit.core.errors import DbauditError, first_line

COMMIT_BYTES = 64 << 20  # a commit at least this often: a huge table's rollback stays bounded
_AHEAD = 16  # statements the scan may run ahead of the server
AHEAD_BYTES = 32 << 20  # and bytes: memory stays bounded by this plus one statement (at most max_allowed_packet)
_KILL_GRACE = 5.0  # seconds between KILL QUERY and KILL CONNECTION
# Statements restore-check refuses besides the scanner's: XA transactions survive the connection (a prepared XA
# transaction holds its locks until someone with XA_RECOVER_ADMIN ends it), and DATA/INDEX DIRECTORY puts table
# files anywhere the server may write.
_XA = re.compile(r"^XA\b", re.IGNORECASE)
_DIRECTORY = re.compile(rb"\b(?:DATA|INDEX)\s+DIRECTORY\b", re.IGNORECASE)
_NEAR = re.compile(r" near '.*", re.DOTALL)
_DUPLICATE = re.compile(r"Duplicate entry '.*?' for key", re.DOTALL)


def strip_definer(statement: bytes) -> bytes:
    """`DEFINER=`root`@`host`` out of a view, trigger or routine: it is created with the restoring account as its
    definer (what a non-SUPER account may do), as restores into another server commonly do."""
    return DEFINER_CLAUSE.sub(b"", statement, count=1)


def extra_refusal(st: ScannedStatement) -> str | None:
    """restore-check's own refusals (XA, DATA/INDEX DIRECTORY) for a statement the scanner let through."""
    if _XA.match(st.head):
        return f"XA transaction statement at byte {st.start:,}"
    if st.kind != "insert" and _DIRECTORY.search(st.text if st.text is not None else st.head.encode()):
        return f"DATA/INDEX DIRECTORY clause at byte {st.start:,} (table files outside the server's data directory)"
    return None


@dataclass
class Loaded:
    """How a load ended."""

    seconds: float
    statements: int  # sent to the server
    error: str | None = None  # None: every statement ran
    timed_out: bool = False
    sha256: str | None = None  # of the file as read by this pass
    skipped: list[str] = field(default_factory=list)  # kinds of statements not sent


def connect_args(server: URL, account: RestoreAccount, database: str) -> dict[str, Any]:
    """PyMySQL arguments for `account`, connected the way `server` is (host and port, or unix_socket; TLS)."""
    _, found = MySQLDialect_pymysql().create_connect_args(account.url(server, database))
    kwargs = dict(found)
    kwargs["client_flag"] = int(kwargs.get("client_flag", 0)) & ~(CLIENT.MULTI_STATEMENTS | CLIENT.LOCAL_FILES)
    kwargs.update(local_infile=False, autocommit=False, charset="utf8mb4", user=account.user,
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


class _Ahead:
    """The scan, run in a thread a few statements (at most AHEAD_BYTES, or one statement) ahead of the server."""

    _END = object()

    def __init__(self, scan: DumpScan) -> None:
        self._items: deque[Any] = deque()
        self._bytes = 0
        self._ready = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, args=(scan,), daemon=True, name="dbaudit-scan")
        self._thread.start()

    def _run(self, scan: DumpScan) -> None:
        item: Any = self._END
        try:
            for st in scan:
                if not self._put(st, len(st.text or b"")):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            item = exc
        self._put(item, 0)

    def _put(self, item: Any, size: int) -> bool:
        with self._ready:
            while not self._stop and self._items and (len(self._items) >= _AHEAD or self._bytes + size > AHEAD_BYTES):
                self._ready.wait(0.2)
            if self._stop:
                return False
            self._items.append((item, size))
            self._bytes += size
            self._ready.notify_all()
            return True

    def __iter__(self) -> Iterator[ScannedStatement]:
        while True:
            with self._ready:
                while not self._items:
                    self._ready.wait(0.5)  # a timeout: Ctrl-C is seen while waiting
                item, size = self._items.popleft()
                self._bytes -= size
                self._ready.notify_all()
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        with self._ready:
            self._stop = True
            self._ready.notify_all()
        self._thread.join(timeout=10)


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


def _message(exc: BaseException) -> str:
    """The server's words, cut before any quoted statement text or key value (row data stays out of reports)."""
    args: tuple[Any, ...] = tuple(getattr(exc, "args", ()))
    text = f"({args[0]}) {args[1]}" if len(args) == 2 and isinstance(args[0], int) else str(exc)
    text = _DUPLICATE.sub("Duplicate entry (value not shown) for key", _NEAR.sub(" near (text not shown)", text))
    return first_line(text)


def load_dump(dump: str, server: URL, account: RestoreAccount, scratch: str, *, server_version: str,
              timeout: float, progress: bool = False, max_statement: int = MAX_STATEMENT) -> Loaded:
    """Run the dump's statements in `scratch` as `account`; stop at the first error, refusal or the deadline."""
    kwargs = connect_args(server, account, scratch)
    mariadb = "mariadb" in server_version.lower()
    started = time.monotonic()
    scan = DumpScan(dump, progress=progress, keep_text=True, max_statement=max_statement)
    with _connection(kwargs) as conn, _connection(kwargs) as control:
        thread = conn.thread_id()

        def kill(what: str) -> None:
            try:
                with control.cursor() as cur:
                    cur.execute(f"KILL {what} {int(thread)}")
            except pymysql.Error:
                pass  # it ended already

        with conn.cursor() as cur:
            if mariadb:
                cur.execute(f"SET SESSION max_statement_time = {max(1, int(timeout))}")
        watchdog = _Watchdog(kill, timeout)
        ahead = _Ahead(scan)
        loaded = Loaded(0.0, 0)
        ended = False
        try:
            loaded.error = _run(conn, ahead, scratch, server_version, mariadb, loaded)
            ended = True
        finally:
            ahead.close()
            watchdog.stop()
            if not ended:  # Ctrl-C, SIGTERM: the statement running on the server must not outlive us
                kill("CONNECTION")
        loaded.timed_out = watchdog.fired or "max_statement_time" in (loaded.error or "")
        if loaded.timed_out:
            loaded.error = (f"stopped by --restore-timeout after {timeout:g} s (statement {loaded.statements + 1}): "
                            f"{loaded.error or 'killed'}")
    loaded.seconds = round(time.monotonic() - started, 3)
    if loaded.error is None:
        contents = scan.contents()
        loaded.sha256 = contents.file.sha256
    return loaded


def _run(conn: pymysql.connections.Connection, statements: _Ahead, scratch: str, server_version: str,
         mariadb: bool, loaded: Loaded) -> str | None:
    uncommitted = 0
    for st in statements:
        refusal = st.refusal or extra_refusal(st)
        if refusal:
            return f"refused at byte {st.start:,} (the dump changed since it was read?): {refusal}"
        if st.kind in NOT_RESTORED:
            loaded.skipped.append(st.kind)
            continue
        text = _prepared(st, server_version, mariadb)
        if text is None:
            return f"an event at byte {st.start:,} cannot be created disabled: not restored"
        try:
            cursor = conn.cursor(pymysql.cursors.SSCursor)  # a result (a dump may SELECT) is read and dropped
            cursor.execute(text)
            cursor.close()
        except pymysql.Error as exc:
            return f"{_describe(st)} failed: {_message(exc)}"
        loaded.statements += 1
        uncommitted += len(text)
        if st.kind == "event" or is_alter_event(st.head):
            enabled = _enabled_events(conn, scratch)
            if enabled:
                return f"event(s) {', '.join(enabled)} enabled despite the rewrite to DISABLE: not restored"
        if uncommitted >= COMMIT_BYTES:
            conn.commit()
            uncommitted = 0
    try:
        conn.commit()
    except pymysql.Error as exc:
        return f"the final commit failed: {_message(exc)}"
    return None


def _prepared(st: ScannedStatement, server_version: str, mariadb: bool) -> bytes | None:
    text = st.text
    if text is None:  # too long to keep: the scan refuses it, so this is never reached
        raise DbauditError(f"statement at byte {st.start:,} has no text")
    if st.definer:
        text = strip_definer(text)
    if st.kind == "event" or is_alter_event(st.head):
        return disabled_event(text, server_version, mariadb)
    return text


def _enabled_events(conn: pymysql.connections.Connection, scratch: str) -> list[str]:
    with conn.cursor() as cur:
        cur.execute("SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s AND STATUS = 'ENABLED'",
                    (scratch,))
        names = [str(r[0]) for r in cur.fetchall()]
        for name in names:
            cur.execute(f"ALTER EVENT `{name.replace('`', '``')}` DISABLE")
    return names


def _describe(st: ScannedStatement) -> str:
    """Which statement, without its values: its kind and byte offset (and the first words of DDL)."""
    if st.kind == "insert":
        words = st.head.split(" VALUES", 1)[0].split("(", 1)[0][:80]
        return f"{words.strip()} (at byte {st.start:,})"
    return f"{' '.join(st.head.split()[:6])[:100]} (at byte {st.start:,})"
