"""Statements sqlglot does not model (exp.Command or a parse error), read from sqlglot's own tokens.

Each stays a warning in the derived file; these only say what it still does, where its leading words
tell: RENAME TABLE a TO b; CREATE [DEFINER=…] TRIGGER|PROCEDURE|FUNCTION|EVENT|VIEW name;
DROP EVENT name; CREATE INDEX … USING BTREE (USING after the columns); CREATE TABLE with trailing
options sqlglot does not know (PARTITION BY, WITHOUT ROWID); an ALTER TABLE whose clauses are read one
by one, so one clause sqlglot does not know (ADD CHECK without a name, OWNER TO, a NOT VALID in the
middle) does not hide the others.
"""

from __future__ import annotations

import re

from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError
from sqlglot.tokens import Token, TokenType

from dbaudit.audit.derive.ops import (
    AddCheck,
    Allow,
    CheckSpec,
    CreateObject,
    CreateTable,
    DropObject,
    Op,
    RenameTable,
    Source,
    TableOptions,
    Unparsed,
)
from dbaudit.audit.derive.reader import OBJECT_WORDS, READ, read_statement

_ADD_COLUMNS = re.compile(r"^ADD(?:\s+COLUMN)?\s*\((.*)\)\s*$", re.IGNORECASE | re.DOTALL)
# ALTER TABLE clauses that change nothing a snapshot records.
_NO_OP_CLAUSES = ("OWNER TO", "CLUSTER ON", "SET WITHOUT", "DISABLE KEYS", "ENABLE KEYS", "FORCE", "ORDER BY",
                  "ANALYZE PARTITION", "CHECK PARTITION", "OPTIMIZE PARTITION", "TRUNCATE PARTITION")
# Clauses that change a table property snapshots record (options, or the catch-all definition: storage,
# statistics targets, replica identity, tablespace, a validated constraint): allowed as table_changed.
_TABLE_PROPERTY_CLAUSES = ("ENABLE ROW LEVEL SECURITY", "DISABLE ROW LEVEL SECURITY", "FORCE ROW LEVEL SECURITY",
                           "NO FORCE ROW LEVEL SECURITY", "ENABLE TRIGGER", "DISABLE TRIGGER", "ENABLE ALWAYS TRIGGER",
                           "ENABLE REPLICA TRIGGER", "PARTITION BY", "REMOVE PARTITIONING", "ADD PARTITION",
                           "DROP PARTITION", "ATTACH PARTITION", "DETACH PARTITION", "REORGANIZE PARTITION",
                           "COALESCE PARTITION", "COMMENT", "SET STATISTICS", "SET STORAGE", "REPLICA IDENTITY",
                           "SET TABLESPACE", "SET (", "RESET (", "SET LOGGED", "SET UNLOGGED", "ALTER COLUMN",
                           "VALIDATE CONSTRAINT", "ALTER CONSTRAINT", "ALTER INDEX")




