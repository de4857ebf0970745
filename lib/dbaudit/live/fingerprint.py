"""Content fingerprints of live tables: rows summarised inside the server in one scan (issue #3).

The arithmetic (digests, chunk plans, key slices) is in dbaudit.audit.chunks; the canonical row text
and its hash, as SQL per dialect, in dbaudit.live.canonical. A fingerprint does not depend on row
order, storage format, server version or a dump/restore, and the same rows give the same value on
MySQL/MariaDB, PostgreSQL and SQLite.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy.exc import DBAPIError
from tqdm import tqdm  # the plain bar: notebook widgets need ipywidgets, which reports do not

from dbaudit.audit import chunks
from dbaudit.audit.chunks import (
    MIN_CHUNK_ROWS,
    Digest,
    FingerprintMode,
    Plan,
    Slice,
    baseline_columns,
    integer_lead,
    key_columns,
    key_slices,
    merge_buckets,
    snapshot_plan,
)
from dbaudit.core.errors import DbauditError
from dbaudit.core.snapshot import BaselineFingerprint, Column, Table
from dbaudit.core.terminal import visible
from dbaudit.live.canonical import Canon, canon_for
from dbaudit.live.connect import AuditSession, describe_db_error


@dataclass(frozen=True)
class LeafRow:
    key: tuple[str, ...]  # canonical text of each key column; for rowhash tables, the row digest
    digest: str
    values: dict[str, str | None] | None = None  # canonical text of every column, only when asked


class Fingerprinter:
    """Fingerprint queries on one open audit session: nothing here writes."""

    def __init__(self, session: AuditSession) -> None:
        self.session = session
        self.canon: Canon = canon_for(session.connection, session.dialect.name)
        self.canon.prepare(session.connection)

    # --- SQL pieces -------------------------------------------------------------------------------

    def _use(self, table: str) -> str:
        """Bind the canonical SQL to `table`'s live columns; returns the table's quoted, qualified name."""
        self.canon.use_table(self.session.connection, self.session.schema, table)
        return self._table(table)

    def _table(self, name: str) -> str:
        quote = self.canon.quote
        schema = self.session.schema
        return f"{quote(schema)}.{quote(name)}" if schema else quote(name)

    def _run(self, what: str, sql: str) -> list[Any]:
        """Run generated SQL exactly as written: no bind parameters, and nothing parses it but the server.

        The SQL holds quoted identifiers, which may contain anything (`:x`, `%s`, `;`, `--`): text()
        would take `:x` for a bind parameter, and a driver given parameters would format `%`. So every
        value is an int literal written in by the caller, and no_parameters makes SQLAlchemy call
        cursor.execute(sql) with no parameters at all, which no driver formats."""
        conn = self.session.connection
        try:
            return list(conn.exec_driver_sql(sql, execution_options={"no_parameters": True}).all())
        except DBAPIError as exc:
            raise DbauditError(f"{what}: {describe_db_error(exc)}") from None

    def _bucket_sql(self, plan: Plan, columns: Sequence[Column], width: int) -> str:
        canon = self.canon
        if plan.method == "range":
            return canon.integer_division(canon.column(plan.key[0]), width)
        if plan.method == "hash":
            return canon.bucket(canon.row_text(plan.key), width)
        return canon.bucket(canon.row_text(columns), width)

    def _ranges(self, ranges: Sequence[tuple[int, int]], column_sql: str, part: Slice | None = None) -> str:
        """A WHERE clause for inclusive key ranges and/or a half-open slice, the bounds written in as int
        literals (see _run)."""
        ge, le, lt = self.canon.op(">="), self.canon.op("<="), self.canon.op("<")
        conditions = [" OR ".join(f"({column_sql} {ge} {int(lo)} AND {column_sql} {le} {int(hi)})"
                                  for lo, hi in ranges)]
        conditions = conditions if ranges else []
        if part is not None:
            conditions += [f"{column_sql} {ge} {int(part[0])}"] if part[0] is not None else []
            conditions += [f"{column_sql} {lt} {int(part[1])}"] if part[1] is not None else []
        return " WHERE " + " AND ".join(f"({c})" for c in conditions) if conditions else ""

    # --- queries ----------------------------------------------------------------------------------

    def digest(self, table: str, columns: Sequence[Column], key: Column | None = None,
               part: Slice | None = None) -> Digest:
        """The whole table in one scan, or the rows whose integer `key` lies in the slice `part`."""
        canon = self.canon
        source = self._use(table)
        value = canon.row_number(canon.row_text(columns))
        where = self._ranges((), canon.column(key), part) if key is not None else ""
        inner = f"SELECT {value} AS v FROM {source}{where}{canon.fence}"
        aggregates = ", ".join(canon.aggregates("d.v"))
        count = canon.call("COUNT", "*")
        (row,) = self._run(f"fingerprinting {table!r}", f"SELECT {count}, {aggregates} FROM ({inner}) d")
        return Digest(int(row[0]), canon.total(row[1:]))

    def buckets(self, table: str, columns: Sequence[Column], plan: Plan, width: int | None = None,
                ranges: Sequence[tuple[int, int]] = (), part: Slice | None = None) -> dict[int, Digest]:
        """Bucket digests in one scan (of the given key ranges and slice only, for a range plan)."""
        canon = self.canon
        source = self._use(table)
        width = width or plan.width
        where = self._ranges(ranges, canon.column(plan.key[0]), part) if plan.method == "range" else ""
        value = canon.row_number(canon.row_text(columns))
        inner = (f"SELECT {self._bucket_sql(plan, columns, width)} AS b, {value} AS v "
                 f"FROM {source}{where}{canon.fence}")
        aggregates = ", ".join(canon.aggregates("d.v"))
        found = self._run(f"fingerprinting {table!r} by chunk",
                          f"SELECT d.b, {canon.call('COUNT', '*')}, {aggregates} FROM ({inner}) d GROUP BY d.b")
        return {int(r[0]): Digest(int(r[1]), canon.total(r[2:])) for r in found}

    def key_span(self, table: str, column: Column) -> tuple[int, int] | None:
        """MIN and MAX of an integer key; None for an empty table (or, on SQLite, keys that are not integers)."""
        source = self._use(table)
        quoted = self.canon.column(column)
        low, high = self.canon.call("MIN", quoted), self.canon.call("MAX", quoted)
        (row,) = self._run(f"reading the key range of {table!r}", f"SELECT {low}, {high} FROM {source}")
        ends = [v for v in row if isinstance(v, int) or (isinstance(v, Decimal) and v == int(v))]
        return (int(ends[0]), int(ends[1])) if len(ends) == 2 else None

    def leaf_rows(self, table: str, columns: Sequence[Column], plan: Plan, *, width: int | None = None,
                  ranges: Sequence[tuple[int, int]] = (), buckets: Iterable[int] = (),
                  values: bool = False) -> list[LeafRow]:
        """Each row's key and digest, for the given key ranges (range plan) or buckets (others)."""
        canon = self.canon
        source = self._use(table)
        digest = canon.row_hash(columns)
        keys = [canon.key_text(c) for c in plan.key]
        shown = [canon.key_text(c) for c in columns] if values else []
        # Aliased: MySQL refuses a derived table with two unnamed columns of the same text.
        select = ", ".join(f"{sql} AS c{i}" for i, sql in enumerate([digest, *keys, *shown]))
        if plan.method == "range":
            sql = f"SELECT {select} FROM {source}{self._ranges(ranges, canon.column(plan.key[0]))}"
        else:
            wanted = canon.in_list("d.b", [int(b) for b in buckets])
            inner = (f"SELECT {self._bucket_sql(plan, columns, width or plan.width)} AS b, {select} "
                     f"FROM {source}")
            sql = f"SELECT * FROM ({inner}) d WHERE {wanted}"
        found = self._run(f"reading keys of {table!r}", sql)
        if plan.method != "range":
            found = [r[1:] for r in found]
        rows = []
        for r in found:
            key = tuple(str(v) for v in r[1:1 + len(keys)]) or (str(r[0]),)
            shown_values = dict(zip((c.name for c in columns), r[1 + len(keys):])) if values else None
            rows.append(LeafRow(key, str(r[0]), shown_values))
        return rows


