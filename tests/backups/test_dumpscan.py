"""The statement stream restore-check executes: DumpScan yields every statement exactly as the server must receive it."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest
import sqlalchemy as sa
from test_dumpfile import TRICKY, WORLD_ROWS, sakila_script

from conftest import MARIADB_URL, dump_database, load_sql, scratch_mariadb_database
from dbaudit.backups.checks import check_dump
from dbaudit.backups.dumpfile import DumpScan, ScannedStatement, read_dump
from dbaudit.backups.sqlscan import SqlScanner, Statement
from dbaudit.backups.statements import NOT_RESTORED
from dbaudit.core.errors import DbauditError


def _delimiters(sql: bytes, statements: list[ScannedStatement]) -> list[bytes]:
    """What follows each statement's text up to its end: the client delimiter and nothing else."""
    found = []
    for st in statements:
        assert st.text is not None
        assert sql[st.start : st.start + len(st.text)] == st.text, st.head
        found.append(sql[st.start + len(st.text) : st.end])
    return found


def test_every_statement_of_a_real_dump_comes_with_its_exact_bytes_and_nothing_but_its_delimiter_after(
    shared_data: Path
) -> None:
    path = shared_data / "world" / "world.sql"
    scan = DumpScan(path, keep_text=True)

    statements = list(scan)

    assert set(_delimiters(path.read_bytes(), statements)) == {b";"}
    assert len(statements) == scan.contents().statements
    assert sum(st.rows for st in statements if st.kind == "insert") == sum(WORLD_ROWS.values())
    assert [st.kind for st in statements if st.kind in NOT_RESTORED] == ["drop_database", "create_database", "use"]


def test_routines_in_delimiter_blocks_come_without_the_delimiter_lines_and_without_text_unless_asked(
    tmp_path: Path
) -> None:
    dump = tmp_path / "tricky.sql"
    dump.write_bytes(TRICKY)

    statements = list(DumpScan(dump, keep_text=True))
    plain = list(DumpScan(dump))

    assert _delimiters(TRICKY, statements) == [b";", b";", b";", b";", b";;"]
    assert statements[-1].kind == "trigger" and statements[-1].text.startswith(b"/*!50003 CREATE*/")
    assert statements[-1].text.endswith(b"END */") and statements[-1].definer
    assert not any(b"DELIMITER" in st.text for st in statements)
    assert [st.text for st in plain] == [None] * 5
    assert [(st.kind, st.start, st.end) for st in plain] == [(st.kind, st.start, st.end) for st in statements]


def _texts(data: bytes, chunk: int, limit: int = 1 << 30) -> list[tuple[bytes | None, bool]]:
    found: list[Statement] = []
    scanner = SqlScanner(found.append, keep_text=True, max_statement=limit)
    for i in range(0, len(data), chunk):
        scanner.feed(data[i : i + chunk])
    scanner.finish()
    return [(s.text, s.too_long) for s in found]


def test_statement_texts_are_the_same_at_any_chunk_size() -> None:
    whole = _texts(TRICKY, len(TRICKY))

    for chunk in (1, 2, 3, 5, 7, 64):
        assert _texts(TRICKY, chunk) == whole, chunk


def test_a_statement_longer_than_the_limit_is_refused_without_text_at_any_chunk_size(tmp_path: Path) -> None:
    sql = b"CREATE TABLE t (id int);\nINSERT INTO t VALUES " + b",".join(b"(%d)" % i for i in range(200)) + b";\n"
    for chunk in (1, 7, 64, len(sql)):
        assert _texts(sql, chunk, limit=100) == [(b"CREATE TABLE t (id int)", False), (None, True)], chunk
    dump = tmp_path / "long.sql"
    dump.write_bytes(sql)

    scan = DumpScan(dump, keep_text=True, max_statement=100)
    statements = list(scan)

    assert statements[1].text is None and statements[1].refusal == (
        "a statement longer than 100 bytes (at byte 25): no server takes it")
    assert scan.refusals == [statements[1].refusal]
    assert scan.contents().ambiguities == [statements[1].refusal]
    assert check_dump(dump).verdict == "pass"  # the default limit is the server's: 1 GiB


