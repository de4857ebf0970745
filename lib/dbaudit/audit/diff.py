"""Every difference between two snapshots, as typed changes.

Objects are matched by name, so a rename shows as a removal plus an addition. Column positions are
compared by relative order only: adding a column in the middle shifts every later ordinal, which is
not a change to those columns, but moving a column is.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from dbaudit.audit.chunks import column_signature, differing_chunks
from dbaudit.core import serde
from dbaudit.core.errors import DbauditError
from dbaudit.core.ledger import Ledger
from dbaudit.core.snapshot import (
    CATCH_ALL,
    FORMAT_VERSION,
    MEASUREMENT,
    OBJECTS,
    SCHEMA,
    Column,
    Snapshot,
    Table,
    role_of,
    since_of,
)

ChangeKind = Literal[
    "table_added", "table_removed", "table_changed",
    "column_added", "column_removed", "column_changed",
    "index_added", "index_removed", "index_changed",
    "fk_added", "fk_removed", "fk_changed",
    "view_added", "view_removed", "view_changed",
    "trigger_added", "trigger_removed", "trigger_changed",
    "routine_added", "routine_removed", "routine_changed",
    "check_added", "check_removed", "check_changed",
    "partition_added", "partition_removed", "partition_changed",
    "policy_added", "policy_removed", "policy_changed",
    "event_added", "event_removed", "event_changed",
    "sequence_added", "sequence_removed", "sequence_changed",
    "type_added", "type_removed", "type_changed",
    "extension_added", "extension_removed", "extension_changed",
    "row_count_changed", "metric_changed", "content_changed",
    "migration_applied", "migration_rolled_back", "migration_failed",
]  # fmt: skip

CHANGE_KINDS: tuple[str, ...] = ChangeKind.__args__  # type: ignore[attr-defined]
# Between the ledgers two snapshots recorded: judged by the expectations' `migrations:` section.
LEDGER_CHANGES = {"migration_applied", "migration_rolled_back", "migration_failed"}
CHUNKS_SHOWN = 10  # differing chunks named in a content_changed message; Change.fields lists them all
OLD_COLUMNS = "the columns it had before"  # content_changed's fields when only the baseline fingerprint compares
UNVERIFIED = "columns changed, old columns not fingerprinted"  # content_changed's fields when nothing compares
SCHEMA_OBJECTS = {"view": "views", "trigger": "triggers", "routine": "routines", "event": "events",
                  "sequence": "sequences", "type": "types", "extension": "extensions"}
# A table's own schema properties are compared as table_changed; its objects and measurements are not.
_NOT_TABLE_SCHEMA = {f.name for f in dataclasses.fields(Table) if role_of(f) != SCHEMA}
# The table's object lists beyond columns (diffed by name), keyed by change kind.
_TABLE_OBJECTS = {f.metadata["kind"]: f for f in dataclasses.fields(Table)
                  if role_of(f) == OBJECTS and f.name != "columns"}
DEFINITION = "definition"  # table_changed's field when only the catch-all definition hash differs
# What the object classes are called when a snapshot could not see them.
_CLASS_WORDS = {"check": "CHECK constraints", "partition": "partitions", "policy": "row-level security policies",
                "event": "events", "sequence": "sequences", "type": "user-defined types",
                "extension": "extensions"}


@dataclass
class Change:
    kind: ChangeKind
    table: str | None  # the table it belongs to; None for views, triggers, routines and metrics
    name: str | None  # column, index, foreign key, view, trigger, routine or metric name
    before: Any = None  # the object (or value) before; None when added
    after: Any = None  # the object (or value) after; None when removed
    fields: list[str] = field(default_factory=list)  # for *_changed: the attributes that differ

    @property
    def target(self) -> str:
        """table, table.name or name: what an expectation pattern is matched against."""
        if self.table and self.name:
            return f"{self.table}.{self.name}"
        return self.table or self.name or ""

    @property
    def object_type(self) -> str:
        return "migration" if self.kind in LEDGER_CHANGES else self.kind.rsplit("_", 1)[0]

    def describe(self) -> str:
        """One line a DBA can read: what changed, and from what to what."""
        action = self.kind.rsplit("_", 1)[1]
        if self.kind == "row_count_changed":
            return f"rows of {self.table}: {self.before:,} → {self.after:,} ({self.after - self.before:+,})"
        if self.kind == "metric_changed":
            return f"metric {self.name}: {self.before} → {self.after}"
        if self.kind == "content_changed":
            return _content_text(self)
        if self.kind in LEDGER_CHANGES:
            return _ledger_text(self)
        head = f"{self.object_type.replace('fk', 'foreign key')} {self.target} {action}"
        if action == "changed":
            parts = [f"{f}: {_value(self.before, f)} → {_value(self.after, f)}" for f in self.fields]
            return f"{head} ({'; '.join(parts)})"
        if action == "added" and self.kind == "column_added":
            return f"{head}: {_column_text(self.after)}"
        if action == "removed" and self.kind == "table_removed" and self.before:
            return f"{head} (had {self.before.get('row_count')} rows)"
        return head


def _value(obj: Any, name: str) -> str:
    value = obj.get(name) if isinstance(obj, dict) else obj
    if name == "sha256" and isinstance(value, str):
        return value[:12]
    return "∅" if value is None else repr(value) if isinstance(value, str) else str(value)


def _content_text(change: Change) -> str:
    """Rows are named by chunk (key range or hash bucket), never by their values."""
    text = f"content of {change.table} changed"
    if change.fields == [OLD_COLUMNS]:
        return f"{text} in {OLD_COLUMNS}"
    if change.fields == [UNVERIFIED]:
        return (f"content of {change.table} not verified: its columns changed, so every row's text did, and no "
                "fingerprint of its old columns was taken (snapshot --baseline takes one when columns were only added)")
    if change.fields:
        shown = ", ".join(change.fields[:CHUNKS_SHOWN])
        more = f" and {len(change.fields) - CHUNKS_SHOWN} more" if len(change.fields) > CHUNKS_SHOWN else ""
        text += f" in {len(change.fields)} chunk(s): {shown}{more}"
    return text


def _ledger_text(change: Change) -> str:
    entry = change.after if isinstance(change.after, dict) else change.before if isinstance(change.before, dict) else {}
    action = {"migration_applied": "applied", "migration_rolled_back": "rolled back", "migration_failed": "FAILED"}
    batch = f" (batch {entry['batch']})" if entry.get("batch") is not None else ""
    text = f"migration {change.name} {action[change.kind]}{batch}"
    return f"{text}: {', '.join(change.fields)}" if change.fields else text


def _column_text(column: dict[str, Any]) -> str:
    text = f"{column['type']} {'NULL' if column['nullable'] else 'NOT NULL'}"
    if column.get("default") is not None:
        text += f" DEFAULT {column['default']}"
    return text


def diff_snapshots(before: Snapshot, after: Snapshot) -> list[Change]:
    """Every difference; what the older of two snapshot formats could not record is left out (see unseen)."""
    version = seen_version(before, after)
    changes: list[Change] = []
    for name in _union(before.tables, after.tables):
        old, new = before.tables.get(name), after.tables.get(name)
        if old is None:
            changes.append(Change("table_added", name, None, after=_plain(new)))
        elif new is None:
            changes.append(Change("table_removed", name, None, before=_plain(old)))
        else:
            if version < 2:
                old, new = _as_format_1(old, new, after.server.dialect)
            changes.extend(_table_changes(old, new, version))
    for singular, attr in SCHEMA_OBJECTS.items():
        if _seen(Snapshot, attr, version):
            changes.extend(_named_changes(singular, None, getattr(before, attr), getattr(after, attr), version))
    changes.extend(_metric_changes(before, after))
    changes.extend(ledger_changes(before.migrations, after.migrations))
    return changes


def ledger_changes(old: Ledger | None, new: Ledger | None) -> list[Change]:
    """Migrations applied, rolled back or failed between two ledgers (a missing one counts as empty)."""
    if old is None and new is None:
        return []
    was = old.applied() if old else {}
    now = new.applied() if new else {}
    changes = [Change("migration_applied", None, name, None, _plain(entry)) for name, entry in now.items()
               if name not in was]
    heads_only = (old is not None and not old.history) or (new is not None and not new.history)
    if heads_only:
        # Alembic keeps only its head(s): the old head is an ancestor of the new one, not undone.
        gone = [n for n in was if n not in now]
        for change in changes:
            change.fields = [f"the head now, was {', '.join(gone) or 'none'} (alembic_version keeps heads only)"]
    else:
        changes += [Change("migration_rolled_back", None, name, _plain(entry), None) for name, entry in was.items()
                    if name not in now]
    failed_before = old.failed() if old else set()
    changes += [Change("migration_failed", None, e.name, None, _plain(e)) for e in (new.entries if new else [])
                if e.status == "failed" and e.name not in failed_before]
    return changes


def seen_version(before: Snapshot, after: Snapshot) -> int:
    """The format both snapshots were taken in: the older one's (a future one reads as this dbaudit's)."""
    return min(before.format_version, after.format_version, FORMAT_VERSION)


def unseen(before: Snapshot, after: Snapshot) -> list[str]:
    """The object classes and attributes one snapshot's older format could not record: not compared."""
    version = seen_version(before, after)
    if version >= FORMAT_VERSION:
        return []
    classes = [_CLASS_WORDS[k] for k, f in _TABLE_OBJECTS.items() if since_of(f) > version]
    classes += [_CLASS_WORDS[k] for k, attr in SCHEMA_OBJECTS.items() if not _seen(Snapshot, attr, version)]
    properties = [f.name for f in dataclasses.fields(Table) if since_of(f) > version and role_of(f) == SCHEMA]
    return [", ".join(classes), f"table {', '.join(properties)} and full definitions",
            "index INCLUDE, NULLS NOT DISTINCT and invisibility, foreign keys' DEFERRABLE, definers, view and "
            "trigger options"]


