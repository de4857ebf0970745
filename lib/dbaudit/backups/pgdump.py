"""PostgreSQL pg_dump output read into what it holds: plain scripts, and custom, tar and directory archives.

A plain dump is a psql script: `psqlscan.PsqlScanner` splits it as psql would, and `PgCollector` records its
header, tables with their rows (exactly: one COPY text line is one row, `\\.` ends the data), views, routines,
triggers and sequences, and everything that makes it unsafe to restore (meta-commands, statements that act on
the server, its roles or other databases, code that reaches the server's files). An archive (`pg_dump -Fc`,
`-Ft`, `-Fd`) is listed with `pg_restore --list` and read whole through `pg_restore -f -`, which writes the
very script a restore would run without connecting anywhere; that script goes through the same scanner, so a
cut or corrupt archive, which `--list` still reads, fails on its data. The result is a `DumpContents`, the
document dump-check judges for every format.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from dbaudit.backups.dumpfile import CHUNK, DumpContents, DumpFile
from dbaudit.backups.psqlscan import CopyData, MetaCommand, PgStatement, PsqlScanner
from dbaudit.backups.statements import DumpHeader, DumpObject, DumpTable
from dbaudit.core.checks import Check
from dbaudit.core.errors import DbauditError

FOOTER = "PostgreSQL database dump complete"
_NAME = r'(?:"(?:[^"]|"")+"|[^\W\d][\w$]*)'
_QNAME = rf"({_NAME}(?:\s*\.\s*{_NAME})*)"
_I = re.IGNORECASE
_OBJECTS = [(kind, re.compile(pattern, _I)) for kind, pattern in [
    ("table", rf"^CREATE\s+(?:(?:GLOBAL|LOCAL)\s+)?(?:(?:TEMP|TEMPORARY|UNLOGGED)\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?{_QNAME}"),
    ("view", rf"^CREATE\s+(?:OR\s+REPLACE\s+)?(?:(?:TEMP|TEMPORARY)\s+)?(?:RECURSIVE\s+)?VIEW\s+{_QNAME}"),
    ("matview", rf"^CREATE\s+MATERIALIZED\s+VIEW\s+(?:IF\s+NOT\s+EXISTS\s+)?{_QNAME}"),
    ("routine", rf"^CREATE\s+(?:OR\s+REPLACE\s+)?(FUNCTION|PROCEDURE|AGGREGATE)\s+{_QNAME}\s*\("),
    ("trigger", rf"^CREATE\s+(?:OR\s+REPLACE\s+)?(?:CONSTRAINT\s+)?TRIGGER\s+({_NAME})\s+(BEFORE|AFTER|INSTEAD\s+OF)\s+"
                rf"(.+?)\s+ON\s+{_QNAME}"),
    ("sequence", rf"^CREATE\s+(?:(?:TEMP|TEMPORARY|UNLOGGED)\s+)?SEQUENCE\s+(?:IF\s+NOT\s+EXISTS\s+)?{_QNAME}"),
    ("schema", rf"^CREATE\s+SCHEMA\s+(?:IF\s+NOT\s+EXISTS\s+)?({_NAME})"),
    ("insert", rf"^INSERT\s+INTO\s+{_QNAME}"),
]]  # fmt: skip
_IDENTITY_SEQUENCE = re.compile(rf"\bAS\s+IDENTITY\s*\(\s*SEQUENCE\s+NAME\s+{_QNAME}", _I)
_COPY_TARGET = re.compile(rf"^COPY\s+(?:BINARY\s+)?(?:ONLY\s+)?{_QNAME}\s*(?:\((.*?)\))?\s*FROM\s+STDIN\s*(.*)$", _I | re.S)
# Statements that reach beyond the restored database (its server, roles, files, other databases) or run code at
# restore time: a dump holding one is not a plain backup. Matched on the statement's code, strings collapsed.
_REFUSED = re.compile(
    r"^(?:(?:CREATE|ALTER|DROP)\s+(?:USER\s+MAPPING|ROLE|USER|GROUP|TABLESPACE|SUBSCRIPTION|SERVER"
    r"|FOREIGN\s+DATA\s+WRAPPER|EVENT\s+TRIGGER|ACCESS\s+METHOD)\b|CREATE\s+FOREIGN\s+TABLE\b|ALTER\s+SYSTEM\b"
    r"|ALTER\s+EXTENSION\b|IMPORT\s+FOREIGN\s+SCHEMA\b|DROP\s+OWNED\b|REASSIGN\s+OWNED\b|DO\b|CALL\b|LOAD\b"
    r"|(?:CREATE\s+(?:OR\s+REPLACE\s+)?(?:TRUSTED\s+)?(?:PROCEDURAL\s+)?LANGUAGE)\b"
    r"|SET\s+(?:SESSION\s+|LOCAL\s+)?(?:SESSION\s+AUTHORIZATION|ROLE)\b|RESET\s+(?:ROLE|SESSION\s+AUTHORIZATION|ALL)\b"
    r"|SET\s+(?:SESSION\s+|LOCAL\s+)?(?:session_authorization|role|session_replication_role|\w*preload_libraries"
    r"|dynamic_library_path)\b)", _I)
_DATABASE = re.compile(rf"^(?:CREATE|ALTER|DROP)\s+DATABASE\s+(?:IF\s+EXISTS\s+)?({_NAME})"
                       rf"|^(?:COMMENT|SECURITY\s+LABEL)\b.*?\bON\s+DATABASE\s+({_NAME})"
                       rf"|^(?:GRANT|REVOKE)\b.*?\bON\s+DATABASE\s+({_NAME})", _I)
# The statements pg_dump and pg_restore write (first words); anything else is no part of a backup.
_KNOWN = re.compile(r"^(?:SET|SELECT|CREATE|ALTER|COMMENT|SECURITY\s+LABEL|GRANT|REVOKE|COPY|INSERT|DROP"
                    r"|REFRESH\s+MATERIALIZED\s+VIEW|TRUNCATE|BEGIN|COMMIT|END|START\s+TRANSACTION|ROLLBACK)\b", _I)
_DUMP_SELECT = re.compile(r"^SELECT\s+pg_catalog\s*\.\s*(?:setval|lo_create|lo_open|lowrite|lo_close|lo_unlink"
                          r"|set_config\s*\(\s*'search_path')\s*\(?", _I)
# Functions that read or write the server's files, signal its processes, change its configuration or connect out:
# named anywhere in a statement's code (not in function bodies, which are strings) they refuse the dump.
_SERVER_FUNCTIONS = re.compile(
    r'(?<![\w$])"?(pg_read_file|pg_read_binary_file|pg_ls_\w+|pg_stat_file|lo_import|lo_export|pg_file_\w+'
    r"|dblink\w*|pg_terminate_backend|pg_cancel_backend|pg_reload_conf|pg_rotate_logfile|pg_promote|pg_switch_wal"
    r"|pg_create_restore_point|pg_backup_start|pg_start_backup|pg_\w*replication_\w+|pg_logical_\w+|pg_sleep\w*"
    r")\b", _I)
_SET_CONFIG = re.compile(r'(?<![\w$])"?set_config\b', _I)
_SEARCH_PATH = re.compile(r"^SELECT pg_catalog\.set_config\('search_path', '[^']*', false\);$")
_GRANT = re.compile(r"^(GRANT|REVOKE)\b(.*?)\b(?:(ON)\b(.*?))?\b(TO|FROM)\b(.*)$", _I | re.S)
_GRANT_SCOPE_REFUSED = re.compile(r"^\s*(?:TABLESPACE|FOREIGN\s+SERVER|FOREIGN\s+DATA\s+WRAPPER|PARAMETER)\b", _I)
_LANGUAGE = re.compile(rf"\bLANGUAGE\s+({_NAME}|'')", _I)
_LANGUAGE_STRING = re.compile(r"\bLANGUAGE\s+'([^']*)'", _I)
_SAFE_LANGUAGES = {"sql", "plpgsql", "plperl", "pltcl"}  # trusted: they cannot reach the server's files or programs
# Extensions PostgreSQL 15 marks trusted (a database owner may create them), and the trusted languages.
_TRUSTED_EXTENSIONS = {"btree_gin", "btree_gist", "citext", "cube", "dict_int", "fuzzystrmatch", "hstore", "intarray",
                       "isn", "lo", "ltree", "pgcrypto", "pg_trgm", "seg", "tablefunc", "tcn", "tsm_system_rows",
                       "tsm_system_time", "unaccent", "uuid-ossp", "plpgsql", "plperl", "pltcl"}
_EXTENSION = re.compile(rf"^CREATE\s+EXTENSION\s+(?:IF\s+NOT\s+EXISTS\s+)?({_NAME})", _I)
_SETTING = re.compile(r"^SET\s+(?:SESSION\s+|LOCAL\s+)?(\w+)\s*(?:=|\bTO\b)\s*(.*)$|^SET\s+(NAMES)\s+(.*)$", _I | re.S)
_RESET = re.compile(r"^RESET\s+(\w+)", _I)
# Client encodings whose every multi-byte character has bytes >= 0x80 only, so no quote or backslash hides in
# one (SJIS, BIG5, GBK, UHC, GB18030 and JOHAB have ASCII trail bytes: psql lexes them differently). Names as
# PostgreSQL cleans them: lower case, letters and digits only.
_SAFE_ENCODINGS = {"utf8", "unicode", "sqlascii", "muleinternal", "eucjp", "euccn", "euckr", "euctw", "eucjis2004",
                   "koi8", "koi8r", "koi8u", "win", "alt", "abc", "tcvn", "tcvn5712", "vscii",
                   *(f"latin{n}" for n in range(1, 11)), *(f"iso8859{n}" for n in range(1, 17)),
                   *(f"win{n}" for n in (866, 874, *range(1250, 1259))),
                   *(f"windows{n}" for n in (866, 874, *range(1250, 1259)))}
_HEADER = [(re.compile(p), key) for p, key in [(r"^Dumped from database version (.+)$", "server_version"),
                                                 (r"^Dumped by pg_dump version (.+)$", "client")]]
_RESTRICT = re.compile(r"^\\(un)?restrict ([A-Za-z0-9]+)\s*$")
_CONNECT = re.compile(r"^\\(?:connect|c)\s+(?:-reuse-previous=\w+\s+)?(\"(?:[^\"]|\"\")+\"|[A-Za-z0-9_]+)\s*$")


def unquote(name: str) -> str:
    """"a""b" -> a"b; bare names fold to lower case as PostgreSQL does."""
    if len(name) >= 2 and name[0] == name[-1] == '"':
        return name[1:-1].replace('""', '"')
    return name.lower()


