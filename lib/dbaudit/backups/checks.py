"""dump-check: a dump judged against its checksum, its completeness, its manifest and its source.

`check_dump` reads the dump (backups.dumpfile) and turns what it holds into a versioned `DumpCheck`
result; `write_manifest` records a passing dump in a sidecar manifest every later check compares with.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dbaudit.backups.dumpfile import DumpContents
from dbaudit.backups.formats import read_backup
from dbaudit.backups.statements import DumpTable
from dbaudit.core import serde
from dbaudit.core.checks import Check, Judged
from dbaudit.core.errors import DbauditError
from dbaudit.core.snapshot import Snapshot, load_snapshot

FORMAT_VERSION = 1
KIND = "dbaudit.dump-check"
MANIFEST_KIND = "dbaudit.dump-manifest"
MANIFEST_SUFFIX = ".manifest.json"


@dataclass
class DumpManifest:
    """The sidecar a dump is checked against later: what it was when it was known to be good."""

    format_version: int
    kind: str
    file: str  # the dump's name, next to which the manifest lives
    size: int
    sha256: str
    md5: str
    written_at: str
    tables: dict[str, int]  # rows per table
    views: list[str] = field(default_factory=list)
    triggers: list[str] = field(default_factory=list)
    routines: list[str] = field(default_factory=list)


@dataclass
class DumpCheck(Judged):
    format_version: int
    kind: str
    verdict: str  # pass / fail
    title: str
    generated_at: str
    dump: DumpContents
    checks: list[Check]
    manifest: str | None  # the manifest compared against (or written)
    against: str | None  # the snapshot compared against
    summary: dict[str, Any]


# --- checking --------------------------------------------------------------------------------------


def manifest_path(dump: str | os.PathLike[str]) -> Path:
    return Path(f"{Path(dump)}{MANIFEST_SUFFIX}")  # Path drops a trailing /: a directory's manifest sits beside it


def check_dump(
    path: str | os.PathLike[str],
    *,
    md5: str | None = None,
    sha256: str | None = None,
    against: str | os.PathLike[str] | Snapshot | None = None,
    use_manifest: bool = True,
    title: str | None = None,
    progress: bool = False,
    compute_md5: bool = False,
) -> DumpCheck:
    """Read the dump and judge it: checksum, completeness, its manifest, and a snapshot of its source.

    The file's MD5 is computed when `md5` is expected or `compute_md5` is set (a manifest records it); SHA-256
    always."""
    expected = _expected_digests(md5, sha256)
    snapshot = load_snapshot(against) if isinstance(against, (str, os.PathLike)) else against
    manifest_file = manifest_path(path)
    manifest = load_manifest(manifest_file) if use_manifest and manifest_file.is_file() else None
    contents, format_checks = read_backup(path, progress, md5=compute_md5 or "md5" in expected)  # by content
    checks = [*_integrity_checks(contents, expected), *_content_checks(contents), *format_checks]
    if manifest is not None:
        checks += compare_with_manifest(contents, manifest)
    if snapshot is not None:
        checks += compare_with_snapshot(contents, snapshot)
    return _result(contents, checks, title or Path(path).name,
                   str(manifest_file) if manifest else None, _source_name(against))


def _source_name(against: str | os.PathLike[str] | Snapshot | None) -> str | None:
    if against is None:
        return None
    return f"snapshot of {against.database}" if isinstance(against, Snapshot) else os.fspath(against)


def _expected_digests(md5: str | None, sha256: str | None) -> dict[str, str]:
    expected = {}
    for name, value, length in (("md5", md5, 32), ("sha256", sha256, 64)):
        if value is None:
            continue
        digest = value.strip().split()[0].lower() if value.strip() else ""
        if not re.fullmatch(rf"[0-9a-f]{{{length}}}", digest):
            raise DbauditError(f"--{name} needs {length} hex digits, got {value!r}")
        expected[name] = digest
    return expected


def _integrity_checks(c: DumpContents, expected: dict[str, str]) -> list[Check]:
    checks = []
    for name, want in expected.items():
        got = getattr(c.file, name)
        if got == want:
            checks.append(Check("integrity", f"{name} checksum", "pass", f"{name} {got} as expected"))
        else:
            checks.append(Check("integrity", f"{name} checksum", "fail", f"{name} is {got}, expected {want}"))
    if c.complete:
        trailer = _completion(c)
        checks.append(Check("integrity", "complete", "pass", trailer))
    else:
        reached = f" (last table reached: {c.last_table})" if c.last_table else ""
        checks.append(Check("integrity", "complete", "fail", f"truncated: {c.truncation}{reached}"))
    return checks


def _completion(c: DumpContents) -> str:
    """What proves the dump whole, in the words of the tool that wrote it."""
    if c.format == "mydumper":
        return f"mydumper's metadata: Finished dump at {c.header.completed_at}"
    if c.format.startswith("pg_dump"):
        created = f" (archive created at {c.header.completed_at})" if c.header.completed_at else ""
        return f"footer: -- PostgreSQL database dump complete{created}; every COPY block ends with \\."
    if c.header.completed_at:
        return f"trailer: Dump completed on {c.header.completed_at}"
    return "no mysqldump trailer expected: every statement is terminated"


def _content_checks(c: DumpContents) -> list[Check]:
    if not c.tables:
        checks = [Check("content", "tables", "fail", "the dump creates or loads no table")]
    else:
        checks = [Check("content", "tables", "pass",
                        f"{len(c.tables)} tables, {c.total_rows:,} rows in "
                        f"{'COPY data' if c.format.startswith('pg_dump') else 'INSERT statements'}")]
    return [*checks, safety_check(c)]


def safety_check(c: DumpContents) -> Check:
    """A backup holds tables and their objects; anything that runs on the client host or changes the server
    (accounts, privileges, plugins, replication) means the dump cannot be trusted, or restored to test it."""
    if c.refusals:
        return Check("content", "restore safety", "fail", f"not a plain backup, holds {'; '.join(c.refusals)}")
    if c.foreign_statements:
        shown = "; ".join(dict.fromkeys(s.split(": ", 1)[1][:80] for s in c.foreign_statements[:5]))
        more = f" (+{len(c.foreign_statements) - 5} more)" if len(c.foreign_statements) > 5 else ""
        return Check("content", "restore safety", "fail",
                     f"acts on other database(s) {', '.join(c.foreign_databases)} besides its own "
                     f"({c.own_database or 'none named'}): {shown}{more}")
    message = "no client commands and no account, privilege or server statements"
    if c.drops_own_database:
        message += (f"; warning: drops and recreates database {c.own_database} when loaded with mysql "
                    "(restore-check cuts those statements)")
    return Check("content", "restore safety", "pass", message)


def compare_with_manifest(c: DumpContents, m: DumpManifest) -> list[Check]:
    """The manifest records the dump as it was when known good: any difference means it changed since."""
    checks = []
    if (c.file.size, c.file.sha256) != (m.size, m.sha256):
        checks.append(Check("manifest", "file", "fail", f"the file changed since its manifest was written "
                            f"({m.size:,} → {c.file.size:,} bytes, sha256 {m.sha256[:12]} → {c.file.sha256[:12]})"))
    else:
        checks.append(Check("manifest", "file", "pass", f"size and sha256 as recorded on {m.written_at}"))
    counts = {name: t.rows for name, t in c.tables.items()}
    checks += count_checks("manifest", m.tables, counts, "the manifest")
    return checks


def compare_with_snapshot(c: DumpContents, snap: Snapshot) -> list[Check]:
    """Tables, row counts and objects of the dump against a snapshot of the database it was taken from."""
    tables = _tables_of(c, snap.database, snap.schema)
    want = {name: t.row_count for name, t in snap.tables.items() if t.row_count is not None}
    counts = {name: t.rows for name, t in tables.items()}
    checks = count_checks("snapshot", want, counts, "the snapshot")
    checks += [names_check("snapshot", kind, set(getattr(snap, kind)), set(getattr(c, kind)))
               for kind in ("views", "triggers", "routines")]
    return checks


def _tables_of(c: DumpContents, database: str, schema: str | None = None) -> dict[str, DumpTable]:
    if len({t.database for t in c.tables.values()}) <= 1:
        return c.tables
    wanted = schema or database  # a PostgreSQL dump's tables are qualified by their schema
    found = {t.name: t for t in c.tables.values() if t.database == wanted}
    if not found:
        raise DbauditError(f"the dump holds databases {c.databases} but not {database!r}, the snapshot's")
    return found


def count_checks(category: str, want: dict[str, int], got: dict[str, int], what: str,
                 place: str = "the dump") -> list[Check]:
    """Tables and row counts found in `place` against what `what` (manifest, snapshot) says."""
    checks = [Check(category, f"table {name}", "fail", f"table {name} is in {what} but not in {place}")
              for name in sorted(set(want) - set(got))]
    checks += [Check(category, f"table {name}", "fail", f"table {name} is in {place} but not in {what}")
               for name in sorted(set(got) - set(want))]
    differ = [(n, want[n], got[n]) for n in sorted(set(want) & set(got)) if want[n] != got[n]]
    checks += [Check(category, f"rows {n}", "fail", f"{n}: {w:,} rows in {what}, {g:,} in {place} ({g - w:+,})")
               for n, w, g in differ]
    if not checks:
        checks.append(Check(category, "tables and rows", "pass",
                            f"all {len(want)} tables in {place} with the same row counts as {what}"))
    return checks


def names_check(category: str, kind: str, want: set[str], got: set[str], what: str = "the snapshot",
                place: str = "the dump") -> Check:
    """Views, triggers or routines found in `place` against those `what` has."""
    missing, extra = sorted(want - got), sorted(got - want)
    if not missing and not extra:
        return Check(category, kind, "pass", f"{len(want)} {kind} in {place} as in {what}")
    parts = ([f"missing from {place}: {', '.join(missing)}"] if missing else []) + (
        [f"not in {what}: {', '.join(extra)}"] if extra else [])
    return Check(category, kind, "fail", f"{kind}: {'; '.join(parts)}")


def _result(c: DumpContents, checks: list[Check], title: str, manifest: str | None,
            against: str | None) -> DumpCheck:
    failed = sum(1 for x in checks if x.status == "fail")
    seconds = max(c.duration_seconds, 1e-6)
    return DumpCheck(
        format_version=FORMAT_VERSION, kind=KIND, verdict="fail" if failed else "pass", title=title,
        generated_at=_now(), dump=c, checks=checks, manifest=manifest, against=against,
        summary={"checks": len(checks), "checks_failed": failed, "tables": len(c.tables), "rows": c.total_rows,
                 "views": len(c.views), "triggers": len(c.triggers), "routines": len(c.routines),
                 "mb_per_second": round(c.file.sql_bytes / 1e6 / seconds, 1)},
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# --- the manifest ----------------------------------------------------------------------------------


def manifest_of(c: DumpContents) -> DumpManifest:
    return DumpManifest(
        format_version=FORMAT_VERSION, kind=MANIFEST_KIND, file=Path(c.file.path).name, size=c.file.size,
        sha256=c.file.sha256, md5=c.file.md5, written_at=_now(),
        tables={name: t.rows for name, t in c.tables.items()},
        views=sorted(c.views), triggers=sorted(c.triggers), routines=sorted(c.routines),
    )


def write_manifest(check: DumpCheck) -> Path:
    """Record a dump that passed every check; a failing dump (or one that no longer matches) gets none."""
    if not check.passed:
        raise DbauditError(f"not writing a manifest for {check.dump.file.path}: "
                           f"{check.failed_checks[0].message}")
    target = manifest_path(check.dump.file.path)
    serde.write_atomic(target, serde.dumps(manifest_of(check.dump)))
    return target


def load_manifest(path: str | os.PathLike[str]) -> DumpManifest:
    return serde.load_document(DumpManifest, path, MANIFEST_KIND, FORMAT_VERSION, "dump manifest")


def load_dump_check(path: str | os.PathLike[str]) -> DumpCheck:
    return serde.load_document(DumpCheck, path, KIND, FORMAT_VERSION, "dump-check result")


