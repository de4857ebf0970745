"""Machine-readable outputs for CI: every checking command takes --json (its result document) and
--junit (one testcase per check, so a failed audit shows up as failed tests)."""

from __future__ import annotations

import argparse
import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any, Protocol

from dbaudit import serde


class CheckLike(Protocol):
    name: str
    status: str  # pass, fail (skipped where a check could not run)
    message: str


def _group(check: CheckLike) -> str:
    return str(getattr(check, "category", None) or getattr(check, "trigger", None) or "check")


def junit_xml(suite: str, checks: Sequence[CheckLike]) -> str:
    failures = sum(1 for c in checks if c.status == "fail")
    skipped = sum(1 for c in checks if c.status == "skipped")
    root = ET.Element("testsuites", name="dbaudit", tests=str(len(checks)), failures=str(failures))
    node = ET.SubElement(root, "testsuite", name=suite, tests=str(len(checks)), failures=str(failures),
                         errors="0", skipped=str(skipped))
    for check in checks:
        case = ET.SubElement(node, "testcase", classname=f"dbaudit.{_group(check)}", name=check.name)
        if check.status == "fail":
            failure = ET.SubElement(case, "failure", message=check.message, type=_group(check))
            failure.text = check.message
        elif check.status == "skipped":
            ET.SubElement(case, "skipped", message=check.message)
        else:
            ET.SubElement(case, "system-out").text = check.message
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(path: str | os.PathLike[str], suite: str, checks: Sequence[CheckLike]) -> None:
    serde.write_atomic(path, junit_xml(suite, checks))


def add_output_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--json", dest="json_out", help="write the result JSON here")
    command.add_argument("--junit", help="write the checks as JUnit XML here (one testcase per check)")


def write_outputs(args: argparse.Namespace, document: Any, suite: str, checks: Sequence[CheckLike]) -> None:
    """Write what --json and --junit asked for: both, or (when one cannot be written) neither."""
    wanted = [(path, text) for path, text in ((args.json_out, lambda: serde.dumps(document)),
                                              (args.junit, lambda: junit_xml(suite, checks))) if path]
    written: list[str] = []
    try:
        for path, text in wanted:
            serde.write_atomic(path, text())
            written.append(path)
    except BaseException:
        for path in written:
            os.unlink(path)
        raise
