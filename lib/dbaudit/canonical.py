"""The canonical text of a row, and its hash, as SQL for each dialect (issue #3).

A row's canonical text is its fields joined by `|`, in column order. Each field is one of:

- `~` for NULL (no value's field is `~`, so NULL never equals '' or the text 'NULL');
- a *plain* field for values whose text can hold neither `|` nor `~`: integers and decimals
  as the server's decimal text (decimals keep their declared scale: `12.50`), floats as the server's
  shortest round-trip text, booleans (PostgreSQL `boolean`, MySQL `tinyint(1)`) as `1`/`0`, dates as
  `YYYY-MM-DD`, datetimes/timestamps as `YYYY-MM-DD HH:MM:SS` plus `.ffffff` only when the fraction is
  not zero (timestamps with a time zone in UTC), times as `HH:MM:SS[.ffffff]`, binary as upper-case hex;
- a *text* field for everything else (strings, enums, JSON, UUIDs): `<characters>:<text>`, so `a|b`
  followed by `c` cannot be confused with `a` followed by `b|c`, and trailing spaces count.

The row digest is the hex digest (MD5, or SHA-256 where a server has no MD5) of the UTF-8 bytes of that
text; the row's *value* is its first 16 hex digits read as an unsigned 64-bit integer. The opt-in `crc32`
digest (MySQL/MariaDB and SQLite only) is faster: the value is CRC32(text) << 32 | CRC32(reversed text),
see `crc64_hex`. A set of rows is
summarised by its row count and the exact (unbounded) sum of the values: order-independent, and a
multiset hash (a duplicated row counts twice, where XOR would cancel it). Everything is computed inside
the server; SQLite gets the same text and digests from Python functions registered on the connection.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from dbaudit.errors import DbauditError
from dbaudit.snapshot import Column

Algorithm = Literal["md5", "sha256", "crc32"]
DigestChoice = Literal["md5", "crc32"]  # what a user picks; md5 falls back to sha256 where MD5 is missing
Kind = Literal["plain", "text"]
NULL = "~"  # needs no escaping in any dialect's string literals
SEPARATOR = "|"
_PRECISION = re.compile(r"\((\d+)\)")
_MODIFIERS = re.compile(r"\(\s*\d+\s*(,\s*\d+\s*)?\)")


def base_type(spelled: str) -> str:
    """`decimal(10,2) unsigned` -> `decimal unsigned`; `timestamp(3) with time zone` -> `timestamp with time zone`."""
    return " ".join(_MODIFIERS.sub("", spelled.lower()).split())


def fraction_digits(spelled: str) -> int | None:
    match = _PRECISION.search(spelled)
    return int(match.group(1)) if match else None


def raw_quoter(conn: Connection) -> Callable[[str], str]:
    """The dialect's identifier quoting for SQL the driver receives verbatim (see Fingerprinter._run).

    SQLAlchemy's quote_identifier also doubles `%` for drivers with a format paramstyle (PyMySQL,
    psycopg), because it expects the driver to format the statement; SQL sent with no parameters is
    not formatted, so here a `%` stays single. Only the quote character itself is escaped."""
    preparer = conn.dialect.identifier_preparer

    def quote(name: str) -> str:
        return f"{preparer.initial_quote}{name.replace(preparer.escape_quote, preparer.escape_to_quote)}" \
               f"{preparer.final_quote}"

    return quote


class Canon(ABC):
    """One dialect's SQL for canonical fields, row hashes and the exact sums of hash bits."""

    def __init__(self, conn: Connection, algorithm: Algorithm = "md5") -> None:
        self.quote: Callable[[str], str] = raw_quoter(conn)
        self.algorithm = algorithm

    @abstractmethod
    def value(self, column: Column) -> tuple[Kind, str]:
        """The column's canonical text as SQL (NULL when the value is NULL), and its field kind."""

    @abstractmethod
    def digest(self, text_sql: str) -> str:
        """Hex digest of a text expression."""

    @abstractmethod
    def hex_int(self, hex_sql: str, start: int, digits: int) -> str:
        """The unsigned integer value of `digits` (at most 8) hex digits of a digest, from 1-based `start`."""

    @abstractmethod
    def row_value(self, digest_sql: str) -> str:
        """The per-row value the aggregates sum: the digest's first 64 bits, in the server's own type."""

    @abstractmethod
    def aggregates(self, value_sql: str) -> list[str]:
        """Aggregates over row values whose results `total()` turns into the exact unsigned sum."""

    def total(self, results: Sequence[Any]) -> int:
        return int(results[0] or 0)

    def low_bits(self, digest_sql: str, buckets: int) -> str:
        """A bucket number in [0, buckets) from a digest (buckets is a power of two)."""
        return f"({self.hex_int(digest_sql, 9, 8)} & {int(buckets) - 1})"

    def row_number(self, text_sql: str) -> str:
        """The per-row value of a row text; a dialect may override it to skip the hex round trip."""
        return self.row_value(self.digest(text_sql))

    def bucket(self, text_sql: str, buckets: int) -> str:
        """The bucket of a row (or key) text: low bits of its digest's second 32 bits."""
        return self.low_bits(self.digest(text_sql), buckets)

    #: Appended to a subquery that must not be inlined (PostgreSQL would compute the digest twice).
    fence = ""

    @abstractmethod
    def concat(self, parts: Sequence[str]) -> str: ...

    @abstractmethod
    def char_length(self, text_sql: str) -> str: ...

    @abstractmethod
    def as_text(self, sql: str) -> str:
        """Cast any expression to text (for keys handed back to Python)."""

    def length_text(self, text_sql: str) -> str:
        return self.as_text(self.char_length(text_sql))

    def field(self, column: Column) -> str:
        kind, text = self.value(column)
        if kind == "text":
            text = self.concat([self.length_text(text), "':'", text])
        return f"COALESCE({text}, '{NULL}')"

    def row_text(self, columns: Sequence[Column]) -> str:
        parts: list[str] = []
        for column in columns:
            if parts:
                parts.append(f"'{SEPARATOR}'")
            parts.append(self.field(column))
        return self.concat(parts)

    def row_hash(self, columns: Sequence[Column]) -> str:
        return self.digest(self.row_text(columns))

    def key_text(self, column: Column) -> str:
        return self.as_text(self.value(column)[1])

    def integer_division(self, sql: str, width: int) -> str:
        # Integer division truncates toward zero on all three servers, so buckets agree everywhere.
        return f"({sql} / {int(width)})"

    def column(self, column: Column) -> str:
        return self.quote(column.name)

    def prepare(self, conn: Connection) -> None:
        """Session settings that make the canonical text independent of the user's configuration."""


