"""The pieces every report shares: colours, the verdict banner and the checks table."""

from __future__ import annotations

import html
from collections.abc import Sequence

import pandas as pd
from IPython.display import HTML
from pandas.io.formats.style import Styler

from dbaudit.core.checks import Check

PASS_COLOUR, FAIL_COLOUR = "#1a7f37", "#cf222e"


def banner(verdict: str, detail: str) -> HTML:
    """VERDICT: PASS or FAIL across the top of a report, with one line saying why."""
    colour = PASS_COLOUR if verdict == "pass" else FAIL_COLOUR
    return HTML(
        f'<div class="dbaudit-verdict dbaudit-{html.escape(verdict)}" style="padding:16px 20px;border-radius:8px;'
        f'color:white;background:{colour};font-family:sans-serif">'
        f'<div style="font-size:28px;font-weight:700">VERDICT: {html.escape(verdict.upper())}</div>'
        f'<div style="font-size:15px;margin-top:6px">{html.escape(detail)}</div>'
        f"</div>"
    )


def checks_detail(checks: Sequence[Check]) -> str:
    failed = sum(1 for c in checks if c.status == "fail")
    return f"{failed} of {len(checks)} checks failed" if failed else f"all {len(checks)} checks passed"


def checks_table(checks: Sequence[Check], failed_first: bool = True) -> Styler:
    """One row per check, failed ones first, the status coloured."""
    frame = pd.DataFrame([vars(c) for c in checks], columns=["status", "category", "name", "message"])
    if failed_first and not frame.empty:
        frame = frame.sort_values("status", key=lambda s: s != "fail", kind="stable").reset_index(drop=True)
    return (frame.style.map(_status_colour, subset=["status"]).hide(axis="index")
            .set_properties(**{"text-align": "left"}))


def _status_colour(value: str) -> str:
    return f"color:white;background-color:{FAIL_COLOUR if value == 'fail' else PASS_COLOUR};font-weight:600"
