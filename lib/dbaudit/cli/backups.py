"""`dbaudit dump-check` and `restore-check`: a backup proven whole, and proven to restore."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from dbaudit.backups.checks import MANIFEST_SUFFIX, DumpCheck
from dbaudit.cli.common import add_output_options, add_report_options, exit_code, print_checks, progress, say, write_outputs


def add_commands(sub: Any) -> None:
    cmd = sub.add_parser("dump-check", help="validate a dump before trusting it: mysqldump/mariadb-dump, pg_dump "
                         "(plain, custom, tar, directory) or a mydumper directory")
    cmd.add_argument("dump", help="the dump file or directory (its format and compression told by content)")
    digest = cmd.add_mutually_exclusive_group()
    digest.add_argument("--md5", help="expected MD5 of the file (hex)")
    digest.add_argument("--sha256", help="expected SHA-256 of the file (hex)")
    cmd.add_argument("--against", help="snapshot JSON of the dumped database: compare tables and row counts")
    add_output_options(cmd)
    cmd.add_argument("--write-manifest", action="store_true",
                     help=f"after a passing check, write DUMP{MANIFEST_SUFFIX} for later checks")
    add_report_options(cmd, "backup_check.ipynb")
    cmd.set_defaults(run=dump_check_command)

    cmd = sub.add_parser("restore-check", help="restore a dump into a scratch database, verify it, drop it")
    cmd.add_argument("dump", help="the dump: mysqldump (plain or .gz), or pg_dump plain/custom/tar/directory (told by "
                     "content; restored into PostgreSQL as a temporary role)")
    cmd.add_argument("--server", required=True,
                     help="MySQL/MariaDB URL, or PostgreSQL for a pg_dump (password: DBAUDIT_PASSWORD); its database, if any, "
                     "is the source")
    cmd.add_argument("--scratch", help="scratch database to create (default <source>_restore_test; pg_dump: "
                     "dbaudit_restore_<random>); must not exist")
    cmd.add_argument("--against", help="snapshot JSON of the source database: the restore must diff empty")
    cmd.add_argument("--keep", action="store_true", help="keep the scratch database after the check")
    cmd.add_argument("--restore-timeout", type=float, metavar="SECONDS",
                     help="end the restore and the reads after it by then (default 3600; pg_dump too): a dump that sleeps or "
                          "loops fails instead of hanging")
    cmd.add_argument("--fingerprint", choices=["table", "chunks"],
                     help="record content fingerprints of the restored tables (taken anyway, and compared, when "
                          "--against has fingerprints)")
    add_output_options(cmd)
    add_report_options(cmd, "restore_check.ipynb")
    cmd.set_defaults(run=restore_check_command)


def dump_check_command(args: argparse.Namespace) -> int:
    from dbaudit.backups.checks import check_dump, write_manifest

    check = check_dump(args.dump, md5=args.md5, sha256=args.sha256, against=args.against, progress=progress(),
                       compute_md5=args.write_manifest)
    write_outputs(args, check, f"dbaudit dump-check {Path(args.dump).name}", check.checks)
    _print_dump_check(check)
    if args.write_manifest:
        if not check.passed:
            # A failing verdict is a result (exit 1, --json written), not an input error: say why there is no manifest.
            say("manifest not written: the dump did not pass")
        elif check.manifest:
            say(f"manifest {check.manifest} already matches; left as it is")
        else:
            say(f"manifest written: {write_manifest(check)}")
    if args.report:
        from dbaudit.outputs.report import render_backup_check

        # The notebook shows this very check from a file: the dump (possibly many GB) is read once, not twice.
        with tempfile.TemporaryDirectory() as work:
            saved = Path(work) / "dump-check.json"
            check.save(saved)
            report = render_backup_check(args.dump, result=saved, out_dir=args.out_dir, progress=progress())
        say(f"report: {report.html}")
    return exit_code(check.passed)


def _print_dump_check(check: DumpCheck) -> None:
    c = check.dump
    server = c.header.server_version or "unknown server"
    tool = c.header.tool or "not a mysqldump header"
    say(f"{c.file.path}: {c.file.size:,} bytes{' (compressed)' if c.file.compressed else ''}, {tool}, {server}")
    say(f"  {f'md5 {c.file.md5}  ' if c.file.md5 else ''}sha256 {c.file.sha256}")
    say(f"  {len(c.databases)} database(s) {', '.join(c.databases)}; {len(c.tables)} tables, {c.total_rows:,} rows; "
          f"{len(c.views)} views, {len(c.routines)} routines, {len(c.triggers)} triggers")
    for name, t in c.tables.items():
        say(f"    {name:<40} {t.rows:>12,}")
    print_checks(check.checks)
    say(f"verdict: {check.verdict.upper()} ({check.summary['mb_per_second']} MB/s)")


def restore_check_command(args: argparse.Namespace) -> int:
    from dbaudit.backups.pgrestore import is_pg_dump, pg_restore_check
    from dbaudit.backups.restore import restore_check

    if is_pg_dump(args.dump):
        result = pg_restore_check(args.dump, args.server, scratch=args.scratch, against=args.against, keep=args.keep,
                                  progress=progress(), timeout=args.restore_timeout,
                                  fingerprint=args.fingerprint or "none")
    else:
        result = restore_check(args.dump, args.server, scratch=args.scratch, against=args.against, keep=args.keep,
                               progress=progress(), timeout=args.restore_timeout, fingerprint=args.fingerprint)
    for line in result.leftovers:
        say(f"earlier run: {line}")
    write_outputs(args, result, f"dbaudit restore-check {result.scratch}", result.checks)
    say(f"restore of {result.dump.path} into {result.scratch} on {result.server} ({result.product} "
          f"{result.version}): {result.summary['tables']} tables, {result.summary['rows']:,} rows, "
          f"{result.restore_seconds:.1f} s")
    if result.skipped_statements:
        say(f"  not sent to the server: {', '.join(result.skipped_statements)}")
    print_checks(result.checks)
    state = "kept" if result.kept else "dropped" if result.restore_seconds else "not created"
    say(f"scratch database {result.scratch} {state}")
    if args.report:
        from dbaudit.outputs.report import render_restore_check

        with tempfile.TemporaryDirectory() as work:
            saved = Path(work) / "result.json"
            result.save(saved)
            say(f"report: {render_restore_check(saved, args.out_dir, progress=progress()).html}")
    say(f"verdict: {result.verdict.upper()}")
    return exit_code(result.passed)
