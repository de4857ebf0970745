"""mydumper/myloader directories read into what they hold.

mydumper writes one directory per run: `metadata` (renamed from `metadata.partial` when the dump finished),
`<db>-schema-create.sql`, `<db>-schema-post.sql` (routines, events), per table `<db>.<table>-schema.sql` and
its data in `<db>.<table>.sql` or chunks `<db>.<table>.00000.sql` …, plus `-schema-view.sql` and
`-schema-triggers.sql` files; any of them may be compressed (`.gz`, `.zst`, told by content). myloader sends
each file to the server on its own, so each is read on its own with the MySQL scanner: its rows (INSERT
tuples), whether it is whole, and whatever makes it unsafe. Completeness comes from `metadata`: mydumper 0.10
writes `Finished dump at:` last; from 0.14 on it is an INI file whose table groups carry `rows = N`, compared
with the rows counted; its `[source]` group can make a newer myloader run replication commands, which is
flagged. A killed dump leaves only `metadata.partial`, and chunks that end cleanly but short: the metadata, not
the SQL, is what proves a mydumper dump whole.
"""

from __future__ import annotations

import configparser
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from dbaudit.backups.dumpfile import DumpContents, DumpFile, _contents
from dbaudit.backups.formats import DECOMPRESS_ERRORS, _listing_line, directory_files, file_digest, opened, stream_problem
from dbaudit.backups.sqlscan import SqlScanner, Statement
from dbaudit.backups.statements import Collector, DumpHeader, DumpObject, DumpTable
from dbaudit.core.checks import Check

_COMPRESSED = re.compile(r"\.(?:gz|zst|zstd)$")
_CHUNK = re.compile(r"^(.*?)((?:\.\d{5,})*)\.sql$")
_SCHEMA = re.compile(r"^(.*)-schema(?:-(view|triggers|sequence|post|create|create-tablespace))?\.sql$")
_GROUP = re.compile(r"^[`\"]((?:[^`\"]|``|\"\")+)[`\"]\.[`\"]((?:[^`\"]|``|\"\")+)[`\"]$")
_REPLICATION = ("myloader_exec_reset_replica", "myloader_exec_change_source", "myloader_exec_start_replica",
                "myloader_exec_reset_slave", "myloader_exec_change_master", "myloader_exec_start_slave")
# Session variables myloader may set from the metadata without changing how a file's SQL is tokenized or what it
# is allowed to do.
_SESSION_SAFE = {"foreign_key_checks", "unique_checks", "time_zone", "character_set_client", "character_set_results",
                 "collation_connection", "names", "sql_mode", "autocommit", "wait_timeout", "net_write_timeout",
                 "net_read_timeout", "innodb_lock_wait_timeout", "max_statement_time", "sql_log_bin"}
_QUOTE_MODES = re.compile(r"NO_BACKSLASH_ESCAPES|ANSI_QUOTES|\bANSI\b|ORACLE|POSTGRESQL|MSSQL|DB2|MAXDB", re.I)


@dataclass
class MydumperFile:
    path: Path
    kind: str  # data, schema, view, triggers, post, create, sequence, metadata, other
    database: str | None = None
    table: str | None = None


@dataclass
class Metadata:
    """What mydumper's metadata file says: when it finished, rows per table, what it asks of myloader."""

    finished: str | None = None
    started: str | None = None
    rows: dict[tuple[str, str], int] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)
    ini: bool = False


def _logical(name: str) -> str:
    return _COMPRESSED.sub("", name)


def classify(root: Path) -> list[MydumperFile]:
    """Every file of the directory, by its name (compression suffix dropped) and the databases it names."""
    names = [p for p in root.iterdir() if p.is_file()]
    databases = {m[1] for p in names if (m := _SCHEMA.match(_logical(p.name))) and m[2] == "create"}
    return [_classify(p, databases) for p in sorted(names)]


def _classify(path: Path, databases: set[str]) -> MydumperFile:
    name = _logical(path.name)
    if name == "metadata" or name.startswith("metadata."):
        return MydumperFile(path, "metadata")
    schema = _SCHEMA.match(name)
    if schema and schema[2] in ("create", "post", "create-tablespace") or (schema and schema[2] == "triggers"
                                                                         and schema[1] in databases):
        return MydumperFile(path, schema[2] or "schema", schema[1])
    if schema:
        db, table = _split(schema[1], databases)
        return MydumperFile(path, schema[2] or "schema", db, table)
    chunk = _CHUNK.match(name)
    if chunk and "." in chunk[1]:
        db, table = _split(chunk[1], databases)
        return MydumperFile(path, "data", db, table)
    return MydumperFile(path, "other")


def _split(qualified: str, databases: set[str]) -> tuple[str, str]:
    """`db.table` where either may hold dots: a database the dump creates wins, else the first dot splits."""
    for db in sorted(databases, key=len, reverse=True):
        if qualified.startswith(db + "."):
            return db, qualified[len(db) + 1 :]
    db, _, table = qualified.partition(".")
    return db, table


