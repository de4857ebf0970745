"""Column types and defaults from a statement, spelled as each server's catalog records them.

MariaDB spells `integer` as `int(11)` and `json` as `longtext`; PostgreSQL spells `varchar(20)` as
`character varying(20)`; SQLite keeps the declared text. What cannot be predicted from the statement
alone is left out, with a note that says so: an expectation must never fail a correct migration.
(The matcher, dbaudit.audit.spelling, also forgives display widths, quotes and casts.)
"""

from __future__ import annotations

import re

from sqlglot import exp

DType = exp.DataType.Type

# MariaDB's display widths when none is written (MySQL 8.0.19+ shows none; the matcher ignores them).
_WIDTHS = {"tinyint": (4, 3), "smallint": (6, 5), "mediumint": (9, 8), "int": (11, 10), "bigint": (20, 20)}
_MYSQL_ALIASES = {
    "integer": "int", "int": "int", "tinyint": "tinyint", "smallint": "smallint", "mediumint": "mediumint",
    "bigint": "bigint", "int1": "tinyint", "int2": "smallint", "int3": "mediumint", "int4": "int", "int8": "bigint",
    "middleint": "mediumint", "bool": "tinyint(1)", "boolean": "tinyint(1)",
    "real": "double", "double precision": "double", "double": "double", "float": "float",
    "decimal": "decimal", "dec": "decimal", "numeric": "decimal", "fixed": "decimal",
    "char": "char", "character": "char", "nchar": "char", "national char": "char", "national character": "char",
    "varchar": "varchar", "character varying": "varchar", "nvarchar": "varchar", "national varchar": "varchar",
    "char varying": "varchar", "binary": "binary", "varbinary": "varbinary", "bit": "bit",
    "tinytext": "tinytext", "text": "text", "mediumtext": "mediumtext", "longtext": "longtext",
    "tinyblob": "tinyblob", "blob": "blob", "mediumblob": "mediumblob", "longblob": "longblob",
    "long": "mediumtext", "long varchar": "mediumtext", "long varbinary": "mediumblob",
    "date": "date", "time": "time", "datetime": "datetime", "timestamp": "timestamp", "year": "year",
    "json": "longtext", "uuid": "uuid", "inet4": "inet4", "inet6": "inet6",
    "geometry": "geometry", "point": "point", "linestring": "linestring", "polygon": "polygon",
    "multipoint": "multipoint", "multilinestring": "multilinestring", "multipolygon": "multipolygon",
    "geometrycollection": "geometrycollection",
}
_LENGTH_ONE = {"char", "binary", "bit"}  # char alone is char(1)
_MYSQL_TYPE = re.compile(
    r"^(?P<base>[a-z][a-z0-9 ]*?)\s*(?:\((?P<args>[^()]*)\))?(?P<flags>(?:\s+(?:unsigned|signed|zerofill))*)$")

_PG_NAMES = {
    DType.INT: "integer", DType.BIGINT: "bigint", DType.SMALLINT: "smallint", DType.SERIAL: "integer",
    DType.BIGSERIAL: "bigint", DType.SMALLSERIAL: "smallint", DType.TEXT: "text", DType.BOOLEAN: "boolean",
    DType.DOUBLE: "double precision", DType.DATE: "date", DType.JSON: "json", DType.JSONB: "jsonb",
    DType.UUID: "uuid", DType.VARBINARY: "bytea", DType.INET: "inet", DType.MONEY: "money",
    DType.INTERVAL: "interval", DType.XML: "xml",
}
_PG_SERIALS = {DType.SERIAL, DType.BIGSERIAL, DType.SMALLSERIAL}


