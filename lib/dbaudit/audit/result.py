"""The audit result: a verdict, the checks behind it and every change, as a versioned JSON document."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from dbaudit.audit.diff import Change, diff_snapshots, seen_version, unseen
from dbaudit.audit.expectations import DATA_CHANGES, Expectations, MigrationRules, is_declared, judge, ledger_table
from dbaudit.audit.visibility import visibility_checks
from dbaudit.core import serde
from dbaudit.core.checks import Check, Judged
from dbaudit.core.snapshot import Snapshot

FORMAT_VERSION = 1
KIND = "dbaudit.result"
Verdict = Literal["pass", "fail"]


@dataclass
class Side:
    """Which snapshot a result was computed from."""

    database: str
    product: str
    version: str
    taken_at: str
    source: str
    tables: int
    rows: int

    @classmethod
    def of(cls, snapshot: Snapshot) -> Side:
        return cls(snapshot.database, snapshot.server.product, snapshot.server.version, snapshot.taken_at,
                   snapshot.source, len(snapshot.tables), snapshot.total_rows)


@dataclass
class ChangeRecord:
    kind: str
    target: str
    table: str | None
    name: str | None
    message: str
    declared: bool  # an expectation (or a row/metric rule) covers it
    fields: list[str] = field(default_factory=list)
    before: Any = None
    after: Any = None

    @classmethod
    def of(cls, change: Change, declared: bool) -> ChangeRecord:
        return cls(change.kind, change.target, change.table, change.name, change.describe(), declared,
                   change.fields, change.before, change.after)


@dataclass
class AuditResult(Judged):
    format_version: int
    kind: str
    verdict: Verdict
    title: str
    generated_at: str
    expectations: str  # the expectations' name; "no-changes" when none were given
    before: Side
    after: Side
    checks: list[Check]
    changes: list[ChangeRecord]
    summary: dict[str, int]


def audit(before: Snapshot, after: Snapshot, expectations: Expectations | None = None,
          title: str | None = None) -> AuditResult:
    """Diff two snapshots and judge the changes; with no expectations, any change fails."""
    rules = expectations or Expectations(migrations=MigrationRules())  # nothing expected: no migration either
    changes = diff_snapshots(before, after)
    checks = [*visibility_checks(before, after), *judge(rules, changes, before, after), *coverage_checks(before, after)]
    ledger = ledger_table(before, after)
    records = [ChangeRecord.of(c, is_declared(rules, c, ledger)) for c in changes]
    failed = sum(1 for c in checks if c.status == "fail")
    return AuditResult(
        format_version=FORMAT_VERSION,
        kind=KIND,
        verdict="fail" if failed else "pass",
        title=title or rules.name,
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        expectations=rules.name,
        before=Side.of(before),
        after=Side.of(after),
        checks=checks,
        changes=records,
        summary={
            "checks": len(checks),
            "checks_failed": failed,
            "changes": len(changes),
            "schema_changes": sum(1 for c in changes if c.kind not in DATA_CHANGES),
            "unexpected_changes": sum(1 for r in records if not r.declared),
        },
    )


def coverage_checks(before: Snapshot, after: Snapshot) -> list[Check]:
    """What an older snapshot could not see is said, not reported as added (nor passed as unchanged)."""
    missing = unseen(before, after)
    if not missing:
        return []
    version = seen_version(before, after)
    return [Check("coverage", f"snapshot format {version}", "skipped",
                  f"not compared: a snapshot of format {version} did not record {'; '.join(missing)} "
                  "(take both snapshots with this dbaudit to compare them)")]


def load_result(path: str | os.PathLike[str]) -> AuditResult:
    return serde.load_document(AuditResult, path, KIND, FORMAT_VERSION, "result")