def read_metadata(files: list[MydumperFile]) -> tuple[Metadata, str | None]:
    """The metadata and, if the dump is not known to be finished, why."""
    found = {f.path.name: f.path for f in files if f.kind == "metadata"}
    if "metadata" not in found:
        if any(name.startswith("metadata.partial") for name in found):
            return Metadata(), "only metadata.partial: mydumper had not finished (killed, or still running)"
        return Metadata(), "no metadata file: not a finished mydumper dump"
    meta = parse_metadata(found["metadata"].read_text(encoding="utf-8", errors="replace"))
    if any(name.startswith("metadata.partial") for name in found):
        return meta, "metadata.partial left beside metadata: a second run did not finish in this directory"
    if meta.finished is None:
        return meta, "metadata has no 'Finished dump at' line: mydumper had not finished"
    return meta, None


def parse_metadata(text: str) -> Metadata:
    meta = Metadata()
    for line in text.splitlines():
        m = re.match(r"^#?\s*(Started|Finished) dump at:\s*(.+)$", line.strip())
        if m:
            setattr(meta, m[1].lower(), m[2].strip())
    if not re.search(r"^\s*\[", text, re.M):
        return meta  # mydumper ≤ 0.13: plain text, no row counts
    meta.ini = True
    parser = configparser.RawConfigParser(strict=False, delimiters=("=",), interpolation=None)
    try:
        parser.read_string(text)
    except configparser.Error as exc:
        meta.refused.append(f"metadata that myloader may read otherwise than dbaudit ({str(exc).splitlines()[0]})")
        return meta
    for section in parser.sections():
        _section(meta, section, parser[section])
    return meta


def _section(meta: Metadata, name: str, values: configparser.SectionProxy) -> None:
    group = _GROUP.match(name)
    if group and "rows" in values:
        try:
            meta.rows[(group[1], group[2])] = int(values["rows"])
        except ValueError:
            meta.refused.append(f"metadata [{name}] rows = {values['rows']!r} is no number")
    if name in ("source", "master") or name.startswith(("replication", "source.", "master.")):
        asked = [key for key in _REPLICATION if values.get(key, "0").strip() not in ("0", "")]
        if asked:
            meta.refused.append(f"metadata [{name}] makes myloader run replication commands ({', '.join(asked)})")
    if name == "config":
        if values.get("quote_character", values.get("quote-character", "BACKTICK")).strip().upper() == "DOUBLE_QUOTE":
            meta.refused.append("metadata quote_character = DOUBLE_QUOTE: ANSI_QUOTES SQL, which dbaudit's scanner "
                                "does not follow")
        if values.get("local-infile", "0").strip() not in ("0", ""):
            meta.refused.append("metadata local-infile = 1 (LOAD DATA LOCAL from the loading host)")
    if name == "myloader_session_variables":
        for key, value in values.items():
            if key.lower() not in _SESSION_SAFE or (key.lower() == "sql_mode" and _QUOTE_MODES.search(value)):
                meta.refused.append(f"metadata makes myloader SET {key}={value[:40]}")


@dataclass
class _Scanned:
    file: MydumperFile
    contents: DumpContents
    sha256: str
    md5: str


def scan_file(entry: MydumperFile, progress: bool) -> _Scanned:
    """One SQL file as myloader sends it: through the MySQL scanner, decompressed by content.

    DumpScan reads plain and gzip files; mydumper's zstd chunks need formats.opened until it reads them too, when
    this becomes `DumpScan(entry.path).contents()`."""
    started = time.monotonic()
    collector = Collector()

    def statement(st: Statement) -> None:
        collector.statement(st)

    scanner = SqlScanner(statement, collector.comment, collector.client_command)
    problem, size = None, 0
    with opened(entry.path, progress) as (reader, chunks, kind):
        try:
            for data in chunks:
                size += len(data)
                scanner.feed(data)
        except DECOMPRESS_ERRORS as exc:
            problem = stream_problem(exc, kind)
    end = scanner.finish()
    file = DumpFile(str(entry.path), entry.path.stat().st_size, reader.sha256.hexdigest(), reader.md5.hexdigest(),
                    kind is not None, size)
    contents = _contents(file, collector, end, problem, time.monotonic() - started)
    return _Scanned(entry, contents, file.sha256, file.md5)


def read_mydumper(root: Path, progress: bool = False) -> tuple[DumpContents, list[Check]]:
    started = time.monotonic()
    files = classify(root)
    meta, unfinished = read_metadata(files)
    scanned = [scan_file(f, progress) for f in files if f.kind not in ("metadata", "other")]
    digest = _digest(root, scanned)
    checks = _file_checks(scanned, files) + _metadata_checks(meta, scanned)
    contents = _aggregate(root, scanned, meta, unfinished, digest, started)
    return contents, checks


def _digest(root: Path, scanned: list[_Scanned]) -> DumpFile:
    """The directory's checksums, as formats.directory_digest computes them, reusing the hashes of the scan."""
    import hashlib

    known = {s.file.path: (s.sha256, s.md5) for s in scanned}
    sha, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    for path in directory_files(root):
        digests = known.get(path)
        if digests is None:
            d = file_digest(path)
            digests = (d.sha256, d.md5)
        relative = str(path.relative_to(root))
        sha.update(_listing_line(digests[0], relative))
        md5.update(_listing_line(digests[1], relative))
        size += path.stat().st_size
    return DumpFile(str(root), size, sha.hexdigest(), md5.hexdigest(),
                    any(s.contents.file.compressed for s in scanned), sum(s.contents.file.sql_bytes for s in scanned))