def from_tokens(text: str, src: Source, dialect: str, reason: str) -> Unparsed:
    """RENAME TABLE a TO b, CREATE [DEFINER=…] TRIGGER|PROCEDURE|FUNCTION|EVENT name, DROP EVENT name."""
    try:
        tokens = _tokens_of(text, dialect)
    except SqlglotError:
        return Unparsed(src, reason)
    words = [t.text.upper() for t in tokens]
    if words[:2] == ["CREATE", "INDEX"] or words[:3] == ["CREATE", "UNIQUE", "INDEX"]:
        retried = _index_using_last(text, src, dialect, reason)
        if retried is not None:
            return retried
    if "TABLE" in words[1:4] and words[0] == "CREATE" and dialect == "sqlite" and "CONFLICT" in words:
        # SQLite's ON CONFLICT clause of a constraint (sqlglot does not know it) changes no recorded field
        trimmed = re.sub(r"\bON\s+CONFLICT\s+(ROLLBACK|ABORT|FAIL|IGNORE|REPLACE)\b", "", text, flags=re.IGNORECASE)
        ops = read_statement(trimmed, src, dialect)
        if ops and not any(isinstance(op, Unparsed) for op in ops):
            return Unparsed(src, reason, "creates a table (read without its ON CONFLICT clauses)", ops)
    if "TABLE" in words[1:4] and words[0] == "CREATE":
        retried = _table_without_options(text, tokens, src, dialect, reason)
        if retried is not None:
            return retried
    if words[:2] == ["ALTER", "TABLE"]:
        return _alter_clauses(text, tokens, src, dialect, reason)
    if words[:1] == ["ALTER"] and re.search(r"\bOWNER\s+TO\b", text, re.IGNORECASE):
        return Unparsed(src, reason, "changes nothing a snapshot records (a new owner)")
    if words[:2] == ["RENAME", "TABLE"]:
        pairs = _rename_pairs(tokens[2:], dialect)
        if pairs:
            return Unparsed(src, reason, "renames " + ", ".join(f"{a} to {b}" for a, b in pairs),
                            [RenameTable(src, a, b) for a, b in pairs])
    created = _created_object(tokens, words, dialect)
    if created is not None:
        kind, name, table, routine = created
        op = CreateObject(src, kind, name, table, routine, replace="REPLACE" in words[:3],
                          if_not_exists="EXISTS" in words[:8])
        return Unparsed(src, reason, f"creates {routine or kind} {name}" + (f" on {table}" if table else ""), [op])
    altered = _altered_object(tokens, words, dialect, src, reason)
    if altered is not None:
        return altered
    if words[:2] == ["DROP", "EVENT"] and len(tokens) > 2:
        exists = words[2:4] == ["IF", "EXISTS"]
        name = _name(tokens[4 if exists and len(tokens) > 4 else 2], dialect)
        return Unparsed(src, reason, f"drops event {name}", [DropObject(src, "event", name, if_exists=exists)])
    return Unparsed(src, reason)


# Objects whose ALTER sqlglot does not read: the change kind it makes (the diff names the object).
_ALTERED = {"EVENT": "event", "SEQUENCE": "sequence", "TYPE": "type", "DOMAIN": "type", "EXTENSION": "extension"}


def _altered_object(tokens: list[Token], words: list[str], dialect: str, src: Source, reason: str) -> Unparsed | None:
    """ALTER [DEFINER=…] EVENT|SEQUENCE|TYPE|DOMAIN|EXTENSION name …, CREATE|ALTER|DROP POLICY p ON t,
    CREATE|DROP EXTENSION x."""
    if words[:1] not in (["ALTER"], ["CREATE"], ["DROP"]):
        return None
    at = next((i for i in range(1, min(len(words), 8)) if words[i] in (*_ALTERED, "POLICY")), None)
    if at is None or (at > 1 and "DEFINER" not in words[1:at]):
        return None
    kind, name_at = words[at], at + 1
    while name_at < len(words) and words[name_at] in ("IF", "NOT", "EXISTS"):
        name_at += 1
    if name_at >= len(tokens):
        return None
    name = _name(tokens[name_at], dialect)
    if kind == "POLICY":
        if "ON" not in words[name_at:] or words.index("ON", name_at) + 1 >= len(tokens):
            return None
        table = _name(tokens[words.index("ON", name_at) + 1], dialect)
        action = {"CREATE": "added", "DROP": "removed"}.get(words[0], "changed")
        why = f"{words[0]} POLICY {name} ON {table}"
        # Dropped and created again in one migration, a policy shows as changed.
        return Unparsed(src, reason, f"{words[0].lower()}s policy {name} on {table}",
                        [Allow(src, f"policy_{a}", f"{table}.{name}", why) for a in {action, "changed"}])
    if kind in ("TYPE", "DOMAIN") and words[0] != "ALTER":
        op: Op = CreateObject(src, "type", name) if words[0] == "CREATE" else DropObject(src, "type", name)
        return Unparsed(src, reason, f"{words[0].lower()}s type {name}", [op])
    if kind == "EXTENSION" and words[0] != "ALTER":
        action = "added" if words[0] == "CREATE" else "removed"
        return Unparsed(src, reason, f"{words[0].lower()}s extension {name}",
                        [Allow(src, f"extension_{action}", name, f"{words[0]} EXTENSION {name}")])
    if words[0] != "ALTER":
        return None
    changed = _ALTERED[kind]
    renamed = next((i for i in range(name_at + 1, len(words) - 2) if words[i:i + 2] == ["RENAME", "TO"]), None)
    if renamed is not None and kind == "EVENT":
        new = _name(tokens[renamed + 2], dialect)
        return Unparsed(src, reason, f"renames event {name} to {new}",
                        [DropObject(src, "event", name), CreateObject(src, "event", new)])
    return Unparsed(src, reason, f"alters {changed} {name}", [Allow(src, f"{changed}_changed", name,
                    f"ALTER {kind} {name} changes it (not read further: what changes is not checked)")])


