"""`dbaudit compare`: the rows of two live databases, down to the keys that differ."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from dbaudit.cli.common import EXIT_ERROR, add_output_options, add_report_options, exit_code, progress, say, write_outputs

if TYPE_CHECKING:  # the live layer (SQLAlchemy) is imported by the commands that connect, not at start-up
    from dbaudit.live.compare import CompareResult

MAX_KEYS = 20  # dbaudit.live.compare.MAX_KEYS, without importing the live layer to build the parser


def add_commands(sub: Any) -> None:
    cmd = sub.add_parser("compare", help="compare the rows of two live databases; name differing keys")
    cmd.add_argument("url_a", help="the reference database (SQLAlchemy URL; password: DBAUDIT_PASSWORD)")
    cmd.add_argument("url_b", help="the database to check against it")
    cmd.add_argument("--tables", nargs="+", action="extend", metavar="PATTERN", help="only these tables (fnmatch)")
    cmd.add_argument("--exclude", nargs="+", action="extend", metavar="PATTERN", help="skip these tables (fnmatch)")
    cmd.add_argument("--schema", help="PostgreSQL schema on both sides (default public)")
    add_output_options(cmd)
    cmd.add_argument("--counts-only", action="store_true", help="compare exact row counts only (fast)")
    cmd.add_argument("--show-values", action="store_true", help="also print the differing column values")
    cmd.add_argument("--max-keys", type=int, default=MAX_KEYS, help=f"keys listed per table (default {MAX_KEYS})")
    cmd.add_argument("--workers", type=int, default=4, help="tables compared at once = sessions per database")
    cmd.add_argument("--statement-timeout", type=float, metavar="SECONDS", help="abandon any statement running longer")
    add_report_options(cmd, "compare.ipynb")
    cmd.set_defaults(run=compare_command)


def compare_command(args: argparse.Namespace) -> int:
    from dbaudit.live.compare import compare

    result = compare(args.url_a, args.url_b, tables=args.tables, exclude=args.exclude, schema=args.schema,
                     workers=args.workers, counts_only=args.counts_only, show_values=args.show_values,
                     max_keys=args.max_keys, statement_timeout=args.statement_timeout, progress=progress())
    write_outputs(args, result, f"dbaudit compare {result.a.database} {result.b.database}", result.checks)
    for line in describe(result):
        say(line)
    if args.report:
        from dbaudit.outputs.report import render_compare

        say(f"report: {render_compare(result, args.out_dir, progress=progress()).html}")
    if result.errors:
        return EXIT_ERROR
    return exit_code(result.identical)


def describe(result: CompareResult) -> list[str]:
    """The result as terminal lines: one per table, then its listed keys."""
    lines = [f"A: {result.a.source} ({result.a.product} {result.a.version})",
             f"B: {result.b.source} ({result.b.product} {result.b.version})"]
    for table in result.tables:
        lines.append(table.describe())
        for diff in table.keys:
            values = f"  A: {diff.a}  B: {diff.b}" if result.show_values else ""
            lines.append(f"    {diff.change:<8} {diff.label}{values}")
        if table.keys_total > len(table.keys) and (table.keys or table.method != "rowhash"):
            lines.append(f"    … {table.keys_total - len(table.keys)} more (--max-keys)")
    s = result.summary
    same = "same row counts (contents not compared: --counts-only)" if result.counts_only else "same"
    lines.append(f"{s['tables']} tables: {s['same']} {same}, {s['different']} different, "
                 f"{s['only_in_a']} only in A, {s['only_in_b']} only in B, {s['error']} errors "
                 f"({result.duration_seconds:.1f} s)")
    return lines
