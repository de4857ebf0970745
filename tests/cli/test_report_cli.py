"""The CLI walk of issue 12: messages and exit codes agree, typos are warned about, pipes end quietly."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from conftest import POSTGRES_URL, ScratchDB
from dbaudit import __version__


def dbaudit(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DBAUDIT_PASSWORD"}
    return subprocess.run([sys.executable, "-m", "dbaudit", *map(str, args)], capture_output=True, text=True,
                          timeout=120, cwd=cwd, env=env)


def _database(path: Path, tables: int = 3) -> str:
    with sqlite3.connect(path) as db:
        for n in range(tables):
            db.execute(f"CREATE TABLE t{n} (id INTEGER PRIMARY KEY)")
            db.execute(f"INSERT INTO t{n} VALUES (1)")
    return f"sqlite:///{path}"


def test_diff_of_two_uncounted_snapshots_prints_the_checks_that_make_it_fail(tmp_path: Path) -> None:
    url = _database(tmp_path / "db.sqlite")
    for name in ("a.json", "b.json"):
        assert dbaudit("snapshot", url, "-o", name, "--no-counts", cwd=tmp_path).returncode == 0

    run = dbaudit("diff", "a.json", "b.json", "--junit", "j.xml", cwd=tmp_path)

    assert run.returncode == 1
    assert "FAIL [rows] t0: rows were not counted" in run.stdout and "verdict: FAIL" in run.stdout
    assert "no differences\n" not in run.stdout
    suite = ET.parse(tmp_path / "j.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("time") is not None
    assert all(case.get("time") is not None for case in suite.findall("testcase"))


def test_snapshot_says_rows_were_not_counted_and_warns_about_patterns_that_match_nothing(tmp_path: Path) -> None:
    url = _database(tmp_path / "db.sqlite")
    empty = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    sqlite3.connect(tmp_path / "empty.sqlite").close()

    uncounted = dbaudit("snapshot", url, "-o", "a.json", "--no-counts", cwd=tmp_path)
    typo = dbaudit("snapshot", url, "-o", "b.json", "--tables", "t0", "tz*", "--exclude", "nope", cwd=tmp_path)
    nothing = dbaudit("snapshot", empty, "-o", "c.json", cwd=tmp_path)

    assert "rows not counted" in uncounted.stdout and "0 rows" not in uncounted.stdout
    assert typo.returncode == 0
    assert "--tables 'tz*' matches no table" in typo.stderr and "--exclude 'nope' matches no table" in typo.stderr
    assert "'t0'" not in typo.stderr
    assert "holds no tables" in nothing.stderr


def test_version_prints_the_package_version(tmp_path: Path) -> None:
    run = dbaudit("--version", cwd=tmp_path)
    assert (run.returncode, run.stdout.strip()) == (0, f"dbaudit {__version__}")


def test_reports_into_a_closed_pipe_ends_without_broken_pipe(tmp_path: Path) -> None:
    archive = tmp_path / "reports"
    for n in range(3000):  # more lines than a pipe buffer holds
        folder = archive / f"20260101T0000{n:04d}Z-r"
        folder.mkdir(parents=True)
        (folder / "report.html").write_text("x", encoding="utf-8")
    shell = f"{sys.executable} -m dbaudit reports --out-dir {archive} | head -1"

    run = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=120, cwd=tmp_path)

    assert len(run.stdout.splitlines()) == 1
    assert "Broken pipe" not in run.stderr and "Traceback" not in run.stderr


def test_a_postgresql_url_without_a_database_is_refused(tmp_path: Path, postgres_server: sa.Engine) -> None:
    run = dbaudit("snapshot", POSTGRES_URL, "-o", "x.json", cwd=tmp_path)

    assert run.returncode == 2 and "names no database; add /DBNAME" in run.stderr
    assert not (tmp_path / "x.json").exists()


def test_mysql_and_postgres_schemes_are_accepted_as_aliases(
    tmp_path: Path, make_mariadb: Callable[[], ScratchDB], make_postgres: Callable[[], ScratchDB]
) -> None:
    maria, pg = make_mariadb(), make_postgres()
    maria.run_sql("CREATE TABLE t (id INT PRIMARY KEY)")
    pg.run_sql("CREATE TABLE t (id INT PRIMARY KEY)")
    urls = [maria.url.replace("mysql+pymysql://", "mysql://"),
            pg.url.replace("postgresql+psycopg://", "postgres://")]
    assert all(u != original for u, original in zip(urls, (maria.url, pg.url), strict=True))

    runs = [dbaudit("snapshot", url, "-o", f"s{n}.json", cwd=tmp_path) for n, url in enumerate(urls)]

    assert [r.returncode for r in runs] == [0, 0], [r.stderr for r in runs]
    assert all("1 tables" in r.stdout for r in runs)


def _on_a_terminal(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    """Run dbaudit with its stdout on a pseudo-terminal; return what it printed."""
    import pty

    leader, follower = pty.openpty()
    proc = subprocess.run([sys.executable, "-m", "dbaudit", *args], stdout=follower, stderr=subprocess.PIPE,
                          cwd=cwd, env=env, timeout=120)
    os.close(follower)
    out = b""
    try:
        while chunk := os.read(leader, 4096):
            out += chunk
    except OSError:
        pass
    os.close(leader)
    assert proc.returncode in (0, 1), proc.stderr
    return out.decode()


def test_the_verdict_is_coloured_on_a_terminal_unless_no_color_is_set(tmp_path: Path) -> None:
    url = _database(tmp_path / "db.sqlite")
    assert dbaudit("snapshot", url, "-o", "a.json", cwd=tmp_path).returncode == 0
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM")}

    coloured = _on_a_terminal(["diff", "a.json", "a.json", "--expect", str(_empty_expectations(tmp_path))],
                              tmp_path, env)
    plain = _on_a_terminal(["diff", "a.json", "a.json", "--expect", str(_empty_expectations(tmp_path))],
                           tmp_path, {**env, "NO_COLOR": "1"})
    piped = dbaudit("diff", "a.json", "a.json", "--expect", _empty_expectations(tmp_path), cwd=tmp_path)

    assert "\033[1;32mPASS\033[0m" in coloured
    assert "verdict: PASS" in plain and "\033[" not in plain
    assert "verdict: PASS" in piped.stdout and "\033[" not in piped.stdout


def _empty_expectations(folder: Path) -> Path:
    path = folder / "none.yml"
    path.write_text("name: nothing\ndescription: no change at all\n", encoding="utf-8")
    return path


def test_a_long_error_is_cut_at_a_word_boundary_never_mid_word() -> None:
    from dbaudit.core.errors import DbauditError

    words = [f"word{n}" for n in range(100)]

    message = str(DbauditError(" ".join(words)))

    assert message.endswith(" …") and len(message) <= 300
    assert message.removesuffix(" …").split(" ")[-1] in words  # the last word shown is whole
