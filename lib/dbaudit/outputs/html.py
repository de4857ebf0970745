"""The pieces every report shares: the verdict banner, escaped tables, the page's one script and its CSP.

Everything that reaches a report's HTML goes through jinja2 with autoescaping: table, column and file
names, dump text and messages are data written by people the auditor does not trust (docs/security.md).
Pandas' Styler does not escape, and a DataFrame's HTML cuts long tables to ten rows, so reports use
`Table` instead. The page's Content-Security-Policy allows no script but the one below (by its hash),
no network, and images only inline: even a value that slipped through could neither run nor call home.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jinja2
from IPython.display import HTML

from dbaudit.core.checks import Check

PASS_COLOUR, FAIL_COLOUR = "#1a7f37", "#cf222e"
MISSING = "—"  # a value that does not exist (a table only on one side, a count not taken)
NULL = "NULL"  # a value the database holds as NULL

ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)

# Click a column head to sort; type in the box above a long table to filter its rows. Plain DOM, no library.
SCRIPT = """
(function () {
  function key(cell) {
    var v = cell.getAttribute('data-sort');
    if (v !== null && v !== '' && !isNaN(v)) { return [0, Number(v)]; }
    return [1, cell.textContent.toLowerCase()];
  }
  function sortBy(table, index, head) {
    var body = table.tBodies[0], up = head.getAttribute('aria-sort') !== 'ascending';
    Array.prototype.forEach.call(head.parentNode.cells, function (c) { c.removeAttribute('aria-sort'); });
    head.setAttribute('aria-sort', up ? 'ascending' : 'descending');
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (x, y) {
      var a = key(x.cells[index]), b = key(y.cells[index]);
      var order = a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0);
      return up ? order : -order;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  document.querySelectorAll('table.dbaudit-table').forEach(function (table) {
    if (!table.tHead || !table.tBodies.length) { return; }
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (head, index) {
      head.tabIndex = 0;
      head.title = 'sort by this column';
      head.addEventListener('click', function () { sortBy(table, index, head); });
      head.addEventListener('keydown', function (e) { if (e.key === 'Enter') { sortBy(table, index, head); } });
    });
    if (table.tBodies[0].rows.length > 10) {
      var box = document.createElement('input');
      box.type = 'search';
      box.placeholder = 'filter these ' + table.tBodies[0].rows.length + ' rows';
      box.className = 'dbaudit-filter';
      box.addEventListener('input', function () {
        var q = box.value.toLowerCase();
        Array.prototype.forEach.call(table.tBodies[0].rows, function (r) {
          r.style.display = r.textContent.toLowerCase().indexOf(q) < 0 ? 'none' : '';
        });
      });
      table.parentNode.insertBefore(box, table);
    }
  });
})();
"""


def script_hash(script: str = SCRIPT) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")


def content_security_policy(script: str = SCRIPT) -> str:
    """No network at all, images only inline, no script but ours, no forms, no <base>."""
    return (f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src '{script_hash(script)}'; "
            "base-uri 'none'; form-action 'none'")


# A4 without clipped columns: tables wrap instead of scrolling, long values break anywhere, headings stay
# with what follows them, and every collapsible group prints open.
STYLE = """
body { max-width: 1200px; margin: 0 auto; }
.dbaudit-table, .dbaudit-changes { border-collapse: collapse; margin: 6px 0 14px 0; font-size: 13px; }
/* The lab stylesheet fixes table layout, which splits a printed page into equal columns. */
table.dbaudit-table, table.dbaudit-changes { table-layout: auto !important; }
.jp-RenderedHTMLCommon .dbaudit-table td, .jp-RenderedHTMLCommon .dbaudit-table th,
.dbaudit-table td, .dbaudit-table th { border: 1px solid #d0d7de; padding: 3px 8px; text-align: left;
  vertical-align: top; }
