"""The canonical text of a row, and its hash, as SQL for each dialect (issue #3).

Canonical version c2. A row's canonical text is its fields joined by `|`, in column order. Each field is
one of:

- `~` for NULL (no value's field is `~`, so NULL never equals '' or the text 'NULL');
- a *plain* field for values whose text can hold neither `|` nor `~`: integers and decimals
  as the server's decimal text (decimals keep their declared scale: `12.50`), floats as the server's
  shortest round-trip text, booleans (PostgreSQL `boolean`, MySQL `tinyint(1)`) as `1`/`0`, dates as
  `YYYY-MM-DD`, datetimes/timestamps as `YYYY-MM-DD HH:MM:SS` plus `.ffffff` only when the fraction is
  not zero (timestamps with a time zone in UTC), times as `HH:MM:SS[.ffffff]`, binary as upper-case hex;
- a *text* field for everything else (strings, enums, JSON, UUIDs): `<UTF-8 bytes>|<text>`, so `a|b`
  followed by `c` (`3|a|b|1|c`) cannot be confused with `a` followed by `b|c` (`1|a|3|b|c`), and trailing
  spaces count. The length is in bytes, not characters, because every server knows a string's byte length
  without reading it (c1 counted characters and wrote `:`; the byte length made fingerprints ~15% faster).

The row digest is the SHA-256 digest of the UTF-8 bytes of that text; the row's *value* is its first
8 bytes read as an unsigned 64-bit integer. SHA-256 because every server has it built in (MySQL 9.6 moved
MD5 into an optional component; PostgreSQL has sha256() since 11) and because, measured, it is the fastest
64-bit-strength row digest both MariaDB and PostgreSQL offer: faster than MD5 on both, and faster on MariaDB
than two CRC32s, which must build the row text twice. A set of rows is
summarised by its row count and the exact (unbounded) sum of the values: order-independent, and a
multiset hash (a duplicated row counts twice, where XOR would cancel it). Everything is computed inside
the server; SQLite gets the same text and digests from Python functions registered on the connection.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy.engine import Connection

from dbaudit.audit.chunks import base_type
from dbaudit.core.errors import DbauditError
from dbaudit.core.snapshot import Column

Kind = Literal["plain", "text"]
NULL = "~"  # needs no escaping in any dialect's string literals
SEPARATOR = "|"
_PRECISION = re.compile(r"\((\d+)\)")

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

    def __init__(self, conn: Connection) -> None:
        self.quote: Callable[[str], str] = raw_quoter(conn)

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
    def octet_length(self, text_sql: str) -> str:
        """The UTF-8 byte length of a text expression."""

    @abstractmethod
    def as_text(self, sql: str) -> str:
        """Cast any expression to text (for keys handed back to Python)."""

    def length_text(self, text_sql: str) -> str:
        return self.as_text(self.octet_length(text_sql))

    def field_parts(self, column: Column) -> list[str]:
        """The column's field as parts to join with `|`: one COALESCE, or the bare parts when it cannot be NULL.

        Dropping the COALESCE and the inner concatenation of a NOT NULL column is worth about a tenth of
        the fingerprint's time on MariaDB; the text is the same either way."""
        kind, text = self.value(column)
        parts = [self.length_text(text), text] if kind == "text" else [text]
        if not column.nullable and self.never_null(text, column):
            return parts
        # concat(), not join(): it must turn NULL into NULL, which MySQL's CONCAT_WS does not.
        field = self.concat([parts[0], f"'{SEPARATOR}'", parts[1]]) if len(parts) > 1 else text
        return [f"COALESCE({field}, '{NULL}')"]

    def never_null(self, text_sql: str, column: Column) -> bool:
        """Whether a NOT NULL column's canonical text can never be NULL (a cast could turn a value into NULL)."""
        return text_sql == self.column(column)

    def row_text(self, columns: Sequence[Column]) -> str:
        return self.join([part for column in columns for part in self.field_parts(column)])

    def join(self, parts: Sequence[str]) -> str:
        """Parts that are never NULL, joined by the separator."""
        joined: list[str] = []
        for part in parts:
            if joined:
                joined.append(f"'{SEPARATOR}'")
            joined.append(part)
        return self.concat(joined)

    def row_hash(self, columns: Sequence[Column]) -> str:
        return self.digest(self.row_text(columns))

    def key_text(self, column: Column) -> str:
        return self.as_text(self.value(column)[1])

    def integer_division(self, sql: str, width: int) -> str:
        # Integer division truncates toward zero on all three servers, so buckets agree everywhere.
        return f"({sql} / {int(width)})"

    def column(self, column: Column) -> str:
        return self.quote(column.name)

    def op(self, operator: str) -> str:
        """A built-in comparison or arithmetic operator, as the dialect binds it whatever the search path."""
        return operator

    def in_list(self, sql: str, values: Sequence[int]) -> str:
        """`sql` is one of the integers `values` (none: never)."""
        return f"{sql} IN ({', '.join(str(int(v)) for v in values)})" if values else "1 = 0"

    def call(self, function: str, args: str) -> str:
        """A built-in function or aggregate (COUNT, MIN, MAX), as the dialect binds it to the built-in."""
        return f"{function}({args})"

    def use_table(self, conn: Connection, schema: str | None, table: str) -> None:
        """Read what the SQL for `table` must know of its live columns (PostgreSQL: which have user types)."""

    def prepare(self, conn: Connection) -> None:
        """Session settings that make the canonical text independent of the user's configuration."""


