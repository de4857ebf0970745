"""Expectations: parsing errors that name the problem, and judging real SQLite diffs against them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from conftest import ROOT
from dbaudit.audit.expectations import Expectations, load_expectations, parse_expectations
from dbaudit.audit.result import AuditResult, audit
from dbaudit.core.errors import DbauditError
from dbaudit.core.snapshot import Snapshot
from dbaudit.live.inspect import take_snapshot

SCHEMA = """
CREATE TABLE chats (id INTEGER PRIMARY KEY, contact TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'open');
CREATE TABLE jobs (id INTEGER PRIMARY KEY, queue TEXT NOT NULL);
CREATE TABLE legacy_queue (id INTEGER PRIMARY KEY);
INSERT INTO chats (id, contact, status) VALUES (1, 'a', 'open'), (2, 'b', 'open'), (3, 'c', 'closed'), (4, 'd', 'open');
INSERT INTO jobs (id, queue) VALUES (1, 'default'), (2, 'default'), (3, 'mail');
INSERT INTO legacy_queue (id) VALUES (1), (2);
"""


class Shop:
    """A SQLite file built with the sqlite3 module; `change()` runs a migration between snapshots."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = f"sqlite:///{path}"
        self.sql(SCHEMA)

    def sql(self, script: str) -> None:
        with sqlite3.connect(self.path) as conn:
            conn.executescript(script)
        conn.close()

    def snapshot(self, metrics: dict[str, str] | None = None) -> Snapshot:
        return take_snapshot(self.url, metrics)

    def audit(self, migration: str, expectations: Expectations | None) -> AuditResult:
        """Snapshot, migrate, snapshot again (recording the expectations' metrics) and judge."""
        metrics = expectations.metric_queries if expectations else None
        before = self.snapshot(metrics)
        self.sql(migration)
        after = self.snapshot(metrics)
        return audit(before, after, expectations)


@pytest.fixture
def shop(tmp_path: Path) -> Shop:
    return Shop(tmp_path / "shop.sqlite")


def rules(**data: object) -> Expectations:
    return parse_expectations(data, "test.yml")


def failed(result: AuditResult) -> list[tuple[str, str]]:
    return [(c.category, c.name) for c in result.failed_checks]


def check(result: AuditResult, category: str, name: str):  # a Check
    (found,) = [c for c in result.checks if c.category == category and c.name == name]
    return found


ADD_PROVIDER = "ALTER TABLE chats ADD COLUMN provider_type VARCHAR(20) NULL;"


# --- parsing -------------------------------------------------------------------------------------


def test_the_shipped_blazz_expectations_parse() -> None:
    parsed = load_expectations(ROOT / "expectations" / "blazz-webjs.yml")
    assert parsed.name == "blazz-webjs"
    assert len(parsed.required) == 11 and len(parsed.allowed) == 2  # foreign keys, and SQLite's enum CHECK
    assert parsed.metrics["queue_depth"].max == 50000 and parsed.metrics["active_sessions"].expect == "equal"
    assert parsed.rows.policy("jobs") == "any" and parsed.rows.policy("chats") == "no_shrink"
    required = {(p.kind, p.target): p.attributes for p in parsed.required}
    assert required[("column_added", "chats.provider_type")] == {"nullable": True}


def test_an_unknown_top_level_key_is_named() -> None:
    with pytest.raises(DbauditError, match=r"test\.yml: unknown key\(s\) \['requried'\]"):
        rules(requried=[{"column_added": "chats.provider_type"}])


@pytest.mark.parametrize(
    ("rows", "named"),
    [({"default": "grow"}, "rows.default .*'grow'"), ({"sometimes": ["chats"]}, "rows.sometimes")],
)
def test_an_unknown_rows_policy_is_named(rows: dict[str, object], named: str) -> None:
    with pytest.raises(DbauditError, match=named):
        rules(rows=rows)


