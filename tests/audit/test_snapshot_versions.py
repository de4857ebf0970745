"""Snapshot format 2 beside format 1: old files still read, and what they could not see is said, not 'added'."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dbaudit.audit.diff import diff_snapshots, unseen
from dbaudit.audit.expectations import parse_expectations
from dbaudit.audit.result import audit
from dbaudit.core import serde
from dbaudit.core.errors import DbauditError
from dbaudit.core.snapshot import (
    FORMAT_VERSION,
    KIND,
    CheckConstraint,
    Column,
    Definition,
    Sequence,
    Server,
    Snapshot,
    Table,
    load_snapshot,
    unseen_fields,
)


def _table(**extra: object) -> Table:
    table = Table("t", [Column("id", 1, "int", False, None), Column("a", 2, "int", True, None)], primary_key=["id"], row_count=1)
    for key, value in extra.items():
        setattr(table, key, value)
    return table


def _snapshot(table: Table, **objects: dict[str, object]) -> Snapshot:
    return Snapshot(FORMAT_VERSION, KIND, "2026-12-01T00:00:00+00:00", "mysql://x", "x",
                    Server("mysql", "MariaDB", "10.11"), {"t": table}, **objects)  # type: ignore[arg-type]


def _as_format_1(snapshot: Snapshot, path: Path) -> Path:
    """What dbaudit wrote before format 2: none of the fields format 2 added."""
    data = serde.to_jsonable(snapshot)
    data["format_version"] = 1
    for name in unseen_fields(Snapshot, 1):
        data.pop(name)
    for table in data["tables"].values():
        for name in unseen_fields(Table, 1):
            table.pop(name)
    path.write_text(json.dumps(data))
    return path


NEW = _snapshot(_table(checks=[CheckConstraint("a_pos", "`a` > 0")], comment="rich", definition="d" * 64),
                events={"e": Definition("e", "event", "0" * 64, "EVERY 1 HOUR")},
                sequences={"s": Sequence("s", "bigint", 1, 1, 1, 100, False, 1)})


def test_a_format_1_snapshot_still_reads_and_its_unseen_classes_are_not_reported_as_added(tmp_path: Path) -> None:
    old = load_snapshot(_as_format_1(NEW, tmp_path / "old.json"))
    assert old.format_version == 1 and old.tables["t"].checks == [] and old.events == {}

    assert diff_snapshots(old, NEW) == [] and diff_snapshots(NEW, old) == []
    missing = "; ".join(unseen(old, NEW))
    assert all(w in missing for w in ("CHECK constraints", "events", "sequences", "user-defined types", "extensions"))


def test_an_audit_across_formats_says_what_it_could_not_compare(tmp_path: Path) -> None:
    old = load_snapshot(_as_format_1(NEW, tmp_path / "old.json"))
    result = audit(old, NEW)
    (coverage,) = [c for c in result.checks if c.category == "coverage"]  # one line, naming every class
    assert result.verdict == "pass" and coverage.status == "skipped"
    assert "format 1 did not record CHECK constraints" in coverage.message and "events" in coverage.message
    assert not [c for c in audit(NEW, NEW).checks if c.category == "coverage"]


def test_a_snapshot_of_a_later_format_is_refused_by_name(tmp_path: Path) -> None:
    data = serde.to_jsonable(NEW)
    data["format_version"] = 3
    (tmp_path / "s.json").write_text(json.dumps(data))
    with pytest.raises(DbauditError, match="format_version 3; this dbaudit reads version 1 or 2"):
        load_snapshot(tmp_path / "s.json")


def test_a_definition_no_modelled_field_explains_is_reported_as_the_tables_definition() -> None:
    before = _snapshot(_table(definition="a" * 64))
    changes = diff_snapshots(before, _snapshot(_table(definition="b" * 64)))
    assert [(c.kind, c.target, c.fields) for c in changes] == [("table_changed", "t", ["definition"])]
    allowed = parse_expectations({"allowed": [{"table_changed": "t"}]})
    assert audit(before, _snapshot(_table(definition="b" * 64)), allowed).verdict == "pass"


def test_a_definition_a_modelled_change_explains_is_not_reported_twice() -> None:
    changed = _snapshot(_table(definition="b" * 64, comment="now documented"))
    changes = diff_snapshots(_snapshot(_table(definition="a" * 64)), changed)
    assert [(c.kind, c.fields) for c in changes] == [("table_changed", ["comment"])]


def test_sequence_positions_and_auto_increment_are_measurements() -> None:
    seq = {"s": Sequence("s", "bigint", 1, 1, 1, 100, False, 1, last_value=5)}
    moved = {"s": Sequence("s", "bigint", 1, 1, 1, 100, False, 1, last_value=50)}
    assert diff_snapshots(_snapshot(_table(auto_increment=3), sequences=seq),
                          _snapshot(_table(auto_increment=3000), sequences=moved)) == []


def test_index_keys_a_format_1_snapshot_spelled_otherwise_are_not_changes() -> None:
    from dbaudit.core.snapshot import Index

    def sqlite(columns: list[str], predicate: str | None, collation: str | None, version: int) -> Snapshot:
        table = _table(indexes=[Index("i", columns, False, predicate=predicate)])
        table.columns[1].collation = collation
        snap = _snapshot(table)
        snap.format_version, snap.server = version, Server("sqlite", "SQLite", "3.40")
        return snap

    old = sqlite(["(expression)", "a"], "partial", None, 1)
    assert diff_snapshots(old, sqlite(["lower(b)", "a DESC"], "a > 0", "NOCASE", 2)) == []
    # Between two format-2 snapshots the same difference is a change.
    kinds = {c.kind for c in diff_snapshots(sqlite(["lower(b)", "a"], "a > 0", None, 2),
                                            sqlite(["lower(b)", "a DESC"], "a > 1", "NOCASE", 2))}
    assert kinds == {"index_changed", "column_changed"}
