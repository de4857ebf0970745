"""PostgreSQL: pg_catalog, so types read as the server spells them (format_type) and nothing is guessed."""

from __future__ import annotations

import math
import re
from collections import defaultdict

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection

from dbaudit.core.errors import DbauditError
from dbaudit.core.snapshot import Column, Definition, ForeignKey, Index, Server, Table
from dbaudit.live.dialects import Dialect, rows, sha256, table_ref

_FK_RULES = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}
_TRIGGER_SHAPE = re.compile(r"\b(BEFORE|AFTER|INSTEAD OF)\s+(.+?)\s+ON\s+(\S+)", re.IGNORECASE)

_COLUMNS = """
SELECT c.relname AS table_name, a.attname AS column_name,
       pg_catalog.row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum) AS position,
       pg_catalog.format_type(a.atttypid, a.atttypmod) AS column_type, NOT a.attnotnull AS nullable,
       pg_catalog.pg_get_expr(d.adbin, d.adrelid) AS column_default, a.attidentity AS identity,
       a.attgenerated AS generated, coll.collname AS collation, pg_catalog.col_description(c.oid, a.attnum) AS comment
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
LEFT JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_collation coll ON coll.oid = a.attcollation AND a.attcollation <> t.typcollation
WHERE n.nspname = :schema AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
"""

_INDEXES = """
SELECT t.relname AS table_name, i.relname AS index_name, ix.indisunique AS is_unique,
       ix.indisprimary AS is_primary, am.amname AS index_type,
       -- Plain columns by name (pg_get_indexdef would quote names that need it); expressions as written.
       ARRAY(SELECT CASE WHEN ix.indkey[k - 1] = 0 THEN pg_catalog.pg_get_indexdef(ix.indexrelid, k, true)
                         ELSE (SELECT a.attname::text FROM pg_attribute a
                               WHERE a.attrelid = ix.indrelid AND a.attnum = ix.indkey[k - 1]) END
             FROM pg_catalog.generate_series(1, ix.indnkeyatts) AS k ORDER BY k) AS columns,
       pg_catalog.pg_get_expr(ix.indpred, ix.indrelid) AS predicate
FROM pg_index ix
JOIN pg_class i ON i.oid = ix.indexrelid
JOIN pg_class t ON t.oid = ix.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN pg_am am ON am.oid = i.relam
WHERE n.nspname = :schema AND t.relkind IN ('r', 'p')
"""

_FOREIGN_KEYS = """
SELECT t.relname AS table_name, con.conname AS name, rn.nspname AS ref_schema, rt.relname AS ref_table,
       ARRAY(SELECT a.attname FROM pg_catalog.unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum ORDER BY k.ord) AS columns,
       ARRAY(SELECT a.attname FROM pg_catalog.unnest(con.confkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum ORDER BY k.ord)
             AS ref_columns,
       con.confdeltype AS on_delete, con.confupdtype AS on_update
FROM pg_constraint con
JOIN pg_class t ON t.oid = con.conrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN pg_class rt ON rt.oid = con.confrelid
JOIN pg_namespace rn ON rn.oid = rt.relnamespace
WHERE n.nspname = :schema AND con.contype = 'f'
"""

# Functions an extension installed belong to the extension, not to the audited schema.
_ROUTINES = """
SELECT p.proname AS name, p.prokind AS kind,
       pg_catalog.pg_get_function_identity_arguments(p.oid) AS arguments,
       pg_catalog.pg_get_function_result(p.oid) AS returns,
       CASE WHEN p.prokind IN ('f', 'p') THEN pg_catalog.pg_get_functiondef(p.oid) END AS definition
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = :schema
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
"""


