"""The opt-in crc32 row digest (issue #3): MariaDB and SQLite agree, PostgreSQL refuses it."""

from __future__ import annotations

import zlib
from collections.abc import Callable

import pytest

from conftest import ScratchDB
from dbaudit.canonical import crc64_hex
from dbaudit.cli import main
from dbaudit.compare import compare
from dbaudit.diff import diff_snapshots
from dbaudit.errors import DbauditError
from dbaudit.fingerprint import comparable
from dbaudit.inspect import take_snapshot
from test_fingerprint import CHANGES, build_people, build_typed

def test_crc64_is_two_crc32s_of_the_text_and_its_reversal() -> None:
    assert crc64_hex("") == "0000000000000000"
    assert crc64_hex("é😀") == f"{zlib.crc32('é😀'.encode()):08X}{zlib.crc32('😀é'.encode()):08X}"
    assert crc64_hex("ab")[:8] == crc64_hex("ba")[8:]  # the halves swap with the text: no symmetry lost


def test_crc32_fingerprints_are_equal_for_the_same_rows_on_mariadb_and_sqlite(
    make_mariadb: Callable[[], ScratchDB], make_sqlite: Callable[[], ScratchDB],
) -> None:
    dbs = [make_mariadb(), make_sqlite()]
    for db in dbs:
        build_typed(db)
        db.run_sql("CREATE TABLE u (id INT PRIMARY KEY, s VARCHAR(20))",
                   "INSERT INTO u VALUES (1, 'héllo😀'), (2, ''), (3, NULL), (4, 'a ')")

    snaps = [take_snapshot(db.url, fingerprint="table", digest="crc32") for db in dbs]
    for name in ("t", "u"):
        tokens = {s.tables[name].fingerprint for s in snaps}
        assert len(tokens) == 1 and next(iter(tokens)).startswith("c1/crc32:")
    result = compare(dbs[0].url, dbs[1].url, digest="crc32")
    assert (result.algorithm, [t.status for t in result.tables]) == ("crc32", ["same", "same"])


@pytest.mark.parametrize("change", ["update", "null_to_empty", "trailing_space"])
def test_a_single_row_change_changes_the_crc32_fingerprint_and_compare_names_the_key(
    make_mariadb: Callable[[], ScratchDB], change: str, capsys: pytest.CaptureFixture[str],
) -> None:
    a, b = make_mariadb(), make_mariadb()
    for db in (a, b):
        build_people(db)
    sql, kind, key = CHANGES[change]
    b.run_sql(sql)

    before = take_snapshot(a.url, fingerprint="table", digest="crc32").tables["people"].fingerprint
    after = take_snapshot(b.url, fingerprint="table", digest="crc32").tables["people"].fingerprint
    assert before != after and before.startswith("c1/crc32:3000:")
    (table,) = compare(a.url, b.url, digest="crc32").tables
    assert (table.status, [(k.change, k.key) for k in table.keys]) == ("different", [(kind, {"id": key})])
    assert main(["compare", a.url, b.url, "--digest", "crc32"]) == 1
    assert f"id={key}" in capsys.readouterr().out


def test_crc32_compare_locates_changes_across_servers_by_key_hash(
    make_mariadb: Callable[[], ScratchDB], make_sqlite: Callable[[], ScratchDB],
) -> None:
    # A text key is chunked by the low bits of the key's CRC: both servers must pick the same bucket,
    # and their per-row digests must be spelled alike, or every row would look changed.
    a, b = make_mariadb(), make_sqlite()
    for db in (a, b):
        db.run_sql("CREATE TABLE k (code VARCHAR(12) PRIMARY KEY, qty INT)",
                   "INSERT INTO k VALUES " + ", ".join(f"('c{i:05d}', {i})" for i in range(2000)))
    b.run_sql("UPDATE k SET qty = -1 WHERE code = 'c01234'", "DELETE FROM k WHERE code = 'c00007'")

    (table,) = compare(a.url, b.url, digest="crc32").tables

    assert table.method == "hash"
    assert [(k.change, k.key) for k in table.keys] == [
        ("removed", {"code": "c00007"}), ("changed", {"code": "c01234"})]


def test_md5_and_crc32_fingerprints_are_never_compared_as_equal_or_changed(
    make_sqlite: Callable[[], ScratchDB],
) -> None:
    db = make_sqlite()
    build_people(db, rows=600)
    md5 = take_snapshot(db.url, fingerprint="chunks")
    crc = take_snapshot(db.url, fingerprint="chunks", digest="crc32")
    old, new = md5.tables["people"], crc.tables["people"]

    assert old.fingerprint.startswith("c1/md5:600:") and new.fingerprint.startswith("c1/crc32:600:")
    assert old.fingerprint != new.fingerprint and not comparable(old.fingerprint, new.fingerprint)
    with pytest.raises(DbauditError, match="fingerprints c1/md5 and c1/crc32 cannot be compared"):
        diff_snapshots(md5, crc)


def test_crc32_on_postgresql_is_a_one_line_error(
    make_postgres: Callable[[], ScratchDB], make_mariadb: Callable[[], ScratchDB],
    capsys: pytest.CaptureFixture[str], tmp_path,
) -> None:
    pg, my = make_postgres(), make_mariadb()
    for db in (pg, my):
        db.run_sql("CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)")

    with pytest.raises(DbauditError, match="PostgreSQL has no CRC32 before version 18"):
        take_snapshot(pg.url, fingerprint="table", digest="crc32")
    with pytest.raises(DbauditError, match="PostgreSQL has no CRC32"):
        compare(my.url, pg.url, digest="crc32")
    assert compare(my.url, pg.url).algorithm == "md5"  # the default still works across servers

    assert main(["compare", my.url, pg.url, "--digest", "crc32"]) == 2
    assert main(["snapshot", pg.url, "-o", str(tmp_path / "s.json"), "--fingerprint", "table",
                 "--digest", "crc32"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and all("PostgreSQL has no CRC32" in e for e in errors)


def test_snapshot_digest_needs_a_fingerprint(make_sqlite: Callable[[], ScratchDB], tmp_path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    db = make_sqlite()
    build_people(db, rows=10)
    assert main(["snapshot", db.url, "-o", str(tmp_path / "s.json"), "--digest", "crc32"]) == 2
    assert "--digest crc32 needs --fingerprint" in capsys.readouterr().err
    assert main(["snapshot", db.url, "-o", str(tmp_path / "s.json"), "--digest", "crc32", "--fingerprint", "table"]) == 0
