"""Running a rehearsal's migrate and rollback steps on the scratch database: SQL files or a command.

SQL files are cut into statements (audit/derive/split.py, which knows DELIMITER and executable
comments; on PostgreSQL backups/psqlscan.py, the splitter restore-check reads pg_dump output with) and
sent one by one through the driver as the temporary account, never through the `mariadb` client or
psql: the clients run `\\!` shell escapes, `system`, `source`, `\\copy … program`; the MySQL server answers
those with a syntax error, and a PostgreSQL migration file holding a psql meta-command is refused whole
before anything runs. A command (`php artisan migrate --force`) runs with the scratch database handed
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

import psycopg
import pymysql
import sqlalchemy as sa
from psycopg import pq
from psycopg.conninfo import make_conninfo
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from dbaudit.audit.derive.split import split_statements
from dbaudit.backups.lexicon import DEFINER_CLAUSE
from dbaudit.backups.pgrestore import next_result
from dbaudit.backups.psqlscan import COPY_FROM_STDIN, CopyData, MetaCommand, PgStatement, PsqlScanner
from dbaudit.core.errors import DbauditError, first_line
from dbaudit.core.secrets import mask_command
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

    dialect: str  # mysql, postgresql or sqlite
    url: URL  # the temporary account on the scratch database (SQLite: the scratch file)
    env: dict[str, str]  # what a command is handed: DB_* and DBAUDIT_SCRATCH_URL
    secrets: list[str] = field(default_factory=list)  # masked in every output
    server: tuple[str, str] | None = None  # (product, version): which executable comments run
    kill: Callable[[int], None] | None = None  # end a session (MySQL connection id, PostgreSQL backend pid)
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
    if dialect == "postgresql":
        return split_psql(text, str(source))
    statements, client_lines = split_statements(text, "sqlite" if dialect == "sqlite" else "mysql", server)
    if client_lines:
        first = client_lines[0]
        raise DbauditError(f"{source}:{first.line}: a client command ({first_line(first.text)}) is not SQL; "
                           "rehearse sends statements to the server, never to a client")
    return [(s.line, s.text) for s in statements if s.text.strip()]


def run_sql_file(target: Target, path: str, deadline: float) -> Step:
    started = time.monotonic()
    statements = read_sql_file(path, target.dialect, target.server)
    runner = {"sqlite": _sqlite_runner, "postgresql": _pg_runner}.get(target.dialect, _mysql_runner)
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


# --- PostgreSQL: split as psql would, sent as the temporary role through psycopg --------------------------

_STANDARD_STRINGS = re.compile(r"^SET\s+(?:SESSION\s+)?standard_conforming_strings\s*(?:=|\bTO\b)\s*'?(\w+)'?",
                               re.IGNORECASE)


class _PsqlSplit:
    """Collects what psqlscan finds in a migration file: statements, and the first reason to refuse it."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.statements: list[tuple[int, int, int]] = []  # (line, start, end)
        self.refusal: tuple[int, str] | None = None  # (byte offset, why)
        self.scanner = PsqlScanner(self.statement, self.meta, self.copy, lambda _text, _at: None, self.unsure)

    def refuse(self, at: int, why: str) -> None:
        if self.refusal is None:
            self.refusal = (at, why)

    def statement(self, st: PgStatement) -> None:
        self.statements.append((self.line(st.start), st.start, st.end))
        found = _STANDARD_STRINGS.match(st.code)
        if found:  # psql lexes the strings after it the way the server will read them
            self.scanner.standard_strings = found[1].lower() in ("on", "true", "1", "yes")
        if COPY_FROM_STDIN.match(st.code):
            self.refuse(st.start, "COPY … FROM stdin with data lines is psql's to feed; write the rows as INSERT")

    def meta(self, m: MetaCommand) -> None:
        what = "a psql variable" if m.text.startswith(":") else "a psql meta-command"
        self.refuse(m.start, f"{what} ({first_line(m.text)[:60]}) is not SQL; rehearse sends statements to the "
                             "server, never to psql")

    def copy(self, data: CopyData) -> None:
        self.refuse(data.statement.start, "COPY … FROM stdin with data lines is psql's to feed; write the rows "
                                          "as INSERT")

    def unsure(self, why: str, at: int) -> None:
        self.refuse(at, f"cannot be split into statements the way psql would ({why})")

    def line(self, offset: int) -> int:
        return self.data.count(b"\n", 0, offset) + 1

    def tail_start(self) -> int:
        """Where the text after the last statement starts (psql sends a last statement without `;` at the end)."""
        return self.statements[-1][2] if self.statements else 0


