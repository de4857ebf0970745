"""An attacker's pass over pg restore-check's one-read load (pgspeed): the dump runs in one transaction that is
committed only when dump-check's checks pass, and rolled back at the first refusal. Each test is a dump that
should keep that promise and, when it does not, shows the hole."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from formats_samples import pg_dump

from conftest import POSTGRES_URL, ScratchDB
from dbaudit.backups import pgrestore, scratch_journal
from dbaudit.backups.pgrestore import PREFIX, pg_restore_check


@pytest.fixture(autouse=True)
def journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "journal"
    monkeypatch.setenv(scratch_journal.JOURNAL_ENV, str(folder))
    return folder


@pytest.fixture
def scratch(postgres_server: sa.Engine) -> Iterator[str]:
    """The scratch database name this test gives restore-check; dropped after it if restore-check left it (only this
    name: other helpers' runs share the server and their dbaudit_restore_* objects are not ours to drop)."""
    name = f"{PREFIX}t_{uuid.uuid4().hex[:8]}"
    yield name
    with postgres_server.connect() as conn:
        left = conn.execute(sa.text("SELECT count(*) FROM pg_database WHERE datname = :n"), {"n": name}).scalar()
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert not left, f"restore-check left its scratch database {name}"


def _small_dump(db: ScratchDB, tmp_path: Path) -> str:
    db.run_sql("CREATE TABLE public.t (a integer)", "INSERT INTO public.t VALUES (1), (2)")
    return pg_dump(db.url.rsplit("/", 1)[1], tmp_path / "small.sql").read_text(encoding="utf-8")


def _with(script: str, hostile: str) -> str:
    footer = "--\n-- PostgreSQL database dump complete\n--"
    assert footer in script
    return script.replace(footer, hostile + "\n" + footer)


def _admin_url(database: str) -> str:
    return f"{POSTGRES_URL}/{database}".replace("postgresql+psycopg://", "postgresql://")


@pytest.mark.parametrize("ender", ["COMMIT;", "END;", "COMMIT AND CHAIN;"])
def test_a_commit_in_the_dump_does_not_commit_what_a_later_refusal_rolls_back(
        make_postgres: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scratch: str, ender: str) -> None:
    """COMMIT/END are statements dump-check knows (`_KNOWN`) and the runner sends them: the restore's one
    transaction ends there, what ran before is committed, and the ROLLBACK at a later refusal (or a cut, or a
    failing format check) undoes nothing; from then on every statement commits on its own. The promise 'committed
    only when dump-check's checks pass' holds only while the dump itself does not COMMIT."""
    db: ScratchDB = make_postgres()  # type: ignore[operator]
    marker = f"dbaudit_t_committed_{uuid.uuid4().hex[:8]}"
    dump = tmp_path / "commit.sql"
    dump.write_text(_with(_small_dump(db, tmp_path),
                          f"CREATE TABLE public.{marker} (a integer);\n{ender}\nCREATE ROLE dbaudit_t_never SUPERUSER;\n"),
                    encoding="utf-8")
    seen: list[bool] = []
    execute = pgrestore._execute

    def spy(conn: psycopg.Connection[object], sql: bytes, label: str) -> None:
        if sql == b"ROLLBACK":  # the refusal: is anything of the dump already visible to another session?
            with psycopg.connect(_admin_url(scratch), autocommit=True) as other:
                seen.append(other.execute("SELECT pg_catalog.to_regclass(%s) IS NOT NULL",
                                          (f"public.{marker}",)).fetchone() == (True,))
        execute(conn, sql, label)  # type: ignore[arg-type]

    monkeypatch.setattr(pgrestore, "_execute", spy)

    result = pg_restore_check(dump, db.url, scratch=scratch)

    assert result.verdict == "fail" and result.failed_checks[0].name == "restore safety"
    assert seen == [False], "what the dump ran before its own COMMIT was committed before the refusal"


def test_a_large_objects_begin_and_commit_are_not_sent_the_restore_stays_one_transaction(
        make_postgres: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scratch: str) -> None:
    """pg_dump writes BEGIN; … COMMIT; around a large object's data: skipped (counted), so the only COMMIT sent is
    the restore's own after the whole dump passed, and the large object is restored all the same."""
    db: ScratchDB = make_postgres()  # type: ignore[operator]
    db.run_sql("CREATE TABLE public.t (a integer)", "INSERT INTO public.t VALUES (1)", "SELECT lo_from_bytea(0, 'hello')")
    dump = pg_dump(db.url.rsplit("/", 1)[1], tmp_path / "lo.sql")
    assert b"\nBEGIN;" in dump.read_bytes() and b"\nCOMMIT;" in dump.read_bytes()
    sent: list[bytes] = []
    execute = pgrestore._execute

    def spy(conn: psycopg.Connection[object], sql: bytes, label: str) -> None:
        sent.append(sql.strip().rstrip(b";").upper())
        execute(conn, sql, label)  # type: ignore[arg-type]

    monkeypatch.setattr(pgrestore, "_execute", spy)

    result = pg_restore_check(dump, db.url, scratch=scratch)

    assert result.verdict == "pass", [c.message for c in result.failed_checks]
    assert [s for s in sent if s in (b"BEGIN", b"COMMIT")] == [b"BEGIN", b"COMMIT"]
    assert any(s.startswith("transaction control") for s in result.skipped_statements)


@pytest.mark.parametrize("ender", ["ROLLBACK;", "ABORT;", "PREPARE TRANSACTION 'dbaudit_t_x';",
                                   "COMMIT PREPARED 'dbaudit_t_x';", "rollback and chain;"])
def test_a_rollback_or_two_phase_commit_in_the_dump_is_refused_and_never_sent(
        make_postgres: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scratch: str, ender: str) -> None:
    """pg_dump never writes them, and each would undo or hand over the restore's one transaction: restore safety
    fails, the statement is not sent, nothing is kept."""
    db: ScratchDB = make_postgres()  # type: ignore[operator]
    dump = tmp_path / "rollback.sql"
    dump.write_text(_with(_small_dump(db, tmp_path), f"{ender}\nCREATE TABLE public.after_it (a integer);\n"),
                    encoding="utf-8")
    sent: list[bytes] = []
    execute = pgrestore._execute

    def spy(conn: psycopg.Connection[object], sql: bytes, label: str) -> None:
        sent.append(sql)
        execute(conn, sql, label)  # type: ignore[arg-type]

    monkeypatch.setattr(pgrestore, "_execute", spy)

    result = pg_restore_check(dump, db.url, scratch=scratch)

    assert result.verdict == "fail" and result.failed_checks[0].name == "restore safety"
    word = ender.split(maxsplit=1)[0].rstrip(";").upper()
    assert word in result.failed_checks[0].message.upper()
    assert not [s for s in sent[:-1] if word.encode() in s.upper() or b"after_it" in s]
    assert sent[-1] == b"ROLLBACK"  # the runner's own, at the refusal
