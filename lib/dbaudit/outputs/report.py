"""Rendering reports: papermill runs a notebook headless, nbconvert turns it into one HTML file.

Each report gets its own folder `reports/<UTC time>-<name>/` (never reused, never overwritten) with
the executed notebook, the HTML, the result JSON and copies of its inputs; `reports/index.html`
lists them all. Only file paths are passed to notebooks as parameters: papermill writes parameters
into the notebook, so a URL with a password must never be one.
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat
from nbconvert import HTMLExporter

from dbaudit.core.errors import DbauditError, first_line

if TYPE_CHECKING:
    from dbaudit.live.compare import CompareResult

KERNEL = "python3"
PACKAGE = Path(__file__).resolve().parents[1]
TEMPLATES = Path(__file__).parent / "templates"
RESULT_FILE = "result.json"


def notebooks_dir() -> Path:
    """The notebooks shipped in the package (the repository's notebooks/, linked in), or DBAUDIT_NOTEBOOKS."""
    configured = os.environ.get("DBAUDIT_NOTEBOOKS")
    folder = Path(configured) if configured else PACKAGE / "notebooks"
    if not (folder / "audit.ipynb").is_file():
        raise DbauditError(f"notebooks not found in {folder}; set DBAUDIT_NOTEBOOKS to the notebooks/ folder")
    return folder


@dataclass
class Report:
    directory: Path
    notebook: Path
    html: Path
    result: Path | None
    verdict: str | None


def new_report_dir(out_dir: str | os.PathLike[str], name: str) -> Path:
    """A fresh folder for one report; an existing one is never reused."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "report"
    root = Path(out_dir).resolve()  # the notebook runs with its own cwd: hand it absolute paths only
    root.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, 1000):
        candidate = root / (f"{stamp}-{slug}" if attempt == 1 else f"{stamp}-{slug}-{attempt}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise DbauditError(f"cannot create a new report folder in {root}")


def render_audit(
    before: str | os.PathLike[str],
    after: str | os.PathLike[str],
    expectations: str | os.PathLike[str] | None,
    out_dir: str | os.PathLike[str] = "reports",
    name: str | None = None,
    progress: bool = True,
) -> Report:
    """Archive the inputs, run notebooks/audit.ipynb on them and render the HTML report.

    `expectations` may be a migration file instead of a YAML: its expectations are derived against the
    before snapshot and archived beside it (migration.sql and the derived expectations.yml)."""
    from dbaudit.audit.derive import load_or_derive
    from dbaudit.core.snapshot import load_snapshot

    # Bad inputs fail here, in one line, before a report folder exists.
    for option, source in (("--before", before), ("--after", after)):
        if "://" in str(source):
            raise DbauditError(f"{option} takes a snapshot file; take one first with `dbaudit snapshot URL -o FILE.json`")
    before_snapshot = load_snapshot(before)
    load_snapshot(after)
    rules, derived = load_or_derive(expectations, before_snapshot) if expectations else (None, None)
    title = name or (rules.name if rules else "audit")
    directory = new_report_dir(out_dir, title)
    inputs = {
        "before": archive_input(before, directory / "before.json"),
        "after": archive_input(after, directory / "after.json"),
        "expectations": "",
    }
    if derived is not None and expectations:
        archive_input(expectations, directory / "migration.sql")
        (directory / "expectations.yml").write_text(derived.text, encoding="utf-8")
        inputs["expectations"] = str((directory / "expectations.yml").resolve())
    elif expectations:
        inputs["expectations"] = archive_input(expectations, directory / "expectations.yml")
    parameters = {**inputs, "title": title, "result_path": str(directory / RESULT_FILE)}
    return render_notebook("audit.ipynb", directory, parameters, out_dir, progress)


def render_compare(result: CompareResult, out_dir: str | os.PathLike[str] = "reports", name: str | None = None,
                   progress: bool = True) -> Report:
    """Archive a compare result and render notebooks/compare.ipynb on it: the notebook never sees a URL."""
    directory = new_report_dir(out_dir, name or f"compare-{result.a.database}-{result.b.database}")
    result.save(directory / RESULT_FILE)
    return render_notebook("compare.ipynb", directory, {"result": str((directory / RESULT_FILE).resolve())},
                           out_dir, progress)


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
) -> Report:
    """A report folder with backup_check.ipynb run on the dump (which is read in place, not copied).

    With `result`, a dump-check result JSON already made (by `dbaudit dump-check --report`), the notebook
    shows that instead of reading the dump again; md5, sha256 and against then have no effect."""
    source = Path(dump)
    if not source.exists():  # a dump directory (pg_dump -Fd, mydumper) too
        raise DbauditError(f"dump file not found: {source}")
    directory = new_report_dir(out_dir, name or f"dump-{source.name}")
    parameters = {"dump": str(source.resolve()), "md5": md5 or "", "sha256": sha256 or "",
                  "against": archive_input(against, directory / "against.json") if against and not result else "",
                  "result": archive_input(result, directory / "dump-check.json") if result else "",
                  "title": name or source.name, "result_path": str(directory / RESULT_FILE)}
    return render_notebook("backup_check.ipynb", directory, parameters, out_dir, progress)


def render_restore_check(result: str | os.PathLike[str], out_dir: str | os.PathLike[str] = "reports",
                         name: str | None = None, progress: bool = True) -> Report:
    """A report folder with restore_check.ipynb showing a restore-check result file."""
    from dbaudit.backups.restore import load_restore_check

    title = name or load_restore_check(result).title
    directory = new_report_dir(out_dir, title)
    parameters = {"result": archive_input(result, directory / "restore.json"), "result_path": str(directory / RESULT_FILE)}
    return render_notebook("restore_check.ipynb", directory, parameters, out_dir, progress)


def render_rehearsal(result: str | os.PathLike[str], out_dir: str | os.PathLike[str] = "reports",
                     name: str | None = None, snapshots: str | os.PathLike[str] | None = None,
                     progress: bool = True) -> Report:
    """A report folder with rehearsal.ipynb showing a rehearsal result. The evidence travels with it: the
    migrate and rollback SQL files, the expectations (derived ones as derived), and the three snapshots
    (before, after, rolled back) when `snapshots` is the folder `rehearse(snapshots_dir=…)` wrote them to."""
    from dbaudit.backups.rehearse import SNAPSHOT_FILES, load_rehearsal

    rehearsal = load_rehearsal(result)
    directory = new_report_dir(out_dir, name or rehearsal.title)
    parameters = {"result": archive_input(result, directory / "rehearsal.json"),
                  "result_path": str(directory / RESULT_FILE)}
    for file in SNAPSHOT_FILES.values():
        if snapshots and (Path(snapshots) / file).is_file():
            archive_input(Path(snapshots) / file, directory / file)
    for step, sources in (("migrate", rehearsal.migrate), ("rollback", rehearsal.rollback)):
        for number, source in enumerate(sources, 1):
            if source.endswith(".sql") and Path(source).is_file():
                archive_input(source, directory / f"{step}-{number}-{Path(source).name}")
    if rehearsal.derived_expectations:
        (directory / "expectations.yml").write_text(rehearsal.derived_expectations, encoding="utf-8")
    elif Path(rehearsal.expectations_file).is_file():
        archive_input(rehearsal.expectations_file, directory / "expectations.yml")
    return render_notebook("rehearsal.ipynb", directory, parameters, out_dir, progress)


def archive_input(source: str | os.PathLike[str], target: Path) -> str:
    """Copy an input into the report folder (the evidence travels with the report); return its path."""
    if not Path(source).is_file():
        raise DbauditError(f"file not found: {source}")
    shutil.copyfile(source, target)
    return str(target.resolve())


def render_notebook(notebook: str, directory: Path, parameters: dict[str, Any], out_dir: str | os.PathLike[str],
                    progress: bool, require_result: bool = True) -> Report:
    """Run notebooks/<notebook> into `directory`, render report.html and update the index.

    A run that fails leaves its folder renamed to `<folder>.failed` (kept for diagnosis, never listed)."""
    executed = directory / notebook
    result = directory / RESULT_FILE
    try:
        execute_notebook(notebooks_dir() / notebook, executed, parameters, progress)
        verdict = _read_verdict(result)
        if require_result and verdict is None:
            raise DbauditError(f"the notebook {notebook} wrote no result to {result}")
        page = directory / "report.html"
        page.write_text(notebook_to_html(executed), encoding="utf-8")
    except DbauditError as exc:
        failed = directory.rename(directory.with_name(directory.name + ".failed"))
        raise DbauditError(f"{exc}; report folder set aside as {failed.name}") from None
    except BaseException:
        directory.rename(directory.with_name(directory.name + ".failed"))
        raise
    write_index(out_dir)
    return Report(directory, executed, page, result if result.is_file() else None, verdict)


def _kernel_manager_class() -> type:
    """Talk to the kernel over local IPC sockets: nothing listens on TCP, and ipykernel stays quiet."""
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class IPCKernelManager(AsyncKernelManager):
        @default("transport")
        def _default_transport(self) -> str:
            return "ipc"

        @default("ip")
        def _default_ip(self) -> str:
            return os.path.join(tempfile.gettempdir(), f"dbaudit-kernel-{uuid.uuid4().hex[:12]}")

    return IPCKernelManager


def execute_notebook(source: Path, target: Path, parameters: dict[str, Any], progress: bool = True,
                     cwd: Path | None = None) -> None:
    """Run a notebook headless with papermill; a failing cell becomes a one-line DbauditError."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    logging.getLogger("papermill").setLevel(logging.WARNING)
    try:
        papermill.execute_notebook(
            str(source), str(target), parameters=parameters, kernel_name=KERNEL,
            cwd=str(cwd or target.parent), progress_bar=progress, log_output=False,
            kernel_manager_class=_kernel_manager_class(),
        )
    except PapermillExecutionError as exc:
        raise DbauditError(
            f"notebook {source.name} failed in cell {exc.exec_count}: {exc.ename}: {first_line(exc.evalue)} "
            f"(executed copy: {target})"
        ) from None


def notebook_to_html(notebook: Path) -> str:
    """One self-contained HTML file without code: what an auditor reads."""
    exporter = HTMLExporter(template_name="dbaudit", extra_template_basedirs=[str(TEMPLATES)])
    exporter.exclude_input = True
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    body, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))
    return body


