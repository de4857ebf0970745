"""Dump files: what a mysqldump holds, whether it is whole, and whether it still matches its manifest.

`read_dump` streams a plain or gzip-compressed dump of any size once, in constant memory, and
returns its checksums, header, objects and per-table row counts (counted from the INSERT tuples).
`check_dump` turns that into a versioned `DumpCheck` result: checksum, truncation, the sidecar
manifest written by `write_manifest`, and an optional snapshot of the source database.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

from tqdm import tqdm

from dbaudit import serde
from dbaudit.ci import add_output_options, write_outputs
from dbaudit.errors import DbauditError
from dbaudit.expectations import Check
from dbaudit.result import Judged
from dbaudit.snapshot import Snapshot, load_snapshot
from dbaudit.sqlscan import ScanEnd, SqlScanner, Statement

FORMAT_VERSION = 1
KIND = "dbaudit.dump-check"
MANIFEST_KIND = "dbaudit.dump-manifest"
MANIFEST_SUFFIX = ".manifest.json"
CHUNK = 1 << 20

_NAME = r"(`(?:[^`]|``)+`|[\w$]+)"
_QNAME = rf"{_NAME}(?:\s*\.\s*{_NAME})?"
_OR_REPLACE = r"(?:OR\s+REPLACE\s+)?"
_DEFINER = r"(?:DEFINER\s*=\s*\S+\s+)?"
_IF_NOT_EXISTS = r"(?:IF\s+NOT\s+EXISTS\s+)?"
_STATEMENTS: list[tuple[str, re.Pattern[str]]] = [
    (kind, re.compile(pattern, re.IGNORECASE)) for kind, pattern in [
        # Statements that act on the server, its accounts or its files rather than on the dumped tables. A dump
        # holding one is refused by restore-check (not cut: a dump that tries this is not a plain backup).
        ("refused", (r"^(?:(?:CREATE(?:\s+OR\s+REPLACE)?|ALTER|DROP|RENAME)\s+(?:USER|ROLE)\b|GRANT\b|REVOKE\b"
                    r"|SET\s+(?:PASSWORD|PERSIST(?:_ONLY)?|DEFAULT\s+ROLE)\b|(?:INSTALL|UNINSTALL)\s+(?:PLUGIN|SONAME)\b"
                    r"|FLUSH\b|KILL\b|SHUTDOWN\b|RESTART\b|(?:CREATE(?:\s+OR\s+REPLACE)?|ALTER|DROP)\s+SERVER\b"
                    r"|CHANGE\s+(?:MASTER|REPLICATION)\b|(?:START|STOP|RESET)\s+(?:SLAVE|REPLICA|MASTER)\b"
                    r"|PURGE\s+(?:BINARY|MASTER)\s+LOGS\b|BINLOG\b|LOAD\s+(?:DATA|XML)\b|PREPARE\b|EXECUTE\b|CALL\b"
                    r"|SELECT\b.*\bINTO\s+(?:OUTFILE|DUMPFILE)\b"
                    r"|CREATE\s+(?:OR\s+REPLACE\s+)?(?:AGGREGATE\s+)?FUNCTION\s+\S+\s+RETURNS\s+\w+\s+SONAME\b)")),
        ("insert", rf"^(?:INSERT|REPLACE)\s+(?:(?:LOW_PRIORITY|DELAYED|HIGH_PRIORITY|IGNORE)\s+)*(?:INTO\s+)?{_QNAME}"),
        ("table", rf"^CREATE\s+{_OR_REPLACE}(?:TEMPORARY\s+)?TABLE\s+{_IF_NOT_EXISTS}{_QNAME}"),
        ("view", rf"^CREATE\s+{_OR_REPLACE}(?:ALGORITHM\s*=\s*\w+\s+)?{_DEFINER}(?:SQL\s+SECURITY\s+\w+\s+)?"
                 rf"VIEW\s+{_IF_NOT_EXISTS}{_QNAME}"),
        ("trigger", rf"^CREATE\s+{_OR_REPLACE}{_DEFINER}TRIGGER\s+{_IF_NOT_EXISTS}{_QNAME}\s+"
                    rf"(BEFORE|AFTER)\s+(INSERT|UPDATE|DELETE)\s+ON\s+{_QNAME}"),
        ("routine", rf"^CREATE\s+{_OR_REPLACE}{_DEFINER}(?:AGGREGATE\s+)?(PROCEDURE|FUNCTION)\s+{_IF_NOT_EXISTS}{_QNAME}"),
        ("event", rf"^CREATE\s+{_OR_REPLACE}{_DEFINER}EVENT\s+{_IF_NOT_EXISTS}{_QNAME}"),
        ("create_database", rf"^CREATE\s+{_OR_REPLACE}(?:DATABASE|SCHEMA)\s+{_IF_NOT_EXISTS}{_NAME}"),
        ("drop_database", rf"^DROP\s+(?:DATABASE|SCHEMA)\s+(?:IF\s+EXISTS\s+)?{_NAME}"),
        ("use", rf"^USE\s+{_NAME}"),
        ("alter_database", r"^ALTER\s+(?:DATABASE|SCHEMA)\b"),
        ("server_state", r"^SET\s+(?:@@GLOBAL\.|GLOBAL\s)"),
        ("lock", r"^LOCK\s+TABLES?\b"),
        ("disable_keys", rf"^ALTER\s+TABLE\s+{_QNAME}\s+DISABLE\s+KEYS"),
        ("drop_table", r"^DROP\s+TABLE\b"),
        ("set", r"^SET\s+(.+)$"),
    ]
]  # fmt: skip
_ASSIGNMENT = re.compile(r"(?:^|,)\s*(?:@@(?:SESSION\.)?)?([A-Za-z_]\w*)\s*=\s*('(?:[^'\\]|\\.|'')*'|[^,]+)")
_TOOL = re.compile(r"^(MySQL|MariaDB) dump ([\d.]+)(?:\s+Distrib\s+([^,\s]+))?")
_HOST = re.compile(r"^Host:\s*(\S+)\s+Database:\s*(\S+)")
_SERVER = re.compile(r"^Server version\s+(.+)$")
_TRAILER = re.compile(r"^Dump completed(?: on (\d{4}-\d\d-\d\d\s+\d{1,2}:\d\d:\d\d))?$")
_RESTORE_UNSAFE = {"use", "create_database", "drop_database", "alter_database", "server_state"}  # cut on restore
# Statements whose qualified names (`db`.`t`, also inside /*! */) are read as database qualifiers. View, trigger and
# routine bodies are left out (their `alias`.`column` look the same); their own names are parsed above, and what a
# body does runs as restore-check's temporary account, which has no rights outside the scratch database.
_ACTS_ON_TABLES = re.compile(r"^(?:DROP|ALTER\s+(?:ONLINE\s+|IGNORE\s+)*TABLE|RENAME|TRUNCATE|UPDATE|DELETE|INSERT|REPLACE"
                             r"|LOCK|CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMPORARY\s+|UNIQUE\s+|FULLTEXT\s+|SPATIAL\s+)*"
                             r"(?:TABLE|INDEX|SEQUENCE))\b", re.IGNORECASE)
_IDENT = r"(?:`(?:[^`]|``)+`|[A-Za-z_$][\w$]*)"
_QUALIFIED = re.compile(rf"(?<![\w$`.])({_IDENT})\s*\.\s*(?={_IDENT})")
_LITERALS = re.compile(r"'(?:[^'\\]|\\.|'')*(?:'|$)|\"(?:[^\"\\]|\\.|\"\")*(?:\"|$)", re.DOTALL)
# Where a name is a table reference: `UPDATE db.t`, `FROM db.t`, `JOIN db.t` … (an alias there is no alias).
_TABLE_POSITION = re.compile(r"(?<![\w$])(?:UPDATE|FROM|JOIN|INTO|TABLES?|USING|TO|AS|EXISTS|REFERENCES|TRUNCATE"
                             r"|IGNORE|LOW_PRIORITY|QUICK)\s*$", re.IGNORECASE)
_CLAUSE = re.compile(r"(?<![\w$`])(?:SET|WHERE|ON|VALUES?|SELECT|ORDER|LIMIT|PARTITION)(?![\w$`])|\(", re.IGNORECASE)
DEFINER_CLAUSE = re.compile(rb"DEFINER\s*=\s*(?:`(?:[^`]|``)*`|'(?:[^'\\]|\\.)*'|CURRENT_USER(?:\s*\(\s*\))?|[\w.$-]+)"
                            rb"(?:\s*@\s*(?:`(?:[^`]|``)*`|'(?:[^'\\]|\\.)*'|[\w.%$:-]+))?", re.IGNORECASE)


# --- the result documents ------------------------------------------------------------------------


@dataclass
class DumpTable:
    name: str
    database: str | None
    rows: int = 0  # tuples in its INSERT statements
    inserts: int = 0  # INSERT statements
    created: bool = False  # the dump holds its CREATE TABLE


@dataclass
class DumpObject:
    name: str
    kind: str  # view, trigger, procedure, function, event
    database: str | None
    table: str | None = None  # the table a trigger fires on
    summary: str = ""  # e.g. "AFTER INSERT ON film"


@dataclass
class DumpHeader:
    tool: str | None = None  # "MySQL dump 10.13", "MariaDB dump 10.19"; None: not written by mysqldump
    client: str | None = None  # the mysqldump's Distrib version
    server_version: str | None = None
    host: str | None = None
    database: str | None = None
    completed_at: str | None = None  # from the "-- Dump completed on …" trailer
    settings: dict[str, str] = field(default_factory=dict)  # SETs before the first object: UNIQUE_CHECKS=0 …
    features: list[str] = field(default_factory=list)  # what the body shows: extended-insert, add-locks …


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


@dataclass
class DumpManifest:
    """The sidecar a dump is checked against later: what it was when it was known to be good."""

    format_version: int
    kind: str
    file: str  # the dump's name, next to which the manifest lives
    size: int
    sha256: str
    md5: str
    written_at: str
    tables: dict[str, int]  # rows per table
    views: list[str] = field(default_factory=list)
    triggers: list[str] = field(default_factory=list)
    routines: list[str] = field(default_factory=list)


@dataclass
class DumpCheck(Judged):
    format_version: int
    kind: str
    verdict: str  # pass / fail
    title: str
    generated_at: str
    dump: DumpContents
    checks: list[Check]
    manifest: str | None  # the manifest compared against (or written)
    against: str | None  # the snapshot compared against
    summary: dict[str, Any]


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


class _Collector:
    """Turns the scanner's statements into tables, objects and row counts."""

    def __init__(self) -> None:
        self.database: str | None = None
        self.databases: list[str] = []
        self.tables: dict[tuple[str | None, str], DumpTable] = {}
        self.objects: dict[str, dict[tuple[str | None, str], DumpObject]] = {
            k: {} for k in ("view", "trigger", "routine", "event")}
        self.qualified: set[str] = set()
        self.unsafe: list[tuple[int, int, str]] = []
        self.client_commands: list[str] = []
        self.refused: list[str] = []
        self.named: list[tuple[str, str]] = []  # (database, statement) for every database a statement names
        self.created: list[str] = []  # CREATE DATABASE names
        self.dropped: list[str] = []  # DROP DATABASE names
        self.definers: list[tuple[int, int]] = []
        self.header = DumpHeader()
        self.features: set[str] = set()
        self.statements = 0
        self.last_table: str | None = None
        self.in_header = True

    def comment(self, text: str, offset: int) -> None:
        if offset > 16384 or not self.in_header:
            return
        for pattern, apply in ((_TOOL, self._tool), (_HOST, self._host), (_SERVER, self._server)):
            m = pattern.match(text)
            if m:
                apply(m)

    def client_command(self, text: str, offset: int) -> None:
        self.client_commands.append(text[:80])

    def _tool(self, m: re.Match[str]) -> None:
        self.header.tool, self.header.client = f"{m[1]} dump {m[2]}", m[3]

    def _host(self, m: re.Match[str]) -> None:
        self.header.host, self.header.database = m[1], m[2]

    def _server(self, m: re.Match[str]) -> None:
        self.header.server_version = m[1].strip()

    def statement(self, st: Statement) -> None:
        self.statements += 1
        if _ACTS_ON_TABLES.match(st.head):
            self._scan_qualifiers(st.head)
        if st.head[:6].upper() in ("CREATE", "ALTER ") and DEFINER_CLAUSE.search(st.head[:600].encode()):
            self.definers.append((st.start, st.end))
        for kind, pattern in _STATEMENTS:
            m = pattern.match(st.head)
            if m:
                getattr(self, f"_{kind}")(m, st)
                if kind != "set":
                    self.in_header = False
                return
        self.in_header = False

    def _scan_qualifiers(self, head: str) -> None:
        """Every `x`.`y` outside string literals names database x, unless x is an alias or a table of the dump
        qualifying a column (`UPDATE t AS a SET a.c = 1`) and never stands where a table does (`FROM x.y`)."""
        code = _LITERALS.sub("''", head)
        matches = list(_QUALIFIED.finditer(code))
        if not matches:
            return
        standalone = {_unquote(m[1]).lower() for m in re.finditer(rf"(?<![\w$`.])({_IDENT})(?!\s*\.)(?![\w$`])", code)}
        known = {name.lower() for _, name in self.tables}
        clause = _CLAUSE.search(code, 6)
        table_list_end = clause.start() if clause else len(code)  # `UPDATE a, db.t AS x SET …`: a list of tables
        for m in matches:
            name = _unquote(m[1])
            before = code[max(0, m.start() - 40) : m.start()]
            at_table = _TABLE_POSITION.search(before) is not None or (
                m.start() < table_list_end and before.rstrip().endswith(","))
            if not at_table and (name.lower() in standalone or name.lower() in known):
                continue
            self.qualified.add(name)
            self.named.append((name, head[:120]))

    def _qualified(self, qualifier: str | None, name: str) -> tuple[str | None, str]:
        if qualifier is not None and name:
            db = _unquote(qualifier)
            self.qualified.add(db)
            return db, _unquote(name)
        return self.database, _unquote(qualifier or name)

    def _touch_table(self, db: str | None, name: str) -> DumpTable:
        key = (db, name)
        if key not in self.tables:
            self.tables[key] = DumpTable(name, db)
        self.last_table = name if db == self.database or db is None else f"{db}.{name}"
        return self.tables[key]

    def _insert(self, m: re.Match[str], st: Statement) -> None:
        table = self._touch_table(*self._qualified(m[1], m[2] or ""))
        table.inserts += 1
        table.rows += st.tuples
        if st.tuples > 1:
            self.features.add("extended-insert")
        if st.head[m.end():].lstrip().startswith("("):
            self.features.add("complete-insert")

    def _table(self, m: re.Match[str], st: Statement) -> None:
        self._touch_table(*self._qualified(m[1], m[2] or "")).created = True

    def _object(self, kind: str, key: tuple[str | None, str], obj: DumpObject) -> None:
        self.objects[kind][key] = obj

    def _view(self, m: re.Match[str], st: Statement) -> None:
        db, name = self._qualified(m[1], m[2] or "")
        self._object("view", (db, name), DumpObject(name, "view", db))

    def _trigger(self, m: re.Match[str], st: Statement) -> None:
        db, name = self._qualified(m[1], m[2] or "")
        _, table = self._qualified(m[5], m[6] or "")
        summary = f"{m[3].upper()} {m[4].upper()} ON {table}"
        self._object("trigger", (db, name), DumpObject(name, "trigger", db, table, summary))

    def _routine(self, m: re.Match[str], st: Statement) -> None:
        db, name = self._qualified(m[2], m[3] or "")
        self._object("routine", (db, name), DumpObject(name, m[1].lower(), db))

    def _event(self, m: re.Match[str], st: Statement) -> None:
        db, name = self._qualified(m[1], m[2] or "")
        self._object("event", (db, name), DumpObject(name, "event", db))

    def _create_database(self, m: re.Match[str], st: Statement) -> None:
        self._database(_unquote(m[1]))
        self.created.append(_unquote(m[1]))
        self.named.append((_unquote(m[1]), st.head[:120]))
        self.features.add("databases")
        self.unsafe.append((st.start, st.end, "create_database"))

    def _use(self, m: re.Match[str], st: Statement) -> None:
        self._database(_unquote(m[1]))
        self.named.append((_unquote(m[1]), st.head[:120]))
        self.unsafe.append((st.start, st.end, "use"))

    def _database(self, name: str) -> None:
        self.database = name
        if name not in self.databases:
            self.databases.append(name)

    def _drop_database(self, m: re.Match[str], st: Statement) -> None:
        self.dropped.append(_unquote(m[1]))
        self.named.append((_unquote(m[1]), st.head[:120]))
        self.unsafe.append((st.start, st.end, "drop_database"))

    def _refused(self, m: re.Match[str], st: Statement) -> None:
        kind = " ".join(m[0].split()).upper()  # the keywords matched, e.g. CREATE USER, SET PASSWORD, FLUSH
        if kind.startswith("SELECT"):
            kind = "SELECT … INTO OUTFILE"
        elif kind.endswith("SONAME") and kind.startswith("CREATE"):
            kind = "CREATE FUNCTION … SONAME"
        self.refused.append(kind)

    def _alter_database(self, m: re.Match[str], st: Statement) -> None:
        self.unsafe.append((st.start, st.end, "alter_database"))

    def _server_state(self, m: re.Match[str], st: Statement) -> None:
        self.unsafe.append((st.start, st.end, "server_state"))

    def _lock(self, m: re.Match[str], st: Statement) -> None:
        self.features.add("add-locks")

    def _disable_keys(self, m: re.Match[str], st: Statement) -> None:
        self.features.add("disable-keys")

    def _drop_table(self, m: re.Match[str], st: Statement) -> None:
        self.features.add("add-drop-table")

    def _set(self, m: re.Match[str], st: Statement) -> None:
        if not self.in_header:
            return
        body = m[1]
        if body.upper().startswith("NAMES "):
            self.header.settings["NAMES"] = body.split()[1].strip("'\"")
            return
        for name, value in _ASSIGNMENT.findall(body):
            if not value.strip().startswith("@"):
                self.header.settings[name.upper()] = value.strip().strip("'")


