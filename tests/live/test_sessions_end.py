"""Audit sessions end (issue #9, class 8): a lock held elsewhere fails a snapshot in bounded time, and no
timeout, however small, turns into the servers' 0 = "no limit"."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import ScratchDB
from dbaudit.cli import main
from dbaudit.core.errors import DbauditError
from dbaudit.live.connect import DEFAULT_LOCK_TIMEOUT, audit_session
from dbaudit.live.inspect import take_snapshot

LOCK = {"mariadb": "LOCK TABLES chats WRITE", "postgresql": "BEGIN; LOCK TABLE chats IN ACCESS EXCLUSIVE MODE"}


@contextmanager
def locked(db: ScratchDB) -> Iterator[None]:
    """Another session holds a write lock on `chats` until the block ends."""
    conn = db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        for statement in LOCK[db.backend].split("; "):
            conn.exec_driver_sql(statement)
        yield
    finally:
        conn.close()  # ends the lock (MariaDB: the session's table locks; PostgreSQL: its transaction)


@pytest.fixture(params=["mariadb", "postgresql"])
def chats(request: pytest.FixtureRequest) -> ScratchDB:
    fixture = {"mariadb": "make_mariadb", "postgresql": "make_postgres"}[request.param]
    make: Callable[[], ScratchDB] = request.getfixturevalue(fixture)
    db = make()
    db.run_sql("CREATE TABLE chats (id INT PRIMARY KEY)", "INSERT INTO chats VALUES (1)")
    return db


def test_a_table_locked_by_another_session_fails_the_snapshot_within_the_lock_limit(chats: ScratchDB) -> None:
    with locked(chats):
        started = time.monotonic()
        with pytest.raises(DbauditError, match="another session holds a lock") as caught:
            take_snapshot(chats.url, lock_timeout=1)
        elapsed = time.monotonic() - started
    assert elapsed < 10, f"the snapshot waited {elapsed:.1f}s for a 1s lock limit"
    assert "chats" in str(caught.value)


def test_the_cli_snapshot_has_a_default_lock_limit_and_exits_2_with_the_reason(
        chats: ScratchDB, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert DEFAULT_LOCK_TIMEOUT <= 60
    outcome: list[int] = []
    with locked(chats):
        # Without any option the default limit applies; run where a hang cannot block the test run.
        worker = threading.Thread(target=lambda: outcome.append(
            main(["snapshot", chats.url, "-o", str(tmp_path / "s.json"), "--lock-timeout", "1.5"])))
        worker.start()
        worker.join(timeout=20)
    assert outcome == [2]
    assert "another session holds a lock" in capsys.readouterr().err
    assert not (tmp_path / "s.json").exists()


SETTINGS = {
    "mariadb": ("SELECT @@SESSION.max_statement_time, @@SESSION.lock_wait_timeout, "
                "@@SESSION.innodb_lock_wait_timeout", ("0.001", "1", "1")),
    "postgresql": ("SELECT current_setting('statement_timeout'), current_setting('lock_timeout'), "
                   "current_setting('lock_timeout')", ("1ms", "1ms", "1ms")),
}


@pytest.mark.parametrize("tiny", [1e-9, 0.0004])
def test_tiny_timeouts_round_up_to_the_smallest_limit_never_to_no_limit(chats: ScratchDB, tiny: float) -> None:
    sql, expected = SETTINGS[chats.backend]
    with audit_session(chats.url, statement_timeout=tiny, lock_timeout=tiny) as session:
        found = session.connection.exec_driver_sql(sql).one()
    assert tuple(str(v) for v in found) == expected


def test_a_statement_over_a_rounded_up_limit_is_still_abandoned(chats: ScratchDB) -> None:
    sleep = {"mariadb": "SELECT SLEEP(3)", "postgresql": "SELECT pg_sleep(3)"}[chats.backend]
    started = time.monotonic()
    with audit_session(chats.url, statement_timeout=1e-9) as session, pytest.raises(sa.exc.DBAPIError):
        session.connection.exec_driver_sql(sleep).all()
    assert time.monotonic() - started < 2.5


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf")])
def test_a_lock_timeout_that_is_not_a_positive_number_is_an_input_error(chats: ScratchDB, bad: float) -> None:
    with pytest.raises(DbauditError, match="lock timeout must be a positive number"):
        take_snapshot(chats.url, lock_timeout=bad)


def test_limits_changed_by_code_a_metric_reached_are_set_again(chats: ScratchDB) -> None:
    change = {"mariadb": ["SET SESSION max_statement_time = 0", "SET SESSION lock_wait_timeout = 31536000"],
              "postgresql": ["SELECT set_config('statement_timeout', '0', false)",
                             "SELECT set_config('search_path', 'public', true)"]}[chats.backend]
    read = {"mariadb": "SELECT @@SESSION.max_statement_time, @@SESSION.lock_wait_timeout",
            "postgresql": "SELECT current_setting('statement_timeout'), current_setting('search_path')"}[chats.backend]
    expected = {"mariadb": ("5.0", "7"), "postgresql": ("5s", 'pg_catalog, "public", pg_temp')}[chats.backend]
    with audit_session(chats.url, statement_timeout=5, lock_timeout=7) as session:
        for statement in change:
            session.connection.exec_driver_sql(statement)
        session.reassert()
        assert tuple(str(v) for v in session.connection.exec_driver_sql(read).one()) == expected
