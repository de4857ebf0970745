"""Live compare of two databases: which tables hold different rows, and under which keys (issue #3).

Each table is fingerprinted by chunk on both sides at once (one scan each, inside the servers); equal
chunk sums prove equal rows. A chunk that differs is split and fingerprinted again (a range chunk is
read through the primary-key index), until it holds at most `leaf_rows` rows; then both sides list
that chunk's keys with a digest per row, and the keys that were added, removed or changed fall out.
Tables without a primary key are compared as multisets of rows, and the result says so.

Reports name keys only. Row values appear only with `show_values` (CLI `--show-values`), and then only
the columns that differ. The result is a versioned document (`kind: dbaudit.compare`).
"""

from __future__ import annotations

import functools
import os
import queue
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal, TypeVar

from tqdm import tqdm

from dbaudit.audit.chunks import (
    DIGEST,
    TARGET_CHUNKS,
    Digest,
    Plan,
    Slice,
    integer_lead,
    key_columns,
    key_slices,
    merge_buckets,
    next_power_of_two,
    select_tables,
)
from dbaudit.core import serde
from dbaudit.core.checks import Check
from dbaudit.core.errors import DbauditError
from dbaudit.core.snapshot import Column, Table
from dbaudit.core.terminal import visible
from dbaudit.live.connect import AuditSession, audit_session, end_server_session, mask_url
from dbaudit.live.fingerprint import Fingerprinter, LeafRow

FORMAT_VERSION = 1
KIND = "dbaudit.compare"
LEAF_ROWS = 4096  # a differing chunk this small is listed key by key instead of split again
SPLIT = 16  # a differing range chunk is split into this many sub-ranges per round
MAX_KEYS = 20  # differing keys listed per table by default; the totals are always complete
RANGES_PER_QUERY = 200  # leaf key ranges read in one statement
Status = Literal["same", "different", "only_in_a", "only_in_b", "error"]
T = TypeVar("T")


@dataclass
class KeyDiff:
    change: Literal["added", "removed", "changed"]  # added: only in B; removed: only in A
    key: dict[str, str]  # key column -> canonical text ({} for a table without a primary key)
    a: dict[str, str | None] | None = None  # with show_values only: the differing columns in A
    b: dict[str, str | None] | None = None

    @property
    def label(self) -> str:
        """`id=42`, `emp_no=10001, dept_no=d005`; a row of a table without a key has none."""
        return ", ".join(f"{k}={v}" for k, v in self.key.items()) or "(row)"


@dataclass
class TableComparison:
    name: str
    status: Status
    method: str  # counts, range, hash (non-integer key), rowhash (no primary key: a multiset of rows)
    rows_a: int | None = None
    rows_b: int | None = None
    fingerprint_a: str | None = None
    fingerprint_b: str | None = None
    added: int = 0
    removed: int = 0
    changed: int = 0
    keys: list[KeyDiff] = field(default_factory=list)  # at most max_keys of them
    note: str = ""
    seconds: float = 0.0

    @property
    def keys_total(self) -> int:
        return self.added + self.removed + self.changed

    def describe(self) -> str:
        """One line: status, name, rows, what differs, and the note."""
        mark = {"same": "same", "different": "DIFF", "only_in_a": "ONLY A", "only_in_b": "ONLY B", "error": "ERROR"}
        text = f"{mark[self.status]:<6} {self.name}"
        if self.rows_a is not None or self.rows_b is not None:
            rows = f"{self.rows_a:,} rows" if self.rows_a == self.rows_b else f"{self.rows_a:,} → {self.rows_b:,} rows"
            text += f"  {rows}"
        if self.status == "different" and self.method != "counts":
            text += f"  ({self.changed} changed, {self.removed} removed, {self.added} added)"
        if self.note:
            text += f"  [{self.note}]"
        return text


@dataclass
class Source:
    source: str  # the URL, password masked
    database: str
    product: str
    version: str


