"""A dump read as the client and the server read it: client commands wherever the client sees one, DELIMITER only
where the client takes it, the session's SQL mode and character set followed, versioned comments read both ways.

Each hostile dump here passed restore safety before; the real `mariadb` client and server show that the scanner's
reading is theirs.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pymysql
import pytest
import sqlalchemy as sa

from conftest import MARIADB_URL, client_args, dump_database, load_sql, scratch_mariadb_database
from dbaudit.backups.checks import check_dump
from dbaudit.backups.dumpfile import DumpScan, read_dump
from dbaudit.backups.session import Session

HEADER = "-- Host: 127.0.0.1    Database: shop\nCREATE TABLE t (id int, s text);\n"

# name: (what follows HEADER, a phrase of the refusal)
HOSTILE = {
    "backslash command right after a version": ("/*!50000\\! touch /tmp/dbaudit_x */;\n", "client command"),
    "editor escape right after a MariaDB version": ("/*M!100100\\e */;\n", "client command"),
    "pager escape after the sandbox version": ("/*M!999999\\P cat */;\n", "client command"),
    "DELIMITER after a statement on its line": (
        "SELECT 1; DELIMITER ;;\nCREATE TABLE u (a int);GRANT ALL ON *.* TO evil;;\n", "GRANT"),
    "edit ended by a custom delimiter": ("DELIMITER //\nedit//\nDELIMITER ;\n", "client command(s) edit"),
    "USE without a delimiter on its line": ("USE shop\nDROP TABLE other.t;\n", "client command(s) USE shop"),
    "USE with a quoted name": ("USE 'other';\n", "other database(s) other"),
    "NO_BACKSLASH_ESCAPES ending a string early": (
        "SET sql_mode='NO_BACKSLASH_ESCAPES';\nINSERT INTO t VALUES (1,'x\\');\nGRANT ALL ON *.* TO evil;\n"
        "SELECT '';\n", "GRANT"),
    "NO_BACKSLASH_ESCAPES inside a versioned comment": (
        "/*!40101 SET SQL_MODE='NO_BACKSLASH_ESCAPES' */;\nINSERT INTO t VALUES (1,'x\\'); DROP TABLE other.t; "
        "SELECT '';\n", "other database(s) other"),
    "NO_BACKSLASH_ESCAPES added with CONCAT": (
        "SET sql_mode=CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES');\nINSERT INTO t VALUES (1,'x\\'); "
        "GRANT ALL ON *.* TO e; SELECT '';\n", "GRANT"),
    "ANSI_QUOTES identifiers naming another database": (
        "SET sql_mode='ANSI_QUOTES';\nDROP TABLE \"other\".\"t\";\n", "other database(s) other"),
    "sql_mode DEFAULT": ("SET sql_mode=DEFAULT;\n", "cannot evaluate"),
    "sql_mode as a number": ("SET sql_mode=1048576;\n", "cannot evaluate"),
    "saved mode changed by a trigger": (
        "SET @OLD_SQL_MODE=@@SQL_MODE;\nDELIMITER ;;\nCREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW "
        "SET @OLD_SQL_MODE='NO_BACKSLASH_ESCAPES';;\nDELIMITER ;\nINSERT INTO t VALUES (1,'');\n"
        "SET SQL_MODE=@OLD_SQL_MODE;\n", "cannot evaluate"),
    "saved mode changed by SELECT INTO": (
        "SET @OLD_SQL_MODE=@@SQL_MODE;\nSELECT 'NO_BACKSLASH_ESCAPES' INTO @OLD_SQL_MODE;\n"
        "SET SQL_MODE=@OLD_SQL_MODE;\n", "cannot evaluate"),
    "mode set in a comment some servers skip": ("/*!80000 SET sql_mode='ANSI_QUOTES' */;\n", "versioned comment"),
    "statement hidden behind a skipped comment": ("/*!99999 SELECT 1, */ GRANT ALL ON *.* TO e;\n", "GRANT"),
    "string crossing a skipped comment's end": (
        "SELECT 'a' /*!99999 '*/ ; GRANT ALL ON *.* TO e; -- ' */;\n", "*/ inside a string"),
    "multi-byte client character set": ("SET NAMES gbk;\n", "character set to gbk"),
    "XA transaction": ("XA START 'x';\nXA END 'x';\n", "XA statement"),
    "DATA DIRECTORY": ("CREATE TABLE d (a int) ENGINE=MyISAM DATA DIRECTORY='/tmp';\n", "DATA DIRECTORY"),
    "INDEX DIRECTORY past the first KiB": (
        "CREATE TABLE d (" + ", ".join(f"c{i} int" for i in range(800)) + ") INDEX DIRECTORY='/tmp';\n",
        "INDEX DIRECTORY"),
    "dash dash and a control character": ("SELECT 1 --\x01 x\n;\n", "`--` followed by"),
    "two statements in one under DELIMITER": (
        "DELIMITER ;;\nCREATE TABLE x (a int); GRANT ALL ON *.* TO e;;\nDELIMITER ;\n", "more than one statement"),
    "a statement after a trigger's one-statement body": (
        "DELIMITER ;;\nCREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET @a=1; DROP TABLE t;;\nDELIMITER ;\n",
        "more than one statement"),
    "a statement after a routine's END": (
        "DELIMITER ;;\nCREATE PROCEDURE p() BEGIN SELECT 1; END; DROP TABLE t;;\nDELIMITER ;\n",
        "more than one statement"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_dump_fails_restore_safety_at_any_chunk_size(name: str, tmp_path: Path) -> None:
    body, phrase = HOSTILE[name]
    dump = tmp_path / "hostile.sql"
    dump.write_text(HEADER + body)

    [safety] = [c for c in check_dump(dump).checks if c.name == "restore safety"]
    small, whole = DumpScan(dump, chunk=7), DumpScan(dump)

    assert safety.status == "fail" and phrase in safety.message, safety.message
    assert [(st.kind, st.start, st.refusal) for st in small] == [(st.kind, st.start, st.refusal) for st in whole]
    assert small.refusals == whole.refusals and small.contents().refusals == whole.contents().refusals


def _client(database: str, sql: bytes, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """The real mariadb client, fed the dump as `mariadb db < dump` is."""
    return subprocess.run(["mariadb", *client_args(), database], input=sql, capture_output=True, cwd=cwd)


def test_the_real_client_sends_two_statements_in_one_under_a_delimiter_and_the_server_runs_both(
    mariadb_server: sa.Engine, mariadb_client: str, tmp_path: Path
) -> None:
    dump = tmp_path / "multi.sql"
    dump.write_text("CREATE TABLE t (id int);\nDELIMITER ;;\nCREATE TABLE a (x int); CREATE TABLE canary (x int);;\n"
                    "CREATE PROCEDURE p() BEGIN DECLARE v INT; SET v = CASE WHEN 1 THEN 2 END; IF v THEN SELECT 1; "
                    "END IF; END ;;\nDELIMITER ;\n")
    with scratch_mariadb_database(mariadb_server, "mlt") as name:
        _client(name, dump.read_bytes(), tmp_path)
        created = _tables(mariadb_server, name)

    contents = read_dump(dump)
    assert "canary" in created  # the server ran the statement hidden behind the first `;`
    assert contents.ambiguities == ["a statement holding `;` that the server would run as more than one statement "
                                    "(at byte 38)"]  # the procedure's body is one statement: not refused


def test_the_real_client_runs_the_backslash_command_dump_check_refuses(
    mariadb_server: sa.Engine, mariadb_client: str, tmp_path: Path
) -> None:
    canary = tmp_path / "canary"
    dump = tmp_path / "hostile.sql"
    dump.write_text(f"{HEADER}/*!50000\\! touch {canary} */;\n")
    with scratch_mariadb_database(mariadb_server, "cmd") as name:
        _client(name, dump.read_bytes(), tmp_path)

    assert canary.exists()  # the client ran it: what dump-check calls a client command is one
    assert read_dump(dump).refusals[0].startswith("client command(s) \\! touch")


def _tables(server: sa.Engine, database: str) -> set[str]:
    with server.connect() as conn:
        return {r[0] for r in conn.exec_driver_sql(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", (database,))}


def test_a_delimiter_line_after_a_statement_does_not_change_the_delimiter_for_client_or_scanner(
    mariadb_server: sa.Engine, mariadb_client: str, tmp_path: Path
) -> None:
    dump = tmp_path / "delimiter.sql"
    dump.write_text("CREATE TABLE t (id int);\nSELECT 1; DELIMITER ;;\nCREATE TABLE a (x int);CREATE TABLE b (x int);;\n")
    with scratch_mariadb_database(mariadb_server, "dlm") as name:
        _client(name, dump.read_bytes(), tmp_path)
        created = _tables(mariadb_server, name)

    contents = read_dump(dump)
    assert created == set(contents.tables) == {"t", "a", "b"}
    assert contents.client_commands == ["DELIMITER ;;"]  # the client runs it at the statement's end: refused


MODES = {
    "NO_BACKSLASH_ESCAPES": "SET sql_mode='NO_BACKSLASH_ESCAPES';\nINSERT INTO t VALUES (1,'x\\');\n"
                            "INSERT INTO t VALUES (2,'a\\'),(3,'b;');\nSET sql_mode='';\nINSERT INTO t VALUES (4,'\\'');\n",
    "ANSI_QUOTES": "/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE=CONCAT(@@sql_mode, ',ANSI_QUOTES') */;\n"
                   "INSERT INTO \"t\" VALUES (1,'x\\''),(2,'\";');\n/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;\n"
                   "INSERT INTO t VALUES (3,\"it's\");\n",
}


ROWS = {"NO_BACKSLASH_ESCAPES": 4, "ANSI_QUOTES": 3}


def _execute(database: str, path: Path) -> None:
    """The scanner's statements one by one through PyMySQL on one session, as restore-check runs them."""
    url = sa.engine.make_url(MARIADB_URL)
    conn = pymysql.connect(host=url.host or "127.0.0.1", port=url.port or 3306, user=url.username or "root",
                           password=url.password or "", database=database, charset="utf8mb4", autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION sql_mode = ''")
            for st in DumpScan(path, keep_text=True):
                assert st.text is not None
                cur.execute(st.text)
    finally:
        conn.close()


def _rows(server: sa.Engine, database: str) -> list[tuple[int, str]]:
    with server.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(f"SELECT id, s FROM `{database}`.t ORDER BY id")]