_ORDER_SUFFIX = re.compile(r"( COLLATE \S+)?( DESC)?( NULLS (FIRST|LAST))?$")


def _as_format_1(old: Table, new: Table, dialect: str) -> tuple[Table, Table]:
    """Both tables as a format-1 snapshot saw them: index keys without their order (`a DESC`), SQLite's
    expression keys as `(expression)` and partial conditions as `partial`, SQLite columns without COLLATE."""
    def key(table: Table, other: Table) -> Table:
        theirs = {i.name: i for i in other.indexes}
        indexes = [dataclasses.replace(i, columns=[_format_1_key(c, theirs.get(i.name), n) for n, c in enumerate(i.columns)],
                                       predicate=_format_1_predicate(i.predicate, theirs.get(i.name)))
                   for i in table.indexes]
        columns = table.columns
        if dialect == "sqlite":
            columns = [dataclasses.replace(c, collation=None) for c in table.columns]
        return dataclasses.replace(table, indexes=indexes, columns=columns)
    return key(old, new), key(new, old)


def _format_1_key(column: str, other: Any, position: int) -> str:
    if other is not None and position < len(other.columns) and other.columns[position] == "(expression)":
        return "(expression)"
    return _ORDER_SUFFIX.sub("", column)


def _format_1_predicate(predicate: str | None, other: Any) -> str | None:
    if predicate is not None and other is not None and other.predicate == "partial":
        return "partial"
    return predicate


