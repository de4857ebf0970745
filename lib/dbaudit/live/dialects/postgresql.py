"""PostgreSQL: pg_catalog, so types read as the server spells them (format_type) and nothing is guessed."""

from __future__ import annotations

import contextlib
import math
import re
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection

from dbaudit.core.errors import DbauditError
from dbaudit.core.snapshot import (
    CheckConstraint,
    Column,
    Definition,
    Extension,
    ForeignKey,
    Index,
    Partition,
    Policy,
    Sequence,
    Server,
    Table,
)
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
             FROM pg_catalog.generate_series(1, ix.indnatts) AS k ORDER BY k) AS columns,
       ix.indnkeyatts AS key_columns,
       -- per key column: bit 1 DESC, bit 2 NULLS FIRST (pg_index.indoption)
       ARRAY(SELECT ix.indoption[k - 1]::int FROM pg_catalog.generate_series(1, ix.indnkeyatts) AS k
             ORDER BY k) AS options,
       pg_catalog.to_jsonb(ix) OPERATOR(pg_catalog.->>) 'indnullsnotdistinct' AS nulls_not_distinct,
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
       con.confdeltype AS on_delete, con.confupdtype AS on_update,
       con.condeferrable AS deferrable, con.condeferred AS deferred
FROM pg_constraint con
JOIN pg_class t ON t.oid = con.conrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN pg_class rt ON rt.oid = con.confrelid
JOIN pg_namespace rn ON rn.oid = rt.relnamespace
WHERE n.nspname = :schema AND con.contype = 'f'
"""

_TABLES = """
SELECT c.relname, c.relpersistence AS persistence, c.reloptions AS reloptions,
       pg_catalog.obj_description(c.oid, 'pg_class') AS comment, c.relrowsecurity AS rls,
       c.relforcerowsecurity AS rls_forced,
       CASE WHEN c.relkind OPERATOR(pg_catalog.=) 'p' THEN pg_catalog.pg_get_partkeydef(c.oid) END AS partition_by
FROM pg_class c JOIN pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
WHERE n.nspname OPERATOR(pg_catalog.=) :schema AND c.relkind IN ('r', 'p') AND NOT c.relispartition
"""

_CHECKS = """
SELECT t.relname AS table_name, con.conname AS name, pg_catalog.pg_get_constraintdef(con.oid, true) AS clause
FROM pg_constraint con
JOIN pg_class t ON t.oid OPERATOR(pg_catalog.=) con.conrelid
JOIN pg_namespace n ON n.oid OPERATOR(pg_catalog.=) t.relnamespace
WHERE n.nspname OPERATOR(pg_catalog.=) :schema AND con.contype OPERATOR(pg_catalog.=) 'c'
ORDER BY con.conname
"""

_PARTITIONS = """
SELECT parent.relname AS table_name, child.relname AS name, cn.nspname AS child_schema,
       pg_catalog.pg_get_expr(child.relpartbound, child.oid) AS bound,
       CASE WHEN child.relkind OPERATOR(pg_catalog.=) 'p' THEN pg_catalog.pg_get_partkeydef(child.oid) END AS sub
FROM pg_inherits i
JOIN pg_class parent ON parent.oid OPERATOR(pg_catalog.=) i.inhparent
JOIN pg_namespace n ON n.oid OPERATOR(pg_catalog.=) parent.relnamespace
JOIN pg_class child ON child.oid OPERATOR(pg_catalog.=) i.inhrelid
JOIN pg_namespace cn ON cn.oid OPERATOR(pg_catalog.=) child.relnamespace
WHERE n.nspname OPERATOR(pg_catalog.=) :schema AND child.relispartition
ORDER BY child.relname
"""

_POLICIES = """
SELECT t.relname AS table_name, p.polname AS name, p.polcmd AS command, p.polpermissive AS permissive,
       ARRAY(SELECT CASE WHEN r.oid OPERATOR(pg_catalog.=) 0 THEN 'public' ELSE
                    (SELECT a.rolname::text FROM pg_roles a WHERE a.oid OPERATOR(pg_catalog.=) r.oid) END
             FROM pg_catalog.unnest(p.polroles) AS r(oid) ORDER BY 1) AS roles,
       pg_catalog.pg_get_expr(p.polqual, p.polrelid) AS using,
       pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) AS with_check
