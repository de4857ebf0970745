"""Archived reports as an auditor opens them, in headless Chromium: nothing hidden, nothing run, A4 whole.

Every report here goes through the real path (papermill runs the notebook, nbconvert renders it)."""

from __future__ import annotations

import hashlib
import re
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from test_browser import CHROMIUM_FLAGS, chromium  # noqa: F401  (the fixture)

from conftest import ROOT
from dbaudit.audit.expectations import load_expectations
from dbaudit.demo import EXPECTATIONS, build_database
from dbaudit.live.inspect import take_snapshot
from dbaudit.outputs.report import Report, render_audit, render_backup_check

ARTIFACTS = ROOT / "test-artifacts"
SHRUNK = "t_57_orders"


class _Canary(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def canary() -> Iterator[tuple[int, list[str]]]:
    """A local web server the hostile names try to call: it must hear nothing."""
    hits: list[str] = []
    handler = type("Canary", (_Canary,), {"hits": hits})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], hits
    finally:
        server.shutdown()
        server.server_close()


def _hostile_names(port: int) -> list[str]:
    return [f"<img src=x onerror=fetch('http://127.0.0.1:{port}/img')>",
            f"</script><script>fetch('http://127.0.0.1:{port}/script')</script>",
            f"\"><svg onload=fetch('http://127.0.0.1:{port}/svg')>",
            r"$\frac{broken$ mathtext"]


def _database(path: Path, names: list[str], shrink: bool) -> Path:
    """80 tables (4 with hostile names); `shrink` takes rows out of one of them."""
    with sqlite3.connect(path) as db:
        for number, name in enumerate(names):
            quoted = '"' + name.replace('"', '""') + '"'
            db.execute(f"CREATE TABLE {quoted} (id INTEGER PRIMARY KEY, note TEXT)")
            rows = 3 + number % 7 if name.startswith("t_") else 20  # the hostile ones are drawn in the chart
            if shrink and name == SHRUNK:
                rows -= 2
            db.executemany(f"INSERT INTO {quoted} (note) VALUES (?)", [(f"row {i}",) for i in range(rows)])
    return path


def _eighty_tables(port: int) -> list[str]:
    names = [f"t_{n:02d}_{word}" for n, word in zip(range(76), ["orders", "items", "users"] * 26, strict=False)]
    names = [SHRUNK if n.startswith("t_57_") else n for n in names]
    return [*names, *_hostile_names(port)]


def _open(chromium_path: str, page_file: Path, screenshot: str, width: int = 1280,
          print_media: bool = False) -> tuple[Any, Any, Any, list[str], list[str]]:
    from playwright.sync_api import sync_playwright

    play = sync_playwright().start()
    browser = play.chromium.launch(executable_path=chromium_path, args=CHROMIUM_FLAGS)
    page = browser.new_page(viewport={"width": width, "height": 900})
    requests: list[str] = []
    problems: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    if print_media:
        page.emulate_media(media="print")
    page.goto(page_file.as_uri(), wait_until="load")
    page.wait_for_timeout(300)  # an onerror handler would have fired by now
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / screenshot), full_page=True)
    return play, browser, page, requests, problems


def _network(requests: list[str]) -> list[str]:
    return [u for u in requests if not u.startswith(("file://", "data:"))]


@pytest.fixture()
def hostile_audit(tmp_path: Path, canary: tuple[int, list[str]]) -> tuple[Report, list[str], list[str]]:
    port, hits = canary
    names = _eighty_tables(port)
    before = take_snapshot(f"sqlite:///{_database(tmp_path / 'before.sqlite', names, False)}")
    after = take_snapshot(f"sqlite:///{_database(tmp_path / 'after.sqlite', names, True)}")
    before.save(tmp_path / "before.json")
    after.save(tmp_path / "after.json")
    report = render_audit(tmp_path / "before.json", tmp_path / "after.json", None, tmp_path / "reports",
                          f"eighty <img src=x onerror=fetch('http://127.0.0.1:{port}/title')>", progress=False)
    return report, names, hits


def test_an_80_table_audit_shows_every_table_and_hostile_names_stay_inert_text(
    chromium: str, hostile_audit: tuple[Report, list[str], list[str]]  # noqa: F811
) -> None:
    report, names, hits = hostile_audit
    play, browser, page, requests, problems = _open(chromium, report.html, "report-80-tables.png")
    try:
        text = page.inner_text("body")
        counts = page.locator("table.dbaudit-table", has=page.locator("th", has_text="change")).last
        count_rows = counts.locator("tbody tr")
        first_row = count_rows.first.inner_text()
        listed = count_rows.count()
        checks = page.locator("table.dbaudit-table", has=page.locator("th", has_text="message")).first.inner_text()
        chart = page.locator("figure.dbaudit-figure").inner_text()
        injected = page.locator("img[src=x], svg, body script:not(:last-of-type)").count()
        index = browser.new_page()
        index.on("request", lambda r: requests.append(r.url))
        index.goto((report.directory.parent / "index.html").as_uri(), wait_until="load")
        index.wait_for_timeout(300)
        index_text = index.inner_text("body")
        index_injected = index.locator("img").count()
    finally:
        browser.close()
        play.stop()

    assert listed == 80  # every table, not ten and "…"
    assert first_row.startswith(SHRUNK)  # changed tables first
    assert f"rows\t{SHRUNK}" in checks.replace("\n", "\t") or SHRUNK in checks
    assert all(name in text for name in names[-4:])  # shown as text …
    assert injected == 0 and index_injected == 0  # … never as markup
    assert "eighty <img src=x" in index_text
    assert chart.startswith("Rows per table: 1 changed") and "50 smallest unchanged ones left out" in chart
    assert _network(requests) == [] and hits == []
    assert problems == []