# --- MySQL / MariaDB ------------------------------------------------------------------------------

_MYSQL_INTEGERS = {"tinyint", "smallint", "mediumint", "int", "integer", "bigint", "year"}
# Integer key types on any of the three servers (base_type spelling): their keys can be cut into ranges.
INTEGER_TYPES = {"tinyint", "smallint", "mediumint", "int", "integer", "bigint", "int2", "int4", "int8"}
_MYSQL_NUMBERS = {"decimal", "numeric", "dec", "fixed", "float", "double", "real", "double precision"}
_MYSQL_BINARY = {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob", "geometry", "point",
                 "linestring", "polygon", "multipoint", "multilinestring", "multipolygon", "geometrycollection"}
_MYSQL_TEXT = {"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set"}


class MySQLCanon(Canon):
    def value(self, column: Column) -> tuple[Kind, str]:
        x = self.column(column)
        base = re.match(r"[a-z]*", column.type.lower()).group(0)  # type: ignore[union-attr]
        fsp = fraction_digits(column.type) or 0
        if base in _MYSQL_INTEGERS or base in _MYSQL_NUMBERS or base == "date":
            # ZEROFILL pads only on display; CONCAT sees the plain number.
            return "plain", x
        if base == "bit":
            return "plain", f"CAST({x} AS UNSIGNED)"
        if base in ("datetime", "timestamp"):
            return "plain", x if fsp == 0 else f"REPLACE(CAST(CAST({x} AS DATETIME(6)) AS CHAR), '.000000', '')"
        if base == "time":
            return "plain", x if fsp == 0 else f"REPLACE(CAST(CAST({x} AS TIME(6)) AS CHAR), '.000000', '')"
        if base in _MYSQL_BINARY:
            return "plain", f"HEX({x})"
        if base in _MYSQL_TEXT and (column.collation or "utf8").lower().startswith("utf8"):
            return "text", x
        # Another character set (latin1 …) or a type we pass as text (json, uuid, inet6): UTF-8 text.
        return "text", f"CONVERT(CAST({x} AS CHAR) USING utf8mb4)"

    def digest(self, text_sql: str) -> str:
        if self.algorithm == "crc32":
            return f"LPAD(HEX({self._crc64(text_sql)}), 16, '0')"  # leaf rows only: the same text as SQLite's
        return f"MD5({text_sql})" if self.algorithm == "md5" else f"SHA2({text_sql}, 256)"

    @staticmethod
    def _crc64(text_sql: str) -> str:
        # The text appears twice, so the server builds it twice: a user variable would build it once, but
        # MariaDB leaves the evaluation order of such an expression undefined.
        return f"((CRC32({text_sql}) << 32) | CRC32(REVERSE({text_sql})))"

    def row_number(self, text_sql: str) -> str:
        if self.algorithm == "crc32":
            return self._crc64(text_sql)  # already a BIGINT UNSIGNED: no hex text per row
        return super().row_number(text_sql)

    def bucket(self, text_sql: str, buckets: int) -> str:
        if self.algorithm == "crc32":
            return f"(CRC32(REVERSE({text_sql})) & {int(buckets) - 1})"  # the low 32 bits, as SQLite reads them
        return super().bucket(text_sql, buckets)

    def hex_int(self, hex_sql: str, start: int, digits: int) -> str:
        return f"CAST(CONV(SUBSTRING({hex_sql}, {start}, {digits}), 16, 10) AS UNSIGNED)"

    def row_value(self, digest_sql: str) -> str:
        return f"CAST(CONV(LEFT({digest_sql}, 16), 16, 10) AS UNSIGNED)"

    def aggregates(self, value_sql: str) -> list[str]:
        return [f"SUM({value_sql})"]  # SUM of BIGINT UNSIGNED is an exact DECIMAL(65)

    def concat(self, parts: Sequence[str]) -> str:
        return f"CONCAT({', '.join(parts)})"

    def char_length(self, text_sql: str) -> str:
        return f"CHAR_LENGTH({text_sql})"

    def as_text(self, sql: str) -> str:
        return f"CAST({sql} AS CHAR)"

    def length_text(self, text_sql: str) -> str:
        return self.char_length(text_sql)  # CONCAT takes the number as it is: no cast per row

    def integer_division(self, sql: str, width: int) -> str:
        return f"({sql} DIV {int(width)})"

    def prepare(self, conn: Connection) -> None:
        # TIMESTAMP columns read in UTC; CHAR columns without pad spaces, whatever the user's defaults.
        conn.exec_driver_sql("SET SESSION time_zone = '+00:00'")
        conn.exec_driver_sql("SET SESSION sql_mode = REPLACE(@@sql_mode, 'PAD_CHAR_TO_FULL_LENGTH', '')")


