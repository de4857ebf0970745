"""dump-check on mydumper directories of world and sakila (Debian's mydumper 0.10): plain, gzip, zstd and
chunked; killed, cut and damaged; newer INI metadata with row counts and replication commands."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest
from formats_samples import EMPLOYEES_ROWS, SAKILA_ROWS, WORLD_ROWS, mariadb_samples, mydumper  # noqa: F401

from conftest import MARIADB_URL, ROOT
from dbaudit.backups.checks import check_dump, write_manifest
from dbaudit.backups.formats import format_of
from dbaudit.live.inspect import take_snapshot

EXPECTED = {"world": WORLD_ROWS, "sakila": SAKILA_ROWS}


@pytest.fixture(scope="module")
def dumps(mariadb_samples: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:  # noqa: F811
    """mydumper output of each sample: plain, -c (gzip) and recompressed as zstd."""
    folder = tmp_path_factory.mktemp("mydumper")
    made = {}
    for name, database in mariadb_samples.items():
        made[f"{name}/plain"] = mydumper(database, folder / f"{name}-plain")
        made[f"{name}/gzip"] = mydumper(database, folder / f"{name}-gzip", "-c")
        made[f"{name}/zstd"] = _as_zstd(made[f"{name}/plain"], folder / f"{name}-zstd")
    return made


@pytest.fixture(scope="module")
def chunked(employees: tuple[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The employees sample in gzip chunks of about a megabyte (-F 1): salary spans several files."""
    return mydumper(employees[0], tmp_path_factory.mktemp("chunks") / "employees", "-F", "1", "-c")


def _as_zstd(source: Path, target: Path) -> Path:
    """mydumper 0.10 writes gzip only; newer ones write .sql.zst, the same files zstd-compressed."""
    shutil.copytree(source, target)
    for path in target.glob("*.sql"):
        subprocess.run(["zstd", "-q", "--rm", str(path)], check=True)
    return target


def _copy(dumps: dict[str, Path], key: str, tmp_path: Path) -> Path:
    return shutil.copytree(dumps[key], tmp_path / key.replace("/", "-"))


@pytest.mark.parametrize("form", ["plain", "gzip", "zstd"])
@pytest.mark.parametrize("name", ["world", "sakila"])
def test_a_mydumper_directory_counts_every_row_and_matches_its_source(
    dumps: dict[str, Path], mariadb_samples: dict[str, str], name: str, form: str  # noqa: F811
) -> None:
    source = take_snapshot(f"{MARIADB_URL}/{mariadb_samples[name]}")

    check = check_dump(dumps[f"{name}/{form}"], against=source)

    assert check.verdict == "pass", [c.message for c in check.failed_checks]
    assert check.dump.format == "mydumper" and format_of(dumps[f"{name}/{form}"]) == "mydumper"
    assert {n: check.dump.tables[n].rows for n in EXPECTED[name]} == EXPECTED[name]
    assert check.dump.complete and check.dump.header.completed_at
    if name == "sakila":
        assert len(check.dump.views) == 7 and len(check.dump.routines) == 6 and len(check.dump.triggers) == 6


def test_a_chunked_dump_adds_up_the_rows_of_every_chunk(chunked: Path, employees: tuple[str, Path]) -> None:
    source = take_snapshot(f"{MARIADB_URL}/{employees[0]}")

    check = check_dump(chunked, against=source)

    assert check.verdict == "pass", [c.message for c in check.failed_checks]
    assert {n: t.rows for n, t in check.dump.tables.items() if n in EMPLOYEES_ROWS} == EMPLOYEES_ROWS
    assert len(list(chunked.glob("*.salary.0000*.sql.gz"))) >= 2


def test_cli_dump_check_of_a_directory_writes_its_manifest_beside_it_and_renders_a_report(
    dumps: dict[str, Path], tmp_path: Path
) -> None:
    folder = _copy(dumps, "world/gzip", tmp_path)

    run = subprocess.run([str(ROOT / ".venv" / "bin" / "dbaudit"), "dump-check", f"{folder}/", "--write-manifest",
                          "--report", "--out-dir", str(tmp_path / "reports")], capture_output=True, text=True)

    assert run.returncode == 0, run.stdout + run.stderr
    assert (tmp_path / f"{folder.name}.manifest.json").is_file() and "report: " in run.stdout
    assert check_dump(folder).manifest == str(tmp_path / f"{folder.name}.manifest.json")


def test_a_killed_dump_with_only_metadata_partial_fails(dumps: dict[str, Path], tmp_path: Path) -> None:
    folder = _copy(dumps, "world/plain", tmp_path)
    (folder / "metadata").rename(folder / "metadata.partial")

    check = check_dump(folder)

    assert check.verdict == "fail"
    assert check.dump.truncation == "only metadata.partial: mydumper had not finished (killed, or still running)"


def test_a_data_file_cut_mid_row_fails_and_names_the_file(dumps: dict[str, Path], tmp_path: Path) -> None:
    folder = _copy(dumps, "sakila/plain", tmp_path)
    [data] = folder.glob("*.payment.sql")
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])

    check = check_dump(folder)

    assert check.verdict == "fail" and check.dump.truncation.startswith(f"{data.name}: ")
    assert check.dump.last_table == "payment"


