"""Tables nothing writes any more, read with their key slices shared by two sessions: the same counts, fingerprints
and chunks as one session's snapshot, on every backend."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from conftest import ScratchDB
from dbaudit.live.connect import parse_url
from dbaudit.live.inspect import take_snapshot
from dbaudit.live.quiet_read import CUT_ROWS, read_quiet_tables

ROWS = CUT_ROWS + 20_001  # large enough to be cut between the sessions


FILL = {
    "sqlite": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) "
              "INSERT INTO big (id, label, amount) SELECT i, CASE WHEN MOD(i, 7) = 0 THEN NULL ELSE 'row ' || i END, i / 3.0 "
              "FROM n",
    "mariadb": "INSERT INTO big (id, label, amount) SELECT seq, IF(MOD(seq, 7) = 0, NULL, CONCAT('row ', seq)), seq / 3.0 "
               "FROM seq_1_to_{rows}",
    "postgresql": "INSERT INTO big (id, label, amount) SELECT i, CASE WHEN MOD(i, 7) = 0 THEN NULL ELSE 'row ' || i END, "
                  "i / 3.0 FROM generate_series(1, {rows}) AS g(i)",
}


def _build(db: ScratchDB) -> None:
    db.run_sql("CREATE TABLE big (id integer PRIMARY KEY, label varchar(40), amount decimal(10,2))",
               FILL[db.backend].format(rows=ROWS),
               "CREATE TABLE small (id integer PRIMARY KEY, note varchar(10))",
               "INSERT INTO small VALUES (1, 'a'), (2, NULL), (3, '')")


@pytest.mark.parametrize("mode", ["table", "chunks"])
def test_two_sessions_read_the_same_counts_fingerprints_and_chunks_as_one_snapshot(
        make_db: Callable[[], ScratchDB], mode: str) -> None:
    db = make_db()
    _build(db)
    single = take_snapshot(db.url, fingerprint=mode)  # type: ignore[arg-type]

    read = read_quiet_tables(parse_url(db.url), lambda name: True, mode, timeout=120)  # type: ignore[arg-type]

    assert read is not None
    shared = {t.name: (t.row_count, t.fingerprint, t.chunking, t.chunks) for t in read}
    assert shared == {n: (t.row_count, t.fingerprint, t.chunking, t.chunks) for n, t in single.tables.items()}
    assert shared["big"][0] == ROWS and shared["big"][1]


def test_a_stopped_read_gives_nothing_rather_than_part_of_a_table(make_db: Callable[[], ScratchDB]) -> None:
    import threading

    db = make_db()
    _build(db)
    stop = threading.Event()
    stop.set()

    assert read_quiet_tables(parse_url(db.url), lambda name: True, "chunks", timeout=120, stop=stop) is None
