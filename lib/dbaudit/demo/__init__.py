"""The built-in demo: an embedded SQLite database shaped like blazz, before and after its Web.js migration.

`run()` is what `make demo` does: build the database, snapshot it, migrate a copy (as planned, and a
faulty way that loses rows and adds a stray column), snapshot again and render both audit reports; then
rehearse the migration and its rollback on a copy of the database as its backup (the rollback as
written, and one that forgets to recreate an index) and render both rehearsal reports.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from dbaudit.backups.rehearse import Rehearsal, rehearse
from dbaudit.demo.sample_data import TABLE_ORDER, sample_rows
from dbaudit.outputs.report import Report, render_audit, render_rehearsal

HERE = Path(__file__).parent
EXPECTATIONS = HERE / "blazz-webjs.yml"  # also linked as expectations/blazz-webjs.yml in the repository
SCHEMA = HERE / "blazz_schema.sqlite.sql"
# The faulty scenario is the planned migration plus three mistakes, so the two cannot drift apart.
MIGRATIONS = {
    "webjs": [HERE / "webjs_migration.sqlite.sql"],
    "faulty": [HERE / "webjs_migration.sqlite.sql", HERE / "faulty_extras.sqlite.sql"],
}
ROLLBACK = HERE / "webjs_rollback.sqlite.sql"
# The faulty rollback is the real one with one line left out, so the two cannot drift apart.
FORGOTTEN_INDEX = "CREATE INDEX chats_wam_id_index ON chats (wam_id);\n"


def build_database(path: Path, migration: str | None = None) -> Path:
    """Create the pre-change blazz database at `path` (replacing it), optionally migrated."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    engine = sa.create_engine(f"sqlite:///{path}", poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("PRAGMA foreign_keys = ON")
            conn.connection.driver_connection.executescript(SCHEMA.read_text(encoding="utf-8"))  # type: ignore[union-attr]
        with engine.begin() as conn:
            rows = sample_rows()
            for name in TABLE_ORDER:
                if rows.get(name):
                    table = sa.table(name, *[sa.column(c) for c in rows[name][0]])
                    conn.execute(sa.insert(table), rows[name])
        if migration:
            with engine.begin() as conn:
                conn.exec_driver_sql("PRAGMA foreign_keys = ON")
                for script in MIGRATIONS[migration]:
                    conn.connection.driver_connection.executescript(script.read_text(encoding="utf-8"))  # type: ignore[union-attr]
    finally:
        engine.dispose()
    return path


def prepare(workdir: Path | None = None, migration: str = "webjs") -> tuple[str, str]:
    """Build the demo before/after databases (after the planned migration, or "faulty"); return their URLs
    (for notebooks run without inputs).

    Without a workdir each call gets a private temporary folder (removed when the process ends), so
    two notebooks running at once never rebuild each other's files."""
    if workdir is None:
        workdir = Path(tempfile.mkdtemp(prefix="dbaudit-demo-"))
        atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    folder = workdir
    before = build_database(folder / "blazz-before.sqlite")
    after = build_database(folder / f"blazz-after-{migration}.sqlite", migration)
    return f"sqlite:///{before}", f"sqlite:///{after}"


def rehearse_demo(workdir: Path | None = None, faulty: bool = False,
                  snapshots_dir: Path | None = None) -> Rehearsal:
    """Rehearse the Web.js migration and its rollback on a copy of the demo database (its "backup"); `faulty`:
    with the rollback that forgets to recreate chats_wam_id_index. Without a workdir, a temporary one."""
    with tempfile.TemporaryDirectory(prefix="dbaudit-demo-") as tmp:
        work = workdir or Path(tmp)
        backup = work / "blazz-backup.sqlite"
        if not backup.is_file():
            build_database(backup)
        rollback = ROLLBACK
        if faulty:
            text = ROLLBACK.read_text(encoding="utf-8")
            assert FORGOTTEN_INDEX in text
            rollback = work / "webjs_rollback_forgets_an_index.sqlite.sql"
            rollback.write_text(text.replace(FORGOTTEN_INDEX, ""), encoding="utf-8")
        return rehearse(backup, f"sqlite:///{work}", expect=EXPECTATIONS, migrate=MIGRATIONS["webjs"],
                        rollback=[rollback], scratch="blazz_rehearsal_faulty" if faulty else "blazz_rehearsal",
                        title=f"blazz Web.js rehearsal{', rollback forgets an index' if faulty else ''}",
                        snapshots_dir=snapshots_dir)


def run(out_dir: Path, progress: bool = False, log: Callable[[str], None] = lambda _: None) -> list[tuple[str, Report]]:
    """The main job: audit the migration done right and done wrong; return both reports."""
    from dbaudit.audit.expectations import load_expectations
    from dbaudit.live.inspect import take_snapshot

    metrics = load_expectations(EXPECTATIONS).metric_queries
    scenarios = [
        ("blazz Web.js migration, as planned", "webjs", "blazz-webjs"),
        ("blazz Web.js migration, done wrong (FAIL intended)", "faulty", "blazz-webjs-faulty"),
    ]
    reports = []
    with tempfile.TemporaryDirectory(prefix="dbaudit-demo-") as tmp:
        work = Path(tmp)
        log("building the blazz demo database (SQLite) and taking the before snapshot")
        before = build_database(work / "blazz-before.sqlite")
        take_snapshot(f"sqlite:///{before}", metrics).save(work / "before.json")
        for label, migration, name in scenarios:
            log(f"{label}: migrating a copy, taking the after snapshot, rendering the report")
            after = build_database(work / f"blazz-{migration}.sqlite", migration)
            take_snapshot(f"sqlite:///{after}", metrics).save(work / f"{migration}.json")
            report = render_audit(work / "before.json", work / f"{migration}.json", EXPECTATIONS, out_dir, name,
                                  progress=progress)
            reports.append((label, report))
        for label, faulty, name in (("blazz Web.js rehearsal: migrate, roll back, prove", False, "blazz-rehearsal"),
                                    ("rehearsal, rollback forgets an index (FAIL intended)", True,
                                     "blazz-rehearsal-faulty")):
            log(f"{label}: restore a copy, migrate, audit, roll back, prove, render the report")
            folder = work / name
            folder.mkdir()
            rehearsal = rehearse_demo(work, faulty, snapshots_dir=folder)
            rehearsal.save(folder / "rehearsal.json")
            reports.append((label, render_rehearsal(folder / "rehearsal.json", out_dir, name, snapshots=folder,
                                                    progress=progress)))
    return reports
