"""What every command shares: the exit-code contract, --json/--junit, and how paths and errors print."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from dbaudit.core import secrets, serde
from dbaudit.core.checks import Check
from dbaudit.core.errors import first_line
from dbaudit.core.terminal import visible
from dbaudit.outputs.junit import junit_xml

EXIT_PASS, EXIT_FAIL, EXIT_ERROR = 0, 1, 2


def fail(message: str) -> int:
    say(f"dbaudit: error: {first_line(message)}", file=sys.stderr)
    return EXIT_ERROR


def terminal_line(text: object) -> str:
    """What may reach the terminal: credentials masked, control characters shown as escapes."""
    return visible(secrets.mask_text(str(text)))


def say(text: object = "", file: TextIO | None = None, flush: bool = False) -> None:
    """Print one line of output. Every CLI printer goes through here: a name from a database or a dump
    holding a newline or an escape sequence cannot add a line (a fake verdict) or repaint the terminal,
    and a password a driver echoes is masked."""
    print(terminal_line(text), file=file or sys.stdout, flush=flush)


def painted(verdict: str) -> str:
    """PASS green, FAIL red on a terminal; plain in pipes, files and wherever NO_COLOR is set."""
    word = verdict.upper()
    if not sys.stdout.isatty() or os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return word
    return f"\033[1;{32 if verdict == 'pass' else 31}m{word}\033[0m"


def say_verdict(before: str, verdict: str, after: str = "") -> None:
    """A verdict line: the text escaped as say() does, only the verdict word (ours, never a name) coloured."""
    print(terminal_line(before) + painted(verdict) + terminal_line(after))


def exit_code(passed: bool) -> int:
    return EXIT_PASS if passed else EXIT_FAIL


def progress() -> bool:
    """Progress bars only where someone watches: on a terminal."""
    return sys.stderr.isatty()


def add_output_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--json", dest="json_out", metavar="OUT", help="write the result JSON here")
    command.add_argument("--junit", metavar="OUT", help="write the checks as JUnit XML here (one testcase per check)")


def add_report_options(command: argparse.ArgumentParser, notebook: str) -> None:
    command.add_argument("--report", action="store_true", help=f"also render an HTML report (notebooks/{notebook})")
    command.add_argument("--out-dir", default="reports", help="where --report archives it (default reports)")


OUTPUT_OPTIONS = ("json_out", "junit", "output")  # the dests of --json, --junit and -o/--output


def check_output_options(args: argparse.Namespace) -> None:
    """Refuse a --json/--junit/-o target dbaudit will not replace (device, FIFO, directory, symbolic link)
    before any work: an hour-long snapshot must not end in "cannot write"."""
    for dest in OUTPUT_OPTIONS:
        path = getattr(args, dest, None)
        if isinstance(path, str) and path != "-":
            serde.check_output_target(path)


def write_outputs(args: argparse.Namespace, document: Any, suite: str, checks: Sequence[Check], seconds: float = 0.0,
                  times: Sequence[float] | None = None) -> None:
    """Write what --json and --junit asked for: both, or (when one cannot be written) neither."""
    wanted = [(path, text) for path, text in ((args.json_out, lambda: serde.dumps(document)),
                                              (args.junit, lambda: junit_xml(suite, checks, seconds, times=times)))
              if path]
    written: list[str] = []
    try:
        for path, text in wanted:
            serde.write_atomic(path, text())
            written.append(path)
    except BaseException:
        for path in written:
            os.unlink(path)
        raise


def shown(path: Path) -> str:
    """Paths under the current folder print relative, as the user typed them."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def print_checks(checks: Sequence[Check], width: int = 4) -> None:
    for check in checks:
        say(f"{check.status.upper():<{width}} [{check.category}] {check.name}: {check.message}")
