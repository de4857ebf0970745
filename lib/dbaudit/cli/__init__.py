"""The `dbaudit` command: a thin layer over the library. One module per command group parses the
arguments, calls the library and prints; the library never imports this package.

A stable contract: exit 0 pass / no difference, 1 fail / differences, 2 usage or input error
(one line on stderr, never a traceback)."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from typing import TextIO

from dbaudit import __version__
from dbaudit.cli import audit, backups, compare, expect, grants, health, rehearse, triggers
from dbaudit.cli.common import check_output_options, fail, say
from dbaudit.core import secrets, signals
from dbaudit.core.errors import DbauditError

COMMAND_GROUPS = (audit, backups, compare, triggers, health, expect, rehearse, grants)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # One line, like every other error: the usage text is one `--help` away.
        command = self.prog.removeprefix("dbaudit").strip()
        hint = f"see `{self.prog} --help`"
        raise SystemExit(fail(f"{command}: {message} ({hint})" if command else f"{message} ({hint})"))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dbaudit", description="Snapshot, diff and audit MySQL/MariaDB, PostgreSQL and SQLite.")
    parser.add_argument("--version", action="version", version=f"dbaudit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for group in COMMAND_GROUPS:
        group.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Masked wherever it turns up, driver errors included; SIGTERM/SIGHUP clean up like Ctrl-C, in every command.
    secrets.remember_secret(os.environ.get("DBAUDIT_PASSWORD"))
    with signals.terminate_as_interrupt(), warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            return _run(argv)
        except KeyboardInterrupt as exc:  # a second Ctrl-C during a cleanup's own except clause lands here
            return _interrupted(exc)


def _run(argv: Sequence[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
        check_output_options(args)
        return int(args.run(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    except DbauditError as exc:
        return fail(str(exc))
    except KeyboardInterrupt as exc:
        return _interrupted(exc)
    except BrokenPipeError:  # `dbaudit reports | head`: the reader has all it wants
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # nothing left to flush at exit, so no "Broken pipe" either
        return 1
    except OSError as exc:
        return fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "))
    except Exception as exc:  # the contract: exit 2 and one line, never a traceback
        if os.environ.get("DBAUDIT_DEBUG"):
            raise
        return fail(f"unexpected {type(exc).__name__}: {exc} (set DBAUDIT_DEBUG=1 for the traceback)")


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: TextIO | None = None, line: str | None = None) -> None:
    """A library's warning (which may quote a name or a URL) as one masked, escaped line."""
    say(f"dbaudit: warning: {category.__name__}: {message}", file=sys.stderr)


def _interrupted(exc: KeyboardInterrupt) -> int:
    """One line, no traceback, and the shell's status: 130 after Ctrl-C, 143 after SIGTERM."""
    reason = f"terminated ({exc.name})" if isinstance(exc, signals.Terminated) else "interrupted"
    say(f"dbaudit: error: {reason}", file=sys.stderr)
    return signals.exit_status(exc)


if __name__ == "__main__":
    sys.exit(main())
