"""restore-check under attack (issue #9 classes 1, 3, 7): no client program, reads as the temporary account,
restores that end, and nothing left behind even after kill -9. Canaries: files and accounts the dump must not touch.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from restore_helpers import databases as _databases
from restore_helpers import drop_databases as _drop
from restore_helpers import new_name as _new_name
from restore_helpers import private_state  # noqa: F401  (an autouse fixture)

from conftest import MARIADB_URL, ROOT, dump_database
from dbaudit.backups.restore import restore_check
from dbaudit.backups.restore_events import disabled_event
from dbaudit.core.snapshot import Metric
from dbaudit.live.inspect import take_snapshot

DBAUDIT = str(ROOT / ".venv" / "bin" / "dbaudit")
SOCKET = Path("/run/mysqld/mysqld.sock")


def _account_exists(server: sa.Engine, user: str) -> bool:
    with server.connect() as conn:
        return bool(conn.exec_driver_sql("SELECT COUNT(*) FROM mysql.user WHERE User = %s", (user,)).scalar())


# --- class 1: nothing on the client host can be run ----------------------------------------------------------------


@pytest.mark.parametrize("command", ["\\! touch {canary}", "\\! touch {canary} */ /*!", "system touch {canary}"])
def test_a_shell_command_in_an_executable_comment_runs_nothing_and_fails_restore_safety(
    command: str, tmp_path: Path, mariadb_server: sa.Engine
) -> None:
    canary = tmp_path / "canary"
    dump = tmp_path / "hostile.sql"
    dump.write_text(f"CREATE TABLE t (id int);\n/*!50000 {command.format(canary=canary)} */;\nINSERT INTO t VALUES (1);\n")
    scratch = _new_name("rst")

    result = restore_check(dump, MARIADB_URL, scratch=scratch)

    assert not canary.exists()
    assert result.verdict == "fail", result.checks
    if command.startswith("\\"):  # the scanner refuses it; `system` there is no client command, the server refuses it
        assert result.failed_checks[0].name == "restore safety", result.checks
    assert scratch not in _databases(mariadb_server)


def test_the_users_own_option_file_with_a_password_and_a_pager_does_not_matter(
    tmp_path: Path, shared_data: Path, mariadb_server: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, canary = tmp_path / "home", tmp_path / "canary"
    home.mkdir()
    (home / ".my.cnf").write_text(f"[client]\nuser=nobody\npassword=wrong\nhost=192.0.2.1\n"
                                  f"[mysql]\npager=touch {canary}\ninit-command=DO SLEEP(100)\n")
    monkeypatch.setenv("HOME", str(home))
    scratch = _new_name("rst")

    result = restore_check(shared_data / "world" / "world.sql", MARIADB_URL, scratch=scratch)

    assert result.verdict == "pass", [c.message for c in result.failed_checks]
    assert not canary.exists() and scratch not in _databases(mariadb_server)


@pytest.mark.skipif(not SOCKET.exists(), reason="no MariaDB socket at /run/mysqld/mysqld.sock")
def test_a_socket_url_restores_as_the_temporary_account(shared_data: Path, mariadb_server: sa.Engine) -> None:
    scratch = _new_name("rst")

    result = restore_check(shared_data / "world" / "world.sql", f"mysql+pymysql://root@localhost/?unix_socket={SOCKET}",
                           scratch=scratch)

    assert result.verdict == "pass", [c.message for c in result.failed_checks]
    assert result.account.startswith("'dbaudit_restore_") and result.account.endswith("@'localhost'")
    assert not _account_exists(mariadb_server, result.account.split("'")[1])


# --- class 3: what runs after the restore runs as the temporary account, read-only ---------------------------------


def test_post_restore_metrics_run_as_the_temporary_account_through_the_dumps_invoker_functions(
    tmp_path: Path, mariadb_server: sa.Engine
) -> None:
    source, scratch = _new_name("src"), _new_name("rst")
    with mariadb_server.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{source}`")
        conn.exec_driver_sql(f"CREATE TABLE `{source}`.t (id int primary key)")
        conn.exec_driver_sql(f"CREATE FUNCTION `{source}`.who() RETURNS varchar(200) SQL SECURITY INVOKER "
                             "RETURN CURRENT_USER()")
        conn.exec_driver_sql(f"CREATE FUNCTION `{source}`.grow() RETURNS int SQL SECURITY INVOKER "
                             "BEGIN INSERT INTO t VALUES (7); RETURN 1; END")
    try:
        dump = dump_database(source, tmp_path / "src.sql")
        snapshot = take_snapshot(f"{MARIADB_URL}/{source}")
        rights = ("SELECT GROUP_CONCAT(PRIVILEGE_TYPE ORDER BY PRIVILEGE_TYPE) FROM information_schema.SCHEMA_PRIVILEGES "
                  "WHERE GRANTEE LIKE '%dbaudit_restore_%'")
        snapshot.metrics = {"who": Metric("who", "SELECT who()", "x"), "grow": Metric("grow", "SELECT grow()", 1),
                            "rights": Metric("rights", rights, "")}

        result = restore_check(dump, f"{MARIADB_URL}/{source}", scratch=scratch, against=snapshot)

        assert result.restored is not None
        metrics = result.restored.metrics
        assert str(metrics["who"].value).startswith("dbaudit_restore_"), metrics
        assert metrics["grow"].error and "READ ONLY" in metrics["grow"].error, metrics["grow"]
        assert metrics["rights"].value == "EXECUTE,SELECT,SHOW VIEW,TRIGGER"  # its writes revoked for the reads
        assert result.restored.tables["t"].row_count == 0
    finally:
        _drop(mariadb_server, source, scratch)


# --- class 7: restores end ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("sleeper", ["SELECT SLEEP(1e6)", "DO SLEEP(1000000)", "SET max_statement_time = 0; DO SLEEP(1e6)",
                                     "DO SLEEP(1.6); DO SLEEP(1.6)", "SELECT BENCHMARK(1e12, SHA2('x', 512))"])
def test_a_dump_that_sleeps_ends_at_the_restore_timeout_with_a_clear_fail_and_nothing_left(
    sleeper: str, tmp_path: Path, mariadb_server: sa.Engine
) -> None:
    dump = tmp_path / "sleep.sql"
    dump.write_text(f"CREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\n{sleeper};\n")
    scratch = _new_name("rst")
    started = time.monotonic()

    result = restore_check(dump, MARIADB_URL, scratch=scratch, timeout=2)

    assert time.monotonic() - started < 30
    assert result.verdict == "fail"
    assert "--restore-timeout after 2 s" in result.failed_checks[0].message, result.failed_checks
    assert scratch not in _databases(mariadb_server)
    assert not _account_exists(mariadb_server, result.account.split("'")[1])


@pytest.mark.parametrize("statement", [
    "XA START 'dbaudit_t_xa'", "XA RECOVER",
    "CREATE TABLE far (id int) DATA DIRECTORY = '/tmp'",
    "CREATE TABLE far2 (id int) ENGINE=MyISAM INDEX DIRECTORY='/tmp'",
    "CREATE TABLE far3 (id int) ENGINE=FEDERATED CONNECTION='mysql://u@192.0.2.1/db/t'",
    "CREATE TABLE far4 (id int) ENGINE CONNECT TABLE_TYPE=CSV FILE_NAME='/etc/passwd'",
])
def test_xa_data_directory_and_remote_engines_are_refused_and_nothing_is_left(
    statement: str, tmp_path: Path, mariadb_server: sa.Engine
) -> None:
    dump = tmp_path / "far.sql"
    dump.write_text(f"CREATE TABLE t (id int);\n{statement};\nINSERT INTO t VALUES (1);\n")
    scratch = _new_name("rst")

    result = restore_check(dump, MARIADB_URL, scratch=scratch)

    assert result.verdict == "fail" and result.restore_seconds == 0.0 and result.account == ""
    assert result.failed_checks[0].name == "restore safety"
    expected = "XA" if statement.startswith("XA") else "DIRECTORY" if "DIRECTORY" in statement else "remote or file"
    assert expected in result.failed_checks[0].message
    assert scratch not in _databases(mariadb_server)


def _start_sleeping_restore(tmp_path: Path, scratch: str, state: Path) -> subprocess.Popen[str]:
    dump = tmp_path / "slow.sql"
    dump.write_text("CREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\nDO SLEEP(600);\n")
    env = {**os.environ, "XDG_STATE_HOME": str(state)}
    return subprocess.Popen([DBAUDIT, "restore-check", str(dump), "--server", MARIADB_URL, "--scratch", scratch],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for(condition: object, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.05)
    assert condition(), "timed out waiting"  # type: ignore[operator]


def _journal_entries(state: Path) -> list[dict[str, object]]:
    return [json.loads(p.read_text()) for p in (state / "dbaudit" / "restore").glob("*.json")]


def test_after_kill_9_the_next_run_drops_the_account_and_scratch_database_the_dead_run_left(
    tmp_path: Path, shared_data: Path, mariadb_server: sa.Engine, private_state: Path,  # noqa: F811
) -> None:
    scratch, other = _new_name("rst"), _new_name("rst")
    proc = _start_sleeping_restore(tmp_path, scratch, private_state)
    try:
        _wait_for(lambda: scratch in _databases(mariadb_server) and any(
            e.get("scratch") == scratch for e in _journal_entries(private_state)))
        [entry] = _journal_entries(private_state)
        user = str(entry["account_user"])
        assert oct((private_state / "dbaudit" / "restore").stat().st_mode & 0o777) == "0o700"
        assert "password" not in json.dumps(entry).lower()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert scratch in _databases(mariadb_server) and _account_exists(mariadb_server, user)  # left behind

        result = restore_check(shared_data / "world" / "world.sql", MARIADB_URL, scratch=other)

        assert result.verdict == "pass", [c.message for c in result.failed_checks]
        assert scratch not in _databases(mariadb_server) and not _account_exists(mariadb_server, user)
        assert any(scratch in line for line in result.leftovers) and any(user in line for line in result.leftovers)
        assert _journal_entries(private_state) == []
    finally:
        proc.kill()
        _drop(mariadb_server, scratch, other)
        with mariadb_server.connect() as conn:
            for e in _journal_entries(private_state):
                conn.exec_driver_sql("DROP USER IF EXISTS %s@%s", (e["account_user"], e["account_host"]))


def test_a_database_named_in_a_dead_runs_journal_without_its_marker_is_left_alone(
    tmp_path: Path, shared_data: Path, mariadb_server: sa.Engine, private_state: Path,  # noqa: F811
) -> None:
    """A journal entry alone proves nothing: a database created by someone else under that name stays."""
    scratch, other = _new_name("rst"), _new_name("rst")
    proc = _start_sleeping_restore(tmp_path, scratch, private_state)
    try:
        _wait_for(lambda: scratch in _databases(mariadb_server) and any(
            e.get("scratch") == scratch for e in _journal_entries(private_state)))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        with mariadb_server.connect() as conn:  # someone else's database now has that name
            conn.exec_driver_sql(f"ALTER DATABASE `{scratch}` COMMENT 'precious'")

        result = restore_check(shared_data / "world" / "world.sql", MARIADB_URL, scratch=other)

        assert scratch in _databases(mariadb_server)
        assert any(line.startswith(f"left database {scratch}") for line in result.leftovers), result.leftovers
    finally:
        proc.kill()
        _drop(mariadb_server, scratch, other)
        with mariadb_server.connect() as conn:
            for e in _journal_entries(private_state):
                conn.exec_driver_sql("DROP USER IF EXISTS %s@%s", (e["account_user"], e["account_host"]))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_and_sigterm_during_the_restore_drop_the_scratch_database_and_the_account(
    signum: int, tmp_path: Path, mariadb_server: sa.Engine, private_state: Path,  # noqa: F811
) -> None:
    scratch = _new_name("rst")
    proc = _start_sleeping_restore(tmp_path, scratch, private_state)
    try:
        _wait_for(lambda: scratch in _databases(mariadb_server) and any(
            e.get("scratch") == scratch for e in _journal_entries(private_state)))
        [entry] = _journal_entries(private_state)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)

        said = "interrupted" if signum == signal.SIGINT else "terminated (SIGTERM)"
        assert proc.returncode == 128 + signum and err.strip() == f"dbaudit: error: {said}", err
        assert scratch not in _databases(mariadb_server)
        assert not _account_exists(mariadb_server, str(entry["account_user"]))
        assert _journal_entries(private_state) == []
    finally:
        proc.kill()
        _drop(mariadb_server, scratch)


# --- events never fire --------------------------------------------------------------------------------------------


def test_restored_events_are_disabled(tmp_path: Path, mariadb_server: sa.Engine) -> None:
    source, scratch = _new_name("src"), _new_name("rst")
    with mariadb_server.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{source}`")
        conn.exec_driver_sql(f"CREATE TABLE `{source}`.t (id int)")
        conn.exec_driver_sql(f"CREATE EVENT `{source}`.tick ON SCHEDULE EVERY 1 SECOND ENABLE "
                             f"COMMENT 'x' DO INSERT INTO `{source}`.t VALUES (1)")
        conn.exec_driver_sql(f"CREATE EVENT `{source}`.once ON SCHEDULE AT CURRENT_TIMESTAMP + INTERVAL 1 DAY "
                             f"DO INSERT INTO `{source}`.t VALUES (2)")
    try:
        dump = dump_database(source, tmp_path / "ev.sql", "--events")
        assert b"EVENT" in dump.read_bytes()

        result = restore_check(dump, f"{MARIADB_URL}/{source}", scratch=scratch, keep=True)

        assert result.verdict == "pass", [c.message for c in result.failed_checks]
        with mariadb_server.connect() as conn:
            status = dict(conn.exec_driver_sql("SELECT EVENT_NAME, STATUS FROM information_schema.EVENTS "
                                               "WHERE EVENT_SCHEMA = %s", (scratch,)).all())
        assert status == {"tick": "DISABLED", "once": "DISABLED"}
    finally:
        _drop(mariadb_server, source, scratch)


@pytest.mark.parametrize(("text", "expected"), [
    (b"CREATE EVENT e ON SCHEDULE EVERY 1 DAY ENABLE DO SELECT 1",
     b"CREATE EVENT e ON SCHEDULE EVERY 1 DAY DISABLE DO SELECT 1"),
    (b"CREATE EVENT e ON SCHEDULE EVERY 1 DAY COMMENT 'ENABLE DO' DO SELECT 'ENABLE'",
     b"CREATE EVENT e ON SCHEDULE EVERY 1 DAY DISABLE COMMENT 'ENABLE DO' DO SELECT 'ENABLE'"),
    (b"/*!50106 CREATE*/ /*!50106 EVENT `e` ON SCHEDULE AT '2030-01-01' ON COMPLETION NOT PRESERVE ENABLE DO "
     b"INSERT INTO t VALUES (1) */",
     b"/*!50106 CREATE*/ /*!50106 EVENT `e` ON SCHEDULE AT '2030-01-01' ON COMPLETION NOT PRESERVE DISABLE DO "
     b"INSERT INTO t VALUES (1) */"),
    (b"CREATE EVENT e ON SCHEDULE EVERY 1 DAY DISABLE DO SELECT 1",
     b"CREATE EVENT e ON SCHEDULE EVERY 1 DAY DISABLE DO SELECT 1"),
    (b"CREATE EVENT e ON SCHEDULE EVERY 1 DAY /*M!999999 DISABLE */ DO SELECT 1",
     b"CREATE EVENT e ON SCHEDULE EVERY 1 DAY /*M!999999 DISABLE */ DISABLE DO SELECT 1"),
    (b"ALTER EVENT e ENABLE", b"ALTER EVENT e DISABLE"),
    (b"CREATE EVENT e ON SCHEDULE EVERY 1 DAY", None),
])
def test_event_statements_are_rewritten_to_disable_the_event(text: bytes, expected: bytes | None) -> None:
    assert disabled_event(text, "10.11.6-MariaDB", mariadb=True) == expected


# --- issue #15: the restore proven by content ---------------------------------------------------------------------


@pytest.fixture
def numbered(mariadb_server: sa.Engine, tmp_path: Path) -> tuple[str, Path]:
    """A source database with a 5,000-row table (chunked by key range) and its mariadb-dump: (source, dump)."""
    source = _new_name("src")
    with mariadb_server.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{source}`")
        conn.exec_driver_sql(f"CREATE TABLE `{source}`.n (id int primary key, v varchar(20))")
        conn.exec_driver_sql(f"INSERT INTO `{source}`.n SELECT seq, CONCAT('v', seq) FROM `{source}`.seq_1_to_5000")
    try:
        yield source, dump_database(source, tmp_path / f"{source}.sql")  # type: ignore[misc]
    finally:
        _drop(mariadb_server, source)


def test_a_dump_whose_rows_differ_from_the_source_fails_naming_the_table_and_key_range(
    numbered: tuple[str, Path], mariadb_server: sa.Engine
) -> None:
    source, dump = numbered
    snapshot = take_snapshot(f"{MARIADB_URL}/{source}", fingerprint="chunks")
    text = dump.read_text()
    assert "(3000,'v3000')" in text
    dump.write_text(text.replace("(3000,'v3000')", "(3000,'v3OOO')"))  # same row count, one value changed
    scratch = _new_name("rst")

    result = restore_check(dump, f"{MARIADB_URL}/{source}", scratch=scratch, against=snapshot)

    messages = [c.message for c in result.failed_checks]
    assert result.verdict == "fail" and len(messages) == 1, messages
    assert messages[0].startswith("content of n changed in 1 chunk(s): id ") and "v3OOO" not in messages[0]
    low, high = (int(x) for x in messages[0].rsplit(" ", 1)[1].split(".."))
    assert low <= 3000 <= high and high - low < 1024
    assert scratch not in _databases(mariadb_server)


def test_fingerprint_records_the_restored_content_and_an_unchanged_dump_equals_the_source(
    numbered: tuple[str, Path], mariadb_server: sa.Engine
) -> None:
    source, dump = numbered
    snapshot = take_snapshot(f"{MARIADB_URL}/{source}", fingerprint="table")

    recorded = restore_check(dump, f"{MARIADB_URL}/{source}", scratch=_new_name("rst"), fingerprint="table")
    proven = restore_check(dump, f"{MARIADB_URL}/{source}", scratch=_new_name("rst"), against=snapshot)

    assert recorded.restored is not None and proven.restored is not None
    assert recorded.restored.tables["n"].fingerprint == snapshot.tables["n"].fingerprint
    assert proven.verdict == "pass", [c.message for c in proven.failed_checks]
    assert proven.restored.tables["n"].fingerprint == snapshot.tables["n"].fingerprint


@pytest.mark.slow
def test_employees_restores_with_content_fingerprints_equal_to_the_source(
    employees: tuple[str, Path], mariadb_server: sa.Engine
) -> None:
    source, dump = employees
    snapshot = take_snapshot(f"{MARIADB_URL}/{source}", fingerprint="chunks")
    scratch = _new_name("rst")

    result = restore_check(dump, f"{MARIADB_URL}/{source}", scratch=scratch, against=snapshot)

    assert result.verdict == "pass", [c.message for c in result.failed_checks]
    assert result.restored is not None
    for name, table in snapshot.tables.items():
        assert table.fingerprint and result.restored.tables[name].fingerprint == table.fingerprint, name
        assert result.restored.tables[name].chunks == table.chunks, name
    assert scratch not in _databases(mariadb_server)


def test_a_dump_changed_between_the_scan_and_the_load_runs_nothing_the_scan_did_not_judge(
    tmp_path: Path, mariadb_server: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # restore_into reads the dump twice (the scan, then the load reads back the byte ranges it recorded);
    # restore-check itself sends the bytes its one read judged (test_restore_early).
    from dbaudit.backups import restore
    from dbaudit.backups.restore import restore_into, scratch_restore

    dump = tmp_path / "swap.sql"
    honest = "CREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\n"
    dump.write_text(honest)
    real_load = restore.load_dump

    def swap_then_load(*args: object, **kwargs: object) -> object:
        # The same length, so every byte range still fits: only the digests can tell.
        dump.write_text(honest.replace("INSERT INTO t VALUES (1)", "SELECT SLEEP(3) FROM DUAL"[:24]))
        return real_load(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(restore, "load_dump", swap_then_load)
    scratch = _new_name("rst")
    started = time.monotonic()

    with scratch_restore(mariadb_server, scratch) as target:
        done = restore_into(MARIADB_URL, dump, target.scratch, target.account)

    assert not done.ok and done.loaded is not None and "changed since the dump was read" in (done.loaded.error or "")
    assert time.monotonic() - started < 3  # the swapped statement never ran
    assert scratch not in _databases(mariadb_server)


def test_restore_into_a_kept_scratch_database_for_other_tools(
    shared_data: Path, tmp_path: Path, mariadb_server: sa.Engine, private_state: Path,  # noqa: F811
) -> None:
    from dbaudit.backups.restore import restore_into, scratch_restore

    scratch, refused = _new_name("rst"), _new_name("rst")
    hostile = tmp_path / "hostile.sql"
    hostile.write_text("CREATE TABLE t (id int);\n\\! touch /nonexistent\n")
    try:
        with scratch_restore(mariadb_server, scratch, keep=True) as target:
            done = restore_into(MARIADB_URL, shared_data / "world" / "world.sql", target.scratch, target.account)
            user = target.account.user
            assert done.ok and done.loaded is not None and done.loaded.statements > 5000
            assert take_snapshot(target.url(sa.engine.make_url(MARIADB_URL))).total_rows == 5302
        with scratch_restore(mariadb_server, refused) as target:
            stopped = restore_into(MARIADB_URL, hostile, target.scratch, target.account)
            assert not stopped.ok and stopped.loaded is None and "client command" in stopped.refusals[0]

        assert scratch in _databases(mariadb_server) and refused not in _databases(mariadb_server)
        assert not _account_exists(mariadb_server, user) and _journal_entries(private_state) == []
    finally:
        _drop(mariadb_server, scratch, refused)


def _files_holding(secret: bytes, *folders: Path, since: float) -> list[Path]:
    """Files written since `since` holding `secret`: in each folder itself, and below the journal's."""
    found = []
    for folder in folders:
        for path in folder.rglob("*") if "state" in folder.name else folder.glob("*"):
            try:
                info = path.lstat()
                if path.is_file() and not path.is_symlink() and info.st_mtime >= since and info.st_size < 1 << 20 \
                        and secret in path.read_bytes():
                    found.append(path)
            except OSError:
                continue
    return found


