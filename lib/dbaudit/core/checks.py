"""Verdicts: the checks every judging command makes, and the documents that carry them.

An audit, a dump-check, a restore-check, a compare and the rollback triggers each end in a list of
`Check`s and one verdict derived from them. Keeping both here means CI outputs, reports and the
terminal read every result the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from dbaudit.core import serde

Status = Literal["pass", "fail", "skipped"]
Verdict = Literal["pass", "fail"]


@dataclass
class Check:
    """One judged question: its category (required, rows, integrity, restore, fk_orphans …) and its answer."""

    category: str
    name: str
    status: Status  # skipped: the check could not run (e.g. a figure nobody measured)
    message: str  # one line a DBA can read


def verdict_of(checks: Sequence[Check]) -> Verdict:
    """Fail when any check failed; skipped checks do not decide a verdict."""
    return "fail" if any(c.status == "fail" for c in checks) else "pass"


def count_failed(checks: Sequence[Check]) -> int:
    return sum(1 for c in checks if c.status == "fail")


class Judged(serde.Document):
    """A result document with a verdict and the checks behind it."""

    verdict: str
    checks: Sequence[Check]

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    @property
    def failed_checks(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]