def split_name(qualified: str) -> tuple[str | None, str]:
    parts = [unquote(p.strip()) for p in re.findall(rf"{_NAME}", qualified)]
    return (parts[-2] if len(parts) > 1 else None), parts[-1]


@dataclass
class PgCollector:
    """Turns the psql scanner's statements, meta-commands and COPY blocks into the dump's contents."""

    scanner: PsqlScanner | None = None
    header: DumpHeader = field(default_factory=DumpHeader)
    tables: dict[tuple[str | None, str], DumpTable] = field(default_factory=dict)
    objects: dict[str, dict[tuple[str | None, str], DumpObject]] = field(
        default_factory=lambda: {k: {} for k in ("view", "trigger", "routine", "sequence")})
    schemas: list[str] = field(default_factory=list)
    client_commands: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    named: list[tuple[str, str]] = field(default_factory=list)  # (database, statement)
    created: list[str] = field(default_factory=list)
    unsafe: list[tuple[int, int, str]] = field(default_factory=list)  # \restrict lines, \connect, CREATE DATABASE
    owner_spans: list[tuple[int, int]] = field(default_factory=list)  # ALTER … OWNER TO: a non-superuser restore drops them
    grantees: list[str] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)  # COPY data whose rows do not all have the listed columns
    statements: int = 0
    last_table: str | None = None
    in_header: bool = True
    footer: bool = False
    restrict_key: str | None = None
    restricted: bool = False

    # --- callbacks ---------------------------------------------------------------------------------

    def comment(self, text: str, offset: int) -> None:
        if text == FOOTER:
            self.footer = True
        elif self.in_header and text == "PostgreSQL database dump":
            self.header.tool = self.header.tool or "pg_dump"
        elif self.in_header:
            for pattern, key in _HEADER:
                m = pattern.match(text)
                if m:
                    setattr(self.header, key, m[1].strip())
                    if key == "client":
                        self.header.tool = f"pg_dump {m[1].split()[0]}"

    def unsure(self, why: str, offset: int) -> None:
        self.refused.append(f"psql lexing dbaudit cannot follow exactly ({why})")

    def meta(self, m: MetaCommand) -> None:
        restrict = _RESTRICT.match(m.text)
        if restrict and m.whole_line and self._restrict(restrict[1] is not None, restrict[2]):
            self.unsafe.append((m.start, m.end, "restrict"))
            return
        connect = _CONNECT.match(m.text)
        if connect:
            database = unquote(connect[1]) if connect[1].startswith('"') else connect[1]
            self.named.append((database, m.text[:120]))
            self.unsafe.append((m.start, m.end, "connect"))
            return
        shown = m.text if m.text.startswith("\\") else f"psql variable {m.text}"
        self.client_commands.append(shown[:80])

    def _restrict(self, closing: bool, key: str) -> bool:
        """pg_dump (15.14+) opens its script with \\restrict KEY and closes it with \\unrestrict KEY (with -C also
        around its \\connect); any other use, or another key, is no part of a dump."""
        if closing:
            if key != self.restrict_key or not self.restricted:
                return False
            self.restricted = False
            return True
        if self.restrict_key is None and self.statements == 0:
            self.restrict_key = key
        elif key != self.restrict_key or self.restricted:
            return False
        self.restricted = True
        return True

    def statement(self, st: PgStatement) -> None:
        self.statements += 1
        self.footer = False  # the footer must come after every statement
        code = st.code
        if not st.code_complete and not code[:6].upper().startswith(("INSERT", "CREATE")):
            self.refused.append(f"a statement longer than dbaudit reads whole ({code[:40]} …)")
        self._safety(st, code)
        for kind, pattern in _OBJECTS:
            m = pattern.match(code)
            if m:
                getattr(self, f"_{kind}")(m, st)
                break
        if self.in_header and code[:3].upper() != "SET" and not _DUMP_SELECT.match(st.head):
            self.in_header = False

    def copy(self, data: CopyData) -> None:
        self.footer = False
        m = _COPY_TARGET.match(data.statement.code)
        if m is None:
            return  # refused by _copy_statement already
        table = self._touch_table(*split_name(m[1]))
        table.rows += data.rows
        table.inserts += 1
        columns = len(re.findall(rf"{_NAME}", m[2])) if m[2] is not None else None
        if data.terminated and columns and data.tabs != data.rows * (columns - 1):
            self.malformed.append(f"{self.last_table}: {data.rows:,} rows with {data.tabs:,} column separators "
                                  f"for {columns} columns")

    # --- classification ----------------------------------------------------------------------------

    def _safety(self, st: PgStatement, code: str) -> None:
        refused = _REFUSED.match(code)
        if refused:
            self.refused.append(" ".join(refused[0].split()).upper())
        elif not _KNOWN.match(code):
            self.refused.append(f"{' '.join(code.split()[:2]).upper()} (pg_dump writes none)")
        database = _DATABASE.match(code)
        if database:
            name = unquote(next(g for g in database.groups() if g))
            self.named.append((name, st.head[:120]))
            if code[:6].upper() == "CREATE":
                self.created.append(name)
            self.unsafe.append((st.start, st.end, "database"))
        server = _SERVER_FUNCTIONS.search(code)
        if server:
            self.refused.append(f"{server[1].lower()}() (reaches the server's files, processes or settings)")
        if _SET_CONFIG.search(code) and not _SEARCH_PATH.match(st.head):
            self.refused.append("set_config() other than pg_dump's search_path")
        word = code.split(None, 1)[0].upper() if code.split() else ""
        check = {"SET": self._set, "RESET": self._set, "SELECT": self._select, "COPY": self._copy_statement,
                 "GRANT": self._grant, "REVOKE": self._grant, "ALTER": self._alter, "CREATE": self._create}.get(word)
        if check is not None:
            check(st, code)

    def _set(self, st: PgStatement, code: str) -> None:
        """SETs that change how psql lexes the rest (standard_conforming_strings, client_encoding) are followed
        when their value is certain, refused otherwise."""
        reset = _RESET.match(code)
        if reset and reset[1].lower() in ("standard_conforming_strings", "client_encoding", "names"):
            self.refused.append(f"RESET {reset[1]} (psql's lexing then depends on the server's default)")
            return
        m = _SETTING.match(st.head)
        if m is None:
            return
        name, value = (m[1] or m[3]).lower(), (m[2] or m[4] or "").strip().rstrip(";").strip()
        plain = value.strip("'\"").lower()
        local = bool(re.match(r"^SET\s+LOCAL\b", code, _I))
        if name == "standard_conforming_strings":
            if plain in ("on", "true", "1", "yes") and not local:
                self._standard(True)
            elif plain in ("off", "false", "0", "no") and not local:
                self._standard(False)
            else:
                self.refused.append(f"SET standard_conforming_strings {value} (dbaudit cannot tell how psql lexes on)")
        elif name in ("client_encoding", "names") and (local or re.sub(r"[^a-z0-9]", "", plain) not in _SAFE_ENCODINGS):
            self.refused.append(f"SET client_encoding {value} (an encoding psql lexes differently, or unknown)")
        if self.in_header:
            self.header.settings[name] = value.strip("'")

    def _standard(self, on: bool) -> None:
        if self.scanner is not None:
            self.scanner.standard_strings = on

    def _select(self, st: PgStatement, code: str) -> None:
        if not _DUMP_SELECT.match(st.head):
            self.refused.append("SELECT (runs functions at restore time; pg_dump writes only setval, set_config, lo_*)")

    def _copy_statement(self, st: PgStatement, code: str) -> None:
        m = _COPY_TARGET.match(code)
        if m is None:
            kind = ("COPY … PROGRAM" if re.search(r"\bPROGRAM\b", code, _I) else
                    "COPY … TO" if re.search(r"\bTO\b", code, _I) else "COPY … FROM a file")
            self.refused.append(kind)
        elif m[3].strip().rstrip(";").strip():
            self.refused.append(f"COPY … FROM stdin {m[3].strip()[:40]} (not pg_dump's text format: rows cannot be counted)")
        elif split_name(m[1]) not in self.tables:
            # psql reads the lines after a failing COPY as commands: data for a table the dump never creates is that.
            self.refused.append(f"COPY into {m[1]}, a table the dump does not create (psql reads the data of a "
                                "failing COPY as commands)")

    def _grant(self, st: PgStatement, code: str) -> None:
        """Privileges on the dump's own objects (GRANT … ON … TO role) are part of a database; role membership
        (GRANT role TO role) and privileges on cluster-wide objects are not."""
        m = _GRANT.match(code)
        if m is None:
            return
        if m[3] is None:
            self.refused.append(f"{m[1].upper()} role membership")
        elif _GRANT_SCOPE_REFUSED.match(m[4]):
            self.refused.append(f"{m[1].upper()} … ON {' '.join(m[4].split()[:2]).upper()}")
        else:
            for role in re.findall(rf"{_NAME}", re.split(r"\b(?:WITH|GRANTED\s+BY|CASCADE|RESTRICT)\b", m[6], flags=_I)[0]):
                name = unquote(role)
                if name not in ("public", "group") and name not in self.grantees:
                    self.grantees.append(name)

    def _alter(self, st: PgStatement, code: str) -> None:
        if re.search(r"\bOWNER\s+TO\b", code, _I):
            self.owner_spans.append((st.start, st.end))
        sequence = _IDENTITY_SEQUENCE.search(code)
        if sequence:
            schema, name = split_name(sequence[1])
            self.objects["sequence"][(schema, name)] = DumpObject(name, "sequence", schema)

    def _create(self, st: PgStatement, code: str) -> None:
        extension = _EXTENSION.match(code)
        if extension and unquote(extension[1]) not in _TRUSTED_EXTENSIONS:
            self.refused.append(f"CREATE EXTENSION {unquote(extension[1])} (not a trusted extension)")
        if re.match(r"^CREATE\s+(?:OR\s+REPLACE\s+)?(?:FUNCTION|PROCEDURE)\b", code, _I):
            self._language(st, code)

    def _language(self, st: PgStatement, code: str) -> None:
        m = _LANGUAGE.search(code)
        if m is None:
            if not re.search(r"\bBEGIN\s+ATOMIC\b|\bRETURN\b", code, _I):
                self.refused.append("CREATE FUNCTION without a LANGUAGE dbaudit can read")
            return
        language = m[1]
        if language == "''":
            quoted = _LANGUAGE_STRING.search(st.head)
            language = quoted[1] if quoted else "?"
        language = unquote(language)
        if language not in _SAFE_LANGUAGES:
            self.refused.append(f"CREATE FUNCTION … LANGUAGE {language} (untrusted: runs as the server's own user)")

    # --- objects -------------------------------------------------------------------------------------

    def _touch_table(self, schema: str | None, name: str) -> DumpTable:
        key = (schema, name)
        if key not in self.tables:
            self.tables[key] = DumpTable(name, schema)
        self.last_table = name if schema in (None, "public") else f"{schema}.{name}"
        return self.tables[key]

    def _table(self, m: re.Match[str], st: PgStatement) -> None:
        self._touch_table(*split_name(m[1])).created = True

    def _insert(self, m: re.Match[str], st: PgStatement) -> None:
        if not re.search(r"\bVALUES\b", st.code, _I) or st.tuples == 0:
            self.refused.append("INSERT … SELECT (pg_dump --inserts writes VALUES)")
            return
        table = self._touch_table(*split_name(m[1]))
        table.rows += st.tuples
        table.inserts += 1

    def _view(self, m: re.Match[str], st: PgStatement, kind: str = "view") -> None:
        schema, name = split_name(m[1])
        self.objects["view"][(schema, name)] = DumpObject(name, kind, schema)

    def _matview(self, m: re.Match[str], st: PgStatement) -> None:
        self._view(m, st, "materialized view")

    def _routine(self, m: re.Match[str], st: PgStatement) -> None:
        schema, name = split_name(m[2])
        arguments = identity_arguments(st.code[m.end() - 1 :])
        key = f"{name}({arguments})"
        self.objects["routine"][(schema, key)] = DumpObject(key, m[1].lower(), schema)

    def _trigger(self, m: re.Match[str], st: PgStatement) -> None:
        schema, table = split_name(m[4])
        name = unquote(m[1])
        events = " OR ".join(e.split()[0].upper() for e in re.split(r"\s+OR\s+", m[3], flags=_I))
        summary = f"{' '.join(m[2].split()).upper()} {events} ON {table}"
        key = f"{table}.{name}"
        self.objects["trigger"][(schema, key)] = DumpObject(key, "trigger", schema, table, summary)

    def _sequence(self, m: re.Match[str], st: PgStatement) -> None:
        schema, name = split_name(m[1])
        self.objects["sequence"][(schema, name)] = DumpObject(name, "sequence", schema)

    def _schema(self, m: re.Match[str], st: PgStatement) -> None:
        self.schemas.append(unquote(m[1]))


