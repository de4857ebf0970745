"""Counting and fingerprinting tables that nothing writes any more (a restored scratch database after its load), their
key ranges cut across several sessions so that both cores read.

A live audit reads every table in one consistent transaction and cannot do this: sessions that start at different
moments would see different rows. Here they cannot: the load is over and committed, so any cut of a table's key range
into slices, read in any order on any sessions, adds up to the fingerprint one session would read
(live.fingerprint.TableReading).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

from sqlalchemy.engine import URL

from dbaudit.audit.chunks import Digest, FingerprintMode, Slice, merge_buckets
from dbaudit.core.snapshot import Table
from dbaudit.live.connect import audit_session
from dbaudit.live.fingerprint import Fingerprinter, TableReading, table_reading

WORKERS = 2  # sessions that share the slices (this machine's cores: the server does the work)
CUT_ROWS = 50_000  # a smaller table is read in one scan, on whichever session takes it

Jobs = list[tuple[int, Slice | None]]


def read_quiet_tables(url: URL, wanted: Callable[[str], bool], mode: FingerprintMode, *, timeout: float | None,
                      schema: str | None = None, stop: threading.Event | None = None,
                      errors: list[str] | None = None) -> list[Table] | None:
    """The `wanted` tables (by name) counted and, unless `mode` is "none", fingerprinted, their slices read on WORKERS
    sessions. None when a helper session failed or `stop` was set: the caller reads those tables itself then."""
    stop = stop or threading.Event()
    with audit_session(url, schema, statement_timeout=timeout) as session:
        conn, dialect = session.connection, session.dialect
        with dialect.catalog_scope(conn, session.schema):
            tables = [t for n, t in dialect.tables(conn, session.schema).items() if wanted(n)]
        for table in tables:
            table.row_count = dialect.count_rows(conn, table.name, session.schema)
        if mode == "none":
            return tables
        fp = Fingerprinter(session)
        readings = [table_reading(fp, t, mode, sliced=True) for t in tables]
        jobs: Jobs = [(i, part) for i, r in enumerate(readings) for part in _parts(r)]
        jobs.sort(key=lambda job: job[1] is None)  # whole tables last: the slices of one table first, shared
        total = len(jobs)
        found: list[tuple[int, dict[int, Digest]]] = []
        lock = threading.Lock()

        def helper() -> None:
            try:
                _take(readings, jobs, found, lock, stop, None, url, schema, timeout)
            except Exception as exc:  # noqa: BLE001 - the slices it took are missing: the caller reads the tables
                if errors is not None:
                    errors.append(f"slices: {' '.join(str(exc).split())[:200]}")

        helpers = [threading.Thread(target=helper, daemon=True, name=f"dbaudit-quiet-read-{n}")
                   for n in range(WORKERS - 1)]
        for thread in helpers:
            thread.start()
        try:
            _take(readings, jobs, found, lock, stop, fp, url, schema, timeout)
        finally:
            for thread in helpers:
                thread.join()
    if len(found) != total:
        return None
    merged: list[dict[int, Digest]] = [{} for _ in readings]
    for index, buckets in found:
        merge_buckets(merged[index], buckets)
    for reading, buckets in zip(readings, merged):
        reading.fill(buckets)
    return tables


def _take(readings: list[TableReading], jobs: Jobs, found: list[tuple[int, dict[int, Digest]]], lock: threading.Lock,
          stop: threading.Event, fp: Fingerprinter | None, url: URL, schema: str | None, timeout: float | None) -> None:
    """Take slices off `jobs` until none is left, reading each on `fp` (None: on a session of its own)."""
    with contextlib.ExitStack() as stack:
        if fp is None:
            fp = Fingerprinter(stack.enter_context(audit_session(url, schema, statement_timeout=timeout)))
        while not stop.is_set():
            with lock:
                if not jobs:
                    return
                index, part = jobs.pop(0)
            buckets = readings[index].read(fp, part)
            with lock:
                found.append((index, buckets))


def _parts(reading: TableReading) -> list[Slice | None]:
    """The table's key slices, cut in WORKERS at least when it is large enough to share, or one unsliced read."""
    cut = WORKERS if (reading.table.row_count or 0) >= CUT_ROWS else 1
    slices: list[Slice | None] = [*reading.slices(cut)]
    return slices or [None]
