"""How attributes compare across server spellings: what a correct migration must never fail on, and what
a wrong one must still fail on."""

from __future__ import annotations

import pytest

from dbaudit.audit.spelling import mismatch, same_attribute


@pytest.mark.parametrize(("key", "recorded", "declared"), [
    ("type", "int(11)", "int"),  # MariaDB display width vs MySQL 8
    ("type", "bigint(20) unsigned", "bigint unsigned"),
    ("type", "enum('a','b')", "ENUM('a', 'b')"),
    ("type", "VARCHAR ( 255 )", "varchar(255)"),  # SQLite keeps the declared text
    ("type", "longtext", "json"),  # MariaDB's JSON
    ("type", "tinyint(1)", "boolean"),
    ("default", "'meta'::character varying", "'meta'"),  # PostgreSQL casts
    ("default", "meta", "'meta'"),  # MySQL 8 does not quote
    ("default", "'-1'::integer", "-1"),
    ("default", "0.00", "0"),  # MariaDB formats decimals with the column's scale
    ("default", "current_timestamp()", "CURRENT_TIMESTAMP"),
    ("default", "now()", "current_timestamp"),
    ("default", "NULL", None),  # SQLite's DEFAULT NULL
    ("extra", "on update current_timestamp()", "on update CURRENT_TIMESTAMP"),
    ("columns", ["Group_ID", "created_at"], ["group_id", "created_at"]),
])
def test_server_cosmetics_never_fail_a_correct_migration(key, recorded, declared) -> None:
    assert same_attribute(key, recorded, declared)


@pytest.mark.parametrize(("key", "recorded", "declared"), [
    ("type", "varchar(20)", "varchar(30)"),
    ("type", "bigint(20)", "bigint unsigned"),
    ("type", "enum('a','b')", "enum('a','c')"),
    ("type", "decimal(10,2)", "decimal(10,3)"),
    ("default", "'meta'", "'webjs'"),
    ("default", None, "0"),
    ("nullable", True, False),
    ("columns", ["a", "b"], ["b", "a"]),
])
def test_a_real_difference_still_fails(key, recorded, declared) -> None:
    assert not same_attribute(key, recorded, declared)


def test_a_new_tables_columns_must_be_exactly_those_declared() -> None:
    columns = [{"name": "id", "type": "int(11)", "nullable": False}, {"name": "stray", "type": "int(11)"}]
    problem = mismatch("columns", columns, {"id": {"type": "int", "nullable": False}, "name": {"type": "text"}})
    assert problem == "columns name missing; unexpected columns stray"
    assert mismatch("columns", columns[:1], {"id": {"type": "bigint"}}) == "id: type is 'int(11)', not 'bigint'"


def test_a_new_tables_indexes_must_include_those_declared() -> None:
    indexes = [{"name": "PRIMARY", "columns": ["id"], "unique": True}, {"name": "fk_x", "columns": ["x"], "unique": False}]
    assert mismatch("indexes", indexes, [{"columns": ["id"], "unique": True}]) is None  # the engine may add others
    assert "no index like" in str(mismatch("indexes", indexes, [{"name": "ix_y", "columns": ["y"]}]))