@dataclass
class CompareResult(serde.Document):
    format_version: int
    kind: str
    generated_at: str
    a: Source
    b: Source
    algorithm: str | None  # row digest both sides computed; None with counts_only
    counts_only: bool
    show_values: bool
    max_keys: int
    tables: list[TableComparison]
    summary: dict[str, int]
    duration_seconds: float = 0.0
    verdict: str = ""  # pass (every table the same), fail (a difference), error (a table not compared)
    title: str = ""  # for the report archive: "<database A> vs <database B>"

    @property
    def identical(self) -> bool:
        return all(t.status == "same" for t in self.tables)

    @property
    def errors(self) -> list[TableComparison]:
        return [t for t in self.tables if t.status == "error"]

    @property
    def checks(self) -> list[Check]:
        """One check per table: a table passes when both sides hold the same rows."""
        return [Check("compare", t.name, "pass" if t.status == "same" else "fail", t.describe().strip())
                for t in self.tables]


def load_compare_result(path: str | os.PathLike[str]) -> CompareResult:
    return serde.load_document(CompareResult, path, KIND, FORMAT_VERSION, "compare result")


# --- sessions -------------------------------------------------------------------------------------


class _Side:
    """One database: up to `size` read-only sessions, opened on demand and shared by the workers."""

    def __init__(self, url: str, schema: str | None, size: int, timeout: float | None, stack: ExitStack) -> None:
        self.url, self.schema, self.size, self.timeout, self.stack = url, schema, size, timeout, stack
        self.idle: queue.Queue[Fingerprinter] = queue.Queue()
        self.opened = 1
        self.lock = threading.Lock()
        self.sessions: list[AuditSession] = []
        self.first: AuditSession = self._open()
        self.tables: dict[str, Table] = self.first.dialect.tables(self.first.connection, self.first.schema)
        self.server = self.first.dialect.server(self.first.connection)
        self.dialect_name: str = self.first.dialect.name

    def _open(self) -> AuditSession:
        session = audit_session(self.url, self.schema, self.timeout)
        with self.lock:  # the stack closes every session when the compare ends, whichever thread opened it
            opened = self.stack.enter_context(session)
            self.sessions.append(opened)
            return opened

    def abort(self) -> None:
        """End every session on the server: after Ctrl-C or SIGTERM the workers' statements (waiting on
        a lock, say) fail at once, so the threads finish and the compare exits."""
        with self.lock:
            sessions = list(self.sessions)
        for session in sessions:
            end_server_session(session)

    def start(self) -> None:
        self.idle.put(Fingerprinter(self.first))

    @contextmanager
    def borrow(self) -> Iterator[Fingerprinter]:
        try:
            fp = self.idle.get_nowait()
        except queue.Empty:
            with self.lock:
                room = self.opened < self.size
                self.opened += room
            fp = Fingerprinter(self._open()) if room else self.idle.get()
        try:
            yield fp
        finally:
            self.idle.put(fp)

    def run(self, work: Callable[[Fingerprinter], T]) -> T:
        with self.borrow() as fp:
            return work(fp)

    def source(self) -> Source:
        return Source(mask_url(self.first.url), self.first.database, self.server.product, self.server.version)


@dataclass(frozen=True)
class _Target:
    """A table as one side sees it: its own column types decide its canonical SQL."""

    name: str
    columns: list[Column]
    plan: Plan


@dataclass
class _Options:
    counts_only: bool
    show_values: bool
    max_keys: int
    leaf_rows: int


# --- comparing one table --------------------------------------------------------------------------


