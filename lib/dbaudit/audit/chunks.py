"""Chunk arithmetic for content fingerprints: digests, plans, key slices, bucket merging (no database here).

A fingerprint is the row count plus the exact sum of every row's 64-bit value (see dbaudit.live.canonical),
written `c2/sha256:<rows>:<sum in hex>`. Chunk fingerprints split a table into buckets whose sums add up
to the table's:

- `range`: the leading primary-key column is an integer; bucket = key DIV width (width a power of two),
  so a bucket is a key range the primary-key index can read;
- `hash`: any other primary key; bucket = low bits of the digest of the key's canonical text;
- `rowhash`: no primary key; bucket = low bits of the row's own digest (a multiset of rows).

Widths and bucket counts are powers of two, so buckets nest: two snapshots chunked at different widths
are compared after merging the finer buckets into the coarser ones. This module is pure: `diff` uses it
on snapshot files, `live.fingerprint` and `live.compare` on live tables.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from dbaudit.core.errors import DbauditError
from dbaudit.core.snapshot import WITHOUT_ROWID, Chunk, Column, Table

DIGEST = "sha256"  # named in every fingerprint, so a future digest can never be compared with this one
# Integer key types on any of the three servers (base_type spelling): their keys can be cut into ranges.
INTEGER_TYPES = {"tinyint", "smallint", "mediumint", "int", "integer", "bigint", "int2", "int4", "int8"}
_MODIFIERS = re.compile(r"\(\s*\d+\s*(,\s*\d+\s*)?\)")


def base_type(spelled: str) -> str:
    """`decimal(10,2) unsigned` -> `decimal unsigned`; `timestamp(3) with time zone` -> `timestamp with time zone`."""
    return " ".join(_MODIFIERS.sub("", spelled.lower()).split())


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


