"""The session a MySQL dump runs in: its SQL mode and client character set, statement by statement.

How the rest of a dump is read depends on both. `NO_BACKSLASH_ESCAPES` makes a backslash a plain character in
strings, `ANSI_QUOTES` makes "…" an identifier, and a client character set such as gbk or sjis lets a multi-byte
character end in the byte of a backslash. A dump may switch any of them (also inside `/*!40101 … */`), so `Session`
follows the SET statements that change them as the server applies them: literals, `@@sql_mode`, user variables
saved and restored (`SET @OLD_SQL_MODE=@@SQL_MODE` … `SET SQL_MODE=@OLD_SQL_MODE`), `CONCAT(@@sql_mode, ',X')`,
`SET NAMES`, `character_set_client = @saved_cs_client`. Values are evaluated before any is assigned, and a scope
keyword (GLOBAL, SESSION) holds for the variables after it, as MariaDB does.

Whatever it cannot evaluate for sure (DEFAULT, a global, a number, a function, a user variable that a statement
other than a plain SET names, since a trigger or a SELECT … INTO may change it) is reported as a problem: restore
safety fails, the scanner never guesses how the server reads a dump. The session's own initial mode is assumed to
hold neither ANSI_QUOTES nor NO_BACKSLASH_ESCAPES (restore-check makes it so; a plain `mysql < dump` on a server
whose global sql_mode holds them reads the dump differently).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

INITIAL = "{initial}"  # stands for the session's initial sql_mode inside a mode string (see Session.sql_mode)
_INITIAL_CHARSET = "{initial charset}"

# Modes that make "…" an identifier, and every mode name MariaDB and MySQL accept.
_ANSI_QUOTES = frozenset({"ANSI_QUOTES", "ANSI", "POSTGRESQL", "ORACLE", "MSSQL", "DB2", "MAXDB"})
_MODES = frozenset({
    "REAL_AS_FLOAT", "PIPES_AS_CONCAT", "ANSI_QUOTES", "IGNORE_SPACE", "IGNORE_BAD_TABLE_OPTIONS",
    "ONLY_FULL_GROUP_BY", "NO_UNSIGNED_SUBTRACTION", "NO_DIR_IN_CREATE", "POSTGRESQL", "MSSQL", "DB2", "MAXDB",
    "NO_KEY_OPTIONS", "NO_TABLE_OPTIONS", "NO_FIELD_OPTIONS", "MYSQL323", "MYSQL40", "ANSI", "NO_AUTO_VALUE_ON_ZERO",
    "NO_BACKSLASH_ESCAPES", "STRICT_TRANS_TABLES", "STRICT_ALL_TABLES", "NO_ZERO_IN_DATE", "NO_ZERO_DATE",
    "ALLOW_INVALID_DATES", "ERROR_FOR_DIVISION_BY_ZERO", "TRADITIONAL", "NO_AUTO_CREATE_USER", "HIGH_NOT_PRECEDENCE",
    "NO_ENGINE_SUBSTITUTION", "PAD_CHAR_TO_FULL_LENGTH", "EMPTY_STRING_IS_NULL", "SIMULTANEOUS_ASSIGNMENT",
    "TIME_ROUND_FRACTIONAL", "TIME_TRUNCATE_FRACTIONAL",
})  # fmt: skip
# Client character sets in which no multi-byte character holds the byte 0x5C (a backslash) or a quote: the lexer
# reads strings in them as in ASCII. big5, cp932, gbk, gb18030 and sjis are left out on purpose.
SAFE_CHARSETS = frozenset({
    "utf8", "utf8mb3", "utf8mb4", "latin1", "latin2", "latin5", "latin7", "ascii", "binary", "cp1250", "cp1251",
    "cp1256", "cp1257", "cp850", "cp852", "cp866", "dec8", "greek", "hebrew", "hp8", "keybcs2", "koi8r", "koi8u",
    "macce", "macroman", "swe7", "armscii8", "geostd8", "tis620", "ujis", "eucjpms", "euckr", "gb2312",
})  # fmt: skip

_TOKEN = re.compile(r"""\s*(?:
    (?P<str>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")
  | @@(?P<scope>(?:GLOBAL|SESSION|LOCAL)\s*\.\s*)?(?P<sys>`(?:[^`]|``)+`|[A-Za-z_$][\w$]*)
  | @(?P<user>`(?:[^`]|``)+`|'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*"|[\w$.]+)
  | (?P<ident>`(?:[^`]|``)+`|[A-Za-z_$][\w$]*)
  | (?P<num>\d[\w.]*)
  | (?P<op>:=|[=,()])
  | (?P<other>\S)
)""", re.X | re.I | re.S)

Value = tuple[str, ...]  # a string as pieces: text, or INITIAL for the session's initial sql_mode


class _Unsure(Exception):
    """The value of an expression the server computes in a way this module does not follow."""


@dataclass
class _Token:
    kind: str
    text: str
    scope: str = ""


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"`":
        body = text[1:-1].replace(text[0] * 2, text[0])
        return body if text[0] == "`" else re.sub(r"\\(.)", r"\1", body, flags=re.S)
    return text


def _tokens(text: str) -> list[_Token]:
    found = []
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup or "other"
        if kind == "scope":
            kind = "sys"
        value = m[kind] if m[kind] is not None else m[0].strip()
        found.append(_Token(kind, value, (m["scope"] or "").split(".")[0].strip().lower()))
    return found


@dataclass
class SessionState:
    """What the session holds after a statement: the values that change how the server reads SQL."""

    mode: Value = (INITIAL,)
    charset: Value = (_INITIAL_CHARSET,)
    variables: dict[str, Value] = field(default_factory=dict)  # user variables whose value is known for sure
    tainted: set[str] = field(default_factory=set)  # user variables something other than a plain SET may change
    all_tainted: bool = False

    def copy(self) -> SessionState:
        return SessionState(self.mode, self.charset, dict(self.variables), set(self.tainted), self.all_tainted)


def mode_words(mode: Value) -> tuple[bool, list[str]]:
    """Whether the session's initial mode is part of `mode`, and the mode names written besides."""
    text = ",".join("" if piece == INITIAL else piece for piece in _merged(mode))
    return INITIAL in mode, [w.upper() for w in text.split(",") if w]


def _merged(mode: Value) -> list[str]:
    """Adjacent text pieces joined: the server sees one string."""
    merged: list[str] = []
    for piece in mode:
        if piece != INITIAL and merged and merged[-1] != INITIAL:
            merged[-1] += piece
        else:
            merged.append(piece)
    return merged


class Session:
    """Follow the statements of a dump; `observe` each one, then read `ansi_quotes`, `no_backslash_escapes`."""

    def __init__(self) -> None:
        self.state = SessionState()

    # --- what is in force ----------------------------------------------------------------------

    @property
    def ansi_quotes(self) -> bool:
        return any(w in _ANSI_QUOTES for w in mode_words(self.state.mode)[1])

    @property
    def no_backslash_escapes(self) -> bool:
        return "NO_BACKSLASH_ESCAPES" in mode_words(self.state.mode)[1]

    @property
    def sql_mode(self) -> str | None:
        """None while the session's initial mode is in force; else the mode as `SET SESSION sql_mode` takes it, with
        `{initial}` standing for the initial mode where the dump built on it (CONCAT(@@sql_mode, …))."""
        if self.state.mode == (INITIAL,):
            return None
        return "".join(self.state.mode)

    # --- following statements -------------------------------------------------------------------

    def observe(self, head: str, complete: bool, variables: set[str], *, alternative: str | None = None,
                ) -> list[str]:
        """Apply one statement (its head, in default-mode spelling); return why the session is not known for sure.

        `complete`: the head holds the whole statement. `variables`: every user variable the statement names
        (lower case, "*" for one the scanner could not name). `alternative`: the head as a server that skips its
        versioned comments reads it; both readings must leave the same session."""
        before = self.state
        problems = self._apply(head, complete, variables)
        if alternative is not None and alternative != head:
            after, self.state = self.state, before.copy()
            other = self._apply(alternative, complete, variables)
            if (self.state.mode, self.state.charset) != (after.mode, after.charset) or other != problems:
                problems.append("it sets the SQL mode or character set inside a versioned comment, which some "
                                "servers run and others skip")
            self.state = after
        return problems

    def _apply(self, head: str, complete: bool, variables: set[str]) -> list[str]:
        state = self.state = self.state.copy()
        if not re.match(r"SET\b", head, re.I):
            self._taint(variables)
            return []
        if re.match(r"SET\s+STATEMENT\b", head, re.I):
            self._taint(variables)
            return (["SET STATEMENT … FOR changing how the session reads SQL"]
                    if re.search(r"sql_mode|character_set|\bNAMES\b|\bCHARSET\b", head, re.I) else [])
        if not complete:
            self._taint(variables)
            touches = re.search(r"sql_mode|character_set_client|\bNAMES\b|\bCHAR(?:ACTER\s+)?SET\b", head, re.I)
            return ["a SET longer than dbaudit reads of it that may change the SQL mode or character set"] if touches \
                else []
        try:
            assignments, read = self._assignments(_tokens(head[3:]), state)
        except _Unsure as exc:
            self._taint(variables)
            return [str(exc)] if str(exc) else []
        self._taint(variables - read - {name for kind, name, _ in assignments if kind == "user"})
        problems = []
        for kind, name, value in assignments:  # every value was computed first: now they are assigned, in order
            if kind == "user":
                if value is None:
                    state.variables.pop(name, None)
                    state.tainted.add(name)
                else:
                    state.variables[name] = value
                    state.tainted.discard(name)
            elif kind == "mode":
                problems += self._set_mode(value)
            elif kind == "charset":
                problems += self._set_charset(value)
        return problems

    def _taint(self, names: set[str]) -> None:
        if "*" in names:
            self.state.all_tainted = True
        self.state.tainted |= names - {"*"}
        for name in names:
            self.state.variables.pop(name, None)

    def _set_mode(self, value: Value | None) -> list[str]:
        if value is None:
            return ["it sets sql_mode to a value dbaudit cannot evaluate for sure"]
        _, words = mode_words(value)
        unknown = [w for w in words if w not in _MODES]
        if unknown:
            return [f"it sets sql_mode to {','.join(unknown)[:60]}, which dbaudit does not read"]
        merged = _merged(value)
        for n, piece in enumerate(merged):
            if piece == INITIAL and ((n > 0 and not merged[n - 1].endswith(","))
                                     or (n + 1 < len(merged) and not merged[n + 1].startswith(","))):
                return ["it sets sql_mode to the current mode glued to other modes without a comma"]
        self.state.mode = value
        return []

    def _set_charset(self, value: Value | None) -> list[str]:
        if value is None:
            return ["it sets the client character set to a value dbaudit cannot evaluate for sure"]
        name = "".join(value).lower()
        if value != (_INITIAL_CHARSET,) and name not in SAFE_CHARSETS:
            return [f"it sets the client character set to {name[:40]}, in which the server may read strings "
                    "differently from dbaudit (a multi-byte character can end in a backslash)"]
        self.state.charset = value
        return []

    # --- parsing SET ---------------------------------------------------------------------------

    def _assignments(self, tokens: list[_Token], state: SessionState,
                     ) -> tuple[list[tuple[str, str, Value | None]], set[str]]:
        """SET's assignment list: (user|mode|charset|other, name, value or None when unsure) and the user
        variables read."""
        found: list[tuple[str, str, Value | None]] = []
        read: set[str] = set()
        scope, explicit_global, i = "session", False, 0
        while i < len(tokens):
            t = tokens[i]
            word = t.text.upper() if t.kind == "ident" else ""
            if word in ("GLOBAL", "PERSIST", "PERSIST_ONLY", "SESSION", "LOCAL"):
                scope = "global" if word in ("GLOBAL", "PERSIST", "PERSIST_ONLY") else "session"
                i += 1
                continue
            if word in ("NAMES", "CHARSET") or (word == "CHARACTER" and i + 1 < len(tokens)
                                                and tokens[i + 1].text.upper() == "SET"):
                i += 2 if word == "CHARACTER" else 1
                value, i = self._word_value(tokens, i, state, read)
                if i < len(tokens) and tokens[i].text.upper() == "COLLATE":
                    i += 2
                found.append(("charset", "names", value))
            elif t.kind == "user":
                i = self._expect_assign(tokens, i + 1)
                value, i = self._expression(tokens, i, state, read)
                found.append(("user", _unquote(t.text).lower(), value))
            elif t.kind in ("sys", "ident"):
                name = _unquote(t.text).lower()
                if t.kind == "sys":
                    var_scope = t.scope or "session"
                    explicit_global |= t.scope == "global"
                else:
                    var_scope = scope
                    if explicit_global and name in ("sql_mode", "character_set_client"):
                        raise _Unsure("it sets sql_mode or the character set after a @@GLOBAL. variable, whose "
                                      "scope dbaudit cannot be sure of")
                i = self._expect_assign(tokens, i + 1)
                if name in ("sql_mode", "character_set_client"):
                    value, i = self._word_value(tokens, i, state, read)
                    if var_scope != "global":  # a global's new value is for later sessions only
                        found.append(("mode" if name == "sql_mode" else "charset", name, value))
                else:
                    _, i = self._expression(tokens, i, state, read)
            else:
                raise _Unsure("")  # PASSWORD, ROLE, TRANSACTION …: no session value dbaudit follows
            if i < len(tokens):
                if tokens[i].text != ",":
                    raise _Unsure("")
                i += 1
        return found, read

    @staticmethod
    def _expect_assign(tokens: list[_Token], i: int) -> int:
        if i >= len(tokens) or tokens[i].text not in ("=", ":="):
            raise _Unsure("")
        return i + 1

    def _word_value(self, tokens: list[_Token], i: int, state: SessionState, read: set[str],
                    ) -> tuple[Value | None, int]:
        """A system variable's value: a bare word is taken as text there (SET sql_mode = ANSI, SET NAMES utf8)."""
        if i < len(tokens) and tokens[i].kind == "ident" and (i + 1 >= len(tokens) or tokens[i + 1].text != "("):
            word = _unquote(tokens[i].text)
            return (None if word.upper() == "DEFAULT" else (word,)), i + 1
        return self._expression(tokens, i, state, read)

    def _expression(self, tokens: list[_Token], i: int, state: SessionState, read: set[str],
                    ) -> tuple[Value | None, int]:
        """A value built from literals, @@sql_mode, @@character_set_client, user variables and CONCAT: exact, or
        None (with i after the expression) when the server computes it some other way."""
        try:
            value, j = self._term(tokens, i, state, read)
        except _Unsure:
            value, j = None, self._skip_expression(tokens, i)
        if j < len(tokens) and tokens[j].text != ",":
            return None, self._skip_expression(tokens, j)
        return value, j

    def _term(self, tokens: list[_Token], i: int, state: SessionState, read: set[str]) -> tuple[Value, int]:
        if i >= len(tokens):
            raise _Unsure("")
        t = tokens[i]
        if t.kind == "str":
            return (_unquote(t.text),), i + 1
        if t.kind == "sys":
            name = _unquote(t.text).lower()
            read.add(name)
            if t.scope == "global":
                raise _Unsure("")
            if name == "sql_mode":
                return state.mode, i + 1
            if name == "character_set_client":
                return state.charset, i + 1
            raise _Unsure("")
        if t.kind == "user":
            name = _unquote(t.text).lower()
            read.add(name)
            if state.all_tainted or name in state.tainted or name not in state.variables:
                raise _Unsure("")
            return state.variables[name], i + 1
        if t.kind == "ident" and t.text.upper() in ("CONCAT", "CONCAT_WS") and i + 1 < len(tokens) \
                and tokens[i + 1].text == "(":
            parts, j = [], i + 2
            while True:
                part, j = self._term(tokens, j, state, read)
                parts.append(part)
                if j < len(tokens) and tokens[j].text == ",":
                    j += 1
                    continue
                if j < len(tokens) and tokens[j].text == ")":
                    break
                raise _Unsure("")
            if t.text.upper() == "CONCAT_WS":
                separator, rest = parts[0], parts[1:]
                joined: list[str] = []
                for n, part in enumerate(rest):
                    joined += ([*separator] if n else []) + [*part]
                return tuple(joined), j + 1
            return tuple(piece for part in parts for piece in part), j + 1
        raise _Unsure("")

    @staticmethod
    def _skip_expression(tokens: list[_Token], i: int) -> int:
        depth = 0
        while i < len(tokens):
            text = tokens[i].text
            if text == "(":
                depth += 1
            elif text == ")":
                depth -= 1
            elif text == "," and depth <= 0:
                return i
            i += 1
        return i
