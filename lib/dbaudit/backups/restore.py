"""restore-check: restore a dump into a new scratch database, prove it matches, and drop it again.

The dump is first read with `dumpfile.read_dump` (checksums, truncation, the statements' byte ranges).
Statements that would reach beyond the scratch database, `USE`, `CREATE/DROP DATABASE` (world.sql
drops and recreates `world`!), `SET GLOBAL` and replication commands, are cut out of the stream fed
to the `mariadb`/`mysql` client, and a dump that names other databases is refused. A dump holding client
commands (`\\! cmd`, `system`, `source`, `\\u db`, `connect` …) or statements acting on the server
(CREATE USER, GRANT, FLUSH, INSTALL PLUGIN, CHANGE MASTER …) is refused before anything is created:
it fails, and nothing is restored. The client also runs with `--sandbox` where it has it (MariaDB),
so a client command the scanner missed still cannot touch the client host. The scratch
database must not exist yet; it is dropped after a failure, an error or Ctrl-C, and after the check
unless `keep` is set.
"""

from __future__ import annotations

import functools
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from tqdm import tqdm

from dbaudit.audit.diff import diff_snapshots
from dbaudit.backups.checks import count_checks, load_manifest, manifest_path, names_check
from dbaudit.backups.dumpfile import CHUNK, DumpContents, DumpFile, read_dump, sql_chunks
from dbaudit.backups.lexicon import DEFINER_CLAUSE
from dbaudit.core import serde
from dbaudit.core.checks import Check, Judged
from dbaudit.core.errors import DbauditError, first_line
from dbaudit.core.snapshot import Snapshot, load_snapshot
from dbaudit.live.connect import describe_db_error, mask_url, parse_url
from dbaudit.live.dialects.mysql import product_of
from dbaudit.live.inspect import take_snapshot

FORMAT_VERSION = 1
KIND = "dbaudit.restore-check"
RESTORED = "the restored database"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")
_SYSTEM = {"mysql", "information_schema", "performance_schema", "sys"}
# The client runs as a temporary account with rights on the scratch database only.
ACCOUNT_PREFIX = "dbaudit_restore_"  # temporary restore accounts: easy to find if a SIGKILL leaves one


@dataclass
class RestoreCheck(Judged):
    format_version: int
    kind: str
    verdict: str  # pass / fail
    title: str
    generated_at: str
    dump: DumpFile
    server: str  # masked URL
    product: str
    version: str
    database: str  # the source database the dump was taken from
    scratch: str
    kept: bool
    client: str
    skipped_statements: list[str]  # kinds of the statements cut out of the stream (use, create_database …)
    restore_seconds: float
    checks: list[Check]
    restored: Snapshot | None  # the scratch database after the restore; None when it was not restored
    summary: dict[str, Any]


def load_restore_check(path: str | os.PathLike[str]) -> RestoreCheck:
    return serde.load_document(RestoreCheck, path, KIND, FORMAT_VERSION, "restore-check result")


@dataclass
class _Plan:
    url: URL  # the server, without a database
    source: str
    scratch: str
    client: str
    contents: DumpContents
    against: Snapshot | None
    sandbox: bool = False  # the client has --sandbox (MariaDB 10.5.25+): no \! system source tee on this host
    account: _Account | None = None  # who the client connects as: set while the restore runs


@dataclass
class _Account:
    """The temporary account the client restores as: ALL PRIVILEGES on the scratch database, nothing else."""

    user: str
    host: str
    password: str

    def __str__(self) -> str:
        return f"'{self.user}'@'{self.host}'"


