"""What one migration statement does, as plain operations on the schema (read from sqlglot's tree).

Attributes are only those the statement states, already spelled the way snapshots record them;
`notes` say why an attribute was left out (the server's spelling cannot be known from the text).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Source:
    """Where a statement is: for the comment above each entry."""

    file: str
    line: int
    text: str  # its first line, shortened
    migration: str | None = None  # the Laravel migration it belongs to

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        return f"{self.migration} ({where})" if self.migration else where


@dataclass
class ColumnSpec:
    name: str
    attrs: dict[str, Any] = field(default_factory=dict)  # type, nullable, default, extra, comment, collation
    notes: list[str] = field(default_factory=list)
    primary: bool = False
    unique: bool = False
    references: ForeignKeySpec | None = None
    check: str | None = None
    serial: bool = False  # PostgreSQL serial/identity: a sequence comes with it


@dataclass
class IndexSpec:
    name: str | None  # None: the server names it
    columns: list[str] | None  # None: expressions, whose spelling the server chooses
    unique: bool = False
    primary: bool = False
    type: str | None = None  # FULLTEXT, SPATIAL, gin … when stated
    notes: list[str] = field(default_factory=list)

    def attrs(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        if self.columns is not None:
            found["columns"] = list(self.columns)
        found["unique"] = self.unique or self.primary
        if self.primary:
            found["primary"] = True
        if self.type:
            found["type"] = self.type
        return found


@dataclass
class ForeignKeySpec:
    name: str | None
    columns: list[str]
    ref_table: str
    ref_columns: list[str] | None  # None: the referenced table's primary key
    on_delete: str | None = None
    on_update: str | None = None

    def attrs(self) -> dict[str, Any]:
        found: dict[str, Any] = {"columns": list(self.columns), "ref_table": self.ref_table}
        if self.ref_columns:
            found["ref_columns"] = list(self.ref_columns)
        if self.on_delete:
            found["on_delete"] = self.on_delete
        if self.on_update:
            found["on_update"] = self.on_update
        return found


@dataclass
class CheckSpec:
    name: str | None
    expression: str


# --- operations ------------------------------------------------------------------------------


@dataclass
class Op:
    src: Source


@dataclass
class CreateTable(Op):
    table: str
    columns: list[ColumnSpec]
    indexes: list[IndexSpec]
    foreign_keys: list[ForeignKeySpec]
    checks: list[CheckSpec]
    options: dict[str, Any]
    if_not_exists: bool = False
    copy_of: str | None = None  # CREATE TABLE … LIKE other
    as_select: bool = False


@dataclass
class DropTable(Op):
    table: str
    if_exists: bool = False
    cascade: bool = False


@dataclass
class RenameTable(Op):
    table: str
    new_name: str


@dataclass
class TableOptions(Op):
    table: str
    attrs: dict[str, Any]


@dataclass
class AddColumn(Op):
    table: str
    column: ColumnSpec
    if_not_exists: bool = False


@dataclass
class ModifyColumn(Op):
    """MySQL MODIFY / CHANGE: the whole column restated (an attribute not repeated is reset)."""

    table: str
    column: ColumnSpec
    old_name: str | None = None  # CHANGE old new


@dataclass
class AlterColumn(Op):
    """One attribute changed, the rest kept (PostgreSQL ALTER COLUMN, SET/DROP DEFAULT, COMMENT ON)."""

    table: str
    column: str
    attrs: dict[str, Any]
    notes: list[str] = field(default_factory=list)


@dataclass
class RenameColumn(Op):
    table: str
    column: str
    new_name: str


@dataclass
class DropColumn(Op):
    table: str
    column: str
    if_exists: bool = False


@dataclass
class AddIndex(Op):
    table: str
    index: IndexSpec
    if_not_exists: bool = False


@dataclass
class DropIndex(Op):
    table: str | None  # None: PostgreSQL and SQLite name an index without its table
    name: str
    if_exists: bool = False


@dataclass
class RenameIndex(Op):
    table: str | None
    name: str
    new_name: str


@dataclass
class AddForeignKey(Op):
    table: str
    key: ForeignKeySpec


@dataclass
class AddCheck(Op):
    table: str
    check: CheckSpec


@dataclass
class DropConstraint(Op):
    """kind: fk, check, index (unique / primary) or None when the statement does not say which."""

    table: str
    name: str
    kind: str | None
    if_exists: bool = False


@dataclass
class CreateObject(Op):
    """A view, trigger, routine, event, sequence or type."""

    kind: str
    name: str
    table: str | None = None  # a trigger's table
    routine_kind: str | None = None  # procedure / function
    replace: bool = False
    if_not_exists: bool = False


@dataclass
class DropObject(Op):
    kind: str
    name: str
    table: str | None = None
    if_exists: bool = False


@dataclass
class Allow(Op):
    """A change the statement makes that is not read further: allowed by kind and target, saying why."""

    kind: str
    target: str
    why: str


@dataclass
class Data(Op):
    verb: str  # insert, update, delete, truncate, replace
    table: str
    where: bool = True  # False: UPDATE or DELETE without WHERE, every row
    rows: int | None = None  # INSERT … VALUES: how many rows


@dataclass
class Unparsed(Op):
    """A statement sqlglot could not parse, or returned as an exp.Command: listed as a warning."""

    reason: str
    understood: str | None = None  # what was still read from its leading words
    ops: list[Op] = field(default_factory=list)  # … and the operations that says it does


@dataclass
class Note(Op):
    """Something the reviewer must know that changes no expectation (USE, UPDATE without WHERE …)."""

    message: str
