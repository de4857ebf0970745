"""JUnit XML for CI: one testcase per check, so a failed audit shows up as failed tests."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from dbaudit.core.checks import Check
from dbaudit.core.terminal import visible


def junit_xml(suite: str, checks: Sequence[Check]) -> str:
    failures = sum(1 for c in checks if c.status == "fail")
    skipped = sum(1 for c in checks if c.status == "skipped")
    root = ET.Element("testsuites", name="dbaudit", tests=str(len(checks)), failures=str(failures))
    node = ET.SubElement(root, "testsuite", name=suite, tests=str(len(checks)), failures=str(failures),
                         errors="0", skipped=str(skipped))
    for original in checks:
        # Names from a database or a dump may hold control characters XML 1.0 cannot carry at all (a CI
        # parser then drops the whole report): shown as visible escapes, as on the terminal.
        check = Check(original.category, visible(original.name), original.status, visible(original.message))
        case = ET.SubElement(node, "testcase", classname=f"dbaudit.{visible(check.category)}", name=check.name)
        if check.status == "fail":
            failure = ET.SubElement(case, "failure", message=check.message, type=check.category)
            failure.text = check.message
        elif check.status == "skipped":
            ET.SubElement(case, "skipped", message=check.message)
        else:
            ET.SubElement(case, "system-out").text = check.message
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
