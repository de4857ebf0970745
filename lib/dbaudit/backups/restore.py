"""restore-check: restore a dump into a new scratch database, prove it matches, and drop it again.

The dump is read once with `dumpfile.DumpScan` (checksums, truncation, every statement classified), on a thread
running ahead of the load (`restore_load.ScanAhead`): each statement is judged before it may be sent. A dump
holding client commands (`\\! cmd`, `system`, `source` …), statements acting on the server (CREATE USER, GRANT,
FLUSH, INSTALL PLUGIN, CHANGE MASTER …), XA transactions or DATA/INDEX DIRECTORY, or naming another database,
is refused whole: the first such statement stops the load (it and what follows are never sent), the scan reads
on for the verdict, and the scratch database is dropped with whatever came before. When the scratch database's
name is not known before the scan, the dump is read whole first and refused before anything is created. No
client program runs: `backups.restore_load` sends the statements one by one through PyMySQL as a temporary
account holding restore privileges on the scratch database only (`backups.restore_account`), leaving out `USE`,
`CREATE/DROP DATABASE` (world.sql drops and recreates `world`!) and `SET GLOBAL`, with DEFINERs stripped and
events disabled, under a deadline (`timeout`). Tables the load is done with are counted and fingerprinted on a
second session while the next loads (`backups.restore_proof`); the reads after it (snapshot, metrics, what is
left of the fingerprints) run as that account too, with its write privileges revoked. The scratch database
must not exist yet; it is dropped after a failure, an error, Ctrl-C or SIGTERM, and after the check unless
`keep` is set; a journal lets the next run drop what a run killed outright left (`backups.scratch_journal`).
"""

from __future__ import annotations

import os
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pymysql
import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from dbaudit.audit.chunks import FingerprintMode
from dbaudit.audit.diff import diff_snapshots
from dbaudit.backups import restore_account
from dbaudit.backups.checks import count_checks, load_manifest, manifest_path, names_check
from dbaudit.backups.dumpfile import DumpContents, DumpFile, DumpScan
from dbaudit.backups.restore_account import (
    RestoreAccount,
    ScratchRestore,
    clean_abandoned,
    revoke_writes,
    scratch_restore,
    server_identity,
)
from dbaudit.backups.restore_load import Loaded, ScanAhead, StatementPlan, extra_refusal, load_dump, strip_definer
from dbaudit.backups.restore_proof import EarlyProof, early_proof
from dbaudit.backups.restore_touch import Touches
from dbaudit.backups.scratch_journal import Journal
from dbaudit.backups.sqlscan import MAX_STATEMENT
from dbaudit.core import serde
from dbaudit.core.checks import Check, Judged
from dbaudit.core.errors import DbauditError
from dbaudit.core.signals import terminate_as_interrupt
from dbaudit.core.snapshot import Snapshot, load_snapshot
from dbaudit.live.connect import describe_db_error, mask_url, parse_url
from dbaudit.live.dialects.mysql import product_of
from dbaudit.live.inspect import take_snapshot
from dbaudit.live.tls import share_preferred_context

__all__ = ["ACCOUNT_PREFIX", "DEFAULT_TIMEOUT", "RestoreAccount", "RestoreCheck", "Restored", "ScratchRestore",
           "compare_restored", "edit_spans", "load_restore_check", "restore_check", "restore_into", "scratch_restore",
           "strip_definer", "without_spans"]

FORMAT_VERSION = 1
KIND = "dbaudit.restore-check"
RESTORED = "the restored database"
DEFAULT_TIMEOUT = 3600.0  # seconds for the whole restore and the reads after it (--restore-timeout)
CLIENT = f"PyMySQL {pymysql.__version__} (no client program)"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")
_SYSTEM = {"mysql", "information_schema", "performance_schema", "sys"}
ACCOUNT_PREFIX = restore_account.ACCOUNT_PREFIX


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
    client: str  # what sent the statements (PyMySQL: no client program runs)
    skipped_statements: list[str]  # kinds of the statements cut out of the stream (use, create_database …)
    restore_seconds: float
    checks: list[Check]
    restored: Snapshot | None  # the scratch database after the restore; None when it was not restored
    summary: dict[str, Any]
    timeout_seconds: float = DEFAULT_TIMEOUT
    account: str = ""  # the temporary account it restored and read as ('' when nothing was restored)
    leftovers: list[str] = field(default_factory=list)  # what earlier killed runs left, dropped (or left) by this one


