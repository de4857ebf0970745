"""The `dbaudit` command. A stable contract: exit 0 pass / no difference, 1 fail / differences,
2 usage or input error (one line on stderr, never a traceback)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from dbaudit import compare, dumpfile, restore, rollback
from dbaudit.connect import mask_url
from dbaudit.errors import DbauditError, first_line
from dbaudit.ci import add_output_options, write_outputs

EXIT_PASS, EXIT_FAIL, EXIT_ERROR = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # One line, like every other error: the usage text is one `--help` away.
        command = self.prog.removeprefix("dbaudit").strip()
        hint = f"see `{self.prog} --help`"
        raise SystemExit(_fail(f"{command}: {message} ({hint})" if command else f"{message} ({hint})"))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dbaudit", description="Snapshot, diff and audit MySQL/MariaDB, PostgreSQL and SQLite.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    snap = sub.add_parser("snapshot", help="write a snapshot of a database to JSON")
    snap.add_argument("url", help="SQLAlchemy URL, e.g. mysql+pymysql://audit@db/blazz (password: DBAUDIT_PASSWORD)")
    snap.add_argument("-o", "--output", required=True, help="snapshot JSON file to write")
    snap.add_argument("--expect", help="expectations YAML whose metrics: to record")
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
    snap.set_defaults(run=_snapshot)

    diff = sub.add_parser("diff", help="compare two snapshots, optionally against expectations")
    diff.add_argument("before")
    diff.add_argument("after")
    diff.add_argument("--expect", help="expectations YAML; without it any difference fails")
    add_output_options(diff)
    diff.set_defaults(run=_diff)

    report = sub.add_parser("report", help="render the HTML audit report through the notebook")
    report.add_argument("--before", required=True)
    report.add_argument("--after", required=True)
    report.add_argument("--expect")
    report.add_argument("--out-dir", default="reports")
    report.add_argument("--name", help="report name (default: the expectations' name: key)")
    add_output_options(report)
    report.set_defaults(run=_report)

    demo = sub.add_parser("demo", help="audit the built-in blazz demo database (SQLite) and render reports")
    demo.add_argument("--out-dir", default="reports")
    demo.set_defaults(run=_demo)

    listing = sub.add_parser("reports", help="list archived reports, newest first")
    listing.add_argument("--out-dir", default="reports")
    listing.set_defaults(run=_reports)

    # Commands whose work lives in their own module register themselves here, one line each.
    dumpfile.add_commands(sub)
    restore.add_commands(sub)
    rollback.add_commands(sub)
    compare.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return int(args.run(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    except DbauditError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return _fail("interrupted")
    except OSError as exc:
        return _fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "))
    except Exception as exc:  # noqa: BLE001 - the contract: exit 2 and one line, never a traceback
        if os.environ.get("DBAUDIT_DEBUG"):
            raise
        return _fail(f"unexpected {type(exc).__name__}: {exc} (set DBAUDIT_DEBUG=1 for the traceback)")


def _fail(message: str) -> int:
    print(f"dbaudit: error: {first_line(message)}", file=sys.stderr)
    return EXIT_ERROR


def _snapshot(args: argparse.Namespace) -> int:
    from dbaudit.expectations import load_expectations
    from dbaudit.inspect import take_snapshot
    from dbaudit.snapshot import load_snapshot

    metrics = load_expectations(args.expect).metric_queries if args.expect else None
    if args.counts_only and args.fingerprint != "none":
        raise DbauditError("--counts-only and --fingerprint exclude each other")
    if args.baseline and args.fingerprint == "none":
        raise DbauditError("--baseline needs --fingerprint table or chunks")
    snapshot = take_snapshot(args.url, metrics, schema=args.schema, count_rows=not args.no_counts,
                             progress=sys.stderr.isatty(), fingerprint=args.fingerprint, tables=args.tables,
                             exclude=args.exclude, statement_timeout=args.statement_timeout,
                             baseline=load_snapshot(args.baseline) if args.baseline else None)
    snapshot.save(args.output)
    failed = [m.name for m in snapshot.metrics.values() if m.error]
    print(f"snapshot of {snapshot.database} ({snapshot.server.product} {snapshot.server.version}) from "
          f"{mask_url(args.url)}: {len(snapshot.tables)} tables, {snapshot.total_rows:,} rows, "
          f"{len(snapshot.metrics)} metrics -> {args.output}")
    for name in failed:
        print(f"  metric {name}: {snapshot.metrics[name].error}", file=sys.stderr)
    return EXIT_PASS


def _diff(args: argparse.Namespace) -> int:
    from dbaudit.workflow import run_audit

    for path in (args.before, args.after):
        if not str(path).endswith(".json"):
            shown = mask_url(path) if "://" in str(path) else path
            raise DbauditError(f"diff compares snapshot files (*.json), not {shown}")
    audit = run_audit(args.before, args.after, args.expect)
    result = audit.result
    write_outputs(args, result, f"dbaudit diff {result.title}", result.checks)
    for change in result.changes:
        mark = " " if change.declared and args.expect else "!"
        print(f"{mark} {change.message}")
    if not result.changes:
        print("no differences")
    if args.expect:
        for check in result.failed_checks:
            print(f"FAIL [{check.category}] {check.name}: {check.message}")
        print(f"verdict: {result.verdict.upper()} ({len(result.checks) - len(result.failed_checks)}/"
              f"{len(result.checks)} checks passed)")
    return EXIT_PASS if result.passed else EXIT_FAIL


def _report(args: argparse.Namespace) -> int:
    from dbaudit.report import render_audit

    report = render_audit(args.before, args.after, args.expect, args.out_dir, args.name,
                          progress=sys.stderr.isatty())
    if report.result:
        from dbaudit.result import load_result

        result = load_result(report.result)
        write_outputs(args, result, f"dbaudit report {result.title}", result.checks)
    print(f"verdict: {(report.verdict or 'unknown').upper()}  report: {_shown(report.html)}")
    return EXIT_PASS if report.verdict == "pass" else EXIT_FAIL


def _demo(args: argparse.Namespace) -> int:
    from dbaudit import demo

    reports = demo.run(Path(args.out_dir), progress=sys.stderr.isatty(),
                       log=lambda step: print(f"… {step}", file=sys.stderr, flush=True))
    for scenario, report in reports:
        print(f"{scenario:<52} {str(report.verdict).upper():<5} {_shown(report.html)}")
        if report.result and report.verdict == "fail":
            from dbaudit.result import load_result

            for check in load_result(report.result).failed_checks:
                print(f"    failed [{check.category}] {check.name}: {check.message}")
    print(f"index of all reports: {Path(args.out_dir) / 'index.html'}")
    return EXIT_PASS


def _shown(path: Path) -> str:
    """Paths under the current folder print relative, as the user typed them."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _reports(args: argparse.Namespace) -> int:
    from dbaudit.report import list_reports

    found = list_reports(args.out_dir)
    for r in found:
        print(f"{r.created:<26} {r.verdict.upper():<5} {r.title:<30} {r.database:<30} {r.folder}")
    if not found:
        print(f"no reports in {args.out_dir}")
    return EXIT_PASS


if __name__ == "__main__":
    sys.exit(main())