def _seen(cls: type, name: str, version: int) -> bool:
    return next(since_of(f) <= version for f in dataclasses.fields(cls) if f.name == name)


def _table_changes(old: Table, new: Table, version: int = FORMAT_VERSION) -> list[Change]:
    changes = _compare("table", old.name, None, old, new, ignore=_NOT_TABLE_SCHEMA, version=version)
    changes.extend(_column_changes(old, new, version))
    for kind, f in _TABLE_OBJECTS.items():
        if since_of(f) <= version:
            was, now = _by_name(getattr(old, f.name)), _by_name(getattr(new, f.name))
            changes.extend(_named_changes(kind, old.name, was, now, version))
    if not changes and old.definition and new.definition and old.definition != new.definition:
        # Nothing modelled explains it, so the catch-all says the server's own definition moved.
        changes.append(Change("table_changed", old.name, None, _plain(old), _plain(new), [DEFINITION]))
    if old.row_count is not None and new.row_count is not None and old.row_count != new.row_count:
        changes.append(Change("row_count_changed", old.name, None, old.row_count, new.row_count))
    changes.extend(_content_changes(old, new))
    return changes


def _content_changes(old: Table, new: Table) -> list[Change]:
    """Fingerprints of the same scheme (canonical form and hash) that differ; with chunks, where.

    When the table's columns changed, every row's text did: only the new snapshot's fingerprint over
    the old columns (Table.baseline) says whether the old columns' contents changed."""
    if not old.fingerprint or not new.fingerprint:
        return []
    if column_signature(old) != column_signature(new):
        if new.baseline and new.baseline.columns == [c.name for c in old.columns]:
            _refuse_other_schemes(old.name, old.fingerprint, new.baseline.fingerprint)
            if old.fingerprint == new.baseline.fingerprint:
                return []
            return [Change("content_changed", old.name, None, old.fingerprint, new.baseline.fingerprint, [OLD_COLUMNS])]
        # Nothing compares, so nothing is proven: reported (and judged) as a change, saying why.
        _refuse_other_schemes(old.name, old.fingerprint, new.fingerprint)
        return [Change("content_changed", old.name, None, old.fingerprint, new.fingerprint, [UNVERIFIED])]
    if old.fingerprint == new.fingerprint:
        return []
    _refuse_other_schemes(old.name, old.fingerprint, new.fingerprint)
    chunks = differing_chunks(old, new) or []
    return [Change("content_changed", old.name, None, old.fingerprint, new.fingerprint, chunks)]