def _unquote(name: str) -> str:
    if len(name) >= 2 and name[0] == name[-1] == "`":
        return name[1:-1].replace("``", "`")
    return name


def read_dump(path: str | os.PathLike[str], progress: bool = False) -> DumpContents:
    """Stream the dump once: checksums of the file as stored, and everything the SQL in it declares."""
    source = Path(path)
    if not source.is_file():
        raise DbauditError(f"dump file not found: {source}")
    started = time.monotonic()
    collector = _Collector()
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


def _contents(file: DumpFile, c: _Collector, end: ScanEnd, stream_problem: str | None,
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


def _own_database(header: DumpHeader, c: _Collector) -> str | None:
    """The database a dump is of: its header's (mysqldump writes `Database: x`), else the one it creates."""
    if header.database:
        return header.database
    created = list(dict.fromkeys(c.created))
    return created[0] if len(created) == 1 else None


def _keyed(objects: dict[tuple[str | None, str], DumpObject], many: bool) -> dict[str, DumpObject]:
    return {(f"{db}.{name}" if many and db else name): o
            for (db, name), o in sorted(objects.items(), key=lambda kv: (kv[0][0] or "", kv[0][1]))}


# --- checking --------------------------------------------------------------------------------------


def manifest_path(dump: str | os.PathLike[str]) -> Path:
    return Path(f"{os.fspath(dump)}{MANIFEST_SUFFIX}")


def check_dump(
    path: str | os.PathLike[str],
    *,
    md5: str | None = None,
    sha256: str | None = None,
    against: str | os.PathLike[str] | Snapshot | None = None,
    use_manifest: bool = True,
    title: str | None = None,
    progress: bool = False,
) -> DumpCheck:
    """Read the dump and judge it: checksum, completeness, its manifest, and a snapshot of its source."""
    expected = _expected_digests(md5, sha256)
    snapshot = load_snapshot(against) if isinstance(against, (str, os.PathLike)) else against
    manifest_file = manifest_path(path)
    manifest = load_manifest(manifest_file) if use_manifest and manifest_file.is_file() else None
    contents = read_dump(path, progress)
    checks = [*_integrity_checks(contents, expected), *_content_checks(contents)]
    if manifest is not None:
        checks += compare_with_manifest(contents, manifest)
    if snapshot is not None:
        checks += compare_with_snapshot(contents, snapshot)
    return _result(contents, checks, title or Path(path).name,
                   str(manifest_file) if manifest else None, _source_name(against))


def _source_name(against: str | os.PathLike[str] | Snapshot | None) -> str | None:
    if against is None:
        return None
    return f"snapshot of {against.database}" if isinstance(against, Snapshot) else os.fspath(against)


def _expected_digests(md5: str | None, sha256: str | None) -> dict[str, str]:
    expected = {}
    for name, value, length in (("md5", md5, 32), ("sha256", sha256, 64)):
        if value is None:
            continue
        digest = value.strip().split()[0].lower() if value.strip() else ""
        if not re.fullmatch(rf"[0-9a-f]{{{length}}}", digest):
            raise DbauditError(f"--{name} needs {length} hex digits, got {value!r}")
        expected[name] = digest
    return expected


def _integrity_checks(c: DumpContents, expected: dict[str, str]) -> list[Check]:
    checks = []
    for name, want in expected.items():
        got = getattr(c.file, name)
        if got == want:
            checks.append(Check("integrity", f"{name} checksum", "pass", f"{name} {got} as expected"))
        else:
            checks.append(Check("integrity", f"{name} checksum", "fail", f"{name} is {got}, expected {want}"))
    if c.complete:
        trailer = f"trailer: Dump completed on {c.header.completed_at}" if c.header.completed_at else (
            "no mysqldump trailer expected: every statement is terminated")
        checks.append(Check("integrity", "complete", "pass", trailer))
    else:
        reached = f" (last table reached: {c.last_table})" if c.last_table else ""
        checks.append(Check("integrity", "complete", "fail", f"truncated: {c.truncation}{reached}"))
    return checks


def _content_checks(c: DumpContents) -> list[Check]:
    if not c.tables:
        checks = [Check("content", "tables", "fail", "the dump creates or loads no table")]
    else:
        checks = [Check("content", "tables", "pass",
                        f"{len(c.tables)} tables, {c.total_rows:,} rows in INSERT statements")]
    return [*checks, safety_check(c)]


def safety_check(c: DumpContents) -> Check:
    """A backup holds tables and their objects; anything that runs on the client host or changes the server
    (accounts, privileges, plugins, replication) means the dump cannot be trusted, or restored to test it."""
    if c.refusals:
        return Check("content", "restore safety", "fail", f"not a plain backup, holds {'; '.join(c.refusals)}")
    if c.foreign_statements:
        shown = "; ".join(dict.fromkeys(s.split(": ", 1)[1][:80] for s in c.foreign_statements[:5]))
        more = f" (+{len(c.foreign_statements) - 5} more)" if len(c.foreign_statements) > 5 else ""
        return Check("content", "restore safety", "fail",
                     f"acts on other database(s) {', '.join(c.foreign_databases)} besides its own "
                     f"({c.own_database or 'none named'}): {shown}{more}")
    message = "no client commands and no account, privilege or server statements"
    if c.drops_own_database:
        message += (f"; warning: drops and recreates database {c.own_database} when loaded with mysql "
                    "(restore-check cuts those statements)")
    return Check("content", "restore safety", "pass", message)


def compare_with_manifest(c: DumpContents, m: DumpManifest) -> list[Check]:
    """The manifest records the dump as it was when known good: any difference means it changed since."""
    checks = []
    if (c.file.size, c.file.sha256) != (m.size, m.sha256):
        checks.append(Check("manifest", "file", "fail", f"the file changed since its manifest was written "
                            f"({m.size:,} → {c.file.size:,} bytes, sha256 {m.sha256[:12]} → {c.file.sha256[:12]})"))
    else:
        checks.append(Check("manifest", "file", "pass", f"size and sha256 as recorded on {m.written_at}"))
    counts = {name: t.rows for name, t in c.tables.items()}
    checks += count_checks("manifest", m.tables, counts, "the manifest")
    return checks


def compare_with_snapshot(c: DumpContents, snap: Snapshot) -> list[Check]:
    """Tables, row counts and objects of the dump against a snapshot of the database it was taken from."""
    tables = _tables_of(c, snap.database)
    want = {name: t.row_count for name, t in snap.tables.items() if t.row_count is not None}
    counts = {name: t.rows for name, t in tables.items()}
    checks = count_checks("snapshot", want, counts, "the snapshot")
    checks += [names_check("snapshot", kind, set(getattr(snap, kind)), set(getattr(c, kind)))
               for kind in ("views", "triggers", "routines")]
    return checks


def _tables_of(c: DumpContents, database: str) -> dict[str, DumpTable]:
    if len({t.database for t in c.tables.values()}) <= 1:
        return c.tables
    found = {t.name: t for t in c.tables.values() if t.database == database}
    if not found:
        raise DbauditError(f"the dump holds databases {c.databases} but not {database!r}, the snapshot's")
    return found


def count_checks(category: str, want: dict[str, int], got: dict[str, int], what: str,
                 place: str = "the dump") -> list[Check]:
    """Tables and row counts found in `place` against what `what` (manifest, snapshot) says."""
    checks = [Check(category, f"table {name}", "fail", f"table {name} is in {what} but not in {place}")
              for name in sorted(set(want) - set(got))]
    checks += [Check(category, f"table {name}", "fail", f"table {name} is in {place} but not in {what}")
               for name in sorted(set(got) - set(want))]
    differ = [(n, want[n], got[n]) for n in sorted(set(want) & set(got)) if want[n] != got[n]]
    checks += [Check(category, f"rows {n}", "fail", f"{n}: {w:,} rows in {what}, {g:,} in {place} ({g - w:+,})")
               for n, w, g in differ]
    if not checks:
        checks.append(Check(category, "tables and rows", "pass",
                            f"all {len(want)} tables in {place} with the same row counts as {what}"))
    return checks


def names_check(category: str, kind: str, want: set[str], got: set[str], what: str = "the snapshot",
                place: str = "the dump") -> Check:
    """Views, triggers or routines found in `place` against those `what` has."""
    missing, extra = sorted(want - got), sorted(got - want)
    if not missing and not extra:
        return Check(category, kind, "pass", f"{len(want)} {kind} in {place} as in {what}")
    parts = ([f"missing from {place}: {', '.join(missing)}"] if missing else []) + (
        [f"not in {what}: {', '.join(extra)}"] if extra else [])
    return Check(category, kind, "fail", f"{kind}: {'; '.join(parts)}")


def _result(c: DumpContents, checks: list[Check], title: str, manifest: str | None,
            against: str | None) -> DumpCheck:
    failed = sum(1 for x in checks if x.status == "fail")
    seconds = max(c.duration_seconds, 1e-6)
    return DumpCheck(
        format_version=FORMAT_VERSION, kind=KIND, verdict="fail" if failed else "pass", title=title,
        generated_at=_now(), dump=c, checks=checks, manifest=manifest, against=against,
        summary={"checks": len(checks), "checks_failed": failed, "tables": len(c.tables), "rows": c.total_rows,
                 "views": len(c.views), "triggers": len(c.triggers), "routines": len(c.routines),
                 "mb_per_second": round(c.file.sql_bytes / 1e6 / seconds, 1)},
    )


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --- the manifest ----------------------------------------------------------------------------------


def manifest_of(c: DumpContents) -> DumpManifest:
    return DumpManifest(
        format_version=FORMAT_VERSION, kind=MANIFEST_KIND, file=Path(c.file.path).name, size=c.file.size,
        sha256=c.file.sha256, md5=c.file.md5, written_at=_now(),
        tables={name: t.rows for name, t in c.tables.items()},
        views=sorted(c.views), triggers=sorted(c.triggers), routines=sorted(c.routines),
    )


def write_manifest(check: DumpCheck) -> Path:
    """Record a dump that passed every check; a failing dump (or one that no longer matches) gets none."""
    if not check.passed:
        raise DbauditError(f"not writing a manifest for {check.dump.file.path}: "
                           f"{check.failed_checks[0].message}")
    target = manifest_path(check.dump.file.path)
    serde.write_atomic(target, serde.dumps(manifest_of(check.dump)))
    return target


def load_manifest(path: str | os.PathLike[str]) -> DumpManifest:
    return serde.load_document(DumpManifest, path, MANIFEST_KIND, FORMAT_VERSION, "dump manifest")


def load_dump_check(path: str | os.PathLike[str]) -> DumpCheck:
    return serde.load_document(DumpCheck, path, KIND, FORMAT_VERSION, "dump-check result")


# --- the command -----------------------------------------------------------------------------------


def add_commands(sub: Any) -> None:
    cmd = sub.add_parser("dump-check", help="validate a mysqldump file (plain or .gz) before trusting it")
    cmd.add_argument("dump", help="the dump file")
    digest = cmd.add_mutually_exclusive_group()
    digest.add_argument("--md5", help="expected MD5 of the file (hex)")
    digest.add_argument("--sha256", help="expected SHA-256 of the file (hex)")
    cmd.add_argument("--against", help="snapshot JSON of the dumped database: compare tables and row counts")
    add_output_options(cmd)
    cmd.add_argument("--write-manifest", action="store_true",
                     help=f"after a passing check, write DUMP{MANIFEST_SUFFIX} for later checks")
    cmd.add_argument("--report", action="store_true", help="also render the HTML report (notebooks/backup_check)")
    cmd.add_argument("--out-dir", default="reports", help="report archive (with --report)")
    cmd.set_defaults(run=_dump_check_command)


def _dump_check_command(args: argparse.Namespace) -> int:
    check = check_dump(args.dump, md5=args.md5, sha256=args.sha256, against=args.against,
                       progress=sys.stderr.isatty())
    write_outputs(args, check, f"dbaudit dump-check {Path(args.dump).name}", check.checks)
    _print(check)
    if args.write_manifest:
        if not check.passed:
            # A failing verdict is a result (exit 1, --json written), not an input error: say why there is no manifest.
            print("manifest not written: the dump did not pass")
        elif check.manifest:
            print(f"manifest {check.manifest} already matches; left as it is")
        else:
            print(f"manifest written: {write_manifest(check)}")
    if args.report:
        import tempfile

        from dbaudit.backup_report import render_backup_check

        # The notebook shows this very check from a file: the dump (possibly many GB) is read once, not twice.
        with tempfile.TemporaryDirectory() as work:
            saved = Path(work) / "dump-check.json"
            check.save(saved)
            report = render_backup_check(args.dump, result=saved, out_dir=args.out_dir, progress=sys.stderr.isatty())
        print(f"report: {report.html}")
    return 0 if check.passed else 1


def _print(check: DumpCheck) -> None:
    c = check.dump
    server = c.header.server_version or "unknown server"
    tool = c.header.tool or "not a mysqldump header"
    print(f"{c.file.path}: {c.file.size:,} bytes{' (gzip)' if c.file.compressed else ''}, {tool}, {server}")
    print(f"  md5 {c.file.md5}  sha256 {c.file.sha256}")
    print(f"  {len(c.databases)} database(s) {', '.join(c.databases)}; {len(c.tables)} tables, {c.total_rows:,} rows; "
          f"{len(c.views)} views, {len(c.routines)} routines, {len(c.triggers)} triggers")
    for name, t in c.tables.items():
        print(f"    {name:<40} {t.rows:>12,}")
    for x in check.checks:
        print(f"{x.status.upper():<4} [{x.category}] {x.name}: {x.message}")
    print(f"verdict: {check.verdict.upper()} ({check.summary['mb_per_second']} MB/s)")
