"""Reports through the real papermill + nbconvert path, and the demo a new user runs first."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT
from dbaudit.audit.expectations import load_expectations
from dbaudit.audit.result import load_result
from dbaudit.core.errors import DbauditError
from dbaudit.demo import EXPECTATIONS, build_database
from dbaudit.live.inspect import take_snapshot
from dbaudit.outputs.report import execute_notebook, list_reports, new_report_dir, render_audit

NOTEBOOKS = ROOT / "notebooks"


@pytest.fixture(scope="module")
def demo_snapshots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("demo")
    metrics = load_expectations(EXPECTATIONS).metric_queries
    paths = {}
    for label, migration in (("before", None), ("webjs", "webjs"), ("faulty", "faulty")):
        db = build_database(work / f"{label}.sqlite", migration)
        paths[label] = work / f"{label}.json"
        take_snapshot(f"sqlite:///{db}", metrics).save(paths[label])
    return paths


def _error_outputs(notebook: Path) -> list[str]:
    """Errors and warnings; a progress bar on stderr is fine."""
    nb = nbformat.read(notebook, as_version=4)
    found = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                found.append(f"{out['ename']}: {out['evalue']}")
            elif out.get("name") == "stderr" and re.search(r"Warning|Traceback|Error", out.get("text", "")):
                found.append(out["text"])
    return found


def test_audit_report_of_the_planned_migration_passes(demo_snapshots: dict[str, Path], tmp_path: Path) -> None:
    report = render_audit(demo_snapshots["before"], demo_snapshots["webjs"], EXPECTATIONS, tmp_path, "planned",
                          progress=False)

    assert report.verdict == "pass"
    result = load_result(report.result)
    assert result.verdict == "pass" and result.summary["unexpected_changes"] == 0
    page = report.html.read_text(encoding="utf-8")
    assert "VERDICT: PASS" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//|@import""", page)  # opens offline
    assert "data:image/png;base64" in page  # the row-count chart is inline
    assert "from dbaudit" not in page  # code is not shown to the auditor
    assert _error_outputs(report.notebook) == []
    assert {p.name for p in report.directory.iterdir()} >= {
        "audit.ipynb", "report.html", "result.json", "before.json", "after.json", "expectations.yml"}


def test_audit_report_of_the_faulty_migration_fails_and_names_each_problem(
    demo_snapshots: dict[str, Path], tmp_path: Path
) -> None:
    report = render_audit(demo_snapshots["before"], demo_snapshots["faulty"], EXPECTATIONS, tmp_path, "faulty",
                          progress=False)

    assert report.verdict == "fail"
    failed = {(c.category, c.name) for c in load_result(report.result).failed_checks}
    assert failed == {
        ("unexpected", "column_added chats.legacy_provider"),
        ("unexpected", "index_removed whatsapp_sessions.whatsapp_sessions_status_index"),
        ("rows", "chats"), ("rows", "contacts"), ("metric", "total_chats"), ("metric", "total_contacts"),
    }
    page = report.html.read_text(encoding="utf-8")
    assert "VERDICT: FAIL" in page and "chats.legacy_provider" in page


def test_index_lists_every_report_newest_first_and_folders_are_never_reused(
    demo_snapshots: dict[str, Path], tmp_path: Path
) -> None:
    first = render_audit(demo_snapshots["before"], demo_snapshots["webjs"], None, tmp_path, "same", progress=False)
    second = render_audit(demo_snapshots["before"], demo_snapshots["before"], None, tmp_path, "same", progress=False)

    assert first.directory != second.directory and first.html.is_file()
    assert (first.verdict, second.verdict) == ("fail", "pass")  # without expectations any change fails
    listed = list_reports(tmp_path)
    assert [r.folder for r in listed] == [second.directory.name, first.directory.name]
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert index.count("report.html") == 2


def test_new_report_dir_never_returns_an_existing_folder(tmp_path: Path) -> None:
    folders = {new_report_dir(tmp_path, "x") for _ in range(5)}
    assert len(folders) == 5


