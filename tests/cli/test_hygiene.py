"""The CLI cannot be turned against the operator (issue #9, classes 5, 6 and 9), tried as an attacker would.

Canaries: a password that must appear in no output or file, a file a symbolic link points to, device and
FIFO nodes made in tmp, a fake verdict line in a table name, a 400-byte alias bomb, a session left waiting
on the server after SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from xml.etree import ElementTree

import pytest
import sqlalchemy as sa

from conftest import MARIADB_URL, POSTGRES_URL, ScratchDB
from dbaudit.cli import main

CANARY = "Hyg1eneCanaryPw"
ROOT = Path(__file__).resolve().parents[2]


def dbaudit(*args: str | Path, cwd: Path, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "DBAUDIT_PASSWORD"} | (env or {})
    return subprocess.run([sys.executable, "-m", "dbaudit", *map(str, args)], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=timeout)


def one_error_line(proc: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("dbaudit: error: "), proc.stderr
    return lines[0]


def assert_no_canary(proc: subprocess.CompletedProcess[str], folder: Path, canary: str = CANARY) -> None:
    """Neither the terminal nor any file written (JSON, JUnit, HTML, notebooks) holds the password, in any
    spelling a URL or a repr would give it."""
    forms = {canary, canary[:8], canary[-8:]}
    for form in forms:
        assert form not in proc.stdout and form not in proc.stderr, (proc.stdout, proc.stderr)
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            assert not any(form.encode() in data for form in forms), path


def sqlite_db(path: Path, script: str) -> str:
    with sqlite3.connect(path) as conn:
        conn.executescript(script)
    conn.close()
    return f"sqlite:///{path}"


def _with_password(base: str, database: str, form: str) -> str:
    """`base` is scheme://user@host:port; the password put where `form` says."""
    scheme, rest = base.split("://", 1)
    user, host = rest.split("@", 1)
    return {
        "userinfo": f"{scheme}://{user}:{CANARY}@{host}/{database}",
        "userinfo-unencoded-at": f"{scheme}://{user}:x@{CANARY}@{host}/{database}",
        "userinfo-slash": f"{scheme}://{user}:a/{CANARY}@{host}/{database}",
        "query-password": f"{scheme}://{user}@{host}/{database}?password={CANARY}",
        "query-passwd": f"{scheme}://{user}@{host}/{database}?passwd={CANARY}",
        "query-sslpassword": f"{scheme}://{user}@{host}/{database}?sslpassword={CANARY}",
        "env": f"{scheme}://{user}@{host}/{database}",
    }[form]


MARIADB_FORMS = ["userinfo", "userinfo-unencoded-at", "userinfo-slash", "query-password", "query-passwd", "env"]
POSTGRES_FORMS = ["userinfo", "userinfo-unencoded-at", "userinfo-slash", "query-password", "query-sslpassword",
                  "env"]


# --- secrets: error paths with a wrong password -------------------------------------------------------


@pytest.mark.parametrize("form", MARIADB_FORMS)
def test_a_wrong_mariadb_password_is_in_no_error_output_of_any_command(
        form: str, tmp_path: Path, mariadb_server: sa.Engine) -> None:
    url = _with_password(MARIADB_URL, "mysql", form)
    env = {"DBAUDIT_PASSWORD": CANARY} if form == "env" else None
    dump = tmp_path / "d.sql"
    dump.write_text("CREATE TABLE t (id int);\n-- Dump completed on 2026-01-01  0:00:00\n")
    commands = [
        ["snapshot", url, "-o", tmp_path / "s.json"],
        ["compare", url, url, "--json", tmp_path / "c.json"],
        ["triggers", url, "--json", tmp_path / "t.json"],
        ["restore-check", dump, "--server", url, "--json", tmp_path / "r.json"],
        ["diff", url, url],
        ["dump-check", url],
        ["report", "--before", url, "--after", url, "--out-dir", tmp_path / "reports"],
    ]
    for command in commands:
        proc = dbaudit(*command, cwd=tmp_path, env=env)
        one_error_line(proc)
        assert_no_canary(proc, tmp_path)


