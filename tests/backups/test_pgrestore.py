"""restore-check of pg_dump output: the shared samples' PostgreSQL copies restored from every format as a temporary
role and proven equal to their source (fingerprints included); hostile dumps whose code would run commands or
gain rights as the superuser that psql restores as; cut dumps; hangs; and runs killed before their cleanup."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from formats_samples import KNOWN_ROWS, Sample, mariadb_samples, pg_args, pg_dump, samples  # noqa: F401

from conftest import POSTGRES_URL, ROOT, ScratchDB
from dbaudit.backups import pgrestore, scratch_journal
from dbaudit.backups.pgrestore import PREFIX, pg_restore_check
from dbaudit.backups.restore import load_restore_check
from dbaudit.core.errors import DbauditError
from dbaudit.live.inspect import take_snapshot

FORMATS = ["plain", "plain.gz", "plain.zst", "custom", "directory", "tar"]


def _leftovers(server: sa.Engine) -> set[str]:
    with server.connect() as conn:
        roles = conn.execute(sa.text("SELECT 'role ' || rolname FROM pg_roles WHERE starts_with(rolname, :p)"),
                             {"p": PREFIX})
        found = {r[0] for r in roles}
        databases = conn.execute(sa.text("SELECT 'database ' || datname FROM pg_database "
                                         "WHERE starts_with(datname, :p)"), {"p": PREFIX})
        return found | {r[0] for r in databases}


@pytest.fixture(autouse=True)
def journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "journal"
    monkeypatch.setenv(scratch_journal.JOURNAL_ENV, str(folder))
    return folder


@pytest.fixture(autouse=True)
def nothing_left(postgres_server: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test: no dbaudit_restore_* role or database it made survives it. Only what this test's runs made counts
    (their names as they are created in this process, or in a journal entry a child process left): other sessions'
    restore-checks run on the same server at the same time, and their objects are never touched."""
    made: set[str] = set()
    create = pgrestore._create

    def spy(engine: sa.Engine, run: pgrestore._Run, limit: float) -> None:
        made.update({f"role {run.role}", f"database {run.scratch}"})
        create(engine, run, limit)

    monkeypatch.setattr(pgrestore, "_create", spy)
    before = _leftovers(postgres_server)
    yield
    for entry in tmp_path.glob("**/*.json"):
        with contextlib.suppress(ValueError, OSError):
            named = json.loads(entry.read_text(encoding="utf-8"))
            made.update({f"role {named.get('account_user')}", f"database {named.get('scratch')}"})
    left = (_leftovers(postgres_server) - before) & made
    with postgres_server.connect() as conn:  # cleaned up even when the assertion below fails
        for item in sorted(left, key=lambda item: not item.startswith("database")):  # databases before roles
            kind, name = item.split(" ", 1)
            conn.exec_driver_sql(f'DROP {kind.upper()} IF EXISTS "{name}"{" WITH (FORCE)" if kind == "database" else ""}')
    assert not left, f"restore-check left {sorted(left)}"


def _url(database: str) -> str:
    return f"{POSTGRES_URL}/{database}"


# --- every format restores and equals its source -------------------------------------------------------------


@pytest.mark.parametrize("form", FORMATS)
@pytest.mark.parametrize("name", ["world", "sakila", "employees"])
def test_every_pg_dump_format_restores_as_a_temporary_role_and_equals_its_source_content(
        samples: dict[str, Sample], name: str, form: str) -> None:  # noqa: F811
    sample = samples[name]
    source = take_snapshot(_url(sample.postgres), fingerprint="chunks" if name == "employees" else "table")

    result = pg_restore_check(sample.dumps[form], _url(sample.postgres), against=source)

    assert result.verdict == "pass", [c.message for c in result.failed_checks]
    assert result.restored is not None and not result.kept
    assert {n: t.row_count for n, t in result.restored.tables.items()} == sample.rows
    assert {n: sample.rows[n] for n in KNOWN_ROWS[name]} == KNOWN_ROWS[name]
    # the content proof: every table fingerprinted the way the source was, and equal
    assert all(t.fingerprint for t in result.restored.tables.values())
    assert {n: t.fingerprint for n, t in result.restored.tables.items()} == {
        n: t.fingerprint for n, t in source.tables.items()}
    [identical] = [c for c in result.checks if c.category == "source"]
    assert identical.status == "pass" and "content of" in identical.message
    load = next(c for c in result.checks if c.name == "load")
    assert f"as temporary role {PREFIX}" in load.message
    assert any(s.startswith("owner") for s in result.skipped_statements)


