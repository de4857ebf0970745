"""What makes an audit trustworthy: no secrets in artifacts, no writes, hostile names, dying servers,
timeouts, and documents that match their published JSON Schemas."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path

import jsonschema
import pytest
import sqlalchemy as sa

from conftest import MARIADB_URL, POSTGRES_URL, ROOT, ScratchDB
from dbaudit.audit.diff import diff_snapshots
from dbaudit.audit.expectations import parse_expectations
from dbaudit.audit.result import audit
from dbaudit.core import serde
from dbaudit.core.errors import DbauditError
from dbaudit.demo import EXPECTATIONS
from dbaudit.live.compare import compare
from dbaudit.live.inspect import take_snapshot
from dbaudit.outputs.report import execute_notebook

SCHEMAS = ROOT / "lib" / "dbaudit" / "schemas"
# `:b` after a non-word character is what text() takes for a bind parameter; `%s` is what a driver formats.
HOSTILE = ["we`ird", 'quo"te', "sp ace", "ünïcødé", "per%cent", "co:lon", "semi;colon --", "a :b", "x %s y",
           'we"ird %s :x;', "p %(x)s :1 ?"]


def dbaudit(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dbaudit", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})}, cwd=cwd)


def _contacts(db: ScratchDB) -> None:
    meta = sa.MetaData()
    sa.Table("contacts", meta, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("status", sa.String(20), nullable=False))
    meta.create_all(db.engine)
    with db.engine.begin() as conn:
        conn.execute(sa.table("contacts", sa.column("id"), sa.column("status")).insert(),
                     [{"id": i, "status": "connected" if i % 2 else "gone"} for i in range(1, 21)])


@pytest.fixture
def mariadb_user(mariadb_server: sa.Engine) -> Iterator[Callable[[str, str], tuple[str, str]]]:
    """Create MariaDB users with a password and only the grants given; drop them afterwards."""
    users: list[str] = []

    def make(database: str, grants: str) -> tuple[str, str]:
        user, password = f"dbaudit_u_{uuid.uuid4().hex[:8]}", f"Pw-{uuid.uuid4().hex}"
        with mariadb_server.connect() as conn:
            conn.execute(sa.text(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'"))
            conn.execute(sa.text(f"GRANT {grants} ON `{database}`.* TO '{user}'@'%'"))
        users.append(user)
        return user, password

    yield make
    with mariadb_server.connect() as conn:
        for user in users:
            conn.execute(sa.text(f"DROP USER IF EXISTS '{user}'@'%'"))


def _host_url(base: str, user: str, database: str) -> str:
    return base.replace("root@", f"{user}@").replace("postgres@", f"{user}@") + f"/{database}"


# --- secrets ------------------------------------------------------------------------------------


def test_a_full_audit_never_writes_the_password_into_any_file(
    make_mariadb: Callable[[], ScratchDB], mariadb_user: Callable[[str, str], tuple[str, str]], tmp_path: Path
) -> None:
    db = make_mariadb()
    _contacts(db)
    name = db.url.rsplit("/", 1)[1]
    user, password = mariadb_user(name, "SELECT, SHOW VIEW")
    url = _host_url(MARIADB_URL, user, name)
    expect = tmp_path / "expect.yml"
    expect.write_text("metrics:\n  connected: SELECT COUNT(*) FROM contacts WHERE status = 'connected'\n"
                      "rows: {default: no_shrink}\n")
    env = {"DBAUDIT_PASSWORD": password}
    outputs = [
        dbaudit("snapshot", url, "-o", str(tmp_path / "before.json"), "--expect", str(expect), env=env),
        # A password inside the URL (discouraged, but people do it) must be masked as well.
        dbaudit("snapshot", url.replace(f"{user}@", f"{user}:{password}@"), "-o", str(tmp_path / "after.json"),
                "--expect", str(expect)),
        dbaudit("diff", str(tmp_path / "before.json"), str(tmp_path / "after.json"), "--expect", str(expect),
                "--json", str(tmp_path / "result.json"), "--junit", str(tmp_path / "junit.xml")),
        dbaudit("report", "--before", str(tmp_path / "before.json"), "--after", str(tmp_path / "after.json"),
                "--expect", str(expect), "--out-dir", str(tmp_path / "reports"), env=env),
        dbaudit("compare", url, url, "--json", str(tmp_path / "compare.json"), "--report",
                "--out-dir", str(tmp_path / "reports"), env=env),
        dbaudit("compare", url.replace(f"{user}@", f"{user}:{password}@"), url, "--counts-only", env=env),
        dbaudit("triggers", url, "--json", str(tmp_path / "triggers.json"), env=env),
    ]
    # The notebook path a DBA would take in JupyterLab: URLs as parameters, password from the environment.
    os.environ["DBAUDIT_PASSWORD"] = password
    try:
        execute_notebook(ROOT / "notebooks" / "audit.ipynb", tmp_path / "live.ipynb",
                         {"before": url, "after": url, "expectations": str(expect), "fingerprint": "table"},
                         progress=False)
        execute_notebook(ROOT / "notebooks" / "compare.ipynb", tmp_path / "live-compare.ipynb",
                         {"a": url, "b": url}, progress=False)
    finally:
        del os.environ["DBAUDIT_PASSWORD"]

    assert [o.returncode for o in outputs] == [0, 0, 0, 0, 0, 0, 0], [o.stderr for o in outputs]
    produced = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(produced) >= 10
    leaks = [str(p) for p in produced if password.encode() in p.read_bytes()]
    leaks += [o.args[3] for o in outputs if password in o.stdout + o.stderr]
    assert leaks == []
    assert json.loads((tmp_path / "after.json").read_text())["source"].startswith(f"mysql+pymysql://{user}:***@")


# --- nothing is written ---------------------------------------------------------------------------


def test_every_read_command_works_for_a_select_only_mariadb_user(
    make_mariadb: Callable[[], ScratchDB], mariadb_user: Callable[[str, str], tuple[str, str]], tmp_path: Path
) -> None:
    db = make_mariadb()
    _contacts(db)
    db.run_sql("CREATE VIEW connected AS SELECT id FROM contacts WHERE status = 'connected'")
    name = db.url.rsplit("/", 1)[1]
    user, password = mariadb_user(name, "SELECT, SHOW VIEW")
    url = _host_url(MARIADB_URL, user, name)
    env = {"DBAUDIT_PASSWORD": password}

    runs = [
        dbaudit("snapshot", url, "-o", str(tmp_path / "a.json"), "--fingerprint", "chunks", env=env),
        dbaudit("snapshot", url, "-o", str(tmp_path / "b.json"), "--fingerprint", "chunks", env=env),
        dbaudit("diff", str(tmp_path / "a.json"), str(tmp_path / "b.json")),
        dbaudit("compare", url, url, env=env),
        dbaudit("triggers", url, "--baseline", str(tmp_path / "a.json"), env=env),
    ]

    assert [r.returncode for r in runs] == [0, 0, 0, 0, 0], [r.stderr for r in runs]
    snap = json.loads((tmp_path / "a.json").read_text())
    assert snap["tables"]["contacts"]["row_count"] == 20 and "connected" in snap["views"]
    assert snap["tables"]["contacts"]["fingerprint"]


@pytest.fixture
def postgres_reader(make_postgres: Callable[[], ScratchDB], postgres_server: sa.Engine) -> Iterator[tuple[ScratchDB, str]]:
    db = make_postgres()
    _contacts(db)
    role = f"dbaudit_r_{uuid.uuid4().hex[:8]}"
    name = db.url.rsplit("/", 1)[1]
    db.run_sql(f'CREATE ROLE "{role}" LOGIN', f'GRANT USAGE ON SCHEMA public TO "{role}"',
               f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{role}"',
               f'ALTER ROLE "{role}" SET default_transaction_read_only = on')
    yield db, _host_url(POSTGRES_URL, role, name)
    db.engine.dispose()
    with postgres_server.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{role}"')


def test_every_read_command_works_for_a_read_only_postgres_role(postgres_reader: tuple[ScratchDB, str], tmp_path: Path) -> None:
    _, url = postgres_reader
    runs = [
        dbaudit("snapshot", url, "-o", str(tmp_path / "s.json"), "--fingerprint", "table"),
        dbaudit("compare", url, url),
        dbaudit("triggers", url, "--baseline", str(tmp_path / "s.json")),
    ]
    assert [r.returncode for r in runs] == [0, 0, 0], [r.stderr for r in runs]
    assert json.loads((tmp_path / "s.json").read_text())["tables"]["contacts"]["row_count"] == 20


# --- hostile identifiers --------------------------------------------------------------------------


def test_hostile_table_and_column_names_are_quoted_by_the_dialect(make_db: Callable[[], ScratchDB]) -> None:
    big, keyed, loose = "big :x %s", "hash :k %(k)s", "rows :r; --"  # range, hash and rowhash chunking

    def build(db: ScratchDB, changed: bool) -> None:
        meta = sa.MetaData()
        tables = [sa.Table(name, meta, sa.Column(f"{name} id", sa.Integer, primary_key=True),
                           sa.Column(f"{name} col", sa.String(10)), sa.Index(f"ix {name}"[:60], f"{name} col"))
                  for name in HOSTILE]
        ranged = sa.Table(big, meta, sa.Column("k :x", sa.Integer, primary_key=True),
                          sa.Column("v %s :y", sa.String(10)))
        hashed = sa.Table(keyed, meta, sa.Column("k :x %s", sa.String(10), primary_key=True),
                          sa.Column("v :v", sa.Integer))
        bare = sa.Table(loose, meta, sa.Column("v :x", sa.Integer))
        meta.create_all(db.engine)
        with db.engine.begin() as conn:
            for i, table in enumerate(tables):
                conn.execute(table.insert(), [{table.c[0].name: n, table.c[1].name: f"v{n}"} for n in range(1, i + 2)])
            conn.execute(ranged.insert(), [{"k :x": n, "v %s :y": f"v{n}"} for n in range(1, 601)])
            conn.execute(hashed.insert(), [{"k :x %s": f"k{n}", "v :v": n} for n in range(1, 21)])
            conn.execute(bare.insert(), [{"v :x": n} for n in range(1, 21)])
            if changed:
                last = tables[-1]
                conn.execute(last.update().where(last.c[0] == 1).values({last.c[1]: "changed"}))
                conn.execute(ranged.update().where(ranged.c["k :x"] == 300).values({"v %s :y": "changed"}))
                conn.execute(hashed.update().where(hashed.c["k :x %s"] == "k5").values({"v :v": 0}))
                conn.execute(bare.update().where(bare.c["v :x"] == 7).values({"v :x": 70}))

    db, other = make_db(), make_db()
    build(db, changed=False)
    build(other, changed=True)
    differing = {HOSTILE[-1], big, keyed, loose}

    # Fingerprints: every table, chunked where big enough; the changed tables and only they differ.
    before = take_snapshot(db.url, fingerprint="chunks")
    changed = take_snapshot(other.url, fingerprint="chunks")
    assert all(t.fingerprint and t.fingerprint.startswith("c2/") for t in before.tables.values())
    assert len(before.tables[big].chunks) == 2
    assert before.tables[big].primary_key == ["k :x"]  # by name, not as the server would quote it
    assert before.tables[big].chunking == "range(k :x)/512"
    assert {c.target for c in diff_snapshots(before, changed)} == differing

    # Compare: one-row leaves force key-range splits and leaf reads on every chunked table.
    result = compare(db.url, other.url, leaf_rows=1)
    status = {t.name: t.status for t in result.tables}
    assert status == {n: "different" if n in differing else "same" for n in [*HOSTILE, big, keyed, loose]}, \
        [(t.name, t.note) for t in result.errors]
    diffs = {t.name: t for t in result.tables}
    assert [(k.change, k.key) for k in diffs[HOSTILE[-1]].keys] == [("changed", {f"{HOSTILE[-1]} id": "1"})]
    assert [(k.change, k.key) for k in diffs[big].keys] == [("changed", {"k :x": "300"})]
    assert [(k.change, k.key) for k in diffs[keyed].keys] == [("changed", {"k :x %s": "k5"})]
    assert (diffs[loose].added, diffs[loose].removed) == (1, 1)

    assert {n: before.tables[n].row_count for n in HOSTILE} == {n: i + 1 for i, n in enumerate(HOSTILE)}
    with db.engine.begin() as conn:
        conn.execute(sa.table(HOSTILE[0]).delete())
    after = take_snapshot(db.url)
    result = audit(before, after, parse_expectations({"rows": {"default": "equal", "any": [HOSTILE[1]]}}))
    assert [(c.kind, c.target) for c in diff_snapshots(before, after)] == [("row_count_changed", HOSTILE[0])]
    assert [(c.category, c.name) for c in result.failed_checks] == [("rows", HOSTILE[0])]


# --- a server that dies, a query that never ends -------------------------------------------------


def test_a_connection_killed_mid_snapshot_is_a_one_line_error_and_leaves_no_file(
    make_mariadb: Callable[[], ScratchDB], mariadb_server: sa.Engine, tmp_path: Path
) -> None:
    db = make_mariadb()
    _contacts(db)
    expect = tmp_path / "slow.yml"
    expect.write_text("metrics:\n  slow: SELECT SLEEP(20)\n")
    target = tmp_path / "snap.json"
    killer = threading.Thread(target=_kill_when_sleeping, args=(mariadb_server, "SELECT SLEEP(20)"))
    killer.start()
    run = dbaudit("snapshot", db.url, "-o", str(target), "--expect", str(expect), "--allow-privileged")
    killer.join()

    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and run.stderr.startswith("dbaudit: error:") and "Traceback" not in run.stderr
    assert "slow" in run.stderr
    assert list(tmp_path.iterdir()) == [expect]


def _kill_when_sleeping(server: sa.Engine, statement: str) -> None:
    deadline = time.monotonic() + 15
    with server.connect() as conn:
        while time.monotonic() < deadline:
            found = conn.exec_driver_sql(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO = %s", (statement,)).scalar()
            if found:
                conn.exec_driver_sql(f"KILL CONNECTION {int(found)}")
                return
            time.sleep(0.1)


SLOW = {
    "sqlite": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT COUNT(*) FROM n",
    "mariadb": "SELECT SLEEP(10)",
    "postgresql": "SELECT pg_sleep(10)",
}


def test_a_statement_timeout_stops_a_slow_query_without_stopping_the_snapshot(make_db: Callable[[], ScratchDB]) -> None:
    db = make_db()
    _contacts(db)
    started = time.monotonic()
    snap = take_snapshot(db.url, {"slow": SLOW[db.backend], "fast": "SELECT COUNT(*) FROM contacts"},
                         statement_timeout=0.5, allow_privileged=True)
    assert time.monotonic() - started < 8
    assert snap.metrics["slow"].value in (None, 1) and snap.metrics["fast"].value == 20
    if db.backend != "mariadb":  # MariaDB's SLEEP returns 1 when interrupted instead of failing
        assert snap.metrics["slow"].error


# --- machine-readable outputs ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_results(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("reports")
    run = dbaudit("demo", "--out-dir", str(out))
    assert run.returncode == 0, run.stderr
    return sorted(out.glob("*/result.json"))


def test_result_documents_match_the_published_schema(demo_results: list[Path]) -> None:
    schema = json.loads((SCHEMAS / "result.schema.json").read_text())
    schemas = {"dbaudit.result": schema, "dbaudit.rehearsal": json.loads((SCHEMAS / "rehearsal.schema.json").read_text())}
    verdicts = set()
    for kind_schema in schemas.values():
        jsonschema.Draft202012Validator.check_schema(kind_schema)
    for path in demo_results:
        document = json.loads(path.read_text())
        jsonschema.validate(document, schemas[document["kind"]])
        verdicts.add((document["kind"], document["verdict"]))
    assert verdicts == {(kind, verdict) for kind in schemas for verdict in ("pass", "fail")}
    broken = json.loads(demo_results[0].read_text()) | {"verdict": "maybe"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_snapshot_documents_match_the_published_schema(demo_results: list[Path], make_mariadb) -> None:
    schema = json.loads((SCHEMAS / "snapshot.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    for path in demo_results:
        jsonschema.validate(json.loads((path.parent / "before.json").read_text()), schema)
    db = make_mariadb()
    _contacts(db)
    with db.engine.begin() as conn:  # enough rows for the snapshot to cut chunks
        conn.execute(sa.table("contacts", sa.column("id"), sa.column("status")).insert(),
                     [{"id": i, "status": "new"} for i in range(100, 1200)])
    earlier = take_snapshot(db.url, {"n": "SELECT 1"}, fingerprint="chunks", allow_privileged=True)
    db.run_sql("ALTER TABLE contacts ADD COLUMN note TEXT")
    snap = json.loads(serde.dumps(take_snapshot(db.url, fingerprint="chunks", baseline=earlier)))
    assert snap["tables"]["contacts"]["fingerprint"] and snap["tables"]["contacts"]["chunks"]
    assert snap["tables"]["contacts"]["baseline"]["fingerprint"] == earlier.tables["contacts"].fingerprint
    jsonschema.validate(json.loads(serde.dumps(earlier)), schema)
    jsonschema.validate(snap, schema)


def test_junit_output_has_one_testcase_per_check_and_marks_failures(demo_results: list[Path], tmp_path: Path) -> None:
    failing = next(p for p in demo_results if json.loads(p.read_text())["verdict"] == "fail").parent
    run = dbaudit("diff", str(failing / "before.json"), str(failing / "after.json"), "--expect", str(EXPECTATIONS),
                  "--junit", str(tmp_path / "junit.xml"))
    result = json.loads((failing / "result.json").read_text())

    assert run.returncode == 1
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == len(result["checks"]) == int(suite.get("tests"))
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    assert failed == [c["name"] for c in result["checks"] if c["status"] == "fail"]
    assert int(suite.get("failures")) == len(failed) > 0


def test_bad_expectations_never_reach_the_snapshot_step(tmp_path: Path) -> None:
    with pytest.raises(DbauditError):
        parse_expectations({"rows": {"sometimes": ["x"]}})


def _junit_matches_json(junit: Path, document: Path, checks_key: str = "checks") -> tuple[int, int]:
    suite = ET.parse(junit).getroot().find("testsuite")
    cases = suite.findall("testcase")
    data = json.loads(document.read_text())
    expected = data[checks_key]
    assert [c.get("name") for c in cases] == [c["name"] for c in expected]
    failed = sum(1 for c in cases if c.find("failure") is not None)
    assert failed == int(suite.get("failures"))
    return len(cases), failed


def test_every_checking_command_writes_junit_matching_its_json(shared_data: Path, tmp_path: Path,
                                                               make_sqlite: Callable[[], ScratchDB]) -> None:
    dump = dbaudit("dump-check", str(shared_data / "world" / "world.sql"), "--json", str(tmp_path / "d.json"),
                   "--junit", str(tmp_path / "d.xml"))
    a, b = make_sqlite(), make_sqlite()
    _contacts(a)
    _contacts(b)
    b.run_sql("UPDATE contacts SET status = 'moved' WHERE id = 3")
    compare = dbaudit("compare", a.url, b.url, "--json", str(tmp_path / "c.json"), "--junit", str(tmp_path / "c.xml"))
    triggers = dbaudit("triggers", a.url, "--json", str(tmp_path / "t.json"), "--junit", str(tmp_path / "t.xml"))

    assert (dump.returncode, compare.returncode, triggers.returncode) == (0, 1, 0), dump.stderr + compare.stderr
    assert _junit_matches_json(tmp_path / "d.xml", tmp_path / "d.json")[1] == 0
    assert _junit_matches_json(tmp_path / "t.xml", tmp_path / "t.json")[1] == 0
    cases = ET.parse(tmp_path / "c.xml").getroot().find("testsuite").findall("testcase")
    assert [(c.get("name"), c.find("failure") is not None) for c in cases] == [("contacts", True)]