def test_a_metric_without_sql_is_named() -> None:
    with pytest.raises(DbauditError, match=r"metrics\.queue_depth needs `sql:`"):
        rules(metrics={"queue_depth": {"expect": "any", "max": 10}})


def test_a_pattern_with_two_change_kinds_is_refused() -> None:
    with pytest.raises(DbauditError, match=r"required\[1\]: needs exactly one change kind .*'column_added', 'index_added'"):
        rules(required=[{"table_added": "groups"},
                        {"column_added": "chats.group_id", "index_added": "chats.idx_group"}])


def test_an_unknown_change_kind_is_named() -> None:
    with pytest.raises(DbauditError, match=r"allowed\[0\]: .*'column_renamed'"):
        rules(allowed=[{"column_renamed": "chats.contact"}])


def test_a_malformed_yaml_file_is_reported_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "broken.yml"
    path.write_text("required:\n  - column_added: [chats.x\n", encoding="utf-8")
    with pytest.raises(DbauditError, match=r"broken\.yml is not valid YAML"):
        load_expectations(path)


# --- required and allowed changes ----------------------------------------------------------------


def test_a_required_change_that_happened_passes(shop: Shop) -> None:
    result = shop.audit(ADD_PROVIDER, rules(required=[{"column_added": "chats.provider_type"}]))
    assert result.verdict == "pass", failed(result)
    assert check(result, "required", "column_added chats.provider_type").status == "pass"
    assert [(c.kind, c.target, c.declared) for c in result.changes] == [
        ("column_added", "chats.provider_type", True)]


def test_a_required_change_that_did_not_happen_fails(shop: Shop) -> None:
    expected = rules(required=[{"column_added": "chats.provider_type"}, {"column_added": "chats.chat_type"}])
    result = shop.audit(ADD_PROVIDER, expected)
    assert result.verdict == "fail"
    assert failed(result) == [("required", "column_added chats.chat_type")]
    assert "did not happen" in check(result, "required", "column_added chats.chat_type").message


@pytest.mark.parametrize(("nullable", "verdict"), [(True, "fail"), (False, "pass")])
def test_attributes_on_a_required_column_are_enforced(shop: Shop, nullable: bool, verdict: str) -> None:
    """A NOT NULL column does not satisfy `nullable: true` (and is then undeclared as well)."""
    migration = "ALTER TABLE chats ADD COLUMN chat_type VARCHAR(10) NOT NULL DEFAULT 'private';"
    result = shop.audit(migration, rules(required=[{"column_added": "chats.chat_type", "nullable": nullable}]))
    assert result.verdict == verdict
    if verdict == "fail":
        assert failed(result) == [("required", "column_added chats.chat_type, nullable=True"),
                                  ("unexpected", "column_added chats.chat_type")]


INDEXES = """
ALTER TABLE chats ADD COLUMN chat_type VARCHAR(10) NULL;
CREATE INDEX idx_chats_chat_type ON chats (chat_type);
CREATE INDEX idx_chats_status ON chats (status);
"""


def test_fnmatch_patterns_in_allowed_declare_every_matching_change(shop: Shop) -> None:
    expected = rules(required=[{"column_added": "chats.chat_type"}], allowed=[{"index_added": "chats.idx_chats_*"}])
    result = shop.audit(INDEXES, expected)
    assert result.verdict == "pass", failed(result)
    assert {c.target for c in result.changes if c.kind == "index_added"} == {
        "chats.idx_chats_chat_type", "chats.idx_chats_status"}
    assert all(c.declared for c in result.changes)


def test_a_pattern_that_matches_only_some_changes_leaves_the_rest_unexpected(shop: Shop) -> None:
    expected = rules(required=[{"column_added": "chats.chat_type"}], allowed=[{"index_added": "chats.*_type"}])
    result = shop.audit(INDEXES, expected)
    assert result.verdict == "fail"
    assert failed(result) == [("unexpected", "index_added chats.idx_chats_status")]


# --- row policies --------------------------------------------------------------------------------