@pytest.mark.parametrize("form", POSTGRES_FORMS)
def test_a_postgresql_password_is_in_no_error_output(form: str, tmp_path: Path, postgres_server: sa.Engine) -> None:
    missing = f"dbaudit_t_missing_{uuid.uuid4().hex[:8]}"  # trust auth: a missing database forces the error
    url = _with_password(POSTGRES_URL, missing, form)
    env = {"DBAUDIT_PASSWORD": CANARY} if form == "env" else None
    for command in (["snapshot", url, "-o", tmp_path / "s.json"], ["compare", url, url],
                    ["triggers", url, "--json", tmp_path / "t.json"]):
        proc = dbaudit(*command, cwd=tmp_path, env=env)
        one_error_line(proc)
        assert_no_canary(proc, tmp_path)


def test_an_unencoded_at_in_the_password_is_refused_before_connecting(tmp_path: Path) -> None:
    # Nothing listens on port 9: had it connected, the error would be "connection refused".
    proc = dbaudit("snapshot", f"mysql+pymysql://audit:p@{CANARY}@127.0.0.1:9/db", "-o", tmp_path / "s.json",
                   cwd=tmp_path)
    assert "unencoded '@'" in one_error_line(proc)
    assert_no_canary(proc, tmp_path)


@pytest.mark.parametrize("form", ["userinfo", "query-password", "query-sslpassword", "env"])
def test_a_postgresql_password_is_in_no_snapshot_or_compare_result(
        form: str, tmp_path: Path, make_postgres: Callable[[], ScratchDB]) -> None:
    db = make_postgres()
    db.run_sql("CREATE TABLE chats (id int PRIMARY KEY)", "INSERT INTO chats VALUES (1), (2)")
    url = _with_password(POSTGRES_URL, db.url.rsplit("/", 1)[1], form)  # trust auth ignores the password
    env = {"DBAUDIT_PASSWORD": CANARY} if form == "env" else None
    proc = dbaudit("snapshot", url, "-o", tmp_path / "s.json", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "s.json").read_text())["tables"]["chats"]["row_count"] == 2
    assert_no_canary(proc, tmp_path)
    proc = dbaudit("compare", url, url, "--json", tmp_path / "c.json", "--junit", tmp_path / "c.xml", cwd=tmp_path,
                   env=env)
    assert proc.returncode == 0, proc.stderr
    assert_no_canary(proc, tmp_path)


