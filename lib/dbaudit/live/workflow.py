"""The audit as notebooks and the CLI run it: inputs in, snapshots and a judged result out."""

from __future__ import annotations

import os
from dataclasses import dataclass

from dbaudit.audit.chunks import FingerprintMode
from dbaudit.audit.derive import Derived, is_migration_file, load_or_derive
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
    derived: Derived | None = None  # when the expectations were derived from a migration file


def run_audit(
    before: str | os.PathLike[str],
    after: str | os.PathLike[str],
    expectations: str | os.PathLike[str] | None = None,
    title: str | None = None,
    fingerprint: FingerprintMode = "none",
    allow_privileged: bool = False,
) -> Audit:
    """`before`/`after` are snapshot files (*.json) or database URLs; expectations a YAML path, a migration
    file (its expectations are derived against the before snapshot) or None.

    `fingerprint` ("table" or "chunks") adds content fingerprints to snapshots taken from URLs;
    `allow_privileged` lets their metrics run as an account with rights beyond the database."""
    derived = None
    rules: Expectations | None
    if expectations and is_migration_file(expectations):
        before_snapshot = load_or_take(before, None, fingerprint)
        rules, derived = load_or_derive(expectations, before_snapshot)
    else:
        rules = load_expectations(expectations) if expectations else None
        before_snapshot = load_or_take(before, rules.metric_queries if rules else None, fingerprint,
                                       allow_privileged=allow_privileged)
    metrics = rules.metric_queries if rules else None
    after_snapshot = load_or_take(after, metrics, fingerprint, baseline=before_snapshot,
                                  allow_privileged=allow_privileged)
    result = audit(before_snapshot, after_snapshot, rules, title=title or None)
    return Audit(before_snapshot, after_snapshot, rules, result, derived)