GROW_JOBS = "INSERT INTO jobs (id, queue) VALUES (4, 'mail');"
SHRINK_CHATS = "DELETE FROM chats WHERE id = 4;"


@pytest.mark.parametrize(
    ("migration", "table", "policy", "status"),
    [
        (GROW_JOBS, "jobs", "equal", "fail"),
        (GROW_JOBS, "jobs", "no_shrink", "pass"),
        (GROW_JOBS, "jobs", "any", "pass"),
        (SHRINK_CHATS, "chats", "equal", "fail"),
        (SHRINK_CHATS, "chats", "no_shrink", "fail"),
        (SHRINK_CHATS, "chats", "any", "pass"),
    ],
)
def test_row_policies(shop: Shop, migration: str, table: str, policy: str, status: str) -> None:
    result = shop.audit(migration, rules(rows={"default": "equal", policy: [table]}))
    assert check(result, "rows", table).status == status
    assert result.verdict == status  # every other table kept its rows
    assert {c.status for c in result.checks if c.category == "rows" and c.name != table} == {"pass"}


def test_the_default_row_policy_applies_to_unlisted_tables(shop: Shop) -> None:
    result = shop.audit(SHRINK_CHATS + GROW_JOBS, rules(rows={"default": "no_shrink", "any": ["chats"]}))
    assert result.verdict == "pass", failed(result)
    result = shop.audit("DELETE FROM jobs WHERE id = 4;", rules(rows={"default": "no_shrink", "any": ["chats"]}))
    assert failed(result) == [("rows", "jobs")]
    assert "4 → 3 (-1); must not shrink" in check(result, "rows", "jobs").message


# --- metrics -------------------------------------------------------------------------------------

JOBS = "SELECT COUNT(*) FROM jobs"
ADD_JOB = "INSERT INTO jobs (queue) VALUES ('default');"
DROP_JOB = "DELETE FROM jobs WHERE id = 1;"


@pytest.mark.parametrize(
    ("spec", "migration", "status"),
    [
        ({"expect": "equal"}, "UPDATE jobs SET queue = 'x';", "pass"),
        ({"expect": "equal"}, ADD_JOB, "fail"),
        ({"expect": "no_decrease"}, ADD_JOB, "pass"),
        ({"expect": "no_decrease"}, DROP_JOB, "fail"),
        ({"expect": "no_increase"}, DROP_JOB, "pass"),
        ({"expect": "no_increase"}, ADD_JOB, "fail"),
        ({"expect": "any", "max": 4}, ADD_JOB, "pass"),  # 4 is at the limit, not above it
        ({"expect": "any", "max": 4}, ADD_JOB + ADD_JOB, "fail"),
        ({"expect": "any", "min": 3}, DROP_JOB, "fail"),
    ],
    ids=["equal-same", "equal-grew", "no_decrease-grew", "no_decrease-shrank", "no_increase-shrank",
         "no_increase-grew", "max-at-limit", "max-above", "min-below"],
)
def test_metric_rules(shop: Shop, spec: dict[str, object], migration: str, status: str) -> None:
    result = shop.audit(migration, rules(metrics={"queue_depth": {"sql": JOBS, **spec}}, rows={"default": "any"}))
    assert check(result, "metric", "queue_depth").status == status
    assert result.verdict == status


def test_a_queue_depth_above_its_max_fails_with_the_limit_in_the_message(shop: Shop) -> None:
    expected = rules(metrics={"queue_depth": {"sql": JOBS, "max": 4}}, rows={"default": "any"})
    result = shop.audit(ADD_JOB * 3, expected)
    metric = check(result, "metric", "queue_depth")
    assert metric.status == "fail" and metric.message == "3 → 6: above the limit 4"


def test_a_metric_whose_query_fails_after_the_change_fails_its_check(shop: Shop) -> None:
    expected = rules(metrics={"legacy": {"sql": "SELECT COUNT(*) FROM legacy_queue", "expect": "any"}},
                     allowed=[{"table_removed": "legacy_queue"}])
    result = shop.audit("DROP TABLE legacy_queue;", expected)
    assert failed(result) == [("metric", "legacy")]
    message = check(result, "metric", "legacy").message
    assert message.startswith("query failed after the change") and "legacy_queue" in message


