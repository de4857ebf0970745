"""Events restored disabled: `CREATE EVENT` and `ALTER EVENT` rewritten so no restored event ever fires.

A restored event would run on the server's event scheduler, on its own schedule, after the check is over
(or in a database kept with --keep). The rewrite is done on the statement's own tokens: strings, comments
and the executable comments a server of this version would skip (`/*!99999 …*/`) are stepped over, and at
the top level (outside parentheses) between `EVENT` and `DO` an `ENABLE` becomes `DISABLE`, or `DISABLE` is
inserted before `COMMENT`/`DO` when the statement names no status. The loader checks afterwards that every
event of the scratch database is disabled (a statement that fooled this reading fails the restore).
"""

from __future__ import annotations

import re

_TOKEN = re.compile(
    rb"(?P<ws>\s+)"
    rb"|(?P<exec>/\*(?P<maria>M?)!(?P<version>\d{0,6}))"
    rb"|(?P<close>\*/)"
    rb"|(?P<comment>/\*.*?(?:\*/|\Z)|--(?:[ \t\r\f\v][^\n]*)?(?:\n|\Z)|\#[^\n]*)"
    rb"|(?P<string>'(?:[^'\\]|\\.|'')*(?:'|\Z)|\"(?:[^\"\\]|\\.|\"\")*(?:\"|\Z)|`(?:[^`]|``)*(?:`|\Z))"
    rb"|(?P<word>[A-Za-z_$][\w$]*)"
    rb"|(?P<other>.)",
    re.DOTALL,
)
_ALTER_EVENT = re.compile(r"^ALTER\s+(?:DEFINER\s*=\s*\S+\s+)?EVENT\b", re.IGNORECASE)


def is_alter_event(head: str) -> bool:
    return _ALTER_EVENT.match(head) is not None


def version_number(version: str) -> int:
    """`10.11.6-MariaDB` -> 101106, `8.0.36` -> 80036: what `/*!NNNNN` is compared with."""
    parts = [int(p) for p in re.findall(r"\d+", version.split("-", 1)[0])[:3]] + [0, 0, 0]
    return parts[0] * 10000 + parts[1] * 100 + parts[2]


def _words(text: bytes, server: int, mariadb: bool) -> list[tuple[bytes, int, int]]:
    """The top-level words (upper-cased) with their byte ranges, as this server reads the statement."""
    words: list[tuple[bytes, int, int]] = []
    depth, hidden, in_exec = 0, False, False
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        if kind == "exec" and not in_exec:
            digits = m["version"]
            applies = (not m["maria"] or mariadb) and (not digits or int(digits[:6] if mariadb else digits[:5]) <= server)
            in_exec, hidden = True, not applies
        elif kind == "close" and in_exec:
            in_exec, hidden = False, False
        elif hidden:
            continue
        elif kind == "other":
            depth += {b"(": 1, b")": -1}.get(m[0], 0)
        elif kind == "word" and depth == 0:
            words.append((m[0].upper(), m.start(), m.end()))
    return words


def disabled_event(text: bytes, server_version: str, mariadb: bool) -> bytes | None:
    """`CREATE EVENT …` / `ALTER EVENT …` that leaves the event disabled; None when it cannot be read safely."""
    words = _words(text, version_number(server_version), mariadb)
    names = [w for w, _, _ in words]
    if b"EVENT" not in names:
        return None
    start = names.index(b"EVENT")
    create = b"CREATE" in names[:start]
    stop = names.index(b"DO", start) if b"DO" in names[start:] else None
    if create and stop is None:
        return None  # CREATE EVENT without a body it can see: nothing to place DISABLE before
    span = words[start:stop]
    if any(w == b"DISABLE" for w, _, _ in span):
        return text if not any(w == b"ENABLE" for w, _, _ in span) else None
    enables = [(a, b) for w, a, b in span if w == b"ENABLE"]
    if enables:
        out = text
        for a, b in reversed(enables):
            out = out[:a] + b"DISABLE" + out[b:]
        return out
    if not create:
        return text  # ALTER EVENT … RENAME / ON SCHEDULE …: the status stays as it is (disabled)
    comment = [a for w, a, _ in span if w == b"COMMENT"]
    at = comment[0] if comment else words[stop][1]  # type: ignore[index]
    return text[:at] + b"DISABLE " + text[at:]
