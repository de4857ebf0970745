"""Tables and charts for notebooks: each function is one sentence of an audit report.

They show schema, counts, keys and metric values, never row contents.
"""

from __future__ import annotations

from collections import defaultdict

import matplotlib.pyplot as plt
from IPython.display import HTML

from dbaudit.audit.result import AuditResult
from dbaudit.core.snapshot import Snapshot
from dbaudit.live.compare import CompareResult
from dbaudit.outputs import html as html_parts
from dbaudit.outputs.html import MISSING, NULL, Table

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


def compare_sides(result: CompareResult) -> Table:
    """The two databases (sources with passwords masked)."""
    keys = list(vars(result.a))
    return Table(["", "A", "B"], [[k, getattr(result.a, k), getattr(result.b, k)] for k in keys], tight={""})


def compare_tables(result: CompareResult) -> Table:
    """One row per table, differences first: how many rows were added, removed or changed."""
    order = {"error": 0, "different": 1, "only_in_a": 2, "only_in_b": 2, "same": 3}
    rows = [[t.name, t.status, t.method, t.rows_a, t.rows_b, t.changed, t.removed, t.added, t.note]
            for t in sorted(result.tables, key=lambda t: (order[t.status], t.name))]
    return Table(["table", "status", "method", "rows A", "rows B", "changed", "removed", "added", "note"], rows,
                 empty="no tables compared")


def compare_keys(result: CompareResult) -> Table:
    """The differing keys (at most max_keys per table); column values only if the compare showed them."""
    rows = []
    for table in result.tables:
        for diff in table.keys:
            rows.append([table.name, diff.change, diff.label, *([diff.a, diff.b] if result.show_values else [])])
    columns = ["table", "change", "key", *(["A", "B"] if result.show_values else [])]
    return Table(columns, rows, mono={"key", "A", "B"}, missing=NULL, empty="no differing keys")


def sides_table(result: AuditResult) -> Table:
    """Which databases and snapshots the audit compared."""
    keys = list(vars(result.before))
    return Table(["", "before", "after"], [[k, getattr(result.before, k), getattr(result.after, k)] for k in keys],
                 tight={""})


def checks_table(result: AuditResult, failed_first: bool = True) -> Table:
    return html_parts.checks_table(result.checks, failed_first)


_SCHEMA_DIFF = """\
{% for owner, items, bad in groups %}
<details open><summary><b>{{ owner }}</b>: {{ items | length }} change(s)\
{% if bad %} <span style="color:{{ fail }}">({{ bad }} unexpected)</span>{% endif %}</summary>
<table class="dbaudit-table dbaudit-changes"><thead><tr><th>change</th><th>detail</th><th>status</th></tr></thead>
<tbody>{% for kind, message, declared in items %}<tr><td class="mono">{{ kind }}</td><td>{{ message }}</td>\
<td class="status-{{ 'pass' if declared else 'fail' }}">{{ 'expected' if declared else 'UNEXPECTED' }}</td></tr>
{% endfor %}</tbody></table></details>
{% endfor %}"""


def schema_diff(result: AuditResult) -> HTML:
    """The schema changes grouped by table, unexpected ones marked; each table a collapsible section."""
    grouped: dict[str, list[tuple[str, str, bool]]] = defaultdict(list)
    for change in result.changes:
        if change.kind in ("row_count_changed", "metric_changed") or change.kind.startswith("migration_"):
            continue  # counts, metrics and the ledger have their own sections
        owner = change.table or f"{change.kind.split('_')[0]}s"
        grouped[owner].append((change.kind, change.message, change.declared))
    if not grouped:
        return html_parts.render("<p>No schema changes.</p>")
    groups = [(owner, grouped[owner], sum(1 for *_, declared in grouped[owner] if not declared))
              for owner in sorted(grouped, key=lambda o: (not any(not d for *_, d in grouped[o]), o))]
    return html_parts.render(_SCHEMA_DIFF, groups=groups, fail=_FAIL)