def test_a_metric_that_only_starts_working_after_the_change_cannot_be_compared(shop: Shop) -> None:
    expected = rules(metrics={"groups": {"sql": "SELECT COUNT(*) FROM groups_", "expect": "no_decrease"}},
                     allowed=[{"table_added": "groups_"}])
    result = shop.audit("CREATE TABLE groups_ (id INTEGER PRIMARY KEY);", expected)
    assert failed(result) == [("metric", "groups")]
    assert "no before value" in check(result, "metric", "groups").message


# --- no expectations -----------------------------------------------------------------------------


def test_without_expectations_no_change_passes(shop: Shop) -> None:
    result = shop.audit("SELECT 1;", None)
    assert result.verdict == "pass" and result.changes == [] and result.expectations == "no-changes"


@pytest.mark.parametrize("migration", [ADD_PROVIDER, GROW_JOBS, "CREATE INDEX idx_jobs_queue ON jobs (queue);"],
                         ids=["column", "rows", "index"])
def test_without_expectations_any_change_fails(shop: Shop, migration: str) -> None:
    result = shop.audit(migration, None)
    assert len(result.changes) == 1
    assert result.verdict == "fail"


def test_without_expectations_a_metric_change_fails(shop: Shop) -> None:
    metrics = {"open_chats": "SELECT COUNT(*) FROM chats WHERE status = 'open'"}
    before = shop.snapshot(metrics)
    shop.sql("UPDATE chats SET status = 'closed' WHERE id = 1;")
    result = audit(before, shop.snapshot(metrics))
    assert [(c.kind, c.target) for c in result.changes] == [("metric_changed", "open_chats")]
    assert result.verdict == "fail"


# --- the edges a typo falls into -------------------------------------------------------------------


def test_a_misspelt_attribute_on_a_pattern_is_refused_not_silently_unmatched() -> None:
    with pytest.raises(DbauditError, match=r"unknown attribute\(s\) \['nulable'\] for column_added"):
        rules(required=[{"column_added": "chats.x", "nulable": True}])


def test_a_pattern_without_a_target_is_refused() -> None:
    with pytest.raises(DbauditError, match="column_added needs a target"):
        rules(required=[{"column_added": None}])


def test_a_limit_on_a_metric_that_is_not_a_number_fails(shop: Shop) -> None:
    expectations = rules(metrics={"nothing": {"sql": "SELECT NULL", "max": 10}})
    result = shop.audit("", expectations)
    assert failed(result) == [("metric", "nothing")]
    assert "not a number" in check(result, "metric", "nothing").message


def test_a_row_rule_over_a_table_that_was_not_counted_fails_instead_of_passing(shop: Shop) -> None:
    before = shop.snapshot()
    shop.sql("DELETE FROM chats WHERE id > 1;")
    after = take_snapshot(shop.url, count_rows=False)
    result = audit(before, after, rules(rows={"default": "no_shrink", "any": ["jobs"]}))
    assert ("rows", "chats") in failed(result) and ("rows", "jobs") not in failed(result)
    assert "not counted in the after snapshot" in check(result, "rows", "chats").message


def test_a_metric_returning_more_than_one_value_is_an_error_not_its_first_value(shop: Shop) -> None:
    snap = shop.snapshot({"by_status": "SELECT status, COUNT(*) FROM chats GROUP BY status",
                          "ids": "SELECT id FROM jobs", "one": "SELECT COUNT(*) FROM jobs"})
    assert snap.metrics["by_status"].value is None and "one value" in snap.metrics["by_status"].error
    assert snap.metrics["ids"].value is None and "several row(s)" in snap.metrics["ids"].error
    assert snap.metrics["one"].value == 3 and snap.metrics["one"].error is None