.dbaudit-table th { background: #f6f8fa; cursor: pointer; }
.dbaudit-table th[aria-sort=ascending]::after { content: " \\25B2"; }
.dbaudit-table th[aria-sort=descending]::after { content: " \\25BC"; }
.dbaudit-table td.num { text-align: right; font-variant-numeric: tabular-nums; }
.dbaudit-mono, .dbaudit-table td.mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  font-size: 12px; overflow-wrap: anywhere; user-select: all; }
.dbaudit-table td.status-fail { background: #cf222e; color: #fff; font-weight: 600; }
.dbaudit-table td.status-pass { background: #1a7f37; color: #fff; font-weight: 600; }
.dbaudit-table td.status-error { background: #9a6700; color: #fff; font-weight: 600; }
.dbaudit-table caption { caption-side: top; text-align: left; color: #57606a; padding: 2px 0; }
.dbaudit-filter { margin: 4px 0; padding: 3px 6px; min-width: 260px; }
.dbaudit-provenance { font-size: 13px; margin: 10px 0; }
.dbaudit-provenance th { white-space: nowrap; }
details > summary { cursor: pointer; margin: 6px 0; }
.dbaudit-figure { margin: 6px 0; } .dbaudit-figure img, body > img { display: block; max-width: 100%; }
.dbaudit-figure figcaption { color: #57606a; font-size: 13px; }
@page { size: A4; margin: 12mm; }
@media print {
  body { max-width: none; margin: 0; }
  .dbaudit-filter { display: none; }
  .jp-OutputArea-output, .jp-RenderedHTMLCommon, .jp-Cell, .jp-OutputArea { overflow: visible !important; }
  .dbaudit-table, .dbaudit-changes { width: 100%; font-size: 9pt; }
  .dbaudit-table td, .dbaudit-table th, .dbaudit-changes td { overflow-wrap: anywhere; white-space: normal; }
  .dbaudit-table td.tight, .dbaudit-table td[class*=status-] { width: 1%; white-space: nowrap;
    overflow-wrap: normal; }
  .dbaudit-table th { white-space: nowrap; overflow-wrap: normal; }
  .dbaudit-table th[aria-sort]::after { content: ""; }
  h1, h2, h3, summary { break-after: avoid; page-break-after: avoid; }
  tr, .dbaudit-verdict, img { break-inside: avoid; page-break-inside: avoid; }
  img { max-width: 100% !important; height: auto !important; }
  details > *:not(summary) { display: block !important; }
}
"""


def banner(verdict: str, detail: str) -> HTML:
    """VERDICT: PASS or FAIL across the top of a report, with one line saying why."""
    return HTML(ENV.from_string(
        '<div class="dbaudit-verdict dbaudit-{{ v }}" style="padding:16px 20px;border-radius:8px;color:white;'
        'background:{{ colour }};font-family:sans-serif"><div style="font-size:28px;font-weight:700">'
        'VERDICT: {{ v | upper }}</div><div style="font-size:15px;margin-top:6px">{{ detail }}</div></div>'
    ).render(v=verdict, colour=PASS_COLOUR if verdict == "pass" else FAIL_COLOUR, detail=detail))


def checks_detail(checks: Sequence[Check]) -> str:
    failed = sum(1 for c in checks if c.status == "fail")
    return f"{failed} of {len(checks)} checks failed" if failed else f"all {len(checks)} checks passed"


def is_missing(value: Any) -> bool:
    """None, NaN and pandas' NA: none of them may reach a report as `None`, `nan` or `<NA>`."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return type(value).__name__ in ("NAType", "NaTType")


def cell_text(value: Any, missing: str = MISSING) -> str:
    if is_missing(value):
        return missing
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".")
    if isinstance(value, list | tuple):
        return ", ".join(cell_text(v, missing) for v in value) or missing
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={cell_text(v, missing)}" for k, v in value.items()) or missing
    return str(value)


def sort_key(value: Any) -> str:
    if isinstance(value, bool) or is_missing(value):
        return ""
    return str(value) if isinstance(value, int | float) else ""


@dataclass
class Table:
    """Every row, every value escaped; sortable and filterable by the page's script, readable without it.

    `mono` columns (checksums, sizes, SQL) print monospaced and whole; `status` columns are coloured;
    `missing` is what an absent value reads as (NULL where the database holds NULL)."""

    columns: list[str]
    rows: list[list[Any]]
    mono: set[str] = field(default_factory=set)
    status: set[str] = field(default_factory=set)
    tight: set[str] = field(default_factory=set)  # short words: never wrapped, as narrow as they are
    caption: str = ""
    missing: str = MISSING
    empty: str = "none"

    def __len__(self) -> int:
        return len(self.rows)

    def column(self, name: str) -> list[Any]:
        index = self.columns.index(name)
        return [row[index] for row in self.rows]

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def to_frame(self) -> Any:
        """The same rows as a pandas DataFrame, for exploring in JupyterLab."""
        import pandas as pd

        return pd.DataFrame(self.rows, columns=self.columns)

    def _cells(self) -> Iterable[list[dict[str, str]]]:
        for row in self.rows:
            cells = []
            for name, value in zip(self.columns, row, strict=True):
                classes = []
                if name in self.mono:
                    classes.append("mono")
                if name in self.tight:
                    classes.append("tight")
                if isinstance(value, int | float) and not isinstance(value, bool) and not is_missing(value):
                    classes.append("num")
                if name in self.status and isinstance(value, str):
                    classes.append(f"status-{re.sub(r'[^a-z_]', '', value.lower())}")
                cells.append({"text": cell_text(value, self.missing), "sort": sort_key(value),
                              "class": " ".join(classes)})
            yield cells

    def _repr_html_(self) -> str:
        return _TABLE.render(table=self, body=list(self._cells()))


_TABLE = ENV.from_string("""\
{% if not table.rows %}<p><em>{{ table.caption ~ ': ' if table.caption }}{{ table.empty }}</em></p>{% else %}
<table class="dbaudit-table">{% if table.caption %}<caption>{{ table.caption }}</caption>{% endif %}
<thead><tr>{% for name in table.columns %}<th scope="col">{{ name }}</th>{% endfor %}</tr></thead>
<tbody>
{% for row in body %}<tr>{% for c in row %}<td{% if c.class %} class="{{ c.class }}"{% endif %}\
{% if c.sort %} data-sort="{{ c.sort }}"{% endif %}>{{ c.text }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table>{% endif %}
""")


def key_values(values: Mapping[str, Any], mono: Iterable[str] = (), caption: str = "") -> Table:
    """A two-column table (what, value); the values of the `mono` keys print monospaced and whole."""
    return _KeyValues(["", "value"], [[k, v] for k, v in values.items()], caption=caption, tight={""},
                      mono_keys=set(mono))


@dataclass
class _KeyValues(Table):
    mono_keys: set[str] = field(default_factory=set)

    def _cells(self) -> Iterable[list[dict[str, str]]]:
        for (key, _), cells in zip(self.rows, super()._cells(), strict=True):
            if key in self.mono_keys:
                cells[1]["class"] = (cells[1]["class"] + " mono").strip()
            yield cells


def checks_table(checks: Sequence[Check], failed_first: bool = True) -> Table:
    """One row per check, failed ones first, the status coloured."""
    ordered = sorted(checks, key=lambda c: c.status != "fail") if failed_first else list(checks)
    return Table(["status", "category", "name", "message"],
                 [[c.status, c.category, c.name, c.message] for c in ordered], status={"status"},
                 tight={"status", "category"}, empty="no checks")


def plain_label(name: str) -> str:
    """A name for a matplotlib label: `$…$` would be parsed as mathtext (and a bad formula stops the chart)."""
    return name.replace("$", r"\$")


def figure(chart: Any, caption: str) -> HTML:
    """A matplotlib figure as an inline PNG, with its caption as text (and as the image's alt text)."""
    import io

    buffer = io.BytesIO()
    chart.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return render('<figure class="dbaudit-figure"><img alt="{{ caption }}" src="data:image/png;base64,{{ data }}">'
                  "<figcaption>{{ caption }}</figcaption></figure>", caption=caption, data=data)


def raw(markup: str) -> HTML:
    """Markup this package wrote itself; never pass data through here unescaped."""
    return HTML(markup)


def render(template: str, **values: Any) -> HTML:
    """A fragment from an inline jinja2 template (values escaped)."""
    return HTML(ENV.from_string(template).render(**values))


_VALUES = re.compile(r"""['"]|\bnear\b|\bLINE \d+:|\bDETAIL:""")
_ECHOED = re.compile(r"-{5,}\s*(.*?)\s*-{5,}")  # the mariadb client echoes the failing statement between these
_HEAD_END = re.compile(r"""\s*(?:[('"]|\bVALUES\b|\bSET\b|\bWHERE\b|\bSELECT\b)""", re.IGNORECASE)


def statement_head(message: str, limit: int = 200) -> str:
    """A client's error without the row values it may quote (duplicate keys, `near '…'`, echoed statements).

    Kept: the error code and line, the words before the first quoted value, and the head of an echoed
    statement (`INSERT INTO `people``) so the reader knows where it failed."""
    line = " ".join(message.split())
    echoed = _ECHOED.search(line)
    where = ""
    if echoed:
        where = _HEAD_END.split(echoed.group(1), maxsplit=1)[0][:120]
        line = f"{line[: echoed.start()].rstrip()} {line[echoed.end():].lstrip()}".strip()
    cut = _VALUES.search(line)
    if cut:
        line = line[: cut.start()].rstrip(" :,(") + " …"
    if len(line) > limit:
        line = line[:limit].rsplit(" ", 1)[0] + " …"
    return f"{line} (in statement {where} …)" if where else line
