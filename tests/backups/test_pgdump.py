"""dump-check on pg_dump output: copies of world and sakila in PostgreSQL, dumped in every format, then cut and
damaged; and psql scripts that hide commands, checked against what psql itself does with them."""

from __future__ import annotations

import gzip
import random
import shutil
import subprocess
from pathlib import Path

import pytest
from formats_samples import KNOWN_ROWS, Sample, mariadb_samples, pg_args, pg_dump, samples  # noqa: F401

from conftest import POSTGRES_URL, ROOT
from dbaudit.backups import pgdump
from dbaudit.backups.checks import check_dump, write_manifest
from dbaudit.backups.formats import format_of
from dbaudit.backups.pgdump import scan_script
from dbaudit.live.inspect import take_snapshot

FORMATS = ["plain", "plain.gz", "plain.zst", "custom", "directory", "tar"]


@pytest.mark.parametrize("form", FORMATS)
@pytest.mark.parametrize("name", ["world", "sakila", "employees"])
def test_every_pg_dump_format_counts_every_row_and_matches_its_source(samples: dict[str, Sample], name: str,  # noqa: F811
                                                                     form: str) -> None:
    sample = samples[name]
    source = take_snapshot(f"{POSTGRES_URL}/{sample.postgres}")

    check = check_dump(sample.dumps[form], against=source)

    dump = check.dump
    assert check.verdict == "pass", [c.message for c in check.failed_checks]
    assert {n: t.rows for n, t in dump.tables.items()} == sample.rows
    assert {n: sample.rows[n] for n in KNOWN_ROWS[name]} == KNOWN_ROWS[name]
    assert dump.format == ("pg_dump plain" if form.startswith("plain") else f"pg_dump {form}")
    assert set(dump.views) == {"dbaudit_v", "dbaudit_mv"} and dump.views["dbaudit_mv"].kind == "materialized view"
    assert set(dump.routines) == {"dbaudit_touch()", "dbaudit_add(a integer, b integer)"}
    assert list(dump.triggers) == [f"{ {'world': 'city', 'sakila': 'film'}.get(name, 'employee')}.dbaudit_trg"]
    assert {"dbaudit_ticket_seq", "dbaudit_tricky_id_seq"} <= set(dump.sequences)
    assert dump.header.tool.startswith("pg_dump 15") and dump.complete


@pytest.mark.parametrize("options", [("--inserts",), ("--rows-per-insert=100",), ("--column-inserts",)])
def test_a_dump_of_insert_statements_counts_their_tuples(samples: dict[str, Sample], tmp_path: Path,  # noqa: F811
                                                         options: tuple[str, ...]) -> None:
    sample = samples["world"]
    dump = pg_dump(sample.postgres, tmp_path / "inserts.sql", *options)

    check = check_dump(dump)

    assert check.verdict == "pass", [c.message for c in check.failed_checks]
    assert {n: t.rows for n, t in check.dump.tables.items()} == sample.rows


def test_a_plain_dump_cut_at_random_offsets_always_fails_as_truncated(samples: dict[str, Sample],  # noqa: F811
                                                                      tmp_path: Path) -> None:
    rng = random.Random(7)
    for name in ("world", "sakila"):
        data = samples[name].dumps["plain"].read_bytes()
        footer = data.rindex(b"-- PostgreSQL database dump complete")
        offsets = [rng.randrange(1, len(data)) for _ in range(10)] + [footer, footer + 10, len(data) - 2]
        for offset in offsets:
            cut = tmp_path / "cut.sql"
            cut.write_bytes(data[:offset])
            check = check_dump(cut)
            assert check.verdict == "fail" and not check.dump.complete, (name, offset)
            [complete] = [c for c in check.checks if c.name == "complete"]
            assert complete.status == "fail" and complete.message.startswith("truncated: "), complete.message


def test_a_cut_copy_block_names_its_table_and_the_rows_read(samples: dict[str, Sample], tmp_path: Path) -> None:  # noqa: F811
    data = samples["sakila"].dumps["plain"].read_bytes()
    start = data.index(b"COPY public.payment ")
    cut = tmp_path / "cut.sql"
    cut.write_bytes(data[: start + 200_000])

    check = check_dump(cut)

    assert check.dump.truncation.startswith("ends inside the data of COPY public.payment")
    assert check.dump.last_table == "payment" and 0 < check.dump.tables["payment"].rows < 16049


