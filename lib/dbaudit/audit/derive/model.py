"""The net effect of a migration's statements on the schema, as the diff of two snapshots will show it.

Statements are applied in order to a model of the schema: the before snapshot when there is one,
otherwise only what the statements themselves name (anything they alter or drop is taken to have
been there). What a diff will report is the difference between the start and the end, not every
step: an index created on a table the same migration creates is part of `table_added`, a column
added and then renamed is one `column_added`. The model also knows the engines' side effects: the
index InnoDB adds for a new foreign key, the implicit index it drops once another index starts with
the key's columns, the indexes a dropped column takes with it. With a before snapshot, statements
that contradict it (adding a column that exists, dropping a table that is not there) are errors.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dbaudit.audit.derive.ops import (
    AddCheck,
    AddColumn,
    AddForeignKey,
    AddIndex,
    Allow,
    AlterColumn,
    ColumnSpec,
    CreateObject,
    CreateTable,
    Data,
    DropColumn,
    DropConstraint,
    DropIndex,
    DropObject,
    DropTable,
    ForeignKeySpec,
    IndexSpec,
    ModifyColumn,
    Note,
    Op,
    RenameColumn,
    RenameIndex,
    RenameTable,
    Source,
    TableOptions,
    Unparsed,
)
from dbaudit.audit.spelling import same_attribute
from dbaudit.core.snapshot import Snapshot, Table

_WILD = "*"  # the name of an object the server names: matched by its attributes instead
_PARTITION_OF = re.compile(r"\bPARTITION\s+OF\s+(?:[\w$\"]+\.)?([\w$\"]+)", re.IGNORECASE)
_OBJECT_KINDS = {"view": "views", "trigger": "triggers", "routine": "routines", "event": "events",
                 "sequence": "sequences", "type": "types"}


@dataclass
class Entry:
    """One line of the derived file: `<kind>: <target>` with attributes, and why."""

    section: str  # required | allowed
    kind: str
    target: str
    attrs: dict[str, Any] = field(default_factory=dict)
    sources: list[Source] = field(default_factory=list)
    why: str = ""  # for allowed side effects: the engine behaviour that explains it
    notes: list[str] = field(default_factory=list)


@dataclass
class Obj:
    """A column, index, foreign key or check of one table; or a view, trigger, routine, event, sequence."""

    name: str
    existed: bool  # before the migration (known from the snapshot, or taken to be so)
    exists: bool
    attrs: dict[str, Any] = field(default_factory=dict)
    changed: bool = False
    sources: list[Source] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    maybe: bool = False  # CREATE OR REPLACE of something whose existence is unknown
    recreated: bool = False  # dropped and created again under its name: the diff shows what differs, if anything


@dataclass
class TableState:
    name: str
    original: str | None  # its name before the migration; None when the migration creates it
    exists: bool = True
    attrs: dict[str, Any] = field(default_factory=dict)
    options_changed: bool = False
    objects: dict[str, dict[str, Obj]] = field(default_factory=lambda: {k: {} for k in ("column", "index", "fk", "check")})
    sources: list[Source] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    columns_known: bool = False  # every column is known (created here, or from the snapshot)
    checks_known: bool = False  # every CHECK is known (created here, or from a snapshot of format 2 or later)
    recreates: TableState | None = None  # the table of the same name it replaced (dropped, created, renamed)
    data: list[Data] = field(default_factory=list)
    column_changes: bool = False  # columns modified, renamed or dropped: its rows' text changes
    maybe_dropped: bool = False  # DROP TABLE IF EXISTS of a table not known to be there

    def obj(self, kind: str, name: str) -> Obj | None:
        found = self.objects[kind].get(name)
        if found is None and kind == "column":  # column names are case-insensitive everywhere but in PG quotes
            found = next((o for n, o in self.objects[kind].items() if n.lower() == name.lower()), None)
        return found


class Model:
    def __init__(self, dialect: str, before: Snapshot | None, change_kinds: Iterable[str]) -> None:
        self.dialect = dialect
        self.before = before
        self.kinds = set(change_kinds)
        self.tables: dict[str, TableState] = {}
        self.dropped: list[TableState] = []  # tables that existed and were dropped (or renamed away)
        self.objects: dict[tuple[str, str], Obj] = {}
        self.side: list[Entry] = []
        self.errors: list[str] = []
        self.warnings: list[tuple[Source, str]] = []
        self._unnamed = itertools.count(1)
        if before is not None:
            for table in before.tables.values():
                self.tables[table.name] = _from_snapshot(table, before.format_version >= 2)
            for kind, attr in _OBJECT_KINDS.items():
                for key, definition in getattr(before, attr).items():
                    self.objects[(kind, key)] = Obj(key, True, True, {"table": getattr(definition, "table", None)})

    # --- looking things up ---------------------------------------------------------------------

    def table(self, name: str, src: Source, action: str) -> TableState | None:
        """The table a statement acts on; without a snapshot, one it does not create was there before."""
        found = self.tables.get(name)
        if found is not None and found.exists:
            return found
        if self.before is not None or found is not None:
            self.error(src, f"{action} table {name}, which is not there")
            return None
        state = TableState(name, name)
        self.tables[name] = state
        return state

    def member(self, table: TableState, kind: str, name: str, src: Source, action: str,
               if_exists: bool = False) -> Obj | None:
        """A column, index, key or check a statement acts on; without knowledge of the table, taken to be there."""
        found = table.obj(kind, name)
        if found is not None and found.exists:
            return found
        # Known not to be there: the table is new, came from the snapshot (which records no checks), or lost it.
        known = found is not None or table.original is None or (
            table.columns_known and (kind != "check" or table.checks_known))
        if known:
            if if_exists:
                self.warn(src, f"{action} {_WORDS[kind]} {table.name}.{name} IF EXISTS: it is not there, nothing changes")
            else:
                self.error(src, f"{action} {_WORDS[kind]} {table.name}.{name}, which is not there")
            return None
        # Not known either way: taken to be there. IF EXISTS says it may not be: then its removal is allowed only.
        obj = Obj(name, True, True, maybe=if_exists)
        if if_exists:
            obj.notes.append("IF EXISTS: it may not have been there (derive with --from-snapshot to know)")
        table.objects[kind][name] = obj
        return obj

    def error(self, src: Source, message: str) -> None:
        self.errors.append(f"{src}: {message}")

    def warn(self, src: Source, message: str) -> None:
        self.warnings.append((src, message))

    def allow(self, kind: str, target: str, why: str, src: Source, **attrs: Any) -> None:
        if kind in self.kinds:
            self.side.append(Entry("allowed", kind, target, attrs, [src], why))

    # --- applying statements -------------------------------------------------------------------

    def apply(self, op: Op) -> None:
        if isinstance(op, Unparsed):
            for inner in op.ops:
                self.apply(inner)
            return
        handler = getattr(self, f"_{type(op).__name__}", None)
        if handler is not None:
            handler(op)

    def _Allow(self, op: Allow) -> None:
        self.allow(op.kind, op.target, op.why, op.src)

    def _Note(self, op: Note) -> None:
        self.warn(op.src, op.message)

    def _CreateTable(self, op: CreateTable) -> None:
        parent = _PARTITION_OF.search(op.src.text) if self.dialect == "postgresql" else None
        if parent is not None:  # a partition is recorded on its parent, not as a table of its own
            self.allow("partition_added", f"{parent.group(1).strip(chr(34))}.{op.table}",
                       "CREATE TABLE … PARTITION OF attaches a partition", op.src)
            return
        existing = self.tables.get(op.table)
        if existing is not None and existing.exists:
            if op.if_not_exists:
                self.warn(op.src, f"CREATE TABLE IF NOT EXISTS {op.table}: it is already there, so nothing changes")
            else:
                self.error(op.src, f"creates table {op.table}, which is already there")
            return
        state = TableState(op.table, None, attrs=dict(op.options), sources=[op.src], columns_known=not op.as_select)
        if op.if_not_exists and self.before is None:
            state.notes.append("IF NOT EXISTS: if the table was already there nothing changes and this check fails "
                               "(derive with --from-snapshot to know)")
        if op.copy_of:
            self._copy_structure(state, op)
        if op.as_select:
            state.notes.append("CREATE TABLE … AS SELECT: its columns come from the query and are not checked")
        for column in op.columns:
            self._new_column(state, column, op.src)
        for index in op.indexes:
            self._new_index(state, index, op.src)
        for key in op.foreign_keys:
            name = key.name if self.dialect != "sqlite" else None  # SQLite keeps no key names
            state.objects["fk"][name or self._wild()] = Obj(name or _WILD, False, True, key.attrs(), sources=[op.src])
        for check in op.checks:
            state.objects["check"][check.name or self._wild()] = Obj(check.name or _WILD, False, True, sources=[op.src])
        state.checks_known = True
        if existing is not None and existing.original is not None:
            state.recreates = existing  # dropped earlier in the migration, created again
        self.tables[op.table] = state

    def _copy_structure(self, state: TableState, op: CreateTable) -> None:
        source = self.tables.get(op.copy_of or "")
        if source is None or not source.columns_known:
            state.columns_known = False
            state.notes.append(f"CREATE TABLE … LIKE {op.copy_of}: its columns are those of {op.copy_of}, not checked")
            return
        for kind in ("column", "index"):
            for name, obj in source.objects[kind].items():
                if obj.exists:
                    state.objects[kind][name] = Obj(obj.name, False, True, dict(obj.attrs), sources=[op.src])

    def _DropTable(self, op: DropTable) -> None:
        found = self.tables.get(op.table)
        if found is None or not found.exists:
            if op.if_exists and (self.before is not None or found is not None):
                self.warn(op.src, f"DROP TABLE IF EXISTS {op.table}: it is not there, so nothing changes")
                return
            if op.if_exists:
                found = TableState(op.table, op.table, maybe_dropped=True)
                found.notes.append("IF EXISTS: it may not have been there (derive with --from-snapshot to know)")
                self.tables[op.table] = found
        table = found if found is not None and found.exists else self.table(op.table, op.src, "drops")
        if table is None:
            return
        table.exists = False
        table.sources.append(op.src)
        if table.original is not None:
            self.dropped.append(table)
        if op.cascade:
            self.allow("fk_removed", "*", f"DROP TABLE … CASCADE drops the keys of other tables that reference {op.table}",
                       op.src, ref_table=op.table)

    def _RenameTable(self, op: RenameTable) -> None:
        table = self.table(op.table, op.src, "renames")
        if table is None:
            return
        target = self.tables.get(op.new_name)
        if target is not None and target.exists:
            self.error(op.src, f"renames table {op.table} to {op.new_name}, which is already there")
            return
        del self.tables[op.table]
        table.name = op.new_name
        table.sources.append(op.src)
        if target is not None and target.original is not None:
            table.recreates = target  # the Laravel/SQLite way to alter: create __temp__x, drop x, rename
        self.tables[op.new_name] = table
        if table.original is not None:
            self.allow("fk_changed", "*", f"keys of other tables that referenced {op.table} now name {op.new_name}",
                       op.src, ref_table=op.new_name)
            self._owned_sequences(f"{op.table}.", f"{op.new_name}.", op.src)

    def _owned_sequences(self, old: str, new: str, src: Source) -> None:
        """A PostgreSQL sequence OWNED BY a column (serial, identity) follows a rename of its table or column:
        its owned_by changes with it, a side effect, not a change of the sequence itself."""
        if self.dialect != "postgresql":
            return
        why = f"a sequence owned by {old.rstrip('.')} is now owned by {new.rstrip('.')}"
        if self.before is None:
            self.allow("sequence_changed", "*", why, src)
            return
        for sequence in self.before.sequences.values():
            owner = sequence.owned_by or ""
            if owner.startswith(old):
                self.allow("sequence_changed", sequence.name, why, src, owned_by=new + owner[len(old):])

    def _TableOptions(self, op: TableOptions) -> None:
        table = self.table(op.table, op.src, "alters")
        if table is None:
            return
        attrs = dict(op.attrs)
        if attrs.pop("converted", None):
            self.allow("table_changed", table.name, "CONVERT TO CHARACTER SET changes the table's collation", op.src)
            self.allow("column_changed", f"{table.name}.*", "… and the collation of its text columns", op.src)
        if (charset := attrs.pop("charset", None)) and "collation" not in attrs:
            self.allow("table_changed", table.name, f"the default collation of {charset} becomes the table's", op.src)
        for option in attrs.pop("options", []):
            self.allow("table_changed", table.name, f"`{option}` changes a table property newer snapshots record", op.src)
            if (index := re.match(r"ALTER\s+INDEX\s+([\w$`\"]+)", option, re.IGNORECASE)):
                index_name = index.group(1).strip('`"')
                self.allow("index_changed", f"{table.name}.{index_name}",
                           f"`{option}` changes whether the optimizer uses it", op.src)
            self._option_members(table, option, op.src)
            if "PARTITION" in option.upper():
                for action in ("added", "removed", "changed"):
                    self.allow(f"partition_{action}", f"{table.name}.*", f"`{option}` changes its partitions", op.src)
                if (detached := re.search(r"\bDETACH\s+PARTITION\s+([\w$]+)", option, re.IGNORECASE)):
                    self.allow("table_added", detached.group(1), "a detached partition is a table of its own", op.src)
            if "TRIGGER" in option.upper():
                key = f"{table.name}.*" if self.dialect == "postgresql" else "*"
                self.allow("trigger_changed", key, f"`{option}` changes whether its triggers fire", op.src)
        if unread := attrs.pop("unread", None):
            why = f"the clause `{unread}` could not be read: any change to {table.name} is allowed; review it by hand"
            self.allow("table_changed", table.name, why, op.src)
            for kind in ("column", "index", "fk"):
                for action in ("added", "removed", "changed"):
                    self.allow(f"{kind}_{action}", f"{table.name}.*", why, op.src)
        if attrs:
            table.attrs.update(attrs)
            table.options_changed = True
            table.sources.append(op.src)

    def _option_members(self, table: TableState, option: str, src: Source) -> None:
        """What a clause read only as an option changes besides the table: the column, constraint or key it names."""
        named = re.match(r"(ALTER\s+COLUMN|VALIDATE\s+CONSTRAINT|ALTER\s+CONSTRAINT)\s+([\w$`\"]+)", option,
                         re.IGNORECASE)
        if named is None:
            return
        clause, name = " ".join(named.group(1).upper().split()), named.group(2).strip('`"')
        if clause == "ALTER COLUMN":
            self.allow("column_changed", f"{table.name}.{name}", f"`{option}` changes the column", src)
            if re.search(r"\bIDENTITY\b", option, re.IGNORECASE) and self.dialect == "postgresql":
                self.allow("sequence_added", f"{table.name}_{name}_seq", "an identity column makes its sequence", src)
                self.allow("sequence_removed", f"{table.name}_{name}_seq", "… and dropping it drops it", src)
        else:  # VALIDATE CONSTRAINT drops NOT VALID; ALTER CONSTRAINT sets DEFERRABLE
            for kind in ("check", "fk"):
                self.allow(f"{kind}_changed", f"{table.name}.{name}", f"`{option}` changes the constraint", src)

    def _AddColumn(self, op: AddColumn) -> None:
        table = self.table(op.table, op.src, "adds a column to")
        if table is None:
            return
        found = table.obj("column", op.column.name)
        if found is not None and found.exists:
            if op.if_not_exists:
                self.warn(op.src, f"ADD COLUMN IF NOT EXISTS {op.table}.{op.column.name}: it is already there")
            else:
                self.error(op.src, f"adds column {op.table}.{op.column.name}, which is already there")
            return
        self._new_column(table, op.column, op.src)

    def _new_column(self, table: TableState, column: ColumnSpec, src: Source) -> None:
        table.objects["column"][column.name] = Obj(column.name, False, True, dict(column.attrs), sources=[src],
                                                   notes=list(column.notes))
        if column.primary:
            self._new_index(table, IndexSpec(None, [column.name], True, True), src)
        if column.unique:
            self._new_index(table, IndexSpec(None, [column.name], True), src)
        if column.references is not None:
            self._new_key(table, column.references, src)
        if column.check is not None:
            self._new_check(table, None, src)
        if self.dialect == "mysql" and str(column.attrs.get("type")) == "longtext" and "json" in src.text.lower():
            self.allow("check_added", f"{table.name}.{column.name}", "MariaDB adds a json_valid() CHECK for a JSON column",
                       src)
        if column.serial and self.dialect == "postgresql":
            self.allow("sequence_added", f"{table.name}_{column.name}_seq", "a serial or identity column makes its sequence", src)

    def _ModifyColumn(self, op: ModifyColumn) -> None:
        table = self.table(op.table, op.src, "modifies a column of")
        if table is None:
            return
        name = op.old_name or op.column.name
        column = self.member(table, "column", name, op.src, "modifies")
        if column is None:
            return
        if op.old_name and op.old_name.lower() != op.column.name.lower():
            column = self._rename_column(table, column, op.column.name, op.src)
        attrs = dict(op.column.attrs)
        attrs.setdefault("comment", "")  # MODIFY and CHANGE restate the whole column: an unrepeated comment is gone
        if "default" not in attrs and "timestamp" not in str(attrs.get("type", "")) and not op.column.notes:
            attrs["default"] = None
        self._redefine(table, column, attrs, op.src, op.column.notes)
        table.column_changes = True
        if op.column.check is not None:
            self._new_check(table, None, op.src)  # MariaDB keeps a column's CHECK as a table constraint
        if op.column.primary or op.column.unique or op.column.references:
            self.warn(op.src, "constraints inside MODIFY/CHANGE are not read; declare them with ADD")

    def _AlterColumn(self, op: AlterColumn) -> None:
        table = self.table(op.table, op.src, "alters a column of")
        if table is None:
            return
        column = self.member(table, "column", op.column, op.src, "alters")
        if column is None:
            return
        merged = {**(column.attrs if column.changed or not column.existed else {}), **op.attrs}
        self._redefine(table, column, merged, op.src, op.notes)
        if "type" in op.attrs or op.notes:
            table.column_changes = True

    def _redefine(self, table: TableState, column: Obj, attrs: dict[str, Any], src: Source, notes: list[str]) -> None:
        if column.existed and self.before is not None and column.attrs and _already(column.attrs, attrs):
            column.notes.append("the before snapshot already has it so: the statement may change nothing")
            column.maybe = True
        column.attrs = attrs
        column.changed = True
        column.sources.append(src)
        column.notes.extend(notes)

    def _RenameColumn(self, op: RenameColumn) -> None:
        table = self.table(op.table, op.src, "renames a column of")
        if table is None:
            return
        column = self.member(table, "column", op.column, op.src, "renames")
        if column is not None:
            self._rename_column(table, column, op.new_name, op.src)

    def _rename_column(self, table: TableState, column: Obj, new_name: str, src: Source) -> Obj:
        if table.obj("column", new_name) is not None and table.obj("column", new_name).exists:  # type: ignore[union-attr]
            self.error(src, f"renames column {table.name}.{column.name} to {new_name}, which is already there")
            return column
        attrs = {k: v for k, v in column.attrs.items() if k != "position"}
        renamed = Obj(new_name, False, True, attrs, sources=[*column.sources, src])
        if not column.existed:
            del table.objects["column"][column.name]  # added by this migration: only its name changes
        else:
            column.exists = False
            column.sources.append(src)
        table.objects["column"][new_name] = renamed
        table.column_changes = True
        self._columns_renamed_in_keys(table, column.name, new_name, src)
        if column.existed:
            self._owned_column_sequence(table, column.name, new_name, src)
        return renamed

    def _owned_column_sequence(self, table: TableState, old: str, new: str, src: Source) -> None:
        if self.dialect != "postgresql" or self.before is None:
            self._owned_sequences(f"{table.name}.{old}", f"{table.name}.{new}", src)
            return
        for sequence in self.before.sequences.values():
            owner = sequence.owned_by or ""
            if owner == f"{table.name}.{old}" or owner.startswith(f"{table.name}.{old} "):
                self.allow("sequence_changed", sequence.name, f"the sequence owned by {table.name}.{old} follows "
                           "its column's rename", src, owned_by=f"{table.name}.{new}{owner[len(table.name) + len(old) + 1:]}")

    def _columns_renamed_in_keys(self, table: TableState, old: str, new: str, src: Source) -> None:
        touched = False
        for kind in ("index", "fk"):
            for obj in table.objects[kind].values():
                columns = obj.attrs.get("columns") or []
                if obj.exists and old in columns:
                    obj.attrs["columns"] = [new if c == old else c for c in columns]
                    touched = True
                    if obj.existed:
                        self.allow(f"{kind}_changed", f"{table.name}.{obj.name}", f"it holds column {old}, now {new}", src)
        if not touched and self.before is None and table.original is not None:
            self.allow("index_changed", f"{table.name}.*", f"indexes holding column {old} now name {new}", src)
            self.allow("fk_changed", f"{table.name}.*", f"keys holding column {old} now name {new}", src)

    def _DropColumn(self, op: DropColumn) -> None:
        table = self.table(op.table, op.src, "drops a column of")
        if table is None:
            return
        column = self.member(table, "column", op.column, op.src, "drops", op.if_exists)
        if column is None:
            return
        column.exists = False
        column.sources.append(op.src)
        table.column_changes = True
        self._column_dropped_from_keys(table, op.column, op.src)

    def _column_dropped_from_keys(self, table: TableState, name: str, src: Source) -> None:
        known = False
        for kind in ("index", "fk"):
            for obj in table.objects[kind].values():
                columns = obj.attrs.get("columns") or []
                if not obj.exists or name not in columns:
                    continue
                known = True
                rest = [c for c in columns if c != name]
                if kind == "index" and rest and self.dialect == "mysql":
                    obj.attrs["columns"] = rest
                    if obj.existed:
                        self.allow("index_changed", f"{table.name}.{obj.name}", f"MySQL drops column {name} from it", src)
                else:
                    obj.exists = False
                    if obj.existed:
                        self.allow(f"{kind}_removed", f"{table.name}.{obj.name}", f"it held the dropped column {name}", src)
        if not known and self.before is None and table.original is not None:
            self.allow("index_removed", f"{table.name}.*", f"an index on the dropped column {name} goes with it", src,
                       columns=[name])
            if self.dialect == "mysql":
                self.allow("index_changed", f"{table.name}.*", f"MySQL drops column {name} from the indexes holding it", src)

    def _AddIndex(self, op: AddIndex) -> None:
        table = self.table(op.table, op.src, "adds an index to")
        if table is None:
            return
        if op.index.name and (found := table.obj("index", op.index.name)) is not None and found.exists:
            if op.if_not_exists:
                self.warn(op.src, f"CREATE INDEX IF NOT EXISTS {op.index.name}: it is already there")
            else:
                self.error(op.src, f"adds index {op.table}.{op.index.name}, which is already there")
            return
        self._new_index(table, op.index, op.src)
        if self.dialect == "mysql" and table.original is not None and op.index.columns:
            self._implicit_index_dropped(table, op.index, op.src)

    def _new_index(self, table: TableState, index: IndexSpec, src: Source) -> None:
        name = index.name or (("PRIMARY" if self.dialect != "postgresql" else f"{table.name}_pkey") if index.primary
                              else None)
        attrs = index.attrs()
        if name and index.name:
            attrs["name"] = name
        self._put(table, "index", name or self._wild(), Obj(name or _WILD, False, True, attrs, sources=[src],
                                                            notes=list(index.notes)))

    def _implicit_index_dropped(self, table: TableState, index: IndexSpec, src: Source) -> None:
        """InnoDB drops the index it made for a foreign key once another index starts with the key's columns."""
        columns = index.columns or []
        first = table.obj("column", columns[0]) if columns else None
        if first is not None and not first.existed:
            return  # a column this migration adds had no foreign key, so no implicit index, before it
        why = ("InnoDB drops the index it created for a foreign key once another index starts with the key's columns "
               f"(here {', '.join(columns)})")
        if self.before is None:
            self.allow("index_removed", f"{table.name}.*", why, src, columns=columns[:1], unique=False)
            return
        for key in table.objects["fk"].values():
            fk_columns = key.attrs.get("columns") or []
            if not key.exists or columns[: len(fk_columns)] != fk_columns:
                continue
            for obj in table.objects["index"].values():
                if obj.exists and obj.existed and obj.attrs.get("columns") == fk_columns and not obj.attrs.get("unique"):
                    self.allow("index_removed", f"{table.name}.{obj.name}", why, src)

    def _DropIndex(self, op: DropIndex) -> None:
        table = self._index_table(op)
        if table is None:
            return
        index = self.member(table, "index", op.name, op.src, "drops", op.if_exists)
        if index is not None:
            index.exists = False
            index.sources.append(op.src)

    def _index_table(self, op: DropIndex | RenameIndex) -> TableState | None:
        if op.table is not None:
            return self.table(op.table, op.src, "drops an index of")
        for table in self.tables.values():  # PostgreSQL and SQLite index names are unique in the schema
            found = table.obj("index", op.name)
            if table.exists and found is not None and found.exists:
                return table
        if self.before is not None:
            if not getattr(op, "if_exists", False):
                self.error(op.src, f"drops index {op.name}, which is not there")
            return None
        return self.tables.setdefault("*", TableState("*", "*"))  # the table is not named: any table

    def _RenameIndex(self, op: RenameIndex) -> None:
        table = self._index_table(op)
        if table is None:
            return
        index = self.member(table, "index", op.name, op.src, "renames")
        if index is None:
            return
        attrs = {k: v for k, v in index.attrs.items() if k != "name"}
        if index.existed:
            index.exists = False
            index.sources.append(op.src)
        else:
            del table.objects["index"][op.name]
        table.objects["index"][op.new_name] = Obj(op.new_name, False, True, attrs, sources=[op.src])

    def _AddForeignKey(self, op: AddForeignKey) -> None:
        table = self.table(op.table, op.src, "adds a foreign key to")
        if table is not None:
            self._new_key(table, op.key, op.src)

    def _new_key(self, table: TableState, key: ForeignKeySpec, src: Source) -> None:
        if key.name and (found := table.obj("fk", key.name)) is not None and found.exists:
            self.error(src, f"adds foreign key {table.name}.{key.name}, which is already there")
            return
        name = key.name if key.name and self.dialect != "sqlite" else None  # SQLite keeps no key names
        self._put(table, "fk", name or self._wild(), Obj(name or _WILD, False, True, key.attrs(), sources=[src]))
        if self.dialect == "mysql" and table.original is not None:
            covered = any(o.exists and (o.attrs.get("columns") or [])[: len(key.columns)] == key.columns
                          for o in table.objects["index"].values())
            if not covered or self.before is None:
                index_name = key.name or key.columns[0]
                self.allow("index_added", f"{table.name}.{index_name}",
                           "InnoDB adds an index for a new foreign key unless one starts with its columns", src,
                           columns=list(key.columns), unique=False)

    def _AddCheck(self, op: AddCheck) -> None:
        table = self.table(op.table, op.src, "adds a check to")
        if table is not None:
            self._new_check(table, op.check.name, op.src)

    def _new_check(self, table: TableState, name: str | None, src: Source) -> None:
        if "check_added" not in self.kinds:
            self.warn(src, "CHECK constraints are not recorded in this dbaudit's snapshots: not checked")
            return
        self._put(table, "check", name or self._wild(), Obj(name or _WILD, False, True, sources=[src]))

    def _DropConstraint(self, op: DropConstraint) -> None:
        table = self.table(op.table, op.src, "drops a constraint of")
        if table is None:
            return
        kinds = [op.kind] if op.kind else ["fk", "index", "check"]
        if op.kind == "check" and "check_removed" not in self.kinds:
            self.warn(op.src, "CHECK constraints are not recorded in this dbaudit's snapshots: not checked")
            return
        for kind in kinds:
            found = table.obj(kind, op.name)
            if found is not None and found.exists:
                found.exists = False
                found.sources.append(op.src)
                return
        if self.before is not None and table.original is not None:
            if not table.checks_known and op.kind in ("check", None):
                self.warn(op.src, f"DROP CONSTRAINT {op.name}: not a key or unique index in the before snapshot, "
                                  "so a CHECK, which a snapshot of format 1 does not record")
            elif not op.if_exists:
                self.error(op.src, f"drops constraint {op.table}.{op.name}, which is not there")
            return
        if op.kind:
            obj = self.member(table, op.kind, op.name, op.src, "drops", op.if_exists)
            if obj is not None:
                obj.exists = False
                obj.sources.append(op.src)
            return
        for kind in ("fk", "index", "check"):
            self.allow(f"{kind}_removed", f"{table.name}.{op.name}",
                       "DROP CONSTRAINT does not say what the constraint is (derive with --from-snapshot to require it)",
                       op.src)

    def _CreateObject(self, op: CreateObject) -> None:
        kind = op.kind
        if f"{kind}_added" not in self.kinds:
            self.warn(op.src, f"{kind}s are not recorded in this dbaudit's snapshots: {op.name} is not checked")
            return
        key = self._object_key(kind, op.name, op.table)
        found = self.objects.get((kind, key))
        if found is not None and found.exists:
            if op.replace:
                found.changed = True
                found.sources.append(op.src)
            elif op.if_not_exists:
                self.warn(op.src, f"CREATE {kind.upper()} IF NOT EXISTS {op.name}: it is already there")
            else:
                self.error(op.src, f"creates {kind} {op.name}, which is already there")
            return
        attrs: dict[str, Any] = {}
        if kind == "trigger" and op.table:
            attrs["table"] = op.table
        if kind == "routine" and op.routine_kind:
            attrs["kind"] = op.routine_kind
        if kind == "trigger" and re.search(r"\b(FOLLOWS|PRECEDES)\b", op.src.text, re.IGNORECASE):
            self.allow("trigger_changed", "*", "FOLLOWS / PRECEDES sets the order among the triggers of one timing "
                       "and event: the others' places may move", op.src)
        if found is not None and found.existed and not found.exists:  # dropped above: created again
            found.exists = found.changed = found.recreated = True
            found.sources.append(op.src)
            return
        obj = Obj(key, False, True, attrs, sources=[op.src], maybe=op.replace and self.before is None)
        if obj.maybe:
            obj.notes.append("OR REPLACE: it may have been there already (derive with --from-snapshot to know)")
        self.objects[(kind, key)] = obj

    def _DropObject(self, op: DropObject) -> None:
        kind = op.kind
        if f"{kind}_removed" not in self.kinds:
            self.warn(op.src, f"{kind}s are not recorded in this dbaudit's snapshots: dropping {op.name} is not checked")
            return
        key = self._object_key(kind, op.name, op.table)
        found = self.objects.get((kind, key))
        if found is None or not found.exists:
            if op.if_exists and (self.before is not None or found is not None):
                self.warn(op.src, f"DROP {kind.upper()} IF EXISTS {op.name}: it is not there, so nothing changes")
                return
            if self.before is not None or found is not None:
                self.error(op.src, f"drops {kind} {op.name}, which is not there")
                return
            found = Obj(key, True, True, maybe=op.if_exists)
            self.objects[(kind, key)] = found
        found.exists = False
        found.sources.append(op.src)

    def _object_key(self, kind: str, name: str, table: str | None) -> str:
        """How a snapshot keys it: PostgreSQL triggers by table.name, PostgreSQL routines by name(arguments)."""
        if self.dialect == "postgresql" and kind == "trigger" and table:
            return f"{table}.{name}"
        if self.dialect == "postgresql" and kind == "routine":
            if self.before is not None:
                match = next((k for (kk, k) in self.objects if kk == "routine" and k.startswith(f"{name}(")), None)
                if match:
                    return match
            return f"{name}(*)"
        return name

    def _Data(self, op: Data) -> None:
        table = self.table(op.table, op.src, "writes to")
        if table is not None:
            table.data.append(op)
        if not op.where and op.verb in ("update", "delete"):
            self.warn(op.src, f"{op.verb.upper()} without WHERE: every row of {op.table} is "
                              f"{'changed' if op.verb == 'update' else 'deleted'}")

    def _put(self, table: TableState, kind: str, name: str, obj: Obj) -> None:
        """A new index, key or check; one the migration dropped under this name before is created again."""
        old = table.objects[kind].get(name)
        if old is not None and old.existed and not old.exists and not name.startswith(_WILD):
            obj.existed, obj.recreated, obj.sources = True, True, [*old.sources, *obj.sources]
            self.allow("table_changed", table.name, f"{name} is created again: what no field records of it (a comment, "
                       "an operator class …) shows as the table's definition", obj.sources[-1])
        table.objects[kind][name] = obj

    def _wild(self) -> str:
        return f"{_WILD}{next(self._unnamed)}"


_WORDS = {"column": "column", "index": "index", "fk": "foreign key", "check": "check"}


def _already(before: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return all(same_attribute(k, before.get(k), v) for k, v in wanted.items() if k in before)


def _from_snapshot(table: Table, checks_known: bool = True) -> TableState:
    state = TableState(table.name, table.name, attrs={"engine": table.engine, "collation": table.collation},
                       columns_known=True, checks_known=checks_known)
    for column in table.columns:
        attrs = {"type": column.type, "nullable": column.nullable, "default": column.default, "extra": column.extra,
                 "comment": column.comment, "collation": column.collation}
        state.objects["column"][column.name] = Obj(column.name, True, True, attrs)
    for index in table.indexes:
        state.objects["index"][index.name] = Obj(index.name, True, True, {"columns": list(index.columns),
                                                                          "unique": index.unique})
    for key in table.foreign_keys:
        state.objects["fk"][key.name] = Obj(key.name, True, True, {"columns": list(key.columns), "ref_table": key.ref_table,
                                                                   "on_delete": key.on_delete})
    for check in table.checks:  # format-1 snapshots recorded none: then a check is taken to be there
        state.objects["check"][check.name] = Obj(check.name, True, True)
    return state
