"""MySQL and MariaDB: information_schema, read in bulk (one query per catalog table, not per table)."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from typing import Any

from sqlalchemy.engine import URL, Connection

from dbaudit.core import secrets
from dbaudit.core.errors import DbauditError
from dbaudit.core.snapshot import (
    CheckConstraint,
    Column,
    Definition,
    ForeignKey,
    Index,
    Partition,
    Sequence,
    Server,
    Table,
)
from dbaudit.live.dialects import Dialect, as_text, rows, sha256

# MySQL 8 marks every expression default this way; it carries no information of its own.
_NOISE_EXTRA = re.compile(r"\bDEFAULT_GENERATED\b\s*", re.IGNORECASE)
_IDENT_CHAIN = re.compile(r"`(?:[^`]|``)+`(?:\.`(?:[^`]|``)+`)*")
# The AUTO_INCREMENT counter in SHOW CREATE TABLE moves with inserts: a measurement, not the definition.
_AUTO_INCREMENT = re.compile(r" AUTO_INCREMENT=\d+")
# CREATE_OPTIONS words that other fields already model (partition_by) or that are not options.
_NOT_OPTIONS = {"partitioned"}


class MySQLDialect(Dialect):
    name = "mysql"

    def begin_read_only(self, conn: Connection) -> None:
        conn.exec_driver_sql("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        conn.exec_driver_sql("SET SESSION TRANSACTION READ ONLY")
        conn.exec_driver_sql("START TRANSACTION READ ONLY, WITH CONSISTENT SNAPSHOT")

    def set_statement_timeout(self, conn: Connection, seconds: float) -> None:
        # Rounded up to whole milliseconds: 0 would mean no limit at all.
        milliseconds = max(1, math.ceil(seconds * 1000))
        if is_mariadb(conn):
            conn.exec_driver_sql(f"SET SESSION max_statement_time = {milliseconds / 1000:.3f}")
        else:  # MySQL: milliseconds, and it applies to SELECT only, which is all an audit runs
            conn.exec_driver_sql(f"SET SESSION MAX_EXECUTION_TIME = {milliseconds}")

    def set_lock_timeout(self, conn: Connection, seconds: float) -> None:
        # Whole seconds, rounded up (minimum 1): metadata locks (LOCK TABLES, ALTER) and InnoDB row locks.
        whole = max(1, math.ceil(seconds))
        conn.exec_driver_sql(f"SET SESSION lock_wait_timeout = {whole}")
        conn.exec_driver_sql(f"SET SESSION innodb_lock_wait_timeout = {whole}")

    def current_database(self, conn: Connection, url: URL) -> str:
        database = conn.exec_driver_sql("SELECT DATABASE()").scalar()
        if not database:
            raise DbauditError(f"the URL names no database: add /DBNAME to "
                               f"{secrets.mask_url(url.render_as_string(hide_password=False))}")
        return str(database)

    def default_schema(self, schema: str | None) -> str | None:
        return None  # MySQL's schema is the database itself

    def server(self, conn: Connection) -> Server:
        version = server_version(conn)
        return Server("mysql", product_of(version), version)

    def auto_increments(self, conn: Connection) -> dict[str, int | None]:
        if not is_mariadb(conn):
            # MySQL 8 serves information_schema.TABLES from a cache (a day old by default) unless told not to.
            conn.exec_driver_sql("SET SESSION information_schema_stats_expiry = 0")
        found = rows(conn, "SELECT TABLE_NAME, AUTO_INCREMENT FROM information_schema.TABLES "
                           "WHERE TABLE_SCHEMA = DATABASE() AND AUTO_INCREMENT IS NOT NULL")
        return {str(r["table_name"]): r["auto_increment"] for r in found}

    def tables(self, conn: Connection, schema: str | None) -> dict[str, Table]:
        db = _db(conn)
        mariadb = is_mariadb(conn)
        if not mariadb:
            conn.exec_driver_sql("SET SESSION information_schema_stats_expiry = 0")  # see auto_increments
        tables = {
            r["table_name"]: Table(
                r["table_name"], [], engine=r["engine"], collation=r["table_collation"],
                comment=as_text(r["table_comment"]) or "", options=_options(as_text(r["create_options"])),
                auto_increment=None if r["auto_increment"] is None else int(r["auto_increment"]),
            )
            for r in rows(
                conn,
                "SELECT TABLE_NAME, ENGINE, TABLE_COLLATION, TABLE_COMMENT, CREATE_OPTIONS, AUTO_INCREMENT "
                "FROM information_schema.TABLES "
                "WHERE TABLE_SCHEMA = :db AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')",
                db=db,
            )
        }
        for r in rows(conn, "SELECT * FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = :db", db=db):
            if r["table_name"] in tables:
                tables[r["table_name"]].columns.append(_column(r, mariadb))
        for table in tables.values():
            table.columns.sort(key=lambda c: c.position)
        for name, index in _indexes(conn, db):
            if name in tables:
                tables[name].indexes.append(index)
                if index.primary:
                    tables[name].primary_key = list(index.columns)
        for name, fk in _foreign_keys(conn, db):
            if name in tables:
                tables[name].foreign_keys.append(fk)
        for name, check in _checks(conn, db, mariadb):
            if name in tables:
                tables[name].checks.append(check)
        _partitions(conn, db, tables)
        for table in tables.values():
            table.definition = _definition(conn, table.name)
        return tables

    def sequences(self, conn: Connection, schema: str | None) -> dict[str, Sequence]:
        """MariaDB's sequences are tables of one row: read each (MySQL has none)."""
        names = [r["table_name"] for r in rows(
            conn, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = :db "
                  "AND TABLE_TYPE = 'SEQUENCE'", db=_db(conn))]
        result = {}
        for name in names:
            r = conn.exec_driver_sql(
                "SELECT next_not_cached_value, minimum_value, maximum_value, start_value, increment, cache_size, "
                f"cycle_option FROM {_quote(conn, name)}"
            ).mappings().one()
            result[name] = Sequence(name, "bigint", int(r["start_value"]), int(r["increment"]), int(r["minimum_value"]),
                                    int(r["maximum_value"]), bool(r["cycle_option"]), int(r["cache_size"]),
                                    last_value=int(r["next_not_cached_value"]))
        return result

    def events(self, conn: Connection, schema: str | None) -> dict[str, Definition]:
        db = _db(conn)
        result = {}
        for r in rows(conn, "SELECT * FROM information_schema.EVENTS WHERE EVENT_SCHEMA = :db", db=db):
            if r["event_type"] == "ONE TIME":
                schedule = f"AT {r['execute_at']}"
            else:
                schedule = f"EVERY {r['interval_value']} {r['interval_field']} STARTS {r['starts']}"
                schedule += f" ENDS {r['ends']}" if r["ends"] is not None else ""
            summary = f"{schedule} {r['status']} ON COMPLETION {r['on_completion']}"
            body = _unqualify(as_text(r["event_definition"]), db)
            result[r["event_name"]] = Definition(
                r["event_name"], "event", sha256(summary, body, as_text(r.get("event_comment"))), summary=summary,
                definer=str(r["definer"]),
            )
        return result

    def views(self, conn: Connection, schema: str | None) -> dict[str, Definition]:
        db = _db(conn)
        # SELECT *: MySQL's VIEWS has no ALGORITHM column, MariaDB's has.
        found = rows(conn, "SELECT * FROM information_schema.VIEWS WHERE TABLE_SCHEMA = :db", db=db)
        return {
            r["table_name"]: Definition(
                r["table_name"],
                "view",
                sha256(_unqualify(as_text(r["view_definition"]), db), r["check_option"], r["security_type"]),
                summary=f"SQL SECURITY {r['security_type']}",
                options=f"ALGORITHM={r['algorithm']}" if r.get("algorithm") else "",
                definer=str(r["definer"]),
            )
            for r in found
        }

    def triggers(self, conn: Connection, schema: str | None) -> dict[str, Definition]:
        db = _db(conn)
        found = rows(
            conn,
            "SELECT TRIGGER_NAME, EVENT_MANIPULATION, EVENT_OBJECT_TABLE, ACTION_TIMING, ACTION_STATEMENT, "
            "ACTION_ORDER, DEFINER FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = :db",
            db=db,
        )
        result = {}
        for r in found:
            summary = f"{r['action_timing']} {r['event_manipulation']} ON {r['event_object_table']}"
            body = _unqualify(as_text(r["action_statement"]), db)
            result[r["trigger_name"]] = Definition(
                r["trigger_name"], "trigger", sha256(summary, body), summary=summary, table=r["event_object_table"],
                # The order among triggers of one timing and event (FOLLOWS / PRECEDES): they run in it.
                options=f"ORDER {r['action_order']}", definer=str(r["definer"]),
            )
        return result

    def routines(self, conn: Connection, schema: str | None) -> dict[str, Definition]:
        db = _db(conn)
        params: dict[str, list[str]] = defaultdict(list)
        for p in rows(
            conn,
            "SELECT SPECIFIC_NAME, ORDINAL_POSITION, PARAMETER_MODE, PARAMETER_NAME, DTD_IDENTIFIER "
            "FROM information_schema.PARAMETERS WHERE SPECIFIC_SCHEMA = :db AND ORDINAL_POSITION > 0 "
            "ORDER BY SPECIFIC_NAME, ORDINAL_POSITION",
            db=db,
        ):
            mode = f"{p['parameter_mode']} " if p["parameter_mode"] else ""
            params[p["specific_name"]].append(f"{mode}{p['parameter_name']} {as_text(p['dtd_identifier'])}")
        result = {}
        for r in rows(
            conn,
            "SELECT ROUTINE_NAME, ROUTINE_TYPE, DTD_IDENTIFIER, ROUTINE_DEFINITION, IS_DETERMINISTIC, "
            "SQL_DATA_ACCESS, SECURITY_TYPE, DEFINER FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = :db",
            db=db,
        ):
            name, kind = r["routine_name"], str(r["routine_type"]).lower()
            returns = f" RETURNS {as_text(r['dtd_identifier'])}" if kind == "function" else ""
            summary = f"{kind.upper()}({', '.join(params[name])}){returns}"
            body = as_text(r["routine_definition"])
            digest = None if body is None else sha256(
                summary, _unqualify(body, db), r["is_deterministic"], r["sql_data_access"], r["security_type"]
            )
            result[name] = Definition(name, kind, digest, summary=summary, definer=str(r["definer"]))
        return result


