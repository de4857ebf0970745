"""Rendering reports: papermill runs a notebook headless, nbconvert turns it into one HTML file.

Each report gets its own folder `reports/<UTC time>-<name>/` (never reused, never overwritten) with
the executed notebook, the HTML, the result JSON and copies of its inputs; `reports/index.html`
lists them all (outputs/archive.py: the manifest of each folder, the chain, the history page). Only
file paths are passed to notebooks as parameters: papermill writes parameters into the notebook, so a
URL with a password must never be one.

Every file of a report folder is written atomically, and a folder whose report could not be finished
(a failing cell, a full disk, Ctrl-C or SIGTERM) is set aside as `<folder>.failed`: kept for diagnosis,
never listed, never chained.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat
from nbconvert import HTMLExporter

from dbaudit.core import serde
from dbaudit.core.errors import DbauditError, first_line
from dbaudit.outputs import archive, provenance
from dbaudit.outputs import html as html_parts
from dbaudit.outputs.archive import ArchivedReport, list_reports, register_kind, write_index

__all__ = ["ArchivedReport", "Report", "list_reports", "register_kind", "render_audit", "render_backup_check",
           "render_compare", "render_notebook", "render_restore_check", "verify_archive", "write_index"]

if TYPE_CHECKING:
    from dbaudit.live.compare import CompareResult

KERNEL = "python3"
PACKAGE = Path(__file__).resolve().parents[1]
TEMPLATES = Path(__file__).parent / "templates"
RESULT_FILE = archive.RESULT_FILE
DROPPED_TAGS = ("instructions", "remove")  # cells for JupyterLab users, not for the auditor


NOTEBOOKS_ENV = "DBAUDIT_NOTEBOOKS"


def notebooks_dir() -> Path:
    """The notebooks shipped in the package (the repository's notebooks/, linked in), or DBAUDIT_NOTEBOOKS."""
    configured = os.environ.get(NOTEBOOKS_ENV)
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
    with _building(directory):
        inputs = {
            "before": archive_input(before, directory / "before.json"),
            "after": archive_input(after, directory / "after.json"),
            "expectations": "",
        }
        files: dict[str, str | None] = dict(inputs)
        if derived is not None and expectations:
            files["migration"] = archive_input(expectations, directory / "migration.sql")
            serde.write_atomic(directory / "expectations.yml", derived.text)
            inputs["expectations"] = files["expectations"] = str((directory / "expectations.yml").resolve())
        elif expectations:
            inputs["expectations"] = files["expectations"] = archive_input(expectations, directory / "expectations.yml")
        parameters = {**inputs, "title": title, "result_path": str(directory / RESULT_FILE)}
        parameters["provenance"] = _write_provenance(directory, files, parameters, inputs["expectations"] or None)
        return _render_into("audit.ipynb", directory, parameters, out_dir, progress)


def render_compare(result: CompareResult, out_dir: str | os.PathLike[str] = "reports", name: str | None = None,
                   progress: bool = True) -> Report:
    """Archive a compare result and render notebooks/compare.ipynb on it: the notebook never sees a URL."""
    directory = new_report_dir(out_dir, name or f"compare-{result.a.database}-{result.b.database}")
    with _building(directory):
        result.save(directory / RESULT_FILE)
        parameters = {"result": str((directory / RESULT_FILE).resolve())}
        parameters["provenance"] = _write_provenance(directory, {"compare result": parameters["result"]},
                                                     parameters)
        return _render_into("compare.ipynb", directory, parameters, out_dir, progress)


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
    shows that instead of reading the dump again; md5, sha256 and against then have no effect. The dump's
    own SHA-256 is the one the check computed while reading it (shown in the provenance block)."""
    source = Path(dump)
    if not source.exists():  # a dump directory (pg_dump -Fd, mydumper) too
        raise DbauditError(f"dump file not found: {source}")
    directory = new_report_dir(out_dir, name or f"dump-{source.name}")
    with _building(directory):
        parameters = {"dump": str(source.resolve()), "md5": md5 or "", "sha256": sha256 or "",
                      "against": archive_input(against, directory / "against.json") if against and not result else "",
                      "result": archive_input(result, directory / "dump-check.json") if result else "",
                      "title": name or source.name, "result_path": str(directory / RESULT_FILE)}
        files = {"against": parameters["against"] or None, "dump-check result": parameters["result"] or None}
        parameters["provenance"] = _write_provenance(directory, files, parameters)
        return _render_into("backup_check.ipynb", directory, parameters, out_dir, progress)


def render_restore_check(result: str | os.PathLike[str], out_dir: str | os.PathLike[str] = "reports",
                         name: str | None = None, progress: bool = True) -> Report:
    """A report folder with restore_check.ipynb showing a restore-check result file."""
    from dbaudit.backups.restore import load_restore_check

    title = name or load_restore_check(result).title
    directory = new_report_dir(out_dir, title)
    with _building(directory):
        parameters = {"result": archive_input(result, directory / "restore.json"),
                      "result_path": str(directory / RESULT_FILE)}
        parameters["provenance"] = _write_provenance(directory, {"restore-check result": parameters["result"]},
                                                     parameters)
        return _render_into("restore_check.ipynb", directory, parameters, out_dir, progress)


def render_rehearsal(result: str | os.PathLike[str], out_dir: str | os.PathLike[str] = "reports",
                     name: str | None = None, snapshots: str | os.PathLike[str] | None = None,
                     progress: bool = True) -> Report:
    """A report folder with rehearsal.ipynb showing a rehearsal result. The evidence travels with it: the
    migrate and rollback SQL files, the expectations (derived ones as derived), and the three snapshots
    (before, after, rolled back) when `snapshots` is the folder `rehearse(snapshots_dir=…)` wrote them to."""
    from dbaudit.backups.rehearse import SNAPSHOT_FILES, load_rehearsal

    rehearsal = load_rehearsal(result)
    directory = new_report_dir(out_dir, name or rehearsal.title)
    with _building(directory):
        parameters = {"result": archive_input(result, directory / "rehearsal.json"),
                      "result_path": str(directory / RESULT_FILE)}
        inputs: dict[str, str | None] = {"rehearsal result": parameters["result"]}
        for file in SNAPSHOT_FILES.values():
            if snapshots and (Path(snapshots) / file).is_file():
                inputs[f"snapshot {file}"] = archive_input(Path(snapshots) / file, directory / file)
        for step, sources in (("migrate", rehearsal.migrate), ("rollback", rehearsal.rollback)):
            for number, source in enumerate(sources, 1):
                if source.endswith(".sql") and Path(source).is_file():
                    inputs[f"{step} {source}"] = archive_input(source, directory / f"{step}-{number}-{Path(source).name}")
        if rehearsal.derived_expectations:
            serde.write_atomic(directory / "expectations.yml", rehearsal.derived_expectations)
            inputs["expectations (derived)"] = str(directory / "expectations.yml")
        elif Path(rehearsal.expectations_file).is_file():
            inputs["expectations"] = archive_input(rehearsal.expectations_file, directory / "expectations.yml")
        written = _write_provenance(directory, inputs, parameters)
        if _declares(notebooks_dir() / "rehearsal.ipynb", "provenance"):
            parameters["provenance"] = written
        return _render_into("rehearsal.ipynb", directory, parameters, out_dir, progress)


def archive_input(source: str | os.PathLike[str], target: Path) -> str:
    """Copy an input into the report folder (the evidence travels with the report); return its path."""
    if not Path(source).is_file():
        raise DbauditError(f"file not found: {source}")
    partial = target.with_name(f".{target.name}.partial")
    try:
        shutil.copyfile(source, partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return str(target.resolve())


def _write_provenance(directory: Path, files: dict[str, str | None], parameters: dict[str, Any],
                      expectations: str | None = None) -> str:
    facts = provenance.gather(files, {k: v for k, v in parameters.items() if k != "provenance"}, expectations)
    facts.save(directory / provenance.FILE)
    return str((directory / provenance.FILE).resolve())


def render_notebook(notebook: str, directory: Path, parameters: dict[str, Any], out_dir: str | os.PathLike[str],
                    progress: bool, require_result: bool = True) -> Report:
    """Run notebooks/<notebook> into `directory`, render report.html, seal the folder and update the index.

    A run that fails leaves its folder renamed to `<folder>.failed` (kept for diagnosis, never listed).
    A notebook with a `provenance` parameter gets the path of the folder's provenance.json."""
    with _building(directory):
        if "provenance" not in parameters:
            written = _write_provenance(directory, {}, parameters)  # the folder's record, shown or not
            if _declares(notebooks_dir() / notebook, "provenance"):
                parameters = {**parameters, "provenance": written}
        return _render_into(notebook, directory, parameters, out_dir, progress, require_result)


def _declares(notebook: Path, name: str) -> bool:
    """Does the notebook's parameters cell define `name` (papermill warns about any other parameter)?"""
    try:
        cells = nbformat.read(notebook, as_version=4).cells
    except (OSError, ValueError):
        return False
    pattern = re.compile(rf"^{re.escape(name)}\s*[:=]", re.MULTILINE)
    return any("parameters" in c.metadata.get("tags", []) and pattern.search(c.source) for c in cells)


def _render_into(notebook: str, directory: Path, parameters: dict[str, Any], out_dir: str | os.PathLike[str],
                 progress: bool, require_result: bool = True) -> Report:
    executed = directory / notebook
    result = directory / RESULT_FILE
    partial = directory / f".partial-{notebook}"  # papermill saves as it goes: the real name only when done
    execute_notebook(notebooks_dir() / notebook, partial, parameters, progress, cwd=directory)
    os.replace(partial, executed)
    verdict = _read_verdict(result)
    if require_result and verdict is None:
        raise DbauditError(f"the notebook {notebook} wrote no result to {result}")
    page = directory / "report.html"
    serde.write_atomic(page, notebook_to_html(executed, _page_title(result, notebook)))
    archive.append(Path(out_dir), directory)
    try:
        write_index(out_dir)
    except OSError as exc:  # the report is whole and chained: keep it; the index is rebuilt by the next one
        raise IndexNotWritten(f"report archived in {directory.name}, but index.html could not be rewritten: "
                              f"{exc.strerror or exc}") from None
    return Report(directory, executed, page, result if result.is_file() else None, verdict)


class IndexNotWritten(DbauditError):
    """The report folder is finished and chained; only the derived index.html failed."""


def _set_aside(directory: Path) -> Path:
    failed = directory.with_name(directory.name + ".failed")
    for attempt in range(2, 100):
        if not failed.exists():
            break
        failed = directory.with_name(f"{directory.name}.{attempt}.failed")
    if directory.is_dir():
        directory.rename(failed)
    return failed


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a CI job cancelled, `timeout`) ends a report like Ctrl-C: the partial folder is set aside."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None):
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def _building(directory: Path) -> Iterator[None]:
    """Whatever stops a report half-made leaves no folder that looks finished."""
    with _sigterm_as_interrupt():
        try:
            yield
        except IndexNotWritten:
            raise
        except DbauditError as exc:
            raise DbauditError(f"{exc}; report folder set aside as {_set_aside(directory).name}") from None
        except OSError as exc:
            failed = _set_aside(directory)
            reason = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
            raise DbauditError(f"cannot write the report ({reason}{f': {exc.filename}' if exc.filename else ''}); "
                               f"report folder set aside as {failed.name}") from None
        except BaseException:
            _set_aside(directory)
            raise


