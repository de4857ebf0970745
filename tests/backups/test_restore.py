"""restore-check on MariaDB: the employees sample restored through its own mysqldump, and the safety rules."""

from __future__ import annotations

import gzip
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from restore_helpers import databases as _databases
from restore_helpers import drop_databases as _drop
from restore_helpers import new_name as _new_name
from restore_helpers import private_state  # noqa: F401  (an autouse fixture)

from conftest import MARIADB_URL, ROOT, SHARED_DATA, client_args
from dbaudit.backups.checks import check_dump, write_manifest
from dbaudit.backups.restore import load_restore_check, restore_check, without_spans
from dbaudit.core.errors import DbauditError
from dbaudit.live.inspect import take_snapshot


@pytest.mark.slow
def test_restore_of_employees_passes_and_its_golden_md5_values_hold_in_the_scratch_database(
    employees: tuple[str, Path], mariadb_server: sa.Engine, mariadb_client: str, tmp_path: Path
) -> None:
    source, dump = employees
    snapshot = tmp_path / "source.json"
    take_snapshot(f"{MARIADB_URL}/{source}").save(snapshot)
    write_manifest(check_dump(dump))
    scratch = _new_name("rst")
    try:
        result = restore_check(dump, f"{MARIADB_URL}/{source}", scratch=scratch, against=snapshot, keep=True)

        assert result.verdict == "pass", [c.message for c in result.failed_checks]
        assert {c.category for c in result.checks} == {"restore", "dump", "manifest", "source"}
        assert result.summary == {"checks": 7, "checks_failed": 0, "tables": 6, "rows": 130783}
        golden = (SHARED_DATA / "employees" / "test_employee_md5.sql").read_text().replace("USE employee;", "")
        out = subprocess.run([mariadb_client, *client_args(), scratch],
                             input=golden, text=True, capture_output=True, check=True).stdout
        assert re.search(r"^CRC\s+OK$", out, re.M) and re.search(r"^count\s+OK$", out, re.M), out
    finally:
        _drop(mariadb_server, scratch)


@pytest.mark.slow
def test_restore_of_a_gzip_dump_drops_its_scratch_database_and_fails_when_the_source_moved_on(
    employees: tuple[str, Path], mariadb_server: sa.Engine, tmp_path: Path
) -> None:
    source, dump = employees
    later = take_snapshot(f"{MARIADB_URL}/{source}")
    later.tables["salary"].row_count = 94918  # the source gained a row after the dump was taken
    packed = tmp_path / "employees.sql.gz"
    packed.write_bytes(gzip.compress(dump.read_bytes(), compresslevel=1))
    scratch = _new_name("rst")

    result = restore_check(packed, f"{MARIADB_URL}/{source}", scratch=scratch, against=later)

    assert scratch not in _databases(mariadb_server) and not result.kept
    assert [c.message for c in result.failed_checks] == ["rows of salary: 94,918 → 94,917 (-1)"]


def test_refuses_a_scratch_database_that_exists_and_leaves_it_untouched(
    mariadb_server: sa.Engine, shared_data: Path
) -> None:
    existing = _new_name("keep")
    with mariadb_server.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{existing}`")
        conn.exec_driver_sql(f"CREATE TABLE `{existing}`.sentinel (id int)")
    try:
        with pytest.raises(DbauditError, match="already exists"):
            restore_check(shared_data / "world" / "world.sql", MARIADB_URL, scratch=existing)
        with mariadb_server.connect() as conn:
            assert conn.exec_driver_sql(f"SHOW TABLES FROM `{existing}`").scalars().all() == ["sentinel"]
    finally:
        _drop(mariadb_server, existing)


def test_refuses_the_source_database_and_unsafe_names(shared_data: Path, mariadb_server: sa.Engine) -> None:
    world = shared_data / "world" / "world.sql"
    with pytest.raises(DbauditError, match="is the source database"):
        restore_check(world, MARIADB_URL, scratch="world")  # the dump's own CREATE DATABASE names it
    with pytest.raises(DbauditError, match="is the source database"):
        restore_check(world, f"{MARIADB_URL}/blazz", scratch="BLAZZ")
    with pytest.raises(DbauditError, match="letters, digits"):
        restore_check(world, MARIADB_URL, scratch="x`; DROP DATABASE mysql; --")
    with pytest.raises(DbauditError, match="MySQL/MariaDB"):
        restore_check(world, "postgresql+psycopg://postgres@127.0.0.1/postgres")


