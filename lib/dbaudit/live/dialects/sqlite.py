"""SQLite: PRAGMA table-valued functions over sqlite_schema; types are as declared in CREATE TABLE."""

from __future__ import annotations

import re
import sqlite3
import time
from collections import defaultdict

from sqlalchemy.engine import URL, Connection

from dbaudit.core.snapshot import WITHOUT_ROWID, CheckConstraint, Column, Definition, ForeignKey, Index, Server, Table
from dbaudit.live.dialects import Dialect, rows, sha256
from dbaudit.live.dialects.sqlite_sql import compact, normalise, read_index, read_table

_HIDDEN = {0: "", 1: "hidden", 2: "generated virtual", 3: "generated stored"}
# Table options after the closing parenthesis: WITHOUT ROWID, STRICT, in either order.
_WITHOUT_ROWID = re.compile(r"\)\s*(?:STRICT\s*,\s*)?WITHOUT\s+ROWID\s*(?:,\s*STRICT\s*)?;?\s*$", re.IGNORECASE)
_ORDER = re.compile(r"\s*(?<![\w$])(ASC|DESC)$", re.IGNORECASE)
_TRIGGER_SHAPE = re.compile(
    r"\b(BEFORE|AFTER|INSTEAD\s+OF)?\s*(INSERT|DELETE|UPDATE(?:\s+OF\s+[^)]*?)?)\s+ON\s+", re.IGNORECASE
)