def mysql_has_md5(conn: Connection) -> bool:
    """MySQL 9.6 moved MD5() and SHA1() into a component that may not be installed."""
    try:
        conn.exec_driver_sql("SELECT MD5('')").scalar()
    except DBAPIError:
        return False  # a failed statement does not end a MySQL transaction
    return True


# --- PostgreSQL -----------------------------------------------------------------------------------

NO_PG_CRC32 = "PostgreSQL has no CRC32 before version 18: use --digest md5 (crc32 is for MySQL/MariaDB and SQLite)"
_PG_PLAIN_TEXT = {"smallint", "integer", "bigint", "numeric", "real", "double precision", "oid"}


class PostgreSQLCanon(Canon):
    def __init__(self, conn: Connection, algorithm: Algorithm = "md5") -> None:
        if algorithm == "crc32":
            raise DbauditError(NO_PG_CRC32)
        super().__init__(conn, algorithm)
        encoding = conn.exec_driver_sql("SHOW server_encoding").scalar_one()
        self.utf8 = str(encoding).upper() in ("UTF8", "SQL_ASCII")

    def value(self, column: Column) -> tuple[Kind, str]:
        x = self.column(column)
        base = base_type(column.type)
        fsp = fraction_digits(column.type)
        if base in _PG_PLAIN_TEXT:
            return "plain", f"{x}::text"
        if base == "boolean":
            return "plain", f"CASE WHEN {x} THEN '1' ELSE '0' END"
        if base == "date":
            return "plain", f"to_char({x}, 'YYYY-MM-DD')"
        if base.startswith("timestamp"):
            return "plain", _pg_fraction(x, "YYYY-MM-DD HH24:MI:SS", fsp)
        if base == "time without time zone":
            return "plain", _pg_fraction(x, "HH24:MI:SS", fsp)
        if base == "bytea":
            return "plain", f"upper(encode({x}, 'hex'))"
        if base == "bit":
            return "plain", f"{x}::bigint::text"
        return "text", f"{x}::text"

    def digest(self, text_sql: str) -> str:
        data = text_sql if self.utf8 and self.algorithm == "md5" else f"convert_to({text_sql}, 'UTF8')"
        if self.algorithm == "md5":
            return f"md5({data})"
        return f"encode(sha256({data}), 'hex')"

    def hex_int(self, hex_sql: str, start: int, digits: int) -> str:
        return f"('x' || substr({hex_sql}, {start}, {digits}))::bit({4 * digits})::bigint"

    def row_value(self, digest_sql: str) -> str:
        return f"('x' || left({digest_sql}, 16))::bit(64)::bigint"  # signed: total() undoes that

    def aggregates(self, value_sql: str) -> list[str]:
        return [f"sum({value_sql})", f"count(*) FILTER (WHERE {value_sql} < 0)"]

    def total(self, results: Sequence[Any]) -> int:
        return int(results[0] or 0) + int(results[1] or 0) * 2**64

    fence = " OFFSET 0"

    def concat(self, parts: Sequence[str]) -> str:
        # `||`, not concat_ws(): functions take at most 100 arguments and tables can be wider.
        return "(" + " || ".join(parts) + ")"

    def char_length(self, text_sql: str) -> str:
        return f"char_length({text_sql})"

    def as_text(self, sql: str) -> str:
        return f"({sql})::text"

    def prepare(self, conn: Connection) -> None:
        # SET LOCAL: the settings end with the read-only transaction.
        conn.exec_driver_sql("SET LOCAL TIME ZONE 'UTC'")
        conn.exec_driver_sql("SET LOCAL extra_float_digits = 1")
        conn.exec_driver_sql("SET LOCAL IntervalStyle = 'postgres'")