FROM pg_policy p
JOIN pg_class t ON t.oid OPERATOR(pg_catalog.=) p.polrelid
JOIN pg_namespace n ON n.oid OPERATOR(pg_catalog.=) t.relnamespace
WHERE n.nspname OPERATOR(pg_catalog.=) :schema
ORDER BY p.polname
"""

# The catch-all: every catalog row that shapes a table, rendered, so a difference no field models is seen.
# Not here on purpose: pg_index.indisclustered (CLUSTER sets it), relfilenode and statistics (VACUUM FULL,
# REINDEX), oids (a restore renumbers them), attoptions (servers keep their own bookkeeping there).
_DEFINITIONS = """
SELECT c.relname AS table_name, pg_catalog.concat_ws(E'\n',
  c.relkind, c.relpersistence, c.reloptions::text, am.amname, ts.spcname, c.relreplident, c.relrowsecurity,
  c.relforcerowsecurity, c.reloftype::regtype::text, pg_catalog.obj_description(c.oid, 'pg_class'),
  CASE WHEN c.relkind OPERATOR(pg_catalog.=) 'p' THEN pg_catalog.pg_get_partkeydef(c.oid) END,
  (SELECT pg_catalog.string_agg(pg_catalog.concat_ws(' ', a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod),
            a.attnotnull, pg_catalog.pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated, co.collname,
            a.attstorage, {compression}, a.attstattarget, a.attislocal,
            pg_catalog.col_description(c.oid, a.attnum)), E'\n' ORDER BY a.attnum)
     FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid OPERATOR(pg_catalog.=) a.attrelid
                              AND d.adnum OPERATOR(pg_catalog.=) a.attnum
     LEFT JOIN pg_collation co ON co.oid OPERATOR(pg_catalog.=) a.attcollation
     WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped),
  (SELECT pg_catalog.string_agg(pg_catalog.concat_ws(' ', con.conname, pg_catalog.pg_get_constraintdef(con.oid),
            con.conislocal), E'\n' ORDER BY con.conname)
     FROM pg_constraint con WHERE con.conrelid OPERATOR(pg_catalog.=) c.oid),
  (SELECT pg_catalog.string_agg(pg_catalog.pg_get_indexdef(ix.indexrelid), E'\n'
            ORDER BY pg_catalog.pg_get_indexdef(ix.indexrelid))
     FROM pg_index ix WHERE ix.indrelid OPERATOR(pg_catalog.=) c.oid),
  (SELECT pg_catalog.string_agg(i.inhparent::regclass::text, ',' ORDER BY i.inhseqno)
     FROM pg_inherits i WHERE i.inhrelid OPERATOR(pg_catalog.=) c.oid),
  (SELECT pg_catalog.string_agg(pg_catalog.concat_ws(' ', p.polname, p.polcmd, p.polpermissive, p.polroles::text,
            pg_catalog.pg_get_expr(p.polqual, p.polrelid), pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid)),
            E'\n' ORDER BY p.polname)
     FROM pg_policy p WHERE p.polrelid OPERATOR(pg_catalog.=) c.oid)
) AS definition
FROM pg_class c
JOIN pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
LEFT JOIN pg_am am ON am.oid OPERATOR(pg_catalog.=) c.relam
LEFT JOIN pg_tablespace ts ON ts.oid OPERATOR(pg_catalog.=) c.reltablespace
WHERE n.nspname OPERATOR(pg_catalog.=) :schema AND c.relkind IN ('r', 'p') AND NOT c.relispartition
"""

_SEQUENCES = """
SELECT c.relname AS name, pg_catalog.format_type(s.seqtypid, NULL) AS type, s.seqstart AS start,
       s.seqincrement AS increment, s.seqmin AS min, s.seqmax AS max, s.seqcycle AS cycle, s.seqcache AS cache,
       (SELECT pg_catalog.concat(CASE WHEN tn.nspname OPERATOR(pg_catalog.<>) :schema
                                      THEN pg_catalog.concat(tn.nspname, '.') END,
                                 t.relname, '.', a.attname, CASE WHEN d.deptype OPERATOR(pg_catalog.=) 'i'
                                                                 THEN ' (identity)' END)
          FROM pg_depend d
          JOIN pg_class t ON t.oid OPERATOR(pg_catalog.=) d.refobjid
          JOIN pg_namespace tn ON tn.oid OPERATOR(pg_catalog.=) t.relnamespace
          JOIN pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) d.refobjid
                             AND a.attnum OPERATOR(pg_catalog.=) d.refobjsubid
          WHERE d.classid OPERATOR(pg_catalog.=) 'pg_class'::regclass AND d.objid OPERATOR(pg_catalog.=) c.oid
            AND d.refclassid OPERATOR(pg_catalog.=) 'pg_class'::regclass AND d.deptype IN ('a', 'i')
          LIMIT 1) AS owned_by,
       ps.last_value
