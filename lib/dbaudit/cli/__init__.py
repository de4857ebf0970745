"""The `dbaudit` command: a thin layer over the library. One module per command group parses the
arguments, calls the library and prints; the library never imports this package.

A stable contract: exit 0 pass / no difference, 1 fail / differences, 2 usage or input error
(one line on stderr, never a traceback)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from dbaudit import __version__
from dbaudit.cli import audit, backups, compare, expect, health, triggers
from dbaudit.cli.common import fail
from dbaudit.core.errors import DbauditError

COMMAND_GROUPS = (audit, backups, compare, triggers, health, expect)


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
    try:
        args = build_parser().parse_args(argv)
        return int(args.run(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    except DbauditError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        return fail("interrupted")
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


if __name__ == "__main__":
    sys.exit(main())
