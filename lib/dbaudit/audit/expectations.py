"""Declared expectations for a change, and judging a diff against them.

An expectations file (YAML) says which changes a migration must make (`required`), which it may make
(`allowed`), how each table's row count may move (`rows`) and which business metrics must hold
(`metrics`). Every schema change that no entry declares is unexpected and fails the audit.
The README documents the format; `expectations/blazz-webjs.yml` is a worked example.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dbaudit.audit.diff import CHANGE_KINDS, LEDGER_CHANGES, Change
from dbaudit.audit.spelling import mismatch
from dbaudit.core.checks import Check
from dbaudit.core.errors import DbauditError
from dbaudit.core.snapshot import (
    OBJECTS,
    SCHEMA,
    CheckConstraint,
    Column,
    Definition,
    Extension,
    ForeignKey,
    Index,
    Partition,
    Policy,
    Sequence,
    Snapshot,
    Table,
    fields_with_role,
)
from dbaudit.core.yamlsafe import read_yaml_file

FORMAT_VERSION = 1
RowPolicy = Literal["equal", "no_shrink", "any"]
MetricRule = Literal["equal", "no_decrease", "no_increase", "any"]
# What the rows hold rather than the schema: judged by `rows` and `metrics` (content also by patterns).
DATA_CHANGES = {"row_count_changed", "metric_changed", "content_changed"}
# `rollback:` holds the rollback-trigger settings, read by dbaudit.live.rollback.
_TOP_KEYS = {"format_version", "name", "description", "metrics", "required", "allowed", "rows", "rollback", "migrations"}


@dataclass
class ChangePattern:
    """`column_added: chats.provider_type` plus optional attributes the new object must have."""

    kind: str
    target: str  # fnmatch pattern over table, table.name or name
    attributes: dict[str, Any] = field(default_factory=dict)

    def matches(self, change: Change) -> bool:
        if change.kind != self.kind or not fnmatch.fnmatchcase(change.target, self.target):
            return False
        return not self.differences(change)

    def differences(self, change: Change) -> list[str]:
        """What the changed object has that this pattern's attributes do not allow (types and defaults
        compared as servers spell them: dbaudit.audit.spelling)."""
        state = change.after if change.after is not None else change.before
        found = [mismatch(key, state.get(key) if isinstance(state, dict) else None, want)
                 for key, want in self.attributes.items()]
        return [m for m in found if m]

    def __str__(self) -> str:
        extra = "".join(f", {k}={_brief(v)}" for k, v in self.attributes.items())
        return f"{self.kind} {self.target}{extra}"


def _brief(value: Any) -> str:
    """A new table's columns by name, its indexes and keys by count: the check's name stays one line."""
    if isinstance(value, dict):
        return "[" + ", ".join(map(str, value)) + "]"
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return f"<{len(value)}>"
    return repr(value)


@dataclass
class MetricExpectation:
    name: str
    sql: str
    expect: MetricRule = "any"
    min: float | None = None
    max: float | None = None


@dataclass
class RowRules:
    default: RowPolicy = "equal"
    tables: dict[str, RowPolicy] = field(default_factory=dict)

    def policy(self, table: str) -> RowPolicy:
        return self.tables.get(table, self.default)


@dataclass
class MigrationRules:
    """`migrations: {applied: [...], rolled_back: [...]}`: the ledger must show exactly these (fnmatch names)."""

    applied: list[str] = field(default_factory=list)
    rolled_back: list[str] = field(default_factory=list)

    def declares(self, change: Change) -> bool:
        names = {"migration_applied": self.applied, "migration_rolled_back": self.rolled_back}.get(change.kind, [])
        return any(fnmatch.fnmatchcase(change.name or "", n) for n in names)


@dataclass
class Expectations:
    name: str = "no-changes"
    description: str = ""
    required: list[ChangePattern] = field(default_factory=list)
    allowed: list[ChangePattern] = field(default_factory=list)
    rows: RowRules = field(default_factory=RowRules)
    metrics: dict[str, MetricExpectation] = field(default_factory=dict)
    source: str | None = None
    migrations: MigrationRules | None = None  # None: ledger changes are reported, not judged

    @property
    def metric_queries(self) -> dict[str, str]:
        return {name: m.sql for name, m in self.metrics.items()}


def load_expectations(path: str | os.PathLike[str]) -> Expectations:
    return parse_expectations(read_yaml(path), str(path))


def read_yaml(path: str | os.PathLike[str]) -> Any:
    """The parsed YAML of an expectations file (its sections are read by several modules), bounded
    against alias bombs and huge files (dbaudit.core.yamlsafe)."""
    return read_yaml_file(path, "expectations")


def parse_expectations(data: Any, source: str = "<expectations>") -> Expectations:
    if not isinstance(data, dict):
        raise DbauditError(f"{source}: expected a YAML mapping at the top level")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise DbauditError(f"{source}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_TOP_KEYS)}")
    if data.get("format_version", FORMAT_VERSION) != FORMAT_VERSION:
        raise DbauditError(f"{source}: format_version {data['format_version']!r} is not {FORMAT_VERSION}")
    return Expectations(
        name=str(data.get("name") or Path(source).stem),
        description=str(data.get("description") or "").strip(),
        required=[_pattern(e, f"{source}: required[{i}]") for i, e in enumerate(section_list(data, "required", f"{source}: "))],
        allowed=[_pattern(e, f"{source}: allowed[{i}]") for i, e in enumerate(section_list(data, "allowed", f"{source}: "))],
        rows=_rows(data.get("rows") or {}, source),
        metrics={str(k): _metric(str(k), v, source) for k, v in section_mapping(data, "metrics", f"{source}: ").items()},
        source=source,
        migrations=_migrations(data, source),
    )


def _migrations(data: dict[str, Any], source: str) -> MigrationRules | None:
    if "migrations" not in data:
        return None
    section = section_mapping(data, "migrations", f"{source}: ")
    unknown = set(section) - {"applied", "rolled_back"}
    if unknown:
        raise DbauditError(f"{source}: migrations: unknown key(s) {sorted(unknown)}; allowed: applied, rolled_back")
    lists = {key: section_list(section, key, f"{source}: migrations.") for key in ("applied", "rolled_back")}
    for key, names in lists.items():
        if not all(isinstance(n, (str, int)) and str(n).strip() for n in names):
            raise DbauditError(f"{source}: migrations.{key} must list migration names")
    return MigrationRules([str(n) for n in lists["applied"]], [str(n) for n in lists["rolled_back"]])


def section_mapping(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    """data[key] as a mapping (empty when absent); `where` prefixes the key in the error, e.g. "x.yml: "."""
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise DbauditError(f"{where}{key} must be a mapping, not a {type(value).__name__}")
    return value


def section_list(data: dict[str, Any], key: str, where: str) -> list[Any]:
    """data[key] as a list (empty when absent)."""
    value = data.get(key) or []
    if not isinstance(value, list):
        raise DbauditError(f"{where}{key} must be a list, not a {type(value).__name__}")
    return value


def _pattern(entry: Any, where: str) -> ChangePattern:
    if not isinstance(entry, dict):
        raise DbauditError(f"{where}: expected e.g. `column_added: chats.provider_type`, got {entry!r}")
    if not all(isinstance(k, str) for k in entry):
        raise DbauditError(f"{where}: keys must be change kinds and attribute names, got {list(entry)!r}")
    kinds = [k for k in entry if k in CHANGE_KINDS]
    if len(kinds) != 1:
        names = [k for k in entry if k.endswith(("_added", "_removed", "_changed"))] or list(entry)
        raise DbauditError(f"{where}: needs exactly one change kind (got {names}); kinds: {', '.join(CHANGE_KINDS)}")
    kind = kinds[0]
    if kind in LEDGER_CHANGES:
        raise DbauditError(f"{where}: {kind} is declared in the migrations: section (applied: / rolled_back:)")
    if not isinstance(entry[kind], str) or not entry[kind].strip():
        raise DbauditError(f"{where}: {kind} needs a target such as `table` or `table.name`")
    attributes = {k: v for k, v in entry.items() if k != kind}
    known = _ATTRIBUTES[kind.rsplit("_", 1)[0]]
    unknown = sorted(set(attributes) - known)
    if unknown:
        raise DbauditError(f"{where}: unknown attribute(s) {unknown} for {kind}; known: {sorted(known)}")
    return ChangePattern(kind, entry[kind].strip(), attributes)


def _field_names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


# The attributes an expectation may demand of the object a change adds (or, when removed, had).
_ATTRIBUTES: dict[str, set[str]] = {
    # A new table may also be described whole: its columns (exactly these), indexes and keys (at least these).
    "table": set(fields_with_role(Table, SCHEMA)) | set(fields_with_role(Table, OBJECTS)),
    "column": _field_names(Column),
    "index": _field_names(Index),
    "fk": _field_names(ForeignKey),
    "view": _field_names(Definition),
    "trigger": _field_names(Definition),
    "routine": _field_names(Definition),
    "check": _field_names(CheckConstraint),
    "partition": _field_names(Partition),
    "policy": _field_names(Policy),
    "event": _field_names(Definition),
    "sequence": _field_names(Sequence) - {"last_value"},  # a measurement, never demanded
    "type": _field_names(Definition),
    "extension": _field_names(Extension),
    "row_count": set(),
    "metric": set(),
    "content": set(),
    "migration": set(),
}


def _rows(data: Any, source: str) -> RowRules:
    if not isinstance(data, dict):
        raise DbauditError(f"{source}: rows must be a mapping like {{default: no_shrink, equal: [contacts]}}")
    policies = ("equal", "no_shrink", "any")
    default = data.get("default", "equal")
    if default not in policies:
        raise DbauditError(f"{source}: rows.default must be one of {policies}, not {default!r}")
    tables: dict[str, RowPolicy] = {}
    for key, names in data.items():
        if key == "default":
            continue
        if key not in policies or not isinstance(names, list):
            raise DbauditError(f"{source}: rows.{key}: expected one of {policies} with a list of tables")
        tables.update({str(n): key for n in names})
    return RowRules(default, tables)


def _metric(name: str, spec: Any, source: str) -> MetricExpectation:
    if isinstance(spec, str):
        return MetricExpectation(name, spec)
    if not isinstance(spec, dict) or not isinstance(spec.get("sql"), str):
        raise DbauditError(f"{source}: metrics.{name} needs `sql:` (a scalar SELECT)")
    unknown = set(spec) - {"sql", "expect", "min", "max"}
    if unknown:
        raise DbauditError(f"{source}: metrics.{name}: unknown key(s) {sorted(unknown)}")
    rule = spec.get("expect", "any")
    if rule not in ("equal", "no_decrease", "no_increase", "any"):
        raise DbauditError(f"{source}: metrics.{name}.expect must be equal, no_decrease, no_increase or any")
    for bound in ("min", "max"):
        value = spec.get(bound)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise DbauditError(f"{source}: metrics.{name}.{bound} must be a number, not {value!r}")
    return MetricExpectation(name, spec["sql"], rule, spec.get("min"), spec.get("max"))


# --- judging -----------------------------------------------------------------------------------


def check_tables_exist(expectations: Expectations, before: Snapshot, after: Snapshot) -> None:
    """A row rule for a table in neither snapshot is a typo, and would silently check nothing."""
    known = set(before.tables) | set(after.tables)
    missing = sorted(t for t in expectations.rows.tables if t not in known)
    if missing:
        raise DbauditError(
            f"expectations {expectations.name!r} name table(s) {missing} that exist in neither snapshot"
        )


def judge(expectations: Expectations, changes: list[Change], before: Snapshot, after: Snapshot) -> list[Check]:
    check_tables_exist(expectations, before, after)
    ledger = ledger_table(before, after)
    # With a migrations: section the ledger's own rows are judged there (exactly the migrations declared),
    # unless rows: names the table itself.
    skip = {ledger} if ledger and expectations.migrations is not None and ledger not in expectations.rows.tables else set()
    return [
        *_required_checks(expectations, changes),
        *_unexpected_checks(expectations, changes, ledger),
        *_row_checks(expectations.rows, before, after, skip),
        *_metric_checks(expectations, before, after),
        *_migration_checks(expectations.migrations, changes, before, after),
    ]


def ledger_table(before: Snapshot, after: Snapshot) -> str | None:
    ledger = after.migrations or before.migrations
    return ledger.table if ledger else None


def _migration_checks(rules: MigrationRules | None, changes: list[Change], before: Snapshot,
                      after: Snapshot) -> list[Check]:
    if rules is None or not (rules.applied or rules.rolled_back or before.migrations or after.migrations):
        return []
    if before.migrations is None and after.migrations is None:
        return [Check("migrations", "ledger", "fail", "the expectations declare migrations, but neither snapshot "
                      "recorded a migrations ledger (Laravel migrations, django_migrations, flyway_schema_history …)")]
    checks = []
    for kind, names, verb in (("migration_applied", rules.applied, "applied"),
                              ("migration_rolled_back", rules.rolled_back, "rolled back")):
        for name in names:
            hits = [c.name or "" for c in changes if c.kind == kind and fnmatch.fnmatchcase(c.name or "", name)]
            if hits:
                checks.append(Check("migrations", f"{verb} {name}", "pass", f"in the ledger: {', '.join(hits)}"))
            else:
                checks.append(Check("migrations", f"{verb} {name}", "fail", _missing_migration(name, verb, before, after)))
    return checks


def _missing_migration(name: str, verb: str, before: Snapshot, after: Snapshot) -> str:
    was = before.migrations.applied() if before.migrations else {}
    listed = any(fnmatch.fnmatchcase(n, name) for n in was)
    if verb == "applied":
        if listed:
            return f"{name} was already in the ledger before the change, so it was not applied by it"
        return f"{name} is not in the ledger after the change: it did not run (or ran without being recorded)"
    if not listed:
        return f"{name} was not in the ledger before the change, so it cannot have been rolled back"
    return f"{name} is still in the ledger after the change: it was not rolled back"


def is_declared(expectations: Expectations, change: Change, ledger: str | None = None) -> bool:
    if change.kind == "migration_failed":
        return False  # a migration the tool recorded as failed is never an expected outcome
    if change.kind in LEDGER_CHANGES:
        return expectations.migrations is None or expectations.migrations.declares(change)
    if change.kind == "content_changed" and ledger is not None and change.table == ledger:
        return True  # the ledger's rows change with every migration: judged as migrations, not as content
    if change.kind == "metric_changed":
        return change.name in expectations.metrics  # a metric nobody set a rule for may not move
    if change.kind == "row_count_changed":
        return True  # every table has a row rule (rows.default)
    if change.kind == "content_changed" and expectations.rows.policy(change.table or "") == "any":
        return True  # a table whose rows may change any way may hold other rows too
    return any(p.matches(change) for p in (*expectations.required, *expectations.allowed))


def _required_checks(expectations: Expectations, changes: list[Change]) -> list[Check]:
    checks = []
    for pattern in expectations.required:
        hits = [c.target for c in changes if pattern.matches(c)]
        if hits:
            checks.append(Check("required", str(pattern), "pass", f"found: {', '.join(hits)}"))
            continue
        # The change happened, but not as declared: say what differs rather than that nothing happened.
        near = [c for c in changes if c.kind == pattern.kind and fnmatch.fnmatchcase(c.target, pattern.target)]
        if near:
            why = "; ".join(f"{c.target}: {', '.join(pattern.differences(c))}" for c in near[:3])
            checks.append(Check("required", str(pattern), "fail", f"{pattern.kind} {pattern.target} differs: {why}"))
        else:
            checks.append(Check("required", str(pattern), "fail", f"required change did not happen: {pattern}"))
    return checks


def _unexpected_checks(expectations: Expectations, changes: list[Change], ledger: str | None = None) -> list[Check]:
    surprises = [c for c in changes if not is_declared(expectations, c, ledger)]
    if not surprises:
        declared = sum(1 for c in changes if c.kind not in DATA_CHANGES | LEDGER_CHANGES)
        return [Check("unexpected", "no unexpected changes", "pass",
                      f"all {declared} schema change(s) are declared")]
    return [Check("unexpected", f"{c.kind} {c.target}", "fail", f"unexpected: {c.describe()}{_near(expectations, c)}")
            for c in surprises]


def _near(expectations: Expectations, change: Change) -> str:
    """A change an entry declares by name but not by its attributes: say what differs."""
    for pattern in (*expectations.required, *expectations.allowed):
        if pattern.kind == change.kind and fnmatch.fnmatchcase(change.target, pattern.target) and pattern.attributes:
            return f" (declared, but {'; '.join(pattern.differences(change))})"
    return ""


def _row_checks(rules: RowRules, before: Snapshot, after: Snapshot, skip: set[str] | None = None) -> list[Check]:
    checks = []
    for name in sorted(set(before.tables) & set(after.tables) - (skip or set())):
        old, new = before.tables[name].row_count, after.tables[name].row_count
        policy = rules.policy(name)
        if old is None or new is None:
            # A rule that cannot be checked must not pass quietly ("no table loses rows").
            if policy != "any":
                side = "before" if old is None else "after"
                checks.append(Check("rows", name, "fail", f"rows were not counted in the {side} snapshot "
                                    f"(--no-counts or --tables): cannot check that they {_ROW_WORDS[policy]}"))
            continue
        ok = policy == "any" or (policy == "equal" and new == old) or (policy == "no_shrink" and new >= old)
        message = f"{old:,} → {new:,} ({new - old:+,}); {'may change' if policy == 'any' else 'must ' + _ROW_WORDS[policy]}"
        checks.append(Check("rows", name, "pass" if ok else "fail", message))
    return checks


_ROW_WORDS = {"equal": "stay equal", "no_shrink": "not shrink"}


def _metric_checks(expectations: Expectations, before: Snapshot, after: Snapshot) -> list[Check]:
    return [_metric_check(m, before, after) for m in expectations.metrics.values()]


def _metric_check(rule: MetricExpectation, before: Snapshot, after: Snapshot) -> Check:
    old, new = before.metrics.get(rule.name), after.metrics.get(rule.name)
    if new is None:
        return Check("metric", rule.name, "fail", "not in the after snapshot: take it with --expect")
    if new.error:
        return Check("metric", rule.name, "fail", f"query failed after the change: {new.error}")
    problems = []
    was = old.value if old is not None and not old.error else None
    if rule.expect != "any":
        if was is None:
            problems.append(f"no before value to compare ({old.error if old else 'not in the before snapshot'})")
        elif not _holds(rule.expect, was, new.value):
            problems.append(_RULE_WORDS[rule.expect])
    limited = rule.max is not None or rule.min is not None
    if limited and math.isnan(_number(new.value)):
        problems.append(f"{new.value!r} is not a number, so the limits cannot hold")
    if rule.max is not None and _number(new.value) > rule.max:
        problems.append(f"above the limit {rule.max:,}")
    if rule.min is not None and _number(new.value) < rule.min:
        problems.append(f"below the limit {rule.min:,}")
    message = f"{was if was is not None else '∅'} → {new.value}"
    if problems:
        return Check("metric", rule.name, "fail", f"{message}: {'; '.join(problems)}")
    return Check("metric", rule.name, "pass", message)


_RULE_WORDS = {"equal": "must stay equal", "no_decrease": "must not decrease", "no_increase": "must not increase"}


def _holds(rule: MetricRule, old: Any, new: Any) -> bool:
    if rule == "equal":
        return bool(old == new)
    if rule == "no_decrease":
        return _number(new) >= _number(old)
    return _number(new) <= _number(old)


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")
