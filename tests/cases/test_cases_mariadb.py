"""Every MariaDB case of the matrix (tests/cases/mariadb/*): exactly its expected changes, and none for clean ones."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from caselib import Case, cases, derived_failures, ids, reported
from conftest import MARIADB_URL, dump_database, load_sql, scratch_mariadb_database
from dbaudit.live.inspect import take_snapshot

CASES = cases("mariadb")


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_a_mariadb_change_is_reported_exactly(case: Case, mariadb_server: sa.Engine, mariadb_client: str,
                                              tmp_path: Path) -> None:
    with scratch_mariadb_database(mariadb_server, "case") as name:
        load_sql(mariadb_client, name, case.base)
        before = take_snapshot(f"{MARIADB_URL}/{name}")
        if case.mode == "restore":
            dump = dump_database(name, tmp_path / "dump.sql", "--events")
            with scratch_mariadb_database(mariadb_server, "case_restored") as other:
                load_sql(mariadb_client, other, dump)
                after = take_snapshot(f"{MARIADB_URL}/{other}")
        else:
            load_sql(mariadb_client, name, case.change)
            after = take_snapshot(f"{MARIADB_URL}/{name}")
    assert reported(before, after) == sorted(case.expected)
    assert derived_failures(case, before, after, tmp_path) == []  # and `dbaudit expect` agrees
