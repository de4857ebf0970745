"""How an expectation's attribute compares with what a snapshot recorded, across server spellings.

The same column reads `int(11)` on MariaDB, `int` on MySQL 8 and `INT` on SQLite; a default reads
`'meta'` on MariaDB, `meta` on MySQL 8 and `'meta'::character varying` on PostgreSQL. An expectation
derived from a migration states what the statement says, so both sides are brought to one spelling
before they are compared: nothing a server adds of its own (display widths, casts, quotes, the
parentheses of `current_timestamp()`) can make a correct migration fail, and nothing that changes
the meaning (a length, a scale, an enum value, unsigned) is thrown away.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

# MySQL integer display widths (int(11), bigint(20) unsigned) are cosmetic and gone in MySQL 8.0.19+.
_INT_WIDTH = re.compile(r"\b(tinyint|smallint|mediumint|int|integer|bigint)\s*\(\s*\d+\s*\)")
# Aliases one server family stores under another name; never two different types.
_TYPE_ALIASES = (
    (re.compile(r"\binteger\b"), "int"),
    (re.compile(r"\bbool(ean)?\b"), "tinyint"),  # MySQL stores BOOLEAN as tinyint(1)
    (re.compile(r"^json$"), "longtext"),  # MariaDB stores JSON as longtext (plus a json_valid CHECK)
)
_SPACES = re.compile(r"\s+")
_OPEN, _CLOSE, _COMMA = re.compile(r"\s*\(\s*"), re.compile(r"\s*\)"), re.compile(r"\s*,\s*")
# A PostgreSQL cast the catalog appends to a default: 'meta'::character varying, '-1'::integer.
_CAST = re.compile(r"::[a-z_][a-z0-9_ ]*(\([0-9, ]*\))?(\[\])*$")
_NOW = re.compile(r"\b(current_timestamp|now|localtimestamp)\b(\s*\(\s*\))?")


def canonical_type(value: str) -> str:
    """A column type with server cosmetics removed: case, spacing, integer display widths, aliases."""
    text = _quoted_aware_lower(value.strip())
    text = _COMMA.sub(", ", _CLOSE.sub(")", _OPEN.sub("(", _SPACES.sub(" ", text))))
    text = _INT_WIDTH.sub(r"\1", text)
    for pattern, replacement in _TYPE_ALIASES:
        text = pattern.sub(replacement, text)
    return text.strip()


def canonical_default(value: Any) -> Any:
    """A default expression as its value: quotes, casts, `()` and number formatting removed."""
    if value is None:
        return None
    if not isinstance(value, str):
        return str(value).lower() if isinstance(value, bool) else _number(str(value))
    text = value.strip()
    if text.upper() == "NULL":
        return None  # SQLite reports DEFAULT NULL as the text NULL, the others as no default
    while True:  # '-1'::integer, ('x'::text)::character varying
        stripped = _CAST.sub("", text.removeprefix("(").removesuffix(")") if _wrapped(text) else text).strip()
        if stripped == text:
            break
        text = stripped
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return _number(text[1:-1].replace("''", "'")).lower()
    return _number(_NOW.sub(_now, _SPACES.sub(" ", text.lower())))


def canonical_extra(value: str) -> str:
    """auto_increment, on update current_timestamp(): case and the `()` MariaDB adds removed."""
    return _NOW.sub(_now, _SPACES.sub(" ", value.strip().lower()))


def same_attribute(key: str, actual: Any, wanted: Any) -> bool:
    """Does the recorded value `actual` satisfy the expectation's `wanted`, for attribute `key`?"""
    return mismatch(key, actual, wanted) is None


def mismatch(key: str, actual: Any, wanted: Any) -> str | None:
    """None when `actual` satisfies `wanted`; otherwise what differs, in words."""
    if isinstance(wanted, dict) and isinstance(actual, list):
        return _objects_by_name(key, actual, wanted)
    if isinstance(wanted, list) and wanted and all(isinstance(w, dict) for w in wanted) and isinstance(actual, list):
        return _objects_among(key, actual, wanted)
    if _same_value(key, actual, wanted):
        return None
    return f"{key} is {_shown(actual)}, not {_shown(wanted)}"


def _objects_by_name(key: str, actual: list[Any], wanted: dict[str, Any]) -> str | None:
    """A new table's columns: exactly these names, each with these attributes."""
    have = {str(o.get("name")).lower(): o for o in actual if isinstance(o, dict)}
    missing = [n for n in wanted if str(n).lower() not in have]
    extra = [str(o.get("name")) for o in actual if isinstance(o, dict)
             and str(o.get("name")).lower() not in {str(n).lower() for n in wanted}]
    problems = [f"{key} {', '.join(map(str, missing))} missing"] if missing else []
    problems += [f"unexpected {key} {', '.join(extra)}"] if extra else []
    for name, attrs in wanted.items():
        found = have.get(str(name).lower())
        if found is not None and isinstance(attrs, dict):
            problems += [f"{name}: {m}" for k, v in attrs.items() if (m := mismatch(k, found.get(k), v))]
    return "; ".join(problems) or None


def _objects_among(key: str, actual: list[Any], wanted: list[dict[str, Any]]) -> str | None:
    """A new table's indexes or keys: each wanted one matches one it has (the engine may add others)."""
    problems = []
    for want in wanted:
        if not any(isinstance(o, dict) and all(mismatch(k, o.get(k), v) is None for k, v in want.items()) for o in actual):
            what = {"indexes": "index", "foreign_keys": "foreign key"}.get(key, key)
            problems.append(f"no {what} like {_shown(want)}")
    return "; ".join(problems) or None


def _shown(value: Any) -> str:
    return "∅" if value is None else repr(value) if isinstance(value, str) else str(value)


def _same_value(key: str, actual: Any, wanted: Any) -> bool:
    if key == "type" and isinstance(actual, str) and isinstance(wanted, str):
        return canonical_type(actual) == canonical_type(wanted)
    if key == "default":
        return bool(canonical_default(actual) == canonical_default(wanted))
    if key == "extra" and isinstance(actual, str) and isinstance(wanted, str):
        return canonical_extra(actual) == canonical_extra(wanted)
    if isinstance(actual, list) and isinstance(wanted, list) and all(isinstance(v, str) for v in (*actual, *wanted)):
        # Index and key columns: MySQL column names are case-insensitive, the catalog spells them its way.
        return [a.lower() for a in actual] == [w.lower() for w in wanted]
    if isinstance(actual, str) and isinstance(wanted, str):
        return actual.lower() == wanted.lower()
    return bool(actual == wanted)


def _now(match: re.Match[str]) -> str:
    return "localtimestamp" if match.group(1) == "localtimestamp" else "current_timestamp"


def _wrapped(text: str) -> bool:
    return text.startswith("(") and text.endswith(")") and text.count("(") == text.count(")")


def _number(text: str) -> str:
    """0.00 and 0 are the same default (MariaDB formats a decimal default with the column's scale)."""
    try:
        number = Decimal(text)
    except (InvalidOperation, ValueError):
        return text
    if not number.is_finite():
        return text
    return format(number.normalize(), "f")


def _quoted_aware_lower(text: str) -> str:
    """Lower-case a type, but not the values of enum('A','b') inside its quotes."""
    parts = re.split(r"('(?:[^']|'')*')", text)
    return "".join(p if p.startswith("'") else p.lower() for p in parts)
