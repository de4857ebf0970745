"""The SQL `php artisan migrate --pretend` prints, each statement attributed to its migration.

Laravel 9.21+ (Termwind) prints, per pending migration, its name with a dotted filler and then one
`⇂ <sql>` line per query; Laravel 8 to 9.20 printed `Name: <sql>` lines. Read from
laravel/framework (Migrator::pretendToRun, the bullet-list view), not run here (no PHP):
- the name is the file name without `.php` for anonymous migrations, the class name for named ones;
- a trailing `.`, `?`, `!` or `:` is removed from each query (EnsureNoPunctuation);
- Laravel < 10.30 prints `?` placeholders instead of the bound values;
- Termwind wraps long lines at the terminal width unless COLUMNS is large (lines that do not start
  with `⇂` continue the query above them).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_BULLET = "⇂"
_NAME_LINE = re.compile(r"^\s*(?P<name>[A-Za-z0-9_\\]+)\s+\.{3,}\s*(?P<status>\S.*)?$")
_OLD_STYLE = re.compile(r"^(?P<name>[A-Za-z0-9_\\]+):\s+(?P<sql>(?:create|alter|drop|insert|update|delete|rename|"
                        r"truncate|comment|replace|set)\b.*)$", re.IGNORECASE)
_INFO = re.compile(r"^\s*(INFO|WARN|ERROR)\s+", re.IGNORECASE)
_STAMPED = re.compile(r"^\d{4}_\d{2}_\d{2}_\d{6}_\w+$")
_PLACEHOLDER = re.compile(r"\?(?=(?:[^']*'[^']*')*[^']*$)")


@dataclass
class PendingMigration:
    name: str
    line: int  # where its name is printed
    queries: list[tuple[int, str]] = field(default_factory=list)  # (line, sql)


def looks_like_pretend(text: str) -> bool:
    plain = _ANSI.sub("", text)
    return _BULLET in plain or "Running migrations." in plain or bool(
        plain.strip() and all(_OLD_STYLE.match(line) for line in plain.strip().splitlines()[:3] if line.strip()))


def read_pretend(text: str) -> tuple[list[PendingMigration], list[tuple[int, str]]]:
    """The migrations and their queries, and warnings (line, message)."""
    migrations: list[PendingMigration] = []
    warnings: list[tuple[int, str]] = []
    current: PendingMigration | None = None
    for number, raw in enumerate(_ANSI.sub("", text).splitlines(), start=1):
        line = raw.rstrip()
        stripped = line.strip()
        if not stripped or _INFO.match(stripped):
            continue
        if stripped.startswith(_BULLET):
            if current is None:
                current = PendingMigration("(unnamed)", number)
                migrations.append(current)
            current.queries.append((number, _query(stripped[len(_BULLET):])))
            continue
        named = _NAME_LINE.match(line)
        if named:
            current = PendingMigration(named.group("name"), number)
            migrations.append(current)
            continue
        old = _OLD_STYLE.match(stripped)
        if old:
            if current is None or current.name != old.group("name"):
                current = PendingMigration(old.group("name"), number)
                migrations.append(current)
            current.queries.append((number, _query(old.group("sql"))))
            continue
        if current is not None and current.queries:
            last_line, sql = current.queries[-1]
            current.queries[-1] = (last_line, f"{sql} {stripped}")  # Termwind wrapped the query
        else:
            warnings.append((number, f"not pretend output, skipped: {stripped[:80]}"))
    for migration in migrations:
        for at, query in migration.queries:
            if _PLACEHOLDER.search(query):
                warnings.append((at, "`?` placeholders: Laravel < 10.30 prints queries without their bound values"))
        if not _STAMPED.match(migration.name):
            warnings.append((migration.line, f"{migration.name} is a class name; the ledger records the file name "
                                             "(pass --laravel DIR to map it)"))
    return migrations, warnings


def _query(text: str) -> str:
    sql = text.strip()
    if "&#039;" in sql or "&quot;" in sql:
        sql = html.unescape(sql)  # printed through htmlspecialchars by a template that did not decode it
    return sql


def file_names(names: list[str], files: list[str]) -> dict[str, str]:
    """Class names (AddProviderToChats) to migration file names (2025_…_add_provider_to_chats)."""
    found = {}
    for name in names:
        if _STAMPED.match(name):
            continue
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name.split("\\")[-1]).lower()
        matches = [f for f in files if f.endswith(f"_{snake}")]
        if len(matches) == 1:
            found[name] = matches[0]
    return found


def is_stamped(name: str) -> bool:
    return bool(_STAMPED.match(name))
