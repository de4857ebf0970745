"""`dbaudit rehearse`: the migration and its rollback proven on a scratch restore of the backup."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from dbaudit.cli.common import add_output_options, add_report_options, exit_code, print_checks, progress, say, write_outputs


def add_commands(sub: Any) -> None:
    cmd = sub.add_parser("rehearse", help="restore the backup into a scratch database, migrate, audit, roll back and "
                                          "prove the rollback restored it, then drop it")
    cmd.add_argument("dump", help="the backup: a mysqldump/mariadb-dump file (plain or compressed), a pg_dump "
                                  "(plain, custom, tar or directory), or an SQLite file")
    cmd.add_argument("--server", required=True,
                     help="MySQL/MariaDB or PostgreSQL URL to restore on (password: DBAUDIT_PASSWORD); for an SQLite "
                          "file sqlite:// (a temporary folder) or sqlite:///FOLDER")
    cmd.add_argument("--expect", help="expectations YAML, or a migration file to derive them from "
                                      "(default: derived from the --migrate files)")
    migrate = cmd.add_mutually_exclusive_group(required=True)
    migrate.add_argument("--migrate", nargs="+", action="extend", metavar="FILE.sql",
                         help="SQL file(s) run statement by statement as the temporary account (PostgreSQL: the "
                              "role that owns the scratch database; a psql meta-command refuses the file)")
    migrate.add_argument("--migrate-cmd", metavar="CMD", help="a command run with the scratch database in DB_* "
                                                              "(DB_CONNECTION mysql, pgsql or sqlite) and "
                                                              "DBAUDIT_SCRATCH_URL, e.g. 'php artisan migrate --force'")
    rollback = cmd.add_mutually_exclusive_group(required=True)
    rollback.add_argument("--rollback", nargs="+", action="extend", metavar="FILE.sql", help="SQL file(s) of the rollback")
    rollback.add_argument("--rollback-cmd", metavar="CMD",
                          help="the rollback as a command, e.g. 'php artisan migrate:rollback --step=2 --force'")
    cmd.add_argument("--scratch", help="scratch database to create (default <dump name>_rehearsal); must not exist")
    cmd.add_argument("--keep", action="store_true",
                     help="keep the scratch database afterwards (MySQL: the account is dropped; PostgreSQL: its "
                          "role stays, unable to log in, as the owner of what was restored); says how to drop them")
    cmd.add_argument("--stage-timeout", type=float, default=600.0, metavar="SECONDS",
                     help="time limit of the migrate and of the rollback stage (default 600)")
    add_output_options(cmd)
    add_report_options(cmd, "rehearsal.ipynb")
    cmd.set_defaults(run=rehearse_command)


def rehearse_command(args: argparse.Namespace) -> int:
    from dbaudit.backups.rehearse import rehearse

    with tempfile.TemporaryDirectory(prefix="dbaudit-rehearse-") as work:
        result = rehearse(args.dump, args.server, expect=args.expect, migrate=args.migrate or (),
                          migrate_cmd=args.migrate_cmd, rollback=args.rollback or (), rollback_cmd=args.rollback_cmd,
                          scratch=args.scratch, keep=args.keep, stage_timeout=args.stage_timeout,
                          snapshots_dir=work if args.report else None, progress=progress(),
                          log=lambda step: say(f"… {step}", file=sys.stderr, flush=True))
        stage_seconds = {stage.name: stage.seconds for stage in result.stages}
        times = [stage_seconds.get(c.name, 0.0) if c.category == "stage" else 0.0 for c in result.checks]
        write_outputs(args, result, f"dbaudit rehearse {result.scratch}", result.checks,
                      sum(stage_seconds.values()), times)
        server = f" ({result.product} {result.version})" if result.product else ""  # unknown when dump-check failed
        say(f"rehearsal of {result.dump} on {result.server}{server}, scratch database {result.scratch}")
        for stage in result.stages:
            say(f"{stage.status.upper():<7} {stage.name:<10} {stage.seconds:>8.1f} s  {stage.message}")
            failed = [c for c in stage.checks if c.status == "fail"]
            if failed:
                print_checks(failed, width=13)
        say(f"scratch database {result.scratch} {'kept' if result.kept else 'dropped'}"
            + (f"; drop it with: {result.drop_hint}" if result.kept and result.drop_hint else ""))
        if args.report:
            from dbaudit.outputs.report import render_rehearsal

            saved = Path(work) / "rehearsal.json"
            result.save(saved)
            say(f"report: {render_rehearsal(saved, args.out_dir, snapshots=Path(work), progress=progress()).html}")
    say(f"verdict: {result.verdict.upper()}")
    return exit_code(result.passed)
