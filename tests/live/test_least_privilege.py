"""Least privilege (issue #9, classes 3 and 4): metrics never run with rights beyond the database, the
`dbaudit grants` account sees everything, and a snapshot says what its account could not see."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import ScratchDB
from dbaudit.audit.diff import diff_snapshots
from dbaudit.audit.result import audit
from dbaudit.cli import main
from dbaudit.core.errors import DbauditError
from dbaudit.core.snapshot import load_snapshot
from dbaudit.live.account import mysql_assessment, parse_grants
from dbaudit.live.grants import least_privilege_grants
from dbaudit.live.inspect import take_snapshot
from dbaudit.live.metrics import metric_problem

# --- the metric parse (no server) -----------------------------------------------------------------

REFUSED = [
    ("mysql", "SELECT COUNT(*) FROM chats INTO/**/OUTFILE '/tmp/x'"),
    ("mysql", "SELECT COUNT(*) FROM chats /*!INTO*/ /*!OUTFILE '/tmp/x'*/"),
    ("mysql", "SELECT COUNT(*) FROM chats /*!50000 INTO @leak */"),
    ("mysql", "SELECT COUNT(*) FROM chats /*M!100000 INTO DUMPFILE '/tmp/x' */"),
    ("mysql", "SELECT COUNT(*) INTO @leak FROM chats"),
    ("mysql", "SELECT @n := COUNT(*) FROM chats"),
    ("mysql", "SELECT id FROM chats LOCK IN SHARE MODE"),
    ("mysql", "SELECT id FROM chats FOR\nUPDATE"),
    ("mysql", "SELECT LOAD_FILE('/etc/passwd')"),
    ("mysql", "SELECT GET_LOCK('x', 10)"),
    ("mysql", "SELECT 1; SELECT 2"),
    ("postgresql", "WITH gone AS (DELETE FROM chats RETURNING 1) SELECT COUNT(*) FROM gone"),
    ("postgresql", "SELECT * INTO copy_of_chats FROM chats"),
    ("postgresql", "SELECT id FROM chats FOR NO KEY UPDATE"),
    ("postgresql", "SELECT pg_catalog.pg_read_file('/etc/passwd')"),
    ("postgresql", "SELECT set_config('role', 'postgres', false)"),
    ("postgresql", "SELECT query_to_xml('COPY (SELECT 1) TO PROGRAM ''id''', true, true, '')"),
    ("postgresql", "SELECT lo_export(1, '/tmp/x')"),
    ("postgresql", "SELECT nextval('chats_id_seq')"),
    ("postgresql", "UPDATE chats SET id = id"),
    ("sqlite", "SELECT COUNT(*) FROM chats; DROP TABLE chats"),
]
ALLOWED = [
    ("mysql", "SELECT COUNT(*) FROM chats WHERE note LIKE '%x%'"),
    ("mysql", "SELECT COUNT(DISTINCT contact) FROM chats /* a plain comment */"),
    ("postgresql", "WITH t AS (SELECT 1 AS n) SELECT SUM(n) FROM t"),
    ("postgresql", "(SELECT COUNT(*) FROM chats) UNION ALL (SELECT 0)"),
    ("postgresql", "SELECT COUNT(*) FILTER (WHERE status = 'active') FROM chats"),
    ("sqlite", "SELECT COUNT(*) FROM chats"),
]


@pytest.mark.parametrize(("dialect", "sql"), REFUSED)
def test_metric_sql_that_could_act_beyond_a_read_is_refused_however_it_is_spelled(dialect: str, sql: str) -> None:
    assert metric_problem(sql, dialect), sql


@pytest.mark.parametrize(("dialect", "sql"), ALLOWED)
def test_plain_metric_queries_pass_the_parse(dialect: str, sql: str) -> None:
    assert metric_problem(sql, dialect) is None


# --- reading grants (no server) -------------------------------------------------------------------

def test_grants_decide_what_an_account_may_do_and_see() -> None:
    root = mysql_assessment(parse_grants(
        ["GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` IDENTIFIED VIA unix_socket WITH GRANT OPTION"]), "shop")
    assert root.account.privileged == ["ALL on *.*", "GRANT OPTION on *.*"]
    assert set(root.visibility.values()) == {"complete"}
    narrow = mysql_assessment(parse_grants(["GRANT USAGE ON *.* TO `a`@`%`",
                                            "GRANT SELECT, SHOW VIEW ON `shop`.* TO `a`@`%`"]), "shop")
    assert narrow.account.privileged == [] and narrow.account.writes == []
    assert narrow.visibility == {"tables": "complete", "views": "complete", "triggers": "none", "routines": "none"}
    pattern = mysql_assessment(parse_grants(["GRANT SELECT, INSERT ON `sh\\_p%`.* TO `a`@`%`",
                                             "GRANT FILE ON *.* TO `a`@`%`"]), "sh_p1")
    assert pattern.account.writes == ["FILE on *.*", "INSERT on `sh\\_p%`.*"]
    assert pattern.account.privileged == ["FILE on *.*"]
    assert pattern.visibility["views"] == "names"  # no SHOW VIEW: views without their definitions
    assert mysql_assessment(parse_grants(["GRANT SELECT ON `shop`.* TO `a`@`%`"]), "shopX").visibility["tables"] == \
        "none"


# --- MariaDB --------------------------------------------------------------------------------------

CANARY_GLOBAL = "slow_launch_time"  # nothing reads it but a status counter


@pytest.fixture
def shop_mariadb(make_mariadb: Callable[[], ScratchDB]) -> ScratchDB:
    """A database with a trigger, routines, a view, and an INVOKER view over a function that changes a
    server global (which only an account with SUPER may do)."""
    db = make_mariadb()
    db.run_sql("CREATE TABLE chats (id INT PRIMARY KEY, contact VARCHAR(20) NOT NULL, note TEXT)",
               "INSERT INTO chats VALUES (1, 'a', NULL), (2, 'b', 'x|y')",
               "CREATE TRIGGER chats_bi BEFORE INSERT ON chats FOR EACH ROW SET NEW.contact = TRIM(NEW.contact)",
               "CREATE FUNCTION chat_count() RETURNS INT READS SQL DATA RETURN (SELECT COUNT(*) FROM chats)",
               "CREATE PROCEDURE purge_chats() DELETE FROM chats",
               "CREATE VIEW chat_contacts AS SELECT id, contact FROM chats",
               f"CREATE FUNCTION touch_global() RETURNS INT SQL SECURITY INVOKER "
               f"BEGIN SET GLOBAL {CANARY_GLOBAL} = 1337; RETURN 1; END",
               "CREATE SQL SECURITY INVOKER VIEW innocent AS SELECT touch_global() AS n")
    return db


@pytest.fixture
def mariadb_account(mariadb_server: sa.Engine) -> Iterator[Callable[[ScratchDB, list[str] | None], str]]:
    """make(db, grants): a fresh account holding exactly `grants` (None: what `dbaudit grants` prints)."""
    made: list[str] = []

    def make(db: ScratchDB, grants: list[str] | None = None) -> str:
        user, password = f"dbaudit_t_u_{uuid.uuid4().hex[:8]}", f"Pw{uuid.uuid4().hex}"
        made.append(user)
        database = sa.engine.make_url(db.url).database or ""
        statements = grants if grants is not None else least_privilege_grants(db.url, user=user)
        with mariadb_server.connect() as conn:
            conn.exec_driver_sql(f"CREATE USER '{user}'@'%%' IDENTIFIED BY '{password}'")
            for statement in statements:
                if not statement.startswith("--"):
                    conn.exec_driver_sql(statement.format(user=user, db=database).replace("%", "%%"))
        return sa.engine.make_url(db.url).set(username=user, password=password).render_as_string(hide_password=False)

    yield make
    with mariadb_server.connect() as conn:
        for user in made:
            conn.exec_driver_sql(f"DROP USER IF EXISTS '{user}'@'%%'")


@pytest.fixture
def canary_global(mariadb_server: sa.Engine) -> Iterator[Callable[[], object]]:
    def read() -> object:
        with mariadb_server.connect() as conn:
            return conn.exec_driver_sql(f"SELECT @@GLOBAL.{CANARY_GLOBAL}").scalar_one()

    original = read()
    yield read
    with mariadb_server.connect() as conn:
        conn.exec_driver_sql(f"SET GLOBAL {CANARY_GLOBAL} = {int(original)}")  # type: ignore[call-overload]


def test_an_account_with_select_and_show_view_records_that_it_saw_no_triggers_or_routines(
        shop_mariadb: ScratchDB, mariadb_account, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = mariadb_account(shop_mariadb, ["GRANT SELECT, SHOW VIEW ON `{db}`.* TO '{user}'@'%'"])
    assert main(["snapshot", url, "-o", str(tmp_path / "narrow.json")]) == 0
    warned = capsys.readouterr().err
    assert "saw none of the triggers" in warned and "saw none of the routines" in warned
    narrow = load_snapshot(tmp_path / "narrow.json")
    assert narrow.triggers == {} and narrow.routines == {}
    assert narrow.visibility == {"tables": "complete", "views": "complete", "triggers": "none", "routines": "none"}
    assert narrow.account and narrow.account.writes == [] and narrow.account.privileged == []


def test_diff_fails_when_the_two_snapshots_accounts_saw_different_things(
        shop_mariadb: ScratchDB, mariadb_account, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    narrow_url = mariadb_account(shop_mariadb, ["GRANT SELECT, SHOW VIEW ON `{db}`.* TO '{user}'@'%'"])
    assert main(["snapshot", shop_mariadb.url, "-o", str(tmp_path / "root.json")]) == 0
    assert main(["snapshot", narrow_url, "-o", str(tmp_path / "narrow.json")]) == 0
    capsys.readouterr()
    assert main(["diff", str(tmp_path / "root.json"), str(tmp_path / "narrow.json")]) == 1
    out = capsys.readouterr().out
    assert "FAIL [visibility] triggers" in out and "FAIL [visibility] routines" in out
    result = audit(load_snapshot(tmp_path / "narrow.json"), load_snapshot(tmp_path / "narrow.json"))
    skipped = {c.name for c in result.checks if c.category == "visibility" and c.status == "skipped"}
    assert skipped == {"triggers", "routines"} and result.passed  # the same blind spot on both sides: said, not failed


def test_the_printed_grants_let_a_snapshot_see_everything_root_sees_on_mariadb(
        shop_mariadb: ScratchDB, mariadb_account) -> None:
    url = mariadb_account(shop_mariadb)
    mine = take_snapshot(url, fingerprint="chunks")
    root = take_snapshot(shop_mariadb.url, fingerprint="chunks")
    assert set(mine.visibility.values()) == {"complete"}
    assert set(mine.triggers) == {"chats_bi"} and set(mine.routines) == {"chat_count", "purge_chats", "touch_global"}
    assert all(r.sha256 for r in mine.routines.values())
    assert diff_snapshots(root, mine) == []
    assert mine.tables["chats"].fingerprint == root.tables["chats"].fingerprint
    assert mine.account and mine.account.privileged == []
    assert [w.split(" on ")[0] for w in mine.account.writes] == ["TRIGGER"]  # said: the one write-capable grant


def test_metrics_as_root_are_refused_and_an_invoker_views_function_never_runs(
        shop_mariadb: ScratchDB, mariadb_account, canary_global, tmp_path: Path) -> None:
    before = canary_global()
    with pytest.raises(DbauditError, match="refusing to run metrics as root.*allow-privileged"):
        take_snapshot(shop_mariadb.url, {"innocent": "SELECT n FROM innocent"})
    assert canary_global() == before
    # The least-privilege account runs it: the function runs with that account's rights, which cannot SET GLOBAL.
    snap = take_snapshot(mariadb_account(shop_mariadb), {"innocent": "SELECT n FROM innocent",
                                                        "chats": "SELECT COUNT(*) FROM chats"})
    assert snap.metrics["chats"].value == 2
    assert snap.metrics["innocent"].error and "SUPER" in snap.metrics["innocent"].error
    assert canary_global() == before


@pytest.mark.parametrize("sql", [
    "SELECT COUNT(*) FROM chats /*!INTO*/ /*!OUTFILE '{path}'*/",
    "SELECT COUNT(*) FROM chats INTO/**/OUTFILE '{path}'",
    "SELECT COUNT(*) FROM chats /*M!100000 INTO DUMPFILE '{path}' */",
])
def test_a_metric_hiding_into_outfile_is_refused_even_with_allow_privileged(shop_mariadb: ScratchDB, sql: str) -> None:
    canary = Path(f"/tmp/dbaudit_t_outfile_{uuid.uuid4().hex[:8]}")
    try:
        with pytest.raises(DbauditError, match="must only read"):
            take_snapshot(shop_mariadb.url, {"m": sql.format(path=canary)}, allow_privileged=True)
        assert not canary.exists()
    finally:
        canary.unlink(missing_ok=True)


def test_an_older_snapshot_without_visibility_reads_as_unknown_and_still_diffs(
        shop_mariadb: ScratchDB, tmp_path: Path) -> None:
    take_snapshot(shop_mariadb.url).save(tmp_path / "new.json")
    data = json.loads((tmp_path / "new.json").read_text())
    del data["visibility"], data["account"]
    (tmp_path / "old.json").write_text(json.dumps(data))
    old = load_snapshot(tmp_path / "old.json")
    assert old.visible("triggers") == "unknown" and old.account is None
    result = audit(old, load_snapshot(tmp_path / "new.json"))
    assert result.passed and not [c for c in result.checks if c.category == "visibility"]


# --- PostgreSQL -----------------------------------------------------------------------------------


@pytest.fixture
def shop_postgres(make_postgres: Callable[[], ScratchDB]) -> Iterator[tuple[ScratchDB, Path]]:
    """A database with a trigger, a function, and a view over a function that writes a canary file on the
    server (COPY … TO, for superusers and pg_write_server_files only)."""
    db = make_postgres()
    canary = Path(f"/tmp/dbaudit_t_canary_{uuid.uuid4().hex[:8]}.txt")
    statements = [
        "CREATE TABLE chats (id int PRIMARY KEY, contact text NOT NULL)",
        "INSERT INTO chats VALUES (1, 'a'), (2, 'b')",
        "CREATE FUNCTION trim_contact() RETURNS trigger LANGUAGE plpgsql AS "
        "$$BEGIN NEW.contact := btrim(NEW.contact); RETURN NEW; END$$",
        "CREATE TRIGGER chats_bi BEFORE INSERT ON chats FOR EACH ROW EXECUTE FUNCTION trim_contact()",
        "CREATE FUNCTION write_canary() RETURNS int LANGUAGE plpgsql AS "
        f"$$BEGIN EXECUTE 'COPY (SELECT 1) TO ''{canary}'''; RETURN 1; END$$",
        "CREATE VIEW innocent AS SELECT write_canary() AS n",
    ]
    with db.engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement, execution_options={"no_parameters": True})
    try:
        yield db, canary
    finally:
        canary.unlink(missing_ok=True)


@pytest.fixture
def postgres_account(postgres_server: sa.Engine) -> Iterator[Callable[[ScratchDB], str]]:
    made: list[tuple[str, ScratchDB]] = []

    def make(db: ScratchDB) -> str:
        role = f"dbaudit_t_u_{uuid.uuid4().hex[:8]}"
        with postgres_server.connect() as conn:
            conn.exec_driver_sql(f'CREATE ROLE "{role}" LOGIN')
        made.append((role, db))
        db.run_sql(*[s for s in least_privilege_grants(db.url, user=role) if not s.startswith("--")])
        return sa.engine.make_url(db.url).set(username=role).render_as_string(hide_password=False)

    yield make
    for role, db in made:
        db.run_sql(f'DROP OWNED BY "{role}"')
        with postgres_server.connect() as conn:
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{role}"')


def test_metrics_as_a_postgres_superuser_are_refused_and_the_views_function_writes_no_file(
        shop_postgres: tuple[ScratchDB, Path], postgres_account) -> None:
    db, canary = shop_postgres
    with pytest.raises(DbauditError, match="refusing to run metrics as postgres, which holds superuser"):
        take_snapshot(db.url, {"innocent": "SELECT n FROM innocent"})
    assert not canary.exists()
    snap = take_snapshot(postgres_account(db), {"innocent": "SELECT n FROM innocent",
                                                "chats": "SELECT COUNT(*) FROM chats"})
    assert snap.metrics["chats"].value == 2
    assert snap.metrics["innocent"].error and not canary.exists()


def test_the_printed_grants_let_a_snapshot_see_everything_root_sees_on_postgres(
        shop_postgres: tuple[ScratchDB, Path], postgres_account) -> None:
    db, _ = shop_postgres
    mine = take_snapshot(postgres_account(db), fingerprint="chunks")
    root = take_snapshot(db.url, fingerprint="chunks")
    assert diff_snapshots(root, mine) == []
    assert set(mine.triggers) == {"chats.chats_bi"} and mine.routines
    assert mine.tables["chats"].fingerprint == root.tables["chats"].fingerprint
    assert mine.account and mine.account.privileged == [] and mine.account.writes == []
    assert root.account and "superuser" in root.account.writes


def test_metrics_are_read_by_the_server_as_the_parse_read_them_whatever_the_sql_mode(
        shop_mariadb: ScratchDB) -> None:
    # A session whose SQL mode makes '\' end a string would run other statements than the ones checked.
    url = sa.engine.make_url(shop_mariadb.url).update_query_dict(
        {"init_command": "SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES,ANSI_QUOTES,ONLY_FULL_GROUP_BY'"})
    snap = take_snapshot(url.render_as_string(hide_password=False),
                         {"len": "SELECT LENGTH('a\\'b')", "mode": "SELECT @@SESSION.sql_mode"}, allow_privileged=True)
    assert snap.metrics["len"].value == 3
    assert snap.metrics["mode"].value == "ONLY_FULL_GROUP_BY"


def test_row_level_security_fails_the_snapshot_instead_of_hiding_rows_in_silence(
        shop_postgres: tuple[ScratchDB, Path], postgres_account) -> None:
    db, _ = shop_postgres
    url = postgres_account(db)
    db.run_sql("ALTER TABLE chats ENABLE ROW LEVEL SECURITY",
               "CREATE POLICY only_a ON chats USING (contact = 'a')")
    with pytest.raises(DbauditError, match="row-level security"):
        take_snapshot(url)
    assert take_snapshot(db.url).tables["chats"].row_count == 2  # the owner/superuser is not filtered


@pytest.mark.parametrize("active", [False, True])
def test_a_role_holding_file_makes_the_account_privileged_whether_or_not_it_is_active(
        shop_mariadb: ScratchDB, mariadb_account, mariadb_server: sa.Engine, active: bool) -> None:
    role = f"dbaudit_t_r_{uuid.uuid4().hex[:8]}"
    with mariadb_server.connect() as conn:
        conn.exec_driver_sql(f"CREATE ROLE `{role}`")
        conn.exec_driver_sql(f"GRANT FILE ON *.* TO `{role}`")
    try:
        grants = ["GRANT SELECT ON `{db}`.* TO '{user}'@'%'", f"GRANT `{role}` TO '{{user}}'@'%'"]
        grants += [f"SET DEFAULT ROLE `{role}` FOR '{{user}}'@'%'"] if active else []
        url = mariadb_account(shop_mariadb, grants)
        with pytest.raises(DbauditError, match=f"refusing to run metrics.*{role}" if not active else "FILE on"):
            take_snapshot(url, {"n": "SELECT COUNT(*) FROM chats"})
    finally:
        with mariadb_server.connect() as conn:
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS `{role}`")