def identity_arguments(text: str) -> str:
    """`(a integer DEFAULT 1, OUT b text)` as pg_get_function_identity_arguments writes it: defaults and OUT
    arguments of functions dropped."""
    depth, current, parts, quote = 0, "", [], ""
    for ch in text:
        if quote:
            current += ch
            quote = "" if ch == quote else quote
            continue
        if ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
            if depth == 1:
                continue
        elif ch == ")":
            depth -= 1
            if depth == 0:
                break
        elif ch == "," and depth == 1:
            parts.append(current)
            current = ""
            continue
        current += ch
    parts.append(current)
    kept = [re.split(r"\s+DEFAULT\s+|\s*=\s*", p.strip(), maxsplit=1, flags=_I)[0] for p in parts if p.strip()]
    return ", ".join(" ".join(p.split()) for p in kept if not re.match(r"^OUT\s", p, _I))


def new_collector() -> tuple[PgCollector, PsqlScanner]:
    collector = PgCollector()
    scanner = PsqlScanner(collector.statement, collector.meta, collector.copy, collector.comment, collector.unsure)
    collector.scanner = scanner
    return collector, scanner


def scan_script(chunks: Iterator[bytes]) -> tuple[PgCollector, str | None, int]:
    """Feed a psql script through the scanner: its collector, why it looks cut off (or None) and its length."""
    collector, scanner = new_collector()
    size = 0
    for data in chunks:
        size += len(data)
        scanner.feed(data)
    end = scanner.finish()
    return collector, end.problem, size


