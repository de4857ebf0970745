"""A streaming tokenizer for MySQL/MariaDB SQL scripts: statements out, constant memory in.

It follows the `mariadb`/`mysql` client's own rules for splitting a script (client/mysql.cc, `add_line` and
`read_and_execute`): quotes with backslash escapes and doubled quotes, `-- ` / `#` / `/* */` comments,
`/*! … */` and `/*M! … */` executable comments (their text *is* SQL to the client, which sees quotes, backslash
commands and delimiters inside them), and `DELIMITER` lines, which the client takes only at the start of a line
when no statement has begun. Strings follow the session's SQL mode (`NO_BACKSLASH_ESCAPES`, `ANSI_QUOTES`), which
`backups.session` tracks through the dump's own SET statements. Bytes arrive in chunks of any size; a token that
straddles two chunks is carried over, so memory stays bounded by the chunk size plus the head of the current
statement (enough to classify it) whatever the statement's length.

Client commands, what the client runs itself instead of sending it to the server (`\\! cmd`, `\\e`, `\\P`,
`system cmd`, `edit`, `pager`, `tee`, `source file`, `\\u db`, `connect` …, a backslash command anywhere outside
strings and plain comments, a named one where a statement starts), are reported to `on_client_command` and
skipped: they are no SQL, and a dump that holds one can run programs or switch databases. `\\-` (the sandbox
marker mariadb-dump writes first) only restricts the client and is allowed.

Where the client, the server and the server's versioned comments could read the same bytes differently (a
string crossing the end of a comment a server may skip, `--` followed by a control character, a statement that
ends inside `/*! … */`, a mode or character set the session cannot be sure of …), the statement carries a
problem: restore safety fails rather than guess. A versioned comment that some servers skip (`/*!50700`…`/*!99999`
on MariaDB, six-digit versions and `/*M!` on MySQL) is read both ways: `head` with its text, `alt_head` without.

For INSERT statements it counts the top-level `( … )` tuples after VALUES: the rows the statement
loads, without ever holding them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from dbaudit.backups.session import Session

# The largest statement a MariaDB/MySQL server accepts at all (max_allowed_packet cannot be set higher).
MAX_STATEMENT = 1 << 30
HEAD_BYTES = 4096  # an INSERT's head: its first bytes, enough for the table name and a column list
# Any other statement's head, and an INSERT's up to its VALUES list: classified whole up to this size (a CREATE TABLE
# with DATA DIRECTORY at its end, an UPDATE naming another database late); longer ones are refused.
LONG_HEAD_BYTES = 1 << 20
_NORMAL, _STRING, _LINE_COMMENT, _BLOCK_COMMENT = range(4)
_NONSPACE = re.compile(rb"\S")
_ENDS_WITH_VALUES = re.compile(rb"(?:^|[^\w$])VALUES?$", re.IGNORECASE)
_SPACE = b" \t\r\n\f\v"
_QUOTE_BYTES = frozenset(b"'\"`")
# The client's named commands (mysql --help, "List of all MySQL commands"). The client looks at the first word of
# a line when no statement has begun, and at the first word of each statement it is about to send; `use` is read
# as a statement elsewhere (USE db;) and `delimiter` at the start of a line changes the delimiter.
CLIENT_COMMANDS = frozenset({
    "?", "clear", "connect", "edit", "ego", "exit", "go", "help", "nopager", "notee", "nowarning", "pager",
    "print", "prompt", "quit", "rehash", "source", "status", "system", "tee", "charset", "warnings",
    "resetconnection", "query_attributes", "ssl_session_data_print", "sandbox",
})
_COMMAND_WORDS = CLIENT_COMMANDS | {"delimiter", "use"}
_FIRST_WORD = re.compile(rb"[A-Za-z_]+|\?")
_VARIABLE = re.compile(rb"[\w$.]*")
_CLIENT_SPACE = frozenset(b" \t\n\v\f\r")  # my_isspace: what may follow "--" for the client to see a comment
_NEVER = 999999  # a version no server reaches: mariadb-dump's /*M!999999\- enable the sandbox mode */
# The fast path over an INSERT's tuple list (see SqlScanner._tuples_fast): what may not stand outside strings there.
_ESCAPE = re.compile(rb"\\[\\']")  # \\ and \' inside strings: neither ends one
_FAST_SPECIALS = b'\0\\"`#@;'  # never outside strings in a fast stretch, nor "--" or "/*"
# The bytes kept to see its parentheses and strings, and the comment openers' bytes (see _comment_outside).
_NOT_MARK = bytes(c for c in range(256) if c not in _FAST_SPECIALS + b"'(),-/*")


@dataclass(slots=True)  # slots: one is built for every statement, a dump with one row per INSERT has millions
class Statement:
    """One statement of the script, as far as classifying it needs."""

    head: str  # its first bytes, comments dropped, executable-comment markers turned into spaces, whitespace squeezed;
    # spelled as under the default SQL mode (ANSI_QUOTES identifiers in backticks, NO_BACKSLASH_ESCAPES backslashes
    # doubled) so that one lexicon reads it
    start: int  # byte offset (of the decompressed script) of its first character
    end: int  # byte offset just after its delimiter
    tuples: int  # top-level tuples after VALUES (INSERT/REPLACE); 0 otherwise
    # The statement as the server must receive it: its bytes from `start` up to its delimiter (kept only when the
    # scanner was asked to; None otherwise, or when it is longer than the scanner's max_statement).
    text: bytes | None = None
    too_long: bool = False  # longer than max_statement bytes (never kept)
    # The head as a server that skips its versioned comments reads it (MariaDB skips /*!50700 … /*!99999, MySQL
    # skips /*M! and versions above its own); None when the statement has no such comment.
    alt_head: str | None = None
    # The session's SQL mode while the statement is read (see backups.session.Session.sql_mode: None = the
    # session's initial mode) and the two modes that change how SQL is lexed.
    sql_mode: str | None = None
    ansi_quotes: bool = False
    no_backslash_escapes: bool = False
    # Why the scanner cannot be sure the client and every server read this statement as it does (empty: it can).
    problems: list[str] = field(default_factory=list)
    # A `;` outside strings and comments that is not the delimiter (inside a DELIMITER block): the client sends the
    # statement whole, with multi-statements on, so the server runs one statement per `;` unless they are inside
    # a BEGIN … END body (backups.statements checks which).
    semicolons: bool = False
    # A row of a run (see SqlScanner._row_run): the bytes its head starts with, up to its first tuple, the same object
    # for consecutive INSERTs that start with them and hold nothing but tuples outside strings (None: no such row).
    # The same bytes, read in the same session, classify the same (backups.statements.Collector caches that). A hint
    # only, which may depend on where chunks were cut: statements read the same compare equal whatever it is.
    run: bytes | None = field(default=None, compare=False)


@dataclass
class ScanEnd:
    """How the script ended: cleanly, or in the middle of something (a truncated file)."""

    problem: str | None  # None when every statement was terminated and no quote or comment is open
    last_comment: str | None  # the last `-- ` comment if nothing but whitespace follows it
    last_comment_terminated: bool  # that comment ends with a newline
    delimiter: str
    ambiguities: list[str] = field(default_factory=list)  # problems found after the last statement


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
        self._exec_kind = ""  # always (every server runs it), maybe (some skip it), never (none runs it)
        self._line_start = True  # nothing but whitespace since the last newline: where DELIMITER is a command
        # Offsets before which the fast path is not tried again (it failed on the bytes up to there): after a tuple,
        # and at a statement's first tuple.
        self._fast_from = self._first_from = 0
        self.session = Session()
        self._mode_read: object = None  # the session's mode value _ansi and _nbe were read from
        # The run of one-row INSERTs (see _row_run): the bytes each starts with, and the statement's session values.
        self._run: bytes | None = None
        self._run_mode: tuple[str | None, bool, bool] = (None, False, False)
        self._set_mode()
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
        self._alt: bytearray | None = None
        self._limit = HEAD_BYTES
        self._full = False
        self._tail = b""  # the last code bytes at paren depth 0: tells a VALUES tuple from a column list
        self._depth = 0
        self._insert: bool | None = None
        self._values = False
        self._tuples = 0
        self._text.clear()
        self._too_long = False
        self._problems: list[str] = []
        self._variables: set[str] = set()
        self._semicolons = False
        self._template: bytes | None = None  # an INSERT's bytes up to its first tuple, when its head holds them as they are

    def _set_delimiter(self, delimiter: bytes) -> None:
        self._delimiter = delimiter
        self._run = None
        events = set(b"'\"`()/;#-*\\@") | {delimiter[0]}
        self._events = re.compile(b"[" + b"".join(re.escape(bytes([c])) for c in sorted(events)) + b"]")

    def _set_mode(self) -> None:
        """The session's modes, as the scanner lexes strings from the next statement on (read again only when the
        session's mode changed: a statement that sets none keeps the same value, and this runs for every one)."""
        mode = self.session.state.mode
        if mode is not self._mode_read:
            self._ansi = self.session.ansi_quotes
            self._nbe = self.session.no_backslash_escapes
            self._mode_read = mode

    def _problem(self, text: str) -> None:
        if text not in self._problems:
            self._problems.append(text)

    def _content(self, buf: bytes, a: int, b: int, code: bool = True) -> None:
        """Bytes that belong to the current statement (code, or the inside of a quoted string)."""
        if self._empty:
            stripped = buf[a:b].lstrip()
            if not stripped:
                return
            self._empty = False
            self._line_start = False
            self._start = self._base + b - len(stripped)
            self._last_comment = None
        elif self._full and (not code or self._depth):
            return  # the hot path: inside a long INSERT there is nothing left to record
        if not self._full:
            piece = buf[a:b]
            if not code:
                piece = self._spelled(piece)
            self._add_head(piece)
        if code and self._depth == 0:
            self._tail = (self._tail + buf[max(a, b - 16) : b])[-16:]

    def _spelled(self, piece: bytes) -> bytes:
        """String bytes as the default SQL mode spells them (see Statement.head)."""
        if self._quote == 0x22 and self._ansi:  # "ident" -> `ident`
            return piece.replace(b"`", b"``").replace(b'""', b"\0").replace(b'"', b"`").replace(b"\0", b'"')
        if self._nbe and self._quote != 0x60:
            return piece.replace(b"\\", b"\\\\")
        return piece

    def _add_head(self, piece: bytes) -> None:
        skipped = self._exec and self._exec_kind != "always"
        grows = self._exec_kind != "never" or not self._exec
        if self._limit == HEAD_BYTES and not self._values and grows and len(self._head) + len(piece) >= HEAD_BYTES:
            # Not an INSERT's VALUES list: keep reading what it is (before cutting the piece, so that the head does
            # not lose the rest of the piece that reaches HEAD_BYTES, whose length depends on the chunk size).
            self._limit = LONG_HEAD_BYTES
        if grows:
            piece = piece[: self._limit - len(self._head)]
            self._head += piece
            # The alternative head (never longer: it skips more) stops where the head does, at the same byte of the
            # script, whatever the chunk size.
            if self._alt is not None and not skipped:
                self._alt += piece
        if len(self._head) >= self._limit:
            self._full = True
            if not self._values:
                self._problem(f"a statement whose first {LONG_HEAD_BYTES:,} bytes are not a VALUES list: "
                              "dbaudit cannot classify it whole")

    def _mark(self, offset: int, text: bytes) -> None:
        """An executable-comment marker: it starts the statement but reads as whitespace."""
        if self._empty:
            self._empty = False
            self._line_start = False
            self._start = self._base + offset
            self._last_comment = None
        if not self._full:
            self._head += text
            if self._alt is not None:
                self._alt += text

    def _end_statement(self, end: int, buf: bytes) -> None:
        if not self._empty:
            head = " ".join(bytes(self._head).decode("utf-8", "replace").split())
            first = head.split(" ", 1)[0].lower()
            if first in CLIENT_COMMANDS or first == "delimiter":
                # The client runs a statement that starts with a command's name as that command.
                self._report_text(head, self._start)
                self._reset_statement()
                return
            alt = None if self._alt is None else " ".join(bytes(self._alt).decode("utf-8", "replace").split())
            stop = self._base + end
            text = None
            self._measure(stop - len(self._delimiter))
            if self._keep_text and not self._too_long:
                self._save_text(buf, end - len(self._delimiter))
                text = bytes(self._text)
            mode = (self.session.sql_mode, self._ansi, self._nbe)
            problems = self._problems + [p for p in self.session.observe(
                head, not self._full, self._variables, alternative=alt) if p not in self._problems]
            self._set_mode()
            run = self._template
            if run is None or problems or self._variables or self._semicolons or alt is not None or self._too_long:
                run = None  # (an INSERT naming no variable leaves the session as it was: the rows after it read the same)
            self._run, self._run_mode = run, mode
            self._on_statement(Statement(head, self._start, stop, self._tuples, text, self._too_long, alt, *mode,
                                         problems=problems, semicolons=self._semicolons, run=run))
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
            elif self._full:
                self._unread()  # VALUES(c) of ON DUPLICATE KEY UPDATE … past what is classified
        elif _ENDS_WITH_VALUES.search(tail):
            self._values = True
            self._tuples += 1

    def _template_at(self, buf: bytes, j: int) -> bytes | None:
        """The INSERT's bytes up to its first tuple's `(` at j, when its head holds them as they are (no comment,
        executable-comment marker or spelling in between, all in this buffer): the bytes a run of rows starts with."""
        begin = self._start - self._base
        if begin < 0 or self._alt is not None or self._exec or self._problems or self._variables or self._full:
            return None
        template = buf[begin:j]
        return template if len(template) < HEAD_BYTES and template == self._head else None

    def _unread(self) -> None:
        self._problem(f"an INSERT with expressions (a function call, a subquery) past its first {HEAD_BYTES:,} bytes, "
                      "which dbaudit does not classify")

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
                       self._delimiter.decode(errors="replace"), list(self._problems))

    def _scan_normal(self, buf: bytes, i: int, n: int, eof: bool) -> int | None:
        if (self._values and not self._depth and self._tail.endswith(b")") and self._base + i >= self._fast_from
                and buf[i : i + 1] != b";" and self._fast_allowed()):
            skipped = self._tuples_fast(buf, i, n)
            if skipped > i:
                return skipped
        if self._empty:
            m = _NONSPACE.search(buf, i)
            if buf.find(b"\n", i, m.start() if m else n) >= 0:
                self._line_start = True
            if m is None:
                return n
            i = m.start()
            command = self._named_command(buf, i, n, eof)
            if command is None or command != i:
                return command
            if self._run is not None and buf.startswith(self._run, i):
                row = self._row_run(buf, i, n)
                if row is not None:
                    return row
        m = self._events.search(buf, i)
        if m is None:
            self._content(buf, i, n)
            return n
        j = m.start()
        if j > i:
            self._content(buf, i, j)
        after = self._event(buf, j, n, eof)
        return j if after is None and j > i else after

    def _row_run(self, buf: bytes, i: int, n: int) -> int | None:
        """Rows of a run of one-row INSERTs (`--skip-extended-insert`) from i, read whole; where the scanner goes on
        (after the last row's `;`), or None when the byte-by-byte scanner must read the row at i (then it does exactly
        what it would have done without this).

        The statement before was an INSERT whose head held its bytes as they are up to its first tuple (`run`: no
        comment, marker, variable or problem), and this one starts with the same bytes, in the same session: the
        reference scanner reads them event by event into the same head, then (its first tuple) takes the tuples to
        the statement's `;` on the fast path, which _stretch proves here the same way, then ends the statement; the
        session it observes is left as it was (an INSERT naming no variable). So the statement is built here, as the
        reference builds it, without the events: its head is its first HEAD_BYTES bytes. The next row is read on
        here when a newline alone stands between them (the reference would find no command there: the row starts
        with the same word as the one before)."""
        run = self._run
        assert run is not None
        if not self._fast_allowed() or self._mode_read is not self.session.state.mode:
            return None
        if self._problems or self._alt is not None or self._variables or self._semicolons:
            return None  # found between statements (a `--'` there is a problem of the next one): the reference reads it
        skip, base, keep, mode, emit = len(run), self._base, self._keep_text, self._run_mode, self._on_statement
        after = None
        while True:
            j = i + skip
            if j >= n or buf[j] != 0x28 or base + j < self._first_from:
                break
            stop = buf.find(b"\n", j, n) - 1  # the row's `;` before its newline, as _statement_end finds it first
            if stop < j or buf[stop] != 0x3B:
                stop = _statement_end(buf, j, n)
                if stop < 0:
                    break  # the row goes on in the next chunk
            data = buf[j : stop + 2]
            found = self._stretch(data, True, True)
            if found is None or found[0] != len(data) - 2:
                if found is None:  # as _tuples_fast: not tried again before the bytes read (the reference fails the same)
                    self._first_from = base + j + len(data)
                break
            if stop - i > self._max_statement:
                break
            head = " ".join(buf[i : min(stop, i + HEAD_BYTES)].decode("utf-8", "replace").split())
            self._line_start = False
            self._last_comment = None
            emit(Statement(head, base + i, base + stop + 1, found[1], buf[i:stop] if keep else None, False, None, *mode,
                           [], False, run))  # (positional: the fields' order, no problems, no semicolons)
            after = stop + 1
            i = after + 1
            if buf[after : i] != b"\n" or not buf.startswith(run, i):
                break
        return after

    def _fast_allowed(self) -> bool:
        """Whether the session and the statement let the fast path read its tuples (see _tuples_fast)."""
        return (self._full or not (self._nbe or self._ansi)) and not self._exec and self._delimiter == b";"

    def _tuples_fast(self, buf: bytes, i: int, n: int, first: bool = False) -> int:
        """Skip over `,(…),(…)` tuples with C-level bytes methods instead of event by event; return where the
        byte-by-byte scanner takes over again (i when it must do this stretch itself).

        It reads exactly as the scanner would, and takes only stretches where that is plain to see: escapes turned
        into NULs (under NO_BACKSLASH_ESCAPES there are none), quotes then alternate open/close, and outside strings
        there must be nothing but code without comments, backslashes, other quotes, variables or delimiters, with
        every parenthesis a top-level tuple opened right after a comma. Each byte of the stretch is read by a few
        whole-buffer passes (find a newline, escapes, translate, split at quotes), none of them per byte in Python.

        `first`: i is at the `(` of the statement's first tuple, already counted by _open_paren (the stretch then
        starts with a tuple, not a comma). When a stretch fails, the fast path is not tried again (after a tuple, or
        at a first tuple) before the bytes it read, in this statement or the next ones: else statements sharing one
        line would each re-read the rest of it."""
        stop = _statement_end(buf, i, n)  # the statement's likely end: no need to look past it
        data = buf[i : n if stop < 0 else stop + 2]
        found = self._stretch(data, stop >= 0, first)
        if found is None:
            if first:
                self._first_from = self._base + i + len(data)
            else:
                self._fast_from = self._base + i + len(data)
            return i
        end, tuples = found
        self._tuples += tuples - first
        self._tail = b")"
        if not self._full:  # no comment, marker or mode spelling in the stretch: the head takes its bytes as they are
            self._add_head(buf[i : i + min(end, self._limit - len(self._head))])
        return i + end

    def _stretch(self, data: bytes, terminated: bool, first: bool) -> tuple[int, int] | None:
        """How far the fast path may read data (from a `,` after a tuple, or from the first tuple's `(`), and how
        many tuples it holds; None when it must not read any of it."""
        if not self._nbe and b"\\" in data:
            data = _ESCAPE.sub(b"\0\0", data)
        # Only quotes, parentheses, commas, specials and the bytes of comment openers matter: the rest goes.
        found = _fast_end(data, data.translate(None, _NOT_MARK), terminated)
        if found is None:
            return None
        end, marks = found
        # Strings left empty go (two adjacent quotes open and close an empty string or part two strings with nothing
        # between: either way what is outside strings stays as it was), then what remains is split at the quotes.
        marks = marks.replace(b"''", b"")
        outside = b"".join(marks.split(b"'")[0::2]) if b"'" in marks else marks
        if (b"--" in outside or b"/*" in outside) and _comment_outside(data, end):
            return None  # (bytes dropped between two dashes, a string between them, can make "--" here that is none)
        if first:
            outside = b"," + outside
        parens = outside.translate(None, b",-/*")
        tuples = len(parens) // 2
        if parens != b"()" * tuples or outside.count(b",(") != tuples or not outside.endswith(b")"):
            return None
        return end, tuples

    def _line(self, buf: bytes, i: int, n: int, eof: bool) -> tuple[int, int] | None:
        """Where the line from i ends (its newline, or the buffer's end) and where the next one starts."""
        newline = buf.find(b"\n", i)
        if newline < 0 and not eof and n - i < 65536:
            return None
        return (n, n) if newline < 0 else (newline, newline + 1)

    def _named_command(self, buf: bytes, i: int, n: int, eof: bool) -> int | None:
        """`system cmd`, `source file`, `DELIMITER ;;` … where a statement starts: the client's own commands."""
        m = _FIRST_WORD.match(buf, i)
        if m is None:
            return i
        if m.end() >= n and not eof:
            return None if n - i < 64 else i  # the word may go on in the next chunk
        word = m[0].decode().lower()
        if word not in _COMMAND_WORDS or (m.end() < n and (buf[m.end()] in b"$" or chr(buf[m.end()]).isalnum()
                                                            or buf[m.end()] == 0x5F)):
            return i
        line = self._line(buf, i, n, eof)
        if line is None:
            return None
        line_end, after = line
        text = buf[i:line_end]
        line_level = self._delimiter not in text and b"\\g" not in text  # else the client reads on to the delimiter
        if word == "delimiter":
            if self._line_start and (line_level or text[:9].upper() == b"DELIMITER"):
                return self._delimiter_command(buf, i, line_end, after)
            return self._report_command(buf, i, line_end, after)  # the client would run it at the statement's end
        if word == "use" and not line_level:
            return i  # USE db; is a statement (Collector reads it)
        return self._report_command(buf, i, line_end, after)

    def _delimiter_command(self, buf: bytes, i: int, line_end: int, after: int) -> int:
        """`DELIMITER ;;` is a client command, not SQL: it changes what ends a statement (mysql.cc com_delimiter:
        the first space-separated word after it, a backslash in it makes the client refuse)."""
        line = buf[i:line_end]
        if len(line) > 9 and line[9] not in b" \t":
            return self._report_command(buf, i, line_end, after)
        arg = line[9:].lstrip(b" \t\r\v\f").split(b" ", 1)[0]
        if b"\\g" in line:
            self._problem("a DELIMITER line holding \\g, which the client reads as a statement")
        elif arg[:1] in (b"'", b'"', b"`") or any(c < 33 or c == 127 for c in arg):
            self._problem(f"a DELIMITER line the client may read differently ({line[:40]!r})")
        elif arg and b"\\" not in arg:
            self._set_delimiter(arg)
        self._line_start = after > line_end
        return after

    def _client_line(self, buf: bytes, i: int, n: int, eof: bool) -> int | None:
        """Report a client command and skip the rest of its line, which the client takes as its argument."""
        line = self._line(buf, i, n, eof)
        if line is None:
            return None
        return self._report_command(buf, i, *line)

    def _report_command(self, buf: bytes, i: int, line_end: int, after: int) -> int:
        self._report_text(buf[i : min(line_end, i + 200)].decode("utf-8", "replace"), self._base + i)
        self._line_start = after > line_end
        return after

    def _report_text(self, text: str, offset: int) -> None:
        self._run = None
        if self._on_client_command is not None:
            self._on_client_command(text.strip(), offset)

    def _event(self, buf: bytes, j: int, n: int, eof: bool) -> int | None:
        c = buf[j]
        if c == 0x5C:  # a backslash outside strings and comments: a client command (\! \. \u \e \P \g …)
            if n - j < 2 and not eof:
                return None
            if buf[j + 1 : j + 2] == b"-":  # \- : the client's sandbox mode, which only takes rights away
                return j + 2
            return self._client_line(buf, j, n, eof)
        delimiter = self._delimiter
        if c == delimiter[0]:
            if n - j < len(delimiter) and not eof:
                return None
            if buf.startswith(delimiter, j):
                if self._exec:
                    self._problem("a statement that ends inside a /*! … */ comment")
                self._end_statement(j + len(delimiter), buf)
                self._line_start = False
                return j + len(delimiter)
        if c in _QUOTE_BYTES:
            self._state, self._quote = _STRING, c
            self._content(buf, j, j + 1, code=False)
            if self._depth == 0:
                self._tail = b"\0"
            return j + 1
        if c == 0x28:  # (
            if self._depth == 0:
                first = not self._values
                self._open_paren()
                if first and self._values:
                    self._template = self._template_at(buf, j)
                # An INSERT's first tuple: the fast path may take it too (with one row per INSERT, it is all there is).
                if first and self._values and self._base + j >= self._first_from and self._fast_allowed():
                    skipped = self._tuples_fast(buf, j, n, first=True)
                    if skipped > j:
                        return skipped
            elif self._full and self._values:
                self._unread()  # a function call or subquery inside a tuple, past what is classified
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
        if c == 0x40:  # @
            return self._variable(buf, j, n, eof)
        if c == 0x3B:  # a ; that is not the delimiter
            self._semicolons = True
        if c == 0x2A and self._exec:  # * of */ closing an executable comment
            if n - j < 2 and not eof:
                return None
            if buf[j + 1 : j + 2] == b"/":
                self._exec, self._exec_kind = False, ""
                self._mark(j, b" ")
                return j + 2
        self._content(buf, j, j + 1)
        return j + 1

    def _variable(self, buf: bytes, j: int, n: int, eof: bool) -> int | None:
        """`@name`, `@'name'`, `` @`name` ``: a user variable the statement names (`@@x` is a system one)."""
        if n - j < 3 and not eof:
            return None
        nxt = buf[j + 1 : j + 2]
        if nxt == b"@":
            self._content(buf, j, j + 2)
            return j + 2
        if nxt and nxt[0] in _QUOTE_BYTES:
            close = buf.find(nxt, j + 2, j + 260)
            if close < 0 or close + 1 >= n:
                if not eof and n - j < 260:
                    return None
                self._variables.add("*")
            else:
                name = buf[j + 2 : close]
                doubled = buf[close + 1 : close + 2] == nxt
                self._variables.add("*" if doubled or (nxt != b"`" and b"\\" in name)
                                    else name.decode("utf-8", "replace").lower())
            self._content(buf, j, j + 1)
            return j + 1  # the quoted name is read on as a string
        m = _VARIABLE.match(buf, j + 1)
        end = m.end() if m else j + 1
        if end >= n and not eof:
            return None if n - j < 260 else end
        if end > j + 1:
            self._variables.add(buf[j + 1 : end].decode("utf-8", "replace").lower())
        if len(self._variables) > 256:
            self._variables = {"*"}
        self._content(buf, j, end)
        return end

    def _dash(self, buf: bytes, j: int, n: int, eof: bool) -> int | None:
        if n - j < 3 and not eof:
            return None
        if buf[j + 1 : j + 2] != b"-":
            self._content(buf, j, j + 1)
            return j + 1
        after = buf[j + 2] if j + 2 < n else None
        # The server needs whitespace or a control character after "--" for a comment; the client whitespace
        # (my_isspace), or nothing, or (newer MariaDB clients) anything at all where a statement starts.
        if after is not None and after not in _CLIENT_SPACE:
            if after >= 32 and after != 127 and not self._empty:
                self._content(buf, j, j + 1)
                return j + 1
            self._problem(f"`--` followed by {bytes([after])!r}, a comment to some clients or servers and not to "
                          "others")
        return self._start_line_comment(j + 2)

    def _slash(self, buf: bytes, j: int, n: int, eof: bool) -> int | None:
        if n - j < 11 and not eof:
            return None
        if buf[j + 1 : j + 2] != b"*":
            self._content(buf, j, j + 1)
            return j + 1
        marker = 3 if buf[j + 2 : j + 3] == b"!" else 4 if buf[j + 2 : j + 4] == b"M!" else 0
        if not marker:
            self._start_block_comment()
            return j + 2
        k = j + marker
        digits = 0
        while digits < 6 and k + digits < n and 0x30 <= buf[k + digits] <= 0x39:
            digits += 1
        # MariaDB reads five or six digits as a version, fewer as part of the comment's SQL (sql_lex.cc).
        version = int(buf[k : k + digits]) if digits >= 5 else None
        if version is not None and version >= _NEVER:
            kind = "never"
        elif marker == 4 or (version is not None and (digits == 6 or version >= 50700)):
            kind = "maybe"  # MariaDB skips /*!50700…/*!99999, MySQL /*M! and six-digit versions above its own
        else:
            kind = "always"
        if self._exec:
            self._problem("a /*! comment inside another, which servers read differently")
        self._exec, self._exec_kind = True, kind
        if kind != "always" and self._alt is None:
            self._alt = bytearray(self._head)
        self._mark(j, b" ")
        return k + (digits if version is not None else 0)

    def _start_line_comment(self, at: int) -> int:
        if self._exec and self._exec_kind != "always":
            self._problem("a line comment inside a versioned comment, which a server that skips the versioned "
                          "comment ends at its */ and the client at the end of the line")
        self._state = _LINE_COMMENT
        self._comment = bytearray()
        return at

    def _start_block_comment(self) -> None:
        self._state = _BLOCK_COMMENT
        self._last_comment = None
        if not self._empty and not self._full:
            self._head += b" "
            if self._alt is not None:
                self._alt += b" "

    def _scan_line_comment(self, buf: bytes, i: int, n: int, eof: bool) -> int:
        newline = buf.find(b"\n", i)
        end = n if newline < 0 else newline
        if len(self._comment) < 512:
            self._comment += buf[i : min(end, i + 512 - len(self._comment))]
        if newline < 0:
            return n
        self._finish_comment(terminated=True)
        self._state = _NORMAL
        self._line_start = True
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
        self._line_start = False
        return end + 2

    def _string_end(self) -> re.Pattern[bytes]:
        """What may end or escape inside the current string, under the session's mode."""
        quote = self._quote
        escapes = quote != 0x60 and not self._nbe and not (quote == 0x22 and self._ansi)
        watch_backslash = escapes or (quote == 0x22 and self._ansi)  # older clients escape inside "ident"
        watch_star = self._exec and self._exec_kind != "always"
        return _STRING_ENDS[(quote, watch_backslash, watch_star)]

    def _scan_string(self, buf: bytes, i: int, n: int, eof: bool) -> int | None:
        quote = self._quote
        m = self._string_end().search(buf, i)
        if m is None:
            self._content(buf, i, n, code=False)
            return n
        j = m.start()
        if j + 1 >= n and not eof:  # an escape or a doubled quote may continue in the next chunk
            self._content(buf, i, j, code=False)
            return j if j > i else None
        c = buf[j]
        if c == 0x5C:
            if quote == 0x22 and self._ansi:
                self._problem('a backslash in a "quoted" identifier under ANSI_QUOTES, which older clients read '
                              "as an escape")
                self._content(buf, i, j + 1, code=False)
                return j + 1
            self._content(buf, i, j + 2, code=False)
            return j + 2
        if c == 0x2A:
            if buf[j + 1 : j + 2] == b"/":
                self._problem("*/ inside a string in a versioned comment: a server that skips the comment ends it "
                              "there, the client does not")
            self._content(buf, i, j + 1, code=False)
            return j + 1
        if buf[j + 1 : j + 2] == bytes([quote]):
            self._content(buf, i, j + 2, code=False)
            return j + 2
        self._content(buf, i, j + 1, code=False)
        self._state = _NORMAL
        return j + 1