def ledger_changes(result: AuditResult, before: Snapshot, after: Snapshot) -> HTML | Table:
    """The application's migrations ledger: what the change applied, rolled back or failed, and if it was declared."""
    ledger = after.migrations or before.migrations
    if ledger is None:
        return html_parts.render("<p>No migrations ledger in these snapshots "
                                 "(Laravel, Alembic, Django, Rails, Flyway, Liquibase).</p>")
    rows = [[c.name, c.kind.removeprefix("migration_").replace("_", " "), (c.after or c.before or {}).get("batch"),
             "expected" if c.declared else "UNEXPECTED", c.message]
            for c in result.changes if c.kind.startswith("migration_")]
    if not rows:
        return html_parts.render("<p>{{ tool }} ledger <code>{{ table }}</code>: no migration applied or rolled back "
                                 "({{ n }} in effect).</p>", tool=ledger.tool, table=ledger.table,
                                 n=len(ledger.applied()))
    return Table(["migration", "change", "batch", "status", "detail"], rows)


def _count(snapshot: Snapshot, name: str) -> int | None:
    table = snapshot.tables.get(name)
    return None if table is None else table.row_count


def _row_changes(before: Snapshot, after: Snapshot) -> list[tuple[str, int | None, int | None, int | None]]:
    """(table, before, after, change) for every table on either side; None where a side has no count."""
    rows = []
    for name in sorted(set(before.tables) | set(after.tables)):
        b, a = _count(before, name), _count(after, name)
        rows.append((name, b, a, None if a is None or b is None else a - b))
    return rows


def _changed(b: int | None, a: int | None) -> bool:
    return b != a


def row_counts(before: Snapshot, after: Snapshot) -> Table:
    """Every table, changed ones first: rows before, after and the difference (— where not counted or absent)."""
    rows = _row_changes(before, after)
    rows.sort(key=lambda r: not _changed(r[1], r[2]))
    counted = any(b is not None or a is not None for _, b, a, _ in rows)
    caption = "" if counted else "row counts were not taken (snapshot --no-counts)"
    return Table(["table", "before", "after", "change"], [list(r) for r in rows], caption=caption,
                 empty="no tables on either side")


def row_count_chart(before: Snapshot, after: Snapshot, limit: int = 30) -> HTML:
    """Before/after rows per table, changed tables first (in red); the title says what the chart leaves out."""
    rows = [(n, b, a) for n, b, a, _ in _row_changes(before, after) if b is not None or a is not None]
    if not rows:
        return html_parts.render("<p>No row counts to chart: {{ why }}.</p>",
                                 why="the snapshots hold no tables" if not (before.tables or after.tables)
                                 else "row counts were not taken (snapshot --no-counts)")
    changed = [r for r in rows if _changed(r[1], r[2])]
    rest = sorted((r for r in rows if not _changed(r[1], r[2])), key=lambda r: -(r[2] or 0))
    shown = (changed + rest)[:limit]
    left_out = len(rows) - len(shown)
    figure, axis = plt.subplots(figsize=(9, max(2.5, 0.32 * len(shown) + 1.2)))
    positions = range(len(shown))
    befores = [float(b or 0) for _, b, _ in shown]
    afters = [float(a or 0) for _, _, a in shown]
    axis.barh([p - 0.2 for p in positions], befores, height=0.4, color="#8c959f", label="before")
    axis.barh([p + 0.2 for p in positions], afters, height=0.4, color="#0969da", label="after")
    axis.set_yticks(list(positions), [html_parts.plain_label(n) for n, _, _ in shown])
    axis.invert_yaxis()
    axis.set_xlabel("rows")
    axis.legend(loc="lower right")
    positive = [v for v in befores + afters if v > 0]
    if positive and max(positive) > 100 * min(positive):
        axis.set_xscale("symlog")
    for label, (_, b, a) in zip(axis.get_yticklabels(), shown, strict=True):
        if _changed(b, a):
            label.set_color(_FAIL)
    caption = f"Rows per table: {len(changed)} changed (in red, first)"
    if left_out:
        caption += (f"; {len(shown)} of {len(rows)} tables drawn, the {left_out} smallest unchanged ones left out "
                    "(every table is in the table below)")
    uncounted = len(_row_changes(before, after)) - len(rows)
    if uncounted:
        caption += f"; {uncounted} table(s) without a row count left out"
    axis.set_title(caption.split(";")[0], fontsize=10, loc="left")
    figure.tight_layout()
    plt.close(figure)
    return html_parts.figure(figure, caption + ".")