def _tokens_of(text: str, dialect: str) -> list[Token]:
    tokenize = Dialect.get_or_raise(READ[dialect]).tokenize
    tokens = tokenize(text)
    if len(tokens) == 2 and tokens[1].token_type == TokenType.STRING and tokens[0].token_type != TokenType.STRING:
        # The MySQL tokenizer keeps the rest of a command (RENAME …) as one string: read that too.
        tokens = [tokens[0], *tokenize(text[tokens[0].end + 1 :])]
    return tokens


def _index_using_last(text: str, src: Source, dialect: str, reason: str) -> Unparsed | None:
    """`CREATE INDEX i ON t (a) USING BTREE`: sqlglot only knows USING before ON. On MySQL the index type
    BTREE/HASH changes nothing a snapshot records (InnoDB builds BTREE either way), so it is read without it."""
    if dialect == "postgresql":  # PostgreSQL 15 UNIQUE … NULLS NOT DISTINCT: read without it
        trimmed = re.sub(r"\s+NULLS\s+NOT\s+DISTINCT\b", "", text, flags=re.IGNORECASE)
    else:
        trimmed = re.sub(r"\s+USING\s+(BTREE|HASH)\s*$", "", text, flags=re.IGNORECASE)
    if trimmed == text or dialect not in ("mysql", "postgresql"):
        return None
    ops = read_statement(trimmed, src, dialect)
    if not ops or any(isinstance(op, Unparsed) for op in ops):
        return None
    return Unparsed(src, reason, "creates an index (read without its trailing USING clause)", ops)


def _table_without_options(text: str, tokens: list[Token], src: Source, dialect: str, reason: str) -> Unparsed | None:
    """CREATE TABLE t (…) <options sqlglot does not know>: read up to the column list's closing parenthesis."""
    start = next((k for k, t in enumerate(tokens) if t.token_type == TokenType.L_PAREN), None)
    close = _matching(tokens, start) if start is not None else None
    if close is None or close == len(tokens) - 1:
        return None
    trimmed, rest = text[: tokens[close].end + 1], text[tokens[close].end + 1 :].strip()
    ops = read_statement(trimmed, src, dialect)
    if len(ops) != 1 or not isinstance(ops[0], CreateTable):
        return None
    if re.search(r"\bWITHOUT\s+ROWID\b", rest, re.IGNORECASE) and dialect == "sqlite":
        ops[0].options["engine"] = "WITHOUT ROWID"  # how the snapshot records it
    return Unparsed(src, reason, f"creates table {ops[0].table} (read without: {_short(rest)})", ops)