def truncation_of(c: PgCollector, problem: str | None) -> str | None:
    if problem is not None:
        return problem
    if not c.footer:
        return f"the '-- {FOOTER}' footer pg_dump writes last is missing"
    if c.restricted:
        return "the closing \\unrestrict line pg_dump writes after its footer is missing"
    return None


def contents_of(c: PgCollector, file: DumpFile, form: str, problem: str | None, started: float,
                database: str | None = None) -> DumpContents:
    """The dump-check document of a pg_dump, whatever its format."""
    schemas = {schema for schema, _ in c.tables} | {schema for kind in c.objects.values() for schema, _ in kind}
    many = len(schemas - {None}) > 1

    def keyed(items: dict[tuple[str | None, str], Any]) -> dict[str, Any]:
        ordered = sorted(items.items(), key=lambda kv: (kv[0][0] or "", kv[0][1]))
        return {(f"{s}.{n}" if many and s else n): o for (s, n), o in ordered}

    tables = keyed(c.tables)
    created = list(dict.fromkeys(c.created))
    own = database or (created[0] if len(created) == 1 else None)
    truncation = truncation_of(c, problem)
    return DumpContents(
        file=file, header=c.header, complete=truncation is None, truncation=truncation, last_table=c.last_table,
        statements=c.statements, databases=[own] if own else [], tables=tables, views=keyed(c.objects["view"]),
        triggers=keyed(c.objects["trigger"]), routines=keyed(c.objects["routine"]), events={},
        qualified_databases=sorted({db for db, _ in c.named}), unsafe_spans=c.unsafe,
        duration_seconds=round(time.monotonic() - started, 3), client_commands=c.client_commands,
        refused_statements=c.refused, own_database=None,
        # pg_dump -C writes CREATE DATABASE and \connect to it: psql then restores into that database, not the one
        # it was started on. A plain dump names no database, so every one named is another.
        foreign_statements=[f"{db}: {text}" for db, text in c.named], drops_own_database=False,
        definer_spans=c.owner_spans, format=form, sequences=keyed(c.objects["sequence"]),
    )


