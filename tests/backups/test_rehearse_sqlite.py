"""rehearse on SQLite (a file copy as the restore: the embedded demo's case), its inputs, and its document's schema."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jsonschema
import pytest

from conftest import ROOT
from dbaudit.backups.rehearse import Rehearsal, Stage, rehearse
from dbaudit.backups.rehearse_steps import Step
from dbaudit.cli import main
from dbaudit.core import serde
from dbaudit.core.errors import DbauditError
from dbaudit.demo import EXPECTATIONS, HERE, build_database

MIGRATION = HERE / "webjs_migration.sqlite.sql"
ROLLBACK = HERE / "webjs_rollback.sqlite.sql"
SCHEMA = json.loads((ROOT / "lib" / "dbaudit" / "schemas" / "rehearsal.schema.json").read_text())


@pytest.fixture(scope="module")
def backup(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_database(tmp_path_factory.mktemp("backup") / "blazz.sqlite")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Where the scratch file goes: it must be gone afterwards."""
    yield tmp_path
    assert not list(tmp_path.glob("*.sqlite*")), "a scratch file was left"


def _run(backup: Path, folder: Path, **options: object) -> Rehearsal:
    options = {"expect": EXPECTATIONS, "migrate": [MIGRATION], "rollback": [ROLLBACK], **options}
    return rehearse(backup, f"sqlite:///{folder}", **options)  # type: ignore[arg-type]


def test_the_demo_migration_and_its_rollback_pass_and_the_backup_is_never_touched(backup: Path, folder: Path) -> None:
    before = backup.read_bytes()

    result = _run(backup, folder)

    assert result.verdict == "pass", [c.message for c in result.failed_checks]
    assert result.product == "SQLite" and result.database == "blazz"
    assert backup.read_bytes() == before
    document = json.loads(serde.dumps(result))
    jsonschema.validate(document, SCHEMA)
    document["stages"][6]["status"] = "maybe"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, SCHEMA)


def test_a_rollback_that_forgets_to_recreate_an_index_fails_naming_it(backup: Path, folder: Path) -> None:
    rollback = folder / "rollback.txt"
    rollback.write_text(ROLLBACK.read_text().replace("CREATE INDEX chats_wam_id_index ON chats (wam_id);\n", ""))

    result = _run(backup, folder, rollback=[rollback], expect=None)  # expectations derived from the migration

    assert result.verdict == "fail" and result.stage("audit").status == "pass"
    assert [c.message for c in result.stage("proof").checks if c.status == "fail"] == \
        ["index chats.chats_wam_id_index removed"]
    assert result.derived_expectations is not None


def test_a_failing_statement_fails_the_stage_at_its_line_and_later_stages_are_skipped(backup: Path,
                                                                                       folder: Path) -> None:
    migration = folder / "m.sql"
    migration.write_text("CREATE TABLE t (id integer);\n\n-- oops\nALTER TABLE missing ADD COLUMN x int;\n")

    result = _run(backup, folder, migrate=[migration])

    assert result.stage("migrate").message == f"{migration}:4: no such table: missing"
    assert result.stage("migrate").steps[0].statements == 1
    assert [s.status for s in result.stages] == ["pass"] * 3 + ["fail"] + ["skipped"] * 3
    jsonschema.validate(json.loads(serde.dumps(result)), SCHEMA)


def test_a_migration_that_does_not_fit_the_backup_fails_before_anything_runs(backup: Path, folder: Path) -> None:
    migration = folder / "m.sql"
    migration.write_text("ALTER TABLE chats DROP COLUMN provider_type;\n")  # not in the backup: nothing to drop

    result = _run(backup, folder, migrate=[migration], expect=None)

    snapshot = result.stage("snapshot")
    assert snapshot.status == "fail" and "does not fit the restored backup" in snapshot.message
    assert "provider_type" in snapshot.message
    assert [s.status for s in result.stages][3:] == ["skipped"] * 4


