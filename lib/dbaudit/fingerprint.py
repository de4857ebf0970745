"""Content fingerprints: a table's rows summarised inside the server in one scan (issue #3).

A fingerprint is the row count plus the exact sum of every row's 64-bit value (see dbaudit.canonical),
written `c2/sha256:<rows>:<sum in hex>`: the canonical version and the digest are part of it, so
fingerprints written under another version never compare equal. It does not depend on row order,
storage format, server version or a dump/restore, and the same rows give the same value on
MySQL/MariaDB, PostgreSQL and SQLite.

Chunk fingerprints split a table into buckets whose sums add up to the table's:

- `range`: the leading primary-key column is an integer; bucket = key DIV width (width a power of two),
  so a bucket is a key range the primary-key index can read;
- `hash`: any other primary key; bucket = low bits of the digest of the key's canonical text;
- `rowhash`: no primary key; bucket = low bits of the row's own digest (a multiset of rows).

Widths and bucket counts are powers of two, so buckets nest: two snapshots chunked at different widths
are compared after merging the finer buckets into the coarser ones.
"""

from __future__ import annotations

import fnmatch
import math
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy.exc import DBAPIError
from tqdm import tqdm  # the plain bar: notebook widgets need ipywidgets, which reports do not

from dbaudit.canonical import DIGEST, INTEGER_TYPES, Canon, base_type, canon_for
from dbaudit.connect import AuditSession, describe_db_error
from dbaudit.errors import DbauditError
from dbaudit.snapshot import WITHOUT_ROWID, BaselineFingerprint, Chunk, Column, Table

CANON_VERSION = "c2"  # bump when the canonical row text changes: older fingerprints then do not compare
TARGET_CHUNKS = 1024  # chunks per table at most (about)
MIN_CHUNK_ROWS = 256  # snapshot chunks hold this many rows on average, so one chunk is never one row
SLICE_ROWS = 250_000  # a bigger integer-keyed table is read in key slices of about this many rows
MAX_SLICES = 64  # compare guesses rows from the key span: sparse keys must not turn into millions of reads
Slice = tuple[int | None, int | None]  # lo <= key < hi; None: open on that side
Method = Literal["range", "hash", "rowhash"]
FingerprintMode = Literal["none", "table", "chunks"]


@dataclass(frozen=True)
class Digest:
    """A multiset of rows: how many, and the exact sum of their 64-bit values."""

    rows: int = 0
    total: int = 0

    def __add__(self, other: Digest) -> Digest:
        return Digest(self.rows + other.rows, self.total + other.total)

    def token(self) -> str:
        return f"{CANON_VERSION}/{DIGEST}:{self.rows}:{self.total:x}"


def parse_token(token: str) -> tuple[str, Digest]:
    """`c2/sha256:<rows>:<hex>` -> ("c2/sha256", Digest)."""
    try:
        scheme, rows, total = token.rsplit(":", 2)
        return scheme, Digest(int(rows), int(total, 16))
    except ValueError:
        raise DbauditError(f"not a dbaudit fingerprint: {token!r}") from None


def comparable(token_a: str, token_b: str) -> bool:
    """Two fingerprints say something about each other only under the same canonical version and digest."""
    return parse_token(token_a)[0] == parse_token(token_b)[0]


def next_power_of_two(n: float) -> int:
    return 1 if n <= 1 else 1 << math.ceil(math.log2(n))


def truncating_division(a: int, b: int) -> int:
    """Integer division toward zero, as MySQL's DIV and PostgreSQL's and SQLite's `/` do."""
    return a // b if a >= 0 else -((-a) // b)


@dataclass(frozen=True)
class Plan:
    """How a table is cut into buckets: by key range, by key hash, or by row hash."""

    method: Method
    key: tuple[Column, ...]  # primary-key columns (empty for rowhash)
    width: int  # range: keys per bucket; hash/rowhash: number of buckets

    @property
    def label(self) -> str:
        """Recorded as Table.chunking: `range(emp_no)/2048`, `hash/1024`, `rowhash/64`."""
        return f"range({self.key[0].name})/{self.width}" if self.method == "range" else f"{self.method}/{self.width}"

    def bounds(self, bucket: int) -> tuple[int, int]:
        """The key range of a range bucket (bucket 0 spans -(width-1)..width-1: truncating division)."""
        w = self.width
        if bucket > 0:
            return bucket * w, bucket * w + w - 1
        if bucket < 0:
            return bucket * w - w + 1, bucket * w
        return -(w - 1), w - 1

    def describe(self, bucket: int) -> str:
        if self.method == "range":
            lo, hi = self.bounds(bucket)
            return f"{self.key[0].name} {lo}..{hi}"
        what = "key" if self.method == "hash" else "row"
        return f"{what}-hash bucket {bucket} of {self.width}"

    def chunk(self, bucket: int, digest: Digest) -> Chunk:
        lo, hi = self.bounds(bucket) if self.method == "range" else (None, None)
        return Chunk(bucket=bucket, rows=digest.rows, sum=f"{digest.total:x}", lo=lo, hi=hi)


