"""Rollback triggers: the seed README's "execute rollback if …" list, evaluated against the live database.

Read-only, in one audit session: foreign-key orphans (for enforced keys and for relationships the
expectations declare but the schema does not enforce, like blazz's chats.workspace_id), duplicate
values under unique keys (a load with UNIQUE_CHECKS=0 can leave them), AUTO_INCREMENT counters behind
MAX(id), queue depth, failed_jobs growth and row loss on protected tables since a baseline snapshot.
Figures dbaudit cannot see (database CPU, webhook error rate) are passed in and judged against the
same thresholds. Settings live under `rollback:` in the expectations file (see README).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql import quoted_name

from dbaudit.audit.expectations import parse_expectations, read_yaml, section_list, section_mapping
from dbaudit.core.checks import Check, Judged, Status
from dbaudit.core.errors import DbauditError
from dbaudit.core.snapshot import Snapshot, Table, load_snapshot
from dbaudit.live.connect import AuditSession, audit_session

FORMAT_VERSION = 2  # 2: checks say `category` (was `trigger`), like every other check
KIND = "dbaudit.rollback"


@dataclass
class DeclaredKey:
    """A relationship or unique key the application relies on, whether or not the schema enforces it."""

    table: str
    columns: list[str]
    ref_table: str | None = None  # None for a unique key
    ref_columns: list[str] = field(default_factory=list)


@dataclass
class RollbackRules:
    foreign_keys: list[DeclaredKey] = field(default_factory=list)
    unique_keys: list[DeclaredKey] = field(default_factory=list)
    queue_table: str = "jobs"
    queue_max: int = 50000
    failed_jobs_table: str = "failed_jobs"
    failed_jobs_max_growth: int = 0
    protected: list[str] | None = None  # None: every table whose rows rule is not `any`
    unprotected: list[str] = field(default_factory=list)  # from the expectations' `rows: {any: […]}`
    cpu_max_percent: float = 90.0
    cpu_minutes: float = 5.0
    webhook_error_max_percent: float = 5.0


@dataclass
class TriggerCheck(Check):
    """A rollback trigger as a check: category fk_orphans, unique_violations, auto_increment, queue_depth,
    failed_jobs, data_loss, cpu or webhook; status fail means this trigger fires, roll back."""

    value: float | int | None = None
    limit: float | int | None = None


@dataclass
class External:
    """Figures from monitoring that the database cannot report itself."""

    cpu_percent: float | None = None
    cpu_minutes: float | None = None
    webhook_error_rate: float | None = None  # percent


@dataclass
class RollbackResult(Judged):
    format_version: int
    kind: str
    verdict: str  # pass: no trigger fired; fail: roll back
    title: str
    generated_at: str
    source: str
    database: str
    product: str
    version: str
    baseline: str | None
    checks: list[TriggerCheck]
    summary: dict[str, int]

    @property
    def fired(self) -> list[TriggerCheck]:
        """The triggers that call for a rollback."""
        return [c for c in self.checks if c.status == "fail"]


# --- the rules ---------------------------------------------------------------------------------------


def load_rules(path: str | os.PathLike[str] | None) -> RollbackRules:
    """The `rollback:` section of an expectations file; without a file, the seed README's thresholds."""
    if path is None:
        return RollbackRules()
    source = Path(path)
    data = read_yaml(source)
    expectations = parse_expectations(data, str(source))  # the rest of the file must be valid too
    rules = parse_rules((data or {}).get("rollback") or {}, str(source))
    rules.unprotected = [t for t, policy in expectations.rows.tables.items() if policy == "any"]
    return rules


