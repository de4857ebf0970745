"""Dump files: reading a mysqldump once, in constant memory, into what it holds.

`read_dump` streams a plain or gzip-compressed dump of any size, hashing the file as stored, and returns
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
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from tqdm import tqdm

from dbaudit.backups.sqlscan import ScanEnd, SqlScanner
from dbaudit.backups.statements import Collector, DumpHeader, DumpObject, DumpTable
from dbaudit.core.errors import DbauditError

CHUNK = 1 << 20
_TRAILER = re.compile(r"^Dump completed(?: on (\d{4}-\d\d-\d\d\s+\d{1,2}:\d\d:\d\d))?$")


# --- what a dump holds ----------------------------------------------------------------------------


@dataclass
class DumpFile:
    path: str
    size: int
    sha256: str
    md5: str
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

    @property
    def foreign_databases(self) -> list[str]:
        return list(dict.fromkeys(s.split(":", 1)[0] for s in self.foreign_statements))

    @property
    def refusals(self) -> list[str]:
        """Why the dump must not be restored, one phrase per kind; empty for a plain dump."""
        commands = list(dict.fromkeys(self.client_commands))
        return ([f"client command(s) {'; '.join(commands[:5])}{' …' if len(commands) > 5 else ''}"]
                if commands else []) + [f"{kind} statement(s)" for kind in dict.fromkeys(self.refused_statements)]

    @property
    def total_rows(self) -> int:
        return sum(t.rows for t in self.tables.values())


# --- reading ---------------------------------------------------------------------------------------


class _HashingReader:
    """The raw file as gzip sees it: every byte read is hashed and shown on the progress bar."""

    def __init__(self, handle: BinaryIO, bar: tqdm) -> None:
        self.handle, self.bar = handle, bar
        self.md5, self.sha256 = hashlib.md5(usedforsecurity=False), hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size if size > 0 else CHUNK)  # never the whole file at once
        self.md5.update(data)
        self.sha256.update(data)
        self.bar.update(len(data))
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


def sql_chunks(reader: Any, compressed: bool) -> Iterator[bytes]:
    """The SQL text of a dump, decompressed when it is gzip; `reader` is anything with read(size)."""
    if not compressed:
        while data := reader.read(CHUNK):
            yield data
        return
    # zlib rather than GzipFile: GzipFile.read raises on a cut-off stream and loses what it decoded.
    inflater, fed = zlib.decompressobj(wbits=31), False
    while raw := reader.read(CHUNK):
        while raw:
            fed = True
            yield inflater.decompress(raw, 4 * CHUNK)  # bounded output: a highly compressed dump stays in memory limits
            raw = inflater.unconsumed_tail
            if inflater.eof:  # another gzip member may follow (concatenated .gz files)
                raw = inflater.unused_data
                inflater, fed = zlib.decompressobj(wbits=31), False
    if fed:
        raise EOFError("the gzip stream ends early")


def read_dump(path: str | os.PathLike[str], progress: bool = False) -> DumpContents:
    """Stream the dump once: checksums of the file as stored, and everything the SQL in it declares."""
    source = Path(path)
    if not source.is_file():
        raise DbauditError(f"dump file not found: {source}")
    started = time.monotonic()
    collector = Collector()
    scanner = SqlScanner(collector.statement, collector.comment, collector.client_command)
    size = source.stat().st_size
    problem = None
    sql_bytes = 0
    with source.open("rb") as handle, tqdm(total=size, unit="B", unit_scale=True, desc=f"reading {source.name}",
                                           disable=not progress, leave=False, file=sys.stderr) as bar:
        compressed = handle.read(2) == b"\x1f\x8b"
        handle.seek(0)
        reader = _HashingReader(handle, bar)
        try:
            for data in sql_chunks(reader, compressed):
                sql_bytes += len(data)
                scanner.feed(data)
        except EOFError:
            problem = "the gzip stream ends early"
        except zlib.error as exc:
            problem = f"the gzip stream is corrupt ({exc})"
        reader.drain()  # bytes after the gzip stream still belong to the file's checksum
    end = scanner.finish()
    file = DumpFile(str(source), size, reader.sha256.hexdigest(), reader.md5.hexdigest(), compressed, sql_bytes)
    return _contents(file, collector, end, problem, time.monotonic() - started)


def _contents(file: DumpFile, c: Collector, end: ScanEnd, stream_problem: str | None,
              duration: float) -> DumpContents:
    header = c.header
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
        definer_spans=c.definers,
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


