"""backup_check and restore_check notebooks through the real papermill + nbconvert path."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import nbformat
import pytest
import sqlalchemy as sa

from conftest import MARIADB_URL, ROOT
from dbaudit.backups.restore import restore_check
from dbaudit.outputs.report import execute_notebook, list_reports, render_backup_check, render_restore_check

NOTEBOOKS = ROOT / "notebooks"


def _errors(notebook: Path) -> list[str]:
    nb = nbformat.read(notebook, as_version=4)
    return [f"{o['ename']}: {o['evalue']}" for cell in nb.cells for o in cell.get("outputs", [])
            if o.get("output_type") == "error" or (o.get("name") == "stderr" and "Warning" in o.get("text", ""))]


def test_backup_check_report_of_world_passes_lists_its_tables_and_joins_the_index(
    shared_data: Path, tmp_path: Path
) -> None:
    report = render_backup_check(shared_data / "world" / "world.sql", out_dir=tmp_path, progress=False)

    assert report.verdict == "pass"
    page = report.html.read_text(encoding="utf-8")
    assert "VERDICT: PASS" in page and "countrylanguage" in page and "8.0.19-debug" in page
    assert "from dbaudit" not in page and not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert _errors(report.notebook) == []
    assert json.loads(report.result.read_text())["title"] == "world.sql"
    assert [(r.title, r.verdict) for r in list_reports(tmp_path)] == [("world.sql", "pass")]


def test_backup_check_report_of_a_cut_dump_fails_and_says_where_it_ends(shared_data: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.sql"
    cut.write_bytes((shared_data / "world" / "world.sql").read_bytes()[:150_000])

    report = render_backup_check(cut, out_dir=tmp_path / "reports", progress=False)

    assert report.verdict == "fail"
    assert "truncated: its last statement has no terminating ;" in report.html.read_text(encoding="utf-8")


def test_restore_check_report_shows_the_scratch_database_and_the_restored_tables(
    shared_data: Path, tmp_path: Path, mariadb_server: sa.Engine
) -> None:
    scratch = f"dbaudit_t_rst_{uuid.uuid4().hex[:8]}"
    result = restore_check(shared_data / "world" / "world.sql", MARIADB_URL, scratch=scratch)
    result.save(tmp_path / "restore.json")

    report = render_restore_check(tmp_path / "restore.json", tmp_path / "reports", progress=False)

    assert report.verdict == "pass"
    page = report.html.read_text(encoding="utf-8")
    assert f"{scratch} (dropped)" in page and "drop_database, create_database, use" in page
    assert _errors(report.notebook) == []


@pytest.mark.parametrize("folder", [NOTEBOOKS, ROOT, Path("/")], ids=["notebooks", "repository", "root"])
def test_backup_check_notebook_runs_with_its_defaults_from_any_folder(
    tmp_path: Path, shared_data: Path, folder: Path
) -> None:
    executed = tmp_path / "backup_check.ipynb"

    execute_notebook(NOTEBOOKS / "backup_check.ipynb", executed, {}, progress=False, cwd=folder)

    assert _errors(executed) == []
    assert "VERDICT: PASS" in json.dumps([c.get("outputs") for c in nbformat.read(executed, as_version=4).cells])