class SQLiteDialect(Dialect):
    name = "sqlite"

    def begin_read_only(self, conn: Connection) -> None:
        # query_only makes even a metric query that tries to write fail, on top of the read-only open.
        conn.exec_driver_sql("PRAGMA query_only = ON")
        conn.exec_driver_sql("BEGIN")

    def set_statement_timeout(self, conn: Connection, seconds: float) -> None:
        # SQLite has no server-side timeout; its progress handler can interrupt a long statement.
        deadline: list[float] = [0.0]
        raw = conn.connection.driver_connection

        def started() -> None:
            deadline[0] = time.monotonic() + seconds

        def check() -> int:
            if not deadline[0]:
                started()
            return 1 if time.monotonic() > deadline[0] else 0

        raw.set_trace_callback(lambda _sql: started())  # type: ignore[union-attr]
        raw.set_progress_handler(check, 10_000)  # type: ignore[union-attr]

    def current_database(self, conn: Connection, url: URL) -> str:
        path = conn.exec_driver_sql("SELECT file FROM pragma_database_list WHERE name = 'main'").scalar()
        return str(path or url.database or ":memory:")

    def server(self, conn: Connection) -> Server:
        return Server("sqlite", "SQLite", sqlite3.sqlite_version)

    def tables(self, conn: Connection, schema: str | None) -> dict[str, Table]:
        found = rows(conn, "SELECT name, sql FROM sqlite_schema "
                           "WHERE type = 'table' AND name NOT LIKE 'sqlite|_%' ESCAPE '|'")
        index_sql = rows(conn, "SELECT name, tbl_name, sql FROM sqlite_schema WHERE type = 'index'")
        written = {str(r["name"]): r["sql"] for r in index_sql}
        tables = {str(r["name"]): self._table(conn, str(r["name"]), r["sql"], written) for r in found}
        for r in found:
            if _WITHOUT_ROWID.search(str(r["sql"] or "")):
                tables[str(r["name"])].engine = WITHOUT_ROWID  # its key is not the rowid: see fingerprint.integer_lead
            # The catch-all: the CREATE statements as SQLite keeps them, spacing outside literals aside.
            own = sorted(compact(i["sql"]) for i in index_sql if i["tbl_name"] == r["name"] and i["sql"])
            tables[str(r["name"])].definition = sha256(compact(r["sql"]), *own)
        return tables

    def _table(self, conn: Connection, name: str, sql: str | None = None,
               index_sql: dict[str, str | None] | None = None) -> Table:
        info = rows(conn, "SELECT * FROM pragma_table_xinfo(:t) ORDER BY cid", t=name)
        text = read_table(sql)
        columns = [
            Column(
                name=c["name"], position=i, type=c["type"] or "", nullable=not c["notnull"] and not c["pk"],
                default=c["dflt_value"], extra=_HIDDEN.get(int(c["hidden"]), ""),
                collation=text.collations.get(c["name"]),
            )
            for i, c in enumerate(info, start=1)
        ]
        primary_key = [c["name"] for c in sorted((c for c in info if c["pk"]), key=lambda c: c["pk"])]
        indexes = [self._index(conn, r, index_sql or {})
                   for r in rows(conn, "SELECT * FROM pragma_index_list(:t)", t=name)]
        if primary_key and not any(i.primary for i in indexes):
            # A rowid alias (INTEGER PRIMARY KEY) has no index entry; record the key the same way.
            indexes.append(Index("PRIMARY", primary_key, unique=True, primary=True))
        table = Table(name, columns, indexes, self._foreign_keys(conn, name), primary_key,
                      options="STRICT" if text.strict else "")
        table.checks = [CheckConstraint(n, clause) for n, clause in text.checks]
        return table

    def _index(self, conn: Connection, r: dict[str, object], index_sql: dict[str, str | None]) -> Index:
        parts = rows(conn, "SELECT * FROM pragma_index_xinfo(:i) WHERE key = 1 ORDER BY seqno", i=r["name"])
        written = read_index(index_sql.get(str(r["name"])))
        columns = [self._key(p, written.columns[i] if written and i < len(written.columns) else None)
                   for i, p in enumerate(parts)]
        primary = r["origin"] == "pk"
        predicate = (written.where if written and written.where else "partial") if r["partial"] else None
        return Index("PRIMARY" if primary else str(r["name"]), columns, bool(r["unique"]), primary,
                     predicate=predicate)

    @staticmethod
    def _key(part: dict[str, object], written: str | None) -> str:
        """A key column by name (with a collation other than BINARY, and DESC); an expression as written."""
        if part["name"] is None:
            text = _ORDER.sub("", written) if written else "(expression)"
        else:
            text = str(part["name"])
            if str(part["coll"] or "BINARY").upper() != "BINARY":
                text += f" COLLATE {str(part['coll']).upper()}"
        return f"{text} DESC" if part["desc"] else text

    def _foreign_keys(self, conn: Connection, table: str) -> list[ForeignKey]:
        grouped: dict[int, list[dict[str, object]]] = defaultdict(list)
        for r in rows(conn, "SELECT * FROM pragma_foreign_key_list(:t) ORDER BY id, seq", t=table):
            grouped[int(r["id"])].append(r)
        keys = []
        for parts in grouped.values():
            columns = [str(p["from"]) for p in parts]
            ref_table = str(parts[0]["table"])
            ref_columns = [str(p["to"]) for p in parts if p["to"] is not None]
            if len(ref_columns) != len(parts):
                # `REFERENCES parent` without a column list: SQLite reports `to` as NULL and means
                # the parent's primary key, so name those columns (an empty name breaks every join).
                ref_columns = self._primary_key_columns(conn, ref_table)
            # SQLite keeps no constraint names; derive a stable one from what the key connects.
            keys.append(ForeignKey(
                f"fk({','.join(columns)})->{ref_table}", columns, ref_table, ref_columns,
                str(parts[0]["on_delete"]), str(parts[0]["on_update"]),
            ))
        return keys

    def _primary_key_columns(self, conn: Connection, table: str) -> list[str]:
        parts = rows(conn, "SELECT name FROM pragma_table_info(:t) WHERE pk > 0 ORDER BY pk", t=table)
        return [str(p["name"]) for p in parts]

    def views(self, conn: Connection, schema: str | None) -> dict[str, Definition]:
        return {
            r["name"]: Definition(r["name"], "view", sha256(_normalise(r["sql"])), summary="VIEW")
            for r in rows(conn, "SELECT name, sql FROM sqlite_schema WHERE type = 'view'")
        }

    def triggers(self, conn: Connection, schema: str | None) -> dict[str, Definition]:
        result = {}
        for r in rows(conn, "SELECT name, tbl_name, sql FROM sqlite_schema WHERE type = 'trigger'"):
            shape = _TRIGGER_SHAPE.search(r["sql"] or "")
            timing = (shape.group(1) or "BEFORE").upper() if shape else ""
            event = shape.group(2).upper() if shape else ""
            result[r["name"]] = Definition(
                r["name"], "trigger", sha256(_normalise(r["sql"])),
                summary=f"{timing} {event} ON {r['tbl_name']}".strip(), table=r["tbl_name"],
            )
        return result

    def routines(self, conn: Connection, schema: str | None) -> dict[str, Definition]:
        return {}  # SQLite has no stored routines


def _normalise(sql: str | None) -> str:
    # Whitespace inside string literals is part of what a view or trigger does: it is kept.
    return normalise(sql)