@pytest.mark.parametrize("mode", list(MODES))
def test_a_dump_switching_sql_mode_is_read_as_the_client_and_the_server_read_it(
    mode: str, mariadb_server: sa.Engine, mariadb_client: str, tmp_path: Path
) -> None:
    dump = tmp_path / "mode.sql"
    dump.write_text(HEADER + MODES[mode])
    with scratch_mariadb_database(mariadb_server, "mdc") as by_client, \
            scratch_mariadb_database(mariadb_server, "mds") as by_scanner:
        run = _client(by_client, dump.read_bytes(), tmp_path)
        _execute(by_scanner, dump)
        client_rows, scanner_rows = _rows(mariadb_server, by_client), _rows(mariadb_server, by_scanner)

    check = check_dump(dump)
    assert run.returncode == 0, run.stderr
    assert client_rows == scanner_rows and len(scanner_rows) == check.dump.tables["t"].rows == ROWS[mode]
    assert check.verdict == "pass", [c.message for c in check.failed_checks]
    inserts = [st for st in DumpScan(dump) if st.kind == "insert"]
    flag = "no_backslash_escapes" if mode == "NO_BACKSLASH_ESCAPES" else "ansi_quotes"
    assert [getattr(st, flag) for st in inserts] == [True] * (len(inserts) - 1) + [False]


