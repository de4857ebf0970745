"""Every SQLite case of the matrix (tests/cases/sqlite/*): exactly its expected changes, and none for clean ones."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from caselib import Case, cases, derived_failures, ids, reported
from dbaudit.live.inspect import take_snapshot

CASES = cases("sqlite")


def _run(path: Path, script: str) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.executescript(script)
    finally:
        conn.close()


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_a_sqlite_change_is_reported_exactly(case: Case, tmp_path: Path) -> None:
    path = tmp_path / "case.sqlite"
    _run(path, case.base)
    before = take_snapshot(f"sqlite:///{path}")
    if case.mode == "restore":  # the sqlite3 shell's .dump, as Python's iterdump writes it
        source = sqlite3.connect(path)
        dump = "\n".join(source.iterdump())
        source.close()
        path = tmp_path / "restored.sqlite"
        _run(path, dump)
    else:
        _run(path, case.change)
    after = take_snapshot(f"sqlite:///{path}")
    assert reported(before, after) == sorted(case.expected)
    assert derived_failures(case, before, after, tmp_path) == []  # and `dbaudit expect` agrees
