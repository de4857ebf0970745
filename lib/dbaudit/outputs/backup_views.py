"""Backup and restore reports: the tables notebooks/backup_check.ipynb and restore_check.ipynb show.

Checksums and sizes are shown whole and monospaced (an auditor copies them to verify the file); the
client's error text is cut at the statement head so no row values reach a report."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from IPython.display import HTML

from dbaudit.backups.checks import DumpCheck
from dbaudit.backups.dumpfile import DumpContents
from dbaudit.backups.restore import RestoreCheck
from dbaudit.core.checks import Check
from dbaudit.outputs import html as html_parts
from dbaudit.outputs.html import MISSING, Table, key_values, statement_head

# --- notebook views ----------------------------------------------------------------------------------


def verdict_banner(result: DumpCheck | RestoreCheck) -> HTML:
    return html_parts.banner(result.verdict, f"{result.title} — {html_parts.checks_detail(result.checks)}")


def checks_table(checks: list[Check]) -> Table:
    """Failed checks first; what the restore client said is cut before any value it quotes."""
    shown = [replace(c, message=statement_head(c.message, limit=400)) if c.category == "restore" else c
             for c in checks]
    return html_parts.checks_table(shown)


def size_text(size: int) -> str:
    """Exact bytes, and a rounded size to read."""
    units = ["bytes", "KiB", "MiB", "GiB", "TiB"]
    value, unit = float(size), 0
    while value >= 1024 and unit < len(units) - 1:
        value, unit = value / 1024, unit + 1
    return f"{size:,} bytes" + (f" ({value:.1f} {units[unit]})" if unit else "")


def file_table(check: DumpCheck) -> Table:
    """What the file is and who wrote it: size, checksums, the mysqldump header."""
    c = check.dump
    h = c.header
    rows: dict[str, Any] = {
        "file": c.file.path, "size": size_text(c.file.size), "gzip": c.file.compressed,
        "sha256": c.file.sha256, "md5": c.file.md5, "written by": h.tool or "not mysqldump",
        "server version": h.server_version, "host / database": f"{h.host or MISSING} / {h.database or MISSING}",
        "completed at": h.completed_at, "complete": c.complete, "truncation": c.truncation,
        "last table reached": c.last_table, "databases": list(c.databases),
        "statements": c.statements, "features": list(h.features),
        "settings": dict(h.settings),
        "read at (MB/s)": check.summary.get("mb_per_second"),
    }
    return key_values(rows, mono={"file", "size", "sha256", "md5"})


def dump_tables(contents: DumpContents) -> Table:
    return Table(["table", "database", "rows", "INSERT statements", "CREATE TABLE"],
                 [[name, t.database, t.rows, t.inserts, t.created] for name, t in contents.tables.items()],
                 empty="no tables in the dump")


def dump_objects(contents: DumpContents) -> Table:
    objects = [*contents.views.values(), *contents.routines.values(), *contents.triggers.values(),
               *contents.events.values()]
    return Table(["name", "kind", "summary"], [[o.name, o.kind, o.summary] for o in objects],
                 empty="no views, routines, triggers or events")


def restore_summary(check: RestoreCheck) -> Table:
    rows = {"dump": check.dump.path, "size": size_text(check.dump.size), "sha256": check.dump.sha256,
            "server": check.server, "product": f"{check.product} {check.version}", "source database": check.database,
            "scratch database": f"{check.scratch} ({'kept' if check.kept else 'dropped'})", "client": check.client,
            "restore (s)": check.restore_seconds, "not sent to the server": list(check.skipped_statements)}
    return key_values(rows, mono={"dump", "size", "sha256"})


def restored_tables(check: RestoreCheck) -> Table:
    if check.restored is None:
        return Table(["table", "rows", "engine"], [], empty="nothing was restored")
    return Table(["table", "rows", "engine"],
                 [[n, t.row_count, t.engine] for n, t in sorted(check.restored.tables.items())],
                 empty="the restored database holds no tables")
