"""Reading restored tables while the rest of the dump loads: row counts and fingerprints, taken early and exact.

A table whose statements are done (the dump has moved on to another table, nothing is locked and no
transaction is open on the load's session) is counted, and fingerprinted when restore-check proves content,
on a second session as the same temporary account, in a read-only transaction, while the server loads the
next table. Such an early reading is used only when no statement that ran after it was handed over could
have changed the table (backups.restore_touch reads each statement: one table, none, or every table), and
the final snapshot still reads the table's columns and key: when they differ, or the reading was
invalidated, or it failed, the table is read again after the load, as it always was. So the result is
identical to reading every table after the load.

Which statements stay within one table also depends on what the server holds: an INSERT counts as one
table's only when that table is a base table of a local engine with no trigger and the database holds no
routine (a value could call a function that writes elsewhere); the loader reads triggers, routines and
engines from the server after each statement that could have created or changed them.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pymysql
from pymysql.constants import SERVER_STATUS
from sqlalchemy.engine import URL

from dbaudit.audit.chunks import FingerprintMode
from dbaudit.backups.restore_touch import CANDIDATE, CREATED, EVERYTHING, LOCKS, REFRESH, UNLOCKS, Touches
from dbaudit.core.snapshot import Table
from dbaudit.live.connect import audit_session
from dbaudit.live.fingerprint import Fingerprinter, fingerprint_table
from dbaudit.live.quiet_read import read_quiet_tables

# Engines whose rows are the table's own (MERGE writes its member tables, remote engines are refused anyway).
# An early reader waits this long for a lock, then gives up (the table is read after the load): a reader that waits on
# the load (its LOCK TABLES, a table flush) while the load waits on the reader's metadata lock is a cycle the server
# does not detect, which the load's own lock wait (30 s) would otherwise end.
READER_LOCK_WAIT = 2.0
_LOCAL_ENGINES = frozenset({"innodb", "myisam", "aria", "memory", "heap", "csv", "archive", "blackhole"})


@dataclass
class _Reading:
    key: str  # restore_touch's table key (lower case)
    handed: int  # the number of statements that had run when it was handed over
    table: Table  # counted (and fingerprinted)


@dataclass
class EarlyProof:
    """The load's observer: hands finished tables to reader threads and knows which readings still hold."""

    url: URL  # the temporary account on the scratch database
    scratch: str
    touches: Touches
    mode: FingerprintMode
    timeout: float
    seq: int = 0  # statements run so far
    last_everything: int = 0
    last_touch: dict[str, int] = field(default_factory=dict)
    current: str | None = None
    ready: list[str] = field(default_factory=list)
    locked: bool = False
    plain: set[str] = field(default_factory=set)  # base tables of a local engine
    triggered: set[str] = field(default_factory=set)  # tables with a trigger
    routines: bool = False
    errors: list[str] = field(default_factory=list)
    _readings: dict[str, _Reading] = field(default_factory=dict)  # by the table's real name
    _handed: dict[str, int] = field(default_factory=dict)  # key: statements run at its last hand-over
    _queue: queue.Queue[tuple[str, int] | None] = field(default_factory=queue.Queue)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _paused: threading.Event = field(default_factory=threading.Event)  # the load met a lock conflict: no more
    _idle: threading.Condition = field(default_factory=threading.Condition)
    _busy: int = 0  # readers reading

    # --- the load's side ---------------------------------------------------------------------------

    def executed(self, touch: tuple[int, int], conn: pymysql.connections.Connection) -> None:
        index, flags = touch
        self.seq += 1
        key = self.touches.names[index] if index >= 0 else None
        if flags & CANDIDATE and (key not in self.plain or key in self.triggered or self.routines):
            key, index = None, EVERYTHING
        if index == EVERYTHING:
            self.last_everything = self.seq
            self._done(None)
        elif key is not None:
            self.last_touch[key] = self.seq
            if key != self.current:
                self._done(key)
        if flags & CREATED and key is not None:
            self._read_engines(conn, key)
        if flags & REFRESH or index == EVERYTHING:
            self._read_objects(conn)
        if flags & LOCKS:
            self.locked = True
        elif flags & UNLOCKS:
            self.locked = False
        if self.ready and not self.locked and not conn.server_status & SERVER_STATUS.SERVER_STATUS_IN_TRANS:
            self._hand_over(self.ready)
            self.ready = []

    def _done(self, now: str | None) -> None:
        """The table the load was on is done for now (`now` is the next one)."""
        if self.current is not None and self.current not in self.ready:
            self.ready.append(self.current)
        self.current = now

    def _read_engines(self, conn: pymysql.connections.Connection, key: str | None) -> None:
        sql = "SELECT TABLE_NAME, ENGINE, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s"
        args: tuple[str, ...] = (self.scratch,)
        if key is not None:
            # Every object sharing the key, whatever its case: TABLE_NAME compares case-sensitively where
            # lower_case_table_names=0, and `A` (a view, a MERGE table) is the key `a` too.
            sql, args = sql + " AND LOWER(TABLE_NAME) = %s", (self.scratch, key)
            self.plain.discard(key)
        else:
            self.plain.clear()
        local: dict[str, bool] = {}
        with conn.cursor() as cur:
            cur.execute(sql, args)
            for name, engine, kind in cur.fetchall():
                # Names that differ in case share a key: the key is plain only when every such object is.
                lower = str(name).lower()
                if key is not None and lower != key:
                    continue  # LOWER() folded a non-ASCII name to the key: not the key's table
                local[lower] = local.get(lower, True) and kind == "BASE TABLE" and \
                    str(engine or "").lower() in _LOCAL_ENGINES
        self.plain |= {k for k, ok in local.items() if ok}

    def _read_objects(self, conn: pymysql.connections.Connection) -> None:
        with conn.cursor() as cur:
            cur.execute("SELECT EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s",
                        (self.scratch,))
            self.triggered = {str(r[0]).lower() for r in cur.fetchall()}
            cur.execute("SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s", (self.scratch,))
            row = cur.fetchone()
            self.routines = bool(row and row[0])
        self._read_engines(conn, None)

    def step_aside(self) -> bool:
        """The load met a lock conflict: no more early readings during it, and wait (a little) until the reader
        is idle. Whether a reader was busy, so the conflict may have been with it."""
        self._paused.set()
        with self._idle:
            busy = self._busy > 0
            self._idle.wait_for(lambda: self._busy == 0, timeout=60)
        return busy

    def _hand_over(self, keys: list[str]) -> None:
        if self._paused.is_set():
            return
        if not self._threads:
            self._start()
        for key in keys:
            self._handed[key] = self.seq
            self._queue.put((key, self.seq))

    # --- after the load ----------------------------------------------------------------------------

    def finish(self) -> dict[str, Table]:
        """After the load (its session closed): read what is left, its key ranges cut across two sessions while
        the reader finishes what it was handed, and return every reading that still holds, by table name."""
        self._done(None)
        pending = [k for k in dict.fromkeys([*self.ready, *self.last_touch]) if not self._holds_handed(k)]
        self.ready = []
        for _ in self._threads:
            self._queue.put(None)
        if pending and not self._stop.is_set():
            try:
                self._read_split(pending)
            except Exception as exc:  # noqa: BLE001 - the final snapshot reads these tables itself
                self.errors.append(f"{', '.join(pending)}: {' '.join(str(exc).split())[:200]}")
        for thread in self._threads:
            thread.join()
        with self._lock:
            return {name: r.table for name, r in self._readings.items() if self._holds(r)}

    def _read_split(self, keys: list[str]) -> None:
        """Count and fingerprint the tables still to read, their key slices shared by two sessions
        (live.quiet_read): nothing writes any more, so sessions that start at different moments read the same rows."""
        tables = read_quiet_tables(self.url, lambda name: name.lower() in keys, self.mode, timeout=self.timeout,
                                   stop=self._stop, errors=self.errors)
        if tables is not None:
            self._keep(tables)

    def _keep(self, tables: list[Table]) -> None:
        with self._lock:
            for table in tables:
                self._readings[table.name] = _Reading(table.name.lower(), self.seq, table)

    def stop(self) -> None:
        """On an error or an interrupt: the readers end at their next table (the scratch clean-up kills their
        sessions)."""
        self._stop.set()
        for _ in self._threads:
            self._queue.put(None)

    def _holds(self, r: _Reading) -> bool:
        return self.last_everything <= r.handed and self.last_touch.get(r.key, 0) <= r.handed

    def _holds_handed(self, key: str) -> bool:
        """Whether the table's last hand-over (read, or still queued) comes after every statement that touched it."""
        handed = self._handed.get(key)
        return handed is not None and self.last_everything <= handed and self.last_touch.get(key, 0) <= handed

    # --- the readers -------------------------------------------------------------------------------

    def _start(self) -> None:
        thread = threading.Thread(target=self._work, daemon=True, name=f"dbaudit-proof-{len(self._threads)}")
        self._threads.append(thread)
        thread.start()

    def _work(self) -> None:
        while not self._stop.is_set():
            item = self._queue.get()
            if item is None:
                return
            if self._paused.is_set():
                continue
            batch = [item]
            while True:  # everything handed over meanwhile, in one session
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                batch.append(more)
            with self._idle:
                self._busy += 1
            try:
                self._read(batch)
            except Exception as exc:  # noqa: BLE001 - an early reading is an optimisation: after the load it is redone
                self.errors.append(f"{', '.join(k for k, _ in batch)}: {' '.join(str(exc).split())[:200]}")
            finally:
                with self._idle:
                    self._busy -= 1
                    self._idle.notify_all()

    def _read(self, batch: list[tuple[str, int]]) -> None:
        """Count (and fingerprint) the handed-over tables. The catalog is read in a session of its own that ends
        before the rows are read, so this reader never holds a lock on a table the load is still working on
        while it waits for another (the load's DDL would find a metadata-lock cycle: a deadlock)."""
        with contextlib.ExitStack() as stack:
            catalog = stack.enter_context(audit_session(self.url, statement_timeout=self.timeout,
                                                        lock_timeout=READER_LOCK_WAIT))
            stack.enter_context(catalog.dialect.catalog_scope(catalog.connection, catalog.schema))
            tables = catalog.dialect.tables(catalog.connection, catalog.schema)
        wanted = dict(batch)
        chosen = [(t, wanted[n.lower()]) for n, t in tables.items() if n.lower() in wanted]
        if not chosen or self._paused.is_set():
            return
        with audit_session(self.url, statement_timeout=self.timeout, lock_timeout=READER_LOCK_WAIT) as session:
            conn, dialect = session.connection, session.dialect
            for table, _ in chosen:
                table.row_count = dialect.count_rows(conn, table.name, session.schema)
            if self.mode != "none" and chosen:
                fp = Fingerprinter(session)
                for table, _ in chosen:
                    if self._stop.is_set() or self._paused.is_set():
                        return
                    fingerprint_table(fp, table, self.mode)
            with self._lock:
                for table, handed in chosen:
                    self._readings[table.name] = _Reading(table.name.lower(), handed, table)


@contextlib.contextmanager
def early_proof(url: URL, scratch: str, touches: Touches, mode: FingerprintMode,
                timeout: float) -> Iterator[EarlyProof]:
    proof = EarlyProof(url, scratch, touches, mode, timeout)
    try:
        yield proof
    finally:
        proof.stop()