def parse_rules(data: Any, source: str = "<rollback>") -> RollbackRules:
    if not isinstance(data, dict):
        raise DbauditError(f"{source}: rollback must be a mapping")
    known = {"foreign_keys", "unique_keys", "queue", "failed_jobs", "protected", "cpu", "webhook_error_rate"}
    unknown = set(data) - known
    if unknown:
        raise DbauditError(f"{source}: rollback: unknown key(s) {sorted(unknown)}; allowed: {sorted(known)}")
    where = f"{source}: rollback."
    queue, failed = section_mapping(data, "queue", where), section_mapping(data, "failed_jobs", where)
    cpu, webhook = section_mapping(data, "cpu", where), section_mapping(data, "webhook_error_rate", where)
    defaults = RollbackRules()
    protected = data.get("protected")
    if protected is not None and not (isinstance(protected, list) and all(isinstance(t, str) for t in protected)):
        raise DbauditError(f"{source}: rollback.protected must be a list of table names")
    return RollbackRules(
        foreign_keys=[_key(e, f"{source}: rollback.foreign_keys[{i}]", True)
                      for i, e in enumerate(section_list(data, "foreign_keys", where))],
        unique_keys=[_key(e, f"{source}: rollback.unique_keys[{i}]", False)
                     for i, e in enumerate(section_list(data, "unique_keys", where))],
        queue_table=str(queue.get("table", defaults.queue_table)),
        queue_max=_number(queue, "max", defaults.queue_max, source, "queue"),
        failed_jobs_table=str(failed.get("table", defaults.failed_jobs_table)),
        failed_jobs_max_growth=_number(failed, "max_growth", defaults.failed_jobs_max_growth, source, "failed_jobs"),
        protected=protected,
        cpu_max_percent=_number(cpu, "max_percent", defaults.cpu_max_percent, source, "cpu"),
        cpu_minutes=_number(cpu, "minutes", defaults.cpu_minutes, source, "cpu"),
        webhook_error_max_percent=_number(webhook, "max_percent", defaults.webhook_error_max_percent, source,
                                          "webhook_error_rate"),
    )


def _number(data: dict[str, Any], key: str, default: Any, source: str, section: str) -> Any:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DbauditError(f"{source}: rollback.{section}.{key} must be a number")
    return value


def _key(entry: Any, where: str, foreign: bool) -> DeclaredKey:
    needed = ("table", "columns", "ref_table", "ref_columns") if foreign else ("table", "columns")
    if not isinstance(entry, dict) or any(k not in entry for k in needed):
        raise DbauditError(f"{where}: needs {', '.join(needed)}")
    columns = [str(c) for c in _as_list(entry["columns"])]
    if not foreign:
        return DeclaredKey(str(entry["table"]), columns)
    refs = [str(c) for c in _as_list(entry["ref_columns"])]
    if len(refs) != len(columns):
        raise DbauditError(f"{where}: columns and ref_columns differ in length")
    return DeclaredKey(str(entry["table"]), columns, str(entry["ref_table"]), refs)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- evaluating --------------------------------------------------------------------------------------


def evaluate_triggers(
    url: str,
    expectations: str | os.PathLike[str] | None = None,
    *,
    baseline: str | os.PathLike[str] | Snapshot | None = None,
    external: External | None = None,
    rules: RollbackRules | None = None,
    title: str | None = None,
    schema: str | None = None,
    statement_timeout: float | None = None,
) -> RollbackResult:
    """Every rollback trigger against the database at `url` (its `schema` on PostgreSQL); the verdict
    fails when any one fires. `statement_timeout` (seconds) bounds each query on a busy production server."""
    rules = rules or load_rules(expectations)
    before = load_snapshot(baseline) if isinstance(baseline, (str, os.PathLike)) else baseline
    with audit_session(url, schema, statement_timeout) as session:
        tables = session.dialect.tables(session.connection, session.schema)
        server = session.dialect.server(session.connection)
        counts = _Counts(session)
        checks = [
            *_orphan_checks(session, tables, rules),
            *_unique_checks(session, tables, rules),
            *_auto_increment_checks(session, tables, server.product),
            _queue_check(counts, tables, rules),
            _failed_jobs_check(counts, tables, rules, before),
            *_data_loss_checks(counts, tables, rules, before),
        ]
        database = session.database
        source = session.masked_url
    checks += external_checks(external or External(), rules)
    fired = sum(1 for c in checks if c.status == "fail")
    return RollbackResult(
        format_version=FORMAT_VERSION, kind=KIND, verdict="fail" if fired else "pass",
        title=title or f"rollback triggers for {database}",
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"), source=source, database=database,
        product=server.product, version=server.version,
        baseline=os.fspath(baseline) if isinstance(baseline, (str, os.PathLike)) else None, checks=checks,
        summary={"checks": len(checks), "fired": fired, "skipped": sum(1 for c in checks if c.status == "skipped")},
    )


