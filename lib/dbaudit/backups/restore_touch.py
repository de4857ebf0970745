"""Which tables each statement of a dump may change: what lets restore-check prove a table while the next loads.

restore-check fingerprints (or counts) a table on a second session as soon as the dump's statements for it
are done (backups.restore_proof). That early reading is used only while no later statement could have
changed the table, so every statement is read here, in dump order, from the scanner's classification
(`ScannedStatement.kind`) and its exact bytes, into one of:

- NOTHING: it changes no table's rows: a session SET without parentheses (no function can run), LOCK /
  UNLOCK TABLES, COMMIT / BEGIN / ROLLBACK, ALTER TABLE … ENABLE/DISABLE KEYS, DROP VIEW, and the creation
  of a view, trigger, routine or event (the loader then reads which triggers and routines exist);
- one table (its index in `names`): `INSERT [IGNORE] INTO t [(columns)] VALUES (…` with no ON DUPLICATE
  KEY UPDATE (a candidate: the loader confirms at run time that `t` is a plain base table of a local engine
  with no trigger and that the database holds no routine a value could call), `CREATE TABLE t (…` without
  a SELECT, `DROP TABLE [IF EXISTS] t`;
- EVERYTHING: anything else, and whatever cannot be read with certainty (a qualified or non-ASCII name,
  comments inside the words read, an executable comment that some servers skip): every table read so
  far must be read again.

Only the words these patterns read decide; they admit no comment, string or other token in between, so
what the server runs is what was read (a statement wrapped whole in one executable comment, `/*!40101 SET … */`,
is read inside it: a server runs that or nothing). Pure logic: no database here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dbaudit.backups.lexicon import QNAME, unquote

NOTHING, EVERYTHING = -1, -2
# Flags for the loader: what it must read from the server after running the statement.
CANDIDATE = 1  # a one-table INSERT: the table must be plain, without triggers, in a database without routines
CREATED = 2  # CREATE TABLE: read the new table's engine
REFRESH = 4  # objects may have appeared or changed: read the triggers, routines and engines again
LOCKS = 8  # LOCK TABLES: hold early readings back until UNLOCK TABLES
UNLOCKS = 16

# An executable comment around a whole statement: a server runs what it holds, or nothing (an empty query fails).
_WRAPPED = re.compile(rb"/\*M?!(?:\d{5,6})?[ \t\r\n]((?:[^*]|\*(?!/))*)\*/\s*\Z", re.DOTALL)
_EXECUTABLE = re.compile(rb"/\*(M?)!(\d*)")
_COLUMN = r"(?:`(?:[^`]|``)+`|[\w$]+)"
_INSERT = re.compile(rf"INSERT\s+(?:IGNORE\s+)?INTO\s+{QNAME}\s*(?:\(\s*{_COLUMN}(?:\s*,\s*{_COLUMN})*\s*\)\s*)?"
                     r"VALUES?\s*\(".encode(), re.IGNORECASE)
_CREATE_TABLE = re.compile(rf"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?{QNAME}\s*\(".encode(), re.IGNORECASE)
_DROP_TABLE = re.compile(rf"DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?{QNAME}\s*\Z".encode(), re.IGNORECASE)
_DROP_VIEW = re.compile(rf"DROP\s+VIEW\s+(?:IF\s+EXISTS\s+)?{QNAME}(?:\s*,\s*{QNAME})*\s*\Z".encode(), re.IGNORECASE)
_KEYS = re.compile(rf"ALTER\s+TABLE\s+{QNAME}\s+(?:ENABLE|DISABLE)\s+KEYS\s*\Z".encode(), re.IGNORECASE)
_LOCK = re.compile(rb"LOCK\s+TABLES?\s", re.IGNORECASE)
_UNLOCK = re.compile(rb"UNLOCK\s+TABLES?\s*\Z", re.IGNORECASE)
_TRANSACTION = re.compile(rb"(?:COMMIT|BEGIN|ROLLBACK|START\s+TRANSACTION)(?:\s+WORK)?\s*\Z", re.IGNORECASE)
_SET = re.compile(rb"SET\s[^()/#;]*\Z", re.IGNORECASE)  # no call, no subquery, no comment
_SET_STATEMENT = re.compile(rb"\b(?:STATEMENT|FOR)\b|--", re.IGNORECASE)  # SET STATEMENT … FOR <another statement>
_OBJECTS = frozenset({"view", "trigger", "routine", "event"})
_NOT_RESTORED = frozenset({"use", "create_database", "drop_database", "alter_database", "server_state"})


def reading(text: bytes) -> bytes:
    """The statement as every server reads it when it is wrapped whole in an always-run executable comment."""
    m = _WRAPPED.match(text)
    return m[1].rstrip() if m and b"/*" not in m[1] else text


def sure_of_comments(text: bytes, mariadb: bool | None) -> bool:
    """Whether every executable comment of the statement runs on this server, as the scanner's head reads it:
    five-digit versions below 50700, or (MariaDB) any five-digit version, which it always skips alike."""
    for m in _EXECUTABLE.finditer(text):
        if m[1] or len(m[2]) > 5 or mariadb is None:
            return False
        if m[2] and int(m[2]) >= 50700 and not mariadb:
            return False
    return True


@dataclass
class Touches:
    """Each statement's effect on tables, in dump order: `classify` returns (NOTHING | EVERYTHING | table
    index, flags); `names[i]` is the table (lower-cased: two names that differ in case count as one)."""

    mariadb: bool | None = None  # None: the server is not known, every executable comment is unsure
    names: list[str] = field(default_factory=list)
    _index: dict[str, int] = field(default_factory=dict)

    def _table(self, m: re.Match[bytes]) -> int:
        if m[2] is not None:  # qualified: whatever the qualifier, not read as this database's table
            return EVERYTHING
        name = unquote(m[1].decode("utf-8", "replace"))
        if not name.isascii() or not name:
            return EVERYTHING
        key = name.lower()
        if key not in self._index:
            self._index[key] = len(self.names)
            self.names.append(key)
        return self._index[key]

    def classify(self, kind: str, text: bytes | None) -> tuple[int, int]:
        if kind in _NOT_RESTORED:
            return NOTHING, 0  # never sent
        if text is None:
            return EVERYTHING, REFRESH
        sql = reading(text)
        if kind == "insert":
            m = _INSERT.match(sql)
            if m is None or b"duplicate" in sql.lower():
                return EVERYTHING, REFRESH
            table = self._table(m)
            return (table, CANDIDATE) if table >= 0 else (EVERYTHING, REFRESH)
        if kind == "set":
            return (NOTHING, 0) if _SET.match(sql) and not _SET_STATEMENT.search(sql) else (EVERYTHING, REFRESH)
        if kind == "lock" and _LOCK.match(sql):
            return NOTHING, LOCKS
        if _UNLOCK.match(sql):
            return NOTHING, UNLOCKS
        if _TRANSACTION.match(sql) or _KEYS.match(sql) or _DROP_VIEW.match(sql):
            return NOTHING, 0
        if kind == "table":
            m = _CREATE_TABLE.match(sql)
            if m is None or b"select" in sql.lower():
                return EVERYTHING, REFRESH
            table = self._table(m)
            return (table, CREATED) if table >= 0 else (EVERYTHING, REFRESH)
        if kind == "drop_table":
            m = _DROP_TABLE.match(sql)
            table = self._table(m) if m else EVERYTHING
            return (table, 0) if table >= 0 else (EVERYTHING, REFRESH)
        if kind in _OBJECTS and sure_of_comments(text, self.mariadb):
            return NOTHING, REFRESH  # defines code, changes no rows; the loader reads what exists now
        return EVERYTHING, REFRESH
