"""`dbaudit backup-health`: a folder of backups checked against the runbook's hygiene (age, retention,
permissions, git, offsite)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dbaudit.cli.common import add_output_options, exit_code, print_checks, say, write_outputs


def add_commands(sub: Any) -> None:
    cmd = sub.add_parser("backup-health", help="check a folder of backups: age, retention, permissions, git, offsite")
    cmd.add_argument("paths", nargs="+", metavar="DIR_OR_FILES",
                     help="backup files, dump directories, or folders holding them (with their .manifest.json)")
    cmd.add_argument("--keep-days", type=float, default=30, metavar="DAYS",
                     help="the oldest restorable backup must be at least this old (default 30)")
    cmd.add_argument("--max-age-hours", type=float, default=26, metavar="HOURS",
                     help="the newest restorable backup, and the gap between two, at most this (default 26: a daily "
                          "job with two hours of slack)")
    cmd.add_argument("--offsite", metavar="URL",
                     help="where copies live (a path or any fsspec URL): the newest must match its manifest's sha256")
    add_output_options(cmd)
    cmd.set_defaults(run=backup_health_command)


def backup_health_command(args: argparse.Namespace) -> int:
    from dbaudit.backups.health import backup_health

    result = backup_health(args.paths, keep_days=args.keep_days, max_age_hours=args.max_age_hours,
                           offsite=args.offsite)
    write_outputs(args, result, "dbaudit backup-health", result.checks)
    say(f"{result.title}: {len(result.backups)} backups, {result.summary['restorable']} restorable")
    for entry in result.backups:
        state = {True: "restorable", False: "NOT restorable", None: "not checked"}[entry.restorable]
        say(f"  {entry.taken_at}  {entry.age_hours / 24:7.1f} d  {entry.mode}  {state:<14} {Path(entry.path).name}")
    print_checks(result.checks)
    say(f"verdict: {result.verdict.upper()}")
    return exit_code(result.passed)
