"""rehearse: prove a migration and its rollback on a scratch restore of the backup, before production.

Seven stages, each timed and judged, stopping at the first that cannot continue:

1. dump-check: the backup is whole and safe to restore (backups/checks.py; an SQLite file: integrity_check);
2. restore: into a new scratch database, as restore-check does (backups/rehearse_scratch.py; a pg_dump:
   backups/rehearse_pg.py, whose temporary role then runs the steps);
3. snapshot: the restored database *before*, content fingerprinted by key-range chunks, with the
   expectations' metrics (a migration file given as expectations is derived against it here);
4. migrate: SQL files statement by statement as the temporary account, or a command with the scratch
   database in its environment (backups/rehearse_steps.py), under a time limit;
5. audit: the snapshot *after* (with --baseline semantics) judged against the expectations, and the
   rollback triggers evaluated on the scratch database (a failure here does not stop the rehearsal: the
   rollback must still be proven);
6. rollback: the same way as migrate;
7. proof: the snapshot *rolled back* equals *before*: no schema difference and every table's content
   fingerprint equal; a table whose content did not come back is named with its differing key ranges.

One verdict, one `dbaudit.rehearsal` document (schemas/rehearsal.schema.json). The scratch database
and its temporary account are dropped whatever happens (unless `keep`), on Ctrl-C and SIGTERM too.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL

from dbaudit.audit.derive import Derived, derive, is_migration_file
from dbaudit.audit.diff import Change, diff_snapshots
from dbaudit.audit.expectations import Expectations, load_expectations
from dbaudit.audit.result import AuditResult, ChangeRecord, audit
from dbaudit.backups.checks import check_dump
from dbaudit.backups.pgrestore import is_pg_dump
from dbaudit.backups.rehearse_pg import check_pg_scratch_name, refuse_existing_pg
from dbaudit.backups.rehearse_scratch import (
    Scratch,
    check_scratch_name,
    default_scratch_name,
    is_sqlite_file,
    open_scratch,
    refuse_existing,
    sqlite_file_checks,
)
from dbaudit.backups.rehearse_steps import Step, Target, read_sql_file, run_steps
from dbaudit.core import serde
from dbaudit.core.checks import Check, Judged, Status, Verdict, verdict_of
from dbaudit.core.errors import DbauditError, first_line
from dbaudit.core.secrets import mask_command
from dbaudit.core.signals import terminate_as_interrupt
from dbaudit.core.snapshot import Snapshot
from dbaudit.live.compare import TableComparison, compare
from dbaudit.live.connect import mask_url, parse_url
from dbaudit.live.inspect import take_snapshot
from dbaudit.live.rollback import RollbackResult, RollbackRules, evaluate_triggers, load_rules

FORMAT_VERSION = 1
KIND = "dbaudit.rehearsal"
STAGES = ("dump-check", "restore", "snapshot", "migrate", "audit", "rollback", "proof")
DEFAULT_STAGE_TIMEOUT = 600.0
SNAPSHOT_FILES = {"before": "before.json", "after": "after.json", "rolled_back": "rolled-back.json"}


@dataclass
class Stage:
    """One stage of the rehearsal: how long it took, its verdict and the checks behind it."""

    name: str  # one of STAGES
    status: Status  # skipped: an earlier stage could not continue
    seconds: float
    message: str  # one line
    checks: list[Check] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)  # migrate and rollback: each file or the command


@dataclass
class Rehearsal(Judged):
    format_version: int
    kind: str
    verdict: Verdict
    title: str
    generated_at: str
    dump: str
    server: str  # masked URL
    database: str  # the database the backup was taken of (an SQLite file: its name)
    product: str
    version: str
    scratch: str
    kept: bool  # the scratch database was left in place (--keep)
    expectations: str  # the expectations' name
    expectations_file: str  # the YAML, or the migration file they were derived from
    derived_expectations: str | None  # the YAML derived from a migration file, as archived with the report
    migrate: list[str]  # the SQL files, or the command
    rollback: list[str]
    stage_timeout: float
    stages: list[Stage]
    checks: list[Check]  # every stage as a check (category "stage"), then each stage's checks
    audit: AuditResult | None  # the migration's audit (stage 5)
    triggers: RollbackResult | None  # the rollback triggers on the migrated scratch database (stage 5)
    proof: list[ChangeRecord]  # every difference between rolled back and before: none when proven
    summary: dict[str, Any]
    drop_hint: str = ""  # kept: the statements that drop what was kept (PostgreSQL: the database and its role)

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)


def load_rehearsal(path: str | os.PathLike[str]) -> Rehearsal:
    return serde.load_document(Rehearsal, path, KIND, FORMAT_VERSION, "rehearsal result")


@dataclass
class _Plan:
    dump: str
    url: URL
    dialect: str  # mysql, postgresql or sqlite
    scratch: str
    expect: str
    expect_is_migration: bool
    rules: Expectations | None  # from a YAML; None until derived
    migrate: list[str]
    migrate_cmd: str | None
    rollback: list[str]
    rollback_cmd: str | None
    timeout: float
    keep: bool
    title: str | None
    locate_keys: bool = True
    derived: Derived | None = None
    leftovers: list[str] = field(default_factory=list)  # what killed earlier runs left (refuse_existing)


def rehearse(
    dump: str | os.PathLike[str],
    server: str,
    *,
    expect: str | os.PathLike[str] | None = None,
    migrate: Sequence[str | os.PathLike[str]] = (),
    migrate_cmd: str | None = None,
    rollback: Sequence[str | os.PathLike[str]] = (),
    rollback_cmd: str | None = None,
    scratch: str | None = None,
    keep: bool = False,
    stage_timeout: float = DEFAULT_STAGE_TIMEOUT,
    title: str | None = None,
    snapshots_dir: str | os.PathLike[str] | None = None,
    locate_keys: bool = True,
    progress: bool = False,
    log: Callable[[str], None] = lambda _: None,
) -> Rehearsal:
    """Rehearse the migration and its rollback on a scratch restore of `dump` on `server` (MySQL/MariaDB, or
    PostgreSQL for a pg_dump; an SQLite file: `server` is sqlite:///FOLDER or sqlite://). `expect` is an
    expectations YAML or a migration file to derive them from (default: derived from the `migrate` files).
    `snapshots_dir` receives the three snapshots. With `locate_keys`, rows that did not come back are named by
    key (a second restore, compared live)."""
    plan = _plan(dump, server, expect, migrate, migrate_cmd, rollback, rollback_cmd, scratch, keep, stage_timeout,
                 title)
    plan.locate_keys = locate_keys
    run = _Run(plan, progress, log, Path(snapshots_dir) if snapshots_dir else None)
    with terminate_as_interrupt():  # SIGTERM (a cancelled CI job) cleans up like Ctrl-C
        run.go()
    return run.result()


def _plan(dump: str | os.PathLike[str], server: str, expect: str | os.PathLike[str] | None,
          migrate: Sequence[str | os.PathLike[str]], migrate_cmd: str | None,
          rollback: Sequence[str | os.PathLike[str]], rollback_cmd: str | None, scratch: str | None, keep: bool,
          timeout: float, title: str | None) -> _Plan:
    """Every input checked before anything is read or created: a bad one is a one-line error (exit 2)."""
    dump = os.fspath(dump)
    if not Path(dump).exists():
        raise DbauditError(f"dump file not found: {dump}")
    url = parse_url(server)
    backend = url.get_backend_name()
    if backend not in ("mysql", "mariadb", "postgresql", "sqlite"):
        raise DbauditError(f"rehearse restores MySQL/MariaDB dumps, pg_dumps and SQLite files; {mask_url(url)} is "
                           "none of those servers")
    dialect = {"mariadb": "mysql"}.get(backend, backend)
    _refuse_mismatch(dump, dialect)
    if not (math.isfinite(timeout) and timeout > 0):
        raise DbauditError(f"the stage time limit must be a positive number of seconds, not {timeout}")
    files = {"migrate": [os.fspath(p) for p in migrate], "rollback": [os.fspath(p) for p in rollback]}
    for what, paths, command in (("migrate", files["migrate"], migrate_cmd), ("rollback", files["rollback"],
                                                                              rollback_cmd)):
        if bool(paths) == bool(command):
            raise DbauditError(f"give the {what} step as SQL file(s) (--{what} FILE.sql …) or as a command "
                               f"(--{what}-cmd CMD), one of the two")
        for path in paths:
            read_sql_file(path, dialect)  # readable SQL, no client commands
    if expect is None:
        if not files["migrate"]:
            raise DbauditError("--expect is needed with --migrate-cmd: an expectations YAML or the migration's SQL")
        expect_path, is_migration = files["migrate"][0], True
    else:
        expect_path = os.fspath(expect)
        if not Path(expect_path).is_file():
            raise DbauditError(f"expectations file not found: {expect_path}")
        is_migration = is_migration_file(expect_path)
    rules = None
    if is_migration:
        derive(files["migrate"] if expect is None else [expect_path], _derive_dialect(dialect))  # parses, or says why
    else:
        rules = load_expectations(expect_path)
        load_rules(expect_path)  # its rollback: section, before anything runs
    name = scratch or default_scratch_name(dump)
    check_scratch_name(name)
    leftovers = refuse_existing(url, name) if dialect == "mysql" else []
    if dialect == "postgresql":
        check_pg_scratch_name(name, url)
        refuse_existing_pg(url, name)
    return _Plan(dump, url, dialect, name, expect_path if expect is not None else "", is_migration, rules,
                 files["migrate"], migrate_cmd, files["rollback"], rollback_cmd, timeout, keep, title,
                 leftovers=leftovers)


def _refuse_mismatch(dump: str, dialect: str) -> None:
    """The backup must be the server's kind: an SQLite file, a pg_dump, or else a MySQL/MariaDB dump."""
    if dialect == "sqlite" and not is_sqlite_file(dump):
        raise DbauditError(f"{dump} is not an SQLite database file: an SQLite rehearsal restores a copy of one")
    if dialect != "sqlite" and is_sqlite_file(dump):
        raise DbauditError(f"{dump} is an SQLite database: rehearse it with --server sqlite:// (or sqlite:///FOLDER)")
    if dialect == "postgresql" and not is_pg_dump(dump):
        raise DbauditError(f"{dump} is not a pg_dump (plain, custom, tar or directory): a PostgreSQL rehearsal "
                           "restores one")
    if dialect == "mysql" and is_pg_dump(dump):
        raise DbauditError(f"{dump} is a pg_dump: rehearse it on a PostgreSQL server (--server postgresql://…)")


def _derive_dialect(dialect: str) -> str:
    return dialect if dialect in ("sqlite", "postgresql") else "mysql"


class _Run:
    """One rehearsal in progress: the stages done so far and what they produced."""

    def __init__(self, plan: _Plan, progress: bool, log: Callable[[str], None], snapshots: Path | None) -> None:
        self.plan, self.progress, self.log, self.snapshots = plan, progress, log, snapshots
        self.stages: list[Stage] = []
        self.product = self.version = ""
        self.database = Path(plan.dump).name.split(".")[0]
        self.kept = False
        self.drop_hint = ""
        self.rules: Expectations | None = plan.rules
        self.audit: AuditResult | None = None
        self.triggers: RollbackResult | None = None
        self.proof: list[ChangeRecord] = []
        self.before: Snapshot | None = None
        self.restore_started = 0.0

    # --- the stages ---------------------------------------------------------------------------------

    def go(self) -> None:
        if not self._dump_check():
            return
        self.restore_started = time.monotonic()
        with open_scratch(self.plan.dump, self.plan.url, self.plan.scratch, self.plan.keep, self.progress,
                          leftovers=self.plan.leftovers, valid_for=self._valid_for()) as scratch:
            try:
                self._on(scratch)
            finally:
                self.log("dropping the scratch database" if not self.plan.keep else "keeping the scratch database")
        self.kept, self.drop_hint = scratch.kept, scratch.drop_hint

    def _valid_for(self) -> float:
        """How long the PostgreSQL role may log in after the restore: both steps at their limit, and an hour for the
        snapshots, the audit and a second restore."""
        return 2 * self.plan.timeout + 3600.0

    def _on(self, scratch: Scratch) -> None:
        self.product, self.version = scratch.product, scratch.version
        self.database = scratch.source or self.database
        if not self._restore(scratch):
            return
        if self._timed("snapshot", lambda: self._snapshot_before(scratch)).status == "fail" or self.before is None:
            return
        before = self.before
        target = Target(scratch.dialect, scratch.step_url, scratch.env, scratch.secrets,
                        (scratch.product, scratch.version), scratch.kill, scratch.source)
        if not self._steps("migrate", target, self.plan.migrate, self.plan.migrate_cmd):
            return
        self._timed("audit", lambda: self._audit(scratch, before))
        if not self._steps("rollback", target, self.plan.rollback, self.plan.rollback_cmd):
            return
        self._timed("proof", lambda: self._prove(scratch, before))

    def _dump_check(self) -> bool:
        self.log(f"dump-check {Path(self.plan.dump).name}")
        started = time.monotonic()
        if self.plan.dialect == "sqlite":
            checks = sqlite_file_checks(Path(self.plan.dump))
            message = f"SQLite file {Path(self.plan.dump).name}"
        else:
            result = check_dump(self.plan.dump, progress=self.progress)
            checks = result.checks
            c = result.dump
            message = f"{len(c.tables)} tables, {c.total_rows:,} rows in {c.file.size:,} bytes"
        return self._add("dump-check", started, checks, message)

    def _restore(self, scratch: Scratch) -> bool:
        self.log(f"restore into the scratch database {scratch.name}")
        message = (f"restored into {scratch.name} (loaded in {scratch.seconds:.1f} s)" if scratch.restored
                   else f"not restored into {scratch.name}")
        ok = scratch.restored and (scratch.dialect == "sqlite" or scratch.account is not None)
        checks = scratch.checks if ok or any(c.status == "fail" for c in scratch.checks) else \
            [*scratch.checks, Check("restore", "load", "fail", message)]
        # The stage's time is the whole restore-check (the dump read again, loaded, compared), not the load alone.
        seconds = round(time.monotonic() - self.restore_started, 3)
        stage = Stage("restore", verdict_of(checks) if ok else "fail", seconds, message, checks)
        self.stages.append(stage)
        return stage.status == "pass"

    def _snapshot_before(self, scratch: Scratch) -> Stage:
        self.log("snapshot before, content fingerprinted in chunks")
        if self.plan.expect_is_migration:
            before = self._snapshot(scratch, None)
            files = self.plan.migrate if not self.plan.expect else [self.plan.expect]
            self.plan.derived = derive(files, _derive_dialect(scratch.dialect), before,
                                       snapshot_label="the restored backup")
            self.rules = self.plan.derived.expectations
        else:
            assert self.rules is not None
            before = self._snapshot(scratch, self.rules.metric_queries)
        self.before = before
        self._save("before", before)
        failed = [m.name for m in before.metrics.values() if m.error]
        checks = [Check("taken", "before", "pass", f"{len(before.tables)} tables, {before.total_rows:,} rows, "
                                                      f"{len(before.metrics)} metric(s) in {before.duration_seconds:.1f} s")]
        # A metric over a table the migration creates cannot answer yet: noted, judged by the audit.
        checks += [Check("metric", n, "skipped", f"metric {n}: {before.metrics[n].error}") for n in failed]
        return Stage("snapshot", verdict_of(checks), 0.0, checks[0].message, checks)

    def _audit(self, scratch: Scratch, before: Snapshot) -> Stage:
        self.log("snapshot after, audit against the expectations, rollback triggers")
        assert self.rules is not None
        after = self._snapshot(scratch, self.rules.metric_queries, before)
        self._save("after", after)
        self.audit = audit(before, after, self.rules, title=f"migration of {scratch.name}")
        self.triggers = evaluate_triggers(scratch.snapshot_url.render_as_string(hide_password=False),
                                          rules=self._trigger_rules(), baseline=before)
        trigger_checks = [Check(c.category, c.name, c.status, c.message) for c in self.triggers.checks]
        checks = [*self.audit.checks, *trigger_checks]
        failed, fired = len(self.audit.failed_checks), len(self.triggers.fired)
        message = (f"audit {self.audit.verdict.upper()} ({len(self.audit.checks) - failed}/{len(self.audit.checks)} "
                   f"checks), {fired} rollback trigger(s) fired")
        return Stage("audit", verdict_of(checks), 0.0, message, checks)

    def _trigger_rules(self) -> RollbackRules:
        if self.plan.expect_is_migration or not self.plan.expect:
            rules = RollbackRules()
            assert self.rules is not None
            rules.unprotected = [t for t, policy in self.rules.rows.tables.items() if policy == "any"]
            return rules
        return load_rules(self.plan.expect)

    def _steps(self, name: str, target: Target, files: list[str], command: str | None) -> bool:
        self.log(f"{name}: {mask_command(command) if command else ', '.join(Path(f).name for f in files)}")
        started = time.monotonic()
        steps = run_steps(target, files, command, self.plan.timeout)
        checks = [Check(s.kind, s.source if s.kind == "sql" else "command", s.status, s.message) for s in steps]
        status = verdict_of(checks)
        done = sum(s.statements for s in steps)
        message = (steps[-1].message if status == "fail" or command else
                   f"{len(steps)} file(s), {done} statement(s) "
                   f"{'on the scratch copy' if target.dialect == 'sqlite' else 'as the temporary account'}")
        self.stages.append(Stage(name, status, round(time.monotonic() - started, 3), message, checks, steps))
        return status == "pass"

    def _prove(self, scratch: Scratch, before: Snapshot) -> Stage:
        self.log("snapshot rolled back, proof against before")
        assert self.rules is not None
        rolled = self._snapshot(scratch, self.rules.metric_queries, before)
        self._save("rolled_back", rolled)
        changes = diff_snapshots(before, rolled)  # the migrations ledger too
        self.proof = [ChangeRecord.of(c, declared=False) for c in changes]
        located = self._locate_keys(scratch, sorted({c.table for c in changes if c.kind == "content_changed" and c.table}))
        checks = proof_checks(before, rolled, changes, located)
        different = sorted({c.table for c in changes if c.table})
        message = ("rolled back = before: no schema difference, every table's content equal" if not changes else
                   f"{len(changes)} difference(s) from before" + (f" in {', '.join(different)}" if different else ""))
        return Stage("proof", verdict_of(checks), 0.0, message, checks)

    def _locate_keys(self, scratch: Scratch, tables: list[str]) -> dict[str, str]:
        """The keys of the rows that did not come back, from a live compare with a second restore of the backup
        (dropped again at once): chunks name key ranges, this names the rows. Table -> what it found."""
        if not tables or not self.plan.locate_keys:
            return {}
        name = f"{scratch.name[:59]}_ref"
        self.log(f"locating the keys that differ: a second restore into {name}, compared live")
        try:
            with open_scratch(self.plan.dump, self.plan.url, name, keep=False, progress=self.progress,
                              account=False, valid_for=self._valid_for()) as reference:
                if not reference.restored:
                    return dict.fromkeys(tables, "keys not located: the second restore failed")
                found = compare(reference.snapshot_url.render_as_string(hide_password=False),
                                scratch.snapshot_url.render_as_string(hide_password=False), tables=tables,
                                progress=self.progress)
        except DbauditError as exc:
            return dict.fromkeys(tables, f"keys not located: {exc}")
        return {t.name: _keys_text(t) for t in found.tables if t.status != "same"}

    # --- helpers ------------------------------------------------------------------------------------

    def _snapshot(self, scratch: Scratch, metrics: dict[str, str] | None, baseline: Snapshot | None = None) -> Snapshot:
        # As the temporary account, never the server's: the expectations' metrics read views and functions the
        # restored dump defined, and those must not run with the operator's rights (docs/security.md).
        return take_snapshot(scratch.step_url, metrics, fingerprint="chunks", baseline=baseline,
                             progress=self.progress)

    def _save(self, which: str, snapshot: Snapshot) -> None:
        if self.snapshots is not None:
            snapshot.save(self.snapshots / SNAPSHOT_FILES[which])

    def _timed(self, name: str, work: Callable[[], Stage]) -> Stage:
        """Run a judging stage; an error in it (a snapshot that failed, a migration that does not fit the backup)
        fails the stage with its message."""
        started = time.monotonic()
        try:
            stage = work()
        except DbauditError as exc:
            stage = Stage(name, "fail", 0.0, first_line(exc), [Check(name, name, "fail", first_line(exc))])
        stage.seconds = round(time.monotonic() - started, 3)
        self.stages.append(stage)
        return stage

    def _add(self, name: str, started: float, checks: list[Check], message: str) -> bool:
        stage = Stage(name, verdict_of(checks), round(time.monotonic() - started, 3), message, checks)
        self.stages.append(stage)
        return stage.status == "pass"

    def result(self) -> Rehearsal:
        done = {s.name for s in self.stages}
        stopped = next((s.name for s in self.stages if s.status == "fail" and s.name != "audit"), None)
        for name in STAGES:
            if name not in done:
                self.stages.append(Stage(name, "skipped", 0.0, f"not run: the {stopped or 'earlier'} stage failed"))
        self.stages.sort(key=lambda s: STAGES.index(s.name))
        checks = flatten(self.stages)
        verdict: Verdict = "fail" if any(s.status == "fail" for s in self.stages) else "pass"
        p = self.plan
        rules_name = self.rules.name if self.rules else Path(p.expect or p.migrate[0]).stem
        return Rehearsal(
            format_version=FORMAT_VERSION, kind=KIND, verdict=verdict,
            title=p.title or f"rehearsal of {rules_name} on {Path(p.dump).name}",
            generated_at=datetime.now(UTC).isoformat(timespec="seconds"), dump=p.dump, server=mask_url(p.url),
            database=self.database, product=self.product, version=self.version, scratch=p.scratch, kept=self.kept,
            expectations=rules_name, expectations_file=p.expect or ", ".join(p.migrate),
            derived_expectations=p.derived.text if p.derived else None,
            migrate=[mask_command(p.migrate_cmd)] if p.migrate_cmd else p.migrate,
            rollback=[mask_command(p.rollback_cmd)] if p.rollback_cmd else p.rollback, stage_timeout=p.timeout,
            stages=self.stages, checks=checks, audit=self.audit, triggers=self.triggers, proof=self.proof,
            drop_hint=self.drop_hint,
            summary={"stages": len(self.stages), "stages_failed": sum(1 for s in self.stages if s.status == "fail"),
                     "stages_skipped": sum(1 for s in self.stages if s.status == "skipped"), "checks": len(checks),
                     "checks_failed": sum(1 for c in checks if c.status == "fail"),
                     "seconds": round(sum(s.seconds for s in self.stages), 3), "differences": len(self.proof)},
        )


def flatten(stages: Sequence[Stage]) -> list[Check]:
    """Every stage as a check, then its own checks under `<stage>.<category>`: JUnit's testcases."""
    checks: list[Check] = []
    for stage in stages:
        checks.append(Check("stage", stage.name, stage.status, stage.message))
        checks += [Check(f"{stage.name}.{c.category}", c.name, c.status, c.message) for c in stage.checks]
    return checks


def _keys_text(table: TableComparison) -> str:
    """`keys (backup → rolled back): id=42 changed, id=7 removed`, at most MAX_KEYS of them."""
    if not table.keys:
        return table.describe().strip()
    shown = ", ".join(f"{k.label} {k.change}" for k in table.keys)
    more = f" and {table.keys_total - len(table.keys)} more" if table.keys_total > len(table.keys) else ""
    return f"rows that differ from the backup: {shown}{more}"


def proof_checks(before: Snapshot, rolled: Snapshot, changes: Sequence[Change],
                 located: dict[str, str] | None = None) -> list[Check]:
    """One check per table (its schema and content back as they were), then any other difference;
    `located`: per table, the keys a live compare found."""
    by_table: dict[str, list[Change]] = {}
    others: list[Change] = []
    for change in changes:
        if change.table:
            by_table.setdefault(change.table, []).append(change)
        else:
            others.append(change)
    checks = []
    for name in sorted(set(before.tables) | set(rolled.tables)):
        found = by_table.get(name, [])
        if found:
            text = "; ".join(c.describe() for c in found)
            keys = (located or {}).get(name)
            checks.append(Check("table", name, "fail", f"{text}; {keys}" if keys else text))
        else:
            table = before.tables[name]
            checks.append(Check("table", name, "pass",
                                f"schema and content equal to before ({table.row_count or 0:,} rows)"))
    checks += [Check(c.object_type, f"{c.kind} {c.target}", "fail", c.describe()) for c in others]
    return checks