class _Counts:
    """Exact row counts, each read once."""

    def __init__(self, session: AuditSession) -> None:
        self.session = session
        self.cache: dict[str, int] = {}

    def __call__(self, table: str) -> int:
        if table not in self.cache:
            self.cache[table] = self.session.dialect.count_rows(self.session.connection, table, self.session.schema)
        return self.cache[table]


def _table(name: str, columns: list[str], schema: str | None, alias: str) -> Any:
    """A table reference whose name and columns the dialect always quotes."""
    cols: list[sa.ColumnClause[Any]] = [sa.column(quoted_name(c, True)) for c in columns]
    return sa.table(quoted_name(name, True), *cols, schema=quoted_name(schema, True) if schema else None).alias(alias)


def _foreign_keys(tables: dict[str, Table], rules: RollbackRules) -> list[tuple[DeclaredKey, bool]]:
    found: dict[tuple[str, tuple[str, ...], str, tuple[str, ...]], tuple[DeclaredKey, bool]] = {}
    for table in tables.values():
        for fk in table.foreign_keys:
            if fk.ref_table in tables:  # a key into another database is out of reach of this session
                key = DeclaredKey(table.name, fk.columns, fk.ref_table, fk.ref_columns)
                found[(table.name, tuple(fk.columns), fk.ref_table, tuple(fk.ref_columns))] = (key, True)
    for key in rules.foreign_keys:
        _require_columns(tables, key.table, key.columns)
        _require_columns(tables, key.ref_table or "", key.ref_columns)
        found.setdefault((key.table, tuple(key.columns), key.ref_table or "", tuple(key.ref_columns)), (key, False))
    return list(found.values())


def _require_columns(tables: dict[str, Table], table: str, columns: list[str]) -> None:
    if table not in tables:
        raise DbauditError(f"rollback: table {table!r} does not exist in the database")
    missing = [c for c in columns if tables[table].column(c) is None]
    if missing:
        raise DbauditError(f"rollback: table {table!r} has no column(s) {missing}")


def _orphan_checks(session: AuditSession, tables: dict[str, Table], rules: RollbackRules) -> list[TriggerCheck]:
    checks = []
    for key, enforced in _foreign_keys(tables, rules):
        orphans = count_orphans(session.connection, key, session.schema)
        label = "enforced" if enforced else "declared, not enforced"
        name = f"{key.table}({', '.join(key.columns)}) → {key.ref_table}({', '.join(key.ref_columns)})"
        message = f"{orphans:,} row(s) point at no {key.ref_table} row ({label})"
        checks.append(TriggerCheck("fk_orphans", name, "fail" if orphans else "pass", message, orphans, 0))
    return checks


def count_orphans(conn: Connection, key: DeclaredKey, schema: str | None) -> int:
    """Rows whose key columns are all set but match no referenced row (MATCH SIMPLE, as MySQL enforces)."""
    child = _table(key.table, key.columns, schema, "c")
    parent = _table(key.ref_table or "", key.ref_columns, schema, "p")
    user_typed = _user_typed(conn, schema, key.table, key.ref_table or "")
    match = sa.and_(*[_equal(conn, parent.c[r], child.c[c], (key.table, c) in user_typed or
                             (key.ref_table, r) in user_typed) for c, r in zip(key.columns, key.ref_columns)])
    query = (sa.select(_count(conn)).select_from(child)
             .where(*[child.c[c].is_not(None) for c in key.columns]).where(~sa.exists().where(match)))
    return int(conn.execute(query).scalar_one())