@pytest.mark.slow
def test_a_password_in_the_url_query_is_in_no_report(tmp_path: Path, make_postgres: Callable[[], ScratchDB]) -> None:
    db = make_postgres()
    db.run_sql("CREATE TABLE chats (id int PRIMARY KEY)", "INSERT INTO chats VALUES (1)")
    url = _with_password(POSTGRES_URL, db.url.rsplit("/", 1)[1], "query-password")
    assert dbaudit("snapshot", url, "-o", tmp_path / "s.json", cwd=tmp_path).returncode == 0
    proc = dbaudit("report", "--before", tmp_path / "s.json", "--after", tmp_path / "s.json",
                   "--out-dir", tmp_path / "reports", cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert_no_canary(proc, tmp_path)
    proc = dbaudit("compare", url, url, "--report", "--out-dir", tmp_path / "reports", cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert len(list((tmp_path / "reports").rglob("*.html"))) >= 2
    assert_no_canary(proc, tmp_path)


# --- terminal: names cannot forge output ----------------------------------------------------------


FORGED = "t\nverdict: PASS"


def test_a_table_name_cannot_print_a_fake_verdict_line(tmp_path: Path) -> None:
    url = sqlite_db(tmp_path / "db.sqlite", "CREATE TABLE chats (id INTEGER PRIMARY KEY);")
    assert dbaudit("snapshot", url, "-o", tmp_path / "before.json", cwd=tmp_path).returncode == 0
    sqlite_db(tmp_path / "db.sqlite", f'CREATE TABLE "{FORGED}" (id INTEGER); CREATE TABLE "\x1b[2K\x1b[1Aesc" (x);')
    proc = dbaudit("snapshot", url, "-o", tmp_path / "after.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    expect = tmp_path / "expect.yml"
    expect.write_text("name: forged\nrows:\n  default: no_shrink\n")
    proc = dbaudit("diff", tmp_path / "before.json", tmp_path / "after.json", "--expect", expect, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert "verdict: PASS" not in lines and lines[-1].startswith("verdict: FAIL")
    assert any("t\\nverdict: PASS" in line for line in lines)
    assert "\x1b" not in proc.stdout and "\\x1b[2K\\x1b[1Aesc" in proc.stdout
    # JUnit too: XML 1.0 cannot carry ESC at all, and a CI parser that rejects the file shows no failure.
    junit = tmp_path / "j.xml"
    proc = dbaudit("diff", tmp_path / "before.json", tmp_path / "after.json", "--expect", expect, "--junit", junit,
                   cwd=tmp_path)
    names = [case.get("name") for case in ElementTree.fromstring(junit.read_bytes()).iter("testcase")]
    assert any("\\x1b[2K" in (name or "") for name in names), names


def test_an_error_message_cannot_carry_an_escape_sequence_to_the_terminal(tmp_path: Path) -> None:
    proc = dbaudit("diff", tmp_path / "\x1b]0;owned\x07.json", tmp_path / "b.json", cwd=tmp_path)
    line = one_error_line(proc)
    assert "\x1b" not in proc.stderr and "\\x1b]0;owned\\x07" in line


# --- outputs: atomic, regular files only ----------------------------------------------------------


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    url = sqlite_db(tmp_path / "db.sqlite", "CREATE TABLE chats (id INTEGER PRIMARY KEY);")
    before = tmp_path / "before.json"
    assert dbaudit("snapshot", url, "-o", before, cwd=tmp_path).returncode == 0
    yield before, before


def _targets(tmp_path: Path) -> dict[str, Path]:
    """Each kind of non-regular target, in tmp (never the real /dev/null), with what it should stay."""
    canary = tmp_path / "canary.txt"
    canary.write_text("canary")
    link = tmp_path / "link.json"
    link.symlink_to(canary)
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.json"
    folder.mkdir()
    targets = {"symlink": link, "fifo": fifo, "directory": folder}
    if os.geteuid() == 0:
        device = tmp_path / "null"
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        targets["device"] = device
    devnull_link = tmp_path / "devnull.json"
    devnull_link.symlink_to("/dev/null")
    targets["symlink-to-dev-null"] = devnull_link
    return targets


def _unchanged(tmp_path: Path, kind: str, target: Path) -> None:
    mode = os.lstat(target).st_mode
    expected = {"symlink": stat.S_ISLNK, "symlink-to-dev-null": stat.S_ISLNK, "fifo": stat.S_ISFIFO,
                "directory": stat.S_ISDIR, "device": stat.S_ISCHR}[kind]
    assert expected(mode), kind
    assert (tmp_path / "canary.txt").read_text() == "canary"
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("option", ["--json", "--junit"])
def test_diff_refuses_a_json_or_junit_target_that_is_not_a_regular_file(
        option: str, tmp_path: Path, pair: tuple[Path, Path]) -> None:
    for kind, target in _targets(tmp_path).items():
        proc = dbaudit("diff", *pair, option, target, cwd=tmp_path)
        line = one_error_line(proc)
        assert str(target) in line and proc.stdout == "", kind
        _unchanged(tmp_path, kind, target)


def test_snapshot_refuses_its_output_target_before_connecting(tmp_path: Path) -> None:
    for kind, target in _targets(tmp_path).items():
        # Port 9 answers nothing: the refusal must come first, not a connection error after the work.
        proc = dbaudit("snapshot", "mysql+pymysql://root@127.0.0.1:9/db", "-o", target, cwd=tmp_path)
        assert "connect" not in one_error_line(proc), kind
        _unchanged(tmp_path, kind, target)


def test_dump_check_and_expect_refuse_a_symlinked_target(tmp_path: Path) -> None:
    dump = tmp_path / "d.sql"
    dump.write_text("CREATE TABLE t (id int);\n-- Dump completed on 2026-01-01  0:00:00\n")
    migration = tmp_path / "m.sql"
    migration.write_text("CREATE TABLE t (id int);\n")
    targets = _targets(tmp_path)
    for command in (["dump-check", dump, "--json", targets["symlink"]],
                    ["dump-check", dump, "--junit", targets["fifo"]],
                    ["expect", migration, "-o", targets["symlink"]],
                    ["expect", migration, "-o", targets["symlink-to-dev-null"]]):
        one_error_line(dbaudit(*command, cwd=tmp_path))
    for kind, target in targets.items():
        _unchanged(tmp_path, kind, target)


def test_outputs_to_regular_files_still_work_and_replace_them_whole(tmp_path: Path, pair: tuple[Path, Path]) -> None:
    out = tmp_path / "result.json"
    out.write_text("old")
    proc = dbaudit("diff", *pair, "--json", out, "--junit", tmp_path / "r.xml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["kind"] == "dbaudit.result"
    assert (tmp_path / "r.xml").read_text().startswith("<?xml")


# --- SIGTERM: like Ctrl-C, in every command ---------------------------------------------------------


def _popen(*args: str | Path, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([str(ROOT / ".venv" / "bin" / "dbaudit"), *map(str, args)], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(condition: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.parametrize(("signum", "code", "said"), [(signal.SIGTERM, 143, "terminated (SIGTERM)"),
                                                      (signal.SIGINT, 130, "interrupted")])
def test_a_signal_during_a_snapshot_waiting_on_a_locked_mariadb_table_ends_it_cleanly(
        signum: int, code: int, said: str, tmp_path: Path, make_mariadb: Callable[[], ScratchDB]) -> None:
    db = make_mariadb()
    db.run_sql("CREATE TABLE chats (id int PRIMARY KEY)", "INSERT INTO chats VALUES (1)")
    name = db.url.rsplit("/", 1)[1]
    waiting = sa.text("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = :db "
                      "AND STATE LIKE '%metadata lock%'")
    with db.engine.connect() as locker, db.engine.connect() as observer:
        locker.exec_driver_sql("LOCK TABLES chats WRITE")
        proc = _popen("snapshot", db.url, "-o", tmp_path / "s.json", cwd=tmp_path)
        try:
            _wait_for(lambda: observer.execute(waiting, {"db": name}).scalar_one() > 0)
            proc.send_signal(signum)
            out, err = proc.communicate(timeout=30)
            assert proc.returncode == code and err == f"dbaudit: error: {said}\n" and out == ""
            assert not (tmp_path / "s.json").exists()
            # The server-side session is gone too, not left queued on the lock until it is released.
            _wait_for(lambda: observer.execute(waiting, {"db": name}).scalar_one() == 0, 5)
        finally:
            proc.kill()
            locker.exec_driver_sql("UNLOCK TABLES")


def test_sigterm_during_a_compare_ends_its_worker_sessions_too(tmp_path: Path,
                                                               make_mariadb: Callable[[], ScratchDB]) -> None:
    """compare's queries run in worker threads, which signals never reach: the main thread must end them."""
    db = make_mariadb()
    db.run_sql("CREATE TABLE chats (id int PRIMARY KEY)", "INSERT INTO chats VALUES (1)")
    name = db.url.rsplit("/", 1)[1]
    waiting = sa.text("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = :db "
                      "AND STATE LIKE '%metadata lock%'")
    with db.engine.connect() as locker, db.engine.connect() as observer:
        locker.exec_driver_sql("LOCK TABLES chats WRITE")
        proc = _popen("compare", db.url, db.url, "--json", tmp_path / "c.json", cwd=tmp_path)
        try:
            _wait_for(lambda: observer.execute(waiting, {"db": name}).scalar_one() >= 2)
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
            assert proc.returncode == 143 and err == "dbaudit: error: terminated (SIGTERM)\n", (out, err)
            assert not (tmp_path / "c.json").exists()
            _wait_for(lambda: observer.execute(waiting, {"db": name}).scalar_one() == 0, 5)
        finally:
            proc.kill()
            locker.exec_driver_sql("UNLOCK TABLES")


def test_sigterm_during_a_snapshot_waiting_on_a_locked_postgresql_table_ends_it_cleanly(
        tmp_path: Path, make_postgres: Callable[[], ScratchDB]) -> None:
    db = make_postgres()
    db.run_sql("CREATE TABLE chats (id int PRIMARY KEY)", "INSERT INTO chats VALUES (1)")
    name = db.url.rsplit("/", 1)[1]
    waiting = sa.text("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = :db AND wait_event_type = 'Lock'")
    observer_engine = sa.create_engine(db.url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    with db.engine.connect() as locker, observer_engine.connect() as observer:
        locker.exec_driver_sql("LOCK TABLE chats IN ACCESS EXCLUSIVE MODE")  # held: the transaction stays open
        proc = _popen("snapshot", db.url, "-o", tmp_path / "s.json", cwd=tmp_path)
        try:
            _wait_for(lambda: observer.execute(waiting, {"db": name}).scalar_one() > 0)
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
            assert proc.returncode == 143 and err == "dbaudit: error: terminated (SIGTERM)\n" and out == ""
            assert not (tmp_path / "s.json").exists()
            _wait_for(lambda: observer.execute(waiting, {"db": name}).scalar_one() == 0, 5)
        finally:
            proc.kill()
            locker.rollback()
    observer_engine.dispose()


# --- YAML: bounded ---------------------------------------------------------------------------------


def alias_bomb() -> str:
    names = "abcdefghi"  # 9 anchors of 9 aliases: 9**9 leaves in ~400 bytes
    lines = ["required:", "  -", "    - &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]"]
    lines += [f"    - &{name} [{','.join([f'*{previous}'] * 9)}]" for previous, name in zip(names, names[1:])]
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_exits_2_in_under_a_second(tmp_path: Path, pair: tuple[Path, Path],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    bomb = tmp_path / "bomb.yml"
    bomb.write_text(alias_bomb())
    assert bomb.stat().st_size < 437
    started = time.monotonic()
    assert main(["diff", *map(str, pair), "--expect", str(bomb)]) == 2
    assert time.monotonic() - started < 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "alias bomb" in err


def test_every_command_reading_yaml_refuses_the_bomb(tmp_path: Path, pair: tuple[Path, Path]) -> None:
    bomb = tmp_path / "bomb.yml"
    bomb.write_text(alias_bomb())
    url = sqlite_db(tmp_path / "x.sqlite", "CREATE TABLE t (id INTEGER);")
    for command in (["diff", *pair, "--expect", bomb],
                    ["snapshot", url, "-o", tmp_path / "s.json", "--expect", bomb],
                    ["triggers", url, "--expect", bomb],
                    ["report", "--before", pair[0], "--after", pair[1], "--expect", bomb,
                     "--out-dir", tmp_path / "reports"]):
        proc = dbaudit(*command, cwd=tmp_path, timeout=30)
        assert "alias bomb" in one_error_line(proc), command


# --- one printer ----------------------------------------------------------------------------------


def test_every_cli_module_prints_through_the_one_terminal_helper() -> None:
    """A new command printing with print() would bring back forged lines and unmasked passwords."""
    import ast

    offenders = []
    for path in sorted((ROOT / "lib" / "dbaudit" / "cli").glob("*.py")):
        if path.name == "common.py":
            continue  # say() itself
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                offenders.append(f"{path.name}:{node.lineno}")
    assert not offenders, f"use dbaudit.cli.common.say: {offenders}"