# --- choosing a plan ------------------------------------------------------------------------------


def _read_slices(read: Callable[[Slice | None], dict[int, Digest]], slices: list[Slice],
                 advance: Callable[[int], object]) -> dict[int, Digest]:
    """Bucket digests of every slice added up; one unsliced read when there are no slices."""
    merged: dict[int, Digest] = {}
    parts: list[Slice | None] = [*slices] or [None]
    for part in parts:
        found = read(part)
        merge_buckets(merged, found)
        advance(sum(d.rows for d in found.values()))
    return merged


def _key_span(fp: Fingerprinter, table: Table, needed: bool) -> tuple[int, int] | None:
    """The range-readable integer key's MIN and MAX (see integer_lead), when needed; else None."""
    if not (needed and integer_lead(table, fp.session.dialect.name)):
        return None
    return fp.key_span(table.name, key_columns(table)[0])


def _table_digest(fp: Fingerprinter, table: Table, columns: Sequence[Column],
                  advance: Callable[[int], object]) -> Digest:
    """The table's digest over `columns`: one scan, or key slices when the table is big."""
    span = _key_span(fp, table, needed=(table.row_count or 0) >= 2 * chunks.SLICE_ROWS)
    key = key_columns(table)[0] if span is not None else None
    whole = _read_slices(lambda p: {0: fp.digest(table.name, columns, key, p)}, key_slices(span, table.row_count),
                         advance)
    return whole.get(0, Digest())