def format_checks(c: PgCollector, contents: DumpContents) -> list[Check]:
    """What only a pg_dump can be asked: whole COPY rows, and how psql must run it."""
    checks = []
    if c.malformed:
        checks.append(Check("integrity", "copy rows", "fail", f"COPY data with broken rows: {'; '.join(c.malformed[:3])}"))
    note = "assumes psql -X -v ON_ERROR_STOP=1 (without it, psql reads the data of a COPY that fails as commands)"
    if c.grantees:
        note += f"; grants privileges to role(s) {', '.join(c.grantees[:8])}"
    checks.append(Check("content", "psql restore", "pass", note))
    return checks


# --- plain scripts ---------------------------------------------------------------------------------


def read_pg_plain(file: DumpFile, chunks: Iterator[bytes], stream_problem: list[str], started: float
                  ) -> tuple[DumpContents, list[Check]]:
    """A plain pg_dump (compressed or not): `chunks` is its decompressed text; `file` is filled as it is read."""
    collector, problem, size = scan_script(chunks)
    file.sql_bytes = size
    contents = contents_of(collector, file, "pg_dump plain", stream_problem[0] if stream_problem else problem, started)
    return contents, format_checks(collector, contents)


# --- archives (custom, tar, directory) --------------------------------------------------------------