def test_a_dump_naming_another_database_is_refused(tmp_path: Path, mariadb_server: sa.Engine) -> None:
    dump = tmp_path / "other.sql"
    dump.write_text("CREATE TABLE t (id int);\nINSERT INTO mysql.t VALUES (1);\n")

    with pytest.raises(DbauditError, match="names other database"):
        restore_check(dump, MARIADB_URL, scratch=_new_name("rst"))


def test_use_and_drop_database_in_the_dump_never_reach_the_database_they_name(
    tmp_path: Path, mariadb_server: sa.Engine
) -> None:
    victim, scratch = _new_name("victim"), _new_name("rst")
    with mariadb_server.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{victim}`")
        conn.exec_driver_sql(f"CREATE TABLE `{victim}`.sentinel (id int)")
    dump = tmp_path / "hostile.sql"
    dump.write_text(f"/*!40000 DROP DATABASE IF EXISTS `{victim}`*/;\nCREATE DATABASE `{victim}`;\nUSE `{victim}`;\n"
                    "SET GLOBAL max_connections = 7;\nCREATE TABLE t (id int);\nINSERT INTO t VALUES (1),(2);\n")
    try:
        result = restore_check(dump, MARIADB_URL, scratch=scratch, keep=True)

        assert result.verdict == "pass", [c.message for c in result.failed_checks]
        assert result.skipped_statements == ["drop_database", "create_database", "use", "server_state"]
        with mariadb_server.connect() as conn:
            assert conn.exec_driver_sql(f"SHOW TABLES FROM `{victim}`").scalars().all() == ["sentinel"]
            assert conn.exec_driver_sql(f"SELECT COUNT(*) FROM `{scratch}`.t").scalar() == 2
            assert conn.exec_driver_sql("SELECT @@GLOBAL.max_connections").scalar() != 7
    finally:
        _drop(mariadb_server, victim, scratch)


def test_a_dump_the_client_rejects_fails_and_its_scratch_database_is_dropped(
    tmp_path: Path, mariadb_server: sa.Engine
) -> None:
    dump = tmp_path / "broken.sql"
    dump.write_text("CREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\nINSERT INTO missing VALUES (2);\n")
    scratch = _new_name("rst")

    result = restore_check(dump, MARIADB_URL, scratch=scratch, keep=True)

    assert result.verdict == "fail" and "doesn't exist" in result.failed_checks[0].message
    assert scratch not in _databases(mariadb_server)


@pytest.mark.slow
def test_ctrl_c_during_the_restore_drops_the_scratch_database(
    employees: tuple[str, Path], mariadb_server: sa.Engine
) -> None:
    scratch = _new_name("rst")
    proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "dbaudit"), "restore-check", str(employees[1]),
                             "--server", MARIADB_URL, "--scratch", scratch],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while scratch not in _databases(mariadb_server) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert scratch in _databases(mariadb_server)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)

        assert proc.returncode == 130 and err.strip() == "dbaudit: error: interrupted"
        assert scratch not in _databases(mariadb_server)
    finally:
        proc.kill()
        _drop(mariadb_server, scratch)


def test_cli_restore_check_writes_a_result_that_reads_back(shared_data: Path, tmp_path: Path,
                                                          mariadb_server: sa.Engine) -> None:
    scratch = _new_name("rst")
    out = subprocess.run([str(ROOT / ".venv" / "bin" / "dbaudit"), "restore-check",
                          str(shared_data / "world" / "world.sql"), "--server", MARIADB_URL, "--scratch", scratch,
                          "--json", str(tmp_path / "r.json")], capture_output=True, text=True)

    assert out.returncode == 0, out.stdout + out.stderr
    result = load_restore_check(tmp_path / "r.json")
    assert result.verdict == "pass" and result.database == "world" and result.summary["rows"] == 5302
    assert scratch not in _databases(mariadb_server)


def test_cutting_spans_out_of_a_stream_works_across_chunk_borders() -> None:
    data = b"0123456789abcdefghij"
    spans = [(2, 5), (7, 13), (19, 20)]
    expected = b"01" + b"56" + b"defghi"
    for size in (1, 3, 4, 20):
        chunks = (data[i : i + size] for i in range(0, len(data), size))
        assert b"".join(without_spans(chunks, spans)) == expected, size


def _evil_dump(tmp_path: Path, victim: str, user: str) -> tuple[Path, Path, Path]:
    """The reviewer's reproduction: shell commands, an account and a switch to another database."""
    x, y = tmp_path / "x_pwned", tmp_path / "y_pwned"
    dump = tmp_path / "evil.sql"
    dump.write_text("CREATE TABLE t (id int primary key); INSERT INTO t VALUES (1);\n"
                    f"\\! touch {x}\nsystem touch {y}\n"
                    f"CREATE USER IF NOT EXISTS '{user}'@'%' IDENTIFIED BY 'x';\n"
                    f"\\u {victim}\nCREATE TABLE landed (id int);\n")
    return dump, x, y


def test_a_dump_with_client_commands_or_create_user_is_refused_and_runs_none_of_them(
    tmp_path: Path, mariadb_server: sa.Engine
) -> None:
    victim, scratch, user = _new_name("victim"), _new_name("rst"), _new_name("evil")
    with mariadb_server.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{victim}`")
    dump, x, y = _evil_dump(tmp_path, victim, user)
    try:
        result = restore_check(dump, MARIADB_URL, scratch=scratch, keep=True)

        assert result.verdict == "fail" and result.restored is None
        message = result.failed_checks[0].message
        assert message.startswith("not restored:") and "CREATE USER" in message and "system touch" in message
        assert not x.exists() and not y.exists()
        assert scratch not in _databases(mariadb_server)
        with mariadb_server.connect() as conn:
            assert conn.exec_driver_sql("SELECT COUNT(*) FROM mysql.user WHERE User = %s", (user,)).scalar() == 0
            assert conn.exec_driver_sql(f"SHOW TABLES FROM `{victim}`").scalars().all() == []
    finally:
        with mariadb_server.connect() as conn:
            conn.exec_driver_sql(f"DROP USER IF EXISTS '{user}'@'%%'")
        _drop(mariadb_server, victim, scratch)