_MODE_SEQUENCE = [
    "SET sql_mode='ANSI_QUOTES'", "SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES,ANSI'",
    "SET @@session.sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES')", "SET sql_mode = ',,NO_BACKSLASH_ESCAPES,'",
    "SET @m = 'ANSI_QUOTES', sql_mode = 'NO_BACKSLASH_ESCAPES'", "SET sql_mode = @m", "SET @m = @@sql_mode",
    "SET sql_mode = CONCAT_WS(',', 'POSTGRESQL', @@sql_mode)", "SET LOCAL sql_mode = TRADITIONAL",
    "SET sql_mode = 'ANSI_QUOTES', @m = @@sql_mode", "SET sql_mode = @m",
]


@pytest.mark.parametrize("upto", range(len(_MODE_SEQUENCE)))
def test_the_session_follows_sql_mode_as_the_server_does(upto: int, mariadb_server: sa.Engine) -> None:
    session = Session()
    with mariadb_server.connect() as conn:
        conn.exec_driver_sql("SET SESSION sql_mode = 'STRICT_TRANS_TABLES'")
        for earlier in _MODE_SEQUENCE[: upto + 1]:
            conn.exec_driver_sql(earlier.replace("%", "%%"))
            assert session.observe(earlier, True, set()) == []
        server = set(conn.exec_driver_sql("SELECT @@SESSION.sql_mode").scalar_one().split(","))

    assert session.ansi_quotes == ("ANSI_QUOTES" in server)
    assert session.no_backslash_escapes == ("NO_BACKSLASH_ESCAPES" in server)


