"""The snapshot document: what a database looked like at one moment.

A snapshot is plain data (dataclasses serialised to JSON with `format_version`), so two snapshots
can be diffed long after both databases are gone. The README documents every field.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from dbaudit.core import serde
from dbaudit.core.ledger import Ledger

FORMAT_VERSION = 1
KIND = "dbaudit.snapshot"


@dataclass
class Column:
    name: str
    position: int  # 1-based, compacted (gaps left by dropped PostgreSQL columns are closed)
    type: str  # as the server spells it: varchar(191), enum('private','group'), bigint unsigned
    nullable: bool
    default: str | None  # the default expression as the server reports it; None = no default
    extra: str = ""  # auto_increment, on update …, identity, generated …
    collation: str | None = None
    comment: str = ""


@dataclass
class Index:
    name: str
    columns: list[str]  # in index order; prefix lengths as col(10), expressions as written
    unique: bool
    primary: bool = False
    type: str = ""  # BTREE, FULLTEXT, SPATIAL, HASH, btree, gin …
    predicate: str | None = None  # partial index condition (PostgreSQL)


@dataclass
class ForeignKey:
    name: str
    columns: list[str]
    ref_table: str
    ref_columns: list[str]
    on_delete: str = "NO ACTION"
    on_update: str = "NO ACTION"


@dataclass
class Chunk:
    """One bucket of a table's rows (dbaudit.audit.chunks): how many, and the hex sum of their values."""

    bucket: int
    rows: int
    sum: str  # hex of the exact sum of the rows' 64-bit values
    lo: int | None = None  # the key range of a `range(...)` chunk, inclusive
    hi: int | None = None


WITHOUT_ROWID = "WITHOUT ROWID"  # Table.engine of such a SQLite table (others have none)


@dataclass
class BaselineFingerprint:
    """A table's content over the columns a baseline (earlier) snapshot fingerprinted, taken when its columns
    changed since: a migration that adds columns changes every row's text, but not the rows' old columns."""

    columns: list[str]  # the baseline's columns, in its order; all still present
    fingerprint: str


# What each field of a table is: its name, a schema property (compared by diff as `table_changed` and
# demanded by expectations), a collection of objects (columns, indexes …: each diffed as its own kind), a
# value derived from those objects, or a measurement of the content (row counts, fingerprints: never schema).
ROLE = "role"
IDENTITY, SCHEMA, OBJECTS, DERIVED, MEASUREMENT = "identity", "schema", "objects", "derived", "measurement"


def objects(kind: str) -> Any:
    """A list of schema objects of one kind (diffed one by one as `<kind>_added`/`_removed`/`_changed`)."""
    return field(default_factory=list, metadata={ROLE: OBJECTS, "kind": kind})


def measurement(default: Any = None, *, factory: Any = None) -> Any:
    """A measurement of the table's content: recorded and compared, but never a schema change."""
    if factory is not None:
        return field(default_factory=factory, metadata={ROLE: MEASUREMENT})
    return field(default=default, metadata={ROLE: MEASUREMENT})


def role_of(f: dataclasses.Field[Any]) -> str:
    return str(f.metadata.get(ROLE, SCHEMA))


def fields_with_role(cls: type, role: str) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if role_of(f) == role]


@dataclass
class Table:
    name: str = field(metadata={ROLE: IDENTITY})
    columns: list[Column] = objects("column")
    indexes: list[Index] = objects("index")
    foreign_keys: list[ForeignKey] = objects("fk")
    primary_key: list[str] = field(default_factory=list, metadata={ROLE: DERIVED})  # the PRIMARY index's columns
    engine: str | None = None
    collation: str | None = None
    row_count: int | None = measurement()  # exact COUNT(*) inside the snapshot transaction; None = not counted
    fingerprint: str | None = measurement()  # content fingerprint, e.g. c2/sha256:<rows>:<hex sum>; None = not taken
    chunking: str | None = measurement()  # how chunks were cut: range(<column>)/<width>, hash/<n>, rowhash/<n>
    chunks: list[Chunk] = measurement(factory=list)  # per-chunk fingerprints, by bucket
    baseline: BaselineFingerprint | None = measurement()  # see BaselineFingerprint; None when not taken

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


@dataclass
class Definition:
    """A view, trigger or routine: compared by a hash of its normalised definition."""

    name: str
    kind: str  # view, trigger, procedure, function
    sha256: str | None  # None when the server hid the body (missing privilege)
    summary: str = ""  # e.g. "BEFORE INSERT ON film" or "FUNCTION(p_film_id int)"
    table: str | None = None  # the table a trigger fires on


@dataclass
class Metric:
    name: str
    sql: str
    value: float | int | str | None = None
    error: str | None = None  # the query failed (e.g. its table does not exist yet)


@dataclass
class Server:
    dialect: str  # mysql, postgresql, sqlite
    product: str  # MariaDB, MySQL, PostgreSQL, SQLite
    version: str


#: What a snapshot's account could see of one object class (Snapshot.visibility).
COMPLETE = "complete"  # every object and its definition
NAMES = "names"  # every object, but not its definition (no body hash to compare)
PARTIAL = "partial"  # only some objects (grants on single tables or routines)
HIDDEN = "none"  # none at all: the class reads as empty whatever the database holds
UNKNOWN = "unknown"  # not recorded (a snapshot from an older dbaudit)
VISIBILITY = (COMPLETE, NAMES, PARTIAL, HIDDEN, UNKNOWN)
#: The object classes whose visibility a snapshot records.
OBJECT_CLASSES = ("tables", "views", "triggers", "routines")


@dataclass
class Account:
    """The account a snapshot was taken with, as far as its rights matter to the audit (docs/security.md)."""

    user: str
    writes: list[str] = field(default_factory=list)  # rights to change the audited database, e.g. "INSERT on `shop`.*"
    privileged: list[str] = field(default_factory=list)  # rights beyond the database (superuser, FILE, SUPER …)


@dataclass
class Snapshot(serde.Document):
    format_version: int
    kind: str
    taken_at: str  # ISO 8601, UTC
    source: str  # the URL with its password masked
    database: str
    server: Server
    tables: dict[str, Table]
    views: dict[str, Definition] = field(default_factory=dict)
    triggers: dict[str, Definition] = field(default_factory=dict)
    routines: dict[str, Definition] = field(default_factory=dict)
    metrics: dict[str, Metric] = field(default_factory=dict)
    schema: str | None = None  # PostgreSQL schema audited
    duration_seconds: float = 0.0
    migrations: Ledger | None = None  # the application's migrations ledger, when it has one (core/ledger.py)
    # Object class (OBJECT_CLASSES) -> one of VISIBILITY; {} in a snapshot from an older dbaudit (all unknown).
    visibility: dict[str, str] = field(default_factory=dict)
    account: Account | None = None  # None in a snapshot from an older dbaudit

    def visible(self, object_class: str) -> str:
        return self.visibility.get(object_class, UNKNOWN)

    @property
    def total_rows(self) -> int:
        return sum(t.row_count or 0 for t in self.tables.values())


def load_snapshot(path: str | os.PathLike[str]) -> Snapshot:
    return serde.load_document(Snapshot, path, KIND, FORMAT_VERSION, "snapshot")
