"""An auditor opens the archived demo report in a real browser, offline."""

from __future__ import annotations

import shutil

import pytest

from conftest import ROOT, unavailable
from dbaudit.demo import run as run_demo

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
                  "--no-first-run", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        unavailable("Debian's chromium is not installed (apt-get install chromium)")
    return str(path)


@pytest.mark.parametrize("scenario", ["as planned", "done wrong"])
def test_demo_report_opens_offline_with_its_verdict_and_no_errors(
    chromium: str, tmp_path_factory: pytest.TempPathFactory, scenario: str
) -> None:
    from playwright.sync_api import sync_playwright

    reports = dict(run_demo(tmp_path_factory.mktemp("reports")))
    report = next(r for label, r in reports.items() if scenario in label)
    requests: list[str] = []
    failures: list[str] = []
    problems: list[str] = []
    with sync_playwright() as play:
        browser = play.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("request", lambda r: requests.append(r.url))
        page.on("requestfailed", lambda r: failures.append(f"{r.url}: {r.failure}"))
        page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(report.html.as_uri(), wait_until="load")
        banner = page.inner_text(".dbaudit-verdict")
        sections = page.locator("details").count()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"report-{report.verdict}.png"), full_page=True)
        browser.close()

    assert failures == [] and problems == []
    assert [u for u in requests if not u.startswith(("file://", "data:"))] == []
    assert banner.startswith(f"VERDICT: {report.verdict.upper()}")
    assert sections >= 1
