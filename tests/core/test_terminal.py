"""Names shown on the terminal cannot add lines, move the cursor or reorder text."""

from __future__ import annotations

import pytest

from dbaudit.core.terminal import visible


@pytest.mark.parametrize(("raw", "shown"), [
    ("t\nverdict: PASS", "t\\nverdict: PASS"),
    ("t\r\nPASS", "t\\r\\nPASS"),
    ("a\tb", "a\\tb"),
    ("\x1b[2K\x1b[1Averdict: PASS", "\\x1b[2K\\x1b[1Averdict: PASS"),
    ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),
    ("evil\u202etxt.exe", "evil\\u202etxt.exe"),  # right-to-left override
    ("a\u2028b\u2029c", "a\\u2028b\\u2029c"),  # line and paragraph separators
    ("zero\u200bwidth", "zero\\u200bwidth"),
    ("del\x7f c1\x85 \x9b", "del\\x7f c1\\x85 \\x9b"),
    ("nul\x00", "nul\\x00"),
])
def test_control_and_format_characters_become_visible_escapes(raw: str, shown: str) -> None:
    assert visible(raw) == shown
    assert "\n" not in visible(raw) and "\x1b" not in visible(raw)


@pytest.mark.parametrize("text", ["chats", "Straße 名前 😀", "a b\u00a0c", "back\\slash", ""])
def test_printable_text_is_unchanged(text: str) -> None:
    assert visible(text) == text