FROM pg_sequence s
JOIN pg_class c ON c.oid OPERATOR(pg_catalog.=) s.seqrelid
JOIN pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
LEFT JOIN pg_sequences ps ON ps.schemaname OPERATOR(pg_catalog.=) n.nspname
                         AND ps.sequencename OPERATOR(pg_catalog.=) c.relname
WHERE n.nspname OPERATOR(pg_catalog.=) :schema
"""

# User types: enums, domains, free-standing composites and ranges; not a table's row type, not the array
# and multirange types PostgreSQL makes for each, not what an extension installed.
_TYPES = """
SELECT t.typname AS name, t.typtype AS kind,
       CASE t.typtype
         WHEN 'e' THEN (SELECT pg_catalog.string_agg(pg_catalog.quote_literal(e.enumlabel), ', '
                                                     ORDER BY e.enumsortorder)
                        FROM pg_enum e WHERE e.enumtypid OPERATOR(pg_catalog.=) t.oid)
         WHEN 'd' THEN pg_catalog.concat_ws(' ', pg_catalog.format_type(t.typbasetype, t.typtypmod),
                         (SELECT pg_catalog.concat('COLLATE ', co.collname) FROM pg_collation co
                          WHERE co.oid OPERATOR(pg_catalog.=) t.typcollation
                            AND t.typcollation OPERATOR(pg_catalog.<>) (SELECT b.typcollation FROM pg_type b
                                                   WHERE b.oid OPERATOR(pg_catalog.=) t.typbasetype)),
                         CASE WHEN t.typnotnull THEN 'NOT NULL' END,
                         CASE WHEN t.typdefault IS NOT NULL THEN pg_catalog.concat('DEFAULT ', t.typdefault) END,
                         (SELECT pg_catalog.string_agg(pg_catalog.concat('CONSTRAINT ', con.conname, ' ',
                                                       pg_catalog.pg_get_constraintdef(con.oid, true)), ' '
                                                       ORDER BY con.conname)
                          FROM pg_constraint con WHERE con.contypid OPERATOR(pg_catalog.=) t.oid))
         WHEN 'c' THEN (SELECT pg_catalog.string_agg(pg_catalog.concat_ws(' ', pg_catalog.quote_ident(a.attname),
                                                     pg_catalog.format_type(a.atttypid, a.atttypmod)), ', '
                                                     ORDER BY a.attnum)
                        FROM pg_attribute a WHERE a.attrelid OPERATOR(pg_catalog.=) t.typrelid
                          AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped)
         WHEN 'r' THEN (SELECT pg_catalog.concat('subtype = ', pg_catalog.format_type(r.rngsubtype, NULL))
                        FROM pg_range r WHERE r.rngtypid OPERATOR(pg_catalog.=) t.oid)
       END AS definition,
       pg_catalog.obj_description(t.oid, 'pg_type') AS comment
FROM pg_type t
JOIN pg_namespace n ON n.oid OPERATOR(pg_catalog.=) t.typnamespace
LEFT JOIN pg_class c ON c.oid OPERATOR(pg_catalog.=) t.typrelid
WHERE n.nspname OPERATOR(pg_catalog.=) :schema AND t.typtype IN ('e', 'd', 'c', 'r')
  AND (t.typtype OPERATOR(pg_catalog.<>) 'c' OR c.relkind OPERATOR(pg_catalog.=) 'c')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid OPERATOR(pg_catalog.=) t.oid
                  AND d.deptype OPERATOR(pg_catalog.=) 'e')
