"""Backup and restore reports: the notebooks' tables, and rendering them into the report archive.

`render_backup_check` runs notebooks/backup_check.ipynb on a dump file; `render_restore_check` runs
notebooks/restore_check.ipynb on a restore-check result JSON. Neither hands the notebook a URL: the
restore itself runs in the CLI, and only its result file becomes a parameter.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

import pandas as pd
from IPython.display import HTML
from pandas.io.formats.style import Styler

from dbaudit import report
from dbaudit.dumpfile import DumpCheck, DumpContents
from dbaudit.errors import DbauditError
from dbaudit.expectations import Check
from dbaudit.restore import RestoreCheck

_PASS, _FAIL = "#1a7f37", "#cf222e"


# --- notebook views ----------------------------------------------------------------------------------


def verdict_banner(result: DumpCheck | RestoreCheck) -> HTML:
    ok = result.verdict == "pass"
    failed = sum(1 for c in result.checks if c.status == "fail")
    detail = f"all {len(result.checks)} checks passed" if ok else f"{failed} of {len(result.checks)} checks failed"
    return HTML(
        f'<div class="dbaudit-verdict dbaudit-{result.verdict}" style="padding:16px 20px;border-radius:8px;'
        f'color:white;background:{_PASS if ok else _FAIL};font-family:sans-serif">'
        f'<div style="font-size:28px;font-weight:700">VERDICT: {result.verdict.upper()}</div>'
        f'<div style="font-size:15px;margin-top:6px">{html.escape(result.title)} — {detail}</div></div>'
    )


def checks_table(checks: list[Check]) -> Styler:
    """Failed checks first."""
    frame = pd.DataFrame([vars(c) for c in checks], columns=["status", "category", "name", "message"])
    if not frame.empty:
        frame = frame.sort_values("status", key=lambda s: s != "fail", kind="stable").reset_index(drop=True)
    return frame.style.map(_colour, subset=["status"]).hide(axis="index").set_properties(**{"text-align": "left"})


def _colour(value: str) -> str:
    return f"color:white;background-color:{_FAIL if value == 'fail' else _PASS};font-weight:600"


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


# --- rendering into the archive ----------------------------------------------------------------------


def render_backup_check(
    dump: str | os.PathLike[str],
    *,
    md5: str | None = None,
    sha256: str | None = None,
    against: str | os.PathLike[str] | None = None,
    result: str | os.PathLike[str] | None = None,
    out_dir: str | os.PathLike[str] = "reports",
    name: str | None = None,
    progress: bool = True,
) -> report.Report:
    """A report folder with backup_check.ipynb run on the dump (which is read in place, not copied).

    With `result`, a dump-check result JSON already made (by `dbaudit dump-check --report`), the notebook
    shows that instead of reading the dump again; md5, sha256 and against then have no effect."""
    source = Path(dump)
    if not source.is_file():
        raise DbauditError(f"dump file not found: {source}")
    directory = report.new_report_dir(out_dir, name or f"dump-{source.name}")
    parameters = {"dump": str(source.resolve()), "md5": md5 or "", "sha256": sha256 or "",
                  "against": report.archive_input(against, directory / "against.json") if against and not result else "",
                  "result": report.archive_input(result, directory / "dump-check.json") if result else "",
                  "title": name or source.name, "result_path": str(directory / report.RESULT_FILE)}
    return report.render_notebook("backup_check.ipynb", directory, parameters, out_dir, progress)


def render_restore_check(result: str | os.PathLike[str], out_dir: str | os.PathLike[str] = "reports",
                         name: str | None = None, progress: bool = True) -> report.Report:
    """A report folder with restore_check.ipynb showing a restore-check result file."""
    from dbaudit.restore import load_restore_check

    title = name or load_restore_check(result).title
    directory = report.new_report_dir(out_dir, title)
    parameters = {"result": report.archive_input(result, directory / "restore.json"), "result_path": str(directory / report.RESULT_FILE)}
    return report.render_notebook("restore_check.ipynb", directory, parameters, out_dir, progress)
