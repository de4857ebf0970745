"""Running a rehearsal's migrate and rollback steps on the scratch database: SQL files or a command.

SQL files are cut into statements (audit/derive/split.py, which knows DELIMITER and executable
comments) and sent one by one through the driver as the temporary account, never through the
`mariadb` client: the client runs `\\!` shell escapes, `system` and `source`; the server answers those
with a syntax error. A command (`php artisan migrate --force`) runs with the scratch database handed
over in the environment the way Laravel reads it, its output captured with every credential masked.
Both run under a time limit; a failure is a step that failed, with its output, never an exception.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pymysql
import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from dbaudit.audit.derive.split import split_statements
from dbaudit.backups.lexicon import DEFINER_CLAUSE
from dbaudit.core.errors import DbauditError, first_line
from dbaudit.live.connect import describe_db_error

OUTPUT_LIMIT = 64_000  # characters of a command's output kept (its head and its tail)
MASK = "***"
_GRACE = 5.0  # seconds between SIGTERM and SIGKILL for a command past its limit


@dataclass
class Step:
    """One migrate or rollback step: a SQL file run statement by statement, or a command."""

    source: str  # the file, or the command line as given
    kind: Literal["sql", "command"]
    status: Literal["pass", "fail"]
    seconds: float
    message: str  # one line: what it did, or why it failed
    statements: int = 0  # SQL statements that ran (a failed one not counted)
    exit_code: int | None = None  # a command's exit status; None: killed at the limit, or a SQL file
    timed_out: bool = False
    output: str = ""  # a command's stdout and stderr, credentials masked


@dataclass
class Target:
    """Where steps run: the scratch database as the temporary account, and how to stop a runaway."""

    dialect: str  # mysql or sqlite
    url: URL  # the temporary account on the scratch database (SQLite: the scratch file)
    env: dict[str, str]  # what a command is handed: DB_* and DBAUDIT_SCRATCH_URL
    secrets: list[str] = field(default_factory=list)  # masked in every output
    server: tuple[str, str] | None = None  # (product, version): which executable comments run
    kill: Callable[[int], None] | None = None  # MySQL: KILL a connection id from the admin connection
    source: str = ""  # the database the backup was taken of: the scratch database stands in for it


def run_steps(target: Target, files: Sequence[str], command: str | None, timeout: float) -> list[Step]:
    """Every file in order (stopping at the first that fails), or the command; `timeout` bounds them all."""
    deadline = time.monotonic() + timeout
    if command is not None:
        return [run_command(target, command, timeout)]
    steps: list[Step] = []
    for path in files:
        step = run_sql_file(target, path, deadline)
        steps.append(step)
        if step.status == "fail":
            break
    return steps


# --- SQL files ---------------------------------------------------------------------------------------


def read_sql_file(path: str | os.PathLike[str], dialect: str,
                  server: tuple[str, str] | None = None) -> list[tuple[int, str]]:
    """(line, statement) of every statement; a file that is not readable SQL text is an input error.
    `server` (product, version) decides which versioned executable comments run, as the server would."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DbauditError(f"SQL file not found: {source}") from None
    except UnicodeDecodeError:
        raise DbauditError(f"{source} is not UTF-8 text: not a SQL file") from None
    except OSError as exc:
        raise DbauditError(f"cannot read {source}: {exc.strerror}") from None
    statements, client_lines = split_statements(text, "sqlite" if dialect == "sqlite" else "mysql", server)
    if client_lines:
        first = client_lines[0]
        raise DbauditError(f"{source}:{first.line}: a client command ({first_line(first.text)}) is not SQL; "
                           "rehearse sends statements to the server, never to a client")
    return [(s.line, s.text) for s in statements if s.text.strip()]


def run_sql_file(target: Target, path: str, deadline: float) -> Step:
    started = time.monotonic()
    statements = read_sql_file(path, target.dialect, target.server)
    runner = _sqlite_runner if target.dialect == "sqlite" else _mysql_runner
    done, error, timed_out = runner(target, statements, deadline)
    seconds = round(time.monotonic() - started, 3)
    if error is None:
        return Step(path, "sql", "pass", seconds, f"{done} statement(s) in {seconds:.1f} s", statements=done)
    line = statements[done][0] if done < len(statements) else 0
    where = f"{path}:{line}" if line else path
    message = f"stopped at the time limit in the statement at {where}" if timed_out else f"{where}: {error}"
    return Step(path, "sql", "fail", seconds, _masked(message, target.secrets), statements=done, timed_out=timed_out)


def _mysql_runner(target: Target, statements: list[tuple[int, str]], deadline: float) -> tuple[int, str | None, bool]:
    """(statements done, the first error, whether the limit stopped it)."""
    engine = sa.create_engine(target.url, poolclass=sa.pool.NullPool)
    try:
        try:
            raw = engine.raw_connection()
        except DBAPIError as exc:
            return 0, f"cannot connect as the temporary account: {describe_db_error(exc)}", False
        driver: Any = raw.driver_connection
        try:
            driver.autocommit(True)  # each statement as the client would run it; a file's own BEGIN … COMMIT holds
            cursor = driver.cursor()
            cursor.execute("SELECT CONNECTION_ID()")
            session = int(cursor.fetchone()[0])
            return _mysql_statements(target, cursor, session, statements, deadline)
        finally:
            with suppress(Exception):  # a connection the limit killed cannot be closed politely: dropped
                raw.invalidate()
    finally:
        engine.dispose()