def parse_label(label: str, table: Table) -> Plan | None:
    """Table.chunking back into a Plan; None when the key it names is no longer there."""
    head, _, width = label.rpartition("/")
    if head.startswith("range(") and head.endswith(")"):
        column = table.column(head[6:-1])
        return Plan("range", (column,), int(width)) if column else None
    if head in ("hash", "rowhash"):
        return Plan(head, (), int(width))  # type: ignore[arg-type]
    return None


def coarsen(plan: Plan, buckets: Mapping[int, Digest], width: int) -> dict[int, Digest]:
    """Merge buckets into a coarser plan's: ranges `width` keys wide, or `width` hash buckets."""
    merged: dict[int, Digest] = {}
    for bucket, digest in buckets.items():
        if plan.method == "range":
            target = truncating_division(bucket, width // plan.width)
        else:
            target = bucket & (width - 1)
        merged[target] = merged.get(target, Digest()) + digest
    return merged


def key_columns(table: Table) -> tuple[Column, ...]:
    columns = tuple(table.column(name) for name in table.primary_key)
    return columns if columns and all(columns) else ()  # type: ignore[return-value]


def integer_lead(table: Table, dialect_name: str) -> bool:
    """Whether the primary key starts with a column the server keeps integral and not NULL, so key ranges
    reach every row. On SQLite only the rowid qualifies: an INT PRIMARY KEY column, a key of several
    columns and a WITHOUT ROWID key there may hold NULL or 2.5."""
    key = key_columns(table)
    if not key:
        return False
    if dialect_name == "sqlite":  # the rowid: a lone INTEGER PRIMARY KEY of a rowid table
        return len(key) == 1 and key[0].type.strip().upper() == "INTEGER" and table.engine != WITHOUT_ROWID
    return base_type(key[0].type).split(" ")[0].split("(")[0] in INTEGER_TYPES


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

    @staticmethod
    def _ranges(ranges: Sequence[tuple[int, int]], column_sql: str, part: Slice | None = None) -> str:
        """A WHERE clause for inclusive key ranges and/or a half-open slice, the bounds written in as int
        literals (see _run)."""
        conditions = [" OR ".join(f"{column_sql} BETWEEN {int(lo)} AND {int(hi)}" for lo, hi in ranges)]
        conditions = conditions if ranges else []
        if part is not None:
            conditions += [f"{column_sql} >= {int(part[0])}"] if part[0] is not None else []
            conditions += [f"{column_sql} < {int(part[1])}"] if part[1] is not None else []
        return " WHERE " + " AND ".join(f"({c})" for c in conditions) if conditions else ""

    # --- queries ----------------------------------------------------------------------------------

    def digest(self, table: str, columns: Sequence[Column], key: Column | None = None,
               part: Slice | None = None) -> Digest:
        """The whole table in one scan, or the rows whose integer `key` lies in the slice `part`."""
        canon = self.canon
        value = canon.row_number(canon.row_text(columns))
        where = self._ranges((), canon.column(key), part) if key is not None else ""
        inner = f"SELECT {value} AS v FROM {self._table(table)}{where}{canon.fence}"
        aggregates = ", ".join(canon.aggregates("d.v"))
        (row,) = self._run(f"fingerprinting {table!r}", f"SELECT COUNT(*), {aggregates} FROM ({inner}) d")
        return Digest(int(row[0]), canon.total(row[1:]))

    def buckets(self, table: str, columns: Sequence[Column], plan: Plan, width: int | None = None,
                ranges: Sequence[tuple[int, int]] = (), part: Slice | None = None) -> dict[int, Digest]:
        """Bucket digests in one scan (of the given key ranges and slice only, for a range plan)."""
        canon = self.canon
        width = width or plan.width
        where = self._ranges(ranges, canon.column(plan.key[0]), part) if plan.method == "range" else ""
        value = canon.row_number(canon.row_text(columns))
        inner = (f"SELECT {self._bucket_sql(plan, columns, width)} AS b, {value} AS v "
                 f"FROM {self._table(table)}{where}{canon.fence}")
        aggregates = ", ".join(canon.aggregates("d.v"))
        found = self._run(f"fingerprinting {table!r} by chunk",
                          f"SELECT d.b, COUNT(*), {aggregates} FROM ({inner}) d GROUP BY d.b")
        return {int(r[0]): Digest(int(r[1]), canon.total(r[2:])) for r in found}

    def key_span(self, table: str, column: Column) -> tuple[int, int] | None:
        """MIN and MAX of an integer key; None for an empty table (or, on SQLite, keys that are not integers)."""
        quoted = self.canon.column(column)
        (row,) = self._run(f"reading the key range of {table!r}",
                           f"SELECT MIN({quoted}), MAX({quoted}) FROM {self._table(table)}")
        ends = [v for v in row if isinstance(v, int) or (isinstance(v, Decimal) and v == int(v))]
        return (int(ends[0]), int(ends[1])) if len(ends) == 2 else None

    def leaf_rows(self, table: str, columns: Sequence[Column], plan: Plan, *, width: int | None = None,
                  ranges: Sequence[tuple[int, int]] = (), buckets: Iterable[int] = (),
                  values: bool = False) -> list[LeafRow]:
        """Each row's key and digest, for the given key ranges (range plan) or buckets (others)."""
        canon = self.canon
        digest = canon.row_hash(columns)
        keys = [canon.key_text(c) for c in plan.key]
        shown = [canon.key_text(c) for c in columns] if values else []
        # Aliased: MySQL refuses a derived table with two unnamed columns of the same text.
        select = ", ".join(f"{sql} AS c{i}" for i, sql in enumerate([digest, *keys, *shown]))
        if plan.method == "range":
            sql = f"SELECT {select} FROM {self._table(table)}{self._ranges(ranges, canon.column(plan.key[0]))}"
        else:
            wanted = ", ".join(str(int(b)) for b in buckets) or "NULL"
            inner = (f"SELECT {self._bucket_sql(plan, columns, width or plan.width)} AS b, {select} "
                     f"FROM {self._table(table)}")
            sql = f"SELECT * FROM ({inner}) d WHERE d.b IN ({wanted})"
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


def snapshot_plan(table: Table, span: tuple[int, int] | None) -> Plan:
    """Chunks of about max(MIN_CHUNK_ROWS, rows / TARGET_CHUNKS) rows: small tables get few chunks.

    `span` is the integer key's MIN and MAX, None when the key is not range-readable (see integer_lead)
    or the table is empty: such a table is chunked by key hash."""
    rows = table.row_count
    chunks = TARGET_CHUNKS if rows is None else max(1, min(TARGET_CHUNKS, rows // MIN_CHUNK_ROWS))
    key = key_columns(table)
    if not key:
        return Plan("rowhash", (), next_power_of_two(chunks))
    if span is not None:
        return Plan("range", key, next_power_of_two((span[1] - span[0] + 1) / chunks))
    return Plan("hash", key, next_power_of_two(chunks))


def key_slices(span: tuple[int, int] | None, rows: int | None) -> list[Slice]:
    """Half-open key slices of about SLICE_ROWS rows (at most MAX_SLICES) over a big integer key; [] for one scan.

    The first slice is open below and the last open above, so together they reach every row whatever
    its key. Each slice is a range read of the primary key, so slicing costs no second scan; it lets
    progress move inside a big table and a statement timeout apply to a slice rather than to the table."""
    if span is None or rows is None or rows < 2 * SLICE_ROWS:
        return []
    step = math.ceil((span[1] - span[0] + 1) / min(math.ceil(rows / SLICE_ROWS), MAX_SLICES))
    cuts: list[int | None] = list(range(span[0] + step, span[1] + 1, step))
    bounds = [None, *cuts, None]
    return list(zip(bounds[:-1], bounds[1:]))


def merge_buckets(into: dict[int, Digest], part: Mapping[int, Digest]) -> dict[int, Digest]:
    for bucket, digest in part.items():
        into[bucket] = into.get(bucket, Digest()) + digest
    return into


def _read_slices(read: Callable[[Slice | None], dict[int, Digest]], slices: list[Slice],
                 advance: Callable[[int], object]) -> dict[int, Digest]:
    """Bucket digests of every slice added up; one unsliced read when there are no slices."""
    merged: dict[int, Digest] = {}
    for part in slices or [None]:
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
    span = _key_span(fp, table, needed=(table.row_count or 0) >= 2 * SLICE_ROWS)
    key = key_columns(table)[0] if span is not None else None
    whole = _read_slices(lambda p: {0: fp.digest(table.name, columns, key, p)}, key_slices(span, table.row_count),
                         advance)
    return whole.get(0, Digest())


def fingerprint_table(fp: Fingerprinter, table: Table, mode: FingerprintMode,
                      advance: Callable[[int], object] = lambda rows: None) -> None:
    """Fill table.fingerprint (and, for mode "chunks", table.chunking and table.chunks).

    `advance` is told how many rows each read covered (for a progress bar). A table of fewer than
    2 * MIN_CHUNK_ROWS rows gets no chunks: they would locate nothing a key compare cannot, and a
    one-row chunk's sum is that row's hash."""
    if mode == "none":
        return
    if mode == "table" or (table.row_count is not None and table.row_count < 2 * MIN_CHUNK_ROWS):
        table.fingerprint = _table_digest(fp, table, table.columns, advance).token()
        return
    span = _key_span(fp, table, needed=True)
    plan = snapshot_plan(table, span)
    slices = key_slices(span, table.row_count)
    buckets = _read_slices(lambda p: fp.buckets(table.name, table.columns, plan, part=p), slices, advance)
    table.fingerprint = sum(buckets.values(), Digest()).token()
    table.chunking = plan.label
    table.chunks = [plan.chunk(b, buckets[b]) for b in sorted(buckets)]


def chunk_digests(table: Table) -> dict[int, Digest]:
    return {c.bucket: Digest(c.rows, int(c.sum, 16)) for c in table.chunks}


def differing_chunks(old: Table, new: Table) -> list[str] | None:
    """The chunks whose rows differ between two snapshots of a table; None when they cannot be compared."""
    if not (old.chunking and new.chunking):
        return None
    plan_old, plan_new = parse_label(old.chunking, old), parse_label(new.chunking, new)
    if plan_old is None or plan_new is None or plan_old.label.split("/")[0] != plan_new.label.split("/")[0]:
        return None  # chunked by another key or method: the buckets do not correspond
    width = max(plan_old.width, plan_new.width) if plan_old.method == "range" else min(plan_old.width, plan_new.width)
    coarse = Plan(plan_old.method, plan_old.key, width)
    before = coarsen(plan_old, chunk_digests(old), width)
    after = coarsen(plan_new, chunk_digests(new), width)
    return [coarse.describe(b) for b in sorted(set(before) | set(after)) if before.get(b) != after.get(b)]


def select_tables(names: Iterable[str], include: Sequence[str] | None = None,
                  exclude: Sequence[str] | None = None) -> list[str]:
    """Table names matching any `include` fnmatch pattern (all when none) and no `exclude` pattern."""
    chosen = [n for n in sorted(names) if not include or any(fnmatch.fnmatchcase(n, p) for p in include)]
    return [n for n in chosen if not any(fnmatch.fnmatchcase(n, p) for p in exclude or ())]


def column_signature(table: Table) -> list[tuple[str, str]]:
    """What a table's row text depends on: its columns' names, order and types."""
    return [(c.name, c.type) for c in table.columns]


def baseline_columns(table: Table, earlier: Table | None) -> list[Column] | None:
    """The earlier snapshot's columns, when the table's columns changed since but each earlier one is still
    there with its type (a new type may spell the same values differently: no baseline then)."""
    if earlier is None or not earlier.fingerprint or column_signature(earlier) == column_signature(table):
        return None
    columns = [table.column(c.name) for c in earlier.columns]
    if all(now is not None and now.type == then.type for now, then in zip(columns, earlier.columns)):
        return columns  # type: ignore[return-value]
    return None


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
            bar.set_postfix_str(table.name)
            fingerprint_table(fp, table, mode, bar.update)
            if table.name in extra:
                fingerprint_baseline(fp, table, extra[table.name], bar.update)
