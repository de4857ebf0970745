"""A migration file cut into statements, each with the line it starts on.

Only the cutting is done here; every statement is then parsed by sqlglot. Cutting needs what a
client knows and a parser does not: the `mysql` client's `DELIMITER` lines, `/*! … */` executable
comments (their text is SQL), psql's backslash commands, PostgreSQL `$tag$` bodies and the
`BEGIN … END` body of a trigger or routine written without a DELIMITER (SQLite, Laravel's
`DB::unprepared`), whose inner semicolons do not end it. (backups/sqlscan.py does this for dumps,
but it lives in a layer above this pure one and does not know PostgreSQL or SQLite.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DELIMITER_LINE = re.compile(r"[ \t]*DELIMITER[ \t]+(\S+)[ \t]*(?:\r?\n|$)", re.IGNORECASE)
_DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$")
_EXEC_COMMENT = re.compile(r"/\*M?!\d*")
_WORD = re.compile(r"[A-Za-z_][A-Za-z_0-9$]*")
# A statement whose body is a block of statements: its inner semicolons do not end it.
_COMPOUND = re.compile(
    r"\s*CREATE\s+(OR\s+REPLACE\s+)?(DEFINER\s*=\s*\S+\s+)?(TEMP(ORARY)?\s+)?(AGGREGATE\s+)?"
    r"(TRIGGER|PROCEDURE|FUNCTION|EVENT)\b", re.IGNORECASE)
# Words after END that close a block this splitter does not count open (END IF, END LOOP …).
_UNCOUNTED_ENDS = {"IF", "LOOP", "WHILE", "REPEAT", "FOR"}


@dataclass(frozen=True)
class Statement:
    line: int  # 1-based line of its first character
    text: str  # the statement without its delimiter, executable-comment markers turned into spaces


@dataclass(frozen=True)
class ClientLine:
    """A line the client runs itself (psql `\\connect`): no SQL, listed as a warning."""

    line: int
    text: str


def split_statements(source: str, dialect: str, server: tuple[str, str] | None = None) -> tuple[list[Statement],
                                                                                             list[ClientLine]]:
    """`server` (product, version), when known, decides which versioned executable comments run."""
    return _Splitter(source, dialect, server).run()


def runs_on(marker: str, server: tuple[str, str] | None) -> bool:
    """Does the server run `/*!NNNNN …*/` (`/*M!NNNNNN …*/` for MariaDB only)? Unknown server: as MariaDB
    10+ does, the seed's server: it runs /*!…*/ except MySQL 5.7+ ones (50700–99999), and /*M!…*/."""
    mariadb_only = marker.startswith("/*M!")
    digits = marker.lstrip("/*M!")
    version = int(digits) if digits else 0
    product, number = server or ("MariaDB", "")
    if product == "MariaDB":
        return not (50700 <= version < 100000) and version <= _version_id(number)
    return not mariadb_only and version <= _version_id(number)


def _version_id(version: str) -> int:
    """10.11.19-MariaDB → 101119; 8.0.36 → 80036; unknown → any version runs."""
    parts = re.match(r"(\d+)\.(\d+)\.(\d+)", version)
    return int(parts.group(1)) * 10000 + int(parts.group(2)) * 100 + int(parts.group(3)) if parts else 10**9


