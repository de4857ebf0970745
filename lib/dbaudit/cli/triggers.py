"""`dbaudit triggers`: the rollback triggers of the change, evaluated against the live database."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from dbaudit.cli.common import add_output_options, exit_code, print_checks, say, write_outputs
from dbaudit.core.errors import DbauditError


def add_commands(sub: Any) -> None:
    cmd = sub.add_parser("triggers", help="evaluate the rollback triggers against a live database")
    cmd.add_argument("url", help="database URL (password: DBAUDIT_PASSWORD)")
    cmd.add_argument("--expect", help="expectations YAML; its rollback: section holds the settings")
    cmd.add_argument("--baseline", help="snapshot JSON from before the change (failed_jobs growth, data loss)")
    cmd.add_argument("--cpu-percent", type=float, help="database CPU percent observed by monitoring")
    cmd.add_argument("--cpu-minutes", type=float, help="for how many minutes it stayed at that level")
    cmd.add_argument("--webhook-error-rate", type=float, help="webhook endpoint error rate, percent")
    cmd.add_argument("--schema", help="PostgreSQL schema to evaluate (default public)")
    cmd.add_argument("--statement-timeout", type=float, metavar="SECONDS", help="abandon any statement running longer")
    add_output_options(cmd)
    cmd.set_defaults(run=triggers_command)


def triggers_command(args: argparse.Namespace) -> int:
    from dbaudit.live.rollback import External, evaluate_triggers

    if (args.cpu_percent is None) != (args.cpu_minutes is None):
        raise DbauditError("--cpu-percent and --cpu-minutes go together")
    for option, value in (("--cpu-percent", args.cpu_percent), ("--webhook-error-rate", args.webhook_error_rate)):
        if value is not None and not 0 <= value <= 100:
            raise DbauditError(f"{option} is a percentage from 0 to 100, not {value:g}")
    if args.cpu_minutes is not None and args.cpu_minutes < 0:
        raise DbauditError(f"--cpu-minutes cannot be negative ({args.cpu_minutes:g})")
    result = evaluate_triggers(args.url, args.expect, baseline=args.baseline,
                               external=External(args.cpu_percent, args.cpu_minutes, args.webhook_error_rate),
                               schema=args.schema, statement_timeout=args.statement_timeout)
    write_outputs(args, result, f"dbaudit triggers {result.database}", result.checks)
    print_checks(result.checks, width=7)
    if result.passed:
        say(f"no rollback trigger fired ({result.summary['checks']} checks, {result.summary['skipped']} skipped)")
    else:
        fired = ", ".join(sorted({c.category for c in result.fired}))
        say(f"ROLLBACK: {len(result.fired)} trigger(s) fired: {fired}")
    sys.stdout.flush()
    return exit_code(result.passed)
