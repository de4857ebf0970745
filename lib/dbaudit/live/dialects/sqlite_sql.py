"""Reading what SQLite's PRAGMAs do not say from the CREATE statements it keeps in sqlite_schema.

SQLite stores each table's and index's SQL as written, and PRAGMA table_xinfo / index_xinfo omit a
column's COLLATE, CHECK constraints, STRICT, and the text of index expressions and partial-index WHERE
clauses. This module splits that text at the top level (outside strings, quoted names, comments and
parentheses), which is all it needs: SQLite itself has already parsed and accepted it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# One token: a string, a quoted name ("", ``, []), a comment, a word, a space run or one other character.
_TOKEN = re.compile(
    r"'(?:[^']|'')*'?|\"(?:[^\"]|\"\")*\"?|`(?:[^`]|``)*`?|\[[^\]]*\]?|--[^\n]*|/\*.*?(?:\*/|$)"
    r"|[A-Za-z_\x80-\U0010ffff][\w$\x80-\U0010ffff]*|\s+|.",
    re.DOTALL,
)
_TABLE_CONSTRAINT = {"CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN"}
# Where a table's name stands, quoting it changes nothing (SQLite's RENAME writes it quoted).
_NAMES_FOLLOW = {"TABLE", "EXISTS", "REFERENCES", "ON"}
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def tokens(sql: str) -> list[str]:
    return _TOKEN.findall(sql)


def normalise(sql: str | None) -> str:
    """Whitespace runs and comments become one space, except inside string literals and quoted names."""
    out: list[str] = []
    for tok in tokens(sql or ""):
        if tok.isspace() or tok.startswith(("--", "/*")):
            if out and out[-1] != " ":
                out.append(" ")
        else:
            out.append(tok)
    return "".join(out).strip()


def compact(sql: str | None) -> str:
    """Like normalise, with one layout for parentheses, dots and commas (`( lower( b ) )` is `(lower(b))`,
    `f(a,b)` is `f(a, b)`): for the texts dbaudit compares (checks, index keys, the catch-all), so a table
    rebuilt with its SQL laid out anew compares equal."""
    out: list[str] = []
    pending = False
    for raw in tokens(sql or ""):
        if raw.isspace() or raw.startswith(("--", "/*")):
            pending = True
            continue
        previous = out[-1] if out else ""
        # ALTER TABLE … RENAME (the Laravel rebuild) writes the new name quoted: "chats" is chats.
        tok = unquote(raw) if previous.upper() in _NAMES_FOLLOW and _PLAIN_NAME.fullmatch(unquote(raw)) else raw
        if previous == "," or pending and previous and previous not in "(." and tok not in ").,(":
            out.append(" ")
        out.append(tok)
        pending = False
    return "".join(out)


def unquote(name: str) -> str:
    if name[:1] in "\"`" and name[-1:] == name[:1]:
        return name[1:-1].replace(name[0] * 2, name[0])
    if name[:1] == "[" and name[-1:] == "]":
        return name[1:-1]
    return name


@dataclass
class TableText:
    """What a CREATE TABLE says beyond the PRAGMAs."""

    collations: dict[str, str] = field(default_factory=dict)  # column → COLLATE name, upper-case
    checks: list[tuple[str, str]] = field(default_factory=list)  # (name, normalised clause)
    strict: bool = False


def read_table(sql: str | None) -> TableText:
    found = TableText()
    toks = tokens(sql or "")
    body, tail = _parenthesised(toks, 0)
    if body is None:
        return found
    found.strict = any(t.upper() == "STRICT" for t in tail)
    unnamed = 0
    for item in _split(body):
        words = [(pos, tok) for pos, tok in enumerate(item) if not tok.isspace() and not tok.startswith(("--", "/*"))]
        if not words:
            continue
        column = None if words[0][1].upper() in _TABLE_CONSTRAINT else unquote(words[0][1])
        for i, (pos, word) in enumerate(words):
            upper = word.upper()
            if upper == "COLLATE" and column is not None and i + 1 < len(words):
                found.collations.setdefault(column, unquote(words[i + 1][1]).upper())
            if upper == "CHECK" and i + 1 < len(words) and words[i + 1][1] == "(":
                named = i >= 2 and words[i - 2][1].upper() == "CONSTRAINT"
                name = unquote(words[i - 1][1]) if named else column  # as MariaDB names a column's check
                if name is None:
                    unnamed += 1
                    name = f"CONSTRAINT_{unnamed}"
                clause, _ = _parenthesised(item, pos)
                found.checks.append((name, compact("".join(clause or []))))
    return found


@dataclass
class IndexText:
    columns: list[str]  # each key as written, normalised
    where: str | None


def read_index(sql: str | None) -> IndexText | None:
    """The key list and WHERE clause of a CREATE INDEX; None for the indexes SQLite makes itself."""
    if not sql:
        return None
    toks = tokens(sql)
    start = next((i for i, t in enumerate(toks) if t.upper() == "ON"), None)
    if start is None:
        return None
    body, tail = _parenthesised(toks, start)
    if body is None:
        return None
    columns = [compact("".join(part)) for part in _split(body)]
    rest = compact("".join(tail))
    where = rest[len("WHERE"):].strip() if rest.upper().startswith("WHERE") else None
    return IndexText(columns, where)


def _parenthesised(toks: list[str], start: int) -> tuple[list[str] | None, list[str]]:
    """The tokens inside the first parenthesis at or after `start`, and those after its closing one."""
    depth, opened = 0, None
    for i in range(start, len(toks)):
        if toks[i] == "(":
            depth += 1
            if opened is None:
                opened = i
        elif toks[i] == ")" and opened is not None:
            depth -= 1
            if depth == 0:
                return toks[opened + 1 : i], toks[i + 1 :]
    return None, []


def _split(body: list[str]) -> list[list[str]]:
    """Top-level comma-separated parts."""
    parts: list[list[str]] = [[]]
    depth = 0
    for tok in body:
        if tok == "(":
            depth += 1
        elif tok == ")":
            depth -= 1
        elif tok == "," and depth == 0:
            parts.append([])
            continue
        parts[-1].append(tok)
    return parts