class _Splitter:
    def __init__(self, source: str, dialect: str, server: tuple[str, str] | None = None) -> None:
        self.src = source
        self.server = server
        self.mysql = dialect == "mysql"
        self.postgres = dialect == "postgresql"
        self.delimiter = ";"
        self.statements: list[Statement] = []
        self.client: list[ClientLine] = []
        self.start: int | None = None
        self.depth = 0  # BEGIN … END nesting inside a compound statement
        self.compound: bool | None = None
        self.skip_word = False  # the CASE of END CASE closes a block, it opens none

    def run(self) -> tuple[list[Statement], list[ClientLine]]:
        i, n = 0, len(self.src)
        while i < n:
            i = self._step(i)
        self._flush(n)
        return self.statements, self.client

    def _step(self, i: int) -> int:
        src = self.src
        if self.start is None:
            skipped = self._between_statements(i)
            if skipped is not None:
                return skipped
        if src.startswith(self.delimiter, i) and self.depth == 0:
            self._flush(i)
            return i + len(self.delimiter)
        c = src[i]
        comment = self._comment_end(i)
        if comment is not None:
            return comment
        if self.start is None:
            self.start = i
        if c in "'\"`" or (c == "[" and not self.mysql and not self.postgres):
            return self._quoted_end(i)
        if c == "$" and self.postgres:
            m = _DOLLAR.match(src, i)
            if m:
                end = src.find(m.group(0), m.end())
                return len(src) if end < 0 else end + len(m.group(0))
        if c.isalpha() or c == "_":
            return self._word(i)
        return i + 1

    def _between_statements(self, i: int) -> int | None:
        """Whitespace, DELIMITER lines and psql commands before a statement starts."""
        src = self.src
        if src[i] in " \t\r\n\f":
            return i + 1
        if self.mysql and src[i] in "dD":
            m = _DELIMITER_LINE.match(src, i)
            if m:
                self.delimiter = m.group(1)
                return m.end()
        if self.postgres and src[i] == "\\":
            end = src.find("\n", i)
            end = len(src) if end < 0 else end
            self.client.append(ClientLine(self._line(i), src[i:end].strip()))
            return end
        return None

    def _comment_end(self, i: int) -> int | None:
        src = self.src
        if src.startswith("--", i) and (not self.mysql or i + 2 >= len(src) or src[i + 2] in " \t\r\n"):
            end = src.find("\n", i)
            return len(src) if end < 0 else end
        if self.mysql and src[i] == "#":
            end = src.find("\n", i)
            return len(src) if end < 0 else end
        if src.startswith("/*", i) and not (self.mysql and _EXEC_COMMENT.match(src, i)):
            return self._block_comment_end(i)
        return None

    def _block_comment_end(self, i: int) -> int:
        src, depth, j = self.src, 0, i
        while j < len(src):  # PostgreSQL block comments nest; the others end at the first */
            if src.startswith("/*", j):
                depth += 1
                j += 2
            elif src.startswith("*/", j):
                depth -= 1
                j += 2
                if depth == 0 or not self.postgres:
                    return j
            else:
                j += 1
        return len(src)

    def _quoted_end(self, i: int) -> int:
        src, quote = self.src, self.src[i]
        close = "]" if quote == "[" else quote
        j = i + 1
        backslash = self.mysql and quote != "`"
        while j < len(src):
            if backslash and src[j] == "\\":
                j += 2
                continue
            if src[j] == close:
                if close != "]" and src.startswith(close * 2, j):
                    j += 2
                    continue
                return j + 1
            j += 1
        return len(src)

    def _word(self, i: int) -> int:
        m = _WORD.match(self.src, i)
        end = m.end() if m else i + 1
        if self.delimiter != ";" or not m:
            # With a DELIMITER the client knows where the body ends, even in END$$ (`$` is a name character).
            inside = self.src.find(self.delimiter, i, end)
            return inside if inside > i else end
        if self.compound is None:
            self.compound = bool(_COMPOUND.match(self.src, self.start or i))
        if self.compound:
            self._track_block(m.group(0).upper(), end)
        return end

    def _track_block(self, word: str, end: int) -> None:
        if self.skip_word:
            self.skip_word = False
        elif word in ("BEGIN", "CASE"):
            self.depth += 1
        elif word == "END" and self.depth > 0:
            rest = self.src[end:]
            following = _WORD.match(rest, len(rest) - len(rest.lstrip()))
            closes = following.group(0).upper() if following else ""
            if closes not in _UNCOUNTED_ENDS:
                self.depth -= 1
            self.skip_word = closes in _UNCOUNTED_ENDS or closes == "CASE"

    def _flush(self, end: int) -> None:
        if self.start is not None:
            text = self.src[self.start : end].strip()
            if text:
                unwrapped = _unwrap_exec_comments(text, self.server) if self.mysql else text
                if unwrapped.strip():
                    self.statements.append(Statement(self._line(self.start), unwrapped))
        self.start, self.depth, self.compound, self.skip_word = None, 0, None, False

    def _line(self, offset: int) -> int:
        return self.src.count("\n", 0, offset) + 1


def _unwrap_exec_comments(text: str, server: tuple[str, str] | None) -> str:
    """`/*!40101 SET NAMES utf8mb4 */` is SQL to MySQL (sqlglot would read it as a comment), when the
    server's version is at least the one written; otherwise it is a comment and nothing of it runs."""
    if not _EXEC_COMMENT.search(text):
        return text
    out, i = [], 0
    for m in _EXEC_COMMENT.finditer(text):
        if m.start() < i:
            continue
        close = text.find("*/", m.end())
        if close < 0:
            break
        inner = text[m.end() : close] if runs_on(m.group(0), server) else " " * (close - m.end())
        out += [text[i : m.start()], " " * len(m.group(0)), inner, "  "]
        i = close + 2
    out.append(text[i:])
    return "".join(out)