# Statements that would do no harm if a regression let them through: the full list is checked without a
# server in test_dumpfile (a broken fix must never run SET PASSWORD or SHUTDOWN on the shared test server).
@pytest.mark.parametrize("statement", [
    "GRANT SELECT ON dbaudit_t_none.* TO 'dbaudit_t_nobody'@'localhost'",
    "DROP USER IF EXISTS 'dbaudit_t_nobody'@'localhost'", "KILL QUERY 2147483647",
    "/*!80000 SET PERSIST dbaudit_no_such_variable = 7 */",
])
def test_server_wide_statements_fail_the_restore_and_are_never_sent(
    statement: str, tmp_path: Path, mariadb_server: sa.Engine
) -> None:
    dump = tmp_path / "server.sql"
    dump.write_text(f"CREATE TABLE t (id int);\n{statement};\nINSERT INTO t VALUES (1);\n")
    scratch = _new_name("rst")

    result = restore_check(dump, MARIADB_URL, scratch=scratch)

    assert result.verdict == "fail" and result.restore_seconds == 0.0, [c.message for c in result.checks]
    assert result.failed_checks[0].name == "restore safety"
    assert scratch not in _databases(mariadb_server)


def test_no_client_program_runs_a_restore_passes_with_none_on_path(
    shared_data: Path, mariadb_server: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    scratch = _new_name("rst")

    result = restore_check(shared_data / "world" / "world.sql", MARIADB_URL, scratch=scratch)

    assert result.verdict == "pass", [c.message for c in result.failed_checks]
    assert result.client.startswith("PyMySQL") and result.summary["rows"] == 5302
    assert scratch not in _databases(mariadb_server)


# --- other databases: detected by dump-check, refused by restore-check, and out of the client's reach anyway -------


@pytest.fixture
def victim_and_dump(mariadb_server: sa.Engine, tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """A victim database with rows, and a real mariadb-dump of a small source database: (victim, source, dump)."""
    from conftest import dump_database

    victim, source = _new_name("victim"), _new_name("src")
    with mariadb_server.connect() as conn:
        for name in (victim, source):
            conn.exec_driver_sql(f"CREATE DATABASE `{name}`")
            conn.exec_driver_sql(f"CREATE TABLE `{name}`.t (id int primary key)")
            conn.exec_driver_sql(f"INSERT INTO `{name}`.t VALUES (1), (2), (3)")
    try:
        yield victim, source, dump_database(source, tmp_path / f"{source}.sql")
    finally:
        _drop(mariadb_server, victim, source)


def _victim_state(server: sa.Engine, victim: str) -> tuple[list[str], list[int]]:
    with server.connect() as conn:
        tables = conn.exec_driver_sql(f"SHOW TABLES FROM `{victim}`").scalars().all()
        ids = conn.exec_driver_sql(f"SELECT id FROM `{victim}`.t ORDER BY id").scalars().all() if "t" in tables else []
    return list(tables), list(ids)


def _with_statement(dump: Path, statement: str) -> Path:
    """The dump with one statement slipped in before its trailer, as an attacker editing a backup would."""
    text = dump.read_text(encoding="utf-8")
    trailer = text.rindex("-- Dump completed")
    target = dump.with_name(f"tampered-{dump.name}")
    target.write_text(text[:trailer] + statement + "\n" + text[trailer:], encoding="utf-8")
    return target


@pytest.fixture
def account_prefix(monkeypatch: pytest.MonkeyPatch) -> str:
    """A name prefix for restore-check's temporary accounts that only this test uses."""
    from dbaudit.backups import restore_account

    prefix = f"dbaudit_t_rst{uuid.uuid4().hex[:6]}_"
    monkeypatch.setattr(restore_account, "ACCOUNT_PREFIX", prefix)
    return prefix


def _accounts(server: sa.Engine, prefix: str) -> int:
    with server.connect() as conn:
        return conn.exec_driver_sql("SELECT COUNT(*) FROM mysql.user WHERE User LIKE %s",
                                    (prefix.replace("_", "\\_") + "%",)).scalar_one()


REVIEWER_STATEMENTS = [
    "DROP TABLE {victim}.t;", "UPDATE {victim}.t SET id = id + 100;", "DELETE FROM `{victim}`.t;",
    "/*!40000 DROP TABLE {victim}.t */;", "RENAME TABLE {victim}.t TO {victim}.t_moved;",
]


@pytest.mark.parametrize("statement", REVIEWER_STATEMENTS)
def test_a_mariadb_dump_acting_on_another_database_fails_dump_check_and_restore_check_refuses_it(
    statement: str, victim_and_dump: tuple[str, str, Path], mariadb_server: sa.Engine
) -> None:
    victim, source, dump = victim_and_dump
    tampered = _with_statement(dump, statement.format(victim=victim))
    scratch = _new_name("rst")

    check = check_dump(tampered, use_manifest=False)
    [safety] = [c for c in check.checks if c.name == "restore safety"]
    assert safety.status == "fail" and victim in safety.message and f"besides its own ({source})" in safety.message
    assert victim in check.dump.qualified_databases
    with pytest.raises(DbauditError, match=f"other database.*{victim}"):
        restore_check(tampered, f"{MARIADB_URL}/{source}", scratch=scratch)

    assert _victim_state(mariadb_server, victim) == (["t"], [1, 2, 3])
    assert scratch not in _databases(mariadb_server)


def test_a_statement_the_detector_misses_still_cannot_touch_another_database_and_the_account_is_dropped(
    victim_and_dump: tuple[str, str, Path], mariadb_server: sa.Engine, account_prefix: str
) -> None:
    """A trigger body is not parsed for qualified names: the temporary account's lack of rights stops it."""
    victim, source, dump = victim_and_dump
    prefix = account_prefix
    tampered = _with_statement(dump, f"DELIMITER ;;\nCREATE TRIGGER wipe AFTER INSERT ON t FOR EACH ROW "
                                     f"DELETE FROM {victim}.t ;;\nDELIMITER ;\nINSERT INTO t VALUES (99);")
    assert check_dump(tampered, use_manifest=False).passed  # it slips past detection
    scratch = _new_name("rst")

    result = restore_check(tampered, f"{MARIADB_URL}/{source}", scratch=scratch)

    assert result.verdict == "fail"
    message = result.failed_checks[0].message
    assert "denied" in message and prefix in message, message
    assert _victim_state(mariadb_server, victim) == (["t"], [1, 2, 3])
    assert scratch not in _databases(mariadb_server)
    assert _accounts(mariadb_server, prefix) == 0


def test_the_temporary_account_exists_only_during_the_restore_with_rights_on_the_scratch_database_alone(
    victim_and_dump: tuple[str, str, Path], mariadb_server: sa.Engine, monkeypatch: pytest.MonkeyPatch,
    account_prefix: str,
) -> None:
    from dbaudit.backups import restore

    _, source, dump = victim_and_dump
    prefix = account_prefix
    seen: list[list[str]] = []
    real_load = restore.load_dump

    def load(*args: object, **kwargs: object) -> object:
        account = args[3]
        assert isinstance(account, restore.RestoreAccount)
        with mariadb_server.connect() as conn:
            seen.append(conn.exec_driver_sql("SHOW GRANTS FOR %s@%s", (account.user, account.host)).scalars().all())
        return real_load(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(restore, "load_dump", load)
    scratch = _new_name("rst")
    try:
        result = restore_check(dump, f"{MARIADB_URL}/{source}", scratch=scratch, keep=True)

        assert result.verdict == "pass", [c.message for c in result.failed_checks]
        [grants] = seen
        assert len(grants) == 2 and grants[0].startswith("GRANT USAGE ON *.* TO") and "WITH GRANT" not in grants[1]
        assert grants[1].startswith("GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP") and "ALL" not in grants[1]
        assert f" ON `{scratch.replace('_', chr(92) + '_')}`.* TO `{prefix}" in grants[1]
        assert _accounts(mariadb_server, prefix) == 0
    finally:
        _drop(mariadb_server, scratch)


def test_an_account_that_may_not_create_users_gets_a_one_line_error_and_nothing_is_created(
    tmp_path: Path, mariadb_server: sa.Engine
) -> None:
    user, password = _new_name("weak"), uuid.uuid4().hex + "Aa1!"
    pattern = user.replace("_", "\\_")
    dump = tmp_path / "plain.sql"
    dump.write_text("CREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\n")
    scratch = f"{user}_rst"
    try:
        with mariadb_server.connect() as conn:
            for host in ("127.0.0.1", "localhost"):
                conn.exec_driver_sql("CREATE USER %s@%s IDENTIFIED BY %s", (user, host, password))
                conn.exec_driver_sql(f"GRANT ALL ON `{pattern}%%`.* TO %s@%s", (user, host))
        url = sa.engine.make_url(MARIADB_URL).set(username=user, password=password)
        with pytest.raises(DbauditError) as raised:
            restore_check(dump, url.render_as_string(hide_password=False), scratch=scratch)

        message = str(raised.value)
        assert "\n" not in message and "CREATE USER privilege" in message and "GRANT OPTION" in message
        assert scratch not in _databases(mariadb_server)
    finally:
        with mariadb_server.connect() as conn:
            for host in ("127.0.0.1", "localhost"):
                conn.exec_driver_sql("DROP USER IF EXISTS %s@%s", (user, host))
        _drop(mariadb_server, scratch)
