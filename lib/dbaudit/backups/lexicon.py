"""The MySQL lexicon a dump is read with: identifiers, qualified names, string literals, DEFINER clauses.

One place for the regular expressions that recognise MySQL names and literals, shared by the statement
classification (backups.statements) and the restore stream editor (backups.restore).
"""

from __future__ import annotations

import re

NAME = r"(`(?:[^`]|``)+`|[\w$]+)"  # a backquoted or bare identifier, captured
QNAME = rf"{NAME}(?:\s*\.\s*{NAME})?"  # name or qualifier.name, both captured
OR_REPLACE = r"(?:OR\s+REPLACE\s+)?"
DEFINER = r"(?:DEFINER\s*=\s*\S+\s+)?"
IF_NOT_EXISTS = r"(?:IF\s+NOT\s+EXISTS\s+)?"
IDENT = r"(?:`(?:[^`]|``)+`|[A-Za-z_$][\w$]*)"  # an identifier, not captured
LITERALS = re.compile(r"'(?:[^'\\]|\\.|'')*(?:'|$)|\"(?:[^\"\\]|\\.|\"\")*(?:\"|$)", re.DOTALL)
DEFINER_CLAUSE = re.compile(rb"DEFINER\s*=\s*(?:`(?:[^`]|``)*`|'(?:[^'\\]|\\.)*'|CURRENT_USER(?:\s*\(\s*\))?|[\w.$-]+)"
                            rb"(?:\s*@\s*(?:`(?:[^`]|``)*`|'(?:[^'\\]|\\.)*'|[\w.%$:-]+))?", re.IGNORECASE)


def unquote(name: str) -> str:
    """`a``b` -> a`b; a bare name as it is."""
    if len(name) >= 2 and name[0] == name[-1] == "`":
        return name[1:-1].replace("``", "`")
    return name
