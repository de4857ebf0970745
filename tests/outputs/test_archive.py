"""The report archive: sealed folders, a hash chain `dbaudit reports --verify` recomputes, a history page,
and reports that survive odd snapshots. Every report goes through the real papermill path."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import MARIADB_URL
from dbaudit.audit.expectations import load_expectations
from dbaudit.core.errors import DbauditError
from dbaudit.demo import EXPECTATIONS, build_database
from dbaudit.live.inspect import take_snapshot
from dbaudit.outputs import archive
from dbaudit.outputs.report import list_reports, render_audit, render_restore_check, verify_archive, write_index


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("demo")
    metrics = load_expectations(EXPECTATIONS).metric_queries
    paths = {}
    for label, migration in (("before", None), ("webjs", "webjs"), ("faulty", "faulty")):
        db = build_database(work / f"{label}.sqlite", migration)
        paths[label] = work / f"{label}.json"
        take_snapshot(f"sqlite:///{db}", metrics).save(paths[label])
    return paths


def _verify(out_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dbaudit", "reports", "--verify", "--out-dir", str(out_dir)],
                          capture_output=True, text=True, timeout=120)


def test_verify_passes_an_intact_archive_and_names_an_edited_then_a_deleted_report(
    snapshots: dict[str, Path], tmp_path: Path
) -> None:
    first = render_audit(snapshots["before"], snapshots["webjs"], EXPECTATIONS, tmp_path, "first", progress=False)
    second = render_audit(snapshots["before"], snapshots["faulty"], EXPECTATIONS, tmp_path, "second",
                          progress=False)
    intact = _verify(tmp_path)

    page = first.html.read_text(encoding="utf-8")
    first.html.write_text(page.replace("VERDICT: PASS", "VERDICT: PASS "), encoding="utf-8")
    edited = _verify(tmp_path)
    first.html.write_text(page, encoding="utf-8")
    restored = _verify(tmp_path)
    shutil.rmtree(second.directory)
    deleted = _verify(tmp_path)

    assert intact.returncode == 0 and "2 report(s)" in intact.stdout, intact.stderr
    assert edited.returncode == 1 and f"{first.directory.name}: report.html was altered" in edited.stdout
    assert restored.returncode == 0
    assert deleted.returncode == 1 and f"{second.directory.name}: report folder is missing" in deleted.stdout


def test_verify_notices_a_rewritten_chain_entry_and_a_forged_report_folder(
    snapshots: dict[str, Path], tmp_path: Path
) -> None:
    report = render_audit(snapshots["before"], snapshots["faulty"], EXPECTATIONS, tmp_path, "x", progress=False)
    chain = tmp_path / archive.CHAIN
    original = chain.read_text(encoding="utf-8")
    chain.write_text(original.replace('"verdict": "fail"', '"verdict": "pass"'), encoding="utf-8")
    rewritten = verify_archive(tmp_path)[1]
    chain.write_text(original, encoding="utf-8")
    forged = tmp_path / "20991231T000000Z-forged"
    shutil.copytree(report.directory, forged)
    added = verify_archive(tmp_path)[1]

    assert rewritten is not None and rewritten.folder == report.directory.name and "edited" in rewritten.what
    assert added is not None and added.folder == forged.name and "not in the archive chain" in added.what


def test_the_index_shows_kind_verdict_failed_checks_and_database_and_a_new_kind_is_one_entry(
    snapshots: dict[str, Path], tmp_path: Path
) -> None:
    render_audit(snapshots["before"], snapshots["faulty"], EXPECTATIONS, tmp_path, "faulty", progress=False)
    made = tmp_path / "20990101T000000Z-rehearsal"
    made.mkdir()
    (made / "report.html").write_text("<p>rehearsal</p>", encoding="utf-8")
    (made / "result.json").write_text(json.dumps({
        "kind": "dbaudit.test-kind", "verdict": "fail", "title": "dry run", "generated_at": "2099-01-01T00:00:00",
        "database": "shop", "product": "MariaDB", "checks": [{"status": "fail"}, {"status": "pass"}]}),
        encoding="utf-8")
    archive.register_kind("dbaudit.test-kind", "drill")
    try:
        archive.append(tmp_path, made)
        write_index(tmp_path)
    finally:
        del archive.KINDS["dbaudit.test-kind"]

    listed = {r.title: r for r in list_reports(tmp_path)}
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert (listed["faulty"].kind, listed["faulty"].verdict, listed["faulty"].failed) == ("audit", "fail", 6)
    assert "faulty.sqlite (SQLite)" in listed["faulty"].database
    assert (listed["dry run"].kind, listed["dry run"].failed, listed["dry run"].database) == ("drill", 1, "shop (MariaDB)")
    assert re.search(r"<td>drill</td>.*dry run.*shop \(MariaDB\).*FAIL", index, re.S)
    assert verify_archive(tmp_path)[1] is None


def test_a_database_audited_twice_gets_a_history_page_with_inline_charts(
    snapshots: dict[str, Path], tmp_path: Path
) -> None:
    before = json.loads(snapshots["before"].read_text(encoding="utf-8"))
    for run, migration in enumerate(("webjs", "faulty")):
        after = json.loads(snapshots[migration].read_text(encoding="utf-8"))
        after["database"] = before["database"]  # the same database, changed twice
        after["taken_at"] = f"2026-12-0{run + 2}T10:00:00+00:00"
        (tmp_path / f"after{run}.json").write_text(json.dumps(after), encoding="utf-8")
        render_audit(snapshots["before"], tmp_path / f"after{run}.json", EXPECTATIONS, tmp_path / "reports",
                     progress=False)

    history = (tmp_path / "reports" / "history.html").read_text(encoding="utf-8")
    assert history.count("data:image/png;base64,") == 2
    assert "chats" in history and "2026-12-03T10:00:00+00:00" in history
    assert 'href="history.html"' in (tmp_path / "reports" / "index.html").read_text(encoding="utf-8")


def _visible_text(page: str) -> str:
    body = page[page.index("<body"):]
    body = re.sub(r"<(script|style)\b.*?</\1>", "", body, flags=re.S)
    return re.sub(r"<[^>]+>", " ", body)


def test_report_renders_for_no_counts_snapshots_and_all_empty_databases_without_pandas_artefacts(
    tmp_path: Path
) -> None:
    empty = tmp_path / "empty.sqlite"
    with sqlite3.connect(empty) as db:
        db.execute("CREATE TABLE a (id INTEGER PRIMARY KEY)")
        db.execute("CREATE TABLE b (id INTEGER PRIMARY KEY, note TEXT DEFAULT NULL)")
    take_snapshot(f"sqlite:///{empty}").save(tmp_path / "empty.json")
    take_snapshot(f"sqlite:///{empty}", count_rows=False).save(tmp_path / "uncounted.json")

    reports = [render_audit(tmp_path / "empty.json", tmp_path / "empty.json", None, tmp_path / "r", progress=False),
               render_audit(tmp_path / "uncounted.json", tmp_path / "uncounted.json", None, tmp_path / "r",
                            progress=False)]

    for report in reports:
        text = _visible_text(report.html.read_text(encoding="utf-8"))
        assert not re.search(r"&lt;NA&gt;|\bNaN\b|\bnan\b|\bNone\b", text), report.directory.name
    assert "row counts were not taken" in reports[1].html.read_text(encoding="utf-8")


def test_a_report_stopped_by_a_full_disk_is_set_aside_and_the_index_stays_whole(
    snapshots: dict[str, Path], tmp_path: Path
) -> None:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a small tmpfs")
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(disk)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        write_index(disk)
        index = (disk / "index.html").read_text(encoding="utf-8")
        with pytest.raises(DbauditError, match=r"disk is full.*set aside as .*\.failed"):
            render_audit(snapshots["before"], snapshots["faulty"], EXPECTATIONS, disk, "full", progress=False)
        folders = [p.name for p in disk.iterdir() if p.is_dir()]
        assert len(folders) == 1 and folders[0].endswith(".failed")
        assert (disk / "index.html").read_text(encoding="utf-8") == index
        assert list_reports(disk) == [] and verify_archive(disk)[1] is None
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_a_restore_report_does_not_carry_the_row_values_the_client_quoted(
    tmp_path: Path, mariadb_server: sa.Engine
) -> None:
    from dbaudit.backups.restore import restore_check

    secret = f"canary-{uuid.uuid4().hex[:8]}@example.org"
    dump = tmp_path / "dup.sql"
    dump.write_text(
        "-- MariaDB dump 10.19  Distrib 10.11.6-MariaDB, for debian-linux-gnu (x86_64)\n--\n"
        "-- Host: localhost    Database: shop\n\n"
        "CREATE TABLE `people` (`id` int NOT NULL, `email` varchar(80) NOT NULL, PRIMARY KEY (`id`), "
        "UNIQUE KEY `email` (`email`));\n"
        f"INSERT INTO `people` VALUES (1,'{secret}'),(2,'{secret}');\n-- Dump completed on 2026-12-01 10:00:00\n",
        encoding="utf-8")
    scratch = f"dbaudit_t_dup_{uuid.uuid4().hex[:8]}"
    result = restore_check(dump, MARIADB_URL, scratch=scratch)
    result.save(tmp_path / "restore.json")
    # The server quotes the duplicate value; restore-check cuts its words before it, in the result too.
    assert not any(secret in c.message for c in result.checks)
    assert secret not in (tmp_path / "restore.json").read_text(encoding="utf-8")

    report = render_restore_check(tmp_path / "restore.json", tmp_path / "reports", progress=False)

    page = report.html.read_text(encoding="utf-8")
    assert report.verdict == "fail" and "Duplicate entry" in page and "1062" in page
    assert secret not in page


def test_a_new_notebook_kind_renders_through_render_notebook_and_is_listed_by_its_kind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the rehearsal report (another notebook, another document kind) relies on."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    from dbaudit.outputs.report import NOTEBOOKS_ENV, new_report_dir, render_notebook

    folder = tmp_path / "notebooks"
    shutil.copytree(Path(__file__).resolve().parents[2] / "notebooks", folder)
    params = new_code_cell('result_path = ""')
    params.metadata["tags"] = ["parameters"]
    nbformat.write(new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                          "display_name": "Python 3"}}, cells=[
        new_markdown_cell("# Drill"), params,
        new_code_cell("import json\njson.dump({'kind': 'dbaudit.rehearsal', 'verdict': 'pass', 'title': 'drill', "
                      "'generated_at': '2026-12-01T10:00:00', 'database': 'shop', 'checks': []}, "
                      "open(result_path, 'w'))")]), folder / "drill.ipynb")
    monkeypatch.setenv(NOTEBOOKS_ENV, str(folder))
    out = tmp_path / "reports"
    directory = new_report_dir(out, "drill")

    report = render_notebook("drill.ipynb", directory, {"result_path": str(directory / "result.json")}, out,
                             progress=False)

    assert report.verdict == "pass" and (directory / "provenance.json").is_file()
    assert [(r.kind, r.database) for r in list_reports(out)] == [("rehearsal", "shop")]
    assert verify_archive(out)[1] is None


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGINT"])
def test_a_report_stopped_by_a_signal_is_set_aside_in_one_line(
    snapshots: dict[str, Path], tmp_path: Path, signal_name: str
) -> None:
    import signal
    import time

    out = tmp_path / "reports"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dbaudit", "report", "--before", str(snapshots["before"]), "--after",
         str(snapshots["faulty"]), "--expect", str(EXPECTATIONS), "--out-dir", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not any(p.is_dir() for p in out.glob("*")) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # inside the notebook run
        proc.send_signal(getattr(signal, signal_name))
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    folders = [p.name for p in out.iterdir() if p.is_dir()]
    signum = getattr(signal, signal_name)
    assert proc.returncode == 128 + signum, stderr
    said = "interrupted" if signum == signal.SIGINT else "terminated (SIGTERM)"
    assert stderr.strip() == f"dbaudit: error: {said}"
    assert len(folders) == 1 and folders[0].endswith(".failed")
    assert list_reports(out) == [] and verify_archive(out)[1] is None