def _refuse_other_schemes(table: str, old: str, new: str) -> None:
    # Sums under two canonical versions (or digests) say nothing about each other: staying silent
    # would let a real change through, so the comparison is refused instead.
    if _scheme(old) != _scheme(new):
        raise DbauditError(
            f"table {table}: fingerprints {_scheme(old)} and {_scheme(new)} cannot be compared; they were taken "
            "under different canonical row versions or digests: compare snapshots taken by one dbaudit version"
        )


def _scheme(fingerprint: str) -> str:
    return fingerprint.split(":", 1)[0]


def _column_changes(old: Table, new: Table, version: int = FORMAT_VERSION) -> list[Change]:
    before = {c.name: c for c in old.columns}
    after = {c.name: c for c in new.columns}
    moved = _moved_columns(old.columns, new.columns)
    changes = []
    for name in _union(before, after):
        if name not in after:
            changes.append(Change("column_removed", old.name, name, before=_plain(before[name])))
        elif name not in before:
            changes.append(Change("column_added", old.name, name, after=_plain(after[name])))
        else:
            ignore = {"position"} if name not in moved else set()
            changes.extend(_compare("column", old.name, name, before[name], after[name], ignore, version))
    return changes


def _moved_columns(old: list[Column], new: list[Column]) -> set[str]:
    """Columns whose place among the columns both sides share has changed."""
    names_new = {c.name for c in new}
    names_old = {c.name for c in old}
    order_old = [c.name for c in old if c.name in names_new]
    order_new = [c.name for c in new if c.name in names_old]
    # The longest run of columns kept in order stayed put; the rest moved around it.
    matcher = difflib.SequenceMatcher(a=order_old, b=order_new, autojunk=False)
    kept = {order_old[i + k] for i, _, n in matcher.get_matching_blocks() for k in range(n)}
    return set(order_old) - kept


def _named_changes(kind: str, table: str | None, old: dict[str, Any], new: dict[str, Any],
                   version: int = FORMAT_VERSION) -> list[Change]:
    """Added, removed and changed objects of one kind, matched by name."""
    changes = []
    for name in _union(old, new):
        if name not in new:
            changes.append(Change(f"{kind}_removed", table, name, before=_plain(old[name])))  # type: ignore[arg-type]
        elif name not in old:
            changes.append(Change(f"{kind}_added", table, name, after=_plain(new[name])))  # type: ignore[arg-type]
        else:
            changes.extend(_compare(kind, table, name, old[name], new[name], version=version))
    return changes


def _by_name(objects: list[Any]) -> dict[str, Any]:
    return {o.name: o for o in objects}


def _metric_changes(before: Snapshot, after: Snapshot) -> list[Change]:
    changes = []
    for name in sorted(set(before.metrics) & set(after.metrics)):
        old, new = before.metrics[name], after.metrics[name]
        if old.error is None and new.error is None and old.value != new.value:
            changes.append(Change("metric_changed", None, name, old.value, new.value))
    return changes


def _compare(kind: str, table: str | None, name: str | None, old: Any, new: Any,
             ignore: set[str] | None = None, version: int = FORMAT_VERSION) -> list[Change]:
    """The schema fields that differ; measurements never do, nor fields the older format did not record."""
    differing = [f.name for f in fields(old) if f.name not in (ignore or set())
                 and role_of(f) not in (MEASUREMENT, CATCH_ALL) and since_of(f) <= version
                 and getattr(old, f.name) != getattr(new, f.name)]
    if not differing:
        return []
    return [Change(f"{kind}_changed", table, name, _plain(old), _plain(new), differing)]  # type: ignore[arg-type]


def _plain(obj: Any) -> Any:
    return serde.to_jsonable(obj)


def _union(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    return sorted(set(a) | set(b))