def test_a_dump_with_a_hostile_table_name_renders_as_text_without_network(
    chromium: str, tmp_path: Path, canary: tuple[int, list[str]]  # noqa: F811
) -> None:
    port, hits = canary
    name = _hostile_names(port)[0]
    dump = tmp_path / "hostile.sql"
    dump.write_text(
        "-- MariaDB dump 10.19  Distrib 10.11.6-MariaDB, for debian-linux-gnu (x86_64)\n--\n"
        "-- Host: localhost    Database: shop\n-- Server version\t10.11.6-MariaDB\n\n"
        f"CREATE TABLE `{name}` (`id` int NOT NULL, PRIMARY KEY (`id`));\n"
        f"INSERT INTO `{name}` VALUES (1),(2);\n-- Dump completed on 2026-12-01 10:00:00\n", encoding="utf-8")

    report = render_backup_check(dump, out_dir=tmp_path / "reports", progress=False)
    play, browser, page, requests, problems = _open(chromium, report.html, "report-hostile-dump.png")
    try:
        text = page.inner_text("body")
        injected = page.locator("img[src=x]").count()
        sha = page.locator("td.mono", has_text=hashlib.sha256(dump.read_bytes()).hexdigest()).count()
    finally:
        browser.close()
        play.stop()

    assert name in text and injected == 0
    assert sha >= 1  # the whole checksum, monospaced
    assert _network(requests) == [] and hits == []
    assert problems == []


def test_printed_on_a4_the_failing_demo_report_keeps_every_column_whole(chromium: str, tmp_path: Path) -> None:  # noqa: F811
    work = tmp_path / "demo"
    work.mkdir()
    metrics = load_expectations(EXPECTATIONS).metric_queries
    for label, migration in (("before", None), ("faulty", "faulty")):
        db = build_database(work / f"{label}.sqlite", migration)
        take_snapshot(f"sqlite:///{db}", metrics).save(work / f"{label}.json")
    report = render_audit(work / "before.json", work / "faulty.json", EXPECTATIONS, tmp_path / "reports",
                          progress=False)
    # A4 is 210 mm wide; 12 mm margins leave 186 mm, 703 CSS pixels.
    play, browser, page, requests, problems = _open(chromium, report.html, "report-print-a4.png", width=703,
                                                    print_media=True)
    try:
        clipped = page.evaluate("""() => {
            const width = document.documentElement.clientWidth, found = [];
            document.querySelectorAll('table, td, th, img').forEach(e => {
                const box = e.getBoundingClientRect();
                if (box.right > width + 1) { found.push(e.tagName + ': ' + e.textContent.slice(0, 60)); }
                if (e.tagName === 'TD' && e.scrollWidth > e.clientWidth + 1) { found.push('cut: ' + e.textContent); }
            });
            return found;
        }""")
        messages = page.locator("table.dbaudit-table", has=page.locator("th", has_text="message")).first
        message_cells = messages.locator("tbody tr td:nth-child(4)").all_inner_texts()
        verdict_top = page.locator(".dbaudit-verdict").bounding_box()
        pdf = page.pdf(format="A4", print_background=True)
        (ARTIFACTS / "report-print-a4.pdf").write_bytes(pdf)
    finally:
        browser.close()
        play.stop()

    assert clipped == []
    assert any("chats.legacy_provider added" in m for m in message_cells)
    assert verdict_top is not None and verdict_top["y"] < 1000  # the verdict on page one (A4: 1123 px high)
    assert pdf.startswith(b"%PDF") and _network(requests) == []


def test_provenance_shows_the_version_servers_expectations_and_the_sha256_of_every_input(tmp_path: Path) -> None:
    work = tmp_path / "demo"
    work.mkdir()
    metrics = load_expectations(EXPECTATIONS).metric_queries
    for label, migration in (("before", None), ("webjs", "webjs")):
        db = build_database(work / f"{label}.sqlite", migration)
        take_snapshot(f"sqlite:///{db}", metrics).save(work / f"{label}.json")

    report = render_audit(work / "before.json", work / "webjs.json", EXPECTATIONS, tmp_path / "reports",
                          progress=False)

    page = report.html.read_text(encoding="utf-8")
    block = page[page.index("Provenance"):page.index("What was compared")]
    for source in (work / "before.json", work / "webjs.json", EXPECTATIONS):
        assert hashlib.sha256(source.read_bytes()).hexdigest() in block, source
    assert "dbaudit version" in block and "SQLite 3." in block
    assert "blazz-webjs</b>: chats gains exactly" in block  # the expectations' name and description
    assert re.search(r"<title>PASS: blazz-webjs — dbaudit audit report", page)
    assert "Run all cells as they are" not in page  # the notebook users' instructions are dropped
