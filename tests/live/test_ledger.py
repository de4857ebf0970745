"""The migrations ledger on real servers: each tool's table as the tool creates it, read inside the
snapshot, diffed into migrations applied / rolled back / failed, and judged by `migrations:`."""

from __future__ import annotations

import json
from collections.abc import Callable

import jsonschema
import pytest

from conftest import ROOT, ScratchDB
from dbaudit.audit.expectations import parse_expectations
from dbaudit.audit.result import audit
from dbaudit.core import serde
from dbaudit.live.inspect import take_snapshot

# Each tool's ledger table, in the portable subset of the DDL its tool runs (from the tools' sources).
LEDGERS = {
    "laravel": ("CREATE TABLE migrations (id integer PRIMARY KEY, migration varchar(255) NOT NULL, batch integer NOT NULL)",
                "INSERT INTO migrations VALUES ({n}, '2025_10_22_00000{n}_step_{n}', {n})",
                "2025_10_22_00000{n}_step_{n}"),
    "django": ("CREATE TABLE django_migrations (id integer PRIMARY KEY, app varchar(255) NOT NULL, "
               "name varchar(255) NOT NULL, applied timestamp NOT NULL)",
               "INSERT INTO django_migrations VALUES ({n}, 'shop', '000{n}_step', CURRENT_TIMESTAMP)", "shop.000{n}_step"),
    "rails": ("CREATE TABLE schema_migrations (version varchar(255) NOT NULL PRIMARY KEY)",
              "INSERT INTO schema_migrations VALUES ('2025102200000{n}')", "2025102200000{n}"),
    "flyway": ("CREATE TABLE flyway_schema_history (installed_rank integer PRIMARY KEY, version varchar(50), "
               "description varchar(200) NOT NULL, type varchar(20) NOT NULL, script varchar(1000) NOT NULL, "
               "checksum integer, installed_by varchar(100) NOT NULL, installed_on timestamp DEFAULT CURRENT_TIMESTAMP, "
               "execution_time integer NOT NULL, success boolean NOT NULL)",
               "INSERT INTO flyway_schema_history (installed_rank, version, description, type, script, checksum, "
               "installed_by, execution_time, success) VALUES ({n}, '{n}', 'step', 'SQL', 'V{n}__step.sql', 1{n}, "
               "'ci', 5, {ok})", "V{n}__step.sql"),
    "liquibase": ("CREATE TABLE DATABASECHANGELOG (ID varchar(255) NOT NULL, AUTHOR varchar(255) NOT NULL, "
                  "FILENAME varchar(255) NOT NULL, DATEEXECUTED timestamp NOT NULL, ORDEREXECUTED integer NOT NULL, "
                  "EXECTYPE varchar(10) NOT NULL, MD5SUM varchar(35), DESCRIPTION varchar(255), "
                  "DEPLOYMENT_ID varchar(10))",
                  "INSERT INTO DATABASECHANGELOG VALUES ('{n}', 'ann', 'db/changelog.xml', CURRENT_TIMESTAMP, {n}, "
                  "'{exectype}', '9:abc', 'step', 'd1')", "db/changelog.xml::{n}::ann"),
    "alembic": ("CREATE TABLE alembic_version (version_num varchar(32) NOT NULL PRIMARY KEY)",
                "DELETE FROM alembic_version; INSERT INTO alembic_version VALUES ('rev{n}')", "rev{n}"),
}


def _insert(db: ScratchDB, tool: str, n: int, ok: bool = True) -> None:
    true, false = ("1", "0") if db.backend != "postgresql" else ("true", "false")
    sql = LEDGERS[tool][1].format(n=n, ok=true if ok else false, exectype="EXECUTED" if ok else "FAILED")
    db.run_sql(*[s for s in sql.split("; ") if s])


def _name(tool: str, n: int) -> str:
    return LEDGERS[tool][2].format(n=n)