@dataclass
class TocEntry:
    dump_id: int
    desc: str  # TABLE, TABLE DATA, VIEW, FUNCTION, SEQUENCE …
    schema: str | None
    tag: str
    owner: str


_TOC_DESCS = sorted(["TABLE DATA", "TABLE", "VIEW", "MATERIALIZED VIEW DATA", "MATERIALIZED VIEW", "SEQUENCE SET",
                     "SEQUENCE OWNED BY", "SEQUENCE", "FUNCTION", "PROCEDURE", "AGGREGATE", "TRIGGER", "SCHEMA",
                     "TYPE", "DOMAIN", "DEFAULT ACL", "DEFAULT", "CONSTRAINT", "FK CONSTRAINT", "INDEX", "COMMENT",
                     "ACL", "EXTENSION", "BLOB", "BLOBS", "LARGE OBJECT", "ROW SECURITY", "POLICY", "RULE",
                     "PUBLICATION", "PUBLICATION TABLE", "SUBSCRIPTION", "EVENT TRIGGER", "CAST", "COLLATION",
                     "CONVERSION", "OPERATOR", "OPERATOR CLASS", "OPERATOR FAMILY", "TEXT SEARCH CONFIGURATION",
                     "TEXT SEARCH DICTIONARY", "TEXT SEARCH PARSER", "TEXT SEARCH TEMPLATE", "FOREIGN TABLE",
                     "SERVER", "USER MAPPING", "FOREIGN DATA WRAPPER", "PROCEDURAL LANGUAGE", "ENCODING",
                     "STDSTRINGS", "SEARCHPATH", "DATABASE", "DATABASE PROPERTIES", "STATISTICS", "TABLE ATTACH",
                     "INDEX ATTACH", "SHELL TYPE", "TRANSFORM", "ACCESS METHOD", "CHECK CONSTRAINT"],
                    key=len, reverse=True)