def server_version(conn: Connection) -> str:
    return str(conn.exec_driver_sql("SELECT VERSION()").scalar_one())


def product_of(version: str) -> str:
    """MariaDB or MySQL, from VERSION(): the one place dbaudit tells them apart."""
    return "MariaDB" if "mariadb" in version.lower() else "MySQL"


def is_mariadb(conn: Connection) -> bool:
    return product_of(server_version(conn)) == "MariaDB"


def _db(conn: Connection) -> str:
    return str(conn.exec_driver_sql("SELECT DATABASE()").scalar_one())


def _column(r: dict[str, Any], mariadb: bool) -> Column:
    default = as_text(r["column_default"])
    if mariadb and default == "NULL":
        default = None  # MariaDB spells "no default" on a nullable column as the expression NULL
    extra = _NOISE_EXTRA.sub("", as_text(r.get("extra")) or "").strip()
    expression = as_text(r.get("generation_expression"))
    if expression:
        extra = f"{extra} AS ({expression})".strip()
    return Column(
        name=r["column_name"],
        position=int(r["ordinal_position"]),
        type=as_text(r["column_type"]) or "",
        nullable=r["is_nullable"] == "YES",
        default=default,
        extra=extra,
        collation=r.get("collation_name"),
        comment=as_text(r.get("column_comment")) or "",
    )