@pytest.mark.parametrize("statement, problem", [
    ("SET sql_mode = DEFAULT", "cannot evaluate"), ("SET sql_mode = @@GLOBAL.sql_mode", "cannot evaluate"),
    ("SET sql_mode = @never_set", "cannot evaluate"), ("SET sql_mode = UPPER('ansi')", "cannot evaluate"),
    ("SET sql_mode = 'ANSI_QUOTES,BOGUS'", "BOGUS"), ("SET sql_mode = CONCAT(@@sql_mode, 'ANSI')", "glued"),
    ("SET NAMES sjis", "sjis"), ("SET character_set_client = DEFAULT", "cannot evaluate"),
    ("SET STATEMENT sql_mode='ANSI_QUOTES' FOR SELECT 1", "SET STATEMENT"),
    ("SET @@GLOBAL.max_connections = 100, sql_mode = 'ANSI'", "scope"),
])
def test_a_mode_or_character_set_the_session_cannot_be_sure_of_is_a_problem(statement: str, problem: str) -> None:
    problems = Session().observe(statement, True, set())

    assert len(problems) == 1 and problem in problems[0], problems


def test_a_global_scope_holds_for_the_variables_after_it_as_in_mariadb() -> None:
    session = Session()

    assert session.observe("SET GLOBAL max_connections = 100, sql_mode = 'ANSI_QUOTES'", True, set()) == []
    assert not session.ansi_quotes  # MariaDB sets the global sql_mode here, not the session's


def test_mysqldump_and_mariadb_dump_output_passes_and_carries_the_mode_of_each_statement(
    shared_data: Path, mariadb_server: sa.Engine, mariadb_client: str, tmp_path: Path
) -> None:
    world = list(DumpScan(shared_data / "world" / "world.sql"))
    with scratch_mariadb_database(mariadb_server, "mdd") as name:
        load_sql(mariadb_client, name, "CREATE TABLE t (id int primary key, s text);\n"
                 "INSERT INTO t VALUES (1, 'it''s \\\\ \"q\" ;');\nCREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW "
                 "SET NEW.s = CONCAT(NEW.s, ';');\nCREATE VIEW v AS SELECT CONCAT(s, '\\'') AS x FROM t;\n")
        dump = dump_database(name, tmp_path / "d.sql")
        check = check_dump(dump)

    assert check.verdict == "pass", [c.message for c in check.failed_checks]
    assert {st.sql_mode for st in world if st.kind == "insert"} == {"NO_AUTO_VALUE_ON_ZERO"}
    assert world[-1].sql_mode is None and not any(st.ansi_quotes or st.no_backslash_escapes for st in world)
    assert check.dump.tables["t"].rows == 1 and set(check.dump.triggers) == {"tr"} and set(check.dump.views) == {"v"}