def test_a_changed_row_fails_the_content_proof_though_every_count_matches(make_postgres: object,
                                                                          tmp_path: Path) -> None:
    db: ScratchDB = make_postgres()  # type: ignore[operator]
    db.run_sql("CREATE TABLE public.account (id integer PRIMARY KEY, balance numeric)",
               "INSERT INTO public.account SELECT g, g * 10 FROM generate_series(1, 5000) g")
    source = take_snapshot(db.url, fingerprint="chunks")
    db.run_sql("UPDATE public.account SET balance = balance + 1 WHERE id = 4321")
    dump = pg_dump(db.url.rsplit("/", 1)[1], tmp_path / "changed.dump", "-Fc")

    result = pg_restore_check(dump, db.url, against=source)

    assert result.verdict == "fail"
    failed = list(result.failed_checks)
    assert [c.category for c in failed] == ["source"], [c.message for c in failed]
    assert failed[0].name == "content_changed account"
    located = re.search(r"id (\d+)\.\.(\d+)", failed[0].message)  # the key range holding the changed row
    assert located and int(located[1]) <= 4321 <= int(located[2]), failed[0].message
    rows = next(c for c in result.checks if c.name == "tables and rows" and c.category == "dump")
    assert rows.status == "pass"


def test_fingerprint_records_the_restored_content_without_a_source(samples: dict[str, Sample]) -> None:  # noqa: F811
    result = pg_restore_check(samples["world"].dumps["custom"], _url(samples["world"].postgres), fingerprint="table")

    assert result.verdict == "pass" and result.restored is not None
    source = take_snapshot(_url(samples["world"].postgres), fingerprint="table")
    assert {n: t.fingerprint for n, t in result.restored.tables.items()} == {
        n: t.fingerprint for n, t in source.tables.items()}


# --- hostile dumps -------------------------------------------------------------------------------------------


def _small_dump(db: ScratchDB, tmp_path: Path) -> str:
    db.run_sql("CREATE TABLE public.t (a integer)", "INSERT INTO public.t VALUES (1), (2)")
    return pg_dump(db.url.rsplit("/", 1)[1], tmp_path / "small.sql").read_text(encoding="utf-8")


def _with(script: str, hostile: str) -> str:
    """`hostile` spliced in before the dump's footer, where it still counts as part of the dump."""
    footer = "--\n-- PostgreSQL database dump complete\n--"
    assert footer in script
    return script.replace(footer, hostile + "\n" + footer)


@pytest.fixture
def canary() -> Iterator[Path]:
    path = Path(f"/tmp/dbaudit_t_canary_{uuid.uuid4().hex[:8]}")
    yield path
    if path.exists():
        path.unlink()