def _unique_keys(tables: dict[str, Table], rules: RollbackRules) -> list[tuple[DeclaredKey, str]]:
    found: dict[tuple[str, tuple[str, ...]], tuple[DeclaredKey, str]] = {}
    for table in tables.values():
        for index in table.indexes:
            plain = all(table.column(c) is not None for c in index.columns)  # no prefix or expression parts
            if index.unique and not index.primary and plain:
                found[(table.name, tuple(index.columns))] = (DeclaredKey(table.name, index.columns), index.name)
    for key in rules.unique_keys:
        _require_columns(tables, key.table, key.columns)
        found.setdefault((key.table, tuple(key.columns)), (key, "declared, not enforced"))
    return list(found.values())


def _unique_checks(session: AuditSession, tables: dict[str, Table], rules: RollbackRules) -> list[TriggerCheck]:
    checks = []
    for key, origin in _unique_keys(tables, rules):
        duplicated = count_duplicates(session.connection, key, session.schema)
        name = f"{key.table}({', '.join(key.columns)})"
        message = f"{duplicated:,} key value(s) held by more than one row ({origin})"
        checks.append(TriggerCheck("unique_violations", name, "fail" if duplicated else "pass", message, duplicated, 0))
    return checks


def count_duplicates(conn: Connection, key: DeclaredKey, schema: str | None) -> int:
    """Distinct non-NULL key values that more than one row holds."""
    table = _table(key.table, key.columns, schema, "t")
    cols = [table.c[c] for c in key.columns]
    groups = (sa.select(*cols).where(*[c.is_not(None) for c in cols]).group_by(*cols)
              .having(_count(conn) > 1).subquery("d"))
    return int(conn.execute(sa.select(_count(conn)).select_from(groups)).scalar_one())


def _user_typed(conn: Connection, schema: str | None, *tables: str) -> set[tuple[str, str]]:
    if conn.dialect.name != "postgresql":
        return set()
    from dbaudit.live.canonical import pg_user_typed_columns

    return {(t, c) for t in set(tables) for c in pg_user_typed_columns(conn, schema, t)}


def _equal(conn: Connection, a: Any, b: Any, user_typed: bool = False) -> Any:
    """a = b; on PostgreSQL never an operator or cast a table owner made: the built-in `=` by name, and for
    values of a user's type (an enum, a composite …) their output text, which needs neither."""
    if conn.dialect.name != "postgresql":
        return a == b
    if user_typed:
        a, b = sa.func.pg_catalog.concat(a), sa.func.pg_catalog.concat(b)
    return a.op("OPERATOR(pg_catalog.=)", is_comparison=True)(b)


def _count(conn: Connection) -> Any:
    return sa.func.pg_catalog.count(sa.literal_column("*")) if conn.dialect.name == "postgresql" else sa.func.count()


def _auto_increment_checks(session: AuditSession, tables: dict[str, Table], product: str) -> list[TriggerCheck]:
    counters = session.dialect.auto_increments(session.connection)
    if counters is None:
        return [TriggerCheck("auto_increment", "AUTO_INCREMENT", "skipped",
                             f"checked on MySQL/MariaDB only, not on {product}")]
    checks = []
    for name, table in sorted(tables.items()):
        column = next((c for c in table.columns if "auto_increment" in c.extra.lower()), None)
        counter = counters.get(name)
        if column is None or counter is None:
            continue
        ref = _table(name, [column.name], None, "t")
        highest = session.connection.execute(sa.select(sa.func.max(ref.c[column.name]))).scalar()
        counter = int(counter)
        behind = highest is not None and counter <= int(highest)
        message = f"next {column.name} {counter:,}, MAX({column.name}) {highest if highest is not None else '∅'}"
        checks.append(TriggerCheck("auto_increment", name, "fail" if behind else "pass",
                                   message + ("; the next insert collides" if behind else ""), counter, highest))
    return checks