@pytest.mark.parametrize("form", ["custom", "tar"])
def test_a_cut_archive_lists_fine_but_fails_on_its_data(samples: dict[str, Sample], form: str,  # noqa: F811
                                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pgdump, "STALL_SECONDS", 5.0)  # pg_restore 15 spins on some cut tar files; give up sooner
    data = samples["sakila"].dumps[form].read_bytes()
    for size in (len(data) // 2, len(data) - 10, len(data) - 1):
        cut = tmp_path / f"cut.{form}"
        cut.write_bytes(data[:size])

        check = check_dump(cut)

        assert check.verdict == "fail" and not check.dump.complete, size
        reasons = ("pg_restore cannot read the archive whole", "the tar archive is cut")
        assert check.dump.truncation.startswith(reasons), check.dump.truncation


def test_a_custom_archive_cut_inside_its_toc_fails_with_the_reason(samples: dict[str, Sample], tmp_path: Path) -> None:  # noqa: F811
    cut = tmp_path / "toc.dump"
    cut.write_bytes(samples["world"].dumps["custom"].read_bytes()[:300])

    check = check_dump(cut)

    assert check.verdict == "fail"
    assert check.dump.truncation.startswith("pg_restore --list fails: "), check.dump.truncation


def test_a_corrupted_custom_archive_fails(samples: dict[str, Sample], tmp_path: Path) -> None:  # noqa: F811
    data = bytearray(samples["sakila"].dumps["custom"].read_bytes())
    for at in range(len(data) // 2, len(data) // 2 + 64):
        data[at] ^= 0x5A
    damaged = tmp_path / "damaged.dump"
    damaged.write_bytes(bytes(data))

    check = check_dump(damaged)

    assert check.verdict == "fail" and "pg_restore cannot read the archive whole" in check.dump.truncation


def _copy_directory(samples: dict[str, Sample], tmp_path: Path) -> tuple[Path, list[Path]]:  # noqa: F811
    folder = shutil.copytree(samples["sakila"].dumps["directory"], tmp_path / "sakila.dir")
    data = sorted(folder.glob("*.dat.gz"), key=lambda p: p.stat().st_size)
    return folder, data


def test_a_directory_archive_with_a_cut_or_missing_data_file_fails(samples: dict[str, Sample], tmp_path: Path) -> None:  # noqa: F811
    folder, data = _copy_directory(samples, tmp_path)
    assert check_dump(folder).passed
    biggest = data[-1]
    biggest.write_bytes(biggest.read_bytes()[: biggest.stat().st_size // 2])
    assert "pg_restore cannot read the archive whole" in check_dump(folder).dump.truncation

    biggest.unlink()
    check = check_dump(folder)
    assert check.verdict == "fail" and "pg_restore" in check.dump.truncation


def test_a_directory_archive_without_its_toc_fails_instead_of_reading_as_another_format(
    samples: dict[str, Sample], tmp_path: Path  # noqa: F811
) -> None:
    folder, _ = _copy_directory(samples, tmp_path)
    (folder / "toc.dat").unlink()

    assert format_of(folder) == "pg_dump directory"
    check = check_dump(folder)
    assert check.verdict == "fail" and "pg_restore --list fails" in check.dump.truncation


def test_a_corrupted_gzip_plain_dump_fails_its_stream_check(samples: dict[str, Sample], tmp_path: Path) -> None:  # noqa: F811
    data = bytearray(samples["sakila"].dumps["plain.gz"].read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged = tmp_path / "damaged.sql.gz"
    damaged.write_bytes(bytes(data))

    check = check_dump(damaged)

    assert check.verdict == "fail" and "gzip stream" in check.dump.truncation


def test_a_changed_row_fails_the_manifest_and_a_deleted_one_its_row_count(samples: dict[str, Sample],  # noqa: F811
                                                                          tmp_path: Path) -> None:
    dump = tmp_path / "world.sql"
    shutil.copyfile(samples["world"].dumps["plain"], dump)
    write_manifest(check_dump(dump))
    text = dump.read_bytes()
    line = text[text.index(b"COPY public.city ") :].split(b"\n")[1]
    dump.write_bytes(text.replace(line + b"\n", b"", 1))

    messages = {c.message for c in check_dump(dump).failed_checks}

    assert "city: 4,079 rows in the manifest, 4,078 in the dump (-1)" in messages
    assert any(m.startswith("the file changed since its manifest was written") for m in messages)


def test_a_row_broken_in_two_fails_the_column_count(samples: dict[str, Sample], tmp_path: Path) -> None:  # noqa: F811
    dump = tmp_path / "world.sql"
    text = samples["world"].dumps["plain"].read_bytes()
    line = text[text.index(b"COPY public.city ") :].split(b"\n")[5]
    dump.write_bytes(text.replace(line, line.replace(b"\t", b"\n", 1), 1))

    check = check_dump(dump)

    [broken] = [c for c in check.failed_checks if c.name == "copy rows"]
    assert broken.message.startswith("COPY data with broken rows: city: 4,080 rows")


def test_pg_dump_create_connects_to_its_database_and_fails_as_acting_on_another(
    samples: dict[str, Sample], tmp_path: Path  # noqa: F811
) -> None:
    dump = pg_dump(samples["world"].postgres, tmp_path / "created.sql", "-C")

    check = check_dump(dump)

    [safety] = [c for c in check.checks if c.name == "restore safety"]
    assert safety.status == "fail" and samples["world"].postgres in safety.message
    assert "\\connect" in safety.message and "CREATE DATABASE" in safety.message


# --- psql scripts: what the scanner sees against what psql does ------------------------------------------

HEADER = "SET standard_conforming_strings = on;\nCREATE TABLE t (a text);\n"


def _scan(script: bytes, chunk: int) -> tuple[list[str], list[str], dict[str, int], str | None]:
    def chunks() -> object:
        for i in range(0, len(script), chunk):
            yield script[i : i + chunk]

    collector, problem, _ = scan_script(chunks())  # type: ignore[arg-type]
    return collector.client_commands, collector.refused, {k[1]: t.rows for k, t in collector.tables.items()}, problem


# Each runs `\! touch CANARY` in psql when `runs` is true, and hides it in a string, body or comment otherwise.
PSQL_CASES = [
    ("plain", "\\! touch CANARY\n", True),
    ("mid-statement", "SELECT 1 \\! touch CANARY\n;\n", True),
    ("after a standard string ending in a backslash", "SELECT 'a\\'; \\! touch CANARY\n';\n", True),
    ("in an escape string", "SELECT E'a\\'; \\! touch CANARY\n';\n", False),
    # psql lexes line by line: a string is not continued on the next line, as the server would continue it …
    ("after a string continued on the next line", "SELECT E'a'\n'\\'; \\! touch CANARY\n';\n", True),
    # … but across a carriage return inside the line it is, in the escape mode it started in.
    ("in a string continued after a carriage return", "SELECT E'a'\r'\\'; \\! touch CANARY\n';\n", False),
    ("in a dollar body", "SELECT $x$ \\! touch CANARY\n$x$;\n", False),
    ("after a dollar body whose tag differs", "SELECT $x$ $y$ $x$ \\! touch CANARY\n;\n", True),
    ("in a nested comment", "SELECT 1 /* /* */ \\! touch CANARY\n*/;\n", False),
    ("after a line comment ended by CR", "SELECT 1 -- c\r\\! touch CANARY\n;\n", True),
    ("in a quoted identifier", 'SELECT 1 AS "\\! touch CANARY\n";\n', False),
    ("in COPY data", "COPY t (a) FROM stdin;\n\\! touch CANARY\n\\.\n", False),
    ("after COPY data", "COPY t (a) FROM stdin;\nx\n\\.\n\\! touch CANARY\n", True),
    ("after a data line that only starts like the end marker", "COPY t (a) FROM stdin;\n\\.x\n\\! touch CANARY\n\\.\n", False),
    ("in a BEGIN ATOMIC body", "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END;\n"
                               "SELECT 'x' \\! touch CANARY\n;\n", True),
    ("with standard strings off", "SET standard_conforming_strings = off;\nSELECT 'a\\'; \\! touch CANARY\n';\n", False),
]


def test_cli_dump_check_of_an_archive_exits_0_and_1_when_cut(samples: dict[str, Sample], tmp_path: Path) -> None:  # noqa: F811
    archive = samples["world"].dumps["custom"]
    cut = tmp_path / "cut.dump"
    cut.write_bytes(archive.read_bytes()[:-1])

    ok = _dbaudit("dump-check", str(archive), "--json", str(tmp_path / "ok.json"))
    bad = _dbaudit("dump-check", str(cut))

    assert (ok.returncode, bad.returncode) == (0, 1), ok.stdout + ok.stderr
    assert "pg_dump 15" in ok.stdout and "FAIL [integrity] complete: truncated: pg_restore" in bad.stdout


def _dbaudit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ROOT / ".venv" / "bin" / "dbaudit"), *args], capture_output=True, text=True)


@pytest.mark.parametrize(("case", "body", "runs"), PSQL_CASES, ids=[c[0] for c in PSQL_CASES])
def test_the_scanner_finds_a_meta_command_exactly_where_psql_runs_it(
    case: str, body: str, runs: bool, make_postgres, tmp_path: Path
) -> None:
    canary = tmp_path / "canary"
    script = (HEADER + body.replace("CANARY", str(canary))).encode()
    database = make_postgres().url.rsplit("/", 1)[1]
    psql = shutil.which("psql")
    assert psql is not None
    subprocess.run([psql, "-X", "-q", *pg_args(database)], input=script, capture_output=True, timeout=30)

    for chunk in (1, 2, 3, 5, 64, len(script)):
        commands, _, _, _ = _scan(script, chunk)
        assert any("touch" in c for c in commands) == runs, (case, chunk, commands)
    assert canary.exists() == runs, case


@pytest.mark.parametrize("statement, refused", [
    ("\\copy t from program 'id'", "\\copy t from program 'id'"), ("\\o |cat", "\\o |cat"), ("\\set x `id`", "\\set x `id`"),
    ("\\i /etc/passwd", "\\i /etc/passwd"), ("\\setenv PAGER x", "\\setenv PAGER x"), ("\\lo_import /etc/passwd", "\\lo_import"),
    ("SELECT 1 \\g |cat", "\\g |cat"), ("SELECT 1 \\w /tmp/x", "\\w /tmp/x"), ("SELECT :'USER';", "psql variable :'USER'"),
    ("SELECT 1 \\; SELECT 2;", "\\;"),
])
def test_meta_commands_and_interpolated_variables_are_refused_by_name(statement: str, refused: str) -> None:
    commands, _, _, _ = _scan((HEADER + statement + "\n").encode(), 4096)

    assert any(c.startswith(refused) for c in commands), commands


@pytest.mark.parametrize("statement, kind", [
    ("COPY t FROM PROGRAM 'id';", "COPY … PROGRAM"), ("COPY t TO '/tmp/x';", "COPY … TO"),
    ("COPY t FROM '/etc/passwd';", "COPY … FROM a file"), ("ALTER SYSTEM SET work_mem = '1GB';", "ALTER SYSTEM"),
    ("CREATE ROLE evil SUPERUSER;", "CREATE ROLE"), ("ALTER USER postgres PASSWORD 'x';", "ALTER USER"),
    ("DROP ROLE x;", "DROP ROLE"), ("GRANT pg_read_server_files TO evil;", "GRANT role membership"),
    ("DO $$BEGIN PERFORM 1; END$$;", "DO"), ("CREATE EXTENSION adminpack;", "CREATE EXTENSION adminpack"),
    ("LOAD 'auto_explain';", "LOAD"), ("SET session_authorization = 'postgres';", "SET SESSION_AUTHORIZATION"),
    ("SET ROLE postgres;", "SET ROLE"),
    ("CREATE FUNCTION f() RETURNS int AS '/tmp/x.so' LANGUAGE c;", "CREATE FUNCTION … LANGUAGE c"),
    ("SELECT pg_read_file('/etc/passwd');", "pg_read_file()"), ("SELECT now();", "SELECT (runs functions"),
    ("INSERT INTO t VALUES (pg_catalog.pg_read_file('/etc/passwd'));", "pg_read_file()"),
    ("SELECT set_config('standard_conforming_strings', 'off', false);", "set_config()"),
    ("SET client_encoding = 'SJIS';", "SET client_encoding 'SJIS'"), ("CREATE SUBSCRIPTION s CONNECTION '' PUBLICATION p;",
                                                                    "CREATE SUBSCRIPTION"),
    ("UPDATE t SET a = 'x';", "UPDATE T (pg_dump writes none)"), ("CALL p();", "CALL"),
    ("COPY missing (a) FROM stdin;\n\\.", "COPY into missing, a table the dump does not create"),
])
def test_statements_reaching_beyond_the_database_are_refused_by_kind(statement: str, kind: str) -> None:
    _, refused, _, _ = _scan((HEADER + statement + "\n").encode(), 4096)

    assert any(r.startswith(kind) for r in refused), refused


@pytest.mark.parametrize("script", [
    "SELECT pg_catalog.set_config('search_path', '', false);", "GRANT SELECT ON TABLE public.t TO reader;",
    "REVOKE ALL ON SCHEMA public FROM PUBLIC;", "CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;",
    "SELECT pg_catalog.setval('public.s', 5, true);", "ALTER TABLE public.t OWNER TO app;",
    "COPY t (a) FROM stdin;\n\\\\! not a command\n\\\\.\n\\.",
])
def test_what_pg_dump_writes_passes(script: str) -> None:
    commands, refused, _, problem = _scan((HEADER + script + "\n").encode(), 7)

    assert commands == [] and refused == [] and problem is None


def test_unsure_lexing_is_refused_never_guessed() -> None:
    for script in ["SELECT 1$$ x $$;", "SELECT U&'d\\0061t\\+000061';", "SELECT 12e'x';"]:
        _, refused, _, _ = _scan((HEADER + script + "\n").encode(), 4096)
        assert any(r.startswith("psql lexing dbaudit cannot follow exactly") for r in refused), script


def test_a_psql_script_without_pg_dumps_footer_is_incomplete(tmp_path: Path) -> None:
    dump = tmp_path / "script.sql.gz"
    dump.write_bytes(gzip.compress(b"--\n-- PostgreSQL database dump\n--\n" + HEADER.encode()))

    check = check_dump(dump)

    assert check.verdict == "fail" and "footer pg_dump writes last is missing" in check.dump.truncation
