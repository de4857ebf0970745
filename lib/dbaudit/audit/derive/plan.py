"""From the model's end state to entries: what the diff of before and after must show, and may show."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dbaudit.audit.derive.model import _WILD, Entry, Model, Obj, TableState
from dbaudit.audit.derive.ops import Source
from dbaudit.audit.spelling import same_attribute

# Attributes of a new table's objects that the table_added entry demands, by object kind.
_NESTED = {"index": "indexes", "fk": "foreign_keys"}


@dataclass
class RowRule:
    table: str
    policy: str  # any | no_shrink
    why: str
    sources: list[Source] = field(default_factory=list)


@dataclass
class Plan:
    entries: list[Entry]
    rows: list[RowRule]


def plan(model: Model, files: list[str] | None = None) -> Plan:
    entries: list[Entry] = []
    recreated = {t.name for t in model.tables.values() if t.exists and t.recreates is not None}
    for table in model.tables.values():
        entries.extend(_table_entries(model, table))
    for table in model.dropped:
        if table.original not in recreated and table.original not in _still_there(model):
            section = "allowed" if table.maybe_dropped else "required"
            entries.append(Entry(section, "table_removed", table.original or table.name, sources=table.sources[-1:],
                                 notes=list(table.notes)))
    entries.extend(_object_entries(model))
    rows = _row_rules(model)
    entries.extend(_content_entries(model, rows))
    order = {name: i for i, name in enumerate(files or [])}
    entries.sort(key=lambda e: _order(e.sources, order))
    side = [e for e in model.side if not _covered(e, entries)]
    return Plan(_unique(entries) + _unique(side), rows)


def _still_there(model: Model) -> set[str]:
    return {t.name for t in model.tables.values() if t.exists and t.original == t.name}


def _table_entries(model: Model, table: TableState) -> list[Entry]:
    if not table.exists or table.name == "*" and table.original == "*" and not _members_changed(table):
        return []
    if table.original is None:
        if table.recreates is not None:
            return _recreated(model, table)
        return [_table_added(model, table)]
    if table.name != table.original:
        return [Entry("required", "table_removed", table.original, sources=table.sources[-1:]),
                _table_added(model, table, renamed_from=table.original)]
    entries = []
    if table.options_changed:
        stated = {k: v for k, v in table.attrs.items() if k in ("engine", "collation") and v}
        entries.append(Entry("required", "table_changed", table.name, stated if not model.before else {},
                             table.sources[-1:]))
    return entries + _member_entries(model, table)


def _members_changed(table: TableState) -> bool:
    return any(o.exists != o.existed or o.changed for objs in table.objects.values() for o in objs.values())


def _table_added(model: Model, table: TableState, renamed_from: str | None = None) -> Entry:
    attrs: dict[str, Any] = {k: v for k, v in table.attrs.items() if k in ("engine", "collation") and v}
    notes = list(table.notes)
    if renamed_from:
        attrs = {}
        notes.append(f"renamed from {renamed_from}")
    if table.columns_known:
        keep = ("type", "nullable") if renamed_from else None
        attrs["columns"] = {o.name: {k: v for k, v in o.attrs.items() if keep is None or k in keep}
                            for o in table.objects["column"].values() if o.exists}
        for column in table.objects["column"].values():
            notes.extend(f"{column.name}: {note}" for note in column.notes if column.exists)
    for kind, key in _NESTED.items():
        found = [_nested(o) for o in table.objects[kind].values() if o.exists]
        if found and not renamed_from:
            attrs[key] = found
        for obj in table.objects[kind].values():
            notes.extend(f"{obj.name if obj.name != _WILD else 'an unnamed ' + kind}: {n}" for n in obj.notes)
    return Entry("required", "table_added", table.name, attrs, table.sources[:1], notes=notes)


def _nested(obj: Obj) -> dict[str, Any]:
    attrs = dict(obj.attrs)
    if obj.name != _WILD:
        attrs["name"] = obj.name
    return attrs


def _member_entries(model: Model, table: TableState) -> list[Entry]:
    entries = []
    for kind, objects in table.objects.items():
        if f"{kind}_added" not in model.kinds:
            continue
        for obj in objects.values():
            entry = _member_entry(kind, table.name, obj)
            if entry is not None:
                entries.append(entry)
    return entries


def _member_entry(kind: str, table: str, obj: Obj) -> Entry | None:
    target = f"{table}.{obj.name if not obj.name.startswith(_WILD) else _WILD}"
    attrs = {k: v for k, v in obj.attrs.items() if k != "name"}
    if obj.recreated and obj.exists:
        return Entry("allowed", f"{kind}_changed", target, {}, obj.sources[-1:],
                     "dropped and created again under its name: what differs shows as a change, if anything")
    if not obj.existed and obj.exists:
        return Entry("required", f"{kind}_added", target, attrs, obj.sources[:1], notes=list(obj.notes))
    if obj.existed and not obj.exists:
        section = "allowed" if obj.maybe else "required"  # DROP … IF EXISTS of something not known to be there
        return Entry(section, f"{kind}_removed", target, {}, obj.sources[-1:], notes=list(obj.notes))
    if obj.existed and obj.exists and obj.changed:
        section = "allowed" if obj.maybe else "required"
        return Entry(section, f"{kind}_changed", target, attrs, obj.sources[-1:], notes=list(obj.notes))
    return None


def _recreated(model: Model, table: TableState) -> list[Entry]:
    """Dropped and created again under its name (SQLite's way to alter): the diff shows only the differences."""
    old = table.recreates
    assert old is not None
    if not old.columns_known:
        why = (f"{table.name} is dropped (if it is there) and created again: if it was there, the columns, indexes and "
               "keys that differ show as changes (derive with --from-snapshot to require each one)")
        src = table.sources[:1]
        created = _table_added(model, table)
        created.section, created.why = "allowed", f"if {table.name} was not there, it is new: as its CREATE TABLE says"
        return [created, *(Entry("allowed", f"{kind}_{action}", f"{table.name}.*", {}, src, why)
                           for kind in ("column", "index", "fk") for action in ("added", "removed", "changed"))]
    # A rebuilt table's SQL is written anew: its options (STRICT) and full definition may differ.
    entries = [Entry("allowed", "table_changed", table.name, {}, table.sources[:1],
                     "created again: its options and full definition are its new CREATE TABLE's")]
    kinds = ("column", "index", "fk", "check") if old.checks_known else ("column", "index", "fk")
    for kind in kinds:
        before = {n: o for n, o in old.objects[kind].items() if o.existed}
        after = {n: o for n, o in table.objects[kind].items() if o.exists}
        if kind == "fk" and model.dialect == "sqlite":  # named from what they connect, as the snapshot names them
            after = {_sqlite_key_name(o) if n.startswith(_WILD) else n: o for n, o in after.items()}
        for name, obj in after.items():
            if kind == "check" and name.startswith(_WILD) and before:
                # SQLite names an unnamed check after its column: it may be one that was there, changed
                entries.append(Entry("allowed", "check_changed", f"{table.name}.*", {}, obj.sources[:1],
                                     "an unnamed check may be one that was there before"))
            same = [n for n, o in before.items() if kind == "index" and o.attrs.get("columns") == obj.attrs.get("columns")
                    and bool(o.attrs.get("unique")) == bool(obj.attrs.get("unique"))]
            if name.startswith(_WILD) and same:  # the server names it again as it did (sqlite_autoindex_t_1)
                entries.append(Entry("allowed", f"{kind}_changed", f"{table.name}.{same[0]}", {}, obj.sources[:1],
                                     "created again with the table"))
                continue
            if name.startswith(_WILD) or name not in before:
                entries.append(Entry("required", f"{kind}_added", f"{table.name}.{_plain(name)}",
                                     {k: v for k, v in obj.attrs.items() if k != "name"}, obj.sources[:1]))
            elif kind != "column":
                entries.append(Entry("allowed", f"{kind}_changed", f"{table.name}.{name}", {}, obj.sources[:1],
                                     "created again with the table: what it holds may be spelled anew"))
            elif kind == "column" and not all(same_attribute(k, before[name].attrs.get(k), v) for k, v in obj.attrs.items()):
                entries.append(Entry("required", "column_changed", f"{table.name}.{name}", dict(obj.attrs), obj.sources[:1]))
        for name in before:
            if name not in after:
                covered = kind != "column" and any(n.startswith(_WILD) for n in after)
                why = "its unnamed replacement may be named differently" if covered else ""
                entries.append(Entry("allowed" if covered else "required", f"{kind}_removed", f"{table.name}.{name}",
                                     {}, table.sources[:1], why))
    return entries


def _sqlite_key_name(obj: Obj) -> str:
    return f"fk({','.join(obj.attrs.get('columns') or [])})->{obj.attrs.get('ref_table')}"


def _plain(name: str) -> str:
    return _WILD if name.startswith(_WILD) else name


def _object_entries(model: Model) -> list[Entry]:
    entries = []
    for (kind, key), obj in model.objects.items():
        if not obj.existed and obj.exists:
            if obj.maybe:
                entries.append(Entry("allowed", f"{kind}_added", key, dict(obj.attrs), obj.sources[:1], notes=obj.notes))
                entries.append(Entry("allowed", f"{kind}_changed", key, {}, obj.sources[:1]))
            else:
                entries.append(Entry("required", f"{kind}_added", key, dict(obj.attrs), obj.sources[:1], notes=obj.notes))
        elif obj.existed and not obj.exists:
            section = "allowed" if obj.maybe else "required"
            entries.append(Entry(section, f"{kind}_removed", key, {}, obj.sources[-1:]))
        elif obj.existed and obj.changed:
            # CREATE OR REPLACE of an existing object: a definition that comes out the same shows no change.
            why = ("dropped and created again" if obj.recreated else "CREATE OR REPLACE of an existing one") + \
                " (no change if the definition is the same)"
            entries.append(Entry("allowed", f"{kind}_changed", key, {}, obj.sources[-1:], why))
    return entries


def _row_rules(model: Model) -> list[RowRule]:
    rules: dict[str, RowRule] = {}
    for table in model.tables.values():
        if not table.data or not table.exists or table.original != table.name or table.recreates is not None:
            continue
        verbs = {d.verb for d in table.data}
        sources = [d.src for d in table.data]
        if verbs & {"delete", "truncate"}:
            rules[table.name] = RowRule(table.name, "any", "rows are deleted here: it may shrink", sources)
            for child, key in _cascading_children(model, table.name):
                rules.setdefault(child, RowRule(child, "any", f"rows cascade from deleting {table.name} ({key})",
                                                sources))
        else:
            what = " and ".join(sorted(v + "s" for v in verbs))
            rules[table.name] = RowRule(table.name, "no_shrink", f"the migration only {what} rows: it must not shrink",
                                        sources)
    return list(rules.values())


def _cascading_children(model: Model, parent: str) -> list[tuple[str, str]]:
    found = []
    for table in model.tables.values():
        for key in table.objects["fk"].values():
            on_delete = str(key.attrs.get("on_delete")).upper()
            cascades = key.exists and key.attrs.get("ref_table") == parent and on_delete == "CASCADE"
            if cascades and table.exists and table.original == table.name:
                found.append((table.name, f"ON DELETE CASCADE of {key.name}"))
    return found


def _content_entries(model: Model, rows: list[RowRule]) -> list[Entry]:
    """A table whose rows or columns change has new content: allowed when snapshots carry fingerprints."""
    anyway = {r.table for r in rows if r.policy == "any"}
    entries = []
    for table in model.tables.values():
        if not table.exists or table.original != table.name or table.name in anyway or table.recreates is not None:
            continue
        if table.data or table.column_changes:
            why = ("its rows are written" if table.data else "its columns change, so every row's text does") + \
                  ": a fingerprinted content change is expected"
            src = [d.src for d in table.data][:1] or table.sources[-1:]
            entries.append(Entry("allowed", "content_changed", table.name, {}, src, why))
    return entries


def _covered(side: Entry, entries: list[Entry]) -> bool:
    """A side effect the plan already requires (or allows) by name need not be listed again."""
    return any(e.kind == side.kind and e.target == side.target and not side.attrs for e in entries)


def _unique(entries: list[Entry]) -> list[Entry]:
    seen: set[str] = set()
    kept = []
    for entry in entries:
        key = f"{entry.section}|{entry.kind}|{entry.target}|{sorted(entry.attrs.items(), key=str)}"
        if key not in seen:
            seen.add(key)
            kept.append(entry)
    return kept


def _order(sources: list[Source], files: dict[str, int]) -> tuple[int, int]:
    """Statement order: the files as given, then their lines."""
    return (files.get(sources[0].file, len(files)), sources[0].line) if sources else (len(files) + 1, 0)