def _mysql_statements(target: Target, cursor: Any, session: int, statements: list[tuple[int, str]],
                      deadline: float) -> tuple[int, str | None, bool]:
    with _watchdog(deadline, lambda: target.kill(session) if target.kill else None) as fired:
        done = 0
        try:
            for _, text in statements:
                if fired.is_set():
                    return done, "time limit", True
                if not _stands_in(text, target.source):
                    cursor.execute(_without_definer(text))
                    _drain(cursor)
                done += 1
        except KeyboardInterrupt:
            if target.kill:
                target.kill(session)  # the server would otherwise finish the statement on its own
            raise
        except pymysql.Error as exc:  # the server's answer: the step fails with its words
            if fired.is_set():
                return done, "time limit", True
            return done, _driver_error(exc), False
        return done, None, False


_USE = re.compile(r"\s*USE\s+(`(?:[^`]|``)+`|\w+)\s*$", re.IGNORECASE)


def _stands_in(statement: str, source: str) -> bool:
    """`USE blazz` in a migration written for the source database: the scratch database is already in use.
    A USE of any other database is sent, and the temporary account's rights refuse it."""
    found = _USE.match(statement)
    return bool(found and source and found[1].strip("`").replace("``", "`") == source)


def _without_definer(statement: str) -> str:
    """A trigger, view or routine is created with the temporary account as its definer, as restore-check does:
    naming another definer needs SUPER (or SET USER), which the account rightly lacks."""
    if "definer" not in statement.lower():
        return statement
    return DEFINER_CLAUSE.sub(b"", statement.encode("utf-8"), count=1).decode("utf-8")


def _drain(cursor: Any) -> None:
    """Read what a statement returned (a SELECT in a migration), so the next one can run."""
    while True:
        if cursor.description is not None:
            cursor.fetchall()
        if not cursor.nextset():
            return


def _sqlite_runner(target: Target, statements: list[tuple[int, str]], deadline: float) -> tuple[int, str | None, bool]:
    conn = sqlite3.connect(target.url.database or "", isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA foreign_keys = ON")  # as Laravel opens SQLite; a file may turn them off
        with _watchdog(deadline, conn.interrupt) as fired:
            done = 0
            for _, text in statements:
                try:
                    conn.execute(text).fetchall()
                except sqlite3.Error as exc:
                    return done, ("time limit" if fired.is_set() else first_line(exc)), fired.is_set()
                done += 1
            return done, None, False
    finally:
        conn.close()


@contextmanager
def _watchdog(deadline: float, stop: Callable[[], object]) -> Iterator[threading.Event]:
    """Call `stop` once when the deadline passes; the event says it did."""
    fired = threading.Event()

    def expire() -> None:
        fired.set()
        with suppress(Exception):  # a connection already gone is stopped enough
            stop()

    timer = threading.Timer(max(deadline - time.monotonic(), 0.0), expire)
    timer.daemon = True
    timer.start()
    try:
        yield fired
    finally:
        timer.cancel()


def _driver_error(exc: Exception) -> str:
    args: tuple[Any, ...] = getattr(exc, "args", ())
    if len(args) == 2 and isinstance(args[0], int):
        return first_line(f"({args[0]}) {args[1]}")
    return first_line(exc) or type(exc).__name__


# --- commands ----------------------------------------------------------------------------------------


def run_command(target: Target, command: str, timeout: float) -> Step:
    """Run `command` through /bin/sh in its own process group, the scratch database in its environment."""
    started = time.monotonic()
    output = _Output()
    try:
        proc = subprocess.Popen(["/bin/sh", "-c", command], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, env=command_environment(target.env), start_new_session=True)
    except OSError as exc:
        return Step(command, "command", "fail", 0.0, f"cannot start: {exc.strerror}")
    reader = threading.Thread(target=output.read, args=(proc.stdout,), daemon=True)
    reader.start()
    timed_out = False
    try:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _stop_group(proc)
    except BaseException:  # Ctrl-C, SIGTERM: the command goes too, before the scratch database does
        _stop_group(proc)
        raise
    reader.join(timeout=_GRACE)
    seconds = round(time.monotonic() - started, 3)
    text = _masked(output.text(), target.secrets)
    if timed_out:
        return Step(command, "command", "fail", seconds, f"killed at the time limit of {timeout:g} s",
                    timed_out=True, output=text)
    code = proc.returncode
    last = next((line for line in reversed(text.splitlines()) if line.strip()), "")
    if code != 0:
        reason = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
        return Step(command, "command", "fail", seconds, f"{reason}{': ' + last.strip()[:200] if last else ''}",
                    exit_code=code, output=text)
    return Step(command, "command", "pass", seconds, f"exited 0 in {seconds:.1f} s", exit_code=0, output=text)


def command_environment(scratch: dict[str, str]) -> dict[str, str]:
    """This process's environment without the auditing account's password, plus the scratch database's."""
    env = {k: v for k, v in os.environ.items() if k not in {"DBAUDIT_PASSWORD", "MYSQL_PWD", "PGPASSWORD"}}
    return {**env, **scratch}


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, _GRACE), (signal.SIGKILL, None)):
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


class _Output:
    """A command's output, kept to its first and last OUTPUT_LIMIT/2 characters."""

    def __init__(self) -> None:
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0

    def read(self, stream: Any) -> None:
        half = OUTPUT_LIMIT // 2
        for data in iter(lambda: stream.read1(8192), b""):
            room = max(half - len(self.head), 0)
            self.head += data[:room]
            self.tail += data[room:]
            if len(self.tail) > half:
                self.dropped += len(self.tail) - half
                del self.tail[: len(self.tail) - half]

    def text(self) -> str:
        middle = f"\n… {self.dropped:,} bytes of output left out …\n" if self.dropped else ""
        return (bytes(self.head).decode("utf-8", "replace") + middle + bytes(self.tail).decode("utf-8", "replace"))


def _masked(text: str, secrets: Sequence[str]) -> str:
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text