@pytest.mark.parametrize(("notebook", "shown"), [
    ("audit.ipynb", ["VERDICT: PASS"]),
    ("snapshot.ipynb", ["whatsapp_sessions"]),
    ("compare.ipynb", ["VERDICT: FAIL", "removed", "id=10", "only_in_b"]),
])
def test_notebooks_run_as_committed_against_the_demo(notebook: str, shown: list[str], tmp_path: Path) -> None:
    """What a DBA gets when opening the notebook in JupyterLab and choosing Run All."""
    executed = tmp_path / notebook
    execute_notebook(NOTEBOOKS / notebook, executed, parameters={}, progress=False, cwd=NOTEBOOKS)
    assert _error_outputs(executed) == []
    text = json.dumps(nbformat.read(executed, as_version=4).cells)
    assert all(s in text for s in shown), [s for s in shown if s not in text]


@pytest.mark.parametrize("notebook", ["audit.ipynb", "snapshot.ipynb"])
def test_notebooks_find_their_defaults_when_run_from_the_repository_root(notebook: str, tmp_path: Path) -> None:
    executed = tmp_path / notebook
    execute_notebook(NOTEBOOKS / notebook, executed, parameters={}, progress=False, cwd=ROOT)
    assert _error_outputs(executed) == []


def test_bad_input_in_a_notebook_reads_as_one_line_not_a_traceback(tmp_path: Path) -> None:
    executed = tmp_path / "audit.ipynb"
    with pytest.raises(DbauditError, match=r"failed in cell \d+: DbauditError: snapshot file not found"):
        execute_notebook(NOTEBOOKS / "audit.ipynb", executed, {"before": "/nonexistent.json", "after": "x.json"},
                         progress=False)
    errors = [o for c in nbformat.read(executed, as_version=4).cells for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert len(errors) == 1 and errors[0]["traceback"] == [
        "dbaudit: error: snapshot file not found: /nonexistent.json"]


def test_the_snapshot_notebook_fingerprints_with_a_progress_bar(tmp_path: Path) -> None:
    executed = tmp_path / "snapshot.ipynb"
    execute_notebook(NOTEBOOKS / "snapshot.ipynb", executed, parameters={"fingerprint": "chunks"}, progress=False,
                     cwd=NOTEBOOKS)
    cells = nbformat.read(executed, as_version=4).cells
    stderr = "".join(o.get("text", "") for c in cells for o in c.get("outputs", []) if o.get("name") == "stderr")
    assert _error_outputs(executed) == []
    assert re.search(r"fingerprinting: .*row/s", stderr)
    boxes = [o.get("text", "") for c in cells for o in c.get("outputs", []) if o.get("name") == "stderr"]
    shown = ["\n".join(line.rstrip("\r").split("\r")[-1] for line in box.split("\n")) for box in boxes]
    assert all(text.strip() for text in shown), boxes  # JupyterLab would draw an empty red box
    assert "c2/sha256:1500:" in json.dumps(cells)  # chats, in the tables overview


def test_committed_notebooks_are_clean_and_parameterised() -> None:
    for path in NOTEBOOKS.glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)  # cell ids and all: JupyterLab opens them unmodified
        if path.stem in ("audit", "backup_check", "compare", "restore_check", "snapshot"):
            assert nb.metadata.kernelspec.name == "dbaudit", path.name
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), path.name
        assert sum("parameters" in c.metadata.get("tags", []) for c in code) == 1, path.name


def test_report_command_exit_code_follows_the_verdict(demo_snapshots: dict[str, Path], tmp_path: Path) -> None:
    def report(after: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "dbaudit", "report", "--before", str(demo_snapshots["before"]),
             "--after", str(demo_snapshots[after]), "--expect", str(EXPECTATIONS), "--out-dir", str(tmp_path)],
            capture_output=True, text=True, timeout=300,
        )

    passed, failed = report("webjs"), report("faulty")
    assert (passed.returncode, failed.returncode) == (0, 1), failed.stderr
    assert "verdict: PASS" in passed.stdout and "verdict: FAIL" in failed.stdout


def test_demo_renders_both_scenarios_and_exits_zero(tmp_path: Path) -> None:
    # A relative --out-dir, as `make demo` passes it.
    run = subprocess.run([sys.executable, "-m", "dbaudit", "demo", "--out-dir", "reports"],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)

    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert any("as planned" in line and " PASS " in line for line in lines)
    assert any("done wrong" in line and " FAIL " in line for line in lines)
    assert any("rehearsal: migrate, roll back, prove" in line and " PASS " in line for line in lines)
    assert any("rollback forgets an index" in line and " FAIL " in line for line in lines)
    assert [r.verdict for r in list_reports(tmp_path / "reports")] == ["fail", "pass", "fail", "pass"]
    assert "Traceback" not in run.stderr
