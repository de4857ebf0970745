"""Tables and charts for notebooks: each function is one sentence of an audit report.

They show schema, counts, keys and metric values, never row contents.
"""

from __future__ import annotations

import html
from collections import defaultdict
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import HTML
from matplotlib.figure import Figure
from pandas.io.formats.style import Styler

from dbaudit.audit.result import AuditResult
from dbaudit.core.snapshot import Snapshot
from dbaudit.live.compare import CompareResult
from dbaudit.outputs import html as html_parts

_PASS, _FAIL = html_parts.PASS_COLOUR, html_parts.FAIL_COLOUR


def verdict_banner(result: AuditResult) -> HTML:
    failed = len(result.failed_checks)
    detail = (f"all {len(result.checks)} checks passed" if result.passed
              else f"{failed} of {len(result.checks)} checks failed")
    changes = f"{result.summary['schema_changes']} schema change(s), {result.summary['unexpected_changes']} unexpected"
    return html_parts.banner(result.verdict, f"{result.title} — {detail}; {changes}")


def compare_banner(result: CompareResult) -> HTML:
    """PASS when every table holds the same rows on both sides."""
    s = result.summary
    detail = (f"{s['tables']} tables: {s['same']} same, {s['different']} different, {s['only_in_a']} only in A, "
              f"{s['only_in_b']} only in B, {s['error']} not compared")
    if result.counts_only:
        detail += " (row counts only: contents not compared)"
    return html_parts.banner(result.verdict, f"{result.title} — {detail}")


def compare_sides(result: CompareResult) -> pd.DataFrame:
    """The two databases (sources with passwords masked)."""
    return pd.DataFrame({"A": vars(result.a), "B": vars(result.b)})


def compare_tables(result: CompareResult) -> pd.DataFrame:
    """One row per table, differences first: how many rows were added, removed or changed."""
    order = {"error": 0, "different": 1, "only_in_a": 2, "only_in_b": 2, "same": 3}
    rows = [{"table": t.name, "status": t.status, "method": t.method, "rows A": t.rows_a, "rows B": t.rows_b,
             "changed": t.changed, "removed": t.removed, "added": t.added, "note": t.note}
            for t in sorted(result.tables, key=lambda t: (order[t.status], t.name))]
    frame = pd.DataFrame(rows, columns=["table", "status", "method", "rows A", "rows B", "changed", "removed",
                                        "added", "note"])
    return frame.astype({"rows A": "Int64", "rows B": "Int64"}).set_index("table")  # a missing table: <NA>


def compare_keys(result: CompareResult) -> pd.DataFrame:
    """The differing keys (at most max_keys per table); column values only if the compare showed them."""
    rows = []
    for table in result.tables:
        for diff in table.keys:
            row: dict[str, Any] = {"table": table.name, "change": diff.change, "key": diff.label}
            if result.show_values:
                row |= {"A": diff.a, "B": diff.b}
            rows.append(row)
    columns = ["table", "change", "key", *(["A", "B"] if result.show_values else [])]
    return pd.DataFrame(rows, columns=columns)


def sides_table(result: AuditResult) -> pd.DataFrame:
    """Which databases and snapshots the audit compared."""
    rows = {label: vars(side) for label, side in (("before", result.before), ("after", result.after))}
    return pd.DataFrame(rows)


def checks_table(result: AuditResult, failed_first: bool = True) -> Styler:
    return html_parts.checks_table(result.checks, failed_first)


def schema_diff(result: AuditResult) -> HTML:
    """The schema changes grouped by table, unexpected ones marked; each table a collapsible section."""
    grouped: dict[str, list[tuple[str, str, bool]]] = defaultdict(list)
    for change in result.changes:
        if change.kind in ("row_count_changed", "metric_changed") or change.kind.startswith("migration_"):
            continue  # counts, metrics and the ledger have their own sections
        owner = change.table or f"{change.kind.split('_')[0]}s"
        grouped[owner].append((change.kind, change.message, change.declared))
    if not grouped:
        return HTML("<p>No schema changes.</p>")
    parts = []
    for owner in sorted(grouped):
        items = grouped[owner]
        bad = sum(1 for _, _, declared in items if not declared)
        flag = f' <span style="color:{_FAIL}">({bad} unexpected)</span>' if bad else ""
        rows = "".join(
            f"<tr><td><code>{html.escape(kind)}</code></td><td>{html.escape(message)}</td>"
            f'<td style="color:{_PASS if declared else _FAIL};font-weight:600">'
            f"{'expected' if declared else 'UNEXPECTED'}</td></tr>"
            for kind, message, declared in items
        )
        parts.append(
            f"<details open><summary><b>{html.escape(owner)}</b>: {len(items)} change(s){flag}</summary>"
            f'<table class="dbaudit-changes"><tr><th>change</th><th>detail</th><th>status</th></tr>{rows}</table>'
            f"</details>"
        )
    return HTML("".join(parts))


