"""A streaming tokenizer for psql scripts (pg_dump's plain format): statements, meta-commands and COPY data.

It follows psql's own lexer (src/fe_utils/psqlscan.l) where splitting a script depends on it: `'…'` strings
(standard or with backslash escapes, following `standard_conforming_strings`), `E'…'`, `B'…'`/`X'…'`, quote
continuation (which psql, lexing line by line, only sees across a \\r), `"…"` identifiers, `$tag$…$tag$` bodies,
nested `/* */` and `--` comments (ended by `\\n` or `\\r`), parentheses, `BEGIN … END` inside
`CREATE FUNCTION|PROCEDURE` (SQL-standard bodies) and the `;` that ends a statement. A backslash outside
those is a meta-command that psql runs itself (the rest of its line), `:name` outside them may be a variable
psql interpolates, and the lines after a `COPY … FROM stdin;` are data up to a line that is exactly `\\.`.

What this lexer cannot follow the way psql would (a `$` or a quote prefix right after a number, `U&` strings,
a statement too long to keep track of) is reported to `on_unsure`: the caller must then refuse the script,
never guess. Memory stays bounded: a statement's first `HEAD_BYTES` (strings kept) and its code with string
bodies collapsed, capped at `CODE_BYTES`, whatever its length; COPY data is counted, never held.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

HEAD_BYTES = 4096
CODE_BYTES = 1 << 16
LOOKAHEAD = 1 << 16  # the most a quote continuation or a meta-command line is looked through before giving up
_NORMAL, _XQ, _XE, _XB, _XD, _XDOLQ, _XC, _LINE, _QSTOP, _META, _AFTER_COPY, _COPY = range(12)
_EVENTS = re.compile(rb"[-/'\"$\\:;()]")
_IDENT_CONT = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_$" + bytes(range(0x80, 0x100)))
_IDENT_START = _IDENT_CONT - frozenset(b"0123456789$")
_DIGITS = frozenset(b"0123456789")
_DOLLAR_TAG = re.compile(rb"\$(?:[A-Za-z\x80-\xff_][A-Za-z\x80-\xff_0-9]*)?\$")
_DOLLAR_TAG_PREFIX = re.compile(rb"\$[A-Za-z\x80-\xff_0-9]*")
# psql lexes one line (up to \n) at a time, so a quote continuation (whitespace holding a newline, then a quote)
# never spans lines there; only a \r inside a line makes one. The server lexes the whole statement, psql does not.
_WHITESPACE = re.compile(rb"(?:[ \t\r\f]+|--[^\n\r]*)*")
_QUOTE_CONTINUE = re.compile(rb"(?:[ \t\f]|--[^\n\r]*)*\r(?:[ \t\r\f]+|--[^\n\r]*\r)*'")
_VARIABLE = re.compile(rb":(?:'([A-Za-z\x80-\xff_0-9]+)'|\"([A-Za-z\x80-\xff_0-9]+)\"|\{\?([A-Za-z\x80-\xff_0-9]+)\}"
                       rb"|([A-Za-z\x80-\xff_0-9]+))")
_STRING_END = {_XQ: re.compile(b"'"), _XB: re.compile(b"'"), _XE: re.compile(rb"[\\']")}
_COMMENT_EDGE = re.compile(rb"/\*|\*/")
_COPY_REST = re.compile(rb"[ \t\r\f]*(?:--[^\n]*)?\n")
# Identifiers as psql counts them to follow BEGIN … END in CREATE FUNCTION bodies; quoted names, numbers and the
# placeholders of collapsed strings are tokens of their own.
_TOKENS = re.compile(rb'"(?:[^"]|"")*"?|[A-Za-z\x80-\xff_][A-Za-z\x80-\xff_0-9$]*|[0-9][0-9.]*(?:[eE][-+]?[0-9]*)?|[()]|\S')
_ROUTINE_LIKE = re.compile(rb"\s*create\b", re.IGNORECASE)
_NEWLINE = re.compile(rb"[\n\r]")
_NAME = r'(?:"(?:[^"]|"")+"|[^\W\d][\w$]*)'
# The COPY statements the server answers with CopyIn, so psql reads the next lines as data: COPY [BINARY] [ONLY]
# name [(columns)] FROM STDIN …; a statement that starts with COPY and names STDIN any other way is not followed.
COPY_FROM_STDIN = re.compile(rf"^COPY\s+(?:BINARY\s+)?(?:ONLY\s+)?{_NAME}(?:\s*\.\s*{_NAME})*"
                             rf'(?:\s*\((?:[^()"]|"(?:[^"]|"")*")*\))?\s+FROM\s+STDIN\b', re.IGNORECASE)
_COPY_STDIN_LOOSE = re.compile(r"^COPY\b.*\bSTDIN\b", re.IGNORECASE | re.DOTALL)


@dataclass
class PgStatement:
    """One statement of the script, as far as classifying it needs."""

    head: str  # its first HEAD_BYTES with comments dropped (strings kept)
    code: str  # the statement with string and $-quoted bodies collapsed to '' and $$ (names kept), capped at CODE_BYTES
    code_complete: bool  # `code` holds the whole statement
    start: int  # byte offset of its first character
    end: int  # byte offset just after its `;`
    tuples: int  # top-level tuples after VALUES (INSERT); 0 otherwise


@dataclass
class MetaCommand:
    text: str  # the backslash command and the rest of its line (first 200 bytes)
    start: int
    end: int  # just after its line
    whole_line: bool = True  # False: the script ends inside its line (no newline after it)


@dataclass
class CopyData:
    statement: PgStatement  # the COPY … FROM stdin it follows
    rows: int  # data lines
    tabs: int  # column separators in them: rows × (columns − 1) when every row is whole
    start: int
    end: int  # just after the `\\.` line
    terminated: bool


@dataclass
class PsqlEnd:
    problem: str | None  # None when the script ends between statements, outside any string, comment or COPY data


class PsqlScanner:
    """Feed bytes with `feed`, then call `finish`. Callbacks run as each statement, meta-command or COPY ends."""

    def __init__(self, on_statement: Callable[[PgStatement], None], on_meta: Callable[[MetaCommand], None],
                 on_copy: Callable[[CopyData], None], on_comment: Callable[[str, int], None],
                 on_unsure: Callable[[str, int], None]) -> None:
        self._on_statement, self._on_meta, self._on_copy = on_statement, on_meta, on_copy
        self._on_comment, self._on_unsure = on_comment, on_unsure
        self.standard_strings = True  # psql's initial state against any server since 9.1; the caller follows SETs
        self._carry = b""
        self._base = 0
        self._state = _NORMAL
        self._after_string = _NORMAL  # the string state a quote continuation returns to
        self._comment_depth = 0
        self._dollar = b""
        self._comment = bytearray()
        self._meta = bytearray()
        self._meta_start = 0
        self._copy: CopyData | None = None
        self._line_start = True
        self._tail = b"\0"  # the last code bytes: what a `$`, `'` or `(` follows
        self._reset_statement()

    # --- statement bookkeeping -----------------------------------------------------------------

    def _reset_statement(self) -> None:
        self._empty = True
        self._start = 0
        self._head = bytearray()
        self._code = bytearray()
        self._code_full = False
        self._depth = 0
        self._begin_depth = 0
        self._tokens_at = 0  # how far `_code` was tokenized for BEGIN … END
        self._token_depth = 0  # parentheses among those tokens
        self._idents: list[int] = []
        self._insert: bool | None = None
        self._values = False
        self._tuples = 0

    def _begin(self, offset: int) -> None:
        if self._empty:
            self._empty = False
            self._start = self._base + offset

    def _text(self, buf: bytes, a: int, b: int, code: bool) -> None:
        """Bytes of the current statement: code (kept in head and code) or a string body (head only)."""
        if a >= b:
            return
        if self._empty:
            stripped = len(buf[a:b].lstrip())
            if not stripped:
                return
            self._begin(b - stripped)
        if len(self._head) < HEAD_BYTES:
            self._head += buf[a : min(b, a + HEAD_BYTES - len(self._head))]
        if code:
            self._tail = (self._tail + buf[max(a, b - 64) : b])[-64:]
            self._add_code(buf[a:b])

    def _add_code(self, data: bytes) -> None:
        if self._code_full:
            return
        room = CODE_BYTES - len(self._code)
        self._code += data[:room]
        self._code_full = len(data) > room

    def _mark(self, placeholder: bytes) -> None:
        """A string or $-body starts: it stands in the code as a placeholder, and ends any name before it."""
        self._add_code(placeholder)
        self._tail = b"\0"

    def _end_statement(self, end: int) -> None:
        if not self._empty:
            head = " ".join(bytes(self._head).decode("utf-8", "replace").split())
            code = " ".join(bytes(self._code).decode("utf-8", "replace").split())
            statement = PgStatement(head, code, not self._code_full, self._start, self._base + end, self._tuples)
            # Reported before the statement itself: restore-check refuses a script as soon as the scanner is unsure,
            # so a statement it cannot follow is never sent.
            if not COPY_FROM_STDIN.match(code) and (_COPY_STDIN_LOOSE.match(code) or (
                    self._code_full and code[:4].upper() == "COPY")):
                self._unsure(f"a COPY naming STDIN in a form dbaudit does not follow: {code[:80]}", end)
                self._on_statement(statement)
                code = "COPY t FROM STDIN"
            else:
                self._on_statement(statement)
            if COPY_FROM_STDIN.match(code):
                self._copy = CopyData(statement, 0, 0, 0, 0, False)
                self._state = _AFTER_COPY
        self._reset_statement()

    def _function_body_open(self) -> bool:
        """psql keeps `;` inside BEGIN … END of CREATE [OR REPLACE] FUNCTION|PROCEDURE from ending the statement."""
        code = bytes(self._code)
        if not _ROUTINE_LIKE.match(code) or b"function" not in code[:400].lower() and b"procedure" not in code[:400].lower():
            return False  # not CREATE [OR REPLACE] FUNCTION|PROCEDURE: psql never counts BEGIN there
        if self._code_full:
            self._unsure("a CREATE FUNCTION longer than dbaudit follows for BEGIN … END")
            return False
        for m in _TOKENS.finditer(code, self._tokens_at):
            token = m[0]
            if token == b"(":
                self._token_depth += 1
            elif token == b")":
                self._token_depth = max(0, self._token_depth - 1)
            elif token[0] in _IDENT_START:
                self._identifier(token.lower())
        self._tokens_at = len(self._code)
        return self._begin_depth > 0

    def _identifier(self, word: bytes) -> None:
        letters = self._idents
        letters.append(word[0] if word in (b"create", b"function", b"procedure", b"or", b"replace") else 0)
        first = letters[:4] + [0] * (4 - len(letters[:4]))
        routine = first[0] == ord("c") and (first[1] in (ord("f"), ord("p")) or (
            first[1] == ord("o") and first[2] == ord("r") and first[3] in (ord("f"), ord("p"))))
        if not routine or self._token_depth:
            return
        if word == b"begin" or word == b"case" and self._begin_depth:
            self._begin_depth += 1
        elif word == b"end" and self._begin_depth:
            self._begin_depth -= 1

    def _open_paren(self) -> None:
        if self._insert is None:
            self._insert = bytes(self._code[:16]).lstrip().upper().startswith(b"INSERT")
        if not self._insert:
            return
        tail = self._tail.rstrip()
        if self._values:
            if tail.endswith(b","):
                self._tuples += 1
        elif re.search(rb"(?:^|[^\w$])VALUES$", tail, re.IGNORECASE):
            self._values = True
            self._tuples += 1

    def _unsure(self, why: str, offset: int = 0) -> None:
        self._on_unsure(why, self._base + offset)

    # --- the scanner ---------------------------------------------------------------------------

    def feed(self, data: bytes, eof: bool = False) -> None:
        buf = self._carry + data if self._carry else data
        n, i = len(buf), 0
        step = {_NORMAL: self._scan_normal, _XQ: self._scan_string, _XE: self._scan_string, _XB: self._scan_string,
                _XD: self._scan_identifier, _XDOLQ: self._scan_dollar, _XC: self._scan_block_comment,
                _LINE: self._scan_line_comment, _QSTOP: self._scan_quote_stop, _META: self._scan_meta,
                _AFTER_COPY: self._scan_after_copy, _COPY: self._scan_copy}
        while i < n:
            nxt = step[self._state](buf, i, n, eof)
            if nxt is None or nxt <= i:  # a token runs past the buffer: keep its bytes for the next chunk
                break
            i = nxt
        if eof:
            i = n
        self._carry = buf[i:]
        self._base += i

    def finish(self) -> PsqlEnd:
        self.feed(b"", eof=True)
        state, problem = self._state, None
        if state == _LINE:
            self._comment_done()
        elif state == _META:
            self._meta_done(self._base, whole_line=False)
        if state in (_XQ, _XE, _XB):
            problem = "ends inside a quoted string"
        elif state == _XD:
            problem = 'ends inside a quoted "identifier"'
        elif state == _XDOLQ:
            problem = f"ends inside a {self._dollar.decode(errors='replace')}-quoted body"
        elif state == _XC:
            problem = "ends inside a /* comment"
        elif state in (_COPY, _AFTER_COPY) and self._copy is not None:
            table = self._copy.statement.head[:80]
            problem = f"ends inside the data of {table} ({self._copy.rows:,} rows read, no \\. line)"
            self._copy.end = self._base
            self._on_copy(self._copy)  # what was read counts, and names the table the dump was cut in
        elif not self._empty:
            problem = "its last statement has no terminating ;"
        return PsqlEnd(problem)

    def _scan_normal(self, buf: bytes, i: int, n: int, eof: bool) -> int | None:
        m = _EVENTS.search(buf, i)
        if m is None:
            self._text(buf, i, n, code=True)
            return n
        j = m.start()
        self._text(buf, i, j, code=True)
        after = self._event(buf, j, n, eof)
        return j if after is None and j > i else after

    def _event(self, buf: bytes, j: int, n: int, eof: bool) -> int | None:
        c = buf[j]
        if c in b"-/":
            if j + 1 >= n and not eof:
                return None
            if buf[j : j + 2] == (b"--" if c == 0x2D else b"/*"):
                if c == 0x2D:
                    self._state, self._comment = _LINE, bytearray()
                else:
                    self._state, self._comment_depth = _XC, 0
                self._add_code(b" ")
                self._tail = b"\0"
                return j + 2
            self._text(buf, j, j + 1, code=True)
            return j + 1
        if c == 0x27:  # '
            return self._quote(buf, j)
        if c == 0x22:  # "
            if self._tail[-2:].upper() == b"U&":
                self._unsure('a U&"…" identifier', j)
            self._begin(j)
            self._text(buf, j, j + 1, code=True)
            self._state = _XD
            return j + 1
        if c == 0x24:  # $
            return self._dollar_sign(buf, j, n, eof)
        if c == 0x5C:  # backslash: a meta-command, or \; \: that psql handles in its lexer
            if j + 1 >= n and not eof:
                return None
            if buf[j + 1 : j + 2] in (b";", b":"):
                self._on_meta(MetaCommand(buf[j : j + 2].decode(), self._base + j, self._base + j + 2))
                return j + 2
            self._state, self._meta, self._meta_start = _META, bytearray(b"\\"), self._base + j
            return j + 1
        if c == 0x3A:  # :
            return self._colon(buf, j, n, eof)
        if c == 0x3B:  # ;
            self._text(buf, j, j + 1, code=True)
            if self._depth == 0 and not self._function_body_open():
                self._end_statement(j + 1)
            return j + 1
        if c == 0x28:  # (
            if self._depth == 0:
                self._open_paren()
            self._text(buf, j, j + 1, code=True)
            self._depth += 1
            return j + 1
        # )
        self._depth = max(0, self._depth - 1)
        self._text(buf, j, j + 1, code=True)
        return j + 1

    def _token_follows(self, before: bytes) -> str:
        """What the code bytes just before a position leave open: 'ident' (a name goes on), 'number' (psql versions
        lex a letter or $ after digits differently) or 'none' (a new token starts there)."""
        run = bytearray()
        for byte in reversed(before):
            if byte not in _IDENT_CONT:
                break
            run.insert(0, byte)
        if not run:
            return "none"
        if len(run) >= 63:
            return "unsure"  # the name may start before the bytes kept
        if run[0] in _IDENT_START:
            return "ident"  # a name takes digits and $ after its first letter
        return "unsure" if b"$" in run else "number"

    def _quote(self, buf: bytes, j: int) -> int:
        tail = self._tail
        prefix = tail[-1:]
        kind = _XQ if self.standard_strings else _XE
        if prefix and prefix in b"eEbBxXnN&":
            before = tail[:-2] if prefix == b"&" else tail[:-1]
            follows = self._token_follows(before)
            prefixed = follows == "none" and (prefix != b"&" or tail[-2:-1] in (b"u", b"U"))
            if follows in ("number", "unsure"):
                self._unsure(f"a quote right after {tail[-8:].decode(errors='replace').strip(chr(0))!r}", j)
            elif prefixed and prefix in b"eE":
                kind = _XE
            elif prefixed and prefix in b"bBxX":
                kind = _XB
            elif prefixed and prefix == b"&":
                self._unsure("a U&'…' string", j)
        self._begin(j)
        self._text(buf, j, j + 1, code=False)
        self._mark(b"''")
        self._state = kind
        return j + 1

    def _dollar_sign(self, buf: bytes, j: int, n: int, eof: bool) -> int | None:
        follows = self._token_follows(self._tail)
        if follows == "ident":
            self._text(buf, j, j + 1, code=True)
            return j + 1
        if follows != "none":
            self._unsure(f"a $ right after {self._tail[-8:].decode(errors='replace').strip(chr(0))!r}", j)
        m = _DOLLAR_TAG.match(buf, j)
        if m is None:
            partial = _DOLLAR_TAG_PREFIX.match(buf, j)
            if partial is not None and partial.end() >= n and not eof:
                return None if n - j < 64 else self._plain_dollar(buf, j)
            return self._plain_dollar(buf, j)
        self._begin(j)
        self._text(buf, j, m.end(), code=False)
        self._mark(b"$$")
        self._dollar, self._state = m[0], _XDOLQ
        return m.end()

    def _plain_dollar(self, buf: bytes, j: int) -> int:
        self._text(buf, j, j + 1, code=True)  # $1, or a lone $: psql reads on after it
        return j + 1

    def _colon(self, buf: bytes, j: int, n: int, eof: bool) -> int | None:
        if n - j < 66 and not eof:
            return None
        if buf[j + 1 : j + 2] in (b":", b"="):
            self._text(buf, j, j + 2, code=True)
            return j + 2
        m = _VARIABLE.match(buf, j)
        if m is not None and (m[1] or m[2] or m[3] or not re.search(rb"[a-z]", m[4]) and m[4][:1] not in b"0123456789"):
            # :'x' :"x" :{?x} always, and :NAME spelled like psql's own variables (USER, DBNAME …): psql replaces them.
            self._on_meta(MetaCommand(m[0].decode("utf-8", "replace"), self._base + j, self._base + m.end()))
        self._text(buf, j, j + 1, code=True)
        return j + 1

    def _scan_string(self, buf: bytes, i: int, n: int, eof: bool) -> int | None:
        state = self._state
        m = _STRING_END[state].search(buf, i)
        if m is None:
            self._text(buf, i, n, code=False)
            return n
        j = m.start()
        if j + 1 >= n and not eof:
            self._text(buf, i, j, code=False)
            return j if j > i else None
        if buf[j] == 0x5C:  # backslash in an escape string: it takes the next byte, whatever it is
            self._text(buf, i, j + 2, code=False)
            return j + 2
        if state != _XB and buf[j + 1 : j + 2] == b"'":
            self._text(buf, i, j + 2, code=False)
            return j + 2
        self._text(buf, i, j + 1, code=False)
        self._after_string, self._state = state, _QSTOP
        return j + 1

    def _scan_quote_stop(self, buf: bytes, i: int, n: int, eof: bool) -> int | None:
        """After a closing quote: whitespace holding a newline and another quote continue the same string."""
        m = _QUOTE_CONTINUE.match(buf, i)
        if m is not None:
            self._text(buf, i, m.end(), code=False)
            self._state = self._after_string
            return m.end()
        blank = _WHITESPACE.match(buf, i)
        reach = blank.end() if blank else i
        if not eof and (reach >= n or (reach == n - 1 and buf[n - 1] == 0x2D)):
            if n - i < LOOKAHEAD:
                return None
            self._unsure("a string followed by more whitespace than dbaudit looks through", i)
        self._state = _NORMAL
        self._tail = b"\0"
        return self._scan_normal(buf, i, n, eof)

    def _scan_identifier(self, buf: bytes, i: int, n: int, eof: bool) -> int | None:
        j = buf.find(b'"', i)
        if j < 0:
            self._text(buf, i, n, code=True)
            return n
        if j + 1 >= n and not eof:
            self._text(buf, i, j, code=True)
            return j if j > i else None
        if buf[j + 1 : j + 2] == b'"':
            self._text(buf, i, j + 2, code=True)
            return j + 2
        self._text(buf, i, j + 1, code=True)
        self._state = _NORMAL
        self._tail = b"\0"
        return j + 1

    def _scan_dollar(self, buf: bytes, i: int, n: int, eof: bool) -> int | None:
        j = buf.find(self._dollar, i)
        if j < 0:
            keep = max(i, n - len(self._dollar) + 1) if not eof else n
            self._text(buf, i, keep, code=False)
            return keep if keep > i else None
        end = j + len(self._dollar)
        self._text(buf, i, end, code=False)
        self._state = _NORMAL
        self._tail = b"\0"
        return end

    def _scan_block_comment(self, buf: bytes, i: int, n: int, eof: bool) -> int | None:
        m = _COMMENT_EDGE.search(buf, i)
        if m is None:
            return n if eof or buf[n - 1 : n] not in (b"/", b"*") else (n - 1 if n - 1 > i else None)
        if m[0] == b"/*":
            self._comment_depth += 1
        elif self._comment_depth:
            self._comment_depth -= 1
        else:
            self._state = _NORMAL
        return m.end()

    def _scan_line_comment(self, buf: bytes, i: int, n: int, eof: bool) -> int | None:
        m = _NEWLINE.search(buf, i)
        end = n if m is None else m.start()
        if len(self._comment) < 512:
            self._comment += buf[i : min(end, i + 512 - len(self._comment))]
        if m is None:
            return n
        self._comment_done()
        self._state = _NORMAL
        return end if end > i else self._scan_normal(buf, end, n, eof)

    def _comment_done(self) -> None:
        self._on_comment(bytes(self._comment).decode("utf-8", "replace").strip(), self._base)

    def _scan_meta(self, buf: bytes, i: int, n: int, eof: bool) -> int:
        """A meta-command takes the rest of its line: psql reads its arguments from it, not SQL."""
        j = buf.find(b"\n", i)
        end = n if j < 0 else j
        if len(self._meta) < 200:
            self._meta += buf[i : min(end, i + 200 - len(self._meta))]
        if j < 0:
            return n
        self._meta_done(self._base + j + 1)
        self._state = _NORMAL
        return j + 1

    def _meta_done(self, end: int, whole_line: bool = True) -> None:
        text = bytes(self._meta).decode("utf-8", "replace").rstrip()
        self._on_meta(MetaCommand(text, self._meta_start, end, whole_line))

    def _scan_after_copy(self, buf: bytes, i: int, n: int, eof: bool) -> int | None:
        """psql sends COPY … FROM stdin at its `;` and reads the data from the next line on; anything else on the
        COPY's own line would run after the data."""
        j = buf.find(b"\n", i)
        if j < 0:
            if eof:
                return n
            if n - i < LOOKAHEAD:
                return None
            j = n
        if not _COPY_REST.match(buf[i : j + 1]):
            self._unsure("a statement after COPY … FROM stdin on the same line", i)
        assert self._copy is not None
        self._copy.start = self._base + j + 1
        self._state, self._line_start = _COPY, True
        return j + 1

    def _scan_copy(self, buf: bytes, i: int, n: int, eof: bool) -> int | None:
        copy = self._copy
        assert copy is not None
        if self._line_start:
            if n - i < 4 and not eof:
                return None
            if buf.startswith(b"\\.", i) and (buf[i + 2 : i + 3] == b"\n" or buf[i + 2 : i + 4] == b"\r\n" or i + 2 == n):
                end = i + 2 + (buf[i + 2 : i + 4] == b"\r\n") + (i + 2 < n)
                copy.end, copy.terminated = self._base + end, True
                self._copy, self._state = None, _NORMAL
                self._on_copy(copy)
                return end
        k = buf.find(b"\n\\.", i)
        cut = k + 1 if k >= 0 else buf.rfind(b"\n", i, n) + 1
        if cut <= i:  # a line longer than the buffer: count what is here, no terminator can start inside it
            if not eof and n - i < LOOKAHEAD:
                return None
            cut = n
        copy.rows += buf.count(b"\n", i, cut)
        copy.tabs += buf.count(b"\t", i, cut)
        self._line_start = buf[cut - 1] == 0x0A
        return cut
