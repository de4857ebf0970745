"""compare across a platform move: columns (and tables) named in other case are one, different ones are a note."""

from __future__ import annotations

from collections.abc import Callable

from conftest import ScratchDB
from dbaudit.live.compare import compare, match_names


def test_names_pair_exactly_first_then_ignoring_case_only_where_unambiguous() -> None:
    assert match_names(["ID", "Name", "x"], ["id", "name", "y"]) == [("ID", "id"), ("Name", "name")]
    # PostgreSQL can hold "ID" and "id" side by side: the exact one pairs, the other is ambiguous.
    assert match_names(["id", "ID"], ["id"]) == [("id", "id")]
    assert match_names(["ID", "Id"], ["id"]) == []


def test_mysql_upper_case_names_compare_with_postgresql_folded_ones(
    make_mariadb: Callable[[], ScratchDB], make_postgres: Callable[[], ScratchDB],
) -> None:
    a, b = make_mariadb(), make_postgres()
    a.run_sql("CREATE TABLE Users (ID INT PRIMARY KEY, Name VARCHAR(20))",
              "INSERT INTO Users VALUES (1, 'ann'), (2, 'bob'), (3, 'cy')")
    b.run_sql("CREATE TABLE users (id INT PRIMARY KEY, name VARCHAR(20))",
              "INSERT INTO users VALUES (1, 'ann'), (2, 'bob'), (3, 'cy')")

    result = compare(a.url, b.url)
    (table,) = result.tables
    assert (table.name, table.status, table.method, table.rows_a) == ("Users", "same", "range", 3)
    assert "named users in B" in table.note and result.verdict == "pass"

    b.run_sql("UPDATE users SET name = 'bo' WHERE id = 2")
    (table,) = compare(a.url, b.url).tables
    assert table.status == "different" and [(k.change, k.key) for k in table.keys] == [("changed", {"ID": "2"})]


def test_tables_without_a_column_in_common_are_counted_with_a_note_not_an_error(
    make_sqlite: Callable[[], ScratchDB],
) -> None:
    a, b = make_sqlite(), make_sqlite()
    a.run_sql("CREATE TABLE u (x INT)", "INSERT INTO u VALUES (1), (2)")
    b.run_sql("CREATE TABLE u (y INT)", "INSERT INTO u VALUES (1), (2), (3)")

    (table,) = compare(a.url, b.url).tables
    assert (table.status, table.method, table.rows_a, table.rows_b) == ("different", "counts", 2, 3)
    assert "columns only in A: x" in table.note and "no column in common" in table.note


def test_shared_columns_are_compared_and_the_others_named(make_sqlite: Callable[[], ScratchDB]) -> None:
    a, b = make_sqlite(), make_sqlite()
    a.run_sql("CREATE TABLE u (id INTEGER PRIMARY KEY, x INT, only_a INT)", "INSERT INTO u VALUES (1, 5, 9)")
    b.run_sql("CREATE TABLE u (ID INTEGER PRIMARY KEY, X INT, only_b INT)", "INSERT INTO u VALUES (1, 5, 7)")

    (table,) = compare(a.url, b.url).tables
    assert table.status == "same" and table.method == "range"
    assert "columns only in A: only_a" in table.note and "columns only in B: only_b" in table.note