def test_neither_the_server_password_nor_the_temporary_one_is_written_anywhere(
    shared_data: Path, mariadb_server: sa.Engine, monkeypatch: pytest.MonkeyPatch, private_state: Path,  # noqa: F811
) -> None:
    import tempfile

    from dbaudit.backups import restore

    admin, password = _new_name("admin"), f"Pw{uuid.uuid4().hex}!"
    scratch = f"{admin}_rst"
    with mariadb_server.connect() as conn:
        for host in ("127.0.0.1", "localhost"):
            conn.exec_driver_sql("CREATE USER %s@%s IDENTIFIED BY %s", (admin, host, password))
            conn.exec_driver_sql("GRANT CREATE USER, PROCESS ON *.* TO %s@%s", (admin, host))
            conn.exec_driver_sql("GRANT SELECT ON mysql.* TO %s@%s", (admin, host))
            conn.exec_driver_sql(f"GRANT ALL ON `{admin.replace('_', chr(92) + '_')}%%`.* TO %s@%s WITH GRANT OPTION",
                                 (admin, host))
    seen: list[list[Path]] = []
    real_load = restore.load_dump
    since = time.time() - 1

    def load_and_look(*args: object, **kwargs: object) -> object:
        account = args[3]
        assert isinstance(account, restore.RestoreAccount)
        folders = (Path(tempfile.gettempdir()), private_state, Path.home())
        seen.append(_files_holding(password.encode(), *folders, since=since)
                    + _files_holding(account.password.encode(), *folders, since=since))
        return real_load(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(restore, "load_dump", load_and_look)
    try:
        url = sa.engine.make_url(MARIADB_URL).set(username=admin, password=password)
        result = restore_check(shared_data / "world" / "world.sql", url.render_as_string(hide_password=False),
                               scratch=scratch)

        assert result.verdict == "pass", [c.message for c in result.failed_checks]
        assert seen == [[]]
        assert password not in json.dumps(serde_dict(result))
    finally:
        with mariadb_server.connect() as conn:
            for host in ("127.0.0.1", "localhost"):
                conn.exec_driver_sql("DROP USER IF EXISTS %s@%s", (admin, host))
        _drop(mariadb_server, scratch)


def serde_dict(document: object) -> object:
    from dataclasses import asdict

    return asdict(document)  # type: ignore[call-overload]