@pytest.mark.parametrize("hostile", [
    "\\! touch {canary}\n",
    "COPY public.t TO PROGRAM 'touch {canary}';\n",
    "COPY (SELECT 1) TO '{canary}';\n",
    "\\copy public.t to program 'touch {canary}'\n",
    "ALTER SYSTEM SET archive_command = 'touch {canary}';\n",
    "CREATE ROLE dbaudit_t_canary SUPERUSER;\n",
])
def test_a_dump_that_runs_commands_is_refused_and_nothing_of_it_is_sent(
        make_postgres: object, tmp_path: Path, canary: Path, sent: list[bytes], hostile: str) -> None:
    db: ScratchDB = make_postgres()  # type: ignore[operator]
    dump = tmp_path / "hostile.sql"
    dump.write_text(_with(_small_dump(db, tmp_path), hostile.format(canary=canary)), encoding="utf-8")

    result = pg_restore_check(dump, db.url)

    assert result.verdict == "fail" and result.restored is None and result.restore_seconds == 0
    [safety] = result.failed_checks
    assert safety.name == "restore safety" and safety.message.startswith("not restored")
    assert not canary.exists()
    assert sent[-1] == b"ROLLBACK" and not any(str(canary).encode() in sql for sql in sent)


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every statement restore-check sends as the temporary role (COPY data aside), in order."""
    statements: list[bytes] = []
    execute = pgrestore._execute

    def spy(conn: object, sql: bytes, label: str) -> None:
        statements.append(sql)
        execute(conn, sql, label)  # type: ignore[arg-type]

    monkeypatch.setattr(pgrestore, "_execute", spy)
    return statements


def test_a_refused_statement_late_in_a_dump_is_never_sent_and_what_ran_before_it_is_dropped(
        make_postgres: object, postgres_server: sa.Engine, tmp_path: Path, sent: list[bytes]) -> None:
    """The dump is restored as it is read: 200,000 rows load before the scanner reaches the statement it refuses.
    That statement and everything after it are never sent; what ran before is rolled back, the database dropped."""
    db: ScratchDB = make_postgres()  # type: ignore[operator]
    db.run_sql("CREATE TABLE public.big (id integer PRIMARY KEY, name text)",
               "INSERT INTO public.big SELECT g, md5(g::text) FROM generate_series(1, 200000) g")
    role = f"dbaudit_t_{uuid.uuid4().hex[:8]}"
    script = pg_dump(db.url.rsplit("/", 1)[1], tmp_path / "big.sql").read_text(encoding="utf-8")
    hostile = f"CREATE ROLE {role} SUPERUSER LOGIN;\nCREATE TABLE public.after_it (a integer);\n"
    dump = tmp_path / "late.sql"
    dump.write_text(_with(script, hostile), encoding="utf-8")

    result = pg_restore_check(dump, db.url)

    assert result.verdict == "fail" and result.restored is None
    [safety] = result.failed_checks
    assert safety.name == "restore safety" and safety.message.startswith("not restored") and "ROLE" in safety.message
    ran = b"\n".join(sent)
    assert b"CREATE TABLE public.big" in ran and b"ADD CONSTRAINT big_pkey" in ran  # the restore was under way
    assert b"CREATE ROLE" not in ran and b"after_it" not in ran and sent[-1] == b"ROLLBACK"
    with postgres_server.connect() as conn:
        assert conn.exec_driver_sql(f"SELECT count(*) FROM pg_roles WHERE rolname = '{role}'").scalar() == 0


# Code pg_dump-shaped dumps may carry: function bodies are strings, so dump-check cannot read them, and a trigger
# fires while the data loads. As the superuser psql restores as, each touches the canary; as the temporary role,
# RESET ROLE / SET SESSION AUTHORIZATION have no one to go back to, and ALTER … OWNER TO the superuser is not sent.
HOSTILE_CODE = {
    "trigger resetting its role": """
CREATE TABLE public.victim (a integer);
CREATE FUNCTION public.evil() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  BEGIN EXECUTE 'RESET ROLE'; EXCEPTION WHEN OTHERS THEN NULL; END;
  BEGIN EXECUTE 'SET SESSION AUTHORIZATION DEFAULT'; EXCEPTION WHEN OTHERS THEN NULL; END;
  EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch {canary}''';
  RETURN NEW;
END $$;
CREATE TRIGGER evil BEFORE INSERT ON public.victim FOR EACH ROW EXECUTE FUNCTION public.evil();
COPY public.victim (a) FROM stdin;
1
\\.
""",
    "security definer owned by the superuser": """
CREATE TABLE public.victim (a integer);
CREATE FUNCTION public.definer() RETURNS integer LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
  EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch {canary}''';
  RETURN 1;
END $$;
ALTER FUNCTION public.definer() OWNER TO postgres;
CREATE TABLE public.loaded (a integer, b integer DEFAULT public.definer());
COPY public.loaded (a) FROM stdin;
1
\\.
""",
    "trigger creating a superuser": """
