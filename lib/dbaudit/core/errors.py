"""The one exception type users see: its message is a single line fit for a terminal."""

from __future__ import annotations

from dbaudit.core.secrets import mask_text


class DbauditError(Exception):
    """A problem with the user's input or environment (exit code 2, no traceback)."""

    def __init__(self, message: str) -> None:
        super().__init__(first_line(message))


def first_line(message: object, limit: int = 300) -> str:
    """Driver errors span many lines (SQL, background links); a CLI error must not. Credentials are
    masked first: cut short, `user:password@host` would lose the `@` that marks the password."""
    text = mask_text(" ".join(str(message).split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"