def _aggregate(root: Path, scanned: list[_Scanned], meta: Metadata, unfinished: str | None, digest: DumpFile,
               started: float) -> DumpContents:
    databases = sorted({s.file.database for s in scanned if s.file.database})
    many = len(databases) > 1
    tables: dict[str, DumpTable] = {}
    objects: dict[str, dict[str, DumpObject]] = {k: {} for k in ("views", "triggers", "routines", "events")}
    refusals: list[str] = []
    commands: list[str] = []
    foreign: list[str] = []
    for s in scanned:
        c, db = s.contents, s.file.database
        # Tables come from schema and data files only: a routine body in -schema-post.sql (no DELIMITER there) reads
        # as statements, CREATE TEMPORARY TABLE among them.
        for t in c.tables.values() if s.file.kind in ("schema", "data") else ():
            key = f"{db}.{t.name}" if many else t.name
            into = tables.setdefault(key, DumpTable(t.name, db))
            into.rows, into.inserts, into.created = into.rows + t.rows, into.inserts + t.inserts, into.created or t.created
        for kind, found in objects.items():
            for name, obj in getattr(c, kind).items():
                found[f"{db}.{name}" if many else name] = obj
        refusals += c.refused_statements
        commands += [f"{s.file.path.name}: {text}" for text in c.client_commands]
        foreign += [f for f in c.foreign_statements if f.split(":", 1)[0] not in databases]
    for name in objects["views"]:
        tables.pop(name, None)  # mydumper writes a stand-in table for each view, as mysqldump does
    problem = unfinished or next((f"{s.file.path.name}: {s.contents.truncation}" for s in scanned
                                  if not s.contents.complete), None)
    last = next((s.file.table for s in scanned if not s.contents.complete), None)
    header = DumpHeader(tool="mydumper", database=databases[0] if len(databases) == 1 else None,
                        completed_at=meta.finished, features=["metadata-rows"] if meta.rows else [])
    return DumpContents(
        file=digest, header=header, complete=problem is None, truncation=problem, last_table=last,
        statements=sum(s.contents.statements for s in scanned), databases=databases, tables=dict(sorted(tables.items())),
        views=objects["views"], triggers=objects["triggers"], routines=objects["routines"], events=objects["events"],
        qualified_databases=sorted({d for s in scanned for d in s.contents.qualified_databases}), unsafe_spans=[],
        duration_seconds=round(time.monotonic() - started, 3), client_commands=commands,
        refused_statements=[*meta.refused, *refusals], own_database=header.database, foreign_statements=foreign,
        format="mydumper",
    )


def _file_checks(scanned: list[_Scanned], files: list[MydumperFile]) -> list[Check]:
    """Each data file loads the table its name says, and nothing else; every table has its schema file."""
    checks = []
    for s in scanned:
        loads = sorted(t.name for t in s.contents.tables.values() if t.inserts)
        if s.file.kind == "data" and loads != [s.file.table]:
            checks.append(Check("integrity", f"file {s.file.path.name}", "fail",
                                f"{s.file.path.name} loads {', '.join(loads) or 'no table'}, not {s.file.table}"))
    schemas = {(f.database, f.table) for f in files if f.kind == "schema"}
    orphans = sorted({f"{f.database}.{f.table}" for f in files if f.kind == "data" and (f.database, f.table) not in schemas})
    if orphans:
        checks.append(Check("integrity", "schema files", "fail", f"data without a schema file: {', '.join(orphans[:5])}"))
    ignored = [f.path.name for f in files if f.kind == "other"]
    data = sum(1 for f in files if f.kind == "data")
    note = f"; not mydumper's, ignored: {', '.join(ignored[:5])}" if ignored else ""
    if not checks:
        checks.append(Check("integrity", "files", "pass", f"{len(scanned)} SQL files read, {data} data files{note}"))
    return checks


def _metadata_checks(meta: Metadata, scanned: list[_Scanned]) -> list[Check]:
    if not meta.rows:
        return []
    counted: dict[tuple[str, str], int] = {}
    for s in scanned:
        for t in s.contents.tables.values():
            if s.file.database is not None:
                key = (s.file.database, t.name)
                counted[key] = counted.get(key, 0) + t.rows
    checks = [Check("metadata", f"rows {db}.{t}", "fail",
                    f"{db}.{t}: {want:,} rows in mydumper's metadata, {counted.get((db, t), 0):,} in the data files "
                    f"({counted.get((db, t), 0) - want:+,})")
              for (db, t), want in sorted(meta.rows.items()) if counted.get((db, t), 0) != want]
    if not checks:
        checks.append(Check("metadata", "rows", "pass",
                            f"all {len(meta.rows)} tables hold the rows mydumper's metadata records"))
    return checks