def _pg_fraction(x: str, pattern: str, fsp: int | None) -> str:
    if fsp == 0:
        return f"to_char({x}, '{pattern}')"
    return f"replace(to_char({x}, '{pattern}.US'), '.000000', '')"


# --- SQLite ---------------------------------------------------------------------------------------

_SQLITE_PLAIN = re.compile(r"INT|REAL|FLOA|DOUB|NUM|DEC|BOOL|DATE|TIME|BLOB", re.IGNORECASE)
_SQLITE_SCALE = re.compile(r"(?:DEC|NUM)\w*\s*\(\s*\d+\s*,\s*(\d+)\s*\)", re.IGNORECASE)


class SQLiteCanon(Canon):
    """SQLite has neither MD5 nor exact big sums: Python functions on the audit connection do both."""

    def value(self, column: Column) -> tuple[Kind, str]:
        # Storage is dynamically typed; the declared type decides the field kind, Python the text.
        kind: Kind = "plain" if _SQLITE_PLAIN.search(column.type or "") else "text"
        scale = _SQLITE_SCALE.search(column.type or "")
        if scale:
            # NUMERIC affinity stores 12.50 as the real 12.5; the declared scale restores the server's text.
            return kind, f"dbaudit_decimal({self.column(column)}, {int(scale.group(1))})"
        return kind, f"dbaudit_text({self.column(column)})"

    def digest(self, text_sql: str) -> str:
        return f"dbaudit_{self.algorithm}({text_sql})"

    def hex_int(self, hex_sql: str, start: int, digits: int) -> str:
        return f"dbaudit_hex_int({hex_sql}, {start}, {digits})"

    def row_value(self, digest_sql: str) -> str:
        return digest_sql  # the aggregate reads the hex itself: SQLite integers stop at 2^63

    def aggregates(self, value_sql: str) -> list[str]:
        return [f"dbaudit_sum64({value_sql})"]

    def concat(self, parts: Sequence[str]) -> str:
        return "(" + " || ".join(parts) + ")"

    def char_length(self, text_sql: str) -> str:
        return f"length({text_sql})"

    def as_text(self, sql: str) -> str:
        return f"CAST({sql} AS TEXT)"

    def prepare(self, conn: Connection) -> None:
        register_sqlite_functions(conn.connection.driver_connection)  # type: ignore[arg-type]