def load_restore_check(path: str | os.PathLike[str]) -> RestoreCheck:
    return serde.load_document(RestoreCheck, path, KIND, FORMAT_VERSION, "restore-check result")


@dataclass
class _Plan:
    url: URL  # the server, without a database
    source: str
    scratch: str
    contents: DumpContents
    against: Snapshot | None
    refusals: list[str]  # the scan's and restore-check's own (XA, DATA DIRECTORY)
    timeout: float = DEFAULT_TIMEOUT
    fingerprint: FingerprintMode = "none"
    statements: StatementPlan | None = None  # what to send, recorded by the scan
    account: RestoreAccount | None = None  # set while the restore runs
    leftovers: list[str] = field(default_factory=list)


@dataclass
class Restored:
    """What restore_into did: the dump's contents as scanned, and how the load ended."""

    contents: DumpContents
    refusals: list[str]  # non-empty: nothing was sent
    loaded: Loaded | None  # None when refused or truncated

    @property
    def ok(self) -> bool:
        return self.loaded is not None and self.loaded.error is None


def scan_dump(dump: str | os.PathLike[str], progress: bool = False, max_statement: int = MAX_STATEMENT,
              server_version: str | None = None) -> tuple[DumpContents, list[str], StatementPlan]:
    """Read the whole dump once: its contents, every reason it must not be restored (a statement longer than
    `max_statement`, the server's max_allowed_packet, is one: the server would not take it), and what to send
    (with the table each statement may change, read for `server_version`'s executable comments).
    The caller closes the plan."""
    scan = DumpScan(dump, progress=progress, keep_text=True, max_statement=max_statement)
    plan = StatementPlan(Touches(None if server_version is None else "mariadb" in server_version.lower()))
    own: list[str] = []
    try:
        for st in scan:
            plan.add(st)
            if refusal := extra_refusal(st):
                own.append(refusal)
    except BaseException:
        plan.close()
        raise
    contents = scan.contents()
    return contents, [*contents.refusals, *dict.fromkeys(own)], plan


def restore_into(url: str | URL, dump: str | os.PathLike[str], scratch: str, account: RestoreAccount, *,
                 timeout: float = DEFAULT_TIMEOUT, progress: bool = False) -> Restored:
    """Restore `dump` into the existing (empty) database `scratch` on `url`'s server as `account` (made by
    `scratch_restore`): refused whole when the scan finds a reason, else loaded statement by statement."""
    server = parse_url(url) if isinstance(url, str) else url
    share_preferred_context()
    engine = sa.create_engine(server._replace(database=None), poolclass=sa.pool.NullPool)
    try:
        version, packet = _server_facts(engine)
    finally:
        engine.dispose()
    contents, refusals, plan = scan_dump(dump, progress, packet, version)
    try:
        if refusals or not contents.complete:
            return Restored(contents, refusals or [f"truncated: {contents.truncation}"], None)
        return Restored(contents, [], load_dump(contents, plan, server._replace(database=None), account, scratch,
                                                server_version=version, timeout=timeout))
    finally:
        plan.close()


def _server_facts(engine: sa.Engine) -> tuple[str, int]:
    """The server's version and max_allowed_packet (the longest statement it takes)."""
    try:
        with engine.connect() as conn:
            version, packet = conn.exec_driver_sql("SELECT VERSION(), @@max_allowed_packet").one()
    except DBAPIError as exc:
        raise DbauditError(f"cannot connect to {mask_url(engine.url)}: {describe_db_error(exc)}") from None
    return str(version), int(packet)


