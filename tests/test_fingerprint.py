"""Content fingerprints and the live compare (issue #3), on real MariaDB, PostgreSQL and SQLite."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from conftest import ScratchDB
from dbaudit.cli import main
from dbaudit.compare import compare
from dbaudit.connect import audit_session
from dbaudit.diff import diff_snapshots
from dbaudit.fingerprint import Fingerprinter
from dbaudit.inspect import take_snapshot
from dbaudit.snapshot import load_snapshot

# The same rows in each server's own types: NULL next to '', a '|' inside a value, a decimal with a
# trailing zero, a datetime with and without a fraction, bytes, a boolean, a float.
TYPES = {
    "mariadb": "id INT PRIMARY KEY, name VARCHAR(20), note TEXT, price DECIMAL(10,2), ok TINYINT(1), born DATE, "
               "seen DATETIME, at6 DATETIME(6), ts TIMESTAMP NULL, bin VARBINARY(10), f DOUBLE",
    "postgresql": "id INT PRIMARY KEY, name VARCHAR(20), note TEXT, price NUMERIC(10,2), ok BOOLEAN, born DATE, "
                  "seen TIMESTAMP(0), at6 TIMESTAMP, ts TIMESTAMPTZ, bin BYTEA, f DOUBLE PRECISION",
    "sqlite": "id INTEGER PRIMARY KEY, name VARCHAR(20), note TEXT, price DECIMAL(10,2), ok BOOLEAN, born DATE, "
              "seen DATETIME, at6 DATETIME, ts TIMESTAMP, bin BLOB, f DOUBLE",
}
ROWS = {
    "mariadb": ["1, 'a|b', 'c', 12.50, 1, '2020-01-02', '2020-01-02 03:04:05', '2020-01-02 03:04:05.5', "
                "'2020-01-02 03:04:05', X'00ff', 0.1",
                "2, '', NULL, -3.00, 0, '1999-12-31', '1999-12-31 23:59:59', '1999-12-31 23:59:59', NULL, NULL, 1e3"],
    "postgresql": ["1, 'a|b', 'c', 12.50, true, '2020-01-02', '2020-01-02 03:04:05', '2020-01-02 03:04:05.5', "
                   "'2020-01-02 03:04:05+00', '\\x00ff', 0.1",
                   "2, '', NULL, -3.00, false, '1999-12-31', '1999-12-31 23:59:59', '1999-12-31 23:59:59', NULL, "
                   "NULL, 1e3"],
    "sqlite": ["1, 'a|b', 'c', 12.50, 1, '2020-01-02', '2020-01-02 03:04:05', '2020-01-02 03:04:05.500000', "
               "'2020-01-02 03:04:05', X'00ff', 0.1",
               "2, '', NULL, -3.00, 0, '1999-12-31', '1999-12-31 23:59:59', '1999-12-31 23:59:59', NULL, NULL, 1e3"],
}
CANONICAL = [
    "1|3:a|b|1:c|12.50|1|2020-01-02|2020-01-02 03:04:05|2020-01-02 03:04:05.500000|2020-01-02 03:04:05|00FF|0.1",
    "2|0:|~|-3.00|0|1999-12-31|1999-12-31 23:59:59|1999-12-31 23:59:59|~|~|1000",
]


def build_typed(db: ScratchDB) -> None:
    db.run_sql(f"CREATE TABLE t ({TYPES[db.backend]})",
               *(f"INSERT INTO t VALUES ({row})" for row in ROWS[db.backend]))


def canonical_rows(url: str) -> list[str]:
    snap = take_snapshot(url)
    with audit_session(url) as session:
        fp = Fingerprinter(session)
        sql = f"SELECT {fp.canon.row_text(snap.tables['t'].columns)} FROM t ORDER BY id"
        return [str(v) for v in session.connection.exec_driver_sql(sql).scalars()]


def test_the_same_rows_have_the_same_canonical_text_and_fingerprint_on_every_server(
    make_mariadb: Callable[[], ScratchDB], make_postgres: Callable[[], ScratchDB],
    make_sqlite: Callable[[], ScratchDB],
) -> None:
    dbs = [make_mariadb(), make_postgres(), make_sqlite()]
    for db in dbs:
        build_typed(db)

    assert [canonical_rows(db.url) for db in dbs] == [CANONICAL] * 3
    fingerprints = {take_snapshot(db.url, fingerprint="table").tables["t"].fingerprint for db in dbs}
    assert len(fingerprints) == 1 and next(iter(fingerprints)).startswith("c1/md5:2:")


def test_the_sha256_fallback_agrees_between_mariadb_and_postgresql(
    make_mariadb: Callable[[], ScratchDB], make_postgres: Callable[[], ScratchDB]
) -> None:
    tokens = set()
    for db in (make_mariadb(), make_postgres()):
        build_typed(db)
        table = take_snapshot(db.url).tables["t"]
        with audit_session(db.url) as session:
            tokens.add(Fingerprinter(session, "sha256").digest("t", table.columns).token("sha256"))
    assert len(tokens) == 1 and next(iter(tokens)).startswith("c1/sha256:2:")


PEOPLE = ("CREATE TABLE people (id INT PRIMARY KEY, first_name VARCHAR(40) NOT NULL, last_name VARCHAR(40) NOT NULL, "
          "phone VARCHAR(20) NULL, born DATE NOT NULL, seen DATETIME NULL)")


def build_people(db: ScratchDB, rows: int = 3000) -> None:
    values = ", ".join(
        f"({i}, 'first{i % 97}', 'last{i % 89}', {'NULL' if i % 10 == 0 else repr(f'+62{i:09d}')}, "
        f"'19{50 + i % 50}-0{1 + i % 9}-1{i % 10}', '2020-01-01 00:00:{i % 60:02d}')"
        for i in range(1, rows + 1)
    )
    db.run_sql(PEOPLE, f"INSERT INTO people VALUES {values}")


@pytest.fixture
def people_pair(make_mariadb: Callable[[], ScratchDB]) -> tuple[ScratchDB, ScratchDB]:
    a, b = make_mariadb(), make_mariadb()
    build_people(a)
    build_people(b)
    return a, b


CHANGES = {
    "update": ("UPDATE people SET last_name = 'Smith' WHERE id = 1234", "changed", "1234"),
    "delete": ("DELETE FROM people WHERE id = 2999", "removed", "2999"),
    "insert": ("INSERT INTO people VALUES (3001, 'x', 'y', NULL, '2000-01-01', NULL)", "added", "3001"),
    "null_to_empty": ("UPDATE people SET phone = '' WHERE id = 10", "changed", "10"),
    "trailing_space": ("UPDATE people SET first_name = CONCAT(first_name, ' ') WHERE id = 77", "changed", "77"),
    "datetime_second": ("UPDATE people SET seen = seen + INTERVAL 1 SECOND WHERE id = 500", "changed", "500"),
}


@pytest.mark.parametrize("change", CHANGES)
def test_each_single_row_change_is_detected_and_located_by_key(
    people_pair: tuple[ScratchDB, ScratchDB], change: str
) -> None:
    a, b = people_pair
    sql, kind, key = CHANGES[change]
    b.run_sql(sql)

    result = compare(a.url, b.url)

    (table,) = result.tables
    assert (table.status, table.method, table.keys_total) == ("different", "range", 1)
    assert [(k.change, k.key) for k in table.keys] == [(kind, {"id": key})]
    assert table.fingerprint_a != table.fingerprint_b


def test_swapped_phone_numbers_keep_the_counts_but_change_the_fingerprint(
    people_pair: tuple[ScratchDB, ScratchDB],
) -> None:
    a, b = people_pair
    b.run_sql("UPDATE people SET phone = CASE id WHEN 11 THEN '+62000000012' ELSE '+62000000011' END "
              "WHERE id IN (11, 12)")
    before, after = take_snapshot(a.url, fingerprint="table"), take_snapshot(b.url, fingerprint="table")

    assert [c.kind for c in diff_snapshots(before, after)] == ["content_changed"]
    table = compare(a.url, b.url).tables[0]
    assert [(k.change, k.key["id"]) for k in table.keys] == [("changed", "11"), ("changed", "12")]


def test_identical_databases_compare_same_and_exit_0(people_pair: tuple[ScratchDB, ScratchDB], tmp_path) -> None:
    a, b = people_pair
    assert main(["compare", a.url, b.url, "--json", str(tmp_path / "c.json")]) == 0
    saved = json.loads((tmp_path / "c.json").read_text())
    assert (saved["kind"], saved["format_version"], saved["summary"]["same"]) == ("dbaudit.compare", 1, 1)


def test_compare_bisects_big_chunks_down_to_the_changed_keys(people_pair: tuple[ScratchDB, ScratchDB]) -> None:
    a, b = people_pair
    b.run_sql("UPDATE people SET first_name = 'Z' WHERE id IN (5, 2048, 2049)")
    # Three-row leaves force the 16-way splits all the way down from 3000-row chunks.
    result = compare(a.url, b.url, leaf_rows=3)
    assert [k.key["id"] for k in result.tables[0].keys] == ["5", "2048", "2049"]


def test_reports_name_keys_only_unless_values_are_asked_for(
    people_pair: tuple[ScratchDB, ScratchDB], capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    a, b = people_pair
    b.run_sql("UPDATE people SET last_name = 'Secretvalue' WHERE id = 42")

    assert main(["compare", a.url, b.url, "--json", str(tmp_path / "plain.json")]) == 1
    plain = capsys.readouterr().out
    assert "id=42" in plain and "Secretvalue" not in plain
    assert "Secretvalue" not in (tmp_path / "plain.json").read_text()

    assert main(["compare", a.url, b.url, "--show-values"]) == 1
    shown = capsys.readouterr().out
    assert "Secretvalue" in shown and "first_name" not in shown  # only the column that differs


def test_listed_keys_are_capped_but_the_totals_are_complete(people_pair: tuple[ScratchDB, ScratchDB]) -> None:
    a, b = people_pair
    b.run_sql("DELETE FROM people WHERE id <= 30")
    table = compare(a.url, b.url, max_keys=5).tables[0]
    assert (len(table.keys), table.removed, table.keys_total) == (5, 30, 30)


def test_counts_only_and_table_filters(people_pair: tuple[ScratchDB, ScratchDB]) -> None:
    a, b = people_pair
    for db in (a, b):
        db.run_sql("CREATE TABLE audit_log (id INT PRIMARY KEY)")
    b.run_sql("UPDATE people SET last_name = 'x' WHERE id = 1", "INSERT INTO audit_log VALUES (1)")

    counted = compare(a.url, b.url, counts_only=True)
    assert [(t.name, t.status, t.method) for t in counted.tables] == [
        ("audit_log", "different", "counts"), ("people", "same", "counts")]
    filtered = compare(a.url, b.url, exclude=["audit_*"])
    assert [(t.name, t.status) for t in filtered.tables] == [("people", "different")]
    assert [t.name for t in compare(a.url, b.url, tables=["audit_log"]).tables] == ["audit_log"]


def test_composite_and_text_primary_keys_are_located_on_postgresql(make_postgres: Callable[[], ScratchDB]) -> None:
    a, b = make_postgres(), make_postgres()
    for db in (a, b):
        db.run_sql("CREATE TABLE dept_emp (dept_no CHAR(4), emp_no INT, from_date DATE, PRIMARY KEY (dept_no, emp_no))",
                   "INSERT INTO dept_emp SELECT 'd00' || mod(i, 9), i, DATE '2000-01-01' + i FROM generate_series(1, 2000) i")
    b.run_sql("UPDATE dept_emp SET from_date = from_date + 1 WHERE dept_no = 'd003' AND emp_no = 1200",
              "DELETE FROM dept_emp WHERE dept_no = 'd001' AND emp_no = 10")

    table = compare(a.url, b.url).tables[0]

    assert table.method == "hash"
    assert [(k.change, k.key) for k in table.keys] == [
        ("removed", {"dept_no": "d001", "emp_no": "10"}), ("changed", {"dept_no": "d003", "emp_no": "1200"})]


def test_a_table_without_primary_key_is_compared_as_a_multiset_and_says_so(
    make_mariadb: Callable[[], ScratchDB],
) -> None:
    a, b = make_mariadb(), make_mariadb()
    for db in (a, b):
        db.run_sql("CREATE TABLE log_lines (line VARCHAR(20))",
                   "INSERT INTO log_lines VALUES ('boot'), ('boot'), ('login'), ('logout')")
    # A duplicate lost: XOR would cancel the pair and miss it; a sum does not.
    b.run_sql("DELETE FROM log_lines WHERE line = 'boot' LIMIT 1", "INSERT INTO log_lines VALUES ('login')")

    table = compare(a.url, b.url).tables[0]

    assert (table.status, table.method, table.removed, table.added, table.keys) == (
        "different", "rowhash", 1, 1, [])
    assert "no primary key" in table.note


def test_snapshot_chunks_name_the_changed_key_range_even_at_another_width(
    make_mariadb: Callable[[], ScratchDB], tmp_path
) -> None:
    db = make_mariadb()
    build_people(db)
    take_snapshot(db.url, fingerprint="chunks").save(tmp_path / "before.json")
    db.run_sql("UPDATE people SET last_name = 'Smith' WHERE id = 1234")
    after = take_snapshot(db.url, fingerprint="chunks")
    # A far-away key widens the span, so the next snapshot cuts 32x wider chunks; they still line up.
    db.run_sql("INSERT INTO people SELECT 100000, first_name, last_name, phone, born, seen FROM people WHERE id = 1")
    wider = take_snapshot(db.url, fingerprint="chunks")

    before = load_snapshot(tmp_path / "before.json")
    table = before.tables["people"]
    assert (table.chunking, sum(c.rows for c in table.chunks), len(table.chunks)) == ("range(id)/512", 3000, 6)
    (content,) = [c for c in diff_snapshots(before, after) if c.kind == "content_changed"]
    assert (content.fields, content.describe()) == (
        ["id 1024..1535"], "content of people changed in 1 chunk(s): id 1024..1535")
    assert wider.tables["people"].chunking == "range(id)/16384"
    (content,) = [c for c in diff_snapshots(before, wider) if c.kind == "content_changed"]
    assert content.fields == ["id -16383..16383", "id 98304..114687"]


def test_snapshot_cli_writes_fingerprints_and_diff_exits_1_on_a_content_change(
    make_sqlite: Callable[[], ScratchDB], tmp_path
) -> None:
    db = make_sqlite()
    build_people(db, rows=600)
    path = db.url.removeprefix("sqlite:///")
    original = open(path, "rb").read()
    out = [str(tmp_path / f"{n}.json") for n in ("a", "b")]

    assert main(["snapshot", db.url, "-o", out[0], "--fingerprint", "chunks", "--exclude", "nothing*"]) == 0
    assert open(path, "rb").read() == original  # registering SQLite functions wrote nothing
    db.run_sql("UPDATE people SET phone = NULL WHERE id = 599")
    assert main(["snapshot", db.url, "-o", out[1], "--fingerprint", "chunks"]) == 0
    assert main(["diff", *out]) == 1
    assert main(["snapshot", db.url, "-o", out[1], "--fingerprint", "table", "--counts-only"]) == 2
