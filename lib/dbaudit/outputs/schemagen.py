"""JSON Schemas generated from the document dataclasses, so a schema cannot drift from what is written.

`python -m dbaudit.outputs.schemagen` rewrites lib/dbaudit/schemas/<kind>.schema.json for every kind in
GENERATED; tests/outputs/test_schemas.py fails when a committed schema differs from the generated one,
and validates real documents of each kind against it. The rules follow core/serde.py: every field is
written (defaults too), so every field is required; `X | None` admits null; no other properties.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"

# kind file name -> (module, dataclass, kind constant, title)
GENERATED: dict[str, tuple[str, str, str, str]] = {
    "compare": ("dbaudit.live.compare", "CompareResult", "dbaudit.compare", "dbaudit compare result"),
    "dump-check": ("dbaudit.backups.checks", "DumpCheck", "dbaudit.dump-check", "dbaudit dump-check result"),
    "restore-check": ("dbaudit.backups.restore", "RestoreCheck", "dbaudit.restore-check",
                      "dbaudit restore-check result"),
    "rehearsal": ("dbaudit.backups.rehearse", "Rehearsal", "dbaudit.rehearsal", "dbaudit rehearsal result"),
    "rollback": ("dbaudit.live.rollback", "RollbackResult", "dbaudit.rollback", "dbaudit rollback-trigger result"),
}


def _schema(tp: Any, defs: dict[str, Any]) -> dict[str, Any]:
    origin = typing.get_origin(tp)
    if tp is Any or tp is object:
        return {}
    if tp is type(None):
        return {"type": "null"}
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [_schema(a, defs) for a in typing.get_args(tp)]}
    if origin is typing.Literal:
        return {"enum": list(typing.get_args(tp))}
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": _schema(args[0], defs)}
        return {"type": "array", "prefixItems": [_schema(a, defs) for a in args], "minItems": len(args),
                "maxItems": len(args)}
    if origin is list:
        args = typing.get_args(tp)
        return {"type": "array", "items": _schema(args[0], defs) if args else {}}
    if origin is dict:
        args = typing.get_args(tp)
        return {"type": "object", "additionalProperties": _schema(args[1], defs) if args else {}}
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        name = tp.__name__
        if name not in defs:
            defs[name] = {}  # a placeholder first: dataclasses may nest themselves
            hints = typing.get_type_hints(tp)
            fields = dataclasses.fields(tp)
            defs[name] = {"type": "object", "required": [f.name for f in fields], "additionalProperties": False,
                          "properties": {f.name: _schema(hints[f.name], defs) for f in fields}}
            doc = (tp.__doc__ or "").strip().splitlines()
            if doc and not doc[0].startswith(f"{name}("):
                defs[name]["description"] = doc[0]
        return {"$ref": f"#/$defs/{name}"}
    simple = {str: "string", bool: "boolean", int: "integer", float: "number"}
    if tp in simple:
        return {"type": simple[tp]}
    raise TypeError(f"no JSON Schema for {tp!r}")


def generate(name: str) -> dict[str, Any]:
    module, cls_name, kind, title = GENERATED[name]
    cls = getattr(importlib.import_module(module), cls_name)
    defs: dict[str, Any] = {}
    _schema(cls, defs)
    top = defs.pop(cls.__name__)
    top["properties"]["kind"] = {"const": kind}
    version = getattr(importlib.import_module(module), "FORMAT_VERSION", None)
    if isinstance(version, int):
        top["properties"]["format_version"] = {"const": version}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://dbaudit.local/schemas/{name}.schema.json",
            "title": f"{title} (generated from {module}.{cls_name} by dbaudit.outputs.schemagen)",
            **top, "$defs": dict(sorted(defs.items()))}


def text(name: str) -> str:
    return json.dumps(generate(name), indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def main() -> int:
    for name in GENERATED:
        (SCHEMAS / f"{name}.schema.json").write_text(text(name), encoding="utf-8")
        print(f"wrote {SCHEMAS / f'{name}.schema.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
