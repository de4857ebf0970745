"""restore-check's speed work (issue #15) kept exact and safe: tables proven while the rest loads give the same
fingerprints as a reading after the load, statements that touch a table again invalidate its early reading, and the
scan running ahead of the load never hands over a statement it would refuse.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from restore_helpers import databases as _databases
from restore_helpers import drop_databases as _drop
from restore_helpers import new_name as _new_name
from restore_helpers import private_state  # noqa: F401  (an autouse fixture)

from conftest import MARIADB_URL, dump_database
from dbaudit.backups import restore_proof
from dbaudit.backups.restore import restore_check
from dbaudit.backups.restore_touch import CANDIDATE, CREATED, EVERYTHING, NOTHING, REFRESH, Touches
from dbaudit.live.inspect import take_snapshot

# --- which tables a statement may change (no server) ------------------------------------------------------------


@pytest.mark.parametrize(("kind", "text", "expected"), [
    ("insert", b"INSERT INTO `a` VALUES (1,'x'),(2,'y')", ("a", CANDIDATE)),
    ("insert", b"INSERT IGNORE INTO A (`id`, v) VALUES (1,'x')", ("a", CANDIDATE)),
    ("table", b"CREATE TABLE `a` (id int primary key) ENGINE=InnoDB", ("a", CREATED)),
    ("drop_table", b"DROP TABLE IF EXISTS `a`", ("a", 0)),
    ("set", b"/*!40101 SET NAMES utf8mb4 */", (NOTHING, 0)),
    ("set", b"/*M!100616 SET @OLD_NOTE_VERBOSITY=@@NOTE_VERBOSITY, NOTE_VERBOSITY=0 */", (NOTHING, 0)),
    ("disable_keys", b"/*!40000 ALTER TABLE `a` DISABLE KEYS */", (NOTHING, 0)),
    ("other", b"/*!40000 ALTER TABLE `a` ENABLE KEYS */", (NOTHING, 0)),
    ("other", b"UNLOCK TABLES", (NOTHING, 16)),
    ("other", b"commit", (NOTHING, 0)),
    ("trigger", b"/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`%`*/ /*!50003 TRIGGER t BEFORE INSERT ON a "
                b"FOR EACH ROW SET NEW.v = 1 */", (NOTHING, REFRESH)),
    # Whatever may reach beyond one table, or cannot be read for sure, counts as touching every table.
    ("insert", b"INSERT INTO a VALUES (1) ON DUPLICATE KEY UPDATE v = 2", (EVERYTHING, REFRESH)),
    ("insert", b"REPLACE INTO a VALUES (1)", (EVERYTHING, REFRESH)),
    ("insert", b"INSERT INTO a SELECT * FROM b", (EVERYTHING, REFRESH)),
    ("insert", b"INSERT INTO other.a VALUES (1)", (EVERYTHING, REFRESH)),
    ("insert", b"INSERT INTO a /*!99999 , b */ VALUES (1)", (EVERYTHING, REFRESH)),
    ("insert", b"INSERT INTO a (v /* ) VALUES ( */) SELECT 1", (EVERYTHING, REFRESH)),
    ("table", b"CREATE TABLE a (id int) SELECT 1 AS id", (EVERYTHING, REFRESH)),
    ("set", b"SET @x = f()", (EVERYTHING, REFRESH)),
    ("set", b"SET STATEMENT max_statement_time=1 FOR DELETE FROM a", (EVERYTHING, REFRESH)),
    ("other", b"UPDATE a SET v = 1", (EVERYTHING, REFRESH)),
    ("other", b"ALTER TABLE a ADD COLUMN w int", (EVERYTHING, REFRESH)),
    ("other", b"RENAME TABLE a TO b", (EVERYTHING, REFRESH)),
    ("view", b"/*!99999 CREATE VIEW v AS SELECT 1 */ /*M!100100 x */", (EVERYTHING, REFRESH)),
])
def test_each_statement_changes_one_table_none_or_every_table(kind: str, text: bytes,
                                                               expected: tuple[str | int, int]) -> None:
    touches = Touches(mariadb=True)
    index, flags = touches.classify(kind, text)
    assert (touches.names[index] if index >= 0 else index, flags) == expected


# --- early readings on the server --------------------------------------------------------------------------------


@pytest.fixture
def two_tables(mariadb_server: sa.Engine, tmp_path: Path) -> tuple[str, Path]:
    """A source with tables a (3,000 rows) and b (2,000 rows), and its dump with a row of `a` inserted after b's
    rows (as a hand-edited or merged dump may do): (source, dump)."""
    source = _new_name("src")
    with mariadb_server.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{source}`")
        for name, rows in (("a", 3000), ("b", 2000)):
            conn.exec_driver_sql(f"CREATE TABLE `{source}`.{name} (id int primary key, v varchar(20))")
            conn.exec_driver_sql(f"INSERT INTO `{source}`.{name} SELECT seq, CONCAT('v', seq) "
                                 f"FROM `{source}`.seq_1_to_{rows}")
    try:
        dump = dump_database(source, tmp_path / f"{source}.sql")
        with mariadb_server.connect() as conn:
            conn.exec_driver_sql(f"INSERT INTO `{source}`.a VALUES (9999, 'late')")
        text = dump.read_text()
        at = text.index("-- Dump completed")
        dump.write_text(f"{text[:at]}INSERT INTO `a` VALUES (9999,'late');\n{text[at:]}")
        yield source, dump  # type: ignore[misc]
    finally:
        _drop(mariadb_server, source)


def test_a_late_insert_into_an_earlier_table_is_read_again_and_the_content_proof_holds(
    two_tables: tuple[str, Path], mariadb_server: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, dump = two_tables
    snapshot = take_snapshot(f"{MARIADB_URL}/{source}", fingerprint="chunks")
    early: list[list[str]] = []
    real_finish = restore_proof.EarlyProof.finish

    def finish(self: restore_proof.EarlyProof) -> object:
        deadline = time.monotonic() + 20
        while "a" not in self._readings and time.monotonic() < deadline:  # the reader has a's early reading
            time.sleep(0.05)
        early.append(sorted(name for name, r in list(self._readings.items()) if not self._holds(r)))  # invalidated
        return real_finish(self)

    monkeypatch.setattr(restore_proof.EarlyProof, "finish", finish)
    scratch = _new_name("rst")

    result = restore_check(dump, f"{MARIADB_URL}/{source}", scratch=scratch, against=snapshot, keep=True)
    try:
        assert result.verdict == "pass", [c.message for c in result.failed_checks]
        assert early == [["a"]], early  # a was read early, and that reading no longer holds after its late row
        assert result.restored is not None
        after = take_snapshot(f"{MARIADB_URL}/{scratch}", fingerprint="chunks")
        for name in ("a", "b"):
            restored, reread = result.restored.tables[name], after.tables[name]
            assert (restored.row_count, restored.fingerprint, restored.chunks) == (
                reread.row_count, reread.fingerprint, reread.chunks) == (
                snapshot.tables[name].row_count, snapshot.tables[name].fingerprint, snapshot.tables[name].chunks)
        assert result.restored.tables["a"].row_count == 3001
    finally:
        _drop(mariadb_server, scratch)


def test_a_late_insert_the_source_does_not_hold_fails_naming_the_table_and_its_key_range(
    two_tables: tuple[str, Path], mariadb_server: sa.Engine
) -> None:
    source, dump = two_tables
    with mariadb_server.connect() as conn:
        conn.exec_driver_sql(f"UPDATE `{source}`.a SET v = 'other' WHERE id = 9999")  # the source moved on
    snapshot = take_snapshot(f"{MARIADB_URL}/{source}", fingerprint="chunks")
    scratch = _new_name("rst")

    result = restore_check(dump, f"{MARIADB_URL}/{source}", scratch=scratch, against=snapshot)

    messages = [c.message for c in result.failed_checks]
    assert result.verdict == "fail" and len(messages) == 1, messages
    assert messages[0].startswith("content of a changed in 1 chunk(s): id ") and "late" not in messages[0]
    low, high = (int(x) for x in messages[0].rsplit(" ", 1)[1].split(".."))
    assert low <= 9999 <= high
    assert scratch not in _databases(mariadb_server)


def test_restored_tables_read_early_and_after_the_load_equal_a_snapshot_of_the_kept_database(
    shared_data: Path, mariadb_server: sa.Engine
) -> None:
    scratch = _new_name("rst")
    for mode in ("table", "chunks"):
        result = restore_check(shared_data / "world" / "world.sql", MARIADB_URL, scratch=scratch, keep=True,
                               fingerprint=mode)  # type: ignore[arg-type]
        try:
            assert result.verdict == "pass" and result.restored is not None, [c.message for c in result.failed_checks]
            after = take_snapshot(f"{MARIADB_URL}/{scratch}", fingerprint=mode)  # type: ignore[arg-type]
            assert {n: (t.row_count, t.fingerprint, t.chunking, t.chunks) for n, t in result.restored.tables.items()} \
                == {n: (t.row_count, t.fingerprint, t.chunking, t.chunks) for n, t in after.tables.items()}
        finally:
            _drop(mariadb_server, scratch)


# --- the scan running ahead of the load --------------------------------------------------------------------------


@pytest.mark.parametrize("late", [
    "CREATE USER '{user}'@'%' IDENTIFIED BY 'x'",
    "GRANT SELECT ON *.* TO '{user}'@'%' IDENTIFIED BY 'x'",
    "\\! touch {canary}",
])
def test_a_refused_statement_late_in_a_dump_sends_nothing_of_it_and_leaves_nothing(
    late: str, tmp_path: Path, mariadb_server: sa.Engine
) -> None:
    user, canary, scratch = _new_name("evil"), tmp_path / "canary", _new_name("rst")
    dump = tmp_path / "late.sql"
    rows = ",".join(f"({i},'{'x' * 40}')" for i in range(1, 5001))
    body = "".join(f"INSERT INTO t{n} VALUES {rows};\n" for n in range(8))
    tables = "".join(f"CREATE TABLE t{n} (id int primary key, v varchar(40));\n" for n in range(8))
    dump.write_text(f"{tables}{body}{late.format(user=user, canary=canary)};\nCREATE TABLE after_it (id int);\n")
    try:
        result = restore_check(dump, MARIADB_URL, scratch=scratch)

        assert result.verdict == "fail" and result.restored is None and result.account == ""
        assert result.failed_checks[0].name == "restore safety" and result.restore_seconds == 0.0
        assert result.failed_checks[0].message.startswith("not restored:")
        assert not canary.exists()
        assert scratch not in _databases(mariadb_server)
        with mariadb_server.connect() as conn:
            assert conn.exec_driver_sql("SELECT COUNT(*) FROM mysql.user WHERE User = %s", (user,)).scalar() == 0
    finally:
        with mariadb_server.connect() as conn:
            conn.exec_driver_sql(f"DROP USER IF EXISTS '{user}'@'%%'")
        _drop(mariadb_server, scratch)


def test_a_dump_truncated_after_its_first_tables_fails_complete_and_leaves_nothing(
    tmp_path: Path, mariadb_server: sa.Engine
) -> None:
    scratch = _new_name("rst")
    dump = tmp_path / "cut.sql"
    dump.write_text("-- MariaDB dump 10.19  Distrib 10.11.6-MariaDB\nCREATE TABLE t (id int);\n"
                    "INSERT INTO t VALUES (1),(2);\nINSERT INTO t VALUES (3),(")

    result = restore_check(dump, MARIADB_URL, scratch=scratch)

    assert result.verdict == "fail" and result.restored is None
    assert result.failed_checks[0].name == "complete" and "truncated" in result.failed_checks[0].message
    assert scratch not in _databases(mariadb_server)


# --- the snapshot's reuse of early readings, and the shared TLS context ------------------------------------------


def test_an_earlier_reading_is_used_only_while_the_tables_columns_and_key_are_the_same(
    mariadb_server: sa.Engine,
) -> None:
    db = _new_name("src")
    url = f"{MARIADB_URL}/{db}"
    with mariadb_server.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{db}`")
        conn.exec_driver_sql(f"CREATE TABLE `{db}`.t (id int primary key, v int)")
        conn.exec_driver_sql(f"CREATE TABLE `{db}`.u (id int primary key, v int)")
        conn.exec_driver_sql(f"INSERT INTO `{db}`.t VALUES (1, 1), (2, 2)")
        conn.exec_driver_sql(f"INSERT INTO `{db}`.u VALUES (1, 1)")
    try:
        earlier = take_snapshot(url, fingerprint="table")
        stale_t, stale_u = earlier.tables["t"], earlier.tables["u"]
        stale_t.row_count, stale_t.fingerprint = 7, "c2/sha256:7:1"  # what a stale reading would say
        stale_u.row_count, stale_u.fingerprint = 9, "c2/sha256:9:1"
        with mariadb_server.connect() as conn:
            conn.exec_driver_sql(f"ALTER TABLE `{db}`.u MODIFY v bigint")  # u's columns changed since

        now = take_snapshot(url, fingerprint="table", known={"t": stale_t, "u": stale_u})
        fresh = take_snapshot(url, fingerprint="table")

        assert (now.tables["t"].row_count, now.tables["t"].fingerprint) == (7, "c2/sha256:7:1")  # reused as given
        assert (now.tables["u"].row_count, now.tables["u"].fingerprint) == (
            fresh.tables["u"].row_count, fresh.tables["u"].fingerprint) == (1, fresh.tables["u"].fingerprint)
    finally:
        _drop(mariadb_server, db)


def test_connections_without_tls_options_share_one_preferred_context_and_explicit_options_get_their_own() -> None:
    import pymysql

    from dbaudit.live.tls import share_preferred_context

    share_preferred_context()
    share_preferred_context()  # idempotent
    first = pymysql.connections.Connection(host="127.0.0.1", user="nobody", defer_connect=True)
    second = pymysql.connections.Connection(host="127.0.0.1", user="nobody", defer_connect=True)
    explicit = pymysql.connections.Connection(host="127.0.0.1", user="nobody", defer_connect=True,
                                              ssl_verify_cert=False, ssl_ca=None, ssl_verify_identity=True)
    assert first.ctx is second.ctx and first.ssl and not first._ssl_required
    assert explicit.ctx is not first.ctx and explicit._ssl_required


class _Conflicted:
    """A connection whose first statement meets a deadlock (what an early reader's lock can cause), then runs."""

    def __init__(self, in_transaction: bool) -> None:
        from pymysql.constants import SERVER_STATUS

        self.sent: list[bytes] = []
        self.server_status = SERVER_STATUS.SERVER_STATUS_IN_TRANS if in_transaction else 0

    def cursor(self, *args: object) -> _Conflicted:
        return self

    def execute(self, text: bytes) -> None:
        import pymysql

        self.sent.append(text)
        if len(self.sent) == 1:
            raise pymysql.err.OperationalError(1213, "Deadlock found when trying to get lock")

    def close(self) -> None:
        pass


class _Readers:
    def __init__(self) -> None:
        self.asked = 0

    def executed(self, touch: object, conn: object) -> None:
        pass

    def step_aside(self) -> bool:
        self.asked += 1
        return True


@pytest.mark.parametrize("in_transaction", [False, True])
def test_a_statement_meeting_a_deadlock_runs_again_after_the_readers_step_aside_unless_a_transaction_is_open(
    in_transaction: bool,
) -> None:
    from dbaudit.backups.restore_load import Loaded, _run

    conn, readers, loaded = _Conflicted(in_transaction), _Readers(), Loaded(0.0, 0)
    statement = b"/*!40000 ALTER TABLE `chats` ENABLE KEYS */"

    error = _run(conn, iter([(0, 0, (NOTHING, 0), statement)]), "s", "10.11.6-MariaDB", True, loaded,  # type: ignore[arg-type]
                 lambda: False, readers)

    if in_transaction:  # the deadlock rolled the transaction back: running it again would not be the dump
        assert error is not None and "Deadlock" in error and conn.sent == [statement] and readers.asked == 0
    else:
        assert error is None and conn.sent == [statement, statement] and readers.asked == 1 and loaded.statements == 1
