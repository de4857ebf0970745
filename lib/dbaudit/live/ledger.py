"""Reading the application's migrations ledger inside the snapshot's read-only transaction.

A ledger is recognised by its table name and the columns its tool creates (so a `migrations` table
that is not Laravel's is left alone). Each tool's table, from its source:
- Laravel `migrations(id, migration, batch)`: one row per applied migration; rollback deletes it.
- Django `django_migrations(id, app, name, applied)`: key (app, name); unapplying deletes it.
- Rails `schema_migrations(version)`: one row per applied version; rollback deletes it.
- Flyway `flyway_schema_history(installed_rank, version, script, type, checksum, success …)`: append-only;
  success = false is a failed run, an UNDO_* type undoes the version.
- Liquibase `DATABASECHANGELOG(ID, AUTHOR, FILENAME, ORDEREXECUTED, EXECTYPE, MD5SUM …)`: key
  FILENAME::ID::AUTHOR; rollback deletes the row, EXECTYPE FAILED is a failed change set.
- Alembic `alembic_version(version_num)`: only the current head(s), no history.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import quoted_name

from dbaudit.core.errors import DbauditError
from dbaudit.core.ledger import APPLIED, FAILED, UNDONE, Ledger, LedgerEntry
from dbaudit.core.snapshot import Table
from dbaudit.live.connect import AuditSession, describe_db_error
from dbaudit.live.dialects import table_ref

Row = Mapping[str, Any]


@dataclass(frozen=True)
class _Tool:
    tool: str
    table: str  # lower case; matched case-insensitively (Liquibase's is upper case on MySQL)
    columns: tuple[str, ...]  # read, and required to recognise it
    order: tuple[str, ...]  # the order entries were written in
    entry: Callable[[Row], LedgerEntry]
    history: bool = True


def _laravel(r: Row) -> LedgerEntry:
    return LedgerEntry(str(r["migration"]), _int(r["batch"]))


def _django(r: Row) -> LedgerEntry:
    return LedgerEntry(f"{r['app']}.{r['name']}", None, APPLIED, f"applied {r['applied']}")


def _rails(r: Row) -> LedgerEntry:
    return LedgerEntry(str(r["version"]))


def _flyway(r: Row) -> LedgerEntry:
    kind = str(r["type"] or "")
    status = UNDONE if kind.upper().startswith("UNDO") else APPLIED if _truthy(r["success"]) else FAILED
    name = str(r["script"])
    return LedgerEntry(name, _int(r["installed_rank"]), status, f"version {r['version']} {kind} checksum {r['checksum']}")


def _liquibase(r: Row) -> LedgerEntry:
    status = FAILED if str(r["exectype"]).upper() == "FAILED" else APPLIED
    return LedgerEntry(f"{r['filename']}::{r['id']}::{r['author']}", _int(r["orderexecuted"]), status,
                       f"{r['exectype']} md5 {r['md5sum']}")


def _alembic(r: Row) -> LedgerEntry:
    return LedgerEntry(str(r["version_num"]))


TOOLS = (
    _Tool("laravel", "migrations", ("id", "migration", "batch"), ("id",), _laravel),
    _Tool("django", "django_migrations", ("id", "app", "name", "applied"), ("id",), _django),
    _Tool("flyway", "flyway_schema_history", ("installed_rank", "version", "script", "type", "checksum", "success"),
          ("installed_rank",), _flyway),
    _Tool("liquibase", "databasechangelog", ("id", "author", "filename", "orderexecuted", "exectype", "md5sum"),
          ("orderexecuted",), _liquibase),
    _Tool("rails", "schema_migrations", ("version",), ("version",), _rails),
    _Tool("alembic", "alembic_version", ("version_num",), ("version_num",), _alembic, history=False),
)


def find_ledger(tables: Mapping[str, Table]) -> tuple[_Tool, Table] | None:
    """The first table that is a known tool's ledger, by name and columns."""
    by_name = {name.lower(): table for name, table in tables.items()}
    for tool in TOOLS:
        table = by_name.get(tool.table)
        if table is not None and set(tool.columns) <= {c.name.lower() for c in table.columns}:
            return tool, table
    return None


def read_ledger(session: AuditSession, tables: Mapping[str, Table]) -> Ledger | None:
    """The ledger's entries, in the order they were written; None when the database has none."""
    found = find_ledger(tables)
    if found is None:
        return None
    tool, table = found
    spelled = {c.name.lower(): c.name for c in table.columns}  # the catalog's own case

    def column(name: str) -> sa.Label[Any]:
        return sa.column(quoted_name(spelled[name], True)).label(name)

    query = sa.select(*[column(c) for c in tool.columns]).select_from(table_ref(table.name, session.schema)) \
        .order_by(*[sa.column(quoted_name(spelled[c], True)) for c in tool.order])
    try:
        rows = session.connection.execute(query).mappings().all()
    except DBAPIError as exc:
        raise DbauditError(f"reading the {tool.tool} migrations ledger {table.name}: {describe_db_error(exc)}") from None
    return Ledger(tool.tool, table.name, [tool.entry(dict(r)) for r in rows], tool.history)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _truthy(value: Any) -> bool:
    return value in (True, 1, "1", "t", "true", "TRUE", b"\x01")
