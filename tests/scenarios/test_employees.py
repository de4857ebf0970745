"""The real employees sample (../shared/data/employees) on MariaDB, restored twice through mysqldump."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import MARIADB_URL, load_sql, scratch_mariadb_database
from dbaudit.audit.diff import diff_snapshots
from dbaudit.live.inspect import take_snapshot

FACTS = {"employee": 10000, "department": 9, "dept_manager": 24, "dept_emp": 11051, "title": 14782, "salary": 94917}


@pytest.fixture
def restored(employees: tuple[str, Path], mariadb_server: sa.Engine, mariadb_client: str) -> Iterator[str]:
    """A fresh restore of the dump, as a DBA's restore test would make."""
    with scratch_mariadb_database(mariadb_server, "rst") as name:
        load_sql(mariadb_client, name, employees[1])
        yield name


@pytest.mark.slow
def test_a_restore_of_employees_is_identical_to_its_source(employees: tuple[str, Path], restored: str) -> None:
    source = take_snapshot(f"{MARIADB_URL}/{employees[0]}")
    copy = take_snapshot(f"{MARIADB_URL}/{restored}")

    assert {name: t.row_count for name, t in source.tables.items()} == FACTS
    assert set(source.views) == {"dept_emp_latest_date", "current_dept_emp"}
    assert diff_snapshots(source, copy) == []


@pytest.mark.slow
def test_diff_names_a_dropped_unique_index_a_widened_varchar_and_a_deleted_row(
    employees: tuple[str, Path], restored: str
) -> None:
    source = take_snapshot(f"{MARIADB_URL}/{employees[0]}")
    engine = sa.create_engine(f"{MARIADB_URL}/{restored}", poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE department DROP INDEX dept_name")
        conn.exec_driver_sql("ALTER TABLE employee MODIFY first_name VARCHAR(30) NOT NULL")
        conn.exec_driver_sql("DELETE FROM title ORDER BY emp_no, title, from_date LIMIT 1")
    engine.dispose()

    changes = diff_snapshots(source, take_snapshot(f"{MARIADB_URL}/{restored}"))

    assert [(c.kind, c.target, c.fields) for c in changes] == [
        ("index_removed", "department.dept_name", []),
        ("column_changed", "employee.first_name", ["type"]),
        ("row_count_changed", "title", []),
    ]
    assert changes[1].describe() == "column employee.first_name changed (type: 'varchar(14)' → 'varchar(30)')"
    assert (changes[2].before, changes[2].after) == (14782, 14781)
