"""The snapshot format's own rules: every field of a table says what it is, so nothing new slips through."""

from __future__ import annotations

import dataclasses
import typing

from dbaudit.audit.expectations import _ATTRIBUTES
from dbaudit.core.snapshot import MEASUREMENT, OBJECTS, ROLE, SCHEMA, Table, fields_with_role, role_of


def test_every_collection_on_a_table_is_declared_objects_derived_or_measurement() -> None:
    # A list or mapping left as a plain schema field would be compared whole, as one raw `table_changed`.
    hints = typing.get_type_hints(Table)
    for f in dataclasses.fields(Table):
        origin = typing.get_origin(hints[f.name])
        if origin in (list, dict):
            assert role_of(f) != SCHEMA, f"Table.{f.name} is a collection; declare it objects(…) or measurement(…)"


def test_objects_name_the_change_kind_they_are_diffed_as() -> None:
    kinds = {f.name: f.metadata.get("kind") for f in dataclasses.fields(Table) if f.metadata.get(ROLE) == OBJECTS}
    assert kinds == {"columns": "column", "indexes": "index", "foreign_keys": "fk", "checks": "check",
                     "partitions": "partition", "policies": "policy"}


def test_measurements_are_neither_schema_changes_nor_expectation_attributes() -> None:
    measured = set(fields_with_role(Table, MEASUREMENT))
    assert {"row_count", "fingerprint", "chunks", "baseline"} <= measured
    assert not measured & _ATTRIBUTES["table"]
    # A new table may be described whole (its columns, indexes and keys): docs/expect.md.
    assert _ATTRIBUTES["table"] == set(fields_with_role(Table, SCHEMA)) | set(fields_with_role(Table, OBJECTS))
