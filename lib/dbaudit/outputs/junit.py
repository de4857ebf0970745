"""JUnit XML for CI: one testcase per check, so a failed audit shows up as failed tests.

A check that could not be evaluated (status `error`, or a command-level error passed as `errors`) is an
`<error>`, not a `<failure>`: CI tells "the database is wrong" from "the audit could not look". Every
suite and case carries a `time` attribute (seconds), which several CI parsers require."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import UTC, datetime

from dbaudit.core.checks import Check
from dbaudit.core.terminal import visible


def junit_xml(suite: str, checks: Sequence[Check], seconds: float = 0.0, errors: Sequence[str] = (),
              times: Sequence[float] | None = None) -> str:
    """`times`, where given, holds each check's own seconds (a rehearsal's stages); the rest show 0."""
    failures = sum(1 for c in checks if c.status == "fail")
    skipped = sum(1 for c in checks if c.status == "skipped")
    erred = sum(1 for c in checks if str(c.status) == "error") + len(errors)
    total = len(checks) + len(errors)
    elapsed = f"{max(seconds, 0.0):.3f}"
    root = ET.Element("testsuites", name="dbaudit", tests=str(total), failures=str(failures), errors=str(erred),
                      time=elapsed)
    node = ET.SubElement(root, "testsuite", name=suite, tests=str(total), failures=str(failures),
                         errors=str(erred), skipped=str(skipped), time=elapsed,
                         timestamp=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    for index, original in enumerate(checks):
        # Names from a database or a dump may hold control characters XML 1.0 cannot carry at all (a CI
        # parser then drops the whole report): shown as visible escapes, as on the terminal.
        check = Check(original.category, visible(original.name), original.status, visible(original.message))
        case = ET.SubElement(node, "testcase", classname=f"dbaudit.{visible(check.category)}", name=check.name,
                             time=f"{max(times[index], 0.0):.3f}" if times else "0")
        if check.status == "fail":
            failure = ET.SubElement(case, "failure", message=check.message, type=check.category)
            failure.text = check.message
        elif str(check.status) == "error":
            ET.SubElement(case, "error", message=check.message, type=check.category).text = check.message
        elif check.status == "skipped":
            ET.SubElement(case, "skipped", message=check.message)
        else:
            ET.SubElement(case, "system-out").text = check.message
    for number, raw in enumerate(errors, 1):
        message = visible(raw)
        case = ET.SubElement(node, "testcase", classname="dbaudit.error", name=f"error {number}", time="0")
        ET.SubElement(case, "error", message=message, type="error").text = message
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
