"""One statement → operations, by walking the tree sqlglot parses it into.

sqlglot falls back to `exp.Command` for syntax it does not model (RENAME TABLE, CREATE EVENT,
bodies of MySQL triggers and routines …), silently even with error_level=RAISE. Such a statement
becomes an `Unparsed` operation, always listed as a warning in the derived file; for the few whose
leading words still say what they create or drop (`CREATE TRIGGER name`, `RENAME TABLE a TO b`), the
operation is read from sqlglot's own tokens and the warning says what was understood.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError
from sqlglot.tokens import Token, TokenType

from dbaudit.audit.derive import types
from dbaudit.audit.derive.ops import (
    AddCheck,
    AddColumn,
    AddForeignKey,
    AddIndex,
    Allow,
    AlterColumn,
    CheckSpec,
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

logging.getLogger("sqlglot").setLevel(logging.ERROR)  # its fallback warnings become our Unparsed entries

READ = {"mysql": "mysql", "postgresql": "postgres", "sqlite": "sqlite"}
# Statements that change neither schema nor rows: read, and deliberately produce nothing.
_QUIET = tuple(getattr(exp, name) for name in ("Set", "Select", "Transaction", "Commit", "Rollback", "Pragma", "Union",
                                                "Describe", "Show", "Analyze") if hasattr(exp, name))
# (DO blocks and CALLed procedures may change anything: they are warnings, not quiet.)
_QUIET_COMMANDS = {"LOCK", "UNLOCK", "LOCK TABLES", "UNLOCK TABLES", "BEGIN", "START", "COMMIT", "ANALYZE",
                   "OPTIMIZE", "VACUUM", "REINDEX", "CHECKPOINT", "FLUSH", "SAVEPOINT", "RELEASE", "SELECT", "SHOW",
                   "EXPLAIN", "PRAGMA", "SET", "RESET", "DISCARD", "LISTEN", "NOTIFY"}
# ALTER TABLE options that change nothing a snapshot records (the counter is a measurement, not schema).
_QUIET_OPTIONS = tuple(getattr(exp, n) for n in ("AlgorithmProperty", "LockProperty", "AutoIncrementProperty")
                       if hasattr(exp, n))
_RULE = re.compile(r"ON\s+(DELETE|UPDATE)\s+(.+)", re.IGNORECASE)
# What ends a column's type: the first word of a column constraint.
_TYPE_STOP = {"NOT", "NULL", "DEFAULT", "PRIMARY", "UNIQUE", "KEY", "COMMENT", "COLLATE", "CHARACTER", "CHARSET",
              "AUTO_INCREMENT", "AUTOINCREMENT", "REFERENCES", "CHECK", "CONSTRAINT", "GENERATED", "AS", "ON",
              "AFTER", "FIRST", "INVISIBLE", "VISIBLE", "COLUMN_FORMAT", "STORAGE", "SRID", "IDENTITY", "ENCODE",
              "COMPRESSION", "USING", "WITH", "INLINE", "FOR", "ASC", "DESC", "PERSISTENT", "VIRTUAL", "STORED"}
OBJECT_WORDS = {"TRIGGER": "trigger", "PROCEDURE": "routine", "FUNCTION": "routine", "EVENT": "event",
                 "VIEW": "view", "SEQUENCE": "sequence"}


def from_tokens(text: str, src: Source, dialect: str, reason: str) -> Unparsed:
    from dbaudit.audit.derive.fallback import from_tokens as read

    return read(text, src, dialect, reason)


def read_statement(text: str, src: Source, dialect: str) -> list[Op]:
    try:
        trees = sqlglot.parse(text, read=READ[dialect])
    except SqlglotError as exc:
        return [from_tokens(text, src, dialect, f"sqlglot cannot parse it: {_first_line(str(exc))}")]
    found = [t for t in trees if isinstance(t, exp.Expression)]
    if len(found) != 1:
        return [from_tokens(text, src, dialect, "sqlglot reads it as several statements (a body it does not model)")]
    tree = found[0]
    if isinstance(tree, exp.Command):
        head = str(tree.this).upper()
        if head.split()[0] in _QUIET_COMMANDS:
            return []
        return [from_tokens(text, src, dialect, f"sqlglot returned it as an unparsed command ({head})")]
    return _Reader(text, src, dialect).read(tree)


class _Reader:
    def __init__(self, text: str, src: Source, dialect: str) -> None:
        self.text, self.src, self.dialect = text, src, dialect
        self._tokens: list[Token] | None = None

    # --- names -------------------------------------------------------------------------------

    def ident(self, node: Any) -> str:
        """A name as the catalog stores it: PostgreSQL folds unquoted names to lower case."""
        if isinstance(node, (exp.Table, exp.Column)):
            node = node.this
        if isinstance(node, exp.Identifier):
            name = str(node.this)
            return name.lower() if self.dialect == "postgresql" and not node.quoted else name
        return str(node.name if isinstance(node, exp.Expression) else node)

    def table(self, node: Any) -> str:
        if isinstance(node, exp.Schema):
            node = node.this
        return self.ident(node)

    # --- statements --------------------------------------------------------------------------

    def read(self, tree: exp.Expression) -> list[Op]:
        handlers: list[tuple[type, Callable[[Any], list[Op]]]] = [
            (exp.Create, self.create), (exp.Alter, self.alter), (exp.Drop, self.drop), (exp.Insert, self.insert),
            (exp.Update, self.update), (exp.Delete, self.delete), (exp.TruncateTable, self.truncate),
            (exp.Comment, self.comment), (exp.Use, self.use)]
        for cls, handler in handlers:
            if isinstance(tree, cls):
                return handler(tree)
        if isinstance(tree, _QUIET):
            return []
        return [Unparsed(self.src, f"{type(tree).__name__} statements are not audited")]

    def create(self, tree: exp.Create) -> list[Op]:
        kind = str(tree.args.get("kind") or "").upper()
        replace, exists = bool(tree.args.get("replace")), bool(tree.args.get("exists"))
        if kind == "TABLE":
            return [self.create_table(tree)]
        if kind == "INDEX":
            index = tree.this
            spec = self.index_spec(index.this, self.index_columns(index), bool(tree.args.get("unique")),
                                   using=_using(index.args.get("params")))
            if (params := index.args.get("params")) is not None and params.args.get("where") is not None:
                spec.notes.append("partial index: its condition is not checked (each server rewrites it)")
            return [AddIndex(self.src, self.table(index.args["table"]), spec, exists)]
        if kind in ("VIEW", "SEQUENCE", "TYPE"):
            return [CreateObject(self.src, kind.lower(), self.table(tree.this), replace=replace, if_not_exists=exists)]
        if kind == "TRIGGER":
            props = tree.args.get("properties")
            trigger = next((p for p in (props.expressions if props else []) if isinstance(p, exp.TriggerProperties)), None)
            table = self.table(trigger.args["table"]) if trigger is not None else None
            return [CreateObject(self.src, "trigger", self.ident(tree.this), table, replace=replace, if_not_exists=exists)]
        if kind in ("FUNCTION", "PROCEDURE"):
            target = tree.this.this if isinstance(tree.this, exp.UserDefinedFunction) else tree.this
            return [CreateObject(self.src, "routine", self.table(target), routine_kind=kind.lower(), replace=replace,
                                 if_not_exists=exists)]
        return [Unparsed(self.src, f"CREATE {kind or type(tree.this).__name__} is not audited")]

    def create_table(self, tree: exp.Create) -> CreateTable:
        schema = tree.this
        name = self.table(schema)
        props = tree.args.get("properties")
        options, copy_of = {}, None
        for prop in props.expressions if props else []:
            if isinstance(prop, exp.EngineProperty):
                options["engine"] = prop.this.name if isinstance(prop.this, exp.Expression) else str(prop.this)
            elif isinstance(prop, exp.CollateProperty):
                options["collation"] = prop.this.name if isinstance(prop.this, exp.Expression) else str(prop.this)
            elif isinstance(prop, exp.LikeProperty):
                copy_of = self.table(prop.this)
        op = CreateTable(self.src, name, [], [], [], [], options, bool(tree.args.get("exists")), copy_of,
                         as_select=tree.args.get("expression") is not None)
        for item in schema.expressions if isinstance(schema, exp.Schema) else []:
            if isinstance(item, exp.ColumnDef):
                op.columns.append(self.column(item))
            else:
                self.table_constraint(item, op.indexes, op.foreign_keys, op.checks)
        return op

    def alter(self, tree: exp.Alter) -> list[Op]:
        kind = str(tree.args.get("kind") or "TABLE").upper()
        if kind == "INDEX":  # PostgreSQL ALTER INDEX a RENAME TO b
            action = (tree.args.get("actions") or [None])[0]
            if isinstance(action, exp.AlterRename):
                return [RenameIndex(self.src, None, self.table(tree.this), self.table(action.this))]
            return [Unparsed(self.src, "ALTER INDEX other than RENAME is not audited")]
        if kind == "VIEW":  # PostgreSQL ALTER VIEW v SET (check_option …) / RENAME TO w
            action = (tree.args.get("actions") or [None])[0]
            name = self.table(tree.this)
            if isinstance(action, exp.AlterRename):
                return [DropObject(self.src, "view", name), CreateObject(self.src, "view", self.table(action.this))]
            return [Allow(self.src, "view_changed", name, "ALTER VIEW changes its options (not read further)")]
        if kind != "TABLE":
            return [Unparsed(self.src, f"ALTER {kind} is not audited")]
        table = self.table(tree.this)
        ops: list[Op] = []
        options: dict[str, Any] = {}
        for option in tree.args.get("options") or []:
            value = option.this.name if isinstance(option.this, exp.Expression) else str(option.this)
            if isinstance(option, exp.EngineProperty):
                options["engine"] = value
            elif isinstance(option, exp.CollateProperty):
                options["collation"] = value
            elif isinstance(option, exp.CharacterSetProperty):
                options["charset"] = value  # the table's collation becomes that charset's default
            elif not isinstance(option, _QUIET_OPTIONS):
                options.setdefault("options", []).append(_short(option.sql(READ[self.dialect])))
        if options:
            ops.append(TableOptions(self.src, table, options))
        statement = self.src
        for action in tree.args.get("actions") or []:
            self.src = self.clause_source(statement, action)
            ops.extend(self.alter_action(table, action))
            if isinstance(action, exp.AlterRename):
                table = self.table(action.this)  # later clauses of the same ALTER act on the new name
        self.src = statement
        return ops

    def clause_source(self, statement: Source, clause: exp.Expression) -> Source:
        """Point a comment at the clause's own line of a multi-line ALTER, by its first name's position."""
        ident = clause if isinstance(clause, exp.Identifier) else clause.find(exp.Identifier)
        line = ident.meta.get("line") if ident is not None else None
        if not isinstance(line, int) or line <= 1:
            return statement
        text = self.text.splitlines()[line - 1].strip().rstrip(",") if line <= len(self.text.splitlines()) else ""
        return Source(statement.file, statement.line + line - 1, text or statement.text, statement.migration)

    def alter_action(self, table: str, action: exp.Expression) -> list[Op]:
        if isinstance(action, exp.ColumnDef):
            return [AddColumn(self.src, table, self.column(action), bool(action.args.get("exists")))]
        if isinstance(action, exp.ModifyColumn):
            old = action.args.get("rename_from")
            return [ModifyColumn(self.src, table, self.column(action.this), self.ident(old) if old is not None else None)]
        if isinstance(action, exp.AlterColumn):
            return [self.alter_column(table, action)]
        if isinstance(action, exp.RenameColumn):
            return [RenameColumn(self.src, table, self.ident(action.this), self.ident(action.args["to"]))]
        if isinstance(action, exp.AlterRename):
            return [RenameTable(self.src, table, self.table(action.this))]
        if isinstance(action, exp.RenameIndex):
            return [RenameIndex(self.src, table, self.ident(action.this), self.ident(action.args["to"]))]
        if isinstance(action, exp.Drop):
            return self.alter_drop(table, action)
        if isinstance(action, exp.DropPrimaryKey):
            return [DropIndex(self.src, table, self.primary_name(table))]
        if isinstance(action, exp.AddConstraint):
            indexes: list[IndexSpec] = []
            keys: list[ForeignKeySpec] = []
            checks: list[CheckSpec] = []
            for item in action.expressions:
                self.table_constraint(item, indexes, keys, checks)
            return [*(AddIndex(self.src, table, i) for i in indexes), *(AddForeignKey(self.src, table, k) for k in keys),
                    *(AddCheck(self.src, table, c) for c in checks)]
        clause = _short(action.sql(READ[self.dialect]))
        return [Unparsed(self.src, f"ALTER TABLE clause {type(action).__name__} is not modelled",
                         f"clause(s) not read: {clause}: any change to {table} is allowed",
                         [TableOptions(self.src, table, {"unread": clause})])]

    def alter_drop(self, table: str, action: exp.Drop) -> list[Op]:
        kind = str(action.args.get("kind") or "COLUMN").upper()
        exists = bool(action.args.get("exists"))
        names = [self.ident(t) for t in action.args.get("tables") or []]
        found: list[Op] = []
        for name in names:
            if kind == "COLUMN":
                found.append(DropColumn(self.src, table, name, exists))
            elif kind in ("INDEX", "KEY"):
                found.append(DropIndex(self.src, table, name, exists))
            elif kind == "FOREIGN KEY":
                found.append(DropConstraint(self.src, table, name, "fk", exists))
            elif kind == "CHECK":
                found.append(DropConstraint(self.src, table, name, "check", exists))
            elif kind == "CONSTRAINT":
                found.append(DropConstraint(self.src, table, name, None, exists))
            else:
                found.append(Unparsed(self.src, f"DROP {kind} {name} is not audited"))
        return found

    def alter_column(self, table: str, action: exp.AlterColumn) -> AlterColumn:
        name = self.ident(action.this)
        op = AlterColumn(self.src, table, name, {})
        dtype = action.args.get("dtype")
        if isinstance(dtype, exp.DataType):
            spelled = self.spell_type(dtype, dtype.sql(READ[self.dialect]))
            if spelled:
                op.attrs["type"] = spelled
            else:
                op.notes.append(f"type {dtype.sql(READ[self.dialect])} left out: its catalog spelling is not known")
        if action.args.get("allow_null") is not None:
            op.attrs["nullable"] = bool(action.args["allow_null"])
        elif action.args.get("drop"):
            op.attrs["default"] = None
        default = action.args.get("default")
        if isinstance(default, exp.Expression):
            known, value = types.default_value(default, self.dialect)
            if known:
                op.attrs["default"] = value
            else:
                op.notes.append(f"default {default.sql()} left out: the server's spelling of it cannot be known")
        return op

    def drop(self, tree: exp.Drop) -> list[Op]:
        kind = str(tree.args.get("kind") or "").upper()
        exists = bool(tree.args.get("exists"))
        names = [self.table(t) for t in tree.args.get("tables") or []]
        on = tree.args.get("cluster")
        table = self.table(on.this) if isinstance(on, exp.OnProperty) else None
        if kind == "TABLE":
            return [DropTable(self.src, n, exists, bool(tree.args.get("cascade"))) for n in names]
        if kind == "INDEX":
            return [DropIndex(self.src, table, n, exists) for n in names]
        if kind in OBJECT_WORDS or kind in ("TYPE", "MATERIALIZED VIEW"):
            object_kind = OBJECT_WORDS.get(kind, "view" if "VIEW" in kind else kind.lower())
            return [DropObject(self.src, object_kind, n, table, exists) for n in names]
        return [Unparsed(self.src, f"DROP {kind} is not audited")]

    def insert(self, tree: exp.Insert) -> list[Op]:
        values = tree.expression
        rows = len(values.expressions) if isinstance(values, exp.Values) else None
        verb = "replace" if tree.args.get("alternative") == "REPLACE" else "insert"
        return [Data(self.src, verb, self.table(tree.this), rows=rows)]

    def update(self, tree: exp.Update) -> list[Op]:
        return [Data(self.src, "update", self.table(tree.this), where=tree.args.get("where") is not None)]

    def delete(self, tree: exp.Delete) -> list[Op]:
        targets = tree.args.get("tables") or [tree.this]
        return [Data(self.src, "delete", self.table(t), where=tree.args.get("where") is not None) for t in targets]

    def truncate(self, tree: exp.TruncateTable) -> list[Op]:
        return [Data(self.src, "truncate", self.table(t), where=False) for t in tree.expressions]

    def comment(self, tree: exp.Comment) -> list[Op]:
        kind = str(tree.args.get("kind") or "").upper()
        text = tree.expression.name if isinstance(tree.expression, exp.Literal) else None
        if kind == "COLUMN" and isinstance(tree.this, exp.Column):
            table = self.ident(tree.this.args["table"])
            return [AlterColumn(self.src, table, self.ident(tree.this), {"comment": text or ""})]
        if kind == "TABLE":
            return [TableOptions(self.src, self.table(tree.this), {"options": ["COMMENT"]})]
        if kind in ("TYPE", "DOMAIN"):
            return [Allow(self.src, "type_changed", self.table(tree.this), f"COMMENT ON {kind} changes its definition")]
        return [Unparsed(self.src, f"COMMENT ON {kind} is not audited")]

    def use(self, tree: exp.Use) -> list[Op]:
        return [Note(self.src, f"USE {self.table(tree.this)}: the statements after it run in another database, "
                               "which this audit does not see")]

    # --- columns, indexes, keys ----------------------------------------------------------------

    def column(self, node: exp.ColumnDef) -> ColumnSpec:
        spec = ColumnSpec(self.ident(node.this))
        kind = node.args.get("kind")
        if isinstance(kind, exp.DataType):
            raw = self.raw_type(node)
            spelled = self.spell_type(kind, raw)
            if spelled:
                spec.attrs["type"] = spelled
            else:
                spec.notes.append(f"type {raw or kind.sql()} left out: its catalog spelling is not known")
            spec.serial = self.dialect == "postgresql" and types.is_serial(kind)
        nullable: bool | None = None
        for constraint in node.args.get("constraints") or []:
            nullable = self.column_constraint(spec, constraint.args.get("kind"), nullable)
        self.finish_nullable(spec, kind, nullable)
        return spec

    def column_constraint(self, spec: ColumnSpec, kind: Any, nullable: bool | None) -> bool | None:
        if isinstance(kind, exp.NotNullColumnConstraint):
            return bool(kind.args.get("allow_null"))
        if isinstance(kind, exp.DefaultColumnConstraint):
            known, value = types.default_value(kind.this, self.dialect)
            if known:
                spec.attrs["default"] = value
            else:
                spec.notes.append(f"default {kind.this.sql()} left out: the server's spelling of it cannot be known")
        elif isinstance(kind, exp.PrimaryKeyColumnConstraint):
            spec.primary = True
        elif isinstance(kind, exp.UniqueColumnConstraint):
            spec.unique = True
        elif isinstance(kind, exp.AutoIncrementColumnConstraint):
            if self.dialect == "mysql":
                spec.attrs["extra"] = "auto_increment"
        elif isinstance(kind, exp.OnUpdateColumnConstraint):
            spec.attrs["extra"] = "on update current_timestamp()" if _is_now(kind.this) else None
            if spec.attrs["extra"] is None:
                del spec.attrs["extra"]
                spec.notes.append("ON UPDATE expression left out")
        elif isinstance(kind, exp.CommentColumnConstraint):
            spec.attrs["comment"] = kind.this.name
        elif isinstance(kind, exp.CollateColumnConstraint):
            spec.attrs["collation"] = kind.this.name
        elif isinstance(kind, exp.Reference):
            spec.references = self.reference(None, [spec.name], kind)
        elif isinstance(kind, exp.CheckColumnConstraint):
            spec.check = kind.this.sql(READ[self.dialect])
        elif isinstance(kind, exp.GeneratedAsIdentityColumnConstraint):
            spec.serial = True
            spec.attrs["extra"] = "identity always" if kind.this else "identity by default"
            return False
        elif isinstance(kind, exp.ComputedColumnConstraint):
            spec.notes.append("generated column: its expression is not checked (each server rewrites it)")
        return nullable

    def finish_nullable(self, spec: ColumnSpec, kind: Any, nullable: bool | None) -> None:
        if spec.primary or spec.serial or spec.attrs.get("extra") == "auto_increment":
            spec.attrs["nullable"] = False
        elif nullable is not None:
            spec.attrs["nullable"] = nullable
        elif self.dialect == "mysql" and isinstance(kind, exp.DataType) and types.is_timestamp(kind):
            # explicit_defaults_for_timestamp decides: OFF (MariaDB < 10.10, MySQL 5.7) makes it NOT NULL.
            spec.notes.append("nullability left out: a TIMESTAMP without NULL/NOT NULL depends on "
                              "explicit_defaults_for_timestamp")
        else:
            spec.attrs["nullable"] = True
        if spec.serial and self.dialect == "postgresql" and "default" not in spec.attrs and "extra" not in spec.attrs:
            spec.notes.append("serial: its nextval() default and sequence come from the server")

    def spell_type(self, kind: exp.DataType, raw: str) -> str | None:
        if self.dialect == "mysql":
            return types.mysql_type(kind, raw)
        if self.dialect == "postgresql":
            return types.postgres_type(kind)
        return " ".join(raw.split()) or None  # SQLite records the type as declared

    def raw_type(self, node: exp.ColumnDef) -> str:
        """The type's text as written (SQLite records exactly that), from sqlglot's tokens."""
        end = node.this.meta.get("end") if isinstance(node.this, exp.Identifier) else None
        if end is None:
            kind = node.args.get("kind")
            return kind.sql(READ[self.dialect]) if isinstance(kind, exp.Expression) else ""
        tokens = [t for t in self.tokens() if t.start > end]
        depth, last = 0, None
        for token in tokens:
            word = (token.text.upper().split() or [""])[0]  # sqlglot has tokens of several words: PRIMARY KEY
            if depth == 0 and (token.token_type in (TokenType.COMMA, TokenType.R_PAREN, TokenType.SEMICOLON)
                               or (word in _TYPE_STOP and last is not None)):
                break
            depth += {TokenType.L_PAREN: 1, TokenType.R_PAREN: -1}.get(token.token_type, 0)
            last = token
        if last is None:
            return ""
        return self.text[tokens[0].start : last.end + 1]

    def tokens(self) -> list[Token]:
        if self._tokens is None:
            self._tokens = Dialect.get_or_raise(READ[self.dialect]).tokenize(self.text)
        return self._tokens

    def table_constraint(self, item: exp.Expression, indexes: list[IndexSpec], keys: list[ForeignKeySpec],
                         checks: list[CheckSpec]) -> None:
        name = None
        inner = [item]
        if isinstance(item, exp.Constraint):
            name, inner = self.ident(item.this), item.expressions
        for part in inner:
            if isinstance(part, exp.ForeignKey):
                keys.append(self.reference(name, [self.ident(c) for c in part.expressions], part.args["reference"]))
            elif isinstance(part, exp.PrimaryKey):
                indexes.append(IndexSpec(name if self.dialect == "postgresql" else None,
                                         self.key_columns(part.expressions), unique=True, primary=True))
            elif isinstance(part, exp.UniqueColumnConstraint):
                schema = part.this
                own = self.ident(schema.this) if isinstance(schema, exp.Schema) and schema.this else None
                columns = self.key_columns(schema.expressions) if isinstance(schema, exp.Schema) else None
                indexes.append(self.index_spec(own or name, columns, True))
            elif isinstance(part, exp.IndexColumnConstraint):
                index_kind = str(part.args.get("kind") or "").upper()
                using = index_kind if index_kind in ("FULLTEXT", "SPATIAL") else None
                spec = self.index_spec(part.this if part.this else None, self.key_columns(part.expressions),
                                       index_kind == "UNIQUE", using=using)
                indexes.append(spec)
            elif isinstance(part, (exp.CheckColumnConstraint, exp.Check)):
                checks.append(CheckSpec(name, part.this.sql(READ[self.dialect])))

    def index_spec(self, name: Any, columns: list[str] | None, unique: bool, using: str | None = None) -> IndexSpec:
        spec = IndexSpec(self.ident(name) if name is not None else None, columns, unique)
        if using and (self.dialect != "mysql" or using.upper() in ("FULLTEXT", "SPATIAL")):
            spec.type = using.upper() if self.dialect == "mysql" else using.lower()
        if columns is None:
            spec.notes.append("expression index: its columns are left out (each server spells expressions its way)")
        return spec

    def index_columns(self, index: exp.Index) -> list[str] | None:
        params = index.args.get("params")
        return self.key_columns(params.args.get("columns") or []) if params is not None else None

    def key_columns(self, items: list[exp.Expression]) -> list[str] | None:
        columns = []
        for item in items:
            node = item.this if isinstance(item, exp.Ordered) else item
            if isinstance(node, (exp.Column, exp.Identifier)):
                columns.append(self.ident(node))
            elif isinstance(node, exp.ColumnPrefix):
                columns.append(f"{self.ident(node.this)}({node.expression.name})")
            else:
                return None
        return columns

    def reference(self, name: str | None, columns: list[str], ref: exp.Reference) -> ForeignKeySpec:
        target = ref.this
        ref_columns = [self.ident(c) for c in target.expressions] if isinstance(target, exp.Schema) else None
        spec = ForeignKeySpec(name, columns, self.table(target), ref_columns or None)
        for option in ref.args.get("options") or []:
            m = _RULE.match(str(option))
            if m:
                setattr(spec, f"on_{m.group(1).lower()}", " ".join(m.group(2).upper().split()))
        return spec

    def primary_name(self, table: str) -> str:
        return f"{table}_pkey" if self.dialect == "postgresql" else "PRIMARY"


def _using(params: Any) -> str | None:
    using = params.args.get("using") if isinstance(params, exp.IndexParameters) else None
    return using.name if isinstance(using, exp.Expression) else None


def _is_now(node: Any) -> bool:
    return isinstance(node, exp.CurrentTimestamp) or (isinstance(node, exp.Anonymous) and node.name.lower() == "now")


def _first_line(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text.strip().splitlines()[0] if text.strip() else text)


def _short(text: str, width: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