def restore_check(
    dump: str | os.PathLike[str],
    server: str,
    *,
    scratch: str | None = None,
    against: str | os.PathLike[str] | Snapshot | None = None,
    keep: bool = False,
    title: str | None = None,
    progress: bool = False,
) -> RestoreCheck:
    """Restore `dump` into a new scratch database on `server` and compare it with the dump, its manifest
    and (optionally) a snapshot of the source database."""
    snapshot = load_snapshot(against) if isinstance(against, (str, os.PathLike)) else against
    url = parse_url(server)
    if url.get_backend_name() not in ("mysql", "mariadb"):
        raise DbauditError(f"restore-check restores MySQL/MariaDB dumps; {mask_url(url)} is not such a server")
    contents = read_dump(dump, progress)
    plan = _plan(url, contents, scratch, snapshot)
    engine = sa.create_engine(plan.url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    try:
        product, version = _refuse_unsafe(engine, plan)
        if contents.refusals:
            # Refused whole, never cut: a dump that runs commands or grants rights is no backup to trust.
            checks = [Check("dump", "restore safety", "fail",
                            f"not restored: the dump holds {'; '.join(contents.refusals)}")]
            return _result(plan, product, version, checks, None, 0.0, kept=False, title=title)
        if not contents.complete:
            checks = [Check("dump", "complete", "fail", f"not restored: the dump is truncated ({contents.truncation})")]
            return _result(plan, product, version, checks, None, 0.0, kept=False, title=title)
        return _restore_and_compare(engine, plan, product, version, keep, title, progress)
    finally:
        engine.dispose()


def _plan(url: URL, contents: DumpContents, scratch: str | None, snapshot: Snapshot | None) -> _Plan:
    if len(contents.databases) > 1:
        raise DbauditError(f"the dump holds {len(contents.databases)} databases ({', '.join(contents.databases)}); "
                           "restore-check restores one database")
    source = url.database or contents.header.database or next(iter(contents.databases), None) \
        or Path(contents.file.path).name.split(".")[0]
    own = {source.lower(), *(d.lower() for d in contents.databases)}
    foreign = [d for d in contents.qualified_databases if d.lower() not in own]
    if foreign:
        raise DbauditError(f"the dump names other database(s) {', '.join(foreign)}; restore-check would not "
                           "restore it into the scratch database alone")
    named = {source.lower(), *([contents.own_database.lower()] if contents.own_database else [])}
    acting = [s for s in contents.foreign_statements if s.split(":", 1)[0].lower() not in named]
    if acting:
        raise DbauditError(f"the dump acts on other database(s) "
                           f"{', '.join(dict.fromkeys(s.split(':', 1)[0] for s in acting))} ({acting[0]}); "
                           "restore-check would not restore it into the scratch database alone")
    name = scratch or f"{source}_restore_test"
    if not _SAFE_NAME.match(name):
        raise DbauditError(f"scratch database name {name!r}: use letters, digits and _ only (at most 64)")
    if name.lower() in own or name.lower() in _SYSTEM:
        raise DbauditError(f"refusing scratch database {name!r}: it is the source database (or a system one)")
    client = shutil.which("mariadb") or shutil.which("mysql")
    if client is None:
        raise DbauditError("restore-check needs the mariadb (or mysql) command-line client on PATH")
    return _Plan(url.set(database=None), source, name, client, contents, snapshot, _has_sandbox(client))


@functools.lru_cache(maxsize=4)
def _has_sandbox(client: str) -> bool:
    """MariaDB's client has --sandbox; MySQL 8's mysql has not (dumps with client commands are refused anyway)."""
    try:
        done = subprocess.run([client, "--help"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return "--sandbox" in done.stdout


def _refuse_unsafe(engine: sa.Engine, plan: _Plan) -> tuple[str, str]:
    try:
        with engine.connect() as conn:
            version = str(conn.exec_driver_sql("SELECT VERSION()").scalar_one())
            exists = conn.execute(sa.text("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = :n"),
                                  {"n": plan.scratch}).scalar_one()
    except DBAPIError as exc:
        raise DbauditError(f"cannot connect to {mask_url(plan.url)}: {describe_db_error(exc)}") from None
    if exists:
        raise DbauditError(f"refusing scratch database {plan.scratch!r}: it already exists on {mask_url(plan.url)} "
                           "(drop it or pick another with --scratch)")
    return product_of(version), version


def _restore_and_compare(engine: sa.Engine, plan: _Plan, product: str, version: str, keep: bool,
                         title: str | None, progress: bool) -> RestoreCheck:
    completed = False
    with _terminate_as_interrupt():
        plan.account = _create_account(engine, plan.scratch)
        try:
            _execute(engine, "CREATE DATABASE {} CHARACTER SET utf8mb4", plan.scratch)
            try:
                started = time.monotonic()
                error = _load(plan, progress)
                seconds = round(time.monotonic() - started, 3)
                if error:
                    checks = [Check("restore", "load", "fail", f"the client stopped: {error}")]
                    return _result(plan, product, version, checks, None, seconds, kept=False, title=title)
                metrics = {m.name: m.sql for m in plan.against.metrics.values()} if plan.against else None
                restored = take_snapshot(plan.url.set(database=plan.scratch), metrics, progress=progress)
                checks = [Check("restore", "load", "pass",
                                f"restored in {seconds:.1f} s with {Path(plan.client).name}"),
                          *compare_restored(plan, restored)]
                completed = True
                return _result(plan, product, version, checks, restored, seconds, kept=keep, title=title)
            finally:
                if not (keep and completed):
                    _execute(engine, "DROP DATABASE IF EXISTS {}", plan.scratch)
        finally:
            _drop_account(engine, plan.account)


def _create_account(engine: sa.Engine, scratch: str) -> _Account:
    """A fresh account with ALL PRIVILEGES on `scratch`.* only: whatever the dump holds, the client cannot touch
    another database, an account or the server. Refused (never the connecting account instead) when the connecting
    account may not create it."""
    # In a database-level GRANT, _ and % are wildcards: `a_b`.* would also cover a database called axb.
    quoted = engine.dialect.identifier_preparer.quote_identifier(scratch.replace("_", "\\_"))
    # Nine characters of each class: passes password-strength plugins, and needs no quoting anywhere.
    password = "".join(secrets.choice(c) for c in ("ABCDEFGHJKLMNPQRSTUVWXYZ", "abcdefghijkmnopqrstuvwxyz",
                                                     "23456789") for _ in range(9)) + "_-."
    account = _Account(f"{ACCOUNT_PREFIX}{secrets.token_hex(6)}", "%", password)
    try:
        with engine.connect() as conn:
            me = str(conn.exec_driver_sql("SELECT USER()").scalar_one())
            # The host the server sees this machine as: '%' could lose to an anonymous ''@'localhost'.
            account.host = me.rpartition("@")[2] or "%"
            try:
                conn.exec_driver_sql("CREATE USER %s@%s IDENTIFIED BY %s",
                                     (account.user, account.host, account.password))
            except DBAPIError as exc:
                raise DbauditError(
                    f"restore-check restores as a temporary account limited to the scratch database, and {me} may "
                    f"not create it ({describe_db_error(exc)}): it needs the CREATE USER privilege and GRANT OPTION "
                    f"(GRANT CREATE USER ON *.* TO …; GRANT ALL ON `{scratch}`.* TO … WITH GRANT OPTION)") from None
            try:
                conn.exec_driver_sql(f"GRANT ALL PRIVILEGES ON {quoted}.* TO %s@%s", (account.user, account.host))
            except DBAPIError as exc:
                _drop_account(engine, account)
                raise DbauditError(
                    f"restore-check restores as a temporary account limited to the scratch database, and {me} may "
                    f"not grant it ALL PRIVILEGES on {scratch} ({describe_db_error(exc)}): it needs GRANT OPTION "
                    f"(GRANT ALL ON `{scratch}`.* TO … WITH GRANT OPTION)") from None
    except DBAPIError as exc:
        raise DbauditError(f"cannot prepare the restore account: {describe_db_error(exc)}") from None
    return account


def _drop_account(engine: sa.Engine, account: _Account | None) -> None:
    if account is None:
        return
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("DROP USER IF EXISTS %s@%s", (account.user, account.host))
    except DBAPIError as exc:
        raise DbauditError(f"drop user {account}: {describe_db_error(exc)} (drop it by hand)") from None


def _execute(engine: sa.Engine, template: str, database: str) -> None:
    quoted = engine.dialect.identifier_preparer.quote_identifier(database)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(template.format(quoted))
    except DBAPIError as exc:
        raise DbauditError(f"{template.split(' {', maxsplit=1)[0].lower()} {database}: {describe_db_error(exc)}") from None


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """A SIGTERM (a CI job cancelled) cleans up like Ctrl-C instead of leaving the scratch database."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# --- feeding the client ----------------------------------------------------------------------------


def _client_args(plan: _Plan, options_file: str | None) -> list[str]:
    url = plan.url
    args = [plan.client]
    if options_file:
        args.append(f"--defaults-extra-file={options_file}")  # must come first
    args += ["--protocol=tcp", "-h", url.host or "127.0.0.1", "-P", str(url.port or 3306),
             "--default-character-set=utf8mb4", "--batch", "--local-infile=0"]  # no LOAD DATA LOCAL of host files
    if plan.sandbox:
        args.append("--sandbox")  # defence in depth: \! system source tee fail even if one slipped past the scan
    if plan.account is not None:
        args += ["-u", plan.account.user]  # its password is in the option file
    elif url.username:
        args += ["-u", url.username]
    return [*args, plan.scratch]


@contextmanager
def _options_file(url: URL, account: _Account | None = None) -> Iterator[str | None]:
    """The password goes to the client in a 0600 option file, never on its command line (ps shows that)."""
    configured = url.query.get("read_default_file")
    if account is None and isinstance(configured, str):
        yield os.path.expanduser(configured)
        return
    password = account.password if account is not None else url.password
    if not password:
        yield None
        return
    fd, path = tempfile.mkstemp(prefix="dbaudit-client-", suffix=".cnf")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            if isinstance(configured, str):  # its TLS and other settings; the account below overrides its user
                handle.write(Path(os.path.expanduser(configured)).read_text(encoding="utf-8") + "\n")
            escaped = str(password).replace("\\", "\\\\").replace('"', '\\"')
            handle.write(f'[client]\n{f"user={account.user}" + chr(10) if account else ""}password="{escaped}"\n')
        yield path
    finally:
        Path(path).unlink(missing_ok=True)


def _load(plan: _Plan, progress: bool) -> str | None:
    """Stream the dump to the client; None when it succeeded, else the client's first error line."""
    with _options_file(plan.url, plan.account) as options, tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(_client_args(plan, options), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=errors)
        try:
            _feed(proc.stdin, plan.contents, progress)
            code = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        if code == 0:
            return None
        errors.seek(0)
        text = errors.read().decode("utf-8", "replace").strip()
        return first_line(text or f"exit status {code}")


def _feed(stdin: IO[bytes] | None, contents: DumpContents, progress: bool) -> None:
    assert stdin is not None
    path = Path(contents.file.path)
    with path.open("rb") as handle, tqdm(total=contents.file.size, unit="B", unit_scale=True, file=sys.stderr,
                                         desc=f"restoring {path.name}", disable=not progress, leave=False) as bar:
        reader = _ProgressReader(handle, bar)
        try:
            edits: list[tuple[int, int, Any]] = [(s, e, None) for s, e, _ in contents.unsafe_spans]
            edits += [(s, e, strip_definer) for s, e in contents.definer_spans]
            for piece in edit_spans(sql_chunks(reader, contents.file.compressed), edits):
                stdin.write(piece)
        except BrokenPipeError:
            pass  # the client stopped early; its exit status and stderr say why
        finally:
            with suppress(BrokenPipeError):
                stdin.close()


class _ProgressReader:
    def __init__(self, handle: IO[bytes], bar: tqdm) -> None:
        self.handle, self.bar = handle, bar

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size if size > 0 else CHUNK)
        self.bar.update(len(data))
        return data


def strip_definer(statement: bytes) -> bytes:
    """`DEFINER=`root`@`host`` out of a view, trigger or routine: it is created with the restoring account as its
    definer (what a non-SUPER account may do), as restores into another server commonly do."""
    return DEFINER_CLAUSE.sub(b"", statement, count=1)


def without_spans(chunks: Iterator[bytes], spans: list[tuple[int, int]]) -> Iterator[bytes]:
    """The byte stream with the half-open [start, end) ranges cut out; ranges may cross chunk borders."""
    return edit_spans(chunks, [(start, stop, None) for start, stop in spans])


def edit_spans(chunks: Iterator[bytes], edits: list[tuple[int, int, Any]]) -> Iterator[bytes]:
    """The byte stream with each half-open [start, end) range cut out (None) or replaced by fn(its bytes); ranges
    may cross chunk borders and must not overlap. A replaced range is held in memory (one statement)."""
    pending = deque(sorted(edits, key=lambda e: (e[0], e[1])))
    offset = 0
    held = bytearray()
    holding: tuple[int, Any] | None = None  # (stop, fn) of the range being collected
    for data in chunks:
        end = offset + len(data)
        cursor = offset
        while cursor < end:
            if holding is not None:
                stop, fn = holding
                take = min(stop, end)
                held += data[cursor - offset : take - offset]
                cursor = take
                if take == stop:
                    yield fn(bytes(held))
                    held.clear()
                    holding = None
                continue
            if pending and pending[0][0] < end:
                start, stop, fn = pending.popleft()
                if start > cursor:
                    yield data[cursor - offset : start - offset]
                    cursor = start
                if stop <= cursor:
                    continue
                if fn is None:
                    if stop > end:
                        pending.appendleft((end, stop, None))
                    cursor = min(stop, end)
                else:
                    holding = (stop, fn)
                continue
            yield data[cursor - offset :]
            cursor = end
        offset = end
    if holding is not None:
        yield holding[1](bytes(held))


# --- comparing -------------------------------------------------------------------------------------


def compare_restored(plan: _Plan, restored: Snapshot) -> list[Check]:
    contents = plan.contents
    counts = {name: t.row_count or 0 for name, t in restored.tables.items()}
    checks = count_checks("dump", {n: t.rows for n, t in contents.tables.items()}, counts, "the dump", RESTORED)
    checks += [names_check("dump", kind, set(getattr(contents, kind)), set(getattr(restored, kind)), "the dump",
                           RESTORED) for kind in ("views", "triggers", "routines")]
    manifest_file = manifest_path(contents.file.path)
    if manifest_file.is_file():
        manifest = load_manifest(manifest_file)
        checks += count_checks("manifest", manifest.tables, counts, "the manifest", RESTORED)
    if plan.against is not None:
        checks += _against_source(plan.against, restored)
    return checks


def _against_source(source: Snapshot, restored: Snapshot) -> list[Check]:
    # The restore strips DEFINER clauses (strip_definer): a definer that differs is the restore's doing.
    changes = [c for c in diff_snapshots(source, restored) if c.fields != ["definer"]]
    if not changes:
        return [Check("source", "identical", "pass",
                      f"schema, {len(source.tables)} tables' row counts and metrics equal the source snapshot")]
    return [Check("source", f"{c.kind} {c.target}", "fail", c.describe()) for c in changes]


def _result(plan: _Plan, product: str, version: str, checks: list[Check], restored: Snapshot | None,
            seconds: float, kept: bool, title: str | None) -> RestoreCheck:
    failed = sum(1 for c in checks if c.status == "fail")
    return RestoreCheck(
        format_version=FORMAT_VERSION, kind=KIND, verdict="fail" if failed else "pass",
        title=title or f"restore of {Path(plan.contents.file.path).name}",
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"), dump=plan.contents.file,
        server=mask_url(plan.url), product=product, version=version, database=plan.source, scratch=plan.scratch,
        kept=kept, client=plan.client, skipped_statements=[k for _, _, k in plan.contents.unsafe_spans],
        restore_seconds=seconds, checks=checks, restored=restored,
        summary={"checks": len(checks), "checks_failed": failed,
                 "tables": len(restored.tables) if restored else 0,
                 "rows": restored.total_rows if restored else 0},
    )