"""
_TYPE_KINDS = {"e": "enum", "d": "domain", "c": "composite", "r": "range"}
_POLICY_COMMANDS = {"r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE", "*": "ALL"}
_TRIGGER_STATES = {"O": "ENABLED", "D": "DISABLED", "R": "ENABLE REPLICA", "A": "ENABLE ALWAYS"}
# Rendered text depends on these session settings (defaults, constants, view bodies): pinned while reading.
_FIXED_SETTINGS = {"DateStyle": "ISO, MDY", "IntervalStyle": "postgres", "TimeZone": "UTC",
                   "extra_float_digits": "1", "bytea_output": "hex"}

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
  -- nor those PostgreSQL made for a type (a range type's constructors): they belong to the type
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                  AND d.refclassid = 'pg_type'::regclass AND d.deptype = 'i')
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

    @contextlib.contextmanager
    def catalog_scope(self, conn: Connection, schema: str | None = None) -> Iterator[None]:
        """Read the catalog under a fixed search_path and output settings, then put the session's back.

        pg_get_expr, format_type and pg_get_viewdef qualify a name by whether the search_path finds it, and
        print constants by DateStyle, TimeZone, extra_float_digits …; a role's or database's own settings
        would otherwise make two snapshots of one schema differ. pg_catalog comes first so nothing the
        audited schema holds shadows a built-in; the audited schema comes next so its own names print
        unqualified, as they did before, and a schema restored under another name compares equal."""
        names = ["search_path", *_FIXED_SETTINGS]
        saved = {n: rows(conn, "SELECT pg_catalog.current_setting(:n) AS v", n=n)[0]["v"] for n in names}
        path = rows(conn, "SELECT pg_catalog.concat('pg_catalog, ', pg_catalog.quote_ident(:s), ', pg_temp') AS v",
                    s=schema or "public")[0]["v"]
        for name, value in {"search_path": path, **_FIXED_SETTINGS}.items():
            _set_local(conn, name, value)
        yield
        # Not in a finally: after an error the transaction is aborted, the settings go with it, and a SET
        # would only replace the real error (a lock wait, a timeout) with "current transaction is aborted".
        for name, value in saved.items():
            _set_local(conn, name, value)

    def extensions(self, conn: Connection) -> dict[str, Extension]:
        found = rows(conn, "SELECT e.extname AS name, e.extversion AS version, n.nspname AS schema "
                           "FROM pg_extension e JOIN pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace")
        return {r["name"]: Extension(r["name"], r["version"], r["schema"]) for r in found}

    def sequences(self, conn: Connection, schema: str | None) -> dict[str, Sequence]:
        return {
            r["name"]: Sequence(r["name"], r["type"], int(r["start"]), int(r["increment"]), int(r["min"]),
                                int(r["max"]), bool(r["cycle"]), int(r["cache"]), r["owned_by"],
                                None if r["last_value"] is None else int(r["last_value"]))
            for r in rows(conn, _SEQUENCES, schema=schema)
        }

    def types(self, conn: Connection, schema: str | None) -> dict[str, Definition]:
        result = {}
        for r in rows(conn, _TYPES, schema=schema):
            kind = _TYPE_KINDS[r["kind"]]
            text = f"{kind.upper()} ({r['definition'] or ''})" if kind != "domain" else f"DOMAIN {r['definition']}"
            result[r["name"]] = Definition(r["name"], kind, sha256(text, r["comment"]), summary=text)
        return result

    def tables(self, conn: Connection, schema: str | None) -> dict[str, Table]:
        tables = {r["relname"]: _table(r) for r in rows(conn, _TABLES, schema=schema)}
        for r in rows(conn, _COLUMNS, schema=schema):
            if r["table_name"] in tables:
                tables[r["table_name"]].columns.append(_column(r))
        for table in tables.values():
            table.columns.sort(key=lambda c: c.position)
        for r in rows(conn, _INDEXES, schema=schema):
            if r["table_name"] not in tables:
                continue
            index = _index(r)
            tables[r["table_name"]].indexes.append(index)
            if index.primary:
                tables[r["table_name"]].primary_key = list(index.columns)
        for r in rows(conn, _FOREIGN_KEYS, schema=schema):
            if r["table_name"] not in tables:
                continue
            ref = r["ref_table"] if r["ref_schema"] == schema else f"{r['ref_schema']}.{r['ref_table']}"
            tables[r["table_name"]].foreign_keys.append(
                ForeignKey(r["name"], list(r["columns"]), ref, list(r["ref_columns"]),
                           _FK_RULES[r["on_delete"]], _FK_RULES[r["on_update"]], _deferrable(r))
            )
        self._table_objects(conn, schema, tables)
        return tables

    def _table_objects(self, conn: Connection, schema: str | None, tables: dict[str, Table]) -> None:
        """CHECK constraints, partitions, RLS policies and the catch-all definition of each table."""
        for r in rows(conn, _CHECKS, schema=schema):
            if r["table_name"] in tables:
                tables[r["table_name"]].checks.append(CheckConstraint(r["name"], r["clause"]))
        for r in rows(conn, _PARTITIONS, schema=schema):
            if r["table_name"] in tables:
                name = r["name"] if r["child_schema"] == schema else f"{r['child_schema']}.{r['name']}"
                sub = f"PARTITION BY {r['sub']}" if r["sub"] else ""
                tables[r["table_name"]].partitions.append(Partition(name, r["bound"], sub))
        for r in rows(conn, _POLICIES, schema=schema):
            if r["table_name"] in tables:
                tables[r["table_name"]].policies.append(Policy(
                    r["name"], _POLICY_COMMANDS.get(r["command"], str(r["command"])), bool(r["permissive"]),
                    list(r["roles"]), r["using"], r["with_check"]))
        # attcompression is PostgreSQL 14's; before it, there is nothing to compress differently.
        compression = "a.attcompression" if _version_num(conn) >= 140000 else "NULL"
        for r in rows(conn, _DEFINITIONS.replace("{compression}", compression), schema=schema):
            if r["table_name"] in tables:
                tables[r["table_name"]].definition = sha256(r["definition"])

    def views(self, conn: Connection, schema: str | None) -> dict[str, Definition]:
        found = rows(
            conn,
            "SELECT c.relname AS name, c.relkind AS kind, pg_catalog.pg_get_viewdef(c.oid, true) AS definition, "
            "c.reloptions AS options FROM pg_class c JOIN pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace "
            "WHERE n.nspname OPERATOR(pg_catalog.=) :schema AND c.relkind IN ('v', 'm')",
            schema=schema,
        )
        return {
            r["name"]: Definition(
                r["name"], "view", sha256(r["definition"]),
                summary="MATERIALIZED VIEW" if r["kind"] == "m" else "VIEW",
                # WITH CHECK OPTION, security_barrier, security_invoker live in reloptions, not in the body
                options=", ".join(sorted(r["options"] or [])),
            )
            for r in found
        }

    def triggers(self, conn: Connection, schema: str | None) -> dict[str, Definition]:
        found = rows(
            conn,
            "SELECT tg.tgname AS name, c.relname AS table_name, pg_catalog.pg_get_triggerdef(tg.oid) AS definition, "
            "tg.tgenabled AS enabled "
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
            state = _TRIGGER_STATES.get(str(r["enabled"]), str(r["enabled"]))  # ALTER TABLE … DISABLE TRIGGER
            result[key] = Definition(key, "trigger", sha256(r["definition"]), summary=summary, table=r["table_name"],
                                     options=state)
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


def _version_num(conn: Connection) -> int:
    return int(conn.exec_driver_sql("SHOW server_version_num").scalar_one())


def _set_local(conn: Connection, name: str, value: str) -> None:
    rows(conn, "SELECT pg_catalog.set_config(:n, :v, true) AS v", n=name, v=value)


def _table(r: dict[str, Any]) -> Table:
    options = ["UNLOGGED"] if r["persistence"] == "u" else []
    options += sorted(r["reloptions"] or [])
    security = ("enabled, forced" if r["rls_forced"] else "enabled") if r["rls"] else ("forced" if r["rls_forced"] else "")
    return Table(r["relname"], [], comment=r["comment"] or "", options=", ".join(options),
                 partition_by=r["partition_by"], row_security=security)


def _index(r: dict[str, Any]) -> Index:
    keys = int(r["key_columns"])
    columns = [_ordered(c, o) for c, o in zip(r["columns"][:keys], r["options"], strict=False)]
    return Index(r["index_name"], columns, bool(r["is_unique"]), bool(r["is_primary"]), str(r["index_type"]),
                 r["predicate"], include=list(r["columns"][keys:]),
                 nulls_not_distinct=r["nulls_not_distinct"] == "true")


def _ordered(column: str, option: int) -> str:
    """A key column with its order as CREATE INDEX spells it; the defaults (ASC, NULLS LAST) unsaid."""
    descending, nulls_first = bool(option & 1), bool(option & 2)
    if descending:
        return f"{column} DESC" if nulls_first else f"{column} DESC NULLS LAST"
    return f"{column} NULLS FIRST" if nulls_first else column


def _deferrable(r: dict[str, Any]) -> str:
    if not r["deferrable"]:
        return ""
    return "DEFERRABLE INITIALLY DEFERRED" if r["deferred"] else "DEFERRABLE"