def _queue_check(counts: _Counts, tables: dict[str, Table], rules: RollbackRules) -> TriggerCheck:
    table = rules.queue_table
    if table not in tables:
        return TriggerCheck("queue_depth", table, "skipped", f"no {table} table")
    depth = counts(table)
    status: Status = "fail" if depth > rules.queue_max else "pass"
    return TriggerCheck("queue_depth", table, status, f"{depth:,} queued jobs (limit {rules.queue_max:,})",
                        depth, rules.queue_max)


def _failed_jobs_check(counts: _Counts, tables: dict[str, Table], rules: RollbackRules,
                       before: Snapshot | None) -> TriggerCheck:
    table = rules.failed_jobs_table
    if table not in tables:
        return TriggerCheck("failed_jobs", table, "skipped", f"no {table} table")
    now = counts(table)
    was = before.tables[table].row_count if before and table in before.tables else None
    if was is None:
        return TriggerCheck("failed_jobs", table, "skipped", f"{now:,} failed jobs; no baseline to measure growth",
                            now, rules.failed_jobs_max_growth)
    growth = now - was
    status: Status = "fail" if growth > rules.failed_jobs_max_growth else "pass"
    return TriggerCheck("failed_jobs", table, status, f"{was:,} → {now:,} ({growth:+,}; limit "
                        f"+{rules.failed_jobs_max_growth:,})", growth, rules.failed_jobs_max_growth)


def _data_loss_checks(counts: _Counts, tables: dict[str, Table], rules: RollbackRules,
                      before: Snapshot | None) -> list[TriggerCheck]:
    if before is None:
        return [TriggerCheck("data_loss", "protected tables", "skipped", "no baseline snapshot (--baseline)")]
    queue_tables = {rules.queue_table, rules.failed_jobs_table, *rules.unprotected}
    protected = rules.protected if rules.protected is not None else [
        t for t in sorted(before.tables) if t not in queue_tables]
    checks = []
    for table in protected:
        was = before.tables[table].row_count if table in before.tables else None
        if was is None:
            raise DbauditError(f"rollback: protected table {table!r} has no row count in the baseline snapshot")
        if table not in tables:
            checks.append(TriggerCheck("data_loss", table, "fail", f"table is gone (had {was:,} rows)", 0, was))
            continue
        now = counts(table)
        if now < was:
            checks.append(TriggerCheck("data_loss", table, "fail", f"{was:,} → {now:,} ({now - was:+,})", now, was))
    if not checks:
        checks.append(TriggerCheck("data_loss", "protected tables", "pass",
                                   f"none of {len(protected)} protected tables lost rows since the baseline"))
    return checks


def external_checks(figures: External, rules: RollbackRules) -> list[TriggerCheck]:
    """Monitoring figures against the seed's thresholds: CPU > 90% for 5+ minutes, webhook errors > 5%."""
    if figures.cpu_percent is None:
        cpu = TriggerCheck("cpu", "database CPU", "skipped", "not measured (--cpu-percent, --cpu-minutes)")
    else:
        minutes = figures.cpu_minutes or 0.0
        hot = figures.cpu_percent > rules.cpu_max_percent and minutes >= rules.cpu_minutes
        cpu = TriggerCheck("cpu", "database CPU", "fail" if hot else "pass",
                           f"{figures.cpu_percent:g}% for {minutes:g} min (limit {rules.cpu_max_percent:g}% for "
                           f"{rules.cpu_minutes:g} min)", figures.cpu_percent, rules.cpu_max_percent)
    if figures.webhook_error_rate is None:
        webhook = TriggerCheck("webhook", "webhook error rate", "skipped", "not measured (--webhook-error-rate)")
    else:
        high = figures.webhook_error_rate > rules.webhook_error_max_percent
        webhook = TriggerCheck("webhook", "webhook error rate", "fail" if high else "pass",
                               f"{figures.webhook_error_rate:g}% (limit {rules.webhook_error_max_percent:g}%)",
                               figures.webhook_error_rate, rules.webhook_error_max_percent)
    return [cpu, webhook]

