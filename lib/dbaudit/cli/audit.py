"""`dbaudit snapshot`, `diff`, `report`, `demo` and `reports`: the audit of one database change."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from dbaudit.cli.common import (
    EXIT_FAIL,
    EXIT_PASS,
    add_output_options,
    exit_code,
    progress,
    say,
    say_verdict,
    shown,
    write_outputs,
)
from dbaudit.core.errors import DbauditError

DEFAULT_LOCK_TIMEOUT = 30.0  # dbaudit.live.connect.DEFAULT_LOCK_TIMEOUT, without importing the live layer


def add_commands(sub: Any) -> None:
    snap = sub.add_parser("snapshot", help="write a snapshot of a database to JSON")
    snap.add_argument("url", help="SQLAlchemy URL, e.g. mysql+pymysql://audit@db/blazz (password: DBAUDIT_PASSWORD)")
    snap.add_argument("-o", "--output", required=True, help="snapshot JSON file to write")
    snap.add_argument("--expect", help="expectations YAML whose metrics: to record (a migration file has none)")
    snap.add_argument("--schema", help="PostgreSQL schema to audit (default public)")
    snap.add_argument("--no-counts", action="store_true", help="skip exact row counts")
    snap.add_argument("--fingerprint", choices=["none", "table", "chunks"], default="none",
                      help="content fingerprints: per table, or per table and key-range chunk")
    snap.add_argument("--baseline", metavar="SNAPSHOT",
                      help="an earlier fingerprinted snapshot: tables whose columns changed since are also "
                           "fingerprinted over its columns, so diff can compare their old columns")
    snap.add_argument("--counts-only", action="store_true", help="counts, no fingerprints (same as --fingerprint none)")
    snap.add_argument("--tables", nargs="+", action="extend", metavar="PATTERN", help="count/fingerprint only these")
    snap.add_argument("--exclude", nargs="+", action="extend", metavar="PATTERN", help="do not count/fingerprint these")
    snap.add_argument("--statement-timeout", type=float, metavar="SECONDS", help="abandon any statement running longer")
    snap.add_argument("--lock-timeout", type=float, metavar="SECONDS", default=DEFAULT_LOCK_TIMEOUT,
                      help=f"fail when another session's lock blocks a read this long (default {DEFAULT_LOCK_TIMEOUT:g})")
    snap.add_argument("--allow-privileged", action="store_true",
                      help="run metrics even as an account with rights beyond the database (superuser, FILE, SUPER …)")
    snap.set_defaults(run=snapshot_command)

    diff = sub.add_parser("diff", help="compare two snapshots, optionally against expectations")
    diff.add_argument("before", help="snapshot JSON from before the change")
    diff.add_argument("after", help="snapshot JSON from after the change")
    diff.add_argument("--expect", help="expectations YAML, or a migration file to derive them from; "
                                       "without it any difference fails")
    add_output_options(diff)
    diff.set_defaults(run=diff_command)

    report = sub.add_parser("report", help="render the HTML audit report through the notebook")
    report.add_argument("--before", required=True, help="snapshot JSON (or database URL) before the change")
    report.add_argument("--after", required=True, help="snapshot JSON (or database URL) after the change")
    report.add_argument("--expect", help="expectations YAML, or a migration file to derive them from (archived "
                                         "with the report); without it any difference fails")
    report.add_argument("--out-dir", default="reports", help="the report archive (default reports)")
    report.add_argument("--name", help="report name (default: the expectations' name: key)")
    add_output_options(report)
    report.set_defaults(run=report_command)

    demo = sub.add_parser("demo", help="audit the built-in blazz demo database (SQLite) and render reports")
    demo.add_argument("--out-dir", default="reports", help="the report archive (default reports)")
    demo.set_defaults(run=demo_command)

    listing = sub.add_parser("reports", help="list archived reports, newest first; --verify checks the archive")
    listing.add_argument("--out-dir", default="reports", help="the report archive (default reports)")
    listing.add_argument("--verify", action="store_true",
                         help="recompute every report's manifest and the archive chain; exit 1 naming the first "
                              "report altered, missing or added")
    listing.set_defaults(run=reports_command)


def snapshot_command(args: argparse.Namespace) -> int:
    from dbaudit.audit.derive import load_or_derive
    from dbaudit.core.snapshot import load_snapshot
    from dbaudit.live.inspect import take_snapshot

    metrics = load_or_derive(args.expect)[0].metric_queries if args.expect else None
    if args.counts_only and args.fingerprint != "none":
        raise DbauditError("--counts-only and --fingerprint exclude each other")
    if args.baseline and args.fingerprint == "none":
        raise DbauditError("--baseline needs --fingerprint table or chunks")
    snapshot = take_snapshot(args.url, metrics, schema=args.schema, count_rows=not args.no_counts,
                             progress=progress(), fingerprint=args.fingerprint, tables=args.tables,
                             exclude=args.exclude, statement_timeout=args.statement_timeout,
                             lock_timeout=args.lock_timeout, allow_privileged=args.allow_privileged,
                             baseline=load_snapshot(args.baseline) if args.baseline else None)
    snapshot.save(args.output)
    from dbaudit.live.connect import mask_url

    failed = [m.name for m in snapshot.metrics.values() if m.error]
    counted = [t for t in snapshot.tables.values() if t.row_count is not None]
    rows = f"{snapshot.total_rows:,} rows" if counted or not snapshot.tables else "rows not counted"
    say(f"snapshot of {snapshot.database} ({snapshot.server.product} {snapshot.server.version}) from "
          f"{mask_url(args.url)}: {len(snapshot.tables)} tables, {rows}, "
          f"{len(snapshot.metrics)} metrics -> {args.output}")
    _warn_about_scope(snapshot, args.tables, args.exclude)
    for name in failed:
        say(f"  metric {name}: {snapshot.metrics[name].error}", file=sys.stderr)
    for warning in snapshot_warnings(snapshot):
        say(f"warning: {warning}", file=sys.stderr)
    return EXIT_PASS


def snapshot_warnings(snapshot: Any) -> list[str]:
    """What the operator must know about the account a snapshot was taken with (also recorded in the file)."""
    from dbaudit.audit.visibility import blind_spots

    warnings = [f"{spot} (recorded in the snapshot; see `dbaudit grants`)" for spot in blind_spots(snapshot)]
    if snapshot.account and snapshot.account.writes:
        shown = ", ".join(snapshot.account.writes[:3]) + (" …" if len(snapshot.account.writes) > 3 else "")
        warnings.append(f"the account {snapshot.account.user} can write ({shown}); an audit needs only the "
                        "read grants `dbaudit grants` prints")
    return warnings


def _warn_about_scope(snapshot: Any, tables: list[str] | None, exclude: list[str] | None) -> None:
    """An empty snapshot, or a --tables/--exclude pattern that matched nothing, is usually a typo."""
    import fnmatch

    if not snapshot.tables:
        say(f"warning: the snapshot of {snapshot.database} holds no tables (wrong database or schema?)",
              file=sys.stderr)
    for option, patterns in (("--tables", tables), ("--exclude", exclude)):
        for pattern in patterns or ():
            if not any(fnmatch.fnmatchcase(name, pattern) for name in snapshot.tables):
                say(f"warning: {option} {pattern!r} matches no table", file=sys.stderr)


def diff_command(args: argparse.Namespace) -> int:
    from dbaudit.live.connect import mask_url
    from dbaudit.live.workflow import run_audit

    for path in (args.before, args.after):
        if not str(path).endswith(".json"):
            what = mask_url(path) if "://" in str(path) else path
            raise DbauditError(f"diff compares snapshot files (*.json), not {what}")
    result = run_audit(args.before, args.after, args.expect).result
    write_outputs(args, result, f"dbaudit diff {result.title}", result.checks)
    for change in result.changes:
        mark = " " if change.declared and args.expect else "!"
        say(f"{mark} {change.message}")
    if not result.changes:
        say("no differences" if result.passed else "no differences, but these checks failed:")
    for check in result.checks:
        if check.category == "visibility" and (check.status == "fail" or not args.expect):
            say(f"{check.status.upper()} [visibility] {check.name}: {check.message}")
        if check.category == "coverage":  # an older snapshot's format could not record these: say so
            say(f"? {check.message}")
    # The exit code follows the checks: without expectations every "!" change above is a failed check;
    # with no change to show, the checks that failed anyway (rows not counted …) are printed instead.
    explain = bool(args.expect) or not result.changes
    for check in result.failed_checks if explain else ():
        if check.category != "visibility":  # printed above
            say(f"FAIL [{check.category}] {check.name}: {check.message}")
    if args.expect or (explain and result.failed_checks):
        say_verdict("verdict: ", result.verdict, f" ({len(result.checks) - len(result.failed_checks)}/"
              f"{len(result.checks)} checks passed)")
    return exit_code(result.passed)


def report_command(args: argparse.Namespace) -> int:
    from dbaudit.audit.result import load_result
    from dbaudit.outputs.report import render_audit

    report = render_audit(args.before, args.after, args.expect, args.out_dir, args.name, progress=progress())
    if report.result:
        result = load_result(report.result)
        write_outputs(args, result, f"dbaudit report {result.title}", result.checks)
    say_verdict("verdict: ", report.verdict or "unknown", f"  report: {shown(report.html)}")
    return exit_code(report.verdict == "pass")


def demo_command(args: argparse.Namespace) -> int:
    from dbaudit import demo
    from dbaudit.audit.result import load_result

    reports = demo.run(Path(args.out_dir), progress=progress(),
                       log=lambda step: say(f"… {step}", file=sys.stderr, flush=True))
    for scenario, report in reports:
        say(f"{scenario:<52} {str(report.verdict).upper():<5} {shown(report.html)}")
        if report.result and report.verdict == "fail":
            for check in _failed_checks(report.result, load_result):
                say(f"    failed [{check.category}] {check.name}: {check.message}")
    say(f"index of all reports: {Path(args.out_dir) / 'index.html'}")
    return EXIT_PASS


def _failed_checks(path: Path, load_result: Any) -> list[Any]:
    """A report's failed checks, whichever kind of result it holds (an audit, or a rehearsal's stages)."""
    from dbaudit.core.serde import read_json

    if read_json(path, "result").get("kind") == "dbaudit.rehearsal":
        from dbaudit.backups.rehearse import load_rehearsal

        return [c for c in load_rehearsal(path).failed_checks if c.category != "stage"]
    return list(load_result(path).failed_checks)


def reports_command(args: argparse.Namespace) -> int:
    from dbaudit.outputs.report import list_reports, verify_archive

    if args.verify:
        entries, problem = verify_archive(args.out_dir)
        if problem is not None:
            say(f"archive altered: {problem}")
            return EXIT_FAIL
        head = entries[-1].hash if entries else "(empty)"
        say(f"archive intact: {len(entries)} report(s), manifests and chain verified; newest entry {head}")
        return EXIT_PASS
    found = list_reports(args.out_dir)
    for r in found:
        say(f"{r.created:<26} {r.kind:<9} {r.verdict.upper():<5} {r.failed:>3} failed  {r.title:<30} "
              f"{r.database:<30} {r.folder}")
    if not found:
        say(f"no reports in {args.out_dir}")
    return EXIT_PASS