_TOC_LINE = re.compile(r"^(\d+);\s+\d+\s+\d+\s+(.*)$")


def parse_toc(listing: str) -> tuple[dict[str, str], list[TocEntry]]:
    """`pg_restore --list`: the archive's header (`; key: value`) and its entries."""
    header: dict[str, str] = {}
    entries = []
    for line in listing.splitlines():
        if line.startswith(";"):
            m = re.match(r"^;\s+([\w ]+?):\s+(.*)$", line)
            if m:
                header[m[1].strip()] = m[2].strip()
            elif line.startswith("; Archive created at "):
                header["created"] = line.removeprefix("; Archive created at ").strip()
            continue
        m = _TOC_LINE.match(line)
        if m is None:
            continue
        rest = m[2]
        desc = next((d for d in _TOC_DESCS if rest.startswith(d + " ")), rest.split()[0])
        words = rest[len(desc) :].split()
        schema = None if not words or words[0] == "-" else words[0]
        entries.append(TocEntry(int(m[1]), desc, schema, " ".join(words[1:-1]), words[-1] if words else ""))
    return header, entries


def _environment() -> dict[str, str]:
    # pg_restore -f never connects; no PG* variable, service file or locale of the caller should reach it either.
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "HOME": tempfile.gettempdir()}


def pg_restore_binary() -> str:
    found = shutil.which("pg_restore")
    if found is None:
        raise DbauditError("pg_restore is not installed: it is needed to read a pg_dump custom, tar or directory archive")
    return found


def list_archive(path: Path) -> tuple[dict[str, str], list[TocEntry], str | None]:
    """The archive's TOC, or why pg_restore cannot list it (a cut or damaged header: a failed check, not an error),
    or why its data cannot be read whole (a tar archive cut short)."""
    try:
        run = subprocess.run([pg_restore_binary(), "--list", str(path)], capture_output=True, env=_environment(),
                             stdin=subprocess.DEVNULL, check=False, timeout=STALL_SECONDS)
    except subprocess.TimeoutExpired:
        return {}, [], f"pg_restore --list did not finish in {STALL_SECONDS:g} s"
    if run.returncode != 0:
        reason = _first_error(run.stderr)
        if "unsupported version" in reason:
            raise DbauditError(f"{path}: this pg_restore cannot read the archive: {reason}")
        return {}, [], f"pg_restore --list fails: {reason}"
    header, entries = parse_toc(run.stdout.decode("utf-8", "replace"))
    # A cut tar is seen from its end before its data is read: pg_restore 15 spins forever on some (STALL_SECONDS).
    return header, entries, _tar_end_problem(path) if header.get("Format") == "TAR" else None


def _first_error(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line] or lines or ["no message"]
    return errors[0].removeprefix("pg_restore: ").removeprefix("error: ")[:200]


STALL_SECONDS = 120.0  # pg_restore 15 spins forever on some cut tar archives: silence this long means it hangs