class PostgreSQLDialect(Dialect):
    name = "postgresql"

    def begin_read_only(self, conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")

    def check_schema(self, conn: Connection, schema: str | None) -> None:
        if not rows(conn, "SELECT 1 FROM pg_namespace WHERE nspname = :schema", schema=schema):
            raise DbauditError(f"no schema {schema!r} in database {self.current_database(conn, None)}")  # type: ignore[arg-type]

    def set_statement_timeout(self, conn: Connection, seconds: float) -> None:
        # Rounded up: 0 would mean no limit at all.
        conn.exec_driver_sql(f"SET statement_timeout = {max(1, math.ceil(seconds * 1000))}")

    def set_lock_timeout(self, conn: Connection, seconds: float) -> None:
        conn.exec_driver_sql(f"SET lock_timeout = {max(1, math.ceil(seconds * 1000))}")

    def pin_search_path(self, conn: Connection, schema: str | None) -> None:
        # pg_catalog first (built-ins win every exact match), the audited schema next (so format_type and
        # pg_get_viewdef name its objects unqualified, as before), pg_temp last; every function dbaudit
        # calls is written pg_catalog.fn anyway, so no schema of a table owner can take over a call.
        path = f"pg_catalog, {quote_ident(schema or 'public')}, pg_temp"
        conn.exec_driver_sql("SELECT pg_catalog.set_config('search_path', %(path)s, true)", {"path": path})
        # Row-level security off: a table whose policies would hide rows from this account (and run the
        # policies' functions) fails the read with an error instead of counting fewer rows in silence.
        conn.exec_driver_sql("SELECT pg_catalog.set_config('row_security', 'off', true)")

    def current_database(self, conn: Connection, url: URL) -> str:
        return str(conn.exec_driver_sql("SELECT pg_catalog.current_database()").scalar_one())

    def default_schema(self, schema: str | None) -> str | None:
        return schema or "public"

    def count_rows(self, conn: Connection, table: str, schema: str | None) -> int:
        # pg_catalog.count: no count() in a user's schema can stand in (see pin_search_path).
        query = sa.select(sa.func.pg_catalog.count(sa.literal_column("*"))).select_from(table_ref(table, schema))
        return int(conn.execute(query).scalar_one())

    def server(self, conn: Connection) -> Server:
        version = str(conn.exec_driver_sql("SHOW server_version").scalar_one())
        return Server("postgresql", "PostgreSQL", version)

    def tables(self, conn: Connection, schema: str | None) -> dict[str, Table]:
        tables = {
            r["relname"]: Table(r["relname"], [])
            for r in rows(
                conn,
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = :schema AND c.relkind IN ('r', 'p') AND NOT c.relispartition",
                schema=schema,
            )
        }
        for r in rows(conn, _COLUMNS, schema=schema):
            if r["table_name"] in tables:
                tables[r["table_name"]].columns.append(_column(r))
        for table in tables.values():
            table.columns.sort(key=lambda c: c.position)
        for r in rows(conn, _INDEXES, schema=schema):
            if r["table_name"] not in tables:
                continue
            index = Index(
                r["index_name"], list(r["columns"]), bool(r["is_unique"]), bool(r["is_primary"]),
                str(r["index_type"]), r["predicate"],
            )
            tables[r["table_name"]].indexes.append(index)
            if index.primary:
                tables[r["table_name"]].primary_key = list(index.columns)
        for r in rows(conn, _FOREIGN_KEYS, schema=schema):
            if r["table_name"] not in tables:
                continue
            ref = r["ref_table"] if r["ref_schema"] == schema else f"{r['ref_schema']}.{r['ref_table']}"
            tables[r["table_name"]].foreign_keys.append(
                ForeignKey(r["name"], list(r["columns"]), ref, list(r["ref_columns"]),
                           _FK_RULES[r["on_delete"]], _FK_RULES[r["on_update"]])
            )
        return tables

    def views(self, conn: Connection, schema: str | None) -> dict[str, Definition]:
        found = rows(
            conn,
            "SELECT c.relname AS name, c.relkind AS kind, pg_catalog.pg_get_viewdef(c.oid, true) AS definition "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = :schema AND c.relkind IN ('v', 'm')",
            schema=schema,
        )
        return {
            r["name"]: Definition(
                r["name"], "view", sha256(r["definition"]),
                summary="MATERIALIZED VIEW" if r["kind"] == "m" else "VIEW",
            )
            for r in found
        }

    def triggers(self, conn: Connection, schema: str | None) -> dict[str, Definition]:
        found = rows(
            conn,
            "SELECT tg.tgname AS name, c.relname AS table_name, pg_catalog.pg_get_triggerdef(tg.oid) AS definition "
            "FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = :schema AND NOT tg.tgisinternal",
            schema=schema,
        )
        result = {}
        for r in found:
            shape = _TRIGGER_SHAPE.search(r["definition"])
            summary = f"{shape.group(1)} {shape.group(2)} ON {r['table_name']}" if shape else ""
            # The same trigger name may exist on two tables in PostgreSQL.
            key = f"{r['table_name']}.{r['name']}"
            result[key] = Definition(key, "trigger", sha256(r["definition"]), summary=summary, table=r["table_name"])
        return result

    def routines(self, conn: Connection, schema: str | None) -> dict[str, Definition]:
        kinds = {"f": "function", "p": "procedure", "a": "aggregate", "w": "window"}
        result = {}
        overloads: dict[str, int] = defaultdict(int)
        for r in rows(conn, _ROUTINES, schema=schema):
            name = f"{r['name']}({r['arguments']})"
            overloads[name] += 1
            kind = kinds.get(r["kind"], "function")
            summary = f"{kind.upper()}({r['arguments']})" + (f" RETURNS {r['returns']}" if r["returns"] else "")
            result[name] = Definition(name, kind, sha256(summary, r["definition"]), summary=summary)
        return result


def quote_ident(name: str) -> str:
    """A PostgreSQL identifier in double quotes (for a setting's value, where no driver quoting applies)."""
    return '"' + name.replace('"', '""') + '"'


def _column(r: dict[str, object]) -> Column:
    extra = {"a": "identity always", "d": "identity by default"}.get(str(r["identity"] or ""), "")
    if r["generated"] == "s":
        extra = f"generated always as ({r['column_default']}) stored"
    return Column(
        name=str(r["column_name"]),
        position=int(r["position"]),  # type: ignore[call-overload]
        type=str(r["column_type"]),
        nullable=bool(r["nullable"]),
        default=None if r["generated"] == "s" else (None if r["column_default"] is None else str(r["column_default"])),
        extra=extra,
        collation=None if r["collation"] is None else str(r["collation"]),
        comment=str(r["comment"] or ""),
    )