def python_text(value: Any) -> str | None:
    """The canonical text of a value as Python sees it (SQLite's storage classes)."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex().upper()
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    return str(value)


def python_decimal(value: Any, scale: int) -> str | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{Decimal(repr(value)):.{scale}f}"
    return python_text(value)


def hex_digest(algorithm: Algorithm, text: str) -> str:
    if algorithm == "crc32":
        return crc64_hex(text)
    return hashlib.new(algorithm, text.encode("utf-8")).hexdigest()


def crc64_hex(text: str) -> str:
    """CRC32 of the text's UTF-8 bytes << 32 | CRC32 of its characters reversed (MySQL's REVERSE()), 16 hex.

    The second CRC is of the reversal, not of a salted copy: CRC32 is affine, so CRC32(salt + text) is
    fixed by CRC32(text) and the length and would add no bits. The reversed text's CRC divides by the
    reciprocal polynomial, coprime to CRC32's, so the pair behaves as a 64-bit (non-cryptographic) check."""
    return f"{zlib.crc32(text.encode('utf-8')) << 32 | zlib.crc32(text[::-1].encode('utf-8')):016X}"


def row_value(digest: str) -> int:
    return int(digest[:16], 16)


class _Sum64:
    """The exact sum of each row's value, returned as text (Python ints do not overflow)."""

    def __init__(self) -> None:
        self.total = 0

    def step(self, digest: str | None) -> None:
        if digest is not None:
            self.total += row_value(digest)

    def finalize(self) -> str:
        return str(self.total)


def register_sqlite_functions(raw: sqlite3.Connection) -> None:
    """Registering functions changes nothing in the file: they live on this connection only."""
    raw.create_function("dbaudit_text", 1, python_text, deterministic=True)
    raw.create_function("dbaudit_decimal", 2, python_decimal, deterministic=True)
    raw.create_function("dbaudit_md5", 1, lambda t: None if t is None else hex_digest("md5", t), deterministic=True)
    raw.create_function("dbaudit_sha256", 1, lambda t: None if t is None else hex_digest("sha256", t),
                        deterministic=True)
    raw.create_function("dbaudit_crc32", 1, lambda t: None if t is None else crc64_hex(t), deterministic=True)
    raw.create_function("dbaudit_hex_int", 3, lambda h, s, n: int(h[s - 1:s - 1 + n], 16), deterministic=True)
    raw.create_aggregate("dbaudit_sum64", 1, _Sum64)  # type: ignore[arg-type]


def canon_for(conn: Connection, dialect_name: str, algorithm: Algorithm) -> Canon:
    classes: dict[str, type[Canon]] = {"mysql": MySQLCanon, "postgresql": PostgreSQLCanon, "sqlite": SQLiteCanon}
    if dialect_name not in classes:
        raise DbauditError(f"no canonical row form for {dialect_name}")
    return classes[dialect_name](conn, algorithm)


def available_algorithms(conn: Connection, dialect_name: str) -> list[Algorithm]:
    """Hashes this server can compute, preferred first; crc32 is last, as it is only used when asked for."""
    found: list[Algorithm] = ["sha256"] if dialect_name == "mysql" and not mysql_has_md5(conn) else ["md5", "sha256"]
    return found if dialect_name == "postgresql" else [*found, "crc32"]


def missing_digest(dialect_name: str, algorithm: Algorithm) -> str:
    """Why a server lacks a digest, for the one-line error."""
    return NO_PG_CRC32 if dialect_name == "postgresql" and algorithm == "crc32" else f"it has no {algorithm}"