def split_psql(text: str, source: str) -> list[tuple[int, str]]:
    """(line, statement) of a PostgreSQL migration file, split by backups/psqlscan.py as restore-check splits a
    pg_dump; a psql meta-command or variable anywhere in it refuses the whole file (nothing of it runs)."""
    data = text.removeprefix("\ufeff").encode("utf-8")  # an editor's byte-order mark is not SQL
    split = _PsqlSplit(data)
    split.scanner.feed(data)
    end = split.scanner.finish()
    if end.problem == "its last statement has no terminating ;":
        start = split.tail_start()
        first = start + len(data[start:]) - len(data[start:].lstrip())
        split.statements.append((split.line(first), first, len(data)))
    elif end.problem:
        split.refuse(len(data), f"the file {end.problem}")
    if split.refusal is not None:
        at, why = split.refusal
        raise DbauditError(f"{source}:{split.line(at)}: {why}")
    return [(line, data[a:b].decode("utf-8")) for line, a, b in split.statements if data[a:b].strip()]


def _pg_runner(target: Target, statements: list[tuple[int, str]], deadline: float) -> tuple[int, str | None, bool]:
    """Each statement alone over the extended protocol (the server refuses a second one hidden in it), in
    autocommit as psql runs a file: a file's own BEGIN … COMMIT holds."""
    url = target.url
    params: dict[str, Any] = {"host": url.host or "localhost", "port": url.port or 5432}
    params.update({k: v for k, v in url.query.items() if isinstance(v, str)})  # host=/socket, sslmode … as given
    try:
        conn = psycopg.connect(make_conninfo(**params, user=url.username, password=url.password, dbname=url.database,
                                             connect_timeout=30, application_name="dbaudit rehearse"),
                               autocommit=True, prepare_threshold=None)
    except psycopg.Error as exc:
        return 0, f"cannot connect as the temporary role: {first_line(str(exc))}", False
    try:
        session = conn.pgconn.backend_pid
        with _watchdog(deadline, lambda: target.kill(session) if target.kill else None) as fired:
            done = 0
            try:
                for _, text in statements:
                    if fired.is_set():
                        return done, "time limit", True
                    error = _pg_execute(conn, text.encode("utf-8"))
                    if error is not None:
                        return done, ("time limit" if fired.is_set() else error), fired.is_set()
                    done += 1
            except KeyboardInterrupt:
                if target.kill:
                    target.kill(session)  # the server would otherwise finish the statement on its own
                raise
            except psycopg.Error as exc:  # the connection itself went (the limit terminated it)
                return done, ("time limit" if fired.is_set() else first_line(str(exc))), fired.is_set()
            if conn.pgconn.transaction_status != pq.TransactionStatus.IDLE:
                # psql would roll it back at the end of the file too: what the file did would silently not be there.
                return done, "the file ends inside a transaction (BEGIN without COMMIT): its changes would be " \
                             "rolled back", False
            return done, None, False
    finally:
        with suppress(Exception):
            conn.close()


def _pg_execute(conn: psycopg.Connection[Any], sql: bytes) -> str | None:
    """One statement; its error as the server words it, or None. Waited for in short selects, so Ctrl-C and
    SIGTERM interrupt a statement that runs long (libpq's blocking wait would not)."""
    pgconn = conn.pgconn
    pgconn.send_query_params(sql, None)
    error = None
    while (result := next_result(pgconn)) is not None:
        if result.status == pq.ExecStatus.COPY_OUT:  # COPY … TO STDOUT: read and dropped, like a SELECT's rows
            while pgconn.get_copy_data(0)[0] > 0:
                pass
        elif result.status == pq.ExecStatus.COPY_IN:  # a COPY FROM STDIN the splitter did not see: no data
            pgconn.put_copy_end(b"a migration file sends no COPY data")
        elif result.status not in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK, pq.ExecStatus.EMPTY_QUERY):
            message = (result.error_message or pgconn.error_message).decode("utf-8", "replace")
            error = error or first_line(message.removeprefix("ERROR:").strip())
    if pgconn.status != pq.ConnStatus.OK:
        raise psycopg.OperationalError(pgconn.error_message.decode("utf-8", "replace") or "connection lost")
    return error


# --- commands ----------------------------------------------------------------------------------------


def run_command(target: Target, command: str, timeout: float) -> Step:
    """Run `command` through /bin/sh in its own process group, the scratch database in its environment."""
    started = time.monotonic()
    output = _Output()
    try:
        proc = subprocess.Popen(["/bin/sh", "-c", command], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, env=command_environment(target.env), start_new_session=True)
    except OSError as exc:
        return Step(mask_command(command), "command", "fail", 0.0, f"cannot start: {exc.strerror}")
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
        return Step(mask_command(command), "command", "fail", seconds, f"killed at the time limit of {timeout:g} s",
                    timed_out=True, output=text)
    code = proc.returncode
    last = next((line for line in reversed(text.splitlines()) if line.strip()), "")
    if code != 0:
        reason = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
        return Step(mask_command(command), "command", "fail", seconds, f"{reason}{': ' + last.strip()[:200] if last else ''}",
                    exit_code=code, output=text)
    return Step(mask_command(command), "command", "pass", seconds, f"exited 0 in {seconds:.1f} s", exit_code=0, output=text)


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
