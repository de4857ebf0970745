"""`dbaudit expect`: expectations derived from the migration itself (dbaudit.audit.derive)."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from dbaudit.cli.common import EXIT_PASS, say
from dbaudit.core.errors import DbauditError

ARTISAN_TIMEOUT = 300  # seconds: pretend runs no migration, it only prints their SQL


def add_commands(sub: Any) -> None:
    expect = sub.add_parser("expect", help="derive expectations (YAML) from migration SQL")
    expect.add_argument("migrations", nargs="*", metavar="MIGRATION.sql",
                        help="migration SQL files, in the order they run (or `php artisan migrate --pretend` output)")
    expect.add_argument("-o", "--output", required=True, help="expectations YAML to write (- for standard output)")
    expect.add_argument("--dialect", choices=["mysql", "postgresql", "sqlite"],
                        help="the SQL dialect (default: the --from-snapshot server, a hint in the file name, or mysql)")
    expect.add_argument("--from-snapshot", metavar="BEFORE.json",
                        help="check the migration against this snapshot of the database before it runs")
    expect.add_argument("--laravel", metavar="DIR",
                        help="a Laravel application (runs `php artisan migrate --pretend`) or a file with its output")
    expect.add_argument("--name", help="the expectations' name (default: the first file's name)")
    expect.set_defaults(run=expect_command)


def expect_command(args: argparse.Namespace) -> int:
    from dbaudit.audit.derive import derive
    from dbaudit.core import serde
    from dbaudit.core.snapshot import load_snapshot

    before = load_snapshot(args.from_snapshot) if args.from_snapshot else None
    texts, migration_files, paths = [], [], list(args.migrations)
    if args.laravel:
        laravel = Path(args.laravel)
        if laravel.is_dir():
            migration_files = _migration_files(laravel)
            texts.append((f"{laravel}: php artisan migrate --pretend", _pretend(laravel)))
        else:
            paths.append(laravel)
    if not paths and not texts:
        raise DbauditError("name the migration's SQL files, or --laravel DIR")
    derived = derive(paths, args.dialect, before, name=args.name, snapshot_label=args.from_snapshot, texts=texts,
                     migration_files=migration_files)
    if args.output == "-":
        sys.stdout.write(derived.text)
    else:
        serde.write_atomic(args.output, derived.text)
    for warning in derived.warnings:
        say(f"warning: {warning}", file=sys.stderr)
    rules = derived.expectations
    target = "standard output" if args.output == "-" else args.output
    say(f"{len(rules.required)} required, {len(rules.allowed)} allowed, {len(rules.rows.tables)} row rule(s), "
          f"{len(derived.warnings)} warning(s) ({derived.dialect}) -> {target}", file=sys.stderr if args.output == "-"
          else sys.stdout)
    return EXIT_PASS


def _migration_files(folder: Path) -> list[str]:
    """The migration names a Laravel application has (database/migrations/*.php, without .php)."""
    for candidate in (folder / "database" / "migrations", folder):
        found = sorted(p.stem for p in candidate.glob("*.php") if p.is_file())
        if found:
            return found
    raise DbauditError(f"{folder} holds no Laravel migrations (no database/migrations/*.php)")


def _pretend(folder: Path) -> str:
    """What `php artisan migrate --pretend` prints for the pending migrations (it runs none of them; it does
    create the migrations table when that is missing, so point the application at a copy if that matters)."""
    if not (folder / "artisan").is_file():
        raise DbauditError(f"{folder} has no artisan: run `php artisan migrate --pretend --no-ansi > pretend.txt` in the "
                           "application and pass that file to --laravel")
    php = shutil.which("php")
    if php is None:
        raise DbauditError("php is not installed here: run `php artisan migrate --pretend --no-ansi > pretend.txt` where "
                           "it is and pass that file to --laravel")
    env = {**os.environ, "COLUMNS": "10000"}  # Termwind wraps at the terminal width otherwise
    try:
        run = subprocess.run([php, "artisan", "migrate", "--pretend", "--no-ansi", "--no-interaction"], cwd=folder,
                             env=env, capture_output=True, text=True, timeout=ARTISAN_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise DbauditError(f"php artisan migrate --pretend did not finish within {ARTISAN_TIMEOUT}s") from None
    if run.returncode != 0:
        last = (run.stderr or run.stdout).strip().splitlines()[-1:] or ["no output"]
        raise DbauditError(f"php artisan migrate --pretend failed (exit {run.returncode}): {last[0]}")
    if "Nothing to migrate" in run.stdout:
        raise DbauditError(f"{folder}: no pending migrations (artisan says: Nothing to migrate)")
    return run.stdout
