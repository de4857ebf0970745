"""The seed's migration on MariaDB: the blazz schema with real types, audited against the shipped expectations."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa

from conftest import ROOT, SQL_DIR, ScratchDB, load_sql
from dbaudit.audit.expectations import load_expectations
from dbaudit.audit.result import audit
from dbaudit.demo.sample_data import TABLE_ORDER, sample_rows
from dbaudit.live.inspect import take_snapshot

EXPECTATIONS = load_expectations(ROOT / "expectations" / "blazz-webjs.yml")


@pytest.fixture
def blazz(make_mariadb: Callable[[], ScratchDB], mariadb_client: str) -> ScratchDB:
    db = make_mariadb()
    load_sql(mariadb_client, _name(db), SQL_DIR / "blazz_schema.mysql.sql")
    rows = sample_rows()
    with db.engine.begin() as conn:
        for table in TABLE_ORDER:
            if rows.get(table):
                conn.execute(sa.table(table, *[sa.column(c) for c in rows[table][0]]).insert(), rows[table])
    return db


def _name(db: ScratchDB) -> str:
    return db.url.rsplit("/", 1)[1]


def _migrate(db: ScratchDB, client: str, migration: str, *extra: str) -> None:
    load_sql(client, _name(db), SQL_DIR / migration)
    db.run_sql(*extra)


def test_pre_change_snapshot_answers_the_readme_verification_queries(blazz: ScratchDB) -> None:
    snap = take_snapshot(blazz.url, EXPECTATIONS.metric_queries, allow_privileged=True)
    chats = snap.tables["chats"]
    assert len(chats.columns) == 15
    assert chats.column("type").type == "enum('inbound','outbound')"
    assert chats.column("id").type == "bigint(20) unsigned" and chats.column("id").extra == "auto_increment"
    assert any(i.type == "FULLTEXT" for i in snap.tables["contacts"].indexes)
    rules = {fk.on_delete for t in snap.tables.values() for fk in t.foreign_keys}
    assert {"CASCADE", "SET NULL"} <= rules
    assert snap.metrics["total_chats"].value == chats.row_count == 1500
    assert snap.metrics["active_sessions"].value == 3


def test_planned_webjs_migration_passes_the_shipped_expectations(blazz: ScratchDB, mariadb_client: str) -> None:
    before = take_snapshot(blazz.url, EXPECTATIONS.metric_queries, allow_privileged=True)
    _migrate(blazz, mariadb_client, "webjs_migration.mysql.sql")
    after = take_snapshot(blazz.url, EXPECTATIONS.metric_queries, allow_privileged=True)

    result = audit(before, after, EXPECTATIONS)

    assert result.verdict == "pass", [c.message for c in result.failed_checks]
    assert len(after.tables["chats"].columns) == 18
    assert after.tables["chats"].column("chat_type").type == "enum('private','group')"
    assert {c.target for c in result.changes if c.kind == "column_added"} == {
        "chats.provider_type", "chats.chat_type", "chats.group_id"}
    assert sum(1 for c in result.checks if c.category == "required" and c.status == "pass") == 11


def test_faulty_migration_fails_naming_the_stray_column_lost_index_and_lost_rows(
    blazz: ScratchDB, mariadb_client: str
) -> None:
    before = take_snapshot(blazz.url, EXPECTATIONS.metric_queries, allow_privileged=True)
    _migrate(blazz, mariadb_client, "webjs_migration.mysql.sql")
    _migrate(blazz, mariadb_client, "faulty_extras.mysql.sql")
    result = audit(before, take_snapshot(blazz.url, EXPECTATIONS.metric_queries, allow_privileged=True), EXPECTATIONS)

    assert result.verdict == "fail"
    failed = {(c.category, c.name) for c in result.failed_checks}
    assert ("unexpected", "column_added chats.legacy_provider") in failed
    assert ("unexpected", "index_removed whatsapp_sessions.whatsapp_sessions_status_index") in failed
    assert {("rows", "contacts"), ("rows", "chats"), ("metric", "total_contacts")} <= failed


def test_migration_that_also_drops_a_column_fails_naming_it(blazz: ScratchDB, mariadb_client: str) -> None:
    before = take_snapshot(blazz.url, EXPECTATIONS.metric_queries, allow_privileged=True)
    _migrate(blazz, mariadb_client, "webjs_migration.mysql.sql", "ALTER TABLE chats DROP COLUMN wam_id")
    result = audit(before, take_snapshot(blazz.url, EXPECTATIONS.metric_queries, allow_privileged=True), EXPECTATIONS)

    assert result.verdict == "fail"
    # Dropping the column takes its index with it: both are unexpected, and both are named.
    assert [c.name for c in result.failed_checks] == ["column_removed chats.wam_id",
                                                       "index_removed chats.chats_wam_id_index"]


def test_migration_that_deletes_rows_fails_naming_the_table(blazz: ScratchDB, mariadb_client: str) -> None:
    before = take_snapshot(blazz.url, EXPECTATIONS.metric_queries, allow_privileged=True)
    _migrate(blazz, mariadb_client, "webjs_migration.mysql.sql", "DELETE FROM users WHERE id > 10")
    result = audit(before, take_snapshot(blazz.url, EXPECTATIONS.metric_queries, allow_privileged=True), EXPECTATIONS)

    assert [(c.category, c.name) for c in result.failed_checks] == [("rows", "users")]
    assert "12 → 10" in result.failed_checks[0].message
