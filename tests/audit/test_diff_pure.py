"""diff and expectations on hand-built snapshots: no server, so every rule is checked in milliseconds."""

from __future__ import annotations

from dbaudit.audit.diff import diff_snapshots
from dbaudit.audit.expectations import parse_expectations
from dbaudit.audit.result import audit
from dbaudit.core.snapshot import FORMAT_VERSION, KIND, Column, Definition, Index, Server, Snapshot, Table


def snapshot(*tables: Table, views: dict[str, Definition] | None = None) -> Snapshot:
    return Snapshot(FORMAT_VERSION, KIND, "2026-12-01T00:00:00+00:00", "sqlite:///x", "x",
                    Server("sqlite", "SQLite", "3"), {t.name: t for t in tables}, views=views or {})


def chats(*extra: Column, rows: int = 10, indexes: list[Index] | None = None) -> Table:
    columns = [Column("id", 1, "INTEGER", False, None), Column("status", 2, "TEXT", True, None), *extra]
    return Table("chats", columns, indexes or [], primary_key=["id"], row_count=rows)


def test_an_added_column_is_one_change_and_the_columns_after_it_are_not_moved() -> None:
    before = snapshot(chats())
    after = snapshot(Table("chats", [Column("id", 1, "INTEGER", False, None), Column("provider", 2, "TEXT", True, None),
                                     Column("status", 3, "TEXT", True, None)], primary_key=["id"], row_count=10))

    assert [(c.kind, c.target) for c in diff_snapshots(before, after)] == [("column_added", "chats.provider")]


def test_a_moved_column_is_reported_with_its_position() -> None:
    before = snapshot(Table("t", [Column("a", 1, "INT", True, None), Column("b", 2, "INT", True, None),
                                  Column("c", 3, "INT", True, None)]))
    after = snapshot(Table("t", [Column("b", 1, "INT", True, None), Column("c", 2, "INT", True, None),
                                 Column("a", 3, "INT", True, None)]))

    (change,) = diff_snapshots(before, after)
    assert (change.kind, change.target, change.fields) == ("column_changed", "t.a", ["position"])


def test_row_counts_and_fingerprints_are_measurements_not_schema_changes() -> None:
    before, after = chats(rows=10), chats(rows=12)
    after.fingerprint, before.fingerprint = "c2/sha256:12:ff", "c2/sha256:10:aa"

    kinds = [c.kind for c in diff_snapshots(snapshot(before), snapshot(after))]
    assert kinds == ["row_count_changed", "content_changed"]


def test_an_undeclared_change_fails_and_a_declared_one_passes() -> None:
    before = snapshot(chats())
    after = snapshot(chats(Column("group_id", 3, "INTEGER", True, None), indexes=[Index("chats_group", ["group_id"], False)]))
    rules = parse_expectations({"name": "t", "required": [{"column_added": "chats.group_id", "nullable": True}]})

    result = audit(before, after, rules)

    assert result.verdict == "fail"
    assert [c.name for c in result.failed_checks] == ["index_added chats.chats_group"]
    allowed = parse_expectations({"name": "t", "required": [{"column_added": "chats.group_id"}],
                                  "allowed": [{"index_added": "chats.*"}]})
    assert audit(before, after, allowed).verdict == "pass"


def test_a_required_attribute_that_does_not_hold_fails_the_requirement() -> None:
    before = snapshot(chats())
    after = snapshot(chats(Column("group_id", 3, "INTEGER", False, None)))
    rules = parse_expectations({"name": "t", "required": [{"column_added": "chats.group_id", "nullable": True}]})

    failed = audit(before, after, rules).failed_checks
    assert [c.category for c in failed] == ["required", "unexpected"]


def test_a_view_whose_definition_changed_is_one_view_changed() -> None:
    before = snapshot(chats(), views={"v": Definition("v", "view", "aa", "VIEW")})
    after = snapshot(chats(), views={"v": Definition("v", "view", "bb", "VIEW")})

    (change,) = diff_snapshots(before, after)
    assert (change.kind, change.name, change.fields) == ("view_changed", "v", ["sha256"])