def _indexes(conn: Connection, db: str) -> list[tuple[str, Index]]:
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows(
        conn,
        "SELECT * FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = :db "
        "ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX",
        db=db,
    ):
        grouped[(r["table_name"], r["index_name"])].append(r)
    result = []
    for (table, name), parts in grouped.items():
        columns = [_index_part(p) for p in parts]
        first = parts[0]
        index = Index(
            name=name,
            columns=columns,
            unique=int(first["non_unique"]) == 0,
            primary=name == "PRIMARY",
            type=str(first["index_type"] or ""),
            invisible=first.get("ignored") == "YES" or first.get("is_visible") == "NO",
        )
        result.append((table, index))
    return result


def _index_part(r: dict[str, Any]) -> str:
    column = r["column_name"] or f"({as_text(r.get('expression'))})"
    part = f"{column}({r['sub_part']})" if r.get("sub_part") else column
    return f"{part} DESC" if r.get("collation") == "D" else part


def _foreign_keys(conn: Connection, db: str) -> list[tuple[str, ForeignKey]]:
    found = rows(
        conn,
        "SELECT k.TABLE_NAME, k.CONSTRAINT_NAME, k.COLUMN_NAME, k.REFERENCED_TABLE_SCHEMA, "
        "k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME, r.UPDATE_RULE, r.DELETE_RULE "
        "FROM information_schema.KEY_COLUMN_USAGE k "
        "JOIN information_schema.REFERENTIAL_CONSTRAINTS r ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA "
        " AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME AND r.TABLE_NAME = k.TABLE_NAME "
        "WHERE k.TABLE_SCHEMA = :db AND k.REFERENCED_TABLE_NAME IS NOT NULL "
        "ORDER BY k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION",
        db=db,
    )
    grouped: dict[tuple[str, str], ForeignKey] = {}
    for r in found:
        key = (r["table_name"], r["constraint_name"])
        if key not in grouped:
            ref = r["referenced_table_name"]
            if r["referenced_table_schema"] != db:
                ref = f"{r['referenced_table_schema']}.{ref}"
            grouped[key] = ForeignKey(key[1], [], ref, [], r["delete_rule"], r["update_rule"])
        grouped[key].columns.append(r["column_name"])
        grouped[key].ref_columns.append(r["referenced_column_name"])
    return [(table, fk) for (table, _), fk in grouped.items()]


