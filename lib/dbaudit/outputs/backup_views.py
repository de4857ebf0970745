"""Backup and restore reports: the tables notebooks/backup_check.ipynb and restore_check.ipynb show."""

from __future__ import annotations

from typing import Any

import pandas as pd
from IPython.display import HTML
from pandas.io.formats.style import Styler

from dbaudit.backups.checks import DumpCheck
from dbaudit.backups.dumpfile import DumpContents
from dbaudit.backups.restore import RestoreCheck
from dbaudit.core.checks import Check
from dbaudit.outputs import html as html_parts

# --- notebook views ----------------------------------------------------------------------------------


def verdict_banner(result: DumpCheck | RestoreCheck) -> HTML:
    return html_parts.banner(result.verdict, f"{result.title} — {html_parts.checks_detail(result.checks)}")


def checks_table(checks: list[Check]) -> Styler:
    """Failed checks first."""
    return html_parts.checks_table(checks)


def file_table(check: DumpCheck) -> pd.DataFrame:
    """What the file is and who wrote it: size, checksums, the mysqldump header."""
    c = check.dump
    h = c.header
    rows: dict[str, Any] = {
        "file": c.file.path, "size (bytes)": f"{c.file.size:,}", "gzip": c.file.compressed,
        "sha256": c.file.sha256, "md5": c.file.md5, "written by": h.tool or "not mysqldump",
        "server version": h.server_version, "host / database": f"{h.host or '—'} / {h.database or '—'}",
        "completed at": h.completed_at or "—", "complete": c.complete, "truncation": c.truncation or "—",
        "last table reached": c.last_table, "databases": ", ".join(c.databases) or "—",
        "statements": f"{c.statements:,}", "features": ", ".join(h.features) or "—",
        "settings": ", ".join(f"{k}={v}" for k, v in h.settings.items()) or "—",
        "read at (MB/s)": check.summary.get("mb_per_second"),
    }
    return pd.DataFrame({"value": rows})


def dump_tables(contents: DumpContents) -> pd.DataFrame:
    frame = pd.DataFrame([{"table": name, "database": t.database, "rows": t.rows, "INSERT statements": t.inserts,
                           "CREATE TABLE": t.created} for name, t in contents.tables.items()])
    return frame if frame.empty else frame.set_index("table")


def dump_objects(contents: DumpContents) -> pd.DataFrame:
    objects = [*contents.views.values(), *contents.routines.values(), *contents.triggers.values(),
               *contents.events.values()]
    return pd.DataFrame([{"name": o.name, "kind": o.kind, "summary": o.summary or ""} for o in objects],
                        columns=["name", "kind", "summary"])


def restore_summary(check: RestoreCheck) -> pd.DataFrame:
    rows = {"dump": check.dump.path, "sha256": check.dump.sha256, "server": check.server,
            "product": f"{check.product} {check.version}", "source database": check.database,
            "scratch database": f"{check.scratch} ({'kept' if check.kept else 'dropped'})", "client": check.client,
            "restore (s)": check.restore_seconds,
            "not sent to the server": ", ".join(check.skipped_statements) or "—"}
    return pd.DataFrame({"value": rows})


def restored_tables(check: RestoreCheck) -> pd.DataFrame:
    if check.restored is None:
        return pd.DataFrame(columns=["table", "rows"])
    return pd.DataFrame([{"table": n, "rows": t.row_count, "engine": t.engine}
                         for n, t in sorted(check.restored.tables.items())]).set_index("table")