def verify_archive(out_dir: str | os.PathLike[str] = "reports") -> tuple[list[archive.Entry], archive.Problem | None]:
    """Recompute every report's manifest and the archive chain (see outputs/archive.py)."""
    return archive.verify(out_dir)


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

        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            # Cell output travels over the kernel's sockets; what the process itself prints is its
            # shutdown chatter ("Parent appears to have exited") after Ctrl-C, not for the terminal.
            kw.setdefault("stdout", subprocess.DEVNULL)
            kw.setdefault("stderr", subprocess.DEVNULL)
            await super()._async_launch_kernel(kernel_cmd, **kw)

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


def _page_title(result: Path, notebook: str) -> str:
    info = archive.summary(result.parent) if result.is_file() else {}
    if not info:
        return f"dbaudit report: {notebook.removesuffix('.ipynb')}"
    return (f"{str(info['verdict']).upper()}: {info['title']} — dbaudit {info['kind']} report"
            f"{', ' + str(info['database']) if info['database'] else ''} ({info['created']})")


def notebook_to_html(notebook: Path, title: str | None = None) -> str:
    """One self-contained HTML file without code, and without the cells tagged for notebook users."""
    from nbconvert.preprocessors import TagRemovePreprocessor

    exporter = HTMLExporter(template_name="dbaudit", extra_template_basedirs=[str(TEMPLATES)])
    exporter.exclude_input = True
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    exporter.register_preprocessor(TagRemovePreprocessor(remove_cell_tags=set(DROPPED_TAGS)), enabled=True)
    exporter.register_preprocessor(_drop_progress_bars, enabled=True)
    node = nbformat.read(notebook, as_version=4)
    node.metadata["title"] = title or f"dbaudit report: {notebook.stem}"
    resources = {"dbaudit": {"csp": html_parts.content_security_policy(), "style": html_parts.STYLE,
                             "script": html_parts.SCRIPT}}
    body, _ = exporter.from_notebook_node(node, resources=resources)
    return body


_PROGRESS = re.compile(r"\d+%\||\[\d\d:\d\d|[\d.]+\s*\w*/s\]|it/s|row/s")


def _drop_progress_bars(node: Any, resources: Any) -> tuple[Any, Any]:
    """Progress bars (tqdm on stderr) are for someone watching, not for the archived report; a warning stays."""
    for cell in node.cells:
        kept = []
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                lines = [line for line in re.split(r"[\r\n]+", output.get("text", ""))
                         if line.strip() and not _PROGRESS.search(line)]
                if not lines:
                    continue
                output["text"] = "\n".join(lines) + "\n"
            kept.append(output)
        if "outputs" in cell:
            cell["outputs"] = kept
    return node, resources


def _read_verdict(result: Path) -> str | None:
    try:
        return str(json.loads(result.read_text(encoding="utf-8"))["verdict"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