def restore_check(
    dump: str | os.PathLike[str],
    server: str,
    *,
    scratch: str | None = None,
    against: str | os.PathLike[str] | Snapshot | None = None,
    keep: bool = False,
    title: str | None = None,
    progress: bool = False,
    timeout: float | None = None,
    fingerprint: FingerprintMode | None = None,
    journal: Journal | None = None,
) -> RestoreCheck:
    """Restore `dump` into a new scratch database on `server` and compare it with the dump, its manifest
    and (optionally) a snapshot of the source database. `fingerprint` records content fingerprints of the
    restored tables; with an `against` snapshot holding fingerprints they are taken the same way and compared.
    `journal`: a caller's scratch-journal entry to record the account and database in (see `scratch_restore`)."""
    snapshot = load_snapshot(against) if isinstance(against, (str, os.PathLike)) else against
    url = parse_url(server)
    share_preferred_context()
    if url.get_backend_name() not in ("mysql", "mariadb"):
        raise DbauditError(f"restore-check restores MySQL/MariaDB dumps; {mask_url(url)} is not such a server")
    timeout = DEFAULT_TIMEOUT if timeout is None else timeout
    if not (timeout > 0 and timeout < float("inf")):
        raise DbauditError(f"--restore-timeout must be a positive number of seconds, not {timeout}")
    engine = sa.create_engine(url._replace(database=None), poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    engine_plan: StatementPlan | None = None
    try:
        version, packet = _server_facts(engine)
        name = scratch or (f"{url.database}_restore_test" if url.database else None)
        if name and _SAFE_NAME.match(name) and not _scratch_exists(engine, url, name):
            # The scratch database's name is known before the dump is read, and free (else the serial path
            # below says why not, as it always did).
            return _scan_while_loading(engine, url, dump, name, snapshot,
                                       version, packet, keep=keep, title=title, progress=progress, timeout=timeout,
                                       fingerprint=_fingerprint_mode(snapshot, fingerprint), journal=journal)
        contents, refusals, statements = scan_dump(dump, progress, packet, version)
        engine_plan = statements
        plan = _plan(url, contents, scratch, snapshot, refusals)
        plan.statements = statements
        plan.timeout, plan.fingerprint = timeout, _fingerprint_mode(snapshot, fingerprint)
        _refuse_unsafe(engine, plan)
        product = product_of(version)
        if plan.refusals:
            # Refused whole, never cut: a dump that runs commands or grants rights is no backup to trust.
            checks = [Check("dump", "restore safety", "fail", f"not restored: the dump holds {'; '.join(plan.refusals)}")]
            return _result(plan, product, version, checks, None, 0.0, kept=False, title=title)
        if not contents.complete:
            checks = [Check("dump", "complete", "fail", f"not restored: the dump is truncated ({contents.truncation})")]
            return _result(plan, product, version, checks, None, 0.0, kept=False, title=title)
        return _restore_and_compare(engine, plan, product, version, keep, title, progress, journal)
    finally:
        if engine_plan is not None:
            engine_plan.close()
        engine.dispose()


def _scan_while_loading(engine: sa.Engine, url: URL, dump: str | os.PathLike[str], scratch: str,
                        snapshot: Snapshot | None, version: str, packet: int, *, keep: bool, title: str | None,
                        progress: bool, timeout: float, fingerprint: FingerprintMode,
                        journal: Journal | None = None) -> RestoreCheck:
    """The dump read once, on a thread, while the load sends what it has judged (backups.restore_load.ScanAhead).

    Every statement is judged before it is sent and the first one that must not run stops the load; the whole
    dump's verdicts (refusals, truncation, other databases) come when the scan ends, and a dump that fails any
    is reported as before (nothing restored) with its scratch database dropped."""
    _check_scratch_name(scratch, {url.database.lower()} if url.database else set())
    leftovers = _refuse_unsafe_name(engine, url._replace(database=None), scratch)
    product = product_of(version)
    # Before the dump names its own database, only the source's may be named (the header's is the dump's own).
    ahead = ScanAhead(dump, progress=progress, max_statement=packet, touches=Touches("mariadb" in version.lower()),
                      allowed=frozenset({url.database.lower()} if url.database else ()))
    with terminate_as_interrupt(), scratch_restore(engine, scratch, keep=keep, journal=journal) as handle:
        account = handle.account
        with early_proof(account.url(url._replace(database=None), scratch), scratch, ahead.touches, fingerprint,
                         timeout) as proof:
            ahead.start()
            try:
                loaded = load_dump(None, ahead, url._replace(database=None), account, scratch, server_version=version,
                                   timeout=timeout, observer=proof)
                contents = ahead.finish()
            finally:
                ahead.abort()
            refusals = [*contents.refusals, *dict.fromkeys(ahead.own_refusals)]
            plan = _plan(url, contents, scratch, snapshot, refusals or ([ahead.stopped] if ahead.stopped else []))
            plan.timeout, plan.fingerprint, plan.leftovers = timeout, fingerprint, leftovers
            if plan.refusals or not contents.complete:
                handle.keep = False  # what was sent before the scan got there is dropped with the scratch database
                why = (f"not restored: the dump holds {'; '.join(plan.refusals)}" if plan.refusals
                       else f"not restored: the dump is truncated ({contents.truncation})")
                checks = [Check("dump", "restore safety" if plan.refusals else "complete", "fail", why)]
                return _result(plan, product, version, checks, None, 0.0, kept=False, title=title)
            plan.account = account
            if loaded.error:
                handle.keep = False
                return _stopped(plan, product, version, loaded, title)
            restored = _read_restored(engine, plan, progress, loaded, proof)
            return _loaded(plan, product, version, loaded, account, restored, keep, title)


def _fingerprint_mode(against: Snapshot | None, asked: FingerprintMode | None) -> FingerprintMode:
    """Fingerprints as the source snapshot has them (chunks when it has chunks), else as asked."""
    if against is not None and any(t.fingerprint for t in against.tables.values()):
        return "chunks" if any(t.chunks for t in against.tables.values()) or asked == "chunks" else "table"
    return asked or "none"


def _plan(url: URL, contents: DumpContents, scratch: str | None, snapshot: Snapshot | None,
          refusals: list[str]) -> _Plan:
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
    _check_scratch_name(name, own)
    return _Plan(url._replace(database=None), source, name, contents, snapshot, refusals)


def _check_scratch_name(name: str, own: set[str]) -> None:
    if not _SAFE_NAME.match(name):
        raise DbauditError(f"scratch database name {name!r}: use letters, digits and _ only (at most 64)")
    if name.lower() in own or name.lower() in _SYSTEM:
        raise DbauditError(f"refusing scratch database {name!r}: it is the source database (or a system one)")


def _scratch_exists(engine: sa.Engine, url: URL, scratch: str) -> bool:
    try:
        with engine.connect() as conn:
            return bool(conn.execute(sa.text("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = :n"),
                                     {"n": scratch}).scalar_one())
    except DBAPIError as exc:
        raise DbauditError(f"cannot connect to {mask_url(url)}: {describe_db_error(exc)}") from None


def _refuse_unsafe(engine: sa.Engine, plan: _Plan) -> None:
    plan.leftovers = _refuse_unsafe_name(engine, plan.url, plan.scratch)


def _refuse_unsafe_name(engine: sa.Engine, url: URL, scratch: str) -> list[str]:
    """What killed runs left (dropped first: their scratch database may have this name); refused when `scratch`
    exists."""
    try:
        with engine.connect() as conn:
            leftovers = clean_abandoned(conn, server_identity(conn))
            exists = conn.execute(sa.text("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = :n"),
                                  {"n": scratch}).scalar_one()
    except DBAPIError as exc:
        raise DbauditError(f"cannot connect to {mask_url(url)}: {describe_db_error(exc)}") from None
    if exists:
        raise DbauditError(f"refusing scratch database {scratch!r}: it already exists on {mask_url(url)} "
                           "(drop it or pick another with --scratch)")
    return leftovers


def _restore_and_compare(engine: sa.Engine, plan: _Plan, product: str, version: str, keep: bool,
                         title: str | None, progress: bool, journal: Journal | None) -> RestoreCheck:
    with terminate_as_interrupt(), scratch_restore(engine, plan.scratch, keep=keep, journal=journal) as handle:
        plan.account = account = handle.account
        assert plan.statements is not None
        with early_proof(account.url(plan.url, plan.scratch), plan.scratch, plan.statements.touches, plan.fingerprint,
                         plan.timeout) as proof:
            loaded = load_dump(plan.contents, plan.statements, plan.url, account, plan.scratch, server_version=version,
                               timeout=plan.timeout, observer=proof)
            if loaded.error:
                handle.keep = False
                return _stopped(plan, product, version, loaded, title)
            restored = _read_restored(engine, plan, progress, loaded, proof)
        return _loaded(plan, product, version, loaded, account, restored, keep, title)


def _stopped(plan: _Plan, product: str, version: str, loaded: Loaded, title: str | None) -> RestoreCheck:
    """The load stopped (the server refused a statement, the time limit, Ctrl-C): nothing is kept."""
    checks = [Check("restore", "load", "fail", f"the restore stopped: {loaded.error}")]
    return _result(plan, product, version, checks, None, loaded.seconds, kept=False, title=title)


def _loaded(plan: _Plan, product: str, version: str, loaded: Loaded, account: RestoreAccount, restored: Snapshot, keep: bool,
            title: str | None) -> RestoreCheck:
    """The load went through: its check, then the restored database compared with the dump and the source."""
    checks = [Check("restore", "load", "pass", f"restored in {loaded.seconds:.1f} s, {loaded.statements:,} "
                                               f"statements as {account}"), *compare_restored(plan, restored)]
    return _result(plan, product, version, checks, restored, loaded.seconds, kept=keep, title=title)


def _read_restored(engine: sa.Engine, plan: _Plan, progress: bool, loaded: Loaded, proof: EarlyProof) -> Snapshot:
    """The restored database's snapshot, taken as the temporary account with its write privileges revoked: the
    source's metrics may reach SQL SECURITY INVOKER views and functions the dump defined. Tables read while the
    rest loaded (backups.restore_proof) are not read again when no later statement could have changed them."""
    assert plan.account is not None
    try:
        with engine.connect() as conn:
            revoke_writes(conn, plan.account, plan.scratch)
    except DBAPIError as exc:
        raise DbauditError(f"revoke the restore account's writes: {describe_db_error(exc)}") from None
    metrics = {m.name: m.sql for m in plan.against.metrics.values()} if plan.against else None
    remaining = max(1.0, plan.timeout - loaded.seconds)
    known = proof.finish()
    return take_snapshot(plan.account.url(plan.url, plan.scratch), metrics, progress=progress,
                         statement_timeout=remaining, fingerprint=plan.fingerprint,
                         baseline=plan.against if plan.fingerprint != "none" else None, known=known)



# --- stream editing (kept for callers that edit a dump's byte stream) ------------------------------


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
        kept=kept, client=CLIENT, skipped_statements=[k for _, _, k in plan.contents.unsafe_spans],
        restore_seconds=seconds, checks=checks, restored=restored, timeout_seconds=plan.timeout,
        account=str(plan.account or ""), leftovers=plan.leftovers,
        summary={"checks": len(checks), "checks_failed": failed,
                 "tables": len(restored.tables) if restored else 0,
                 "rows": restored.total_rows if restored else 0},
    )