def metrics_table(before: Snapshot, after: Snapshot) -> Table:
    names = sorted(set(before.metrics) | set(after.metrics))
    return Table(["metric", "before", "after", "sql"],
                 [[n, _metric_text(before, n), _metric_text(after, n), (after.metrics.get(n) or before.metrics[n]).sql]
                  for n in names], mono={"sql"}, empty="no business metrics in these snapshots")


def snapshot_metrics(snapshot: Snapshot) -> Table:
    """The named business metrics of one snapshot (active sessions, queue depth …)."""
    return Table(["metric", "value", "error", "sql"],
                 [[m.name, m.value, m.error, m.sql] for m in snapshot.metrics.values()], mono={"sql"},
                 missing=NULL, empty="no business metrics in this snapshot")


def _metric_text(snapshot: Snapshot, name: str) -> str:
    metric = snapshot.metrics.get(name)
    if metric is None:
        return MISSING
    if metric.error:
        return f"error: {html_parts.statement_head(metric.error)}"
    return NULL if metric.value is None else html_parts.cell_text(metric.value)


def tables_table(snapshot: Snapshot) -> Table:
    """The information_schema overview: one row per table, with its content fingerprint when taken."""
    fingerprinted = any(t.fingerprint for t in snapshot.tables.values())
    columns = ["table", "rows", "columns", "indexes", "foreign keys", "engine", "collation",
               *(["fingerprint", "chunks"] if fingerprinted else [])]
    rows = [[t.name, t.row_count, len(t.columns), len(t.indexes), len(t.foreign_keys), t.engine, t.collation,
             *([t.fingerprint, len(t.chunks)] if fingerprinted else [])]
            for t in sorted(snapshot.tables.values(), key=lambda t: t.name)]
    return Table(columns, rows, mono={"fingerprint"}, empty="no tables")


def columns_table(snapshot: Snapshot, table: str | None = None) -> Table:
    """SHOW COLUMNS FROM <table>, from the snapshot; without a table, every table's columns."""
    names = [table] if table else sorted(snapshot.tables)
    rows = []
    for name in names:
        found = snapshot.tables.get(name)
        if found is None:
            raise KeyError(f"table {name!r} is not in the snapshot of {snapshot.database}")
        keys = dict.fromkeys(found.primary_key, "PRI")
        for index in found.indexes:
            if index.columns and index.columns[0] not in keys:
                keys[index.columns[0]] = "UNI" if index.unique else "MUL"
        for c in found.columns:
            rows.append([*([] if table else [name]), c.name, c.type, "YES" if c.nullable else "NO",
                         keys.get(c.name, ""), NULL if c.default is None else c.default, c.extra or ""])
    columns = [*([] if table else ["Table"]), "Field", "Type", "Null", "Key", "Default", "Extra"]
    return Table(columns, rows, empty="no columns")


def definitions_table(snapshot: Snapshot) -> Table:
    items = [*snapshot.views.values(), *snapshot.triggers.values(), *snapshot.routines.values()]
    return Table(["kind", "name", "summary", "sha256"],
                 [[d.kind, d.name, d.summary, d.sha256 or "hidden (no rights to read the definition)"] for d in items],
                 mono={"sha256"}, empty="no views, triggers or routines")
