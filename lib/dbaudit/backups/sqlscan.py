"""A streaming tokenizer for MySQL/MariaDB SQL scripts: statements out, constant memory in.

It follows the `mysql` client's own rules for splitting a script: quotes with backslash escapes and
doubled quotes, `-- ` / `#` / `/* */` comments, `/*! … */` executable comments (their text *is* SQL)
and `DELIMITER` changes around routines and triggers. Bytes arrive in chunks of any size; a token
that straddles two chunks is carried over, so memory stays bounded by the chunk size plus the
first `HEAD_BYTES` of the current statement (enough to classify it) whatever the statement's length.

Client commands, the lines the `mysql` client runs itself instead of sending them to the server
(`\\! cmd`, `system cmd`, `source file`, `\\u db`, `connect` …), are reported to `on_client_command`
and skipped: they are no SQL, and a dump that holds one can run programs or switch databases.

For INSERT statements it counts the top-level `( … )` tuples after VALUES: the rows the statement
loads, without ever holding them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

# The largest statement a MariaDB/MySQL server accepts at all (max_allowed_packet cannot be set higher).
MAX_STATEMENT = 1 << 30
HEAD_BYTES = 4096  # a statement's first bytes: enough for CREATE … DEFINER=… VIEW `name` or a column list
_NORMAL, _STRING, _LINE_COMMENT, _BLOCK_COMMENT = range(4)
_NONSPACE = re.compile(rb"\S")
_STRING_END = {q: re.compile(b"[\\\\" + bytes([q]) + b"]") for q in b"'\""}
_STRING_END[ord("`")] = re.compile(b"`")  # identifiers know no backslash escapes
_ENDS_WITH_VALUES = re.compile(rb"(?:^|[^\w$])VALUES?$", re.IGNORECASE)
_SPACE = b" \t\r\n\f\v"
_QUOTE_BYTES = frozenset(b"'\"`")
# The client's named commands (mysql --help, "List of all MySQL commands"). Like the client, only the
# first word of a statement is looked at; `use` and `delimiter` are handled as statements elsewhere.
CLIENT_COMMANDS = frozenset({
    "?", "clear", "connect", "edit", "ego", "exit", "go", "help", "nopager", "notee", "nowarning", "pager",
    "print", "prompt", "quit", "rehash", "source", "status", "system", "tee", "charset", "warnings",
    "resetconnection", "query_attributes", "ssl_session_data_print", "sandbox",
})
_FIRST_WORD = re.compile(rb"[A-Za-z_]+|\?")


@dataclass
class Statement:
    """One statement of the script, as far as classifying it needs."""

    head: str  # its first HEAD_BYTES, comments dropped, executable-comment markers turned into spaces
    start: int  # byte offset (of the decompressed script) of its first character
    end: int  # byte offset just after its delimiter
    tuples: int  # top-level tuples after VALUES (INSERT/REPLACE); 0 otherwise
    # The statement as the server must receive it: its bytes from `start` up to its delimiter (kept only when the
    # scanner was asked to; None otherwise, or when it is longer than the scanner's max_statement).
    text: bytes | None = None
    too_long: bool = False  # longer than max_statement bytes (never kept)


@dataclass
class ScanEnd:
    """How the script ended: cleanly, or in the middle of something (a truncated file)."""

    problem: str | None  # None when every statement was terminated and no quote or comment is open
    last_comment: str | None  # the last `-- ` comment if nothing but whitespace follows it
    last_comment_terminated: bool  # that comment ends with a newline
    delimiter: str


class SqlScanner:
    """Feed bytes with `feed`, then call `finish`; each complete statement goes to `on_statement`."""

    def __init__(self, on_statement: Callable[[Statement], None],
                 on_comment: Callable[[str, int], None] | None = None,
                 on_client_command: Callable[[str, int], None] | None = None, *,
                 keep_text: bool = False, max_statement: int = MAX_STATEMENT) -> None:
        self._on_statement = on_statement
        self._keep_text = keep_text
        self._max_statement = max_statement
        self._text = bytearray()
        self._on_comment = on_comment
        self._on_client_command = on_client_command
        self._carry = b""
        self._base = 0  # offset of the first byte of the current buffer in the whole script
        self._state = _NORMAL
        self._quote = 0
        self._exec = False  # inside /*! … */
        self._set_delimiter(b";")
        self._comment = bytearray()
        self._last_comment: str | None = None
        self._last_comment_terminated = False
        self._reset_statement()

    # --- statement bookkeeping -----------------------------------------------------------------

    def _reset_statement(self) -> None:
        self._empty = True
        self._start = 0
        self._head = bytearray()
        self._full = False
        self._tail = b""  # the last code bytes at paren depth 0: tells a VALUES tuple from a column list
        self._depth = 0
        self._insert: bool | None = None
        self._values = False
        self._tuples = 0
        self._text.clear()
        self._too_long = False

    def _set_delimiter(self, delimiter: bytes) -> None:
        self._delimiter = delimiter
        events = set(b"'\"`()/;#-*\\") | {delimiter[0]}
        self._events = re.compile(b"[" + b"".join(re.escape(bytes([c])) for c in sorted(events)) + b"]")

    def _content(self, buf: bytes, a: int, b: int, code: bool = True) -> None:
        """Bytes that belong to the current statement (code, or the inside of a quoted string)."""
        if self._empty:
            stripped = buf[a:b].lstrip()
            if not stripped:
                return
            self._empty = False
            self._start = self._base + b - len(stripped)
            self._last_comment = None
        elif self._full and (not code or self._depth):
            return  # the hot path: inside a long INSERT there is nothing left to record
        room = HEAD_BYTES - len(self._head)
        if room > 0:
            self._head += buf[a : min(b, a + room)]
            self._full = len(self._head) >= HEAD_BYTES
        if code and self._depth == 0:
            self._tail = (self._tail + buf[max(a, b - 16) : b])[-16:]

    def _mark(self, offset: int, text: bytes) -> None:
        """An executable-comment marker: it starts the statement but reads as whitespace."""
        if self._empty:
            self._empty = False
            self._start = self._base + offset
            self._last_comment = None
        if len(self._head) < HEAD_BYTES:
            self._head += text

    def _end_statement(self, end: int, buf: bytes) -> None:
        if not self._empty:
            head = " ".join(bytes(self._head).decode("utf-8", "replace").split())
            stop = self._base + end
            text = None
            self._measure(stop - len(self._delimiter))
            if self._keep_text and not self._too_long:
                self._save_text(buf, end - len(self._delimiter))
                text = bytes(self._text)
            self._on_statement(Statement(head, self._start, stop, self._tuples, text, self._too_long))
        self._reset_statement()

    def _measure(self, upto: int) -> None:
        """A statement longer than max_statement is marked and its text dropped: no server would take it."""
        if not self._empty and upto - self._start > self._max_statement:
            self._too_long = True
            self._text.clear()

    def _save_text(self, buf: bytes, upto: int) -> None:
        """The statement's bytes in `buf` up to `upto` (an index into buf) join its text."""
        begin = max(self._start + len(self._text) - self._base, 0)
        if upto > begin:
            self._text += buf[begin:upto]

    def _open_paren(self) -> None:
        if self._insert is None:
            self._insert = bytes(self._head[:16]).lstrip().upper().startswith((b"INSERT", b"REPLACE"))
        if not self._insert:
            return
        tail = self._tail.rstrip()
        if self._values:
            if tail.endswith(b","):
                self._tuples += 1
        elif _ENDS_WITH_VALUES.search(tail):
            self._values = True
            self._tuples += 1

    # --- the scanner ---------------------------------------------------------------------------

    def feed(self, data: bytes, eof: bool = False) -> None:
        buf = self._carry + data if self._carry else data
        n, i = len(buf), 0
        step = {_NORMAL: self._scan_normal, _STRING: self._scan_string,
                _LINE_COMMENT: self._scan_line_comment, _BLOCK_COMMENT: self._scan_block_comment}
        while i < n:
            nxt = step[self._state](buf, i, n, eof)
            if nxt is None or nxt <= i:  # a token runs past the buffer: keep its bytes for the next chunk
                break
            i = nxt
        if eof:
            i = n
        if not self._empty:
            self._measure(self._base + i)
            if self._keep_text and not self._too_long:
                self._save_text(buf, i)
        self._carry = buf[i:]
        self._base += i

    def finish(self) -> ScanEnd:
        self.feed(b"", eof=True)
        problem = None
        if self._state == _STRING:
            problem = f"ends inside a quoted string ({chr(self._quote)}…)"
        elif self._state == _BLOCK_COMMENT:
            problem = "ends inside a /* comment"
        elif self._exec:
            problem = "ends inside a /*! executable comment"
        elif not self._empty:
            problem = f"its last statement has no terminating {self._delimiter.decode(errors='replace')}"
        elif self._delimiter != b";":
            problem = f"ends with DELIMITER still {self._delimiter.decode(errors='replace')} (inside a routine block)"
        if self._state == _LINE_COMMENT:
            self._finish_comment(terminated=False)
        return ScanEnd(problem, self._last_comment, self._last_comment_terminated,
                       self._delimiter.decode(errors="replace"))

    def _scan_normal(self, buf: bytes, i: int, n: int, eof: bool) -> int | None:
        if self._empty:
            m = _NONSPACE.search(buf, i)
            if m is None:
                return n
            i = m.start()
            if buf[i] in b"dD":
                after = self._delimiter_command(buf, i, n, eof)
                if after is None or after != i:
                    return after
            after = self._named_command(buf, i, n, eof)
            if after is None or after != i:
                return after
        m = self._events.search(buf, i)
        if m is None:
            self._content(buf, i, n)
            return n
        j = m.start()
        if j > i:
            self._content(buf, i, j)
        after = self._event(buf, j, n, eof)
        return j if after is None and j > i else after

    def _delimiter_command(self, buf: bytes, i: int, n: int, eof: bool) -> int | None:
        """`DELIMITER ;;` is a client command, not SQL: it changes what ends a statement."""
        if n - i < 10 and not eof:
            return None
        if buf[i : i + 9].upper() != b"DELIMITER" or (i + 9 < n and buf[i + 9] not in b" \t"):
            return i
        newline = buf.find(b"\n", i)
        if newline < 0 and not eof:
            return None
        line_end = n if newline < 0 else newline
        words = buf[i + 9 : line_end].split()
        if words:
            self._set_delimiter(words[0])
        return line_end if newline < 0 else newline + 1

    def _named_command(self, buf: bytes, i: int, n: int, eof: bool) -> int | None:
        """`system cmd`, `source file` … at the start of a statement: the client runs the whole line."""
        m = _FIRST_WORD.match(buf, i)
        if m is None:
            return i
        if m.end() >= n and not eof:
            return None if n - i < 64 else i  # the word may go on in the next chunk
        if m[0].decode().lower() not in CLIENT_COMMANDS or (m.end() < n and buf[m.end()] not in b" \t\r\n;"):
            return i
        return self._client_line(buf, i, n, eof)

    def _client_line(self, buf: bytes, i: int, n: int, eof: bool) -> int | None:
        """Report a client command and skip the rest of its line, which the client takes as its argument."""
        newline = buf.find(b"\n", i)
        if newline < 0 and not eof:
            return None if n - i < 4096 else self._report_command(buf, i, n, n)
        return self._report_command(buf, i, n if newline < 0 else newline, n if newline < 0 else newline + 1)

    def _report_command(self, buf: bytes, i: int, line_end: int, after: int) -> int:
        if self._on_client_command is not None:
            text = buf[i : min(line_end, i + 200)].decode("utf-8", "replace").strip()
            self._on_client_command(text, self._base + i)
        return after

    def _event(self, buf: bytes, j: int, n: int, eof: bool) -> int | None:
        c = buf[j]
        if c == 0x5C:  # a backslash outside strings and comments: a client command (\! \. \u \r \g …)
            if n - j < 2 and not eof:
                return None
            return self._client_line(buf, j, n, eof)
        delimiter = self._delimiter
        if c == delimiter[0]:
            if n - j < len(delimiter) and not eof:
                return None
            if buf.startswith(delimiter, j):
                self._end_statement(j + len(delimiter), buf)
                return j + len(delimiter)
        if c in _QUOTE_BYTES:
            self._content(buf, j, j + 1, code=False)
            if self._depth == 0:
                self._tail = b"\0"
            self._state, self._quote = _STRING, c
            return j + 1
        if c == 0x28:  # (
            if self._depth == 0:
                self._open_paren()
            self._content(buf, j, j + 1)
            self._depth += 1
            return j + 1
        if c == 0x29:  # )
            self._depth = max(0, self._depth - 1)
            self._content(buf, j, j + 1)
            return j + 1
        if c == 0x23:  # #
            return self._start_line_comment(j + 1)
        if c == 0x2D:  # -
            return self._dash(buf, j, n, eof)
        if c == 0x2F:  # /
            return self._slash(buf, j, n, eof)
        if c == 0x2A and self._exec:  # * of */ closing an executable comment
            if n - j < 2 and not eof:
                return None
            if buf[j + 1 : j + 2] == b"/":
                self._exec = False
                self._mark(j, b" ")
                return j + 2
        self._content(buf, j, j + 1)
        return j + 1

    def _dash(self, buf: bytes, j: int, n: int, eof: bool) -> int | None:
        if n - j < 3 and not eof:
            return None
        # MySQL needs whitespace (or a control character) after "--" for it to start a comment.
        if buf[j + 1 : j + 2] == b"-" and (j + 2 >= n or buf[j + 2] in _SPACE or buf[j + 2] < 32):
            return self._start_line_comment(j + 2)
        self._content(buf, j, j + 1)
        return j + 1

    def _slash(self, buf: bytes, j: int, n: int, eof: bool) -> int | None:
        if n - j < 4 and not eof:
            return None
        if buf[j + 1 : j + 2] != b"*":
            self._content(buf, j, j + 1)
            return j + 1
        marker = 3 if buf[j + 2 : j + 3] == b"!" else 4 if buf[j + 2 : j + 4] == b"M!" else 0
        if not marker:
            self._start_block_comment()
            return j + 2
        k = j + marker
        while k < n and 0x30 <= buf[k] <= 0x39:
            k += 1
        if k >= n and not eof:
            return None
        if buf[k : k + 1] == b"\\":
            # /*M!999999\- enable the sandbox mode */: a client command, no SQL in it
            self._start_block_comment()
            return k
        self._exec = True
        self._mark(j, b" ")
        return k

    def _start_line_comment(self, at: int) -> int:
        self._state = _LINE_COMMENT
        self._comment = bytearray()
        return at

    def _start_block_comment(self) -> None:
        self._state = _BLOCK_COMMENT
        self._last_comment = None
        if not self._empty and len(self._head) < HEAD_BYTES:
            self._head += b" "

    def _scan_line_comment(self, buf: bytes, i: int, n: int, eof: bool) -> int:
        newline = buf.find(b"\n", i)
        end = n if newline < 0 else newline
        if len(self._comment) < 512:
            self._comment += buf[i : min(end, i + 512 - len(self._comment))]
        if newline < 0:
            return n
        self._finish_comment(terminated=True)
        self._state = _NORMAL
        return newline + 1

    def _finish_comment(self, terminated: bool) -> None:
        text = bytes(self._comment).decode("utf-8", "replace").strip()
        if self._empty:
            self._last_comment, self._last_comment_terminated = text, terminated
        if self._on_comment is not None:
            self._on_comment(text, self._base)

    def _scan_block_comment(self, buf: bytes, i: int, n: int, eof: bool) -> int | None:
        end = buf.find(b"*/", i)
        if end < 0:
            if eof:
                return n
            return n - 1 if n - 1 > i else None  # keep a trailing "*" for the next chunk
        self._state = _NORMAL
        return end + 2

    def _scan_string(self, buf: bytes, i: int, n: int, eof: bool) -> int | None:
        quote = self._quote
        m = _STRING_END[quote].search(buf, i)
        if m is None:
            self._content(buf, i, n, code=False)
            return n
        j = m.start()
        if j + 1 >= n and not eof:  # an escape or a doubled quote may continue in the next chunk
            self._content(buf, i, j, code=False)
            return j if j > i else None
        if buf[j] == 0x5C or buf[j + 1 : j + 2] == bytes([quote]):
            self._content(buf, i, j + 2, code=False)
            return j + 2
        self._content(buf, i, j + 1, code=False)
        self._state = _NORMAL
        return j + 1