# --- MySQL / MariaDB ------------------------------------------------------------------------------

_MYSQL_INTEGERS = {"tinyint", "smallint", "mediumint", "int", "integer", "bigint", "year"}
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
        return f"SHA2({text_sql}, 256)"

    def hex_int(self, hex_sql: str, start: int, digits: int) -> str:
        return f"CAST(CONV(SUBSTRING({hex_sql}, {start}, {digits}), 16, 10) AS UNSIGNED)"

    def row_value(self, digest_sql: str) -> str:
        return f"CAST(CONV(LEFT({digest_sql}, 16), 16, 10) AS UNSIGNED)"

    def aggregates(self, value_sql: str) -> list[str]:
        return [f"SUM({value_sql})"]  # SUM of BIGINT UNSIGNED is an exact DECIMAL(65)

    def concat(self, parts: Sequence[str]) -> str:
        return f"CONCAT({', '.join(parts)})"

    def join(self, parts: Sequence[str]) -> str:
        return f"CONCAT_WS('{SEPARATOR}', {', '.join(parts)})"  # ~10% faster than CONCAT with separator args

    def octet_length(self, text_sql: str) -> str:
        return f"OCTET_LENGTH({text_sql})"  # text fields are utf8/utf8mb4 here (see value): bytes are UTF-8 bytes

    def as_text(self, sql: str) -> str:
        return f"CAST({sql} AS CHAR)"

    def length_text(self, text_sql: str) -> str:
        return self.octet_length(text_sql)  # CONCAT takes the number as it is: no cast per row

    def integer_division(self, sql: str, width: int) -> str:
        return f"({sql} DIV {int(width)})"

    def prepare(self, conn: Connection) -> None:
        # TIMESTAMP columns read in UTC, and no SQL mode, whatever the user's defaults: several change what
        # a read returns (PAD_CHAR_TO_FULL_LENGTH pads CHARs; MariaDB's ORACLE makes CONCAT() skip NULLs and
        # LENGTH() count characters; EMPTY_STRING_IS_NULL turns the '' literals here into NULL), and none is
        # needed to read. The snapshot reads everything else before this.
        conn.exec_driver_sql("SET SESSION time_zone = '+00:00'")
        conn.exec_driver_sql("SET SESSION sql_mode = ''")


# --- PostgreSQL -----------------------------------------------------------------------------------

_PG_PLAIN_TEXT = {"smallint", "integer", "bigint", "numeric", "real", "double precision", "oid"}
#: Every object dbaudit creates has an oid below this (PostgreSQL's FirstNormalObjectId): built-in types.
PG_FIRST_USER_OID = 16384

# The column types of one table as the server has them now, reduced through domains to the type a value
# really is; a table's user-typed columns (enums, composites, ranges, arrays of those …) are read through
# their output function only (see PostgreSQLCanon.value).
_PG_BASE_TYPES = """
WITH RECURSIVE chain(attname, typ, depth) AS (
  SELECT a.attname, a.atttypid, 0 FROM pg_catalog.pg_attribute a
  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) a.attrelid
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
  WHERE n.nspname OPERATOR(pg_catalog.=) %(schema)s::pg_catalog.name
    AND c.relname OPERATOR(pg_catalog.=) %(table)s::pg_catalog.name
    AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
  UNION ALL
  SELECT chain.attname, t.typbasetype, chain.depth OPERATOR(pg_catalog.+) 1 FROM chain
  JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) chain.typ
  WHERE t.typtype OPERATOR(pg_catalog.=) 'd'::pg_catalog."char"
)
SELECT DISTINCT ON (attname) attname::pg_catalog.text,
       typ OPERATOR(pg_catalog.>=) %(first)s::pg_catalog.oid AS user_type
FROM chain ORDER BY attname, depth DESC
"""


