"""An attacker's pass over restore-check's speed work on MariaDB (ScanAhead, early readings): each test is a dump
that should fail (or send nothing it refuses) and, when it does not, shows the hole.

The schedules are made deterministic where the bug is a race the real load can also take: the reader is
allowed to catch up after every statement (`readers_keep_up`), which is one of the orders the threads may run in.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest
import sqlalchemy as sa
from restore_helpers import databases as _databases
from restore_helpers import drop_databases as _drop
from restore_helpers import new_name as _new_name
from restore_helpers import private_state  # noqa: F401  (an autouse fixture)

from conftest import MARIADB_URL
from dbaudit.backups import restore_proof
from dbaudit.backups.restore import RestoreCheck, restore_check
from dbaudit.live.inspect import take_snapshot


@pytest.fixture
def readers_keep_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """After each statement the load ran, wait (up to 20 s) until every table handed over so far has its early
    reading: the reader is as fast as it can be, one of the schedules the threads may take."""
    real = restore_proof.EarlyProof.executed

    def executed(self: restore_proof.EarlyProof, touch: tuple[int, int], conn: pymysql.connections.Connection) -> None:
        real(self, touch, conn)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with self._lock:
                have = {r.key for r in self._readings.values()}
            if set(self._handed) <= have or self._stop.is_set():
                return
            time.sleep(0.02)

    monkeypatch.setattr(restore_proof.EarlyProof, "executed", executed)


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every statement the load sends to the server, in order (a spy on the load's cursor)."""
    texts: list[bytes] = []
    real = pymysql.cursors.SSCursor.execute

    def execute(self: pymysql.cursors.SSCursor, query: object, args: object = None) -> int:
        texts.append(query if isinstance(query, bytes) else str(query).encode())
        return real(self, query, args)  # type: ignore[arg-type]

    monkeypatch.setattr(pymysql.cursors.SSCursor, "execute", execute)
    return texts