class _TableCompare:
    def __init__(self, name: str, a: _Side, b: _Side, pool: ThreadPoolExecutor, options: _Options,
                 advance: Callable[[int], object] = lambda rows: None, name_b: str | None = None) -> None:
        self.name, self.a, self.b, self.pool, self.options, self.advance = name, a, b, pool, options, advance
        self.name_b = name_b or name  # the table's name in B, when it differs in case only

    def both(self, work: Callable[[Fingerprinter, _Target], T], targets: tuple[_Target, _Target]) -> tuple[T, T]:
        """Run the same work on both sides at once."""
        futures: list[Future[T]] = [self.pool.submit(side.run, lambda fp, t=target: work(fp, t))
                                    for side, target in zip((self.a, self.b), targets)]
        return futures[0].result(), futures[1].result()

    def run(self) -> TableComparison:
        started = time.monotonic()
        try:
            result = self._compare()
        except DbauditError as exc:
            result = TableComparison(self.name, "error", "", note=str(exc))
        result.seconds = round(time.monotonic() - started, 3)
        return result

    def _compare(self) -> TableComparison:
        ta, tb = self.a.tables.get(self.name), self.b.tables.get(self.name_b)
        if ta is None or tb is None:
            return TableComparison(self.name, "only_in_b" if ta is None else "only_in_a", "")
        pairs = shared_columns(ta, tb)
        note = "; ".join(filter(None, [f"named {tb.name} in B" if tb.name != ta.name else "",
                                       _column_note(ta, tb, pairs)]))
        if self.options.counts_only or not pairs:
            rows = self.both(lambda fp, t: fp.session.dialect.count_rows(fp.session.connection, t.name,
                                                                        fp.session.schema),
                             (_Target(ta.name, [], Plan("rowhash", (), 1)), _Target(tb.name, [], Plan("rowhash", (), 1))))
            status: Status = "same" if rows[0] == rows[1] else "different"
            self.advance(max(rows))
            why = "counts only: contents not compared" if pairs else "no column in common: rows counted, contents not compared"
            note = "; ".join(filter(None, [note, why]))
            return TableComparison(self.name, status, "counts", rows[0], rows[1], note=note)
        targets, span = self._targets(ta, tb, pairs)
        plan = targets[0].plan
        if plan.method == "rowhash" and ta.primary_key:
            note = "; ".join(filter(None, [note, "primary keys differ: compared as a multiset of rows"]))
        elif plan.method == "rowhash":
            note = "; ".join(filter(None, [note, "no primary key: compared as a multiset of rows"]))
        level0 = self._level0(targets, span)
        totals = [sum(side.values(), Digest()) for side in level0]
        result = TableComparison(
            self.name, "same" if level0[0] == level0[1] else "different", plan.method,
            totals[0].rows, totals[1].rows,
            totals[0].token(), totals[1].token(), note=note,
        )
        if result.status == "different":
            self._locate(result, targets, level0)
        return result

    def _targets(self, ta: Table, tb: Table, pairs: list[tuple[Column, Column]]
                 ) -> tuple[tuple[_Target, _Target], tuple[int, int] | None]:
        """Both sides' columns and chunk plan, and (for a range plan) the integer key's range over both."""
        cols_a = [a for a, _ in pairs]
        cols_b = [b for _, b in pairs]
        in_b = {a.name: b.name for a, b in pairs}
        same_key = bool(ta.primary_key) and [in_b.get(n) for n in ta.primary_key] == tb.primary_key
        if not same_key:
            rowhash = Plan("rowhash", (), TARGET_CHUNKS)
            return (_Target(ta.name, cols_a, rowhash), _Target(tb.name, cols_b, rowhash)), None
        key_a, key_b = key_columns(ta), key_columns(tb)
        if integer_lead(ta, self.a.dialect_name) and integer_lead(tb, self.b.dialect_name):
            spans = self.both(lambda fp, t: fp.key_span(t.name, t.plan.key[0]),
                              (_Target(ta.name, [], Plan("range", key_a, 1)),
                               _Target(tb.name, [], Plan("range", key_b, 1))))
            known = [s for s in spans if s]
            if known:  # else both are empty (or, on SQLite, hold keys that are not integers): by key hash
                span = min(s[0] for s in known), max(s[1] for s in known)
                width = next_power_of_two((span[1] - span[0] + 1) / TARGET_CHUNKS)
                return (_Target(ta.name, cols_a, Plan("range", key_a, width)),
                        _Target(tb.name, cols_b, Plan("range", key_b, width))), span
        return (_Target(ta.name, cols_a, Plan("hash", key_a, TARGET_CHUNKS)),
                _Target(tb.name, cols_b, Plan("hash", key_b, TARGET_CHUNKS))), None

    def _level0(self, targets: tuple[_Target, _Target], span: tuple[int, int] | None
                ) -> tuple[dict[int, Digest], dict[int, Digest]]:
        """Both sides' chunk sums. A big integer-keyed table is read in key slices, all queued at once so
        idle sessions share them, and progress moves with each slice of side A."""
        # The span's width stands in for the row count (compare counts nothing first); MAX_SLICES bounds it.
        slices: list[Slice | None] = [*key_slices(span, None if span is None else span[1] - span[0] + 1)] or [None]
        jobs = [(side is self.a, self.pool.submit(
                    side.run, lambda fp, t=target, p=part: fp.buckets(t.name, t.columns, t.plan, part=p)))
                for part in slices for side, target in zip((self.a, self.b), targets)]
        merged: tuple[dict[int, Digest], dict[int, Digest]] = ({}, {})
        try:
            for is_a, job in jobs:
                found = job.result()
                merge_buckets(merged[0 if is_a else 1], found)
                if is_a:
                    self.advance(sum(d.rows for d in found.values()))
        finally:
            for _, job in jobs:
                job.cancel()  # a failed slice fails the table: its queued slices need not run
        return merged

    def _locate(self, result: TableComparison, targets: tuple[_Target, _Target],
                level0: tuple[dict[int, Digest], dict[int, Digest]]) -> None:
        plan = targets[0].plan
        differing = _differing(*level0)
        if plan.method == "range":
            ranges = self._narrow(targets, plan.width, differing, level0)
            leaves = self._leaf_ranges(targets, ranges)
        else:
            leaves = self.both(lambda fp, t: fp.leaf_rows(t.name, t.columns, t.plan, buckets=differing,
                                                          values=self.options.show_values), targets)
        if plan.method == "rowhash":
            _multiset_diff(result, *leaves, self.options)
        else:
            _keyed_diff(result, [c.name for c in plan.key], *leaves, self.options)

    def _narrow(self, targets: tuple[_Target, _Target], width: int, buckets: list[int],
                digests: tuple[dict[int, Digest], dict[int, Digest]]) -> list[tuple[int, int]]:
        """Split differing range chunks until each holds at most leaf_rows rows (bisection, SPLIT-way)."""
        leaves: list[tuple[int, int]] = []
        plan = replace(targets[0].plan, width=width)
        for bucket in buckets:
            rows = max(digests[0].get(bucket, Digest()).rows, digests[1].get(bucket, Digest()).rows)
            bounds = plan.bounds(bucket)
            if rows <= self.options.leaf_rows or width == 1:
                leaves.append(bounds)
                continue
            sub = max(1, width // SPLIT)
            inner = self.both(functools.partial(_sub_buckets, width=sub, bounds=bounds), targets)
            leaves.extend(self._narrow(targets, sub, _differing(*inner), inner))
        return leaves

    def _leaf_ranges(self, targets: tuple[_Target, _Target],
                     ranges: list[tuple[int, int]]) -> tuple[list[LeafRow], list[LeafRow]]:
        rows_a: list[LeafRow] = []
        rows_b: list[LeafRow] = []
        for start in range(0, len(ranges), RANGES_PER_QUERY):
            batch = ranges[start:start + RANGES_PER_QUERY]
            found = self.both(functools.partial(_leaves, ranges=batch, values=self.options.show_values), targets)
            rows_a.extend(found[0])
            rows_b.extend(found[1])
        return rows_a, rows_b


def _sub_buckets(fp: Fingerprinter, t: _Target, width: int, bounds: tuple[int, int]) -> dict[int, Digest]:
    return fp.buckets(t.name, t.columns, t.plan, width=width, ranges=[bounds])


def _leaves(fp: Fingerprinter, t: _Target, ranges: list[tuple[int, int]], values: bool) -> list[LeafRow]:
    return fp.leaf_rows(t.name, t.columns, t.plan, ranges=ranges, values=values)


def _differing(a: dict[int, Digest], b: dict[int, Digest]) -> list[int]:
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def shared_columns(ta: Table, tb: Table) -> list[tuple[Column, Column]]:
    """The columns both sides have, in A's order: by name, else by name ignoring case where that names one
    column on each side. MySQL/MariaDB and SQLite never tell `ID` from `id`, and PostgreSQL folds unquoted
    names to lower case, so after a move between them `ID` and `id` are one column."""
    return [(ta.column(a), tb.column(b)) for a, b in match_names([c.name for c in ta.columns],  # type: ignore[misc]
                                                                  [c.name for c in tb.columns])]


def match_names(a: Sequence[str], b: Sequence[str]) -> list[tuple[str, str]]:
    """Pairs of names that are the same object: equal, or equal ignoring case and unambiguous on both sides."""
    exact = set(a) & set(b)
    rest_a = [n for n in a if n not in exact]
    rest_b = [n for n in b if n not in exact]
    folded_a = Counter(n.lower() for n in rest_a)
    folded_b = {n.lower(): n for n in rest_b if sum(m.lower() == n.lower() for m in rest_b) == 1}
    pairs = []
    for name in a:
        if name in exact:
            pairs.append((name, name))
        elif folded_a[name.lower()] == 1 and name.lower() in folded_b:
            pairs.append((name, folded_b[name.lower()]))
    return pairs


def _column_note(ta: Table, tb: Table, pairs: list[tuple[Column, Column]]) -> str:
    only_a = [c.name for c in ta.columns if c.name not in {x.name for x, _ in pairs}]
    only_b = [c.name for c in tb.columns if c.name not in {y.name for _, y in pairs}]
    parts = [f"columns only in A: {', '.join(only_a)}" if only_a else "",
             f"columns only in B: {', '.join(only_b)}" if only_b else ""]
    text = "; ".join(p for p in parts if p)
    return f"{text} (rows compared on the shared columns)" if text else ""


def _sort_key(key: tuple[str, ...]) -> tuple[tuple[int, int, str], ...]:
    """Numbers in numeric order, so id 9 lists before id 10."""
    return tuple((0, int(k), "") if k.lstrip("-").isdigit() else (1, 0, k) for k in key)


def _differing_values(a: LeafRow | None, b: LeafRow | None) -> tuple[dict[str, str | None] | None, ...]:
    if a is None or b is None or a.values is None or b.values is None:
        return (a.values if a else None), (b.values if b else None)
    names = [n for n in a.values if a.values.get(n) != b.values.get(n)]
    return {n: a.values[n] for n in names}, {n: b.values.get(n) for n in names}


def _keyed_diff(result: TableComparison, key_names: list[str], rows_a: list[LeafRow], rows_b: list[LeafRow],
                options: _Options) -> None:
    by_a = {r.key: r for r in rows_a}
    by_b = {r.key: r for r in rows_b}
    found: list[KeyDiff] = []
    for key in sorted(set(by_a) | set(by_b), key=_sort_key):
        a, b = by_a.get(key), by_b.get(key)
        if a is not None and b is not None and a.digest == b.digest:
            continue
        change: Literal["added", "removed", "changed"] = "added" if a is None else "removed" if b is None else "changed"
        setattr(result, change, getattr(result, change) + 1)
        if len(found) < options.max_keys:
            values_a, values_b = _differing_values(a, b) if options.show_values else (None, None)
            found.append(KeyDiff(change, dict(zip(key_names, key)), values_a, values_b))
    result.keys = found


def _multiset_diff(result: TableComparison, rows_a: list[LeafRow], rows_b: list[LeafRow], options: _Options) -> None:
    """Without a key a changed row is one row removed plus one added; rows are named only with show_values."""
    count_a, count_b = Counter(r.digest for r in rows_a), Counter(r.digest for r in rows_b)
    only_a, only_b = count_a - count_b, count_b - count_a
    result.removed, result.added = sum(only_a.values()), sum(only_b.values())
    if options.show_values:
        sample = {r.digest: r for r in [*rows_a, *rows_b]}
        listed = [KeyDiff("removed", {}, a=sample[d].values) for d in sorted(only_a)]
        listed += [KeyDiff("added", {}, b=sample[d].values) for d in sorted(only_b)]
        result.keys = listed[: options.max_keys]


# --- the whole compare ----------------------------------------------------------------------------


def compare(
    url_a: str,
    url_b: str,
    *,
    tables: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    schema: str | None = None,
    workers: int = 4,
    counts_only: bool = False,
    show_values: bool = False,
    max_keys: int = MAX_KEYS,
    statement_timeout: float | None = None,
    leaf_rows: int = LEAF_ROWS,
    progress: bool = False,
) -> CompareResult:
    """Compare every table the two databases share (or the ones `tables`/`exclude` pick).

    At most `workers` tables are compared at once, over at most `workers` sessions per database."""
    if workers < 1 or max_keys < 0 or leaf_rows < 1:
        raise DbauditError("workers and leaf_rows must be at least 1, max_keys at least 0")
    started = time.monotonic()
    options = _Options(counts_only, show_values, max_keys, leaf_rows)
    with ExitStack() as stack:
        a = _Side(url_a, schema, workers, statement_timeout, stack)
        b = _Side(url_b, schema, workers, statement_timeout, stack)
        a.start()
        b.start()
        # A table named in other case on B (`Users`, `users`) is the same table, as its columns are.
        in_b = dict(match_names(sorted(a.tables), sorted(b.tables)))
        paired = set(in_b.values())
        names = select_tables(set(a.tables) | {n for n in b.tables if n not in paired}, tables, exclude)
        if tables and not names:
            raise DbauditError(f"no table matches --tables {' '.join(tables)}")
        results = _run_tables(names, a, b, options, workers, progress, in_b)
        sources = a.source(), b.source()
    return CompareResult(
        format_version=FORMAT_VERSION,
        kind=KIND,
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        a=sources[0],
        b=sources[1],
        algorithm=None if counts_only else DIGEST,
        counts_only=counts_only,
        show_values=show_values,
        max_keys=max_keys,
        tables=results,
        summary=_summary(results),
        duration_seconds=round(time.monotonic() - started, 3),
        verdict=_verdict(results),
        title=f"{sources[0].database} vs {sources[1].database}",
    )


def _run_tables(names: list[str], a: _Side, b: _Side, options: _Options, workers: int,
                progress: bool, in_b: dict[str, str] | None = None) -> list[TableComparison]:
    # Queries run in their own pool so a table's two sides scan at the same time, while the table pool
    # bounds how many tables (and so sessions per database) are busy at once.
    with ThreadPoolExecutor(workers, thread_name_prefix="dbaudit-table") as table_pool, \
            ThreadPoolExecutor(2 * workers, thread_name_prefix="dbaudit-query") as query_pool, \
            tqdm(total=None, desc="comparing", unit="row", unit_scale=True, disable=not progress,
                 leave=False, file=sys.stderr) as bar:
        futures = {name: table_pool.submit(_TableCompare(name, a, b, query_pool, options, bar.update,
                                                         (in_b or {}).get(name)).run)
                   for name in names}
        results = []
        try:
            for name, future in futures.items():
                bar.set_postfix_str(visible(name))
                results.append(future.result())
        except KeyboardInterrupt:  # Ctrl-C, SIGTERM (signals reach the main thread only)
            table_pool.shutdown(wait=False, cancel_futures=True)
            query_pool.shutdown(wait=False, cancel_futures=True)
            a.abort()
            b.abort()
            raise
    return results


def _verdict(results: list[TableComparison]) -> str:
    statuses = {r.status for r in results}
    return "error" if "error" in statuses else "pass" if statuses <= {"same"} else "fail"


def _summary(results: list[TableComparison]) -> dict[str, int]:
    summary = dict.fromkeys(("same", "different", "only_in_a", "only_in_b", "error"), 0)
    for result in results:
        summary[result.status] += 1
    summary["tables"] = len(results)
    summary["keys"] = sum(r.keys_total for r in results)
    return summary