def pg_user_typed_columns(conn: Connection, schema: str | None, table: str) -> frozenset[str]:
    """The columns of `table` whose values are of a type some user owns (through any domains)."""
    found = conn.exec_driver_sql(_PG_BASE_TYPES, {"schema": schema or "public", "table": table,
                                                  "first": PG_FIRST_USER_OID}).all()
    return frozenset(str(name) for name, user in found if user)


class PostgreSQLCanon(Canon):
    """Hijack-proof SQL: a table owner's casts, operators, functions and search_path never run here.

    Every function and operator is named with its schema (pg_catalog.fn, OPERATOR(pg_catalog.||)), so no
    search_path resolves it elsewhere. Values of built-in types are cast only to built-in types, and nobody
    but a superuser can add a cast between two built-in types. Values of a type some user owns (an enum, a
    composite, a domain over one, an array of one …) are never cast at all: its owner may have attached
    `CREATE CAST (their_type AS text) WITH FUNCTION evil(...)`, which `x::text` would run with the
    auditor's rights. They are read with pg_catalog.concat(x), which calls the type's output
    function (built in for every type a non-superuser can create), the same text an I/O cast gives."""

    def __init__(self, conn: Connection) -> None:
        super().__init__(conn)
        encoding = conn.exec_driver_sql("SHOW server_encoding").scalar_one()
        self.utf8 = str(encoding).upper() in ("UTF8", "SQL_ASCII")
        self._user_typed: dict[tuple[str | None, str], frozenset[str]] = {}
        self._current: frozenset[str] | None = None  # None: no table bound, every column read cast-proof

    def use_table(self, conn: Connection, schema: str | None, table: str) -> None:
        key = (schema, table)
        if key not in self._user_typed:
            self._user_typed[key] = pg_user_typed_columns(conn, schema, table)
        self._current = self._user_typed[key]

    def _user_typed_column(self, column: Column) -> bool:
        return self._current is None or column.name in self._current

    def value(self, column: Column) -> tuple[Kind, str]:
        x = self.column(column)
        if self._user_typed_column(column):
            return "text", _pg_output_text(x)
        base = base_type(column.type)
        fsp = fraction_digits(column.type)
        if base in _PG_PLAIN_TEXT:
            return "plain", f"{x}::pg_catalog.text"
        if base == "boolean":
            return "plain", f"CASE WHEN {x} THEN '1' ELSE '0' END"
        if base == "date":
            return "plain", _pg_finite(x, f"pg_catalog.to_char({x}, 'YYYY-MM-DD')")
        if base.startswith("timestamp"):
            return "plain", _pg_finite(x, _pg_fraction(x, "YYYY-MM-DD HH24:MI:SS", fsp))
        if base == "time without time zone":
            return "plain", _pg_fraction(x, "HH24:MI:SS", fsp)
        if base == "bytea":
            return "plain", f"pg_catalog.upper(pg_catalog.encode({x}, 'hex'))"
        if base == "bit":
            return "plain", f"{x}::pg_catalog.int8::pg_catalog.text"
        return "text", f"{x}::pg_catalog.text"

    def digest(self, text_sql: str) -> str:
        return f"pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to({text_sql}, 'UTF8')), 'hex')"

    def row_number(self, text_sql: str) -> str:
        # Hex-encode only the 8 bytes the value reads (about 15% of the fingerprint's time).
        first8 = f"pg_catalog.substring(pg_catalog.sha256(pg_catalog.convert_to({text_sql}, 'UTF8')), 1, 8)"
        return _pg_hex_int8(f"pg_catalog.encode({first8}, 'hex')")

    def hex_int(self, hex_sql: str, start: int, digits: int) -> str:
        return (f"('x'::pg_catalog.text OPERATOR(pg_catalog.||) pg_catalog.substr({hex_sql}, {start}, {digits}))"
                f"::pg_catalog.bit({4 * digits})::pg_catalog.int8")

    def row_value(self, digest_sql: str) -> str:
        # signed: total() undoes that
        return _pg_hex_int8(f"pg_catalog.left({digest_sql}, 16)")

    def aggregates(self, value_sql: str) -> list[str]:
        return [f"pg_catalog.sum({value_sql})",
                f"pg_catalog.count(*) FILTER (WHERE {value_sql} OPERATOR(pg_catalog.<) 0)"]

    def total(self, results: Sequence[Any]) -> int:
        return int(results[0] or 0) + int(results[1] or 0) * 2**64

    fence = " OFFSET 0"

    def never_null(self, text_sql: str, column: Column) -> bool:
        return True  # casts, encode, concat of a non-NULL value and (finite values only, see _pg_finite) to_char

    def concat(self, parts: Sequence[str]) -> str:
        # `||`, not concat_ws(): functions take at most 100 arguments and tables can be wider.
        return "(" + " OPERATOR(pg_catalog.||) ".join(parts) + ")"

    def octet_length(self, text_sql: str) -> str:
        if self.utf8:
            return f"pg_catalog.octet_length({text_sql})"
        return f"pg_catalog.octet_length(pg_catalog.convert_to({text_sql}, 'UTF8'))"

    def as_text(self, sql: str) -> str:
        return f"({sql})::pg_catalog.text"

    def integer_division(self, sql: str, width: int) -> str:
        return f"({sql} OPERATOR(pg_catalog./) {int(width)})"

    def op(self, operator: str) -> str:
        return f"OPERATOR(pg_catalog.{operator})"

    def call(self, function: str, args: str) -> str:
        return f"pg_catalog.{function.lower()}({args})"

    def in_list(self, sql: str, values: Sequence[int]) -> str:
        listed = ", ".join(str(int(v)) for v in values)
        return f"{sql} OPERATOR(pg_catalog.=) ANY (ARRAY[{listed}]::pg_catalog.int8[])" if values else "FALSE"

    def low_bits(self, digest_sql: str, buckets: int) -> str:
        return f"({self.hex_int(digest_sql, 9, 8)} OPERATOR(pg_catalog.&) {int(buckets) - 1})"

    def prepare(self, conn: Connection) -> None:
        # SET LOCAL: the settings end with the read-only transaction.
        conn.exec_driver_sql("SET LOCAL TIME ZONE 'UTC'")
        conn.exec_driver_sql("SET LOCAL extra_float_digits = 1")
        conn.exec_driver_sql("SET LOCAL IntervalStyle = 'postgres'")