CREATE TABLE public.victim (a integer);
CREATE FUNCTION public.evil() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  BEGIN EXECUTE 'RESET ROLE'; EXCEPTION WHEN OTHERS THEN NULL; END;
  EXECUTE 'CREATE ROLE {role} SUPERUSER LOGIN';
  EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch {canary}''';
  RETURN NEW;
END $$;
CREATE TRIGGER evil BEFORE INSERT ON public.victim FOR EACH ROW EXECUTE FUNCTION public.evil();
COPY public.victim (a) FROM stdin;
1
\\.
""",
}


@pytest.mark.parametrize("attack", list(HOSTILE_CODE))
def test_code_in_a_dump_never_runs_with_the_operators_rights(make_postgres: object, postgres_server: sa.Engine,
                                                             tmp_path: Path, canary: Path, attack: str) -> None:
    db: ScratchDB = make_postgres()  # type: ignore[operator]
    role = f"dbaudit_t_canary_{uuid.uuid4().hex[:8]}"
    dump = tmp_path / "hostile.sql"
    dump.write_text(_with(_small_dump(db, tmp_path), HOSTILE_CODE[attack].format(canary=canary, role=role)),
                    encoding="utf-8")
    try:
        # The attack is real: restored the usual way, psql as the superuser, it touches the canary.
        psql = shutil.which("psql")
        if psql is None:
            pytest.skip("psql is not installed")
        control: ScratchDB = make_postgres()  # type: ignore[operator]
        subprocess.run([psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", *pg_args(control.url.rsplit("/", 1)[1]),
                        "-f", str(dump)], check=True, capture_output=True)
        assert canary.exists()
        canary.unlink()
        with postgres_server.connect() as conn:
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{role}"')  # the control run's

        result = pg_restore_check(dump, db.url)

        assert not canary.exists()
        with postgres_server.connect() as conn:
            assert conn.exec_driver_sql(f"SELECT count(*) FROM pg_roles WHERE rolname = '{role}'").scalar() == 0
        assert result.verdict == "fail"
        [load] = [c for c in result.failed_checks if c.name == "load"]
        assert "permission denied" in load.message or "must be superuser" in load.message or \
            "privileges of pg_execute_server_program" in load.message
    finally:
        with postgres_server.connect() as conn:
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{role}"')


def test_grants_and_owners_are_not_restored_so_no_other_role_gets_the_data(make_postgres: object,
                                                                            postgres_server: sa.Engine,
                                                                            tmp_path: Path) -> None:
    db: ScratchDB = make_postgres()  # type: ignore[operator]
    reader = f"dbaudit_t_reader_{uuid.uuid4().hex[:8]}"
    with postgres_server.connect() as conn:
        conn.exec_driver_sql(f'CREATE ROLE "{reader}"')
    try:
        db.run_sql("CREATE TABLE public.secret (a integer)", f'GRANT SELECT ON public.secret TO "{reader}"')
        dump = pg_dump(db.url.rsplit("/", 1)[1], tmp_path / "granted.sql")
        assert f'GRANT SELECT ON TABLE public.secret TO {reader}' in dump.read_text(encoding="utf-8")

        result = pg_restore_check(dump, db.url, keep=True)

        try:
            assert result.verdict == "pass" and result.kept
            with postgres_server.connect() as conn:
                kept = sa.create_engine(_url(result.scratch), poolclass=sa.pool.NullPool)
                with kept.connect() as scratch:
                    owner, acl = scratch.exec_driver_sql(
                        "SELECT pg_get_userbyid(relowner), coalesce(relacl::text, '') FROM pg_class "
                        "WHERE relname = 'secret'").one()
                kept.dispose()
                login = conn.exec_driver_sql(f"SELECT rolcanlogin FROM pg_roles WHERE rolname = '{owner}'").scalar()
            assert owner == result.summary["role"] and reader not in acl
            assert login is False  # kept, but the role can no longer log in
            assert any(s.startswith("privileges") for s in result.skipped_statements)
        finally:
            with postgres_server.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{result.scratch}" WITH (FORCE)')
                conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{result.summary["role"]}"')
    finally:
        db.run_sql("DROP TABLE IF EXISTS public.secret")  # its grant would keep the role
        with postgres_server.connect() as conn:
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{reader}"')


# --- cut dumps, hangs --------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["plain", "custom", "tar"])
def test_a_cut_dump_is_not_restored_and_fails(samples: dict[str, Sample], tmp_path: Path, form: str) -> None:  # noqa: F811
    whole = samples["sakila"].dumps[form]
    cut = tmp_path / f"cut.{form}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])

    result = pg_restore_check(cut, _url(samples["sakila"].postgres))

    assert result.verdict == "fail" and result.restored is None and result.restore_seconds == 0
    assert all(c.message.startswith("not restored") for c in result.failed_checks)


SPIN = """
CREATE FUNCTION public.spin() RETURNS integer LANGUAGE plpgsql AS $$ BEGIN LOOP END LOOP; END $$;
CREATE FUNCTION public.disarm() RETURNS integer LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_catalog.set_config('statement_timeout', '0', false); RETURN 0; END $$;
CREATE TABLE public.first (a integer, b integer DEFAULT public.disarm());
COPY public.first (a) FROM stdin;
1
\\.
CREATE TABLE public.hang (a integer, b integer DEFAULT public.spin());
COPY public.hang (a) FROM stdin;
1
\\.
"""


def _spinning_dump(db: ScratchDB, tmp_path: Path) -> Path:
    dump = tmp_path / "spin.sql"
    dump.write_text(_with(_small_dump(db, tmp_path), SPIN), encoding="utf-8")
    return dump


def test_a_dump_that_hangs_is_stopped_at_the_restore_timeout_even_after_lifting_its_statement_timeout(
        make_postgres: object, tmp_path: Path) -> None:
    db: ScratchDB = make_postgres()  # type: ignore[operator]
    dump = _spinning_dump(db, tmp_path)
    started = time.monotonic()

    result = pg_restore_check(dump, db.url, timeout=3)

    assert time.monotonic() - started < 30
    assert result.verdict == "fail"
    [load] = result.failed_checks
    assert load.name == "load" and "--restore-timeout" in load.message


def _start_restore(dump: Path, url: str, journal: Path) -> subprocess.Popen[bytes]:
    code = ("import sys; from dbaudit.backups.pgrestore import pg_restore_check; "
            "pg_restore_check(sys.argv[1], sys.argv[2], timeout=120)")
    env = {**os.environ, scratch_journal.JOURNAL_ENV: str(journal)}
    return subprocess.Popen([sys.executable, "-c", code, str(dump), url], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def _wait_for_run(server: sa.Engine, journal: Path, proc: subprocess.Popen[bytes]) -> set[str]:
    """The role and database the run made (named by its journal entry: other sessions' restore-checks may be
    creating theirs on the same server), once its dump is loading (its COPY spins)."""
    for _ in range(300):
        with server.connect() as conn:
            spinning = conn.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE starts_with(usename, :p) "
                                            "AND starts_with(query, 'COPY public.hang')"), {"p": PREFIX}).scalar()
        if spinning:
            [entry] = [json.loads(p.read_text()) for p in journal.glob("*.json")]
            return {f"role {entry['account_user']}", f"database {entry['scratch']}"}
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    raise AssertionError("the restore never started loading")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_sigterm_or_ctrl_c_drops_the_role_and_database_at_once(make_postgres: object, postgres_server: sa.Engine,
                                                               tmp_path: Path, journal: Path, signum: int) -> None:
    db: ScratchDB = make_postgres()  # type: ignore[operator]
    proc = _start_restore(_spinning_dump(db, tmp_path), db.url, journal)
    made = _wait_for_run(postgres_server, journal, proc)
    assert {m.split()[0] for m in made} == {"role", "database"}

    started = time.monotonic()
    proc.send_signal(signum)
    proc.wait(timeout=30)

    assert time.monotonic() - started < 10  # not at the 120 s restore timeout

    assert made & _leftovers(postgres_server) == set()
    assert list(journal.glob("*.json")) == []


def test_a_later_run_drops_what_a_killed_run_left_and_only_that(make_postgres: object, postgres_server: sa.Engine,
                                                               tmp_path: Path, journal: Path) -> None:
    db: ScratchDB = make_postgres()  # type: ignore[operator]
    proc = _start_restore(_spinning_dump(db, tmp_path), db.url, journal)
    made = _wait_for_run(postgres_server, journal, proc)
    proc.kill()
    proc.wait(timeout=30)
    assert made <= _leftovers(postgres_server)  # SIGKILL: nothing could clean up
    [entry] = [json.loads(p.read_text()) for p in journal.glob("*.json")]
    # A role that only looks like a dead run's (the name in a forged entry, no proof on the server) stays.
    impostor = f"{PREFIX}{uuid.uuid4().hex[:16]}"
    with postgres_server.connect() as conn:
        conn.exec_driver_sql(f'CREATE ROLE "{impostor}"')
    forged = {**entry, "run": "0" * 16, "account_user": impostor, "account_marker": "dbaudit restore-check " + "0" * 16,
              "scratch": impostor}
    (journal / f"{'0' * 16}.json").write_text(json.dumps(forged), encoding="utf-8")
    (journal / f"{'0' * 16}.lock").touch()  # its lock free: a dead run's entry
    try:
        good = tmp_path / "good.dump"
        pg_dump(db.url.rsplit("/", 1)[1], good, "-Fc")

        result = pg_restore_check(good, db.url)

        assert result.verdict == "pass", [c.message for c in result.failed_checks]
        [earlier] = [c for c in result.checks if c.name == "earlier runs"]
        assert all(m.split()[1] in earlier.message for m in made)
        left = _leftovers(postgres_server)
        assert f"role {impostor}" in left and not left & made
        assert list(journal.glob("*.json")) == []
    finally:
        with postgres_server.connect() as conn:
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{impostor}"')


# --- refusals of bad input, and the command line -------------------------------------------------------------


def test_an_existing_scratch_database_or_a_mysql_server_is_an_input_error(make_postgres: object,
                                                                          tmp_path: Path) -> None:
    db: ScratchDB = make_postgres()  # type: ignore[operator]
    dump = tmp_path / "small.sql"
    dump.write_text(_small_dump(db, tmp_path), encoding="utf-8")
    other: ScratchDB = make_postgres()  # type: ignore[operator]
    with pytest.raises(DbauditError, match="already exists"):
        pg_restore_check(dump, db.url, scratch=other.url.rsplit("/", 1)[1])
    with pytest.raises(DbauditError, match="not a PostgreSQL server"):
        pg_restore_check(dump, "mysql+pymysql://root@127.0.0.1:3306")
    with pytest.raises(DbauditError, match="scratch database name"):
        pg_restore_check(dump, db.url, scratch="template1")


def test_cli_restore_check_of_a_pg_dump_exits_0_then_1_when_cut(samples: dict[str, Sample],  # noqa: F811
                                                                 tmp_path: Path) -> None:
    sample = samples["world"]
    dump = sample.dumps["directory"]
    out = tmp_path / "result.json"
    dbaudit = [sys.executable, "-m", "dbaudit"]
    env = {**os.environ, scratch_journal.JOURNAL_ENV: str(tmp_path / "cli-journal")}

    done = subprocess.run([*dbaudit, "restore-check", str(dump), "--server", _url(sample.postgres), "--json", str(out),
                           "--restore-timeout", "600"], capture_output=True, text=True, env=env, cwd=ROOT)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "verdict: PASS" in done.stdout and "temporary role" in done.stdout
    assert load_restore_check(out).verdict == "pass"
    cut = tmp_path / "cut.sql"
    cut.write_bytes(sample.dumps["plain"].read_bytes()[:50_000])
    done = subprocess.run([*dbaudit, "restore-check", str(cut), "--server", _url(sample.postgres)],
                          capture_output=True, text=True, env=env, cwd=ROOT)
    assert done.returncode == 1 and "truncated" in done.stdout


@pytest.fixture
def operator(postgres_server: sa.Engine) -> Iterator[tuple[str, str]]:
    """Two login roles that are not superusers: one with CREATEROLE and CREATEDB, one without."""
    able, unable = (f"dbaudit_t_operator_{uuid.uuid4().hex[:8]}" for _ in range(2))
    with postgres_server.connect() as conn:
        conn.exec_driver_sql(f'CREATE ROLE "{able}" LOGIN CREATEROLE CREATEDB')
        conn.exec_driver_sql(f'CREATE ROLE "{unable}" LOGIN')
    yield able, unable
    with postgres_server.connect() as conn:
        conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{able}"')
        conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{unable}"')


def test_an_operator_with_createrole_and_createdb_restores_without_being_superuser(
        make_postgres: object, tmp_path: Path, operator: tuple[str, str]) -> None:
    db: ScratchDB = make_postgres()  # type: ignore[operator]
    _small_dump(db, tmp_path)
    dump = pg_dump(db.url.rsplit("/", 1)[1], tmp_path / "small.dump", "-Fc")
    base = sa.engine.make_url(db.url)

    result = pg_restore_check(dump, base.set(username=operator[0]).render_as_string(hide_password=False))

    assert result.verdict == "pass", [c.message for c in result.failed_checks]
    with pytest.raises(DbauditError, match="needs CREATEROLE and CREATEDB"):
        pg_restore_check(dump, base.set(username=operator[1]).render_as_string(hide_password=False))


def test_a_socket_url_restores_too(make_postgres: object, tmp_path: Path) -> None:
    db: ScratchDB = make_postgres()  # type: ignore[operator]
    sockets = [d for d in ("/var/run/postgresql", "/tmp") if Path(d, ".s.PGSQL.5432").exists()]
    if not sockets:
        pytest.skip("no PostgreSQL socket on this machine")
    dump = tmp_path / "small.sql"
    dump.write_text(_small_dump(db, tmp_path), encoding="utf-8")
    base = sa.engine.make_url(db.url)

    result = pg_restore_check(dump, f"{base.drivername}://{base.username}@/{base.database}?host={sockets[0]}")

    assert result.verdict == "pass", [c.message for c in result.failed_checks]


def test_a_copy_the_server_rejects_stops_the_restore_and_the_result_names_what_dump_check_finds(
        make_postgres: object, tmp_path: Path, sent: list[bytes]) -> None:
    """A COPY row with a column too many: the server fails the COPY, nothing after it is sent, and the rest of the
    file is still scanned, so the result says what dump-check says of it (broken COPY rows), not restored."""
    db: ScratchDB = make_postgres()  # type: ignore[operator]
    script = _small_dump(db, tmp_path)
    broken = script.replace("COPY public.t (a) FROM stdin;\n1\n", "COPY public.t (a) FROM stdin;\n1\t9\n")
    assert broken != script
    dump = tmp_path / "broken.sql"
    dump.write_text(_with(broken, "CREATE TABLE public.after_it (a integer);\n"), encoding="utf-8")

    result = pg_restore_check(dump, db.url)

    assert result.verdict == "fail" and result.restored is None
    [rows] = result.failed_checks
    assert rows.name == "copy rows" and rows.message.startswith("not restored: COPY data with broken rows")
    assert not any(b"after_it" in sql for sql in sent) and sent[-1] == b"ROLLBACK"


def test_a_dump_with_other_schemas_trusted_extensions_and_large_objects_restores(make_postgres: object,
                                                                              tmp_path: Path) -> None:
    db: ScratchDB = make_postgres()  # type: ignore[operator]
    db.run_sql("CREATE EXTENSION IF NOT EXISTS pgcrypto", "CREATE EXTENSION IF NOT EXISTS citext",
               "CREATE TABLE public.t (id integer PRIMARY KEY, c citext, h bytea DEFAULT public.digest('x', 'sha256'))",
               "INSERT INTO public.t (id, c) VALUES (1, 'A'), (2, 'b')", "SELECT lo_from_bytea(0, 'hello')",
               "CREATE SCHEMA other", "CREATE TABLE other.x (a integer)", "INSERT INTO other.x VALUES (1), (2), (3)")
    dump = pg_dump(db.url.rsplit("/", 1)[1], tmp_path / "mixed.dump", "-Fc")

    result = pg_restore_check(dump, db.url, against=take_snapshot(db.url, fingerprint="table"))

    assert result.verdict == "pass", [c.message for c in result.failed_checks]
    [other] = [c for c in result.checks if "schema other" in c.message]
    assert other.status == "pass"
