"""Content fingerprints and the live compare (issue #3), on real MariaDB, PostgreSQL and SQLite."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import ScratchDB
from dbaudit.audit import chunks
from dbaudit.audit.diff import diff_snapshots
from dbaudit.cli import main
from dbaudit.core.errors import DbauditError
from dbaudit.core.snapshot import load_snapshot
from dbaudit.live import fingerprint
from dbaudit.live.compare import compare
from dbaudit.live.connect import audit_session
from dbaudit.live.fingerprint import Fingerprinter
from dbaudit.live.inspect import take_snapshot
from dbaudit.outputs.report import list_reports

# The same rows in each server's own types: NULL next to '', a '|' inside a value, a two-byte character,
# a decimal with a trailing zero, a datetime with and without a fraction, bytes, a boolean, a float.
TYPES = {
    "mariadb": "id INT PRIMARY KEY, name VARCHAR(20), note TEXT, price DECIMAL(10,2), ok TINYINT(1), born DATE, "
               "seen DATETIME, at6 DATETIME(6), ts TIMESTAMP NULL, bin VARBINARY(10), f DOUBLE",
    "postgresql": "id INT PRIMARY KEY, name VARCHAR(20), note TEXT, price NUMERIC(10,2), ok BOOLEAN, born DATE, "
                  "seen TIMESTAMP(0), at6 TIMESTAMP, ts TIMESTAMPTZ, bin BYTEA, f DOUBLE PRECISION",
    "sqlite": "id INTEGER PRIMARY KEY, name VARCHAR(20), note TEXT, price DECIMAL(10,2), ok BOOLEAN, born DATE, "
              "seen DATETIME, at6 DATETIME, ts TIMESTAMP, bin BLOB, f DOUBLE",
}
ROWS = {
    "mariadb": ["1, 'a|b', 'cé', 12.50, 1, '2020-01-02', '2020-01-02 03:04:05', '2020-01-02 03:04:05.5', "
                "'2020-01-02 03:04:05', X'00ff', 0.1",
                "2, '', NULL, -3.00, 0, '1999-12-31', '1999-12-31 23:59:59', '1999-12-31 23:59:59', NULL, NULL, 1e3"],
    "postgresql": ["1, 'a|b', 'cé', 12.50, true, '2020-01-02', '2020-01-02 03:04:05', '2020-01-02 03:04:05.5', "
                   "'2020-01-02 03:04:05+00', '\\x00ff', 0.1",
                   "2, '', NULL, -3.00, false, '1999-12-31', '1999-12-31 23:59:59', '1999-12-31 23:59:59', NULL, "
                   "NULL, 1e3"],
    "sqlite": ["1, 'a|b', 'cé', 12.50, 1, '2020-01-02', '2020-01-02 03:04:05', '2020-01-02 03:04:05.500000', "
               "'2020-01-02 03:04:05', X'00ff', 0.1",
               "2, '', NULL, -3.00, 0, '1999-12-31', '1999-12-31 23:59:59', '1999-12-31 23:59:59', NULL, NULL, 1e3"],
}
CANONICAL = [
    "1|3|a|b|3|cé|12.50|1|2020-01-02|2020-01-02 03:04:05|2020-01-02 03:04:05.500000|2020-01-02 03:04:05|00FF|0.1",
    "2|0||~|-3.00|0|1999-12-31|1999-12-31 23:59:59|1999-12-31 23:59:59|~|~|1000",
]


def build_typed(db: ScratchDB) -> None:
    db.run_sql(f"CREATE TABLE t ({TYPES[db.backend]})",
               *(f"INSERT INTO t VALUES ({row})" for row in ROWS[db.backend]))


def canonical_rows(url: str) -> list[str]:
    snap = take_snapshot(url)
    with audit_session(url) as session:
        fp = Fingerprinter(session)
        fp.canon.use_table(session.connection, session.schema, "t")
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
    assert len(fingerprints) == 1 and next(iter(fingerprints)).startswith("c2/sha256:2:")


def test_multibyte_text_and_trailing_spaces_fingerprint_alike_on_every_server(
    make_mariadb: Callable[[], ScratchDB], make_postgres: Callable[[], ScratchDB],
    make_sqlite: Callable[[], ScratchDB],
) -> None:
    # Text fields are prefixed with their UTF-8 byte length: each server must count bytes, not characters.
    tokens = set()
    for db in (make_mariadb(), make_postgres(), make_sqlite()):
        db.run_sql("CREATE TABLE u (id INT PRIMARY KEY, s VARCHAR(20), n VARCHAR(20) NOT NULL)",
                   "INSERT INTO u VALUES (1, 'héllo😀', 'x'), (2, '', ''), (3, NULL, 'ü '), (4, 'a ', '|')")
        tokens.add(take_snapshot(db.url, fingerprint="table").tables["u"].fingerprint)
    assert len(tokens) == 1 and next(iter(tokens)).startswith("c2/sha256:4:")


def test_compare_locates_changes_across_servers_by_key_hash(
    make_mariadb: Callable[[], ScratchDB], make_sqlite: Callable[[], ScratchDB],
) -> None:
    # A text key is chunked by the low bits of the key's digest: both servers must pick the same bucket,
    # and their per-row digests must be spelled alike, or every row would look changed.
    a, b = make_mariadb(), make_sqlite()
    for db in (a, b):
        db.run_sql("CREATE TABLE k (code VARCHAR(12) PRIMARY KEY, qty INT)",
                   "INSERT INTO k VALUES " + ", ".join(f"('c{i:05d}', {i})" for i in range(2000)))
    b.run_sql("UPDATE k SET qty = -1 WHERE code = 'c01234'", "DELETE FROM k WHERE code = 'c00007'")

    (table,) = compare(a.url, b.url).tables

    assert table.method == "hash"
    assert [(k.change, k.key) for k in table.keys] == [
        ("removed", {"code": "c00007"}), ("changed", {"code": "c01234"})]


def test_a_snapshot_of_an_older_canonical_version_is_refused_with_the_reason(
    make_sqlite: Callable[[], ScratchDB],
) -> None:
    db = make_sqlite()
    db.run_sql("CREATE TABLE t (id INTEGER PRIMARY KEY)", "INSERT INTO t VALUES (1)")
    new = take_snapshot(db.url, fingerprint="table")
    old = take_snapshot(db.url, fingerprint="table")
    old.tables["t"].fingerprint = "c1/md5:1:" + "0" * 16  # as dbaudit's first canonical version wrote it

    with pytest.raises(DbauditError, match="c1/md5 and c2/sha256 cannot be compared; .*canonical row versions"):
        diff_snapshots(old, new)


PEOPLE = ("CREATE TABLE people (id INTEGER PRIMARY KEY, first_name VARCHAR(40) NOT NULL, "
          "last_name VARCHAR(40) NOT NULL, "
          "phone VARCHAR(20) NULL, born DATE NOT NULL, seen DATETIME NULL)")


def build_people(db: ScratchDB, rows: int = 3000) -> None:
    values = ", ".join(
        f"({i}, 'first{i % 97}', 'last{i % 89}', {'NULL' if i % 10 == 0 else repr(f'+62{i:09d}')}, "
        f"'19{50 + i % 50}-0{1 + i % 9}-1{i % 10}', '2020-01-01 00:00:{i % 60:02d}')"
        for i in range(1, rows + 1)
    )
    ddl = PEOPLE.replace("DATETIME", "TIMESTAMP(0)") if db.backend == "postgresql" else PEOPLE
    db.run_sql(ddl, f"INSERT INTO people VALUES {values}")


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


def test_compare_report_is_archived_with_keys_only_and_its_verdict(
    people_pair: tuple[ScratchDB, ScratchDB], capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    a, b = people_pair
    b.run_sql("UPDATE people SET last_name = 'Secretvalue' WHERE id = 42")

    assert main(["compare", a.url, b.url, "--report", "--out-dir", str(tmp_path)]) == 1

    (page,) = tmp_path.glob("*/report.html")
    html = page.read_text()
    assert "VERDICT: FAIL" in html and "id=42" in html and "Secretvalue" not in html
    (listed,) = list_reports(tmp_path)
    assert (listed.verdict, listed.title) == ("fail", f"{a.url.rsplit('/', 1)[1]} vs {b.url.rsplit('/', 1)[1]}")
    assert f"report: {page}" in capsys.readouterr().out


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
    original = Path(path).read_bytes()
    out = [str(tmp_path / f"{n}.json") for n in ("a", "b")]

    assert main(["snapshot", db.url, "-o", out[0], "--fingerprint", "chunks", "--exclude", "nothing*"]) == 0
    assert Path(path).read_bytes() == original  # registering SQLite functions wrote nothing
    db.run_sql("UPDATE people SET phone = NULL WHERE id = 599")
    assert main(["snapshot", db.url, "-o", out[1], "--fingerprint", "chunks"]) == 0
    assert main(["diff", *out]) == 1
    assert main(["snapshot", db.url, "-o", out[1], "--fingerprint", "table", "--counts-only"]) == 2


@pytest.mark.parametrize("mode", ["table", "chunks"])
def test_a_big_table_is_read_in_key_slices_that_add_up_to_the_one_scan_fingerprint(
    make_db: Callable[[], ScratchDB], monkeypatch: pytest.MonkeyPatch, mode: str,
) -> None:
    db = make_db()
    build_people(db)
    whole = take_snapshot(db.url, fingerprint=mode).tables["people"]
    monkeypatch.setattr(chunks, "SLICE_ROWS", 400)  # 3,000 rows: 8 slices
    table = take_snapshot(db.url).tables["people"]
    reads: list[int] = []
    with audit_session(db.url) as session:
        fingerprint.fingerprint_table(Fingerprinter(session), table, mode, reads.append)

    assert len(reads) == 8 and sum(reads) == 3000
    assert (table.fingerprint, table.chunking, table.chunks) == (whole.fingerprint, whole.chunking, whole.chunks)


def test_sqlite_keys_that_are_not_integers_are_still_read_and_compared(
    make_sqlite: Callable[[], ScratchDB], monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Only a rowid key is always an integer on SQLite: an INT PRIMARY KEY, the first column of a key of
    # several columns and a WITHOUT ROWID key may hold 2.5 and text (and the first two NULL). Such tables
    # are chunked by key hash, so every row is read, and compare still names the changed key.
    monkeypatch.setattr(chunks, "SLICE_ROWS", 400)
    odd = "(NULL, 'n'), (2.5, 'x'), ('abc', 'y')"
    for ddl, rows in (("CREATE TABLE t (id INT PRIMARY KEY, v TEXT)", odd),
                      ("CREATE TABLE t (id INTEGER, v TEXT, PRIMARY KEY (id, v))", odd),
                      ("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT) WITHOUT ROWID",
                       odd.replace("(NULL, 'n'), ", ""))):
        a, b = make_sqlite(), make_sqlite()
        for db in (a, b):
            db.run_sql(ddl, "INSERT INTO t VALUES " + ", ".join(f"({i}, 'v{i}')" for i in range(3000)),
                       f"INSERT INTO t VALUES {rows}")
        b.run_sql("UPDATE t SET v = 'changed' WHERE id = 2.5")
        count = 3000 + rows.count("(")

        snaps = [take_snapshot(db.url, fingerprint=mode) for db in (a, b) for mode in ("table", "chunks")]
        (table,) = compare(a.url, b.url).tables

        assert all(s.tables["t"].fingerprint.startswith(f"c2/sha256:{count}:") for s in snaps)
        assert snaps[0].tables["t"].fingerprint == snaps[1].tables["t"].fingerprint
        assert snaps[0].tables["t"].fingerprint != snaps[2].tables["t"].fingerprint, ddl
        assert (table.status, table.rows_a) == ("different", count), ddl
        assert sorted((k.change, k.key["id"]) for k in table.keys) in (
            [("changed", "2.5")], [("added", "2.5"), ("removed", "2.5")]), ddl  # with (id, v) keys, v is key


def test_key_slices_stay_few_for_sparse_keys_and_cover_the_whole_integer_range() -> None:
    assert len(chunks.key_slices((1, 10**12), 10**12)) == chunks.MAX_SLICES
    slices = chunks.key_slices((-2**63, 2**63 - 1), 2**64)
    assert slices[0][0] is None and slices[-1][1] is None
    assert all(earlier[1] == later[0] for earlier, later in zip(slices, slices[1:]))
    assert chunks.key_slices((1, 3000), 3000) == []  # small: one scan


def test_compare_reads_big_tables_in_slices_and_still_names_the_changed_keys(
    people_pair: tuple[ScratchDB, ScratchDB], monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b = people_pair
    b.run_sql(CHANGES["update"][0], CHANGES["delete"][0])
    monkeypatch.setattr(chunks, "SLICE_ROWS", 400)

    (table,) = compare(a.url, b.url, workers=2).tables

    assert [(k.change, k.key["id"]) for k in table.keys] == [("changed", "1234"), ("removed", "2999")]
    assert (table.rows_a, table.rows_b) == (3000, 2999)


def test_postgresql_infinite_dates_count_as_values_not_as_missing_rows(
    make_postgres: Callable[[], ScratchDB],
) -> None:
    # to_char('infinity') is NULL: without care the row would drop out of the sum and its change pass.
    a, b = make_postgres(), make_postgres()
    for db in (a, b):
        db.run_sql("CREATE TABLE t (id INT PRIMARY KEY, until TIMESTAMP NOT NULL, born DATE NOT NULL, name TEXT)",
                   "INSERT INTO t VALUES (1, 'infinity', '-infinity', 'alice'), (2, '2020-01-01', '2000-01-01', 'bob')",
                   "CREATE TABLE k (d DATE NOT NULL, n TEXT)", "INSERT INTO k VALUES ('infinity', 'a')")
    b.run_sql("UPDATE t SET name = 'mallory' WHERE id = 1", "UPDATE k SET n = 'b'")

    result = compare(a.url, b.url)

    assert [(t.name, t.status, [k.key for k in t.keys]) for t in result.tables] == [
        ("k", "different", []), ("t", "different", [{"id": "1"}])]
    assert [t.removed + t.added for t in result.tables] == [2, 0]


@pytest.mark.parametrize("mode", ["ORACLE", "EMPTY_STRING_IS_NULL", "PAD_CHAR_TO_FULL_LENGTH"])
def test_mariadb_sql_modes_do_not_change_the_canonical_text(make_mariadb: Callable[[], ScratchDB], mode: str) -> None:
    # ORACLE makes CONCAT() skip NULLs and LENGTH() count characters; EMPTY_STRING_IS_NULL turns the empty
    # string into NULL (and with it every DATETIME(6) value); the fingerprint session clears the SQL mode.
    db = make_mariadb()
    build_typed(db)
    columns = take_snapshot(db.url).tables["t"].columns
    with audit_session(db.url) as session:
        session.connection.exec_driver_sql(f"SET SESSION sql_mode = '{mode}'")
        fp = Fingerprinter(session)
        sql = f"SELECT {fp.canon.row_text(columns)} FROM t ORDER BY id"
        assert [str(v) for v in session.connection.exec_driver_sql(sql).scalars()] == CANONICAL


@pytest.mark.parametrize("touch_old_column", [False, True])
def test_a_migration_that_adds_a_column_is_checked_on_the_old_columns_against_a_baseline(
    make_mariadb: Callable[[], ScratchDB], tmp_path, touch_old_column: bool,
) -> None:
    db = make_mariadb()
    build_people(db)
    before = tmp_path / "before.json"
    assert main(["snapshot", db.url, "-o", str(before), "--fingerprint", "table"]) == 0
    db.run_sql("ALTER TABLE people ADD COLUMN provider_type VARCHAR(20) NOT NULL DEFAULT 'meta' AFTER phone",
               *(["UPDATE people SET last_name = 'Smith' WHERE id = 1234"] if touch_old_column else []))
    unguided = take_snapshot(db.url, fingerprint="table")
    after = tmp_path / "after.json"
    assert main(["snapshot", db.url, "-o", str(after), "--fingerprint", "table", "--baseline", str(before)]) == 0

    # Without the baseline the new column changes every row's text: nothing is proven, and the diff says so.
    unproven = diff_snapshots(load_snapshot(before), unguided)
    assert [c.kind for c in unproven] == ["column_added", "content_changed"]
    assert "not verified: its columns changed" in unproven[1].describe()
    changes = diff_snapshots(load_snapshot(before), load_snapshot(after))
    kinds = [c.kind for c in changes]
    assert kinds == (["column_added", "content_changed"] if touch_old_column else ["column_added"])
    if touch_old_column:
        assert changes[1].describe() == "content of people changed in the columns it had before"


def test_the_demo_audit_with_fingerprints_passes_as_planned_and_names_lost_content_when_faulty(
    tmp_path: Path,
) -> None:
    from dbaudit import demo
    from dbaudit.live.workflow import run_audit

    before, after = demo.prepare(tmp_path)
    planned = run_audit(before, after, demo.EXPECTATIONS, fingerprint="chunks").result
    faulty_db = demo.build_database(tmp_path / "faulty.sqlite", "faulty")
    faulty = run_audit(before, f"sqlite:///{faulty_db}", demo.EXPECTATIONS, fingerprint="table").result

    assert planned.verdict == "pass"
    assert faulty.verdict == "fail"
    assert {c.table for c in faulty.changes if c.kind == "content_changed"} >= {"contacts"}


@pytest.mark.parametrize("migration", [
    "ALTER TABLE people DROP COLUMN seen",
    "ALTER TABLE people CHANGE COLUMN seen seen_at DATETIME NULL",
    "ALTER TABLE people MODIFY COLUMN born DATETIME NOT NULL",  # the same values, spelled another way
])
def test_columns_dropped_renamed_or_retyped_leave_the_content_unverified_even_with_a_baseline(
    make_mariadb: Callable[[], ScratchDB], migration: str,
) -> None:
    db = make_mariadb()
    build_people(db)
    before = take_snapshot(db.url, fingerprint="table")
    db.run_sql(migration)

    after = take_snapshot(db.url, fingerprint="table", baseline=before)
    (content,) = [c for c in diff_snapshots(before, after) if c.kind == "content_changed"]

    assert after.tables["people"].baseline is None
    assert "not verified" in content.describe()
