"""The same snapshot and diff behaviour on SQLite, MariaDB and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa

from conftest import ScratchDB
from dbaudit.audit.diff import diff_snapshots
from dbaudit.core.errors import DbauditError
from dbaudit.core.snapshot import load_snapshot
from dbaudit.live.inspect import take_snapshot


def build_shop(db: ScratchDB) -> None:
    """A small schema with a unique key, a secondary index, a foreign key and a view."""
    meta = sa.MetaData()
    sa.Table("workspaces", meta, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("name", sa.String(100), nullable=False))
    sa.Table(
        "contacts", meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("workspace_id", sa.Integer, sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
        sa.Column("phone", sa.String(50), nullable=False),
        sa.Column("email", sa.String(191)),
        sa.Column("status", sa.String(20), nullable=False, server_default="active"),
        sa.UniqueConstraint("workspace_id", "phone", name="contacts_workspace_phone_unique"),
        sa.Index("contacts_email_index", "email"),
    )
    meta.create_all(db.engine)
    with db.engine.begin() as conn:
        conn.execute(sa.table("workspaces", sa.column("id"), sa.column("name")).insert(),
                     [{"id": i, "name": f"w{i}"} for i in range(1, 4)])
        conn.execute(
            sa.table("contacts", *[sa.column(c) for c in ("id", "workspace_id", "phone", "email", "status")]).insert(),
            [{"id": i, "workspace_id": 1 + i % 3, "phone": f"+62{i:08d}", "email": f"c{i}@x.test",
              "status": "active" if i % 4 else "blocked"} for i in range(1, 51)],
        )
        conn.exec_driver_sql("CREATE VIEW active_contacts AS SELECT id, phone FROM contacts WHERE status = 'active'")


# The test servers' accounts are superusers: metrics run on them only with allow_privileged (docs/security.md).
METRICS = {
    "active_contacts": "SELECT COUNT(*) FROM contacts WHERE status = 'active'",
    "missing_table": "SELECT COUNT(*) FROM no_such_table",
}


@pytest.fixture
def shop(make_db: Callable[[], ScratchDB]) -> ScratchDB:
    db = make_db()
    build_shop(db)
    return db


def test_snapshot_records_schema_counts_and_metrics(shop: ScratchDB) -> None:
    snap = take_snapshot(shop.url, METRICS, allow_privileged=True)

    assert set(snap.tables) == {"workspaces", "contacts"}
    contacts = snap.tables["contacts"]
    assert [c.name for c in contacts.columns] == ["id", "workspace_id", "phone", "email", "status"]
    assert [c.position for c in contacts.columns] == [1, 2, 3, 4, 5]
    assert "50" in contacts.column("phone").type and not contacts.column("phone").nullable
    assert contacts.column("email").nullable
    assert "active" in (contacts.column("status").default or "")
    assert contacts.primary_key == ["id"]
    unique = [i for i in contacts.indexes if i.unique and not i.primary]
    assert [i.columns for i in unique] == [["workspace_id", "phone"]]
    assert any(i.name == "contacts_email_index" and i.columns == ["email"] for i in contacts.indexes)
    (fk,) = contacts.foreign_keys
    assert (fk.columns, fk.ref_table, fk.ref_columns, fk.on_delete) == (["workspace_id"], "workspaces", ["id"], "CASCADE")
    assert contacts.row_count == 50 and snap.tables["workspaces"].row_count == 3
    assert set(snap.views) == {"active_contacts"} and snap.views["active_contacts"].sha256
    assert snap.metrics["active_contacts"].value == 38
    assert snap.metrics["missing_table"].value is None and "no_such_table" in snap.metrics["missing_table"].error
    assert snap.server.dialect == {"sqlite": "sqlite", "mariadb": "mysql", "postgresql": "postgresql"}[shop.backend]


def test_two_snapshots_of_an_unchanged_database_have_no_differences(shop: ScratchDB) -> None:
    first = take_snapshot(shop.url, METRICS, allow_privileged=True)
    second = take_snapshot(shop.url, METRICS, allow_privileged=True)
    assert diff_snapshots(first, second) == []


def test_diff_names_every_kind_of_change(shop: ScratchDB) -> None:
    before = take_snapshot(shop.url, METRICS, allow_privileged=True)
    ddl = {
        "sqlite": [
            "ALTER TABLE contacts ADD COLUMN group_id INTEGER",
            "DROP INDEX contacts_email_index",
            "CREATE INDEX contacts_group_index ON contacts (group_id)",
            "CREATE TABLE groups_ (id INTEGER PRIMARY KEY, name VARCHAR(20))",
            "DROP VIEW active_contacts",
            "CREATE VIEW active_contacts AS SELECT id FROM contacts WHERE status = 'active'",
        ],
        "mariadb": [
            "ALTER TABLE contacts ADD COLUMN group_id INT NULL, MODIFY phone VARCHAR(80) NOT NULL",
            "DROP INDEX contacts_email_index ON contacts",
            "CREATE INDEX contacts_group_index ON contacts (group_id)",
            "CREATE TABLE groups_ (id INT PRIMARY KEY, name VARCHAR(20))",
            "CREATE OR REPLACE VIEW active_contacts AS SELECT id FROM contacts WHERE status = 'active'",
        ],
        "postgresql": [
            "DROP VIEW active_contacts",  # PostgreSQL will not retype a column a view uses
            "ALTER TABLE contacts ADD COLUMN group_id INT NULL, ALTER COLUMN phone TYPE VARCHAR(80)",
            "DROP INDEX contacts_email_index",
            "CREATE INDEX contacts_group_index ON contacts (group_id)",
            "CREATE TABLE groups_ (id INT PRIMARY KEY, name VARCHAR(20))",
            "CREATE VIEW active_contacts AS SELECT id FROM contacts WHERE status = 'active'",
        ],
    }[shop.backend]
    shop.run_sql(*ddl, "DELETE FROM contacts WHERE id > 45")
    after = take_snapshot(shop.url, METRICS, allow_privileged=True)

    found = {(c.kind, c.target) for c in diff_snapshots(before, after)}

    expected = {
        ("column_added", "contacts.group_id"),
        ("index_removed", "contacts.contacts_email_index"),
        ("index_added", "contacts.contacts_group_index"),
        ("table_added", "groups_"),
        ("view_changed", "active_contacts"),
        ("row_count_changed", "contacts"),
        ("metric_changed", "active_contacts"),
    }
    if shop.backend != "sqlite":  # SQLite cannot widen a column in place
        expected.add(("column_changed", "contacts.phone"))
    assert found == expected


def test_adding_a_column_in_the_middle_does_not_report_the_shifted_columns(make_mariadb: Callable[[], ScratchDB]) -> None:
    db = make_mariadb()
    build_shop(db)
    before = take_snapshot(db.url)
    db.run_sql("ALTER TABLE contacts ADD COLUMN provider_type VARCHAR(20) NULL AFTER workspace_id")
    changes = diff_snapshots(before, take_snapshot(db.url))
    assert [(c.kind, c.target) for c in changes] == [("column_added", "contacts.provider_type")]


def test_moving_a_column_is_reported_as_a_position_change(make_mariadb: Callable[[], ScratchDB]) -> None:
    db = make_mariadb()
    build_shop(db)
    before = take_snapshot(db.url)
    db.run_sql("ALTER TABLE contacts MODIFY email VARCHAR(191) NULL AFTER id")
    changes = diff_snapshots(before, take_snapshot(db.url))
    assert [(c.kind, c.target, c.fields) for c in changes] == [("column_changed", "contacts.email", ["position"])]


def test_snapshot_survives_a_json_round_trip(shop: ScratchDB, tmp_path) -> None:
    snap = take_snapshot(shop.url, METRICS, allow_privileged=True)
    snap.save(tmp_path / "s.json")
    loaded = load_snapshot(tmp_path / "s.json")
    assert loaded == snap
    assert diff_snapshots(snap, loaded) == []


def test_a_snapshot_of_another_format_version_is_refused(tmp_path) -> None:
    path = tmp_path / "old.json"
    path.write_text('{"kind": "dbaudit.snapshot", "format_version": 99}')
    with pytest.raises(DbauditError, match="format_version 99"):
        load_snapshot(path)


def test_audit_session_cannot_write(shop: ScratchDB) -> None:
    """Even SQL that slips past the SELECT-only guard cannot change the audited database."""
    writes = {
        "sqlite": "SELECT COUNT(*) FROM contacts WHERE 0 = (SELECT COUNT(*) FROM pragma_foreign_keys)",
        "mariadb": "SELECT @@tx_read_only",
        "postgresql": "SELECT purge_contacts()",  # a data-changing CTE no longer passes the parse
    }
    if shop.backend == "postgresql":
        shop.run_sql("CREATE FUNCTION purge_contacts() RETURNS bigint LANGUAGE sql AS "
                     "'WITH gone AS (DELETE FROM contacts RETURNING 1) SELECT COUNT(*) FROM gone'")
    snap = take_snapshot(shop.url, {"attempt": writes[shop.backend]}, allow_privileged=True)
    metric = snap.metrics["attempt"]
    if shop.backend == "postgresql":
        assert "read-only transaction" in metric.error
    elif shop.backend == "mariadb":
        assert metric.value == 1
    with shop.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM contacts").scalar_one() == 50


def test_a_metric_that_is_not_a_select_is_refused(shop: ScratchDB) -> None:
    with pytest.raises(DbauditError, match="must be a single SELECT"):
        take_snapshot(shop.url, {"oops": "DELETE FROM contacts"})


def test_sqlite_snapshot_leaves_the_file_untouched(make_sqlite: Callable[[], ScratchDB]) -> None:
    db = make_sqlite()
    build_shop(db)
    path = db.url.removeprefix("sqlite:///")
    with open(path, "rb") as handle:
        original = handle.read()
    take_snapshot(db.url, METRICS)
    with open(path, "rb") as handle:
        assert handle.read() == original
