"""Expectations derived from the migration itself, so the plan and the check cannot drift apart.

`derive(paths, dialect, before_snapshot)` reads migration SQL (or what `php artisan migrate --pretend`
prints), parses every statement with sqlglot, applies them to a model of the schema and writes the
expectations the diff of before and after must meet: every schema change required with the
attributes its statement states, the engines' known side effects allowed, row rules from the data
statements. Statements it cannot read are listed as warnings in the file, never dropped. Pure: no
database; the before snapshot is a document.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import sqlglot

from dbaudit.audit.derive import laravel
from dbaudit.audit.derive.model import Model
from dbaudit.audit.derive.ops import Source
from dbaudit.audit.derive.plan import plan
from dbaudit.audit.derive.reader import read_statement
from dbaudit.audit.derive.render import Header, render
from dbaudit.audit.derive.split import split_statements
from dbaudit.audit.diff import CHANGE_KINDS
from dbaudit.audit.expectations import Expectations, parse_expectations
from dbaudit.core.errors import DbauditError
from dbaudit.core.snapshot import Snapshot
from dbaudit.core.yamlsafe import MAX_BYTES, YamlRefused, load_yaml

DIALECTS = ("mysql", "postgresql", "sqlite")
_HINTS = {"mysql": "mysql", "mariadb": "mysql", "pgsql": "postgresql", "postgres": "postgresql",
          "postgresql": "postgresql", "pg": "postgresql", "sqlite": "sqlite", "sqlite3": "sqlite"}
# First words of SQL statements: a file where no statement starts with one is not SQL.
_SQL_WORDS = frozenset([
    "ALTER", "CREATE", "DROP", "INSERT", "UPDATE", "DELETE", "REPLACE", "RENAME", "TRUNCATE", "SET", "SELECT",
    "WITH", "COMMENT", "GRANT", "REVOKE", "USE", "START", "BEGIN", "COMMIT", "ROLLBACK", "LOCK", "UNLOCK", "PRAGMA",
    "DO", "CALL", "ANALYZE", "VACUUM", "REINDEX", "OPTIMIZE", "DECLARE", "SAVEPOINT", "RELEASE", "EXPLAIN", "SHOW",
    "DESCRIBE", "FLUSH", "VALUES", "MERGE", "CLUSTER", "REFRESH", "DISCARD", "RESET", "LOAD", "HANDLER", "XA",
    "PREPARE", "EXECUTE", "DEALLOCATE", "CHECKPOINT", "LISTEN", "NOTIFY", "COPY", "SECURITY", "ATTACH", "DETACH",
    "REPAIR", "CHECK", "CHECKSUM", "KILL", "INSTALL", "UNINSTALL", "IMPORT", "TABLE", "UPSERT",
])
_FIRST_WORD = re.compile(r"[A-Za-z]+")
_MYSQL_57_COMMENT = re.compile(r"/\*!(5[7-9]\d{3}|[6-9]\d{4})\b")


@dataclass
class Derived:
    expectations: Expectations
    text: str  # the YAML file, with its header and comments
    dialect: str
    warnings: list[str] = field(default_factory=list)
    migrations: list[str] | None = None  # Laravel migrations the statements belong to


def derive(
    paths: Sequence[str | os.PathLike[str]],
    dialect: str | None = None,
    before_snapshot: Snapshot | None = None,
    *,
    name: str | None = None,
    snapshot_label: str | None = None,
    texts: Sequence[tuple[str, str]] = (),
    migration_files: Sequence[str] = (),
) -> Derived:
    """Derive expectations from migration files (`texts`: more (label, content) pairs, e.g. pretend output
    captured from artisan; `migration_files`: the names of Laravel's migration files, to map class names)."""
    sources = [(os.fspath(p), _read(p)) for p in paths] + [(label, text) for label, text in texts]
    if not sources:
        raise DbauditError("no migration given: name one or more SQL files")
    chosen, reason = _dialect(dialect, before_snapshot, [p for p, _ in sources], sources)
    model = Model(chosen, before_snapshot, CHANGE_KINDS)
    warnings: list[tuple[Source, str]] = []
    migrations: list[str] = []
    for label, text in sources:
        server = (before_snapshot.server.product, before_snapshot.server.version) if before_snapshot else None
        for statement, src in _statements(label, text, chosen, warnings, migrations, server):
            for op in read_statement(statement, src, chosen):
                _warn_unparsed(op, warnings)
                model.apply(op)
    if model.errors:
        shown = "; ".join(model.errors[:5]) + (f"; and {len(model.errors) - 5} more" if len(model.errors) > 5 else "")
        raise DbauditError(f"the migration does not fit {snapshot_label or 'the before snapshot'}: {shown}")
    ledger = _ledger_names(migrations, migration_files, warnings) if migrations else None
    header = Header(name or _name(sources[0][0]), chosen, reason,
                    [(label, hashlib.sha256(text.encode("utf-8")).hexdigest()) for label, text in sources],
                    _tool(), snapshot_label, warnings + model.warnings, ledger)
    text = render(header, plan(model, [label for label, _ in sources]))
    expectations = parse_expectations(load_yaml(text, header.name), header.name)
    return Derived(expectations, text, chosen, [f"{s}: {m}" for s, m in header.warnings], ledger)


def derive_expectations(paths: Sequence[str | os.PathLike[str]], dialect: str | None = None,
                        before_snapshot: Snapshot | None = None) -> Expectations:
    """The library call `rehearse` and the report use: expectations for these migration files."""
    return derive(paths, dialect, before_snapshot).expectations


def is_migration_file(path: str | os.PathLike[str]) -> bool:
    """SQL (or pretend output) rather than an expectations YAML, told by content, not by name."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    try:
        # A bomb or a deep nest is refused here too (YamlRefused); a large file is SQL, not expectations.
        data = load_yaml(text, f"expectations file {path}") if len(text) <= MAX_BYTES else None
    except YamlRefused:
        raise
    except DbauditError:  # not YAML at all: SQL
        data = None
    if isinstance(data, dict) and {"format_version", "name", "description", "required", "allowed", "rows", "metrics",
                                   "migrations", "rollback"} & set(data):
        return False
    return laravel.looks_like_pretend(text) or any(_starts_with_sql(s.text) for s in split_statements(text, "mysql")[0])


def _read(path: str | os.PathLike[str]) -> str:
    source = Path(path)
    if source.is_dir():
        raise DbauditError(f"{source} is a directory: name the migration's SQL files (or use --laravel DIR)")
    try:
        data = source.read_bytes()
    except FileNotFoundError:
        raise DbauditError(f"migration file not found: {source}") from None
    except OSError as exc:
        raise DbauditError(f"cannot read {source}: {exc.strerror}") from None
    if b"\x00" in data[:65536]:
        raise DbauditError(f"{source} is not SQL: it holds binary data")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DbauditError(f"{source} is not SQL: it is not UTF-8 text") from None


def _statements(label: str, text: str, dialect: str, warnings: list[tuple[Source, str]],
                migrations: list[str], server: tuple[str, str] | None = None) -> list[tuple[str, Source]]:
    if laravel.looks_like_pretend(text):
        pending, notes = laravel.read_pretend(text)
        warnings += [(Source(label, line, ""), message) for line, message in notes]
        found = [(sql, Source(label, line, _first(sql), m.name)) for m in pending for line, sql in m.queries]
        migrations += [m.name for m in pending]
        if not pending:
            raise DbauditError(f"{label} lists no pending migrations (Laravel printed nothing to migrate)")
        return found
    statements, client = split_statements(text, dialect, server)
    if dialect == "mysql" and server is None and _MYSQL_57_COMMENT.search(text):
        warnings.append((Source(label, 1, ""), "/*!50700…*/ to /*!99999…*/ comments are read as MariaDB does (it skips "
                                               "them; MySQL 5.7+ runs them): pass --from-snapshot to know the server"))
    warnings += [(Source(label, c.line, c.text), "a psql command, not SQL: not run by the server, not checked")
                 for c in client]
    if not statements:
        raise DbauditError(f"{label} holds no SQL statements: an empty migration")
    if not any(_starts_with_sql(s.text) for s in statements):
        raise DbauditError(f"{label} is not SQL: no statement starts with an SQL keyword "
                           f"(the first reads {_first(statements[0].text)!r})")
    return [(s.text, Source(label, s.line, _first(s.text))) for s in statements]


def _starts_with_sql(text: str) -> bool:
    word = _FIRST_WORD.match(text.lstrip("( \t\r\n"))
    return bool(word) and word.group(0).upper() in _SQL_WORDS  # type: ignore[union-attr]


def _warn_unparsed(op: Any, warnings: list[tuple[Source, str]]) -> None:
    from dbaudit.audit.derive.ops import Unparsed

    if isinstance(op, Unparsed):
        understood = f"; read from its leading words: {op.understood}" if op.understood else "; not checked"
        warnings.append((op.src, f"{op.reason}{understood}"))


def _ledger_names(names: list[str], files: Sequence[str], warnings: list[tuple[Source, str]]) -> list[str] | None:
    mapped = laravel.file_names(names, list(files))
    ledger = [mapped.get(n, n) for n in names]
    unknown = [n for n in ledger if not laravel.is_stamped(n)]
    if unknown:
        warnings.append((Source("migrations", 0, ""), f"no migrations: section, {', '.join(unknown)} cannot be named "
                                                      "as the ledger records them"))
        return None
    return ledger


def _dialect(explicit: str | None, before: Snapshot | None, labels: list[str],
             sources: list[tuple[str, str]]) -> tuple[str, str]:
    if explicit is not None:
        if explicit not in DIALECTS:
            raise DbauditError(f"unknown dialect {explicit!r}: use one of {', '.join(DIALECTS)}")
        if before is not None and before.server.dialect != explicit:
            raise DbauditError(f"--dialect {explicit} but the before snapshot is of a {before.server.dialect} database")
        return explicit, "--dialect"
    if before is not None:
        return before.server.dialect, f"the before snapshot's server, {before.server.product} {before.server.version}"
    for label in labels:
        for part in reversed(Path(label).name.lower().split(".")[:-1] + [Path(label).suffix.lower().lstrip(".")]):
            if part in _HINTS:
                return _HINTS[part], f"from the file name {Path(label).name}"
    if any(laravel.looks_like_pretend(text) for _, text in sources):
        return "mysql", "Laravel's default connection; pass --dialect for another"
    return "mysql", "the default; pass --dialect postgresql or sqlite for another"


def _name(label: str) -> str:
    stem = Path(label).name
    for suffix in (".sql", ".txt", ".mysql", ".pgsql", ".postgresql", ".sqlite", ".log"):
        stem = stem.removesuffix(suffix)
    return stem or "migration"


def _first(text: str, width: int = 90) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _tool() -> str:
    try:
        version = metadata.version("dbaudit")
    except metadata.PackageNotFoundError:
        version = "dev"
    return f"dbaudit {version}, sqlglot {sqlglot.__version__}"


def load_or_derive(path: str | os.PathLike[str], before: Snapshot | None = None,
                   dialect: str | None = None) -> tuple[Expectations, Derived | None]:
    """Expectations from a YAML file, or derived from a migration file (told apart by content) against
    the before snapshot: what the report, `diff --expect` and `rehearse` accept where expectations go."""
    from dbaudit.audit.expectations import load_expectations

    if not is_migration_file(path):
        return load_expectations(path), None
    derived = derive([path], dialect, before, snapshot_label="the before snapshot" if before else None)
    return derived.expectations, derived