@dataclass
class TableReading:
    """How one table is fingerprinted: what each key slice reads (on any session of the same database), and how
    the merged buckets fill the table. The buckets of a slice are sums over its rows, so any cut of the key
    range into slices, read in any order on any sessions, adds up to the same fingerprint."""

    table: Table
    plan: Plan | None  # chunk buckets; None: one digest of the whole table
    key: Column | None  # the integer key slices are cut on (None: the table is read in one scan)
    span: tuple[int, int] | None  # MIN and MAX of that key

    def read(self, fp: Fingerprinter, part: Slice | None) -> dict[int, Digest]:
        if self.plan is None:
            return {0: fp.digest(self.table.name, self.table.columns, self.key if part else None, part)}
        return fp.buckets(self.table.name, self.table.columns, self.plan, part=part)

    def slices(self, at_least: int = 1) -> list[Slice]:
        """key_slices (about SLICE_ROWS rows each), or `at_least` equal cuts of the key range when that gives more."""
        slices = key_slices(self.span, self.table.row_count)
        if self.span is None or self.key is None or len(slices) >= at_least or at_least < 2:
            return slices
        low, high = self.span
        step = (high - low + 1) / at_least
        cuts = sorted({low + int(step * i) for i in range(1, at_least)} - {low})
        if not cuts:
            return slices
        bounds: list[int | None] = [None, *cuts, None]
        return list(zip(bounds[:-1], bounds[1:]))

    def fill(self, buckets: Mapping[int, Digest]) -> None:
        if self.plan is None:
            self.table.fingerprint = buckets.get(0, Digest()).token()
            return
        self.table.fingerprint = sum(buckets.values(), Digest()).token()
        self.table.chunking = self.plan.label
        self.table.chunks = [self.plan.chunk(b, buckets[b]) for b in sorted(buckets)]


def table_reading(fp: Fingerprinter, table: Table, mode: FingerprintMode, sliced: bool = False) -> TableReading:
    """The plan fingerprint_table follows for `table` (counted already); `sliced`: read its key range even when
    the table is too small for key_slices, so its rows can be cut across sessions."""
    if mode == "table" or (table.row_count is not None and table.row_count < 2 * MIN_CHUNK_ROWS):
        span = _key_span(fp, table, needed=sliced or (table.row_count or 0) >= 2 * chunks.SLICE_ROWS)
        return TableReading(table, None, key_columns(table)[0] if span is not None else None, span)
    span = _key_span(fp, table, needed=True)
    return TableReading(table, snapshot_plan(table, span), key_columns(table)[0] if span is not None else None, span)


def fingerprint_table(fp: Fingerprinter, table: Table, mode: FingerprintMode,
                      advance: Callable[[int], object] = lambda rows: None) -> None:
    """Fill table.fingerprint (and, for mode "chunks", table.chunking and table.chunks).

    `advance` is told how many rows each read covered (for a progress bar). A table of fewer than
    2 * MIN_CHUNK_ROWS rows gets no chunks: they would locate nothing a key compare cannot, and a
    one-row chunk's sum is that row's hash."""
    if mode == "none":
        return
    reading = table_reading(fp, table, mode)
    reading.fill(_read_slices(lambda part: reading.read(fp, part), reading.slices(), advance))


def fingerprint_baseline(fp: Fingerprinter, table: Table, columns: Sequence[Column],
                         advance: Callable[[int], object] = lambda rows: None) -> None:
    """Fill table.baseline: the content over an earlier snapshot's columns, read like fingerprint_table reads."""
    table.baseline = BaselineFingerprint([c.name for c in columns], _table_digest(fp, table, columns, advance).token())


def fingerprint_tables(session: AuditSession, tables: Sequence[Table], mode: FingerprintMode,
                       progress: bool = False, baseline: Mapping[str, Table] | None = None) -> None:
    """Fingerprint tables inside the snapshot's own transaction, so they match its counts and schema.

    With `baseline` (an earlier snapshot's tables), a table whose columns changed since also gets
    table.baseline, its content over the earlier columns, so a diff can still compare the old columns."""
    if mode == "none" or not tables:
        return
    fp = Fingerprinter(session)
    extra = {t.name: cols for t in tables if (cols := baseline_columns(t, (baseline or {}).get(t.name)))}
    total = sum(t.row_count or 0 for t in tables) + sum(t.row_count or 0 for t in tables if t.name in extra)
    with tqdm(total=total or None, desc="fingerprinting", unit="row", unit_scale=True, disable=not progress,
              leave=False, file=sys.stderr) as bar:
        for table in tables:
            bar.set_postfix_str(visible(table.name))
            fingerprint_table(fp, table, mode, bar.update)
            if table.name in extra:
                fingerprint_baseline(fp, table, extra[table.name], bar.update)
