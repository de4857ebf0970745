"""The derived expectations as a YAML file a person reviews: a header, and a comment on every entry.

PyYAML cannot write comments, so the file is laid out here line by line; every value is still
written by PyYAML (one-element flow lists), so quoting is always right, and the text is parsed
back with the ordinary expectations reader before anyone sees it.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any

import yaml

from dbaudit.audit.derive.model import Entry
from dbaudit.audit.derive.ops import Source
from dbaudit.audit.derive.plan import Plan
from dbaudit.core.terminal import visible

_WIDTH = 10**9  # never let PyYAML fold a line


@dataclass
class Header:
    name: str
    dialect: str
    dialect_reason: str
    sources: list[tuple[str, str]]  # (path as given, sha256)
    tool: str  # "dbaudit 0.1.0, sqlglot 30.30.0"
    snapshot: str | None  # the before snapshot checked against
    warnings: list[tuple[Source, str]]
    migrations: list[str] | None  # Laravel migrations the statements belong to


def render(header: Header, plan: Plan) -> str:
    lines = _header(header)
    lines += ["format_version: 1", f"name: {_scalar(header.name)}", "description: >",
              # File names are shown escaped: a newline in one would end the block and add YAML of its own.
              f"  Derived from {', '.join(visible(p) for p, _ in header.sources)} by `dbaudit expect`. Every "
              "schema change the",
              "  statements make is required; the engines' known side effects are allowed; nothing else may change.", ""]
    for section in ("required", "allowed"):
        entries = [e for e in plan.entries if e.section == section]
        lines.append(f"{section}:" + ("" if entries else " []"))
        for entry in entries:
            lines += _entry(entry)
        lines.append("")
    lines += _rows(plan)
    if header.migrations is not None:
        lines += ["", "# The migrations the statements belong to: each must appear in the application's ledger.",
                  "migrations:", f"  applied: {_scalar(header.migrations)}"]
    return "\n".join(lines).rstrip() + "\n"


def _header(header: Header) -> list[str]:
    lines = ["# Expectations derived from the migration itself by `dbaudit expect`: review them, then commit this",
             "# file beside the migration. Regenerate it whenever the migration changes.",
             f"# {header.tool}; dialect {header.dialect} ({header.dialect_reason})"]
    if header.snapshot:
        lines.append(f"# checked against the before snapshot {visible(header.snapshot)}")
    lines.append("# sources (sha256):")
    lines += [f"#   {sha}  {visible(path)}" for path, sha in header.sources]
    if header.warnings:
        lines.append(f"# WARNINGS ({len(header.warnings)}): read each one; these statements are not (fully) checked")
        for src, message in sorted(header.warnings, key=lambda w: (w[0].file != header.sources[0][0], w[0].line)):
            parts = textwrap.wrap(visible(f"{src}: {' '.join(message.split())}"), width=110)
            lines += [f"#   {parts[0]}", *(f"#       {p}" for p in parts[1:])]
    return [*lines, ""]


def _entry(entry: Entry) -> list[str]:
    lines = [f"  # {visible(str(src))}: {_one_line(src.text)}" for src in entry.sources]
    if entry.why:
        lines += _wrapped("why", entry.why)
    for note in entry.notes:
        lines += _wrapped("note", note)
    lines.append(f"  - {entry.kind}: {_scalar(entry.target)}")
    for key, value in entry.attrs.items():
        if key == "columns" and isinstance(value, dict):
            lines.append("    columns:")
            lines += [f"      {_scalar(name)}: {_scalar(attrs)}" for name, attrs in value.items()]
        elif key in ("indexes", "foreign_keys") and isinstance(value, list):
            lines.append(f"    {key}:")
            lines += [f"      - {_scalar(item)}" for item in value]
        else:
            lines.append(f"    {key}: {_scalar(value)}")
    return lines


def _rows(plan: Plan) -> list[str]:
    lines = ["# Row counts: a table the migration deletes from may shrink; one it only writes to may not.",
             "rows:",
             "  default: no_shrink  # tables it does not touch: the application may still insert while it runs"]
    for policy in ("any", "no_shrink"):
        rules = [r for r in plan.rows if r.policy == policy]
        if rules:
            lines.append(f"  {policy}:")
            for rule in rules:
                where = ", ".join(str(s) for s in rule.sources[:3])
                lines.append(f"    - {_scalar(rule.table)}  # {_one_line(rule.why)} ({visible(where)})")
    return lines


def _wrapped(label: str, text: str) -> list[str]:
    parts = textwrap.wrap(visible(" ".join(text.split())), width=100)
    return [f"  #   {label}: {parts[0]}", *(f"  #        {p}" for p in parts[1:])] if parts else []


def _scalar(value: Any) -> str:
    """One value in YAML flow style, quoted exactly as PyYAML would.

    A value holding a bidi override or another invisible character (which PyYAML would write raw) is
    written with escapes instead, so a reviewer reads the name that is there ("Trojan Source")."""
    text = yaml.safe_dump([value], default_flow_style=True, width=_WIDTH, allow_unicode=not _has_invisible(value),
                          sort_keys=False).strip()
    return text[1:-1]


def _has_invisible(value: Any) -> bool:
    if isinstance(value, str):
        return visible(value) != value
    if isinstance(value, dict):
        return any(_has_invisible(k) or _has_invisible(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_has_invisible(v) for v in value)
    return False


def _one_line(text: str, width: int = 110) -> str:
    # A comment is one line: a newline or a control character from the SQL must not end it (and add YAML).
    flat = visible(" ".join(str(text).split()))
    return flat if len(flat) <= width else flat[: width - 1] + "…"
