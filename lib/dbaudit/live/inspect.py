"""Taking a snapshot: schema, exact row counts and named metrics, all inside one read-only transaction."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from tqdm import tqdm  # the plain bar: notebook widgets need ipywidgets, which reports do not

from dbaudit.audit.chunks import FingerprintMode, baseline_columns, select_tables
from dbaudit.core.errors import DbauditError
from dbaudit.core.snapshot import FORMAT_VERSION, KIND, Metric, Snapshot, Table, load_snapshot
from dbaudit.live.account import read_rights
from dbaudit.live.connect import DEFAULT_LOCK_TIMEOUT, AuditSession, audit_session, describe_db_error, parse_url
from dbaudit.live.dialects import dialect_for
from dbaudit.live.fingerprint import fingerprint_tables
from dbaudit.live.ledger import read_ledger
from dbaudit.live.metrics import check_metric_sql, lex_as_parsed, refuse_privileged


def take_snapshot(
    url: str | URL,
    metrics: Mapping[str, str] | None = None,
    *,
    schema: str | None = None,
    count_rows: bool = True,
    progress: bool = False,
    statement_timeout: float | None = None,
    fingerprint: FingerprintMode = "none",
    tables: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    baseline: Snapshot | None = None,
    lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
    allow_privileged: bool = False,
    known: Mapping[str, Table] | None = None,
) -> Snapshot:
    """Snapshot the database at `url`. `metrics` maps a name to a scalar SELECT.

    `fingerprint` adds content fingerprints ("table") and per-chunk ones ("chunks"); `tables` and
    `exclude` (fnmatch patterns) limit which tables are counted and fingerprinted. With a fingerprinted
    `baseline` (an earlier snapshot of this database), a table whose columns changed since is also
    fingerprinted over the baseline's columns (Table.baseline), so a diff can tell whether they changed.
    `lock_timeout` bounds each wait for another session's lock (see audit_session). Metrics are refused
    on an account with rights beyond the database unless `allow_privileged` (dbaudit.live.metrics).

    `known` holds tables the caller counted (and fingerprinted in this `fingerprint` mode) earlier and knows
    unchanged since (restore-check reads restored tables while the rest of the dump loads): such a table's
    count and fingerprints are taken from it when its columns and primary key are still the same (and it
    needs no baseline); every other table is read here."""
    parsed = parse_url(url) if isinstance(url, str) else url
    check_metric_sql(metrics or {}, dialect_for(parsed.get_backend_name()).name)
    if fingerprint not in ("none", "table", "chunks"):
        raise DbauditError(f"fingerprint must be none, table or chunks, not {fingerprint!r}")
    started = time.monotonic()
    with audit_session(parsed, schema, statement_timeout, lock_timeout) as session:
        rights = read_rights(session)
        refuse_privileged(rights, metrics or {}, allow_privileged)
        snapshot = _schema(session)
        snapshot.visibility = rights.visibility
        snapshot.account = rights.account
        selected = select_tables(snapshot.tables, tables, exclude)
        reused = _reuse(snapshot, selected, known or {}, fingerprint, baseline) if count_rows else set()
        if count_rows:
            _count_rows(session, snapshot, progress, [n for n in selected if n not in reused])
        if metrics:
            lex_as_parsed(session)
        snapshot.metrics = {name: _metric(session, name, sql) for name, sql in (metrics or {}).items()}
        if metrics:
            session.reassert()
        snapshot.migrations = read_ledger(session, snapshot.tables)  # in the same transaction as the schema
        # After the metrics: fingerprinting sets the session's time zone to UTC, which metrics must not see.
        fingerprint_tables(session, [snapshot.tables[n] for n in selected if n not in reused], fingerprint, progress,
                           baseline.tables if baseline else None)
    snapshot.duration_seconds = round(time.monotonic() - started, 3)
    return snapshot


def _schema(session: AuditSession) -> Snapshot:
    """The schema part of a snapshot, read under the dialect's fixed catalog settings."""
    conn, dialect, schema = session.connection, session.dialect, session.schema
    with dialect.catalog_scope(conn, schema):
        return Snapshot(
            format_version=FORMAT_VERSION,
            kind=KIND,
            taken_at=datetime.now(UTC).isoformat(timespec="seconds"),
            source=session.masked_url,
            database=session.database,
            server=dialect.server(conn),
            tables=dialect.tables(conn, schema),
            views=dialect.views(conn, schema),
            triggers=dialect.triggers(conn, schema),
            routines=dialect.routines(conn, schema),
            events=dialect.events(conn, schema),
            sequences=dialect.sequences(conn, schema),
            types=dialect.types(conn, schema),
            extensions=dialect.extensions(conn),
            schema=schema,
        )