def _options(create_options: str | None) -> str:
    return " ".join(o for o in (create_options or "").split() if o.lower() not in _NOT_OPTIONS)


def _quote(conn: Connection, name: str) -> str:
    # quote_identifier also doubles `%`, which the driver's formatting of exec_driver_sql's () undoes
    return conn.dialect.identifier_preparer.quote_identifier(name)


def _definition(conn: Connection, table: str) -> str:
    """sha256 of SHOW CREATE TABLE without its AUTO_INCREMENT counter: the catch-all for what no field models."""
    found = conn.exec_driver_sql(f"SHOW CREATE TABLE {_quote(conn, table)}").one()
    return sha256(_AUTO_INCREMENT.sub("", as_text(found[1]) or ""))


def _checks(conn: Connection, db: str, mariadb: bool) -> list[tuple[str, CheckConstraint]]:
    if mariadb:  # MariaDB names checks per table (a column's check after the column), so TABLE_NAME is there
        sql = ("SELECT TABLE_NAME, CONSTRAINT_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS "
               "WHERE CONSTRAINT_SCHEMA = :db")
    else:
        sql = ("SELECT t.TABLE_NAME, c.CONSTRAINT_NAME, c.CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS c "
               "JOIN information_schema.TABLE_CONSTRAINTS t ON t.CONSTRAINT_SCHEMA = c.CONSTRAINT_SCHEMA "
               " AND t.CONSTRAINT_NAME = c.CONSTRAINT_NAME AND t.CONSTRAINT_TYPE = 'CHECK' "
               "WHERE c.CONSTRAINT_SCHEMA = :db")
    return [(r["table_name"], CheckConstraint(r["constraint_name"], _unqualify(as_text(r["check_clause"]), db) or ""))
            for r in rows(conn, sql, db=db)]


def _partitions(conn: Connection, db: str, tables: dict[str, Table]) -> None:
    found = rows(conn, "SELECT * FROM information_schema.PARTITIONS WHERE TABLE_SCHEMA = :db "
                       "AND PARTITION_NAME IS NOT NULL ORDER BY TABLE_NAME, PARTITION_ORDINAL_POSITION, "
                       "SUBPARTITION_ORDINAL_POSITION", db=db)
    subparts: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in found:
        table = tables.get(r["table_name"])
        if table is None:
            continue
        if table.partition_by is None:
            table.partition_by = _method(r["partition_method"], r["partition_expression"])
            if r["subpartition_method"]:
                table.partition_by += " SUBPARTITION BY " + _method(r["subpartition_method"],
                                                                   r["subpartition_expression"])
        if r["subpartition_name"]:
            subparts[(r["table_name"], r["partition_name"])].append(r["subpartition_name"])
        if not any(p.name == r["partition_name"] for p in table.partitions):
            table.partitions.append(Partition(r["partition_name"], _bound(r)))
    for (name, partition), names in subparts.items():
        for p in tables[name].partitions:
            if p.name == partition:
                p.subpartitions = ", ".join(names)


def _method(method: Any, expression: Any) -> str:
    return f"{method} ({as_text(expression) or ''})"


def _bound(r: dict[str, Any]) -> str:
    description = as_text(r["partition_description"])
    method = str(r["partition_method"] or "")
    if description is None:
        return ""
    if method.startswith("RANGE"):
        return f"VALUES LESS THAN ({description})"
    if method.startswith("LIST"):
        return f"VALUES IN ({description})"
    return description  # SYSTEM_TIME: CURRENT / HISTORY


def _unqualify(sql: str | None, db: str) -> str | None:
    """Drop the database qualifier MySQL writes into view bodies, so a restore under another name matches.

    MySQL spells columns `db`.`table`.`col` and tables `db`.`table`; only the leading part of such a
    chain is the database, so whole chains are rewritten rather than every `db`. occurrence.
    """
    if sql is None:
        return None
    quoted_db = "`" + db.replace("`", "``") + "`"

    def strip(match: re.Match[str]) -> str:
        chain = match.group(0)
        if chain.startswith(quoted_db + ".") and chain.count("`.`") in (1, 2):
            return chain[len(quoted_db) + 1 :]
        return chain

    return _IDENT_CHAIN.sub(strip, sql)
