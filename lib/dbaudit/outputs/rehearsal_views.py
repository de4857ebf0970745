"""The rehearsal report: what notebooks/rehearsal.ipynb shows, one function per section."""

from __future__ import annotations

import html

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import HTML
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from dbaudit.backups.rehearse import Rehearsal
from dbaudit.outputs import html as html_parts

_COLOURS = {"pass": html_parts.PASS_COLOUR, "fail": html_parts.FAIL_COLOUR, "skipped": "#8c959f"}


def verdict_banner(result: Rehearsal) -> HTML:
    s = result.summary
    if result.passed:
        detail = f"all {len(result.stages)} stages passed: the rollback brought back the database as it was restored"
    else:
        failed = [st.name for st in result.stages if st.status == "fail"]
        detail = f"{s['stages_failed']} stage(s) failed ({', '.join(failed)}), {s['stages_skipped']} not run"
    return html_parts.banner(result.verdict, f"{result.title} — {detail}; {s['seconds']:.1f} s")


def summary_table(result: Rehearsal) -> pd.DataFrame:
    rows = {"backup": result.dump, "server": result.server, "product": f"{result.product} {result.version}".strip(),
            "database": result.database, "scratch database": f"{result.scratch} ({'kept' if result.kept else 'dropped'})",
            "expectations": f"{result.expectations} ({result.expectations_file}"
                            f"{', derived' if result.derived_expectations else ''})",
            "migrate": "; ".join(result.migrate), "rollback": "; ".join(result.rollback),
            "stage time limit (s)": f"{result.stage_timeout:g}"}
    return pd.DataFrame({"value": rows})


def stage_timeline(result: Rehearsal) -> Figure:
    """Each stage as a bar from when it started to when it ended, coloured by its verdict."""
    figure, axis = plt.subplots(figsize=(9, 0.42 * len(result.stages) + 1.2))
    start = 0.0
    total = sum(s.seconds for s in result.stages) or 1.0
    for row, stage in enumerate(result.stages):
        width = max(stage.seconds, total / 400)  # a stage of no time still shows
        axis.barh(row, width, left=start, color=_COLOURS[stage.status], height=0.6)
        axis.text(start + width + total / 100, row, f"{stage.status.upper()}  {stage.seconds:.2f} s", va="center",
                  fontsize=9)
        start += stage.seconds
    axis.set_yticks(range(len(result.stages)), [s.name for s in result.stages])
    axis.invert_yaxis()
    axis.set_xlim(0, total * 1.3)
    axis.set_xlabel("seconds since the rehearsal started")
    axis.legend(handles=[Patch(color=c, label=s) for s, c in _COLOURS.items()], loc="lower right", fontsize=8)
    axis.set_title("Stages: duration and verdict")
    figure.tight_layout()
    plt.close(figure)
    return figure


def stages_table(result: Rehearsal) -> pd.DataFrame:
    return pd.DataFrame([{"stage": s.name, "status": s.status.upper(), "seconds": round(s.seconds, 2),
                          "what happened": s.message} for s in result.stages]).set_index("stage")


def stage_checks(result: Rehearsal, stage: str) -> object:
    checks = result.stage(stage).checks
    return html_parts.checks_table(checks) if checks else HTML(f"<p>The {html.escape(stage)} stage did not run.</p>")


def proof(result: Rehearsal) -> HTML:
    """The rollback proof: every table back as it was, or what is not, by table (key ranges and keys)."""
    stage = result.stage("proof")
    if stage.status == "skipped":
        return HTML(f"<p>Not proven: {html.escape(stage.message)}.</p>")
    failed = [c for c in stage.checks if c.status == "fail"]
    equal = [c for c in stage.checks if c.status == "pass"]
    head = (f"<p><b>{len(equal)}</b> table(s) have the schema and content they had before the migration"
            f"{'' if failed else ': the rollback is proven'}.</p>")
    rows = "".join(f"<tr><td><b>{html.escape(c.name)}</b></td><td>{html.escape(c.message)}</td></tr>" for c in failed)
    table = (f'<table class="dbaudit-changes"><tr><th>not back as it was</th><th>difference</th></tr>{rows}</table>'
             if failed else "")
    return HTML(head + table)


def step_outputs(result: Rehearsal) -> HTML:
    """What each migrate and rollback step printed (credentials masked), one collapsible block each."""
    parts = []
    for stage in (result.stage("migrate"), result.stage("rollback")):
        for step in stage.steps:
            what = f"{stage.name}: <code>{html.escape(step.source)}</code> — {html.escape(step.message)}"
            body = step.output or ("(SQL file: statements run by dbaudit, no output)" if step.kind == "sql"
                                   else "(no output)")
            parts.append(f"<details{' open' if step.status == 'fail' else ''}><summary>{what}</summary>"
                         f"<pre style='max-height:30em;overflow:auto'>{html.escape(body)}</pre></details>")
    return HTML("".join(parts) or "<p>No migrate or rollback step ran.</p>")
