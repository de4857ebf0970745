"""The audit as notebooks and the CLI run it: inputs in, snapshots and a judged result out."""

from __future__ import annotations

import os
from dataclasses import dataclass

from dbaudit.audit.chunks import FingerprintMode
from dbaudit.audit.expectations import Expectations, load_expectations
from dbaudit.audit.result import AuditResult, audit
from dbaudit.core.snapshot import Snapshot
from dbaudit.live.inspect import load_or_take


@dataclass
class Audit:
    before: Snapshot
    after: Snapshot
    expectations: Expectations | None
    result: AuditResult


def run_audit(
    before: str | os.PathLike[str],
    after: str | os.PathLike[str],
    expectations: str | os.PathLike[str] | None = None,
    title: str | None = None,
    fingerprint: FingerprintMode = "none",
) -> Audit:
    """`before`/`after` are snapshot files (*.json) or database URLs; expectations a YAML path or None.

    `fingerprint` ("table" or "chunks") adds content fingerprints to snapshots taken from URLs."""
    rules = load_expectations(expectations) if expectations else None
    metrics = rules.metric_queries if rules else None
    before_snapshot = load_or_take(before, metrics, fingerprint)
    after_snapshot = load_or_take(after, metrics, fingerprint, baseline=before_snapshot)
    result = audit(before_snapshot, after_snapshot, rules, title=title or None)
    return Audit(before_snapshot, after_snapshot, rules, result)