@pytest.mark.parametrize("tool", sorted(LEDGERS))
def test_each_tools_ledger_is_recorded_and_diffed(make_db: Callable[[], ScratchDB], tool: str) -> None:
    db = make_db()
    db.run_sql(LEDGERS[tool][0])
    _insert(db, tool, 1)
    before = take_snapshot(db.url)
    assert before.migrations is not None and before.migrations.tool == tool
    assert [e.name for e in before.migrations.entries] == [_name(tool, 1)]
    _insert(db, tool, 2)
    after = take_snapshot(db.url)
    schema = json.loads((ROOT / "lib" / "dbaudit" / "schemas" / "snapshot.schema.json").read_text())
    jsonschema.validate(json.loads(serde.dumps(after)), schema)  # the published format knows the ledger

    applied = [c for c in audit(before, after).changes if c.kind == "migration_applied"]
    assert [c.name for c in applied] == [_name(tool, 2)]

    declared = parse_expectations({"migrations": {"applied": [_name(tool, 2)]}})
    result = audit(before, after, declared)
    assert result.verdict == "pass", [c.message for c in result.failed_checks]
    # The ledger's own rows grew by one: judged with the migrations, not by the default `equal` row rule.
    assert not [c for c in result.checks if c.category == "rows" and c.name == after.migrations.table]

    wrong = audit(before, after, parse_expectations({"migrations": {"applied": [_name(tool, 3)]}}))
    messages = [c.message for c in wrong.failed_checks]
    assert any("is not in the ledger after the change" in m for m in messages), messages
    assert any(f"migration {_name(tool, 2)} applied" in m for m in messages), messages  # undeclared: unexpected


@pytest.mark.parametrize("tool", ["laravel", "django", "rails", "liquibase"])
def test_a_rollback_deletes_the_row_and_is_reported_as_rolled_back(make_db, tool: str) -> None:
    db = make_db()
    db.run_sql(LEDGERS[tool][0])
    _insert(db, tool, 1)
    _insert(db, tool, 2)
    before = take_snapshot(db.url)
    table = before.migrations.table  # type: ignore[union-attr]
    db.run_sql(f"DELETE FROM {table} WHERE {'ORDEREXECUTED' if tool == 'liquibase' else 'version' if tool == 'rails' else 'id'}"
               f" = {'2' if tool != 'rails' else repr(_name(tool, 2))}")
    after = take_snapshot(db.url)
    result = audit(before, after, parse_expectations({"migrations": {"rolled_back": [_name(tool, 2)]}}))
    assert result.verdict == "pass", [c.message for c in result.failed_checks]
    assert [c.name for c in result.changes if c.kind == "migration_rolled_back"] == [_name(tool, 2)]


@pytest.mark.parametrize("tool", ["flyway", "liquibase"])
def test_a_failed_migration_in_the_ledger_always_fails_the_audit(make_db, tool: str) -> None:
    db = make_db()
    db.run_sql(LEDGERS[tool][0])
    _insert(db, tool, 1)
    before = take_snapshot(db.url)
    _insert(db, tool, 2, ok=False)
    after = take_snapshot(db.url)
    result = audit(before, after, parse_expectations({"migrations": {"applied": [_name(tool, 2)]}}))
    messages = [c.message for c in result.failed_checks]
    assert f"migration {_name(tool, 2)} FAILED" in " ".join(messages), messages


def test_alembic_keeps_heads_only_so_an_upgrade_is_not_a_rollback(make_sqlite) -> None:
    db = make_sqlite()
    db.run_sql(LEDGERS["alembic"][0])
    _insert(db, "alembic", 1)
    before = take_snapshot(db.url)
    _insert(db, "alembic", 2)
    after = take_snapshot(db.url)
    result = audit(before, after, parse_expectations({"migrations": {"applied": ["rev2"]}}))
    assert result.verdict == "pass", [c.message for c in result.failed_checks]
    change = next(c for c in result.changes if c.kind == "migration_applied")
    assert "was rev1" in change.message and not [c for c in result.changes if c.kind == "migration_rolled_back"]


def test_a_table_called_migrations_that_is_not_laravels_is_not_a_ledger(make_sqlite) -> None:
    db = make_sqlite()
    db.run_sql("CREATE TABLE migrations (id integer PRIMARY KEY, animal text, km integer)")
    assert take_snapshot(db.url).migrations is None


def test_without_a_migrations_section_the_ledger_is_reported_not_judged(make_sqlite) -> None:
    db = make_sqlite()
    db.run_sql(LEDGERS["laravel"][0])
    before = take_snapshot(db.url)
    _insert(db, "laravel", 1)
    after = take_snapshot(db.url)
    result = audit(before, after, parse_expectations({"rows": {"default": "no_shrink"}}))
    assert result.verdict == "pass"
    assert [c.declared for c in result.changes if c.kind == "migration_applied"] == [True]
    nothing = audit(before, after)  # no expectations at all: any difference fails, a migration too
    assert any("migration 2025_10_22_000001_step_1 applied" in c.message for c in nothing.failed_checks)