def _widen(pipe: IO[bytes]) -> None:
    """A 1 MB pipe (Linux; the default is 64 KB): pg_restore and the scanner then trade 16 times fewer pieces."""
    with contextlib.suppress(AttributeError, OSError):  # another system, or a lower pipe-max-size: the default works
        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, CHUNK)


def _restore_script(path: Path) -> Iterator[bytes]:
    """The whole archive as the psql script pg_restore would run; raises RuntimeError(reason) if it fails."""
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen([pg_restore_binary(), "-f", "-", str(path)], stdout=subprocess.PIPE, stderr=errors,
                                stdin=subprocess.DEVNULL, env=_environment())
        stdout: IO[bytes] = proc.stdout  # type: ignore[assignment]
        _widen(stdout)
        try:
            while True:
                ready, _, _ = select.select([stdout], [], [], STALL_SECONDS)
                if not ready:
                    raise RuntimeError(f"pg_restore wrote nothing for {STALL_SECONDS:g} s (it hangs on this archive)")
                data = os.read(stdout.fileno(), CHUNK)
                if not data:
                    break
                yield data
        finally:
            stdout.close()
            if proc.poll() is None:
                proc.kill()
            code = proc.wait()
        if code != 0:
            errors.seek(0)
            raise RuntimeError(_first_error(errors.read(64 * 1024)))


def read_pg_archive(path: Path, form: str, digest: DumpFile) -> tuple[DumpContents, list[Check]]:
    """A custom, tar or directory archive: its TOC, then everything in it streamed through the psql scanner."""
    started = time.monotonic()
    listing = list_archive(path)
    collector, problem, size = PgCollector(), listing[2], 0
    if listing[2] is None:
        collector, scanner = new_collector()
        try:
            for data in _restore_script(path):
                size += len(data)
                scanner.feed(data)
            problem = scanner.finish().problem
        except RuntimeError as exc:
            problem = f"pg_restore cannot read the archive whole: {exc}"
    return archive_contents(path, form, digest, listing, collector, problem, size, started)


def archive_contents(path: Path, form: str, digest: DumpFile,
                     listing: tuple[dict[str, str], list[TocEntry], str | None], collector: PgCollector,
                     problem: str | None, size: int, started: float) -> tuple[DumpContents, list[Check]]:
    """The dump-check document of an archive whose `pg_restore -f -` script `collector` read (`size` bytes; `problem`:
    why it looks cut), and its TOC checks; `listing` is list_archive's answer."""
    header, entries, listing_problem = listing
    digest.sql_bytes = size
    digest.compressed = header.get("Compression", "0") not in ("0", "none")
    if header.get("Dumped by pg_dump version"):
        collector.header.tool = f"pg_dump {header['Dumped by pg_dump version'].split()[0]}"
        collector.header.server_version = header.get("Dumped from database version")
    collector.header.database = header.get("dbname")
    collector.header.completed_at = header.get("created")
    contents = contents_of(collector, digest, form, problem, started, header.get("dbname"))
    checks = format_checks(collector, contents) if listing_problem is None else []
    return contents, [*checks, *_toc_checks(entries, collector, listing_problem)]


def _tar_end_problem(path: Path) -> str | None:
    """pg_dump's tar ends with two zero blocks and is whole 512-byte blocks: a cut one may lose only padding, which
    pg_restore never misses, but it is not the file pg_dump wrote."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        handle.seek(max(0, size - 1024))
        end = handle.read()
    if size % 512 or end.strip(b"\0"):
        return "the tar archive is cut: it does not end with the two zero blocks pg_dump writes last"
    return None


def _toc_checks(entries: list[TocEntry], c: PgCollector, listing_problem: str | None) -> list[Check]:
    if listing_problem is not None:
        return [Check("integrity", "archive TOC", "fail", listing_problem)]
    wanted = {(e.schema, e.tag) for e in entries if e.desc == "TABLE DATA"}
    loaded = {key for key, t in c.tables.items() if t.inserts}
    missing = sorted(f"{s}.{t}" for s, t in wanted - loaded)
    if missing:
        return [Check("integrity", "archive TOC", "fail",
                      f"the TOC lists data the archive does not hold: {', '.join(missing[:5])}")]
    return [Check("integrity", "archive TOC", "pass", f"{len(entries)} TOC entries, data for all {len(wanted)} tables read")]


def read_pg_archive_hashed(path: Path, form: str, hasher: Callable[[], DumpFile]) -> tuple[DumpContents, list[Check]]:
    """Read the archive while `hasher()` (returning the DumpFile with checksums) runs beside it on the other core."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(hasher)
        placeholder = DumpFile(str(path), 0, "", "", False, 0)
        contents, checks = read_pg_archive(path, form, placeholder)
        digest: DumpFile = future.result()
    digest.sql_bytes, digest.compressed = placeholder.sql_bytes, placeholder.compressed
    contents.file = digest
    return contents, checks
