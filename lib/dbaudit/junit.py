"""JUnit XML for CI systems: one testcase per check, so a failed audit shows up as failed tests."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Protocol

from dbaudit import serde


class CheckLike(Protocol):
    category: str
    name: str
    status: str
    message: str


def junit_xml(suite: str, checks: Sequence[CheckLike]) -> str:
    failures = sum(1 for c in checks if c.status != "pass")
    root = ET.Element("testsuites", name="dbaudit", tests=str(len(checks)), failures=str(failures))
    node = ET.SubElement(root, "testsuite", name=suite, tests=str(len(checks)), failures=str(failures),
                         errors="0", skipped="0")
    for check in checks:
        case = ET.SubElement(node, "testcase", classname=f"dbaudit.{check.category}", name=check.name)
        if check.status != "pass":
            failure = ET.SubElement(case, "failure", message=check.message, type=check.category)
            failure.text = check.message
        else:
            ET.SubElement(case, "system-out").text = check.message
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(path: str | os.PathLike[str], suite: str, checks: Sequence[CheckLike]) -> None:
    serde.write_atomic(path, junit_xml(suite, checks))
