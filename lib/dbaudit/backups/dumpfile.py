"""Dump files: reading a mysqldump once, in constant memory, into what it holds.

`read_dump` streams a plain or compressed (gzip, zstd, xz, bzip2) dump of any size, hashing the file as stored, and returns
its checksums, header, objects and per-table row counts (counted from the INSERT tuples) as
`DumpContents`. Judging it (checksums, truncation, manifest, a snapshot of its source) is in
`backups.checks`.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from tqdm import tqdm

from dbaudit.backups.gzipcodec import GZIP_ERRORS, gzip_inflater
from dbaudit.backups.sqlscan import MAX_STATEMENT, ScanEnd, SqlScanner, Statement
from dbaudit.backups.statements import Collector, DumpHeader, DumpObject, DumpTable
from dbaudit.core.errors import DbauditError
from dbaudit.core.terminal import visible

CHUNK = 1 << 20
_TRAILER = re.compile(r"^Dump completed(?: on (\d{4}-\d\d-\d\d\s+\d{1,2}:\d\d:\d\d))?$")


# --- what a dump holds ----------------------------------------------------------------------------


@dataclass
class DumpFile:
    path: str
    size: int
    sha256: str
    md5: str  # "" when it was not asked for (dump-check computes it for --md5 and --write-manifest)
    compressed: bool
    sql_bytes: int  # after decompression


@dataclass
class DumpContents:
    file: DumpFile
    header: DumpHeader
    complete: bool  # no truncation found
    truncation: str | None  # why it looks cut off
    last_table: str | None  # the last table whose statements were reached
    statements: int
    databases: list[str]
    tables: dict[str, DumpTable]  # keyed by name, or database.name when the dump holds several databases
    views: dict[str, DumpObject]
    triggers: dict[str, DumpObject]
    routines: dict[str, DumpObject]
    events: dict[str, DumpObject]
    qualified_databases: list[str]  # databases named as qualifiers of tables and objects
    unsafe_spans: list[tuple[int, int, str]]  # USE / CREATE DATABASE / SET GLOBAL … statements: skipped on restore
    duration_seconds: float
    # What makes restore-check refuse the dump: client commands (`\! cmd`, `source f`, `\u db` …) as written,
    # and the kinds of statements that reach beyond the database (CREATE USER, GRANT, FLUSH …).
    client_commands: list[str] = field(default_factory=list)
    refused_statements: list[str] = field(default_factory=list)
    # The dump's own database (its header's, or the one database it creates), and statements naming any other:
    # qualified names in DROP/ALTER/RENAME/TRUNCATE/DML/LOCK/CREATE TABLE, and USE / CREATE / DROP DATABASE.
    own_database: str | None = None
    foreign_statements: list[str] = field(default_factory=list)  # "ux_victim: DROP TABLE ux_victim.t"
    drops_own_database: bool = False  # DROP DATABASE of its own database: a plain `mysql < dump` recreates it
    definer_spans: list[tuple[int, int]] = field(default_factory=list)  # statements with a DEFINER= clause
    # What the scanner cannot be sure the server reads as it does, and statements no server takes: one line each.
    ambiguities: list[str] = field(default_factory=list)
    # What wrote it (mysql: mysqldump, mariadb-dump or any MySQL script; pg_dump plain|custom|tar|directory;
    # mydumper), and the sequences it creates (PostgreSQL, MariaDB). backups.formats tells the format by content.
    format: str = "mysql"
    sequences: dict[str, DumpObject] = field(default_factory=dict)

    @property
    def foreign_databases(self) -> list[str]:
        return list(dict.fromkeys(s.split(":", 1)[0] for s in self.foreign_statements))

    @property
    def refusals(self) -> list[str]:
        """Why the dump must not be restored, one phrase per kind; empty for a plain dump."""
        commands = list(dict.fromkeys(self.client_commands))
        return ([f"client command(s) {'; '.join(commands[:5])}{' …' if len(commands) > 5 else ''}"]
                if commands else []) + [f"{kind} statement(s)" for kind in dict.fromkeys(self.refused_statements)] + (
                    [f"{self.ambiguities[0]}{f' (+{len(self.ambiguities) - 1} more)' if len(self.ambiguities) > 1 else ''}"]
                    if self.ambiguities else [])

    @property
    def total_rows(self) -> int:
        return sum(t.rows for t in self.tables.values())


# --- reading ---------------------------------------------------------------------------------------


class _HashingReader:
    """The raw file as gzip sees it: every byte read is hashed (MD5 only when asked) and shown on the progress bar."""

    def __init__(self, handle: BinaryIO, bar: tqdm, md5: bool = True) -> None:
        self.handle, self.bar = handle, bar
        self.md5 = hashlib.md5(usedforsecurity=False) if md5 else None
        self.sha256 = hashlib.sha256()

    def md5_hex(self) -> str:
        return self.md5.hexdigest() if self.md5 is not None else ""

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size if size > 0 else CHUNK)  # never the whole file at once
        if self.md5 is not None:
            self.md5.update(data)
        self.sha256.update(data)
        self.bar.update(len(data))
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


def sql_chunks(reader: Any, compressed: bool, chunk: int = CHUNK) -> Iterator[bytes]:
    """The SQL text of a dump, decompressed when it is compressed (gzip, zstd, xz or bzip2, told by its magic
    bytes as formats.compression_of tells them); `reader` is anything with read(size)."""
    if not compressed:
        while data := reader.read(chunk):
            yield data
        return
    raw = reader.read(chunk)
    kind = _compression(raw)
    if kind not in (None, "gzip"):  # `mariadb-dump | zstd` and the like: formats' decompressors, frame by frame
        from dbaudit.backups.formats import decompressed

        yield from decompressed(_Replayed(raw, reader), kind)
        return
    # An inflater rather than GzipFile: GzipFile.read raises on a cut-off stream and loses what it decoded.
    inflater, fed = gzip_inflater(), False
    while raw:
        while raw:
            fed = True
            yield inflater.decompress(raw, 4 * chunk)  # bounded output: a highly compressed dump stays in memory limits
            raw = inflater.unconsumed_tail
            if inflater.eof:  # another gzip member may follow (concatenated .gz files)
                raw = inflater.unused_data
                inflater, fed = gzip_inflater(), False
        raw = reader.read(chunk)
    if fed:
        raise EOFError("the gzip stream ends early")


def _compression(head: bytes) -> str | None:
    from dbaudit.backups.formats import compression_of  # formats reads dumps with this module: imported late

    return compression_of(head)


class _Replayed:
    """`reader` with the bytes already read from it put back in front."""

    def __init__(self, head: bytes, reader: Any) -> None:
        self.head, self.reader = head, reader

    def read(self, size: int = -1) -> bytes:
        if self.head:
            data, self.head = self.head, b""
            return data
        return bytes(self.reader.read(size))


def _decompress_errors() -> tuple[type[Exception], ...]:
    """What a corrupt compressed stream raises: gzip's, xz's, bzip2's (OSError) and zstd's."""
    import lzma

    errors: tuple[type[Exception], ...] = (*GZIP_ERRORS, lzma.LZMAError, OSError)
    try:
        import zstandard
    except ImportError:
        return errors
    return (*errors, zstandard.ZstdError)


@dataclass
class ScannedStatement:
    """One statement of a dump as the server must receive it, and what it is.

    Client commands (`\\! cmd`, `source f` …) and DELIMITER lines are no statements: they are never yielded, and
    recorded in `DumpScan.refusals` when they make the dump unsafe."""

    kind: str  # the classification: insert, table, view, trigger, routine, event, use, create_database, set, other …
    head: str  # its first bytes, comments dropped, whitespace squeezed (what it was classified by)
    start: int  # offset of its first byte in the decompressed SQL
    end: int  # offset just after its delimiter
    text: bytes | None  # the bytes [start, delimiter) as the server must receive them; only with keep_text
    refusal: str | None  # why it must never run (a server statement, another database, an ambiguity …); None: it may
    definer: bool = False  # it carries a DEFINER= clause
    rows: int = 0  # INSERT tuples
    # The session's SQL mode while the statement is read, as the dump's own SET statements left it: None while the
    # session's initial mode is in force, else the value for `SET SESSION sql_mode` ("{initial}" stands for the
    # initial mode where the dump built on it, as in CONCAT(@@sql_mode, ',X')). Executing every statement in order
    # on one session reproduces it; a statement run out of order needs it set first.
    sql_mode: str | None = None
    ansi_quotes: bool = False  # "…" is an identifier in this statement
    no_backslash_escapes: bool = False  # a backslash is no escape in this statement's strings


class DumpScan:
    """One streaming pass over a dump file (plain or compressed): its statements as they come, then its contents.

    Iterate it once; `contents()` is ready when the iteration has ended. `refusals` grows while it runs: every reason
    the dump must not be restored found so far (statements' refusals and the client commands between them).
    With `keep_text`, every statement's bytes are kept until it is yielded: memory is bounded by the largest
    statement, and a statement longer than `max_statement` bytes is refused and yielded without text."""

    def __init__(self, path: str | os.PathLike[str], *, progress: bool = False, keep_text: bool = False,
                 max_statement: int = MAX_STATEMENT, chunk: int = CHUNK, md5: bool = False,
                 allowed: frozenset[str] | None = None) -> None:
        self.path = Path(path)
        self.chunk = chunk  # bytes read at a time (tests read in tiny chunks: the result must not change)
        if not self.path.is_file():
            raise DbauditError(f"dump file not found: {self.path}")
        self.progress, self.keep_text, self.md5 = progress, keep_text, md5
        self._collector = Collector(max_statement, allowed)
        self._scanner = SqlScanner(self._statement, self._collector.comment, self._client_command,
                                   keep_text=keep_text, max_statement=max_statement)
        self._pending: list[ScannedStatement] = []
        self._contents: DumpContents | None = None
        self._started = False
        self.refusals: list[str] = []

    def _statement(self, st: Statement) -> None:
        c = self._collector.statement(st)
        if c.refusal:
            self.refusals.append(c.refusal)
        self._pending.append(ScannedStatement(c.kind, st.head, st.start, st.end, st.text, c.refusal, c.definer,
                                              st.tuples, st.sql_mode, st.ansi_quotes, st.no_backslash_escapes))

    def _client_command(self, text: str, offset: int) -> None:
        self._collector.client_command(text, offset)
        self.refusals.append(f"client command {text[:80]} at byte {offset:,}")

    def __iter__(self) -> Iterator[ScannedStatement]:
        if self._started:
            raise DbauditError(f"{self.path} is being or was already scanned: a DumpScan reads its file once")
        self._started = True
        started = time.monotonic()
        size = self.path.stat().st_size
        problem, sql_bytes = None, 0
        with self.path.open("rb") as handle, tqdm(total=size, unit="B", unit_scale=True, disable=not self.progress,
                                                  desc=f"reading {visible(self.path.name)}", leave=False, file=sys.stderr) as bar:
            kind = _compression(handle.read(6))
            compressed = kind is not None
            handle.seek(0)
            reader = _HashingReader(handle, bar, self.md5)
            try:
                for data in sql_chunks(reader, compressed, self.chunk):
                    sql_bytes += len(data)
                    self._scanner.feed(data)
                    yield from self._flush()
            except EOFError as exc:
                problem = str(exc)  # the <kind> stream ends early
            except _decompress_errors() as exc:
                problem = f"the {kind} stream is corrupt ({exc})"
            reader.drain()  # bytes after the compressed stream still belong to the file's checksum
        end = self._scanner.finish()
        yield from self._flush()
        file = DumpFile(str(self.path), size, reader.sha256.hexdigest(), reader.md5_hex(), compressed, sql_bytes)
        self._contents = _contents(file, self._collector, end, problem, time.monotonic() - started)

    def _flush(self) -> Iterator[ScannedStatement]:
        pending, self._pending = self._pending, []
        yield from pending

    def contents(self) -> DumpContents:
        """Checksums, completeness, tables, rows and refusals: what the whole dump holds (after the iteration)."""
        if self._contents is None:
            raise DbauditError(f"{self.path}: contents() before the scan has read the whole dump")
        return self._contents


def read_dump(path: str | os.PathLike[str], progress: bool = False, md5: bool = False) -> DumpContents:
    """Stream the dump once: checksums of the file as stored (MD5 too when asked), and everything the SQL in it
    declares."""
    scan = DumpScan(path, progress=progress, md5=md5)
    for _ in scan:
        pass
    return scan.contents()


def _contents(file: DumpFile, c: Collector, end: ScanEnd, stream_problem: str | None,
              duration: float) -> DumpContents:
    header = c.header
    c.problems += end.ambiguities
    trailer = _TRAILER.match(end.last_comment or "")
    if trailer and end.last_comment_terminated:
        header.completed_at = trailer[1]
    problem = stream_problem or end.problem
    if problem is None and header.tool and header.completed_at is None and not trailer:
        problem = "the '-- Dump completed' trailer mysqldump writes last is missing"
    elif problem is None and trailer and not end.last_comment_terminated:
        problem = "the '-- Dump completed' trailer is cut off"
    many = len({db for db, _ in c.tables}) > 1
    tables = {(f"{db}.{name}" if many and db else name): t for (db, name), t in sorted(
        c.tables.items(), key=lambda kv: (kv[0][0] or "", kv[0][1]))}
    views = _keyed(c.objects["view"], many)
    for key in views:  # mysqldump first writes a stand-in table for each view
        tables.pop(key, None)
    header.features = sorted(c.features | ({"routines"} if c.objects["routine"] else set())
                             | ({"triggers"} if c.objects["trigger"] else set()))
    return DumpContents(
        file=file, header=header, complete=problem is None, truncation=problem, last_table=c.last_table,
        statements=c.statements, databases=c.databases, tables=tables, views=views,
        triggers=_keyed(c.objects["trigger"], many), routines=_keyed(c.objects["routine"], many),
        events=_keyed(c.objects["event"], many), qualified_databases=sorted(c.qualified),
        unsafe_spans=c.unsafe, duration_seconds=round(duration, 3), client_commands=c.client_commands,
        refused_statements=c.refused, own_database=(own := _own_database(header, c)),
        foreign_statements=[f"{db}: {text}" for db, text in c.named if own is None or db.lower() != own.lower()],
        drops_own_database=own is not None and any(d.lower() == own.lower() for d in c.dropped),
        definer_spans=c.definers, ambiguities=c.problems,
    )


def _own_database(header: DumpHeader, c: Collector) -> str | None:
    """The database a dump is of: its header's (mysqldump writes `Database: x`), else the one it creates."""
    if header.database:
        return header.database
    created = list(dict.fromkeys(c.created))
    return created[0] if len(created) == 1 else None


def _keyed(objects: dict[tuple[str | None, str], DumpObject], many: bool) -> dict[str, DumpObject]:
    return {(f"{db}.{name}" if many and db else name): o
            for (db, name), o in sorted(objects.items(), key=lambda kv: (kv[0][0] or "", kv[0][1]))}