def _string_pattern(quote: int, backslash: bool, star: bool) -> re.Pattern[bytes]:
    chars = bytes([quote]) + (b"\\\\" if backslash else b"") + (b"*" if star else b"")
    return re.compile(b"[" + chars.replace(b"*", b"\\*") + b"]")


_STRING_ENDS = {(q, b, s): _string_pattern(q, b, s) for q in b"'\"`" for b in (False, True) for s in (False, True)}


def _statement_end(buf: bytes, i: int, n: int) -> int:
    """buf.find(b";\\n", i, n), faster: a one-byte find is a memchr, and a tuple list has few newlines (mysqldump
    writes them as \\n inside strings), so each newline found is checked for a `;` before it."""
    at = buf.find(b"\n", i, n)
    for _ in range(64):
        if at < 0:
            return -1
        if at > i and buf[at - 1] == 0x3B:
            return at - 1
        at = buf.find(b"\n", at + 1, n)
    return -1 if at < 0 else buf.find(b";\n", max(at - 1, i), n)  # many newlines: search for the pair itself


def _fast_end(data: bytes, marks: bytes, terminated: bool) -> tuple[int, bytes] | None:
    """Where a fast stretch may end, outside strings, and the marks (data's bytes kept by _NOT_MARK) up to there:
    at the statement's `;` (data then ends with `;\\n`, as mysqldump writes it) or after one of the last tuples
    that close in data; None when none is. Quotes are counted once, in the marks; a cut's tail only is re-read."""
    quotes = marks.count(b"'")
    if terminated and quotes % 2 == 0:
        return len(data) - 2, marks[:-1]  # the `;` is the last mark (a newline is none)
    at = data.rfind(b"),(")
    for _ in range(3):  # the last tuple boundary first
        if at < 0:
            break
        tail = data[at + 1 :]
        if (quotes - tail.count(b"'")) % 2 == 0:
            return at + 1, marks[: len(marks) - len(tail.translate(None, _NOT_MARK))]
        at = data.rfind(b"),(", 0, at)
    return None


def _comment_outside(data: bytes, end: int) -> bool:
    """Whether a comment opener (`--`, `/*`) stands outside strings in data[:end]: the exact check, for when the
    marks show one that may be none (`-1.5e-3` is `--` once its digits are dropped). Here nothing is dropped, and
    the runs of bytes between strings are kept apart, so two bytes are next to each other only if they are in data."""
    pieces = data[:end].replace(b"''", b"").split(b"'")
    outside = b"\1".join(pieces[0::2])
    return b"--" in outside or b"/*" in outside