def _read_verdict(result: Path) -> str | None:
    try:
        return str(json.loads(result.read_text(encoding="utf-8"))["verdict"])
    except (OSError, ValueError, KeyError):
        return None


# --- the archive index ---------------------------------------------------------------------------


@dataclass
class ArchivedReport:
    folder: str
    created: str
    title: str
    database: str
    verdict: str


def list_reports(out_dir: str | os.PathLike[str] = "reports") -> list[ArchivedReport]:
    """Every report folder under out_dir, newest first."""
    root = Path(out_dir)
    found = []
    for folder in sorted((p for p in root.glob("*/report.html")), reverse=True):
        data = _result_summary(folder.parent / RESULT_FILE)
        found.append(ArchivedReport(folder.parent.name, data.get("generated_at", folder.parent.name[:16]),
                                    data.get("title", folder.parent.name), data.get("database", ""),
                                    data.get("verdict", "—")))
    return found


def _result_summary(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {"generated_at": data.get("generated_at", ""), "title": data.get("title", ""),
            "database": _subject(data), "verdict": data.get("verdict", "")}


def _subject(data: dict[str, Any]) -> str:
    """What a result document is about, by its declared kind: a database, or a dump file."""
    kind = str(data.get("kind"))
    if kind in _SIDES:
        key = _SIDES[kind]
        side = data.get(key) if key else data
        if isinstance(side, dict) and side.get("database"):
            product = f" ({side['product']})" if side.get("product") else ""
            return f"{side['database']}{product}"
    if kind == "dbaudit.dump-check":
        dump = data.get("dump") or {}
        header, file = dump.get("header") or {}, dump.get("file") or {}
        return str(header.get("database") or Path(str(file.get("path", ""))).name)
    return ""


# Where each kind names the database it is about (None: at its top level).
_SIDES: dict[str, str | None] = {"dbaudit.result": "after", "dbaudit.compare": "b", "dbaudit.restore-check": None,
                                 "dbaudit.rollback": None, "dbaudit.rehearsal": None}


def write_index(out_dir: str | os.PathLike[str] = "reports") -> Path:
    rows = "".join(
        f"<tr><td>{html.escape(r.created)}</td><td><a href=\"{html.escape(r.folder)}/report.html\">"
        f"{html.escape(r.title)}</a></td><td>{html.escape(r.database)}</td>"
        f"<td class=\"{html.escape(r.verdict)}\">{html.escape(r.verdict.upper())}</td></tr>"
        for r in list_reports(out_dir)
    )
    page = (
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>dbaudit reports</title><style>"
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #d0d7de;padding:4px 10px;text-align:left}"
        ".pass{background:#1a7f37;color:#fff}.fail{background:#cf222e;color:#fff}</style></head><body>"
        "<h1>dbaudit reports</h1><table><tr><th>time (UTC)</th><th>report</th><th>database</th>"
        f"<th>verdict</th></tr>{rows}</table></body></html>\n"
    )
    target = Path(out_dir) / "index.html"
    target.write_text(page, encoding="utf-8")
    return target