@pytest.fixture
def source_db(mariadb_server: sa.Engine) -> Iterator[str]:
    name = _new_name("src")
    with mariadb_server.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{name}`")
    try:
        yield name
    finally:
        _drop(mariadb_server, name)


def _source(server: sa.Engine, db: str, *statements: str) -> None:
    with server.connect() as conn:
        for sql in statements:
            conn.exec_driver_sql(sql.replace("{db}", db))


# --- the content proof: an early reading made stale by a statement read as touching another table ----------------


def test_an_insert_through_a_merge_table_differing_in_case_from_a_plain_table_invalidates_its_member(
    mariadb_server: sa.Engine, source_db: str, tmp_path: Path, readers_keep_up: None
) -> None:
    """`A` (MERGE over x) shares restore_touch's key with the plain table `a`; after CREATE TABLE `A` the loader
    reads the engine with `TABLE_NAME = 'a'` (the lower-cased key), which information_schema compares
    case-sensitively on lower_case_table_names=0: it sees only `a`, so `INSERT INTO A` counts as touching `a`
    alone while it writes into x, whose early reading (the source's rows) is kept. `A` is then replaced by the
    source's own `A`: every count and fingerprint restore-check reports equals the source's, x holds a row more."""
    _source(mariadb_server, source_db, "CREATE TABLE `{db}`.x (id int primary key) ENGINE=MyISAM",
            "INSERT INTO `{db}`.x VALUES (1),(2),(3)", "CREATE TABLE `{db}`.a (id int primary key) ENGINE=InnoDB",
            "INSERT INTO `{db}`.a VALUES (1)", "CREATE TABLE `{db}`.`A` (`666` int primary key) ENGINE=InnoDB",
            "INSERT INTO `{db}`.`A` VALUES (666)")
    snapshot = take_snapshot(f"{MARIADB_URL}/{source_db}", fingerprint="table")
    dump = tmp_path / "merge.sql"
    dump.write_text("CREATE TABLE x (id int primary key) ENGINE=MyISAM;\nINSERT INTO x VALUES (1),(2),(3);\n"
                    "CREATE TABLE a (id int primary key) ENGINE=InnoDB;\nINSERT INTO a VALUES (1);\n"
                    "CREATE TABLE `A` (id int primary key) ENGINE=MERGE UNION=(x) INSERT_METHOD=LAST;\n"
                    "INSERT INTO `A` VALUES (666);\nDROP TABLE `A`;\n"
                    # the source's `A`, its one row made without an INSERT (the dump's row counts stay right)
                    "CREATE TABLE `A` (`666` int primary key) ENGINE=InnoDB VALUES (666);\n")
    scratch = _new_name("rst")
    try:
        result = restore_check(dump, f"{MARIADB_URL}/{source_db}", scratch=scratch, against=snapshot, keep=True)
        with mariadb_server.connect() as conn:
            actual = conn.exec_driver_sql(f"SELECT COUNT(*) FROM `{scratch}`.x").scalar()
        assert actual == 4  # the restored x really holds the extra row
        assert result.restored is None or result.restored.tables["x"].row_count == actual, \
            "the result reports x as read before the INSERT through `A` wrote into it"
        assert result.verdict == "fail", ("restored content differs from the source, yet restore-check passes",
                                          [c.message for c in result.failed_checks])
    finally:
        _drop(mariadb_server, scratch)


# --- the scan running ahead: what reaches the server before the whole-dump verdict ------------------------------


def test_a_statement_naming_another_database_in_a_dump_without_a_header_is_never_sent(
    mariadb_server: sa.Engine, tmp_path: Path, sent: list[bytes]
) -> None:
    """Per statement, the scanner refuses another database's name only once the dump's own database is known (its
    header's `Database:` or a CREATE DATABASE / USE before it); a dump with neither has its qualified names judged
    at the scan's end, after ScanAhead has sent them as the temporary account (only its grants stop it). The serial
    path refused such a dump before anything was created."""
    victim, scratch = _new_name("victim"), _new_name("rst")
    dump = tmp_path / "other.sql"
    dump.write_text(f"CREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\nINSERT INTO `{victim}`.t VALUES (2);\n"
                    "INSERT INTO t VALUES (3);\n")
    try:
        with pytest.raises(Exception, match="other database"):
            restore_check(dump, MARIADB_URL, scratch=scratch)
        assert not [s for s in sent if victim.encode() in s], "a statement naming another database was sent"
        assert scratch not in _databases(mariadb_server)
    finally:
        _drop(mariadb_server, scratch)


def test_an_insert_through_a_view_differing_in_case_from_a_plain_table_created_after_it_invalidates_the_base(
    mariadb_server: sa.Engine, source_db: str, tmp_path: Path, readers_keep_up: None
) -> None:
    """The same hole with InnoDB only: the view `A` over x exists first, then CREATE TABLE a makes the loader read
    `TABLE_NAME = 'a'` (case-sensitive: only the new table), so key `a` counts as plain and `INSERT INTO A`, which
    writes x through the view, leaves x's early reading standing."""
    _source(mariadb_server, source_db, "CREATE TABLE `{db}`.x (id int primary key)", "INSERT INTO `{db}`.x VALUES (1),(2),(3)",
            "CREATE TABLE `{db}`.a (id int primary key)", "CREATE TABLE `{db}`.b (id int primary key)",
            "INSERT INTO `{db}`.b VALUES (1)", "CREATE VIEW `{db}`.`A` AS SELECT id FROM `{db}`.x")
    snapshot = take_snapshot(f"{MARIADB_URL}/{source_db}", fingerprint="table")
    dump = tmp_path / "view.sql"
    dump.write_text("CREATE TABLE x (id int primary key);\nINSERT INTO x VALUES (1),(2),(3);\n"
                    "CREATE TABLE b (id int primary key);\nINSERT INTO b VALUES (1);\n"
                    "CREATE VIEW `A` AS SELECT id FROM x;\nCREATE TABLE a (id int primary key);\n"
                    "INSERT INTO `A` VALUES (666);\n")
    scratch = _new_name("rst")
    try:
        result = restore_check(dump, f"{MARIADB_URL}/{source_db}", scratch=scratch, against=snapshot, keep=True)
        with mariadb_server.connect() as conn:
            actual = conn.exec_driver_sql(f"SELECT COUNT(*) FROM `{scratch}`.x").scalar()
        assert actual == 4
        assert result.restored is None or result.restored.tables["x"].row_count == actual, \
            "the result reports x as read before the INSERT through the view `A` wrote into it"
        assert result.verdict == "fail", ("restored content differs from the source, yet restore-check passes",
                                          [c.message for c in result.failed_checks])
    finally:
        _drop(mariadb_server, scratch)


def test_a_temporary_merge_table_shadowing_a_plain_table_is_refused_before_anything_is_sent(
    mariadb_server: sa.Engine, source_db: str, tmp_path: Path, readers_keep_up: None, sent: list[bytes]
) -> None:
    """No case trick: a TEMPORARY MERGE table `a` over x, created first (the EVERYTHING it counts as comes before
    any reading), shadows the plain base table `a` created later. information_schema (10.11) lists no temporary
    table, so `a` reads as plain and `INSERT INTO a` counts as touching `a` alone, while the server writes it into
    x. The temporary table ends with the load's session: nothing of it is left to see. No dump tool writes a
    temporary table: restore-check refuses it (restore safety), and nothing of the dump is sent."""
    _source(mariadb_server, source_db, "CREATE TABLE `{db}`.x (id int primary key) ENGINE=MyISAM",
            "INSERT INTO `{db}`.x VALUES (1),(2),(3)", "CREATE TABLE `{db}`.a (`666` int primary key) ENGINE=InnoDB",
            "INSERT INTO `{db}`.a VALUES (666)")
    snapshot = take_snapshot(f"{MARIADB_URL}/{source_db}", fingerprint="table")
    dump = tmp_path / "temporary.sql"
    dump.write_text("CREATE TEMPORARY TABLE a (id int primary key) ENGINE=MERGE UNION=(x) INSERT_METHOD=LAST;\n"
                    "CREATE TABLE x (id int primary key) ENGINE=MyISAM;\nINSERT INTO x VALUES (1),(2),(3);\n"
                    "CREATE TABLE a (`666` int primary key) ENGINE=InnoDB VALUES (666);\n"
                    "INSERT INTO a VALUES (666);\n")
    scratch = _new_name("rst")
    try:
        result = restore_check(dump, f"{MARIADB_URL}/{source_db}", scratch=scratch, against=snapshot, keep=True)
        _assert_temporary_refused(result, sent)
    finally:
        _drop(mariadb_server, scratch)


def test_the_temporary_merge_attack_is_refused_on_the_natural_schedule_too(
    mariadb_server: sa.Engine, source_db: str, tmp_path: Path, sent: list[bytes]
) -> None:
    """The same dump with 100,000 rows of a table b (in the source too) between x and the INSERT through the
    temporary `a`: the reader has read x long before, with no hook at all (5 of 5 runs passed when found). Refused
    as the first statement: nothing of the dump is sent."""
    _source(mariadb_server, source_db, "CREATE TABLE `{db}`.x (id int primary key) ENGINE=MyISAM",
            "INSERT INTO `{db}`.x VALUES (1),(2),(3)", "CREATE TABLE `{db}`.a (`666` int primary key) ENGINE=InnoDB",
            "INSERT INTO `{db}`.a VALUES (666)", "CREATE TABLE `{db}`.b (id int primary key)",
            "INSERT INTO `{db}`.b SELECT seq FROM `{db}`.seq_1_to_100000")
    snapshot = take_snapshot(f"{MARIADB_URL}/{source_db}", fingerprint="table")
    rows = "".join("INSERT INTO b VALUES " + ",".join(f"({i})" for i in range(k * 20000 + 1, (k + 1) * 20000 + 1))
                   + ";\n" for k in range(5))
    dump = tmp_path / "temporary.sql"
    dump.write_text("CREATE TEMPORARY TABLE a (id int primary key) ENGINE=MERGE UNION=(x) INSERT_METHOD=LAST;\n"
                    "CREATE TABLE x (id int primary key) ENGINE=MyISAM;\nINSERT INTO x VALUES (1),(2),(3);\n"
                    "CREATE TABLE a (`666` int primary key) ENGINE=InnoDB VALUES (666);\n"
                    f"CREATE TABLE b (id int primary key);\n{rows}INSERT INTO a VALUES (666);\n")
    scratch = _new_name("rst")
    try:
        result = restore_check(dump, f"{MARIADB_URL}/{source_db}", scratch=scratch, against=snapshot, keep=True)
        _assert_temporary_refused(result, sent)
    finally:
        _drop(mariadb_server, scratch)


def _assert_temporary_refused(result: RestoreCheck, sent: list[bytes]) -> None:
    checks = result.failed_checks
    assert result.verdict == "fail" and checks and checks[0].name == "restore safety", [c.message for c in checks]
    assert checks[0].message.startswith("not restored:") and "TEMPORARY" in checks[0].message
    assert not [s for s in sent if s.lstrip().upper().startswith((b"CREATE", b"INSERT"))], \
        "a statement of the refused dump was sent"