def load_or_take(source: str | os.PathLike[str], metrics: Mapping[str, str] | None = None,
                 fingerprint: FingerprintMode = "none", baseline: Snapshot | None = None,
                 allow_privileged: bool = False) -> Snapshot:
    """A snapshot file (*.json) is loaded as it is; anything else is taken to be a database URL and
    snapshot with progress bars (rows/s while fingerprinting)."""
    text = os.fspath(source)
    if text.endswith(".json"):
        return load_snapshot(text)
    return take_snapshot(text, metrics, progress=True, fingerprint=fingerprint, baseline=baseline,
                         allow_privileged=allow_privileged)


def _reuse(snapshot: Snapshot, selected: Iterable[str], known: Mapping[str, Table], mode: FingerprintMode,
           baseline: Snapshot | None) -> set[str]:
    """The selected tables whose earlier reading still applies, with their counts and fingerprints filled in."""
    reused = set()
    for name in selected:
        table, earlier = snapshot.tables[name], known.get(name)
        if earlier is None or earlier.row_count is None or (earlier.columns, earlier.primary_key) != (
                table.columns, table.primary_key):
            continue
        if mode != "none" and (not earlier.fingerprint or baseline_columns(
                table, baseline.tables.get(name) if baseline else None) is not None):
            continue
        table.row_count = earlier.row_count
        if mode != "none":
            table.fingerprint, table.chunking, table.chunks = earlier.fingerprint, earlier.chunking, earlier.chunks
        reused.add(name)
    return reused


def _count_rows(session: AuditSession, snapshot: Snapshot, progress: bool, names: Iterable[str]) -> None:
    bar = tqdm(names, desc="counting rows", unit="table", disable=not progress, leave=False)
    for name in bar:
        bar.set_postfix_str(name)
        try:
            snapshot.tables[name].row_count = session.dialect.count_rows(session.connection, name, session.schema)
        except DBAPIError as exc:
            raise DbauditError(f"counting rows of {name!r}: {describe_db_error(exc)}") from None


def _metric(session: AuditSession, name: str, sql: str) -> Metric:
    """Run a metric in a savepoint: a failing one (table not there yet) must not end the snapshot."""
    cursor = session.connection.connection.cursor()
    try:
        cursor.execute("SAVEPOINT dbaudit_metric")
        try:
            # The raw DBAPI cursor runs the user's SQL exactly as written: no bind-parameter parsing of
            # ':' or '%' inside string literals.
            cursor.execute(sql)
            found = cursor.fetchmany(2)
            width = len(cursor.description or ())
            cursor.execute("RELEASE SAVEPOINT dbaudit_metric")
            if len(found) > 1 or width != 1:
                shape = f"{len(found) if len(found) < 2 else 'several'} row(s) of {width} column(s)"
                return Metric(name, sql, None, error=f"a metric must return one value, this query returned {shape}")
            row = found[0] if found else None
        except Exception as exc:  # noqa: BLE001 - any driver error becomes the metric's error
            _rollback_to_savepoint(cursor, name, exc)
            return Metric(name, sql, None, error=_driver_message(exc))
    except DbauditError:
        raise
    except Exception as exc:  # noqa: BLE001 - the connection itself failed
        raise DbauditError(f"metric {name!r}: {_driver_message(exc)}") from None
    finally:
        _close_quietly(cursor)
    value = None if row is None else row[0]
    return Metric(name, sql, _plain(value))


def _rollback_to_savepoint(cursor: Any, name: str, cause: Exception) -> None:
    """A metric's own failure is data; a connection that is gone ends the snapshot."""
    try:
        cursor.execute("ROLLBACK TO SAVEPOINT dbaudit_metric")
    except Exception:  # noqa: BLE001
        raise DbauditError(f"lost the database connection during metric {name!r}: "
                           f"{_driver_message(cause)}") from None


def _close_quietly(cursor: Any) -> None:
    with contextlib.suppress(Exception):  # closing a cursor on a dead connection has nothing to report
        cursor.close()


def _plain(value: object) -> float | int | str | None:
    if value is None or isinstance(value, (int, float, str)):
        return value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return str(value)


def _driver_message(exc: Exception) -> str:
    args: tuple[Any, ...] = getattr(exc, "args", ())
    if len(args) == 2 and isinstance(args[0], int):
        return f"({args[0]}) {args[1]}"
    return " ".join(str(exc).split())
