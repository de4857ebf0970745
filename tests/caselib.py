"""The schema-change case matrix (issue #10), in the migra fixture style.

Each case is a folder tests/cases/<server>/<case>/ with `base.sql` (the schema before), `change.sql` (one
change) and `expected.yml`: `changes:` lists exactly the changes the diff must report, each as
`<kind>: <target>` with optional `fields: [...]` for a *_changed one; `changes: []` is a clean case, which
must report nothing. `mode: restore` replaces change.sql by a dump of the base restored under another
name (mysqldump | mariadb, pg_dump | psql, sqlite3's iterdump).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from dbaudit.audit.derive import derive
from dbaudit.audit.diff import CHANGE_KINDS, Change, diff_snapshots
from dbaudit.audit.result import audit
from dbaudit.core import serde
from dbaudit.core.snapshot import Snapshot

HERE = Path(__file__).parent / "cases"
SCHEMA = json.loads((HERE.parents[1] / "lib" / "dbaudit" / "schemas" / "snapshot.schema.json").read_text())


@dataclass
class Case:
    server: str
    name: str
    path: Path
    expected: list[tuple[str, str, tuple[str, ...]]]
    mode: str  # change | restore

    @property
    def base(self) -> str:
        return (self.path / "base.sql").read_text()

    @property
    def change(self) -> str:
        change = self.path / "change.sql"
        return change.read_text() if change.exists() else ""


def cases(server: str) -> list[Case]:
    found = []
    for folder in sorted((HERE / server).iterdir()):
        if folder.is_dir():
            spec = yaml.safe_load((folder / "expected.yml").read_text()) or {}
            found.append(Case(server, folder.name, folder, [_entry(e, folder) for e in spec.get("changes") or []],
                              spec.get("mode", "change")))
    return found


def _entry(entry: dict[str, Any], folder: Path) -> tuple[str, str, tuple[str, ...]]:
    (kind,) = [k for k in entry if k != "fields"]
    assert kind in CHANGE_KINDS, f"{folder}/expected.yml: {kind} is not a change kind"
    return kind, str(entry[kind]), tuple(sorted(entry.get("fields") or ()))


def reported(before: Snapshot, after: Snapshot) -> list[tuple[str, str, tuple[str, ...]]]:
    """The schema changes, as the expected.yml spells them (row counts are data, not asked here)."""
    # Through JSON and back: what is compared is what a saved snapshot holds, in the published format.
    for snapshot in (before, after):
        jsonschema.validate(json.loads(serde.dumps(snapshot)), SCHEMA)
    before, after = (serde.from_dict(Snapshot, serde.to_jsonable(s)) for s in (before, after))
    return sorted(_key(c) for c in diff_snapshots(before, after) if c.kind != "row_count_changed")


def _key(change: Change) -> tuple[str, str, tuple[str, ...]]:
    fields = tuple(sorted(change.fields)) if change.kind.endswith("_changed") else ()
    return change.kind, change.target, fields


def ids(found: list[Case]) -> list[str]:
    return [c.name for c in found]


def derived_failures(case: Case, before: Snapshot, after: Snapshot, tmp: Path) -> list[str]:
    """The change judged by the expectations `dbaudit expect` derives from it (with the before snapshot):
    what derive models and what the diff sees must agree, so a migration audits clean."""
    if case.mode != "change":
        return []
    migration = tmp / f"{case.name}.sql"
    migration.write_text(case.change)
    dialect = {"mariadb": "mysql"}.get(case.server, case.server)
    result = audit(before, after, derive([migration], dialect, before).expectations)
    return [f"[{c.category}] {c.name}: {c.message}" for c in result.failed_checks]