@pytest.mark.parametrize("form, suffix", [("gzip", ".sql.gz"), ("zstd", ".sql.zst")])
def test_a_cut_compressed_chunk_fails(dumps: dict[str, Path], tmp_path: Path, form: str, suffix: str) -> None:
    folder = _copy(dumps, f"sakila/{form}", tmp_path)
    [data] = folder.glob(f"*.rental{suffix}")
    data.write_bytes(data.read_bytes()[: data.stat().st_size - 100])

    check = check_dump(folder)

    assert check.verdict == "fail" and "stream ends early" in check.dump.truncation, check.dump.truncation


def test_a_corrupted_gzip_chunk_fails(chunked: Path, tmp_path: Path) -> None:
    folder = shutil.copytree(chunked, tmp_path / "employees")
    data = sorted(folder.glob("*.salary.0000*.sql.gz"))[1]
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    data.write_bytes(bytes(raw))

    check = check_dump(folder)

    assert check.verdict == "fail" and "gzip stream is corrupt" in check.dump.truncation, check.dump.truncation


def test_a_deleted_chunk_shows_against_the_manifest(chunked: Path, tmp_path: Path) -> None:
    folder = shutil.copytree(chunked, tmp_path / "employees")
    write_manifest(check_dump(folder))
    sorted(folder.glob("*.salary.0000*.sql.gz"))[-1].unlink()

    messages = [c.message for c in check_dump(folder).failed_checks]

    assert any(m.startswith("salary: 94,917 rows in the manifest, ") for m in messages), messages
    assert any(m.startswith("the file changed since its manifest was written") for m in messages)


def test_a_data_file_loading_another_table_than_its_name_fails(dumps: dict[str, Path], tmp_path: Path) -> None:
    folder = _copy(dumps, "world/plain", tmp_path)
    [city] = folder.glob("*.city.sql")
    city.write_bytes(city.read_bytes().replace(b"INSERT INTO `city`", b"INSERT INTO `country`"))

    check = check_dump(folder)

    assert any(c.message == f"{city.name} loads country, not city" for c in check.failed_checks)


def test_a_client_command_in_any_file_fails_restore_safety(dumps: dict[str, Path], tmp_path: Path) -> None:
    folder = _copy(dumps, "world/gzip", tmp_path)
    [schema] = folder.glob("*.country-schema.sql.gz")
    schema.write_bytes(gzip.compress(gzip.decompress(schema.read_bytes()) + b"\n\\! touch /tmp/pwned\n"))

    check = check_dump(folder)

    [safety] = [c for c in check.checks if c.name == "restore safety"]
    assert safety.status == "fail" and f"{schema.name}: \\! touch /tmp/pwned" in safety.message


def _ini_metadata(database: str, rows: dict[str, int], extra: str = "") -> str:
    """The metadata mydumper 0.15+ writes: an INI file with one group per table carrying its rows."""
    groups = "".join(f"\n[`{database}`.`{table}`]\nreal_table_name={table}\nrows = {n}\n" for table, n in rows.items())
    return (f"# Started dump at: 2026-12-01 10:00:00\n[config]\nquote_character = BACKTICK\n\n[source]\n"
            f"File = mysql-bin.000003\nPosition = 1234\n{extra}{groups}\n# Finished dump at: 2026-12-01 10:00:05\n")


def test_newer_ini_metadata_row_counts_are_compared_with_the_rows_counted(
    dumps: dict[str, Path], mariadb_samples: dict[str, str], tmp_path: Path  # noqa: F811
) -> None:
    folder = _copy(dumps, "world/zstd", tmp_path)
    (folder / "metadata").write_text(_ini_metadata(mariadb_samples["world"], WORLD_ROWS))
    good = check_dump(folder)
    assert good.passed, [c.message for c in good.failed_checks]
    assert any(c.category == "metadata" and c.status == "pass" for c in good.checks)

    (folder / "metadata").write_text(_ini_metadata(mariadb_samples["world"], {**WORLD_ROWS, "city": 4080}))
    messages = [c.message for c in check_dump(folder).failed_checks]
    assert f"{mariadb_samples['world']}.city: 4,080 rows in mydumper's metadata, 4,079 in the data files (-1)" in messages


def test_metadata_asking_myloader_for_replication_commands_fails_restore_safety(
    dumps: dict[str, Path], mariadb_samples: dict[str, str], tmp_path: Path  # noqa: F811
) -> None:
    folder = _copy(dumps, "world/plain", tmp_path)
    extra = "myloader_exec_reset_replica = 0\nmyloader_exec_change_source = 1\nmyloader_exec_start_replica = 1\n"
    (folder / "metadata").write_text(_ini_metadata(mariadb_samples["world"], WORLD_ROWS, extra))

    check = check_dump(folder)

    [safety] = [c for c in check.checks if c.name == "restore safety"]
    assert safety.status == "fail"
    assert "makes myloader run replication commands (myloader_exec_change_source, myloader_exec_start_replica)" in \
        safety.message


def test_a_mydumper_metadata_without_its_finish_line_is_incomplete(dumps: dict[str, Path], tmp_path: Path) -> None:
    folder = _copy(dumps, "world/plain", tmp_path)
    metadata = folder / "metadata"
    metadata.write_text("".join(line for line in metadata.read_text().splitlines(True) if "Finished" not in line))

    check = check_dump(folder)

    assert check.dump.truncation == "metadata has no 'Finished dump at' line: mydumper had not finished"