def ledger_changes(result: AuditResult, before: Snapshot, after: Snapshot) -> HTML | pd.DataFrame:
    """The application's migrations ledger: what the change applied, rolled back or failed, and if it was declared."""
    ledger = after.migrations or before.migrations
    if ledger is None:
        return HTML("<p>No migrations ledger in these snapshots (Laravel, Alembic, Django, Rails, Flyway, Liquibase).</p>")
    rows = [{"migration": c.name, "change": c.kind.removeprefix("migration_").replace("_", " "),
             "batch": (c.after or c.before or {}).get("batch"), "detail": c.message,
             "status": "expected" if c.declared else "UNEXPECTED"}
            for c in result.changes if c.kind.startswith("migration_")]
    if not rows:
        return HTML(f"<p>{html.escape(ledger.tool)} ledger <code>{html.escape(ledger.table)}</code>: no migration "
                    f"applied or rolled back ({len(ledger.applied())} in effect).</p>")
    return pd.DataFrame(rows, columns=["migration", "change", "batch", "status", "detail"]).set_index("migration")


def row_counts(before: Snapshot, after: Snapshot) -> pd.DataFrame:
    names = sorted(set(before.tables) | set(after.tables))
    frame = pd.DataFrame(
        {
            "before": [_count(before, n) for n in names],
            "after": [_count(after, n) for n in names],
        },
        index=pd.Index(names, name="table"),
    ).astype("Int64")
    frame["change"] = frame["after"] - frame["before"]
    return frame


def _count(snapshot: Snapshot, name: str) -> int | None:
    table = snapshot.tables.get(name)
    return None if table is None else table.row_count


def row_count_chart(before: Snapshot, after: Snapshot, limit: int = 30) -> Figure:
    """Before/after rows per table; with many tables, the changed and the largest ones."""
    frame = row_counts(before, after).fillna(0)
    if len(frame) > limit:
        changed = frame[frame["change"] != 0]
        rest = frame[frame["change"] == 0].sort_values("after", ascending=False)
        frame = pd.concat([changed, rest]).head(limit).sort_index()
    figure, axis = plt.subplots(figsize=(9, max(2.5, 0.32 * len(frame) + 1)))
    frame[["before", "after"]].astype(float).plot.barh(ax=axis, color=["#8c959f", "#0969da"], width=0.8)
    axis.invert_yaxis()
    axis.set_xlabel("rows")
    if frame["after"].max() > 100 * max(1, frame["after"][frame["after"] > 0].min()):
        axis.set_xscale("symlog")
    for label in axis.get_yticklabels():
        if frame.loc[label.get_text(), "change"] != 0:
            label.set_color(_FAIL)
    axis.set_title("Rows per table (changed tables in red)")
    figure.tight_layout()
    plt.close(figure)
    return figure


def metrics_table(before: Snapshot, after: Snapshot) -> pd.DataFrame:
    names = sorted(set(before.metrics) | set(after.metrics))
    return pd.DataFrame(
        {
            "before": [_metric_text(before, n) for n in names],
            "after": [_metric_text(after, n) for n in names],
            "sql": [(after.metrics.get(n) or before.metrics[n]).sql for n in names],
        },
        index=pd.Index(names, name="metric"),
    )


def snapshot_metrics(snapshot: Snapshot) -> pd.DataFrame:
    """The named business metrics of one snapshot (active sessions, queue depth …)."""
    return pd.DataFrame(
        [{"metric": m.name, "value": m.value, "error": m.error, "sql": m.sql} for m in snapshot.metrics.values()],
        columns=["metric", "value", "error", "sql"],
    )


def _metric_text(snapshot: Snapshot, name: str) -> str:
    metric = snapshot.metrics.get(name)
    if metric is None:
        return "—"
    return f"error: {metric.error}" if metric.error else str(metric.value)


def tables_table(snapshot: Snapshot) -> pd.DataFrame:
    """The information_schema overview: one row per table, with its content fingerprint when taken."""
    fingerprinted = any(t.fingerprint for t in snapshot.tables.values())
    return pd.DataFrame(
        [
            {
                "table": t.name, "rows": t.row_count, "columns": len(t.columns), "indexes": len(t.indexes),
                "foreign keys": len(t.foreign_keys), "engine": t.engine, "collation": t.collation,
                **({"fingerprint": t.fingerprint, "chunks": len(t.chunks)} if fingerprinted else {}),
            }
            for t in snapshot.tables.values()
        ]
    ).set_index("table").sort_index()


def columns_table(snapshot: Snapshot, table: str | None = None) -> pd.DataFrame:
    """SHOW COLUMNS FROM <table>, from the snapshot; without a table, every table's columns."""
    if not table:
        frames = [columns_table(snapshot, name).assign(Table=name) for name in sorted(snapshot.tables)]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    found = snapshot.tables.get(table)
    if found is None:
        raise KeyError(f"table {table!r} is not in the snapshot of {snapshot.database}")
    keys = dict.fromkeys(found.primary_key, "PRI")
    for index in found.indexes:
        if index.columns and index.columns[0] not in keys:
            keys[index.columns[0]] = "UNI" if index.unique else "MUL"
    return pd.DataFrame(
        [
            {"Field": c.name, "Type": c.type, "Null": "YES" if c.nullable else "NO", "Key": keys.get(c.name, ""),
             "Default": c.default, "Extra": c.extra}
            for c in found.columns
        ]
    )


def definitions_table(snapshot: Snapshot) -> pd.DataFrame:
    items = [*snapshot.views.values(), *snapshot.triggers.values(), *snapshot.routines.values()]
    return pd.DataFrame(
        [{"kind": d.kind, "name": d.name, "summary": d.summary, "sha256": (d.sha256 or "hidden")[:16]} for d in items],
        columns=["kind", "name", "summary", "sha256"],
    )
