"""Text fit for a terminal: names from the audited database or a dump cannot forge output.

A table called "t\\nverdict: PASS" printed raw adds a line the operator would read as dbaudit's own; an
ESC sequence can recolour, move the cursor or retitle the window; a bidi override reorders what is shown.
Every such character is shown as a visible escape instead (\\n, \\x1b, \\u202e), so one printed line is
one line of dbaudit's output, and a name reads exactly as it is stored.
"""

from __future__ import annotations

import unicodedata

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Format characters that change how text is displayed, not just what: bidi controls and invisibles.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def visible(text: str) -> str:
    """The text with every control, format and line-separator character replaced by a visible escape."""
    if text.isprintable():  # the common case, and cheap
        return text
    return "".join(_escape(ch) for ch in text)


def _escape(ch: str) -> str:
    if ch == " " or unicodedata.category(ch) not in _UNSAFE_CATEGORIES:
        return ch
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