def _alter_clauses(text: str, tokens: list[Token], src: Source, dialect: str, reason: str) -> Unparsed:
    """ALTER TABLE t a, b, c: each clause read as its own ALTER TABLE t a."""
    i = 2
    while i < len(tokens) and tokens[i].text.upper() in ("IF", "EXISTS", "ONLY"):
        i += 1
    if i >= len(tokens):
        return Unparsed(src, reason)
    while i + 2 < len(tokens) and tokens[i + 1].token_type == TokenType.DOT:
        i += 2
    table = _name(tokens[i], dialect)
    head = text[: tokens[i].end + 1]
    clauses = _clauses(text, tokens[i + 1 :])
    ops: list[Op] = []
    for clause in clauses:
        upper = " ".join(clause.upper().split())
        if upper.startswith(_NO_OP_CLAUSES) and not upper.startswith("FORCE ROW"):
            continue
        if upper.startswith(_TABLE_PROPERTY_CLAUSES):
            ops.append(TableOptions(src, table, {"options": [_short(clause, 60)]}))
            continue
        if upper.startswith("ADD CHECK"):  # sqlglot only reads a CHECK with a name
            ops.append(AddCheck(src, table, CheckSpec(None, clause[len("ADD CHECK"):].strip())))
            continue
        several = _ADD_COLUMNS.match(clause)
        if several:  # MySQL ADD [COLUMN] (a int, b int)
            inner = several.group(1)
            found = [op for part in _clauses(inner, _tokens_of(inner, dialect))
                     for op in read_statement(f"{head} ADD COLUMN {part}", src, dialect)]
        else:
            found = read_statement(f"{head} {clause}", src, dialect) if len(clauses) > 1 else []
        if not found or (len(found) == 1 and isinstance(found[0], Unparsed) and not found[0].ops):
            ops.append(TableOptions(src, table, {"unread": _short(clause)}))
        else:
            ops += [o for op in found for o in (op.ops if isinstance(op, Unparsed) else [op])]
    unread = [str(op.attrs["unread"]) for op in ops if isinstance(op, TableOptions) and "unread" in op.attrs]
    if not unread:
        if not ops:
            return Unparsed(src, reason, f"changes nothing a snapshot records ({_short(clauses[0] if clauses else '', 40)})")
        return Unparsed(src, reason, f"read clause by clause ({len(clauses)} on {table})", ops)
    what = "; ".join(_short(c, 50) for c in unread)
    return Unparsed(src, reason, f"clause(s) not read: {what}: any change to {table} is allowed", ops)


def _clauses(text: str, tokens: list[Token]) -> list[str]:
    parts, depth, start = [], 0, None
    for token in tokens:
        if token.token_type == TokenType.L_PAREN:
            depth += 1
        elif token.token_type == TokenType.R_PAREN:
            depth -= 1
        if token.token_type == TokenType.COMMA and depth == 0:
            if start is not None:
                parts.append(text[start : token.start].strip())
            start = None
            continue
        if start is None:
            start = token.start
    if start is not None:
        parts.append(text[start:].strip().rstrip(";"))
    return [p for p in parts if p]


def _matching(tokens: list[Token], start: int) -> int | None:
    depth = 0
    for k in range(start, len(tokens)):
        depth += {TokenType.L_PAREN: 1, TokenType.R_PAREN: -1}.get(tokens[k].token_type, 0)
        if depth == 0:
            return k
    return None


def _short(text: str, width: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _rename_pairs(rest: list[Token], dialect: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    while len(rest) >= 3 and rest[1].text.upper() == "TO":
        pairs.append((_name(rest[0], dialect), _name(rest[2], dialect)))
        rest = rest[4:] if len(rest) > 3 and rest[3].token_type == TokenType.COMMA else rest[3:]
    return pairs if not rest else []


def _created_object(tokens: list[Token], words: list[str], dialect: str) -> tuple[str, str, str | None, str | None] | None:
    """CREATE [OR REPLACE] [DEFINER=…] [TEMPORARY] TRIGGER|PROCEDURE|FUNCTION|EVENT [IF NOT EXISTS] [schema.]name."""
    if not words or words[0] != "CREATE":
        return None
    i = next((k for k, w in enumerate(words[:12]) if w in OBJECT_WORDS), None)
    if i is None or words[i] == "SEQUENCE" or {"TABLE", "INDEX"} & set(words[:i]):
        return None
    word = words[i]
    i += 4 if words[i + 1 : i + 4] == ["IF", "NOT", "EXISTS"] else 1
    if i >= len(tokens):
        return None
    if i + 2 < len(tokens) and tokens[i + 1].token_type == TokenType.DOT:
        i += 2
    name = _name(tokens[i], dialect)
    table = None
    if word == "TRIGGER" and "ON" in words[i:]:
        j = words.index("ON", i) + 1
        if j + 2 < len(tokens) and tokens[j + 1].token_type == TokenType.DOT:
            j += 2
        table = _name(tokens[j], dialect) if j < len(tokens) else None
    return OBJECT_WORDS[word], name, table, word.lower() if word in ("PROCEDURE", "FUNCTION") else None


def _name(token: Token, dialect: str) -> str:
    quoted = token.token_type == TokenType.IDENTIFIER
    return token.text if quoted or dialect != "postgresql" else token.text.lower()