def test_refusals_name_the_statement_and_the_client_command_and_are_known_when_the_statement_is_yielded(
    tmp_path: Path
) -> None:
    dump = tmp_path / "evil.sql"
    dump.write_text("-- Host: x    Database: shop\nCREATE TABLE t (id int);\nGRANT ALL ON *.* TO 'evil'@'%';\n"
                    "\\! touch /tmp/x\nDROP TABLE other.t;\nINSERT INTO t VALUES (1);\n")
    everything = ["GRANT statement", "client command \\! touch /tmp/x at byte 86", "names database other"]
    for chunk in (1, 7, 1 << 20):
        scan = DumpScan(dump, chunk=chunk)

        seen = [(st.kind, st.refusal, list(scan.refusals)) for st in scan]

        assert [(kind, refusal) for kind, refusal, _ in seen] == [
            ("table", None), ("refused", "GRANT statement"), ("drop_table", "names database other"), ("insert", None)]
        # When a statement is yielded, every refusal up to and including it is known (later ones may be too).
        assert [known[: len(want)] for (_, _, known), want in zip(seen, [[], everything[:1], everything, everything])
                ] == [[], everything[:1], everything, everything]
        assert scan.refusals == everything


def test_a_scan_reads_once_and_has_contents_only_after_the_whole_dump(tmp_path: Path) -> None:
    dump = tmp_path / "d.sql"
    dump.write_text("CREATE TABLE t (id int);\nINSERT INTO t VALUES (1),(2);\n")
    scan = DumpScan(dump)
    with pytest.raises(DbauditError, match="before the scan"):
        scan.contents()

    assert [st.rows for st in scan] == [0, 2]
    assert scan.contents().tables == read_dump(dump).tables and scan.contents().tables["t"].rows == 2
    with pytest.raises(DbauditError, match="once"):
        list(scan)


def test_a_gzip_dump_yields_the_same_statements_as_the_plain_one(shared_data: Path, tmp_path: Path) -> None:
    plain = shared_data / "world" / "world.sql"
    packed = tmp_path / "world.sql.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))

    def key(path: Path) -> list[tuple[str, int, int, bytes | None]]:
        return [(st.kind, st.start, st.end, st.text) for st in DumpScan(path, keep_text=True)]

    assert key(packed) == key(plain)


@pytest.fixture
def sakila_dump(mariadb_server: sa.Engine, mariadb_client: str, tmp_path: Path) -> Iterator[Path]:
    from conftest import SHARED_DATA

    with scratch_mariadb_database(mariadb_server, "sks") as name:
        load_sql(mariadb_client, name, sakila_script(SHARED_DATA))
        yield dump_database(name, tmp_path / f"{name}.sql", "--events")


def _execute_scan(path: Path, database: str) -> None:
    """Run the scanner's own statements one by one, multi-statements off: what restore-check does."""
    url = sa.engine.make_url(MARIADB_URL)
    conn = pymysql.connect(host=url.host or "127.0.0.1", port=url.port or 3306, user=url.username or "root",
                           password=url.password or "", database=database, charset="utf8mb4")
    try:
        with conn.cursor() as cur:
            for st in DumpScan(path, keep_text=True):
                assert st.refusal is None, st.refusal
                if st.kind not in NOT_RESTORED:
                    assert st.text is not None
                    cur.execute(st.text)
    finally:
        conn.close()


def test_a_mariadb_dump_of_sakila_restores_statement_by_statement_with_multi_statements_off(
    sakila_dump: Path, mariadb_server: sa.Engine
) -> None:
    contents = read_dump(sakila_dump)
    with scratch_mariadb_database(mariadb_server, "skr") as target:
        _execute_scan(sakila_dump, target)

        with mariadb_server.connect() as conn:
            for name, table in contents.tables.items():
                assert conn.exec_driver_sql(f"SELECT COUNT(*) FROM `{target}`.`{name}`").scalar_one() == table.rows
            objects = conn.exec_driver_sql(
                "SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s", (target,)).scalar_one()
    assert objects == len(contents.routines) == 6


def test_world_dump_statements_load_into_a_scratch_database_without_its_use_and_create_database(
    shared_data: Path, mariadb_server: sa.Engine
) -> None:
    with scratch_mariadb_database(mariadb_server, "wld") as target:
        _execute_scan(shared_data / "world" / "world.sql", target)
        with mariadb_server.connect() as conn:
            counts = {t: conn.exec_driver_sql(f"SELECT COUNT(*) FROM `{target}`.`{t}`").scalar_one()
                      for t in WORLD_ROWS}
    assert counts == WORLD_ROWS