def _pg_hex_int8(hex_sql: str) -> str:
    """16 hex digits as a (signed) bigint."""
    return f"('x'::pg_catalog.text OPERATOR(pg_catalog.||) {hex_sql})::pg_catalog.bit(64)::pg_catalog.int8"


def _pg_output_text(x: str) -> str:
    """A value's text through its type's output function: no cast, so no user's cast can run.

    concat() (like format('%s')) takes "any" and prints it with the type's output function. concat(NULL)
    is '', so NULL is kept apart by num_nulls (which, unlike IS NULL, is false for a composite whose
    fields are all NULL)."""
    return f"CASE WHEN pg_catalog.num_nulls({x}) OPERATOR(pg_catalog.=) 0 THEN pg_catalog.concat({x}) END"


def _pg_finite(x: str, text_sql: str) -> str:
    # to_char() of 'infinity' is NULL, which would drop the row from the sum (or pass for a NULL).
    return f"CASE WHEN pg_catalog.isfinite({x}) THEN {text_sql} ELSE {x}::pg_catalog.text END"


def _pg_fraction(x: str, pattern: str, fsp: int | None) -> str:
    if fsp == 0:
        return f"pg_catalog.to_char({x}, '{pattern}')"
    return f"pg_catalog.replace(pg_catalog.to_char({x}, '{pattern}.US'), '.000000', '')"


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

    def never_null(self, text_sql: str, column: Column) -> bool:
        return False  # SQLite lets a primary-key column that is not an INTEGER PRIMARY KEY hold NULL

    def digest(self, text_sql: str) -> str:
        return f"dbaudit_sha256({text_sql})"

    def hex_int(self, hex_sql: str, start: int, digits: int) -> str:
        return f"dbaudit_hex_int({hex_sql}, {start}, {digits})"

    def row_value(self, digest_sql: str) -> str:
        return digest_sql  # the aggregate reads the hex itself: SQLite integers stop at 2^63

    def aggregates(self, value_sql: str) -> list[str]:
        return [f"dbaudit_sum64({value_sql})"]

    def concat(self, parts: Sequence[str]) -> str:
        return "(" + " || ".join(parts) + ")"

    def octet_length(self, text_sql: str) -> str:
        return f"dbaudit_octets({text_sql})"

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


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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
    raw.create_function("dbaudit_octets", 1, lambda t: None if t is None else len(str(t).encode("utf-8")),
                        deterministic=True)
    raw.create_function("dbaudit_sha256", 1, lambda t: None if t is None else sha256_hex(t), deterministic=True)
    raw.create_function("dbaudit_hex_int", 3, lambda h, s, n: int(h[s - 1:s - 1 + n], 16), deterministic=True)
    raw.create_aggregate("dbaudit_sum64", 1, _Sum64)  # type: ignore[arg-type]


def canon_for(conn: Connection, dialect_name: str) -> Canon:
    classes: dict[str, type[Canon]] = {"mysql": MySQLCanon, "postgresql": PostgreSQLCanon, "sqlite": SQLiteCanon}
    if dialect_name not in classes:
        raise DbauditError(f"no canonical row form for {dialect_name}")
    return classes[dialect_name](conn)