def mysql_type(kind: exp.DataType, raw: str) -> str | None:
    """`bigint unsigned` → `bigint(20) unsigned`, `json` → `longtext`, enum values re-quoted; None: unknown."""
    if kind.this in (DType.ENUM, DType.SET):
        values = ",".join(_quote(v.name) for v in kind.expressions if isinstance(v, exp.Literal))
        return f"{'enum' if kind.this == DType.ENUM else 'set'}({values})"
    text = " ".join(raw.lower().split())
    m = _MYSQL_TYPE.match(text)
    if not m or m.group("base") not in _MYSQL_ALIASES:
        return None
    base, args = _MYSQL_ALIASES[m.group("base")], (m.group("args") or "").replace(" ", "")
    flags = m.group("flags").split()
    unsigned = "unsigned" in flags or "zerofill" in flags  # ZEROFILL implies UNSIGNED
    if base in _WIDTHS:
        width = args or str(_WIDTHS[base][1 if unsigned else 0])
        return f"{base}({width})" + (" unsigned" if unsigned else "") + (" zerofill" if "zerofill" in flags else "")
    if "(" in base or unsigned:
        return base if not args and not unsigned else None  # bool(…) or unsigned floats: leave to the server
    if base == "decimal":
        parts = (args.split(",") + ["0"])[:2] if args else ["10", "0"]
        return f"decimal({parts[0]},{parts[1]})"
    if base == "float" and args and "," not in args:
        return None  # float(p): MySQL picks float or double from p
    if base == "year":
        return "year(4)"
    if base in _LENGTH_ONE and not args:
        return f"{base}(1)"
    if base in ("tinytext", "text", "mediumtext", "longtext", "blob") and args:
        return None  # text(n): the server picks the smallest type that holds n
    return f"{base}({args})" if args else base


def postgres_type(kind: exp.DataType) -> str | None:
    """As format_type() prints it: `character varying(20)`, `timestamp(0) without time zone`, `integer[]`."""
    if kind.this == DType.ARRAY and kind.expressions and isinstance(kind.expressions[0], exp.DataType):
        inner = postgres_type(kind.expressions[0])
        return f"{inner}[]" if inner else None
    params = [p.sql("postgres") for p in kind.expressions]
    if kind.this in _PG_NAMES and not params:
        return _PG_NAMES[kind.this]
    names = {DType.VARCHAR: "character varying", DType.CHAR: "character", DType.DECIMAL: "numeric", DType.BIT: "bit"}
    if kind.this in names:
        if not params:
            return {DType.CHAR: "character(1)", DType.BIT: "bit(1)"}.get(kind.this, names[kind.this])
        if kind.this == DType.DECIMAL and len(params) == 1:
            params.append("0")
        return f"{names[kind.this]}({','.join(params)})"
    if kind.this == DType.FLOAT:
        return "real" if not params or int(params[0]) <= 24 else "double precision"
    zones = {DType.TIMESTAMP: ("timestamp", "without"), DType.TIMESTAMPTZ: ("timestamp", "with"),
             DType.TIME: ("time", "without"), DType.TIMETZ: ("time", "with")}
    if kind.this in zones:
        name, zone = zones[kind.this]
        return f"{name}{f'({params[0]})' if params else ''} {zone} time zone"
    named = kind.args.get("kind")
    if kind.this == DType.USERDEFINED and isinstance(named, (exp.Identifier, exp.Dot)):
        ident = named.expression if isinstance(named, exp.Dot) else named  # an enum, domain or extension type
        if isinstance(ident, exp.Identifier):
            text = str(ident.this)
            return f'"{text}"' if ident.quoted and text != text.lower() else text.lower()
    return None


def is_serial(kind: exp.DataType) -> bool:
    return kind.this in _PG_SERIALS


def is_timestamp(kind: exp.DataType) -> bool:
    return kind.this in (DType.TIMESTAMP, DType.TIMESTAMPTZ)


def default_value(node: exp.Expression, dialect: str) -> tuple[bool, str | None]:
    """(known, value): the default as the catalog will read it after the matcher's normalising."""
    while isinstance(node, (exp.Paren, exp.Cast)) and isinstance(node.this, exp.Expression):
        node = node.this  # 'x'::character varying (pg_dump spells defaults so): the literal is what counts
    if isinstance(node, exp.Null):
        return True, None
    if isinstance(node, exp.Boolean):
        if dialect == "mysql":
            return True, "1" if node.this else "0"
        return True, "true" if node.this else "false"
    if isinstance(node, exp.Literal):
        return True, _quote(node.name) if node.is_string else node.name
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal) and not node.this.is_string:
        return True, f"-{node.this.name}"
    if isinstance(node, exp.CurrentTimestamp) or (isinstance(node, exp.Anonymous) and node.name.lower() == "now"):
        precision = node.this.name if isinstance(node, exp.CurrentTimestamp) and node.this is not None else ""
        return True, f"current_timestamp({precision})" if precision else "current_timestamp"
    if isinstance(node, exp.CurrentDate) and dialect != "mysql":
        return True, "CURRENT_DATE"
    return False, None


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
