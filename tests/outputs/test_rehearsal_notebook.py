"""The rehearsal report: `dbaudit rehearse --report` archives the evidence and renders notebooks/rehearsal.ipynb."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import nbformat
import pytest

from conftest import ROOT
from dbaudit.cli import main
from dbaudit.demo import EXPECTATIONS, FORGOTTEN_INDEX, MIGRATIONS, ROLLBACK, build_database
from dbaudit.outputs.report import execute_notebook, list_reports

SCHEMA = json.loads((ROOT / "lib" / "dbaudit" / "schemas" / "rehearsal.schema.json").read_text())


def _errors(notebook: Path) -> list[str]:
    return [o.get("ename", "") for cell in nbformat.read(notebook, as_version=4).cells
            for o in cell.get("outputs", []) if o.get("output_type") == "error"]


def test_a_failing_rehearsal_report_shows_the_timeline_the_proof_and_archives_its_evidence(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    backup = build_database(tmp_path / "blazz.sqlite")
    rollback = tmp_path / "rollback.sql"
    rollback.write_text(ROLLBACK.read_text().replace(FORGOTTEN_INDEX, ""))
    out = tmp_path / "reports"

    code = main(["rehearse", str(backup), "--server", "sqlite://", "--migrate", str(MIGRATIONS["webjs"][0]),
                 "--rollback", str(rollback), "--report", "--out-dir", str(out)])

    assert code == 1
    assert "verdict: FAIL" in capsys.readouterr().out
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    archived = {p.name for p in folder.iterdir()}
    assert {"before.json", "after.json", "rolled-back.json", "expectations.yml", "rehearsal.json", "result.json",
            "migrate-1-webjs_migration.sqlite.sql", "rollback-1-rollback.sql", "report.html"} <= archived
    assert "required:" in (folder / "expectations.yml").read_text()  # derived from the migration, as it was used
    jsonschema.validate(json.loads((folder / "result.json").read_text()), SCHEMA)
    assert not _errors(folder / "rehearsal.ipynb")
    page = (folder / "report.html").read_text()
    assert "VERDICT: FAIL" in page and "Stage timeline" in page and "data:image/png;base64" in page
    assert "index chats.chats_wam_id_index removed" in page
    (listed,) = list_reports(out)
    assert listed.verdict == "fail" and listed.database == "blazz (SQLite)"


def test_the_notebook_runs_with_its_defaults_and_rehearses_the_demo(tmp_path: Path) -> None:
    target = tmp_path / "rehearsal.ipynb"
    execute_notebook(ROOT / "notebooks" / "rehearsal.ipynb", target, {"result_path": str(tmp_path / "r.json")},
                     progress=False)

    assert not _errors(target)
    document = json.loads((tmp_path / "r.json").read_text())
    assert document["verdict"] == "pass" and document["expectations"] == "blazz-webjs"
    assert EXPECTATIONS.name in document["expectations_file"]