_PIECES = ["'plain'", "'it\\'s'", "'two''quotes'", "'a\\\\'", "'x),(y'", "'semi;colon\n'", "'-- no comment'",
           "'/* none */'", "'\"dq\"'", "'@v'", "NULL", "-1.5e-3", "_binary 'b\\0'", "0x2829", "''", "'\\\\\\''"]


def _long_insert(seed: int, extra: str = "") -> bytes:
    import random

    rng = random.Random(seed)
    tuples = [f"({n},{','.join(rng.choice(_PIECES) for _ in range(4))})" for n in range(1, 1500)]
    if extra:
        tuples.insert(700, extra)
    return ("CREATE TABLE t (id int, a text, b text, c text, d text);\nINSERT INTO t VALUES "
            + ",".join(tuples) + ";\nINSERT INTO t VALUES " + ",".join(tuples[:300]) + ";\n").encode()


def _statements(data: bytes, chunk: int, fast: bool, monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    from dbaudit.backups.sqlscan import SqlScanner, Statement

    with monkeypatch.context() as patch:
        if not fast:
            patch.setattr(SqlScanner, "_tuples_fast", lambda self, buf, i, n, first=False: i)
            patch.setattr(SqlScanner, "_row_run", lambda self, buf, i, n: None)
        found: list[Statement] = []
        scanner = SqlScanner(found.append, keep_text=True)
        for i in range(0, len(data), chunk):
            scanner.feed(data[i : i + chunk])
        end = scanner.finish()
    return [(s.head, s.alt_head, s.start, s.end, s.tuples, s.text, s.problems) for s in found] + [
        (end.problem, end.ambiguities)]


@pytest.mark.parametrize("extra", ["", "(9,/*!50705 'x',*/ 'y','z',NULL)", "(9,CONCAT('a','b'),'c','d',@v)",
                                   "(9,'a','b','c','d') ,\n (10,'e','f','g','h')"])
def test_the_fast_path_over_tuple_lists_reads_exactly_as_the_byte_scanner_at_any_chunk_size(
    extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _long_insert(3, extra)
    slow = _statements(data, len(data), False, monkeypatch)

    assert slow[1][4] == 1499 + bool(extra) + (extra.count("(1") if "\n" in extra else 0)
    for chunk in (97, 4096, 65536, 1 << 20, len(data)):
        assert _statements(data, chunk, True, monkeypatch) == slow, chunk


def test_the_fast_path_follows_no_backslash_escapes(monkeypatch: pytest.MonkeyPatch) -> None:
    tuples = ",".join(f"({n},'a\\','b''c','d\\\\')" for n in range(2000))
    data = f"SET sql_mode='NO_BACKSLASH_ESCAPES';\nINSERT INTO t VALUES {tuples};\n".encode()

    slow = _statements(data, len(data), False, monkeypatch)

    assert slow[1][4] == 2000
    for chunk in (101, 8192, len(data)):
        assert _statements(data, chunk, True, monkeypatch) == slow, chunk


@pytest.mark.parametrize("late", ["(2000,other.evil())", "(2000,(SELECT secret FROM other.t LIMIT 1))"])
def test_an_insert_calling_code_past_its_classified_head_fails_restore_safety(late: str, tmp_path: Path) -> None:
    dump = tmp_path / "late.sql"
    rows = ",".join(f"({n},'row {n}')" for n in range(1, 1000))
    dump.write_text(f"{HEADER}INSERT INTO t VALUES {rows},{late};\n")

    [safety] = [c for c in check_dump(dump).checks if c.name == "restore safety"]

    assert safety.status == "fail" and "past its first 4,096 bytes" in safety.message, safety.message