def test_a_hanging_statement_is_interrupted_at_the_time_limit(backup: Path, folder: Path) -> None:
    migration = folder / "slow.sql"
    migration.write_text("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT max(i) FROM n;\n")

    result = _run(backup, folder, migrate=[migration], stage_timeout=1)

    (step,) = result.stage("migrate").steps
    assert step.timed_out and step.seconds < 10


@pytest.mark.parametrize(("options", "error"), [
    ({"migrate": [], "migrate_cmd": None}, "give the migrate step"),
    ({"migrate_cmd": "true"}, "give the migrate step"),
    ({"expect": None, "migrate": [], "migrate_cmd": "true"}, "--expect is needed with --migrate-cmd"),
    ({"rollback": ["/nonexistent.sql"]}, "SQL file not found"),
    ({"stage_timeout": 0}, "positive number of seconds"),
    ({"scratch": "no-dashes"}, "letters, digits and _"),
])
def test_bad_input_is_one_error_before_anything_is_created(options: dict[str, object], error: str, backup: Path,
                                                           folder: Path) -> None:
    with pytest.raises(DbauditError, match=error):
        _run(backup, folder, **options)


def test_a_postgresql_server_refuses_a_dump_that_is_not_a_pg_dump_before_anything_is_read(
        backup: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dump = tmp_path / "dump.sql"
    dump.write_text("CREATE TABLE t (id int);\n")
    code = main(["rehearse", str(dump), "--server", "postgresql+psycopg://postgres:secret@127.0.0.1/x",
                 "--migrate", str(MIGRATION), "--rollback", str(ROLLBACK)])
    err = capsys.readouterr().err
    assert code == 2 and "is not a pg_dump" in err and "secret" not in err
    code = main(["rehearse", str(dump), "--server", "mssql+pyodbc://sa:secret@127.0.0.1/x",
                 "--migrate", str(MIGRATION), "--rollback", str(ROLLBACK)])
    err = capsys.readouterr().err
    assert code == 2 and "MySQL/MariaDB dumps, pg_dumps and SQLite files" in err and "secret" not in err


def test_a_scratch_file_that_exists_is_refused_and_left_untouched(backup: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    taken = tmp_path / "mine.sqlite"
    taken.write_bytes(b"not mine to replace")

    code = main(["rehearse", str(backup), "--server", f"sqlite:///{tmp_path}", "--scratch", "mine", "--migrate",
                 str(MIGRATION), "--rollback", str(ROLLBACK)])

    assert code == 2 and "already exists" in capsys.readouterr().err
    assert taken.read_bytes() == b"not mine to replace"


@pytest.mark.parametrize("cls", [Rehearsal, Stage, Step])
def test_the_schema_names_every_field_of_the_document_and_requires_it(cls: type) -> None:
    # Generated from the dataclasses (outputs/schemagen.py on the reports branch); this holds until it is merged.
    node = SCHEMA if cls is Rehearsal else SCHEMA["$defs"][cls.__name__]
    fields = {f.name for f in dataclasses.fields(cls)}
    assert set(node["properties"]) == fields and set(node["required"]) == fields


def test_a_password_on_the_command_line_of_a_step_is_never_in_the_document(backup: Path, folder: Path) -> None:
    command = "sh -c 'echo migrated' -pS3cretPw --password S3cretPw2 DB_PASSWORD=S3cretPw3"

    logged: list[str] = []

    result = _run(backup, folder, migrate=[], migrate_cmd=command, rollback=[], rollback_cmd=command, log=logged.append)

    steps = [s for stage in result.stages for s in stage.steps]
    assert [s.status for s in steps] == ["pass", "pass"] and "migrated" in steps[0].output
    assert "S3cret" not in serde.dumps(result) and logged and "S3cret" not in "\n".join(logged)
    assert result.migrate == [steps[0].source] and "-p***" in steps[0].source
