"""Fingerprints survive a mariadb-dump restore of the real employees and sakila samples (issue #3)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from conftest import MARIADB_URL, SHARED_DATA, dump_database, load_sql, scratch_mariadb_database, unavailable
from dbaudit.audit.diff import diff_snapshots
from dbaudit.live.compare import compare
from dbaudit.live.inspect import take_snapshot

# Each sample creates and selects its own database; it is loaded into a scratch one instead.
_OWN_DATABASE = re.compile(r"^(DROP (DATABASE|SCHEMA) IF EXISTS|CREATE (DATABASE|SCHEMA)( IF NOT EXISTS)?|USE) "
                           r"(employee|sakila);\s*$", re.M | re.I)
_QUALIFIED = re.compile(r"\bsakila\.(?=\w)")
SAMPLES = {
    "employees": ["employee.sql"],
    "sakila": ["sakila-mv-schema.sql", "sakila-mv-data.sql"],
}


@pytest.fixture(scope="module", params=list(SAMPLES))
def restored_pair(request: pytest.FixtureRequest, mariadb_server: sa.Engine, mariadb_client: str,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The sample loaded as its scripts say, and a restore of its mariadb-dump."""
    folder = SHARED_DATA / request.param
    if not folder.is_dir():
        unavailable(f"{folder} is absent")
    with (scratch_mariadb_database(mariadb_server, "fps") as source,
          scratch_mariadb_database(mariadb_server, "fpr") as copy):
        for script in SAMPLES[request.param]:
            text = _OWN_DATABASE.sub("", (folder / script).read_text(encoding="utf-8"))
            # sakila's views name `sakila.film`; in the scratch database they must name it unqualified.
            load_sql(mariadb_client, source, _QUALIFIED.sub("", text), cwd=folder)
        dump = dump_database(source, tmp_path_factory.mktemp("sample") / f"{source}.sql")
        load_sql(mariadb_client, copy, dump)  # bytes: sakila's staff pictures are not UTF-8
        yield f"{MARIADB_URL}/{source}", f"{MARIADB_URL}/{copy}"


# One row each sample's copy then changes, and the key compare must name.
CHANGE = {
    "salary": ("UPDATE salary SET amount = amount + 1 WHERE emp_no = 10001 AND from_date = '1986-06-26'",
               {"emp_no": "10001", "from_date": "1986-06-26"}),
    "payment": ("UPDATE payment SET amount = amount + 1 WHERE payment_id = 16049", {"payment_id": "16049"}),
}


@pytest.mark.slow
def test_a_restored_dump_is_identical_until_one_row_changes(restored_pair: tuple[str, str]) -> None:
    source, copy = restored_pair
    before = take_snapshot(source, fingerprint="chunks")
    after = take_snapshot(copy, fingerprint="chunks")

    assert all(t.fingerprint for t in before.tables.values())
    assert diff_snapshots(before, after) == []
    result = compare(source, copy)
    assert result.identical, [(t.name, t.status, t.note) for t in result.tables if t.status != "same"]
    assert {t.name: t.rows_a for t in result.tables} == {n: t.row_count for n, t in before.tables.items()}

    (table,) = [name for name in CHANGE if name in before.tables]
    engine = sa.create_engine(copy, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql(CHANGE[table][0])
    engine.dispose()
    changed = compare(source, copy)
    assert [(t.name, [k.key for k in t.keys]) for t in changed.tables if t.status != "same"] == [
        (table, [CHANGE[table][1]])]
    assert [c.kind for c in diff_snapshots(before, take_snapshot(copy, fingerprint="chunks"))] == ["content_changed"]
