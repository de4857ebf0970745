"""What each statement of a MySQL dump is: the classification that turns a scanned script into its contents.

`Collector` receives the statements `sqlscan.SqlScanner` splits off and records the dump's header, its
databases, tables (with the rows counted from their INSERT tuples), views, triggers, routines and events,
and everything that makes a dump unsafe to restore: client commands, statements acting on the server, and
statements naming another database than the dump's own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dbaudit.backups.lexicon import (
    DEFINER,
    DEFINER_CLAUSE,
    IDENT,
    IF_NOT_EXISTS,
    LITERALS,
    NAME,
    OR_REPLACE,
    QNAME,
    unquote,
)
from dbaudit.backups.sqlscan import LONG_HEAD_BYTES, MAX_STATEMENT, Statement

# What a backup never holds, one row per reason: statements acting on the server, its accounts, its files or the
# client host rather than on the dumped tables. Any of them fails dump-check's restore safety and makes
# restore-check refuse the whole dump (not cut it out: a dump that tries this is not a plain backup). Each is
# reported by the keywords it starts with (CREATE USER, SET PASSWORD, XA …). Statements that only name a database
# (USE, CREATE/DROP/ALTER DATABASE) or set a global are cut out on restore instead (NOT_RESTORED), and client
# commands are the scanner's (backups.sqlscan).
REFUSED: list[tuple[str, str]] = [
    ("accounts", r"(?:CREATE(?:\s+OR\s+REPLACE)?|ALTER|DROP|RENAME)\s+(?:USER|ROLE)\b"),
    ("privileges", r"GRANT\b|REVOKE\b|SET\s+(?:PASSWORD|DEFAULT\s+ROLE)\b"),
    ("server settings that outlive the session", r"SET\s+PERSIST(?:_ONLY)?\b"),
    ("server code", r"(?:INSTALL|UNINSTALL)\s+(?:PLUGIN|SONAME)\b"
                    r"|CREATE\s+(?:OR\s+REPLACE\s+)?(?:AGGREGATE\s+)?FUNCTION\s+\S+\s+RETURNS\s+\w+\s+SONAME\b"),
    ("the server process", r"FLUSH\b|KILL\b|SHUTDOWN\b|RESTART\b"),
    ("federated servers", r"(?:CREATE(?:\s+OR\s+REPLACE)?|ALTER|DROP)\s+SERVER\b"),
    ("replication and binary logs", r"CHANGE\s+(?:MASTER|REPLICATION)\b|(?:START|STOP|RESET)\s+(?:SLAVE|REPLICA|MASTER)\b"
                                    r"|PURGE\s+(?:BINARY|MASTER)\s+LOGS\b|BINLOG\b"),
    ("server files", r"LOAD\s+(?:DATA|XML)\b|SELECT\b.*\bINTO\s+(?:OUTFILE|DUMPFILE)\b"
                     r"|(?:CREATE|ALTER)\b.*\b(?:DATA|INDEX)\s+DIRECTORY\b"),
    ("code no scanner reads", r"PREPARE\b|EXECUTE\b|CALL\b"),
    ("transactions that outlive the session", r"XA\s+\w+"),
]

_STATEMENTS: list[tuple[str, re.Pattern[str]]] = [
    (kind, re.compile(pattern, re.IGNORECASE)) for kind, pattern in [
        ("refused", "^(?:" + "|".join(pattern for _, pattern in REFUSED) + ")"),
        ("insert", rf"^(?:INSERT|REPLACE)\s+(?:(?:LOW_PRIORITY|DELAYED|HIGH_PRIORITY|IGNORE)\s+)*(?:INTO\s+)?{QNAME}"),
        ("table", rf"^CREATE\s+{OR_REPLACE}(?:TEMPORARY\s+)?TABLE\s+{IF_NOT_EXISTS}{QNAME}"),
        ("view", rf"^CREATE\s+{OR_REPLACE}(?:ALGORITHM\s*=\s*\w+\s+)?{DEFINER}(?:SQL\s+SECURITY\s+\w+\s+)?"
                 rf"VIEW\s+{IF_NOT_EXISTS}{QNAME}"),
        ("trigger", rf"^CREATE\s+{OR_REPLACE}{DEFINER}TRIGGER\s+{IF_NOT_EXISTS}{QNAME}\s+"
                    rf"(BEFORE|AFTER)\s+(INSERT|UPDATE|DELETE)\s+ON\s+{QNAME}"),
        ("routine", rf"^CREATE\s+{OR_REPLACE}{DEFINER}(?:AGGREGATE\s+)?(PROCEDURE|FUNCTION)\s+{IF_NOT_EXISTS}{QNAME}"),
        ("event", rf"^CREATE\s+{OR_REPLACE}{DEFINER}EVENT\s+{IF_NOT_EXISTS}{QNAME}"),
        ("create_database", rf"^CREATE\s+{OR_REPLACE}(?:DATABASE|SCHEMA)\s+{IF_NOT_EXISTS}{NAME}"),
        ("drop_database", rf"^DROP\s+(?:DATABASE|SCHEMA)\s+(?:IF\s+EXISTS\s+)?{NAME}"),
        # The client's `use` command takes its first word, quoted or not (mysql.cc get_arg), as the database.
        ("use", r"^USE\s+('(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.|\"\")*\"|`(?:[^`]|``)+`|[^\s'\"`]+)"),
        ("alter_database", r"^ALTER\s+(?:DATABASE|SCHEMA)\b"),
        ("server_state", r"^SET\s+(?:@@GLOBAL\.|GLOBAL\s)"),
        ("lock", r"^LOCK\s+TABLES?\b"),
        ("disable_keys", rf"^ALTER\s+TABLE\s+{QNAME}\s+DISABLE\s+KEYS"),
        ("drop_table", r"^DROP\s+TABLE\b"),
        ("set", r"^SET\s+(.+)$"),
    ]
]  # fmt: skip
_ASSIGNMENT = re.compile(r"(?:^|,)\s*(?:@@(?:SESSION\.)?)?([A-Za-z_]\w*)\s*=\s*('(?:[^'\\]|\\.|'')*'|[^,]+)")
_TOOL = re.compile(r"^(MySQL|MariaDB) dump ([\d.]+)(?:\s+Distrib\s+([^,\s]+))?")
_HOST = re.compile(r"^Host:\s*(\S+)\s+Database:\s*(\S+)")
_SERVER = re.compile(r"^Server version\s+(.+)$")
# Statements whose qualified names (`db`.`t`, also inside /*! */) are read as database qualifiers. View, trigger and
# routine bodies are left out (their `alias`.`column` look the same); their own names are parsed above, and what a
# body does runs as restore-check's temporary account, which has no rights outside the scratch database.
_ACTS_ON_TABLES = re.compile(r"^(?:DROP|ALTER\s+(?:ONLINE\s+|IGNORE\s+)*TABLE|RENAME|TRUNCATE|UPDATE|DELETE|INSERT|REPLACE"
                             r"|LOCK|CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMPORARY\s+|UNIQUE\s+|FULLTEXT\s+|SPATIAL\s+)*"
                             r"(?:TABLE|INDEX|SEQUENCE))\b", re.IGNORECASE)
_QUALIFIED = re.compile(rf"(?<![\w$`.])({IDENT})\s*\.\s*(?={IDENT})")
# Where a name is a table reference: `UPDATE db.t`, `FROM db.t`, `JOIN db.t` … (an alias there is no alias).
_TABLE_POSITION = re.compile(r"(?<![\w$])(?:UPDATE|FROM|JOIN|INTO|TABLES?|USING|TO|AS|EXISTS|REFERENCES|TRUNCATE"
                             r"|IGNORE|LOW_PRIORITY|QUICK)\s*$", re.IGNORECASE)
_CLAUSE = re.compile(r"(?<![\w$`])(?:SET|WHERE|ON|VALUES?|SELECT|ORDER|LIMIT|PARTITION)(?![\w$`])|\(", re.IGNORECASE)


# Statement kinds restore-check does not send to the server: they name or act on a database (the scratch database is
# chosen by restore-check) or on the server's global state.
NOT_RESTORED = frozenset({"use", "create_database", "drop_database", "alter_database", "server_state"})


@dataclass
class Classified:
    """What one statement is: its kind, why it must never run (None: it may), and whether it carries a DEFINER."""

    kind: str  # insert, table, view, trigger, routine, event, use, create_database, drop_database, set, refused, other …
    refusal: str | None
    definer: bool


@dataclass
class DumpTable:
    name: str
    database: str | None
    rows: int = 0  # tuples in its INSERT statements
    inserts: int = 0  # INSERT statements
    created: bool = False  # the dump holds its CREATE TABLE


@dataclass
class DumpObject:
    name: str
    kind: str  # view, trigger, procedure, function, event
    database: str | None
    table: str | None = None  # the table a trigger fires on
    summary: str = ""  # e.g. "AFTER INSERT ON film"


@dataclass
class DumpHeader:
    tool: str | None = None  # "MySQL dump 10.13", "MariaDB dump 10.19"; None: not written by mysqldump
    client: str | None = None  # the mysqldump's Distrib version
    server_version: str | None = None
    host: str | None = None
    database: str | None = None
    completed_at: str | None = None  # from the "-- Dump completed on …" trailer
    settings: dict[str, str] = field(default_factory=dict)  # SETs before the first object: UNIQUE_CHECKS=0 …
    features: list[str] = field(default_factory=list)  # what the body shows: extended-insert, add-locks …



_BLOCK_WORD = re.compile(r"(?<![\w$])(?:(BEGIN)|(CASE)|END(?:\s+(CASE|IF|LOOP|REPEAT|WHILE|FOR))?)(?![\w$])|(;)",
                         re.IGNORECASE)


def _after_first_statement(head: str) -> bool:
    """Whether code follows the first `;` outside a BEGIN … END (or CASE … END) block: a second statement."""
    code = re.sub(r"`(?:[^`]|``)*`", "``", LITERALS.sub("''", head))
    depth = 0
    for m in _BLOCK_WORD.finditer(code):
        if m[1] or m[2]:
            depth += 1
        elif m[4]:
            if depth <= 0:
                return bool(code[m.end():].strip())
        elif m[3] is None or m[3].upper() == "CASE":
            depth -= 1
    return False


def _kind_of(head: str) -> str:
    return next((kind for kind, pattern in _STATEMENTS if pattern.match(head)), "other")


def _same_run(st: Statement, prefix: str) -> bool:
    """A row of the run classifies as its first did: nothing past the shared bytes names a database (the same
    test _scan_qualifiers makes, on that part of the head alone: the shared bytes hold no quote, so literals start
    at the same places), and the scanner found nothing in it to report."""
    if st.problems or st.alt_head is not None or st.too_long or st.semicolons or not st.head.startswith(prefix):
        return False
    rest = st.head[len(prefix):]
    # Replacing literals only takes matches away (their quotes stay where they were): the exact test runs only on
    # rows where it may match at all.
    return not _may_qualify(rest) or _QUALIFIED.search(LITERALS.sub("''", rest)) is None


def _may_qualify(text: str) -> bool:
    """Whether _QUALIFIED may match in text: some dot follows (after whitespace) a name's last character. A name is a
    backquoted one or a whole word that starts with a letter, `_` or `$`: a dot after digits alone (a decimal, or
    digits ending a word that starts with a digit) follows no name. Cheaper than any regex on the row, and never
    False where _QUALIFIED matches (tests/backups/test_rowruns.py compares them)."""
    dot = text.find(".")
    while dot >= 0:
        left = text[:dot].rstrip().rstrip("0123456789")
        if left and (left[-1].isalnum() or left[-1] in "_$`"):
            return True
        dot = text.find(".", dot + 1)
    return False


class Collector:
    """Turns the scanner's statements into tables, objects and row counts."""

    def __init__(self, max_statement: int = MAX_STATEMENT) -> None:
        self.max_statement = max_statement
        # Why the dump cannot be trusted besides refused kinds: what the scanner cannot be sure the server reads as it
        # does, one line each, naming where (ambiguities, oversized statements).
        self.problems: list[str] = []
        self.database: str | None = None
        self.databases: list[str] = []
        self.tables: dict[tuple[str | None, str], DumpTable] = {}
        self.objects: dict[str, dict[tuple[str | None, str], DumpObject]] = {
            k: {} for k in ("view", "trigger", "routine", "event")}
        self.qualified: set[str] = set()
        self.unsafe: list[tuple[int, int, str]] = []
        self.client_commands: list[str] = []
        self.refused: list[str] = []
        self.named: list[tuple[str, str]] = []  # (database, statement) for every database a statement names
        self.created: list[str] = []  # CREATE DATABASE names
        self.dropped: list[str] = []  # DROP DATABASE names
        self.definers: list[tuple[int, int]] = []
        self.header = DumpHeader()
        self.features: set[str] = set()
        self.statements = 0
        self.last_table: str | None = None
        self.in_header = True
        # The classification of a run of INSERT rows (Statement.run), while no other statement comes between them.
        self._run: tuple[bytes, str, Classified, DumpTable] | None = None
        self._inserted: DumpTable | None = None  # the table the last INSERT went to

    def comment(self, text: str, offset: int) -> None:
        if offset > 16384 or not self.in_header:
            return
        for pattern, apply in ((_TOOL, self._tool), (_HOST, self._host), (_SERVER, self._server)):
            m = pattern.match(text)
            if m:
                apply(m)

    def client_command(self, text: str, offset: int) -> None:
        self.client_commands.append(text[:80])

    def _tool(self, m: re.Match[str]) -> None:
        self.header.tool, self.header.client = f"{m[1]} dump {m[2]}", m[3]

    def _host(self, m: re.Match[str]) -> None:
        self.header.host, self.header.database = m[1], m[2]

    def _server(self, m: re.Match[str]) -> None:
        self.header.server_version = m[1].strip()

    def statement(self, st: Statement) -> Classified:
        """Record one statement and say what it is, and why it must never run if it must not."""
        run = self._run
        if run is not None and st.run is run[0] and _same_run(st, run[1]):
            self.statements += 1
            table = run[3]
            table.inserts += 1
            table.rows += st.tuples
            if st.tuples > 1:
                self.features.add("extended-insert")
            return run[2]
        self._run = None
        self.statements += 1
        named, refused, problems = len(self.named), len(self.refused), len(self.problems)
        definers, unsafe = len(self.definers), len(self.unsafe)
        self.problems += [f"{p} (statement at byte {st.start:,})" for p in st.problems]
        for head in dict.fromkeys([st.head, st.alt_head or st.head]):
            if _ACTS_ON_TABLES.match(head):
                self._scan_qualifiers(head)
        if st.alt_head is not None and st.alt_head != st.head:
            self._alternative(st)
        definer = st.head[:6].upper() in ("CREATE", "ALTER ") and DEFINER_CLAUSE.search(st.head[:600].encode()) is not None
        if definer:
            self.definers.append((st.start, st.end))
        kind = self._classify(st)
        if st.semicolons:
            self._one_statement(st, kind)
        if st.too_long:
            self.problems.append(f"a statement longer than {self.max_statement:,} bytes (at byte {st.start:,}): "
                                 "no server takes it")
        classified = Classified(kind, self._refusal(refused, named, problems), definer)
        if st.run is not None and kind == "insert" and classified.refusal is None and not definer and (
                (len(self.named), len(self.refused), len(self.problems), len(self.definers), len(self.unsafe))
                == (named, refused, problems, definers, unsafe)):
            self._start_run(st, classified)
        return classified

    def _start_run(self, st: Statement, classified: Classified) -> None:
        """Keep a clean INSERT's classification for the rows after it that start with the same bytes (st.run), when
        those bytes alone decide it: they hold no quote (no literal runs on past them) and no qualified name, and the
        INSERT's table name ends inside them. Then a row whose tuples add no qualified name (_same_run) is the same
        insert into the same table: every other input of `statement` (the database in use, the session, the dump's
        tables) changes only through a statement between rows, which ends the run."""
        assert st.run is not None and self._inserted is not None
        prefix = " ".join(st.run.decode("utf-8", "replace").split())
        m = _STATEMENTS[1][1].match(st.head)
        if ("'" in prefix or '"' in prefix or _QUALIFIED.search(prefix) or not st.head.startswith(prefix)
                or m is None or m.end() >= len(prefix) or st.alt_head is not None or st.semicolons or st.too_long):
            return
        self._run = (st.run, prefix, classified, self._inserted)

    def _alternative(self, st: Statement) -> None:
        """A server that skips the statement's versioned comments reads `alt_head`: what it runs must be as safe,
        and the same kind of statement (or nothing at all)."""
        alt = st.alt_head or ""
        kind = _kind_of(alt)
        if kind == "refused":
            m = _STATEMENTS[0][1].match(alt)
            assert m is not None
            self._refused(m, st)
        elif alt and kind != _kind_of(st.head):
            self.problems.append(f"a statement that reads as {_kind_of(st.head)} on servers that run its versioned "
                                 f"comments and as {kind} on servers that skip them (at byte {st.start:,})")

    def _one_statement(self, st: Statement, kind: str) -> None:
        """A statement holding a `;` that is not the client's delimiter is sent whole, and the server (the client
        turns multi-statements on) ends a statement at every `;` outside a BEGIN … END body: only a routine,
        trigger or event whose body is such a block may hold one, and nothing may follow its END."""
        if kind in ("routine", "trigger", "event") and len(st.head.encode()) < LONG_HEAD_BYTES and \
                not _after_first_statement(st.head):
            return
        self.problems.append(f"a statement holding `;` that the server would run as more than one statement "
                             f"(at byte {st.start:,})")

    def _classify(self, st: Statement) -> str:
        for kind, pattern in _STATEMENTS:
            m = pattern.match(st.head)
            if m:
                getattr(self, f"_{kind}")(m, st)
                if kind != "set":
                    self.in_header = False
                return kind
        self.in_header = False
        return "other"

    def _refusal(self, refused: int, named: int, problems: int) -> str | None:
        """Why the statement just recorded must not run: a refused kind, or another database it names (as far as the
        dump's own database is known by now: its header's, or the database it created or used)."""
        reasons = [f"{kind} statement" for kind in self.refused[refused:]] + self.problems[problems:]
        own = self.header.database or (self.databases[0] if self.databases else None)
        reasons += [f"names database {db}" for db, _ in self.named[named:]
                    if own is not None and db.lower() != own.lower()]
        return "; ".join(dict.fromkeys(reasons)) or None

    def _scan_qualifiers(self, head: str) -> None:
        """Every `x`.`y` outside string literals names database x, unless x is an alias or a table of the dump
        qualifying a column (`UPDATE t AS a SET a.c = 1`) and never stands where a table does (`FROM x.y`)."""
        code = LITERALS.sub("''", head)
        matches = list(_QUALIFIED.finditer(code))
        if not matches:
            return
        standalone = {unquote(m[1]).lower() for m in re.finditer(rf"(?<![\w$`.])({IDENT})(?!\s*\.)(?![\w$`])", code)}
        known = {name.lower() for _, name in self.tables}
        clause = _CLAUSE.search(code, 6)
        table_list_end = clause.start() if clause else len(code)  # `UPDATE a, db.t AS x SET …`: a list of tables
        for m in matches:
            name = unquote(m[1])
            before = code[max(0, m.start() - 40) : m.start()]
            at_table = _TABLE_POSITION.search(before) is not None or (
                m.start() < table_list_end and before.rstrip().endswith(","))
            if not at_table and (name.lower() in standalone or name.lower() in known):
                continue
            self.qualified.add(name)
            self.named.append((name, head[:120]))

    def _qualified(self, qualifier: str | None, name: str) -> tuple[str | None, str]:
        if qualifier is not None and name:
            db = unquote(qualifier)
            self.qualified.add(db)
            return db, unquote(name)
        return self.database, unquote(qualifier or name)

    def _touch_table(self, db: str | None, name: str) -> DumpTable:
        key = (db, name)
        if key not in self.tables:
            self.tables[key] = DumpTable(name, db)
        self.last_table = name if db == self.database or db is None else f"{db}.{name}"
        return self.tables[key]

    def _insert(self, m: re.Match[str], st: Statement) -> None:
        table = self._inserted = self._touch_table(*self._qualified(m[1], m[2] or ""))
        table.inserts += 1
        table.rows += st.tuples
        if st.tuples > 1:
            self.features.add("extended-insert")
        if st.head[m.end():].lstrip().startswith("("):
            self.features.add("complete-insert")

    def _table(self, m: re.Match[str], st: Statement) -> None:
        self._touch_table(*self._qualified(m[1], m[2] or "")).created = True

    def _object(self, kind: str, key: tuple[str | None, str], obj: DumpObject) -> None:
        self.objects[kind][key] = obj

    def _view(self, m: re.Match[str], st: Statement) -> None:
        db, name = self._qualified(m[1], m[2] or "")
        self._object("view", (db, name), DumpObject(name, "view", db))

    def _trigger(self, m: re.Match[str], st: Statement) -> None:
        db, name = self._qualified(m[1], m[2] or "")
        _, table = self._qualified(m[5], m[6] or "")
        summary = f"{m[3].upper()} {m[4].upper()} ON {table}"
        self._object("trigger", (db, name), DumpObject(name, "trigger", db, table, summary))

    def _routine(self, m: re.Match[str], st: Statement) -> None:
        db, name = self._qualified(m[2], m[3] or "")
        self._object("routine", (db, name), DumpObject(name, m[1].lower(), db))

    def _event(self, m: re.Match[str], st: Statement) -> None:
        db, name = self._qualified(m[1], m[2] or "")
        self._object("event", (db, name), DumpObject(name, "event", db))

    def _create_database(self, m: re.Match[str], st: Statement) -> None:
        self._database(unquote(m[1]))
        self.created.append(unquote(m[1]))
        self.named.append((unquote(m[1]), st.head[:120]))
        self.features.add("databases")
        self.unsafe.append((st.start, st.end, "create_database"))

    def _use(self, m: re.Match[str], st: Statement) -> None:
        name = m[1]
        if name[:1] in ("'", '"'):
            name = re.sub(r"\\(.)", r"\1", name[1:-1].replace(name[0] * 2, name[0]))
        name = unquote(name)
        self._database(name)
        self.named.append((name, st.head[:120]))
        self.unsafe.append((st.start, st.end, "use"))

    def _database(self, name: str) -> None:
        self.database = name
        if name not in self.databases:
            self.databases.append(name)

    def _drop_database(self, m: re.Match[str], st: Statement) -> None:
        self.dropped.append(unquote(m[1]))
        self.named.append((unquote(m[1]), st.head[:120]))
        self.unsafe.append((st.start, st.end, "drop_database"))

    def _refused(self, m: re.Match[str], st: Statement) -> None:
        kind = " ".join(m[0].split()).upper()  # the keywords matched, e.g. CREATE USER, SET PASSWORD, FLUSH
        if kind.startswith("SELECT"):
            kind = "SELECT … INTO OUTFILE"
        elif kind.endswith("DIRECTORY"):
            kind = f"{kind.split()[0]} … {' '.join(kind.split()[-2:])}"  # CREATE … DATA DIRECTORY
        elif kind.startswith("XA"):
            kind = "XA"
        elif kind.endswith("SONAME") and kind.startswith("CREATE"):
            kind = "CREATE FUNCTION … SONAME"
        self.refused.append(kind)

    def _alter_database(self, m: re.Match[str], st: Statement) -> None:
        self.unsafe.append((st.start, st.end, "alter_database"))

    def _server_state(self, m: re.Match[str], st: Statement) -> None:
        self.unsafe.append((st.start, st.end, "server_state"))

    def _lock(self, m: re.Match[str], st: Statement) -> None:
        self.features.add("add-locks")

    def _disable_keys(self, m: re.Match[str], st: Statement) -> None:
        self.features.add("disable-keys")

    def _drop_table(self, m: re.Match[str], st: Statement) -> None:
        self.features.add("add-drop-table")

    def _set(self, m: re.Match[str], st: Statement) -> None:
        if not self.in_header:
            return
        body = m[1]
        if body.upper().startswith("NAMES "):
            self.header.settings["NAMES"] = body.split()[1].strip("'\"")
            return
        for name, value in _ASSIGNMENT.findall(body):
            if not value.strip().startswith("@"):
                self.header.settings[name.upper()] = value.strip().strip("'")


