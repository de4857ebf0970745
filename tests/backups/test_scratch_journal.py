"""The scratch journal's files alone (no server): which entries a later run takes for a dead run's, and which never."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from dbaudit.backups import scratch_journal
from dbaudit.backups.scratch_journal import Journal, abandoned
from dbaudit.core.errors import DbauditError


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "journal"
    monkeypatch.setenv(scratch_journal.JOURNAL_ENV, str(path))
    return path


def _dead(folder: Path, run: str, **fields: object) -> None:
    """An entry as a killed run leaves it: its files, its lock free."""
    entry = {"run": run, "pid": 1, "server": "s1", "started_at": "2026-01-01T00:00:00+00:00", **fields}
    (folder / f"{run}.json").write_text(json.dumps(entry), encoding="utf-8")
    (folder / f"{run}.lock").touch()


def test_a_live_runs_entry_is_never_taken_and_a_dead_runs_of_this_host_backend_and_server_is(folder: Path) -> None:
    live = Journal("mysql", "s1", "rehearse")
    live.record(account_user="dbaudit_rehearse_x", scratch="db")
    host = socket.gethostname()
    _dead(folder, "dead", backend="mysql", hostname=host, scratch="a", version=2)
    _dead(folder, "elsewhere", backend="mysql", hostname=f"not-{host}", scratch="b", version=2)
    _dead(folder, "postgres", backend="postgresql", hostname=host, scratch="c", version=2)
    _dead(folder, "other-server", backend="mysql", hostname=host, server="s2", scratch="d", version=2)
    _dead(folder, "v1")  # the previous MySQL journal's entry: no backend, no host name

    with abandoned("mysql", "s1") as entries:
        assert sorted(e.run for e, _ in entries) == ["dead", "v1"]
    with abandoned("postgresql", "s1") as entries:
        assert [e.run for e, _ in entries] == ["postgres"]
    live.close()
    assert not live.path.exists() and not live.lock_path.exists()


def test_an_entry_whose_lock_is_held_by_another_process_is_not_taken(folder: Path) -> None:
    folder.mkdir(mode=0o700)
    _dead(folder, "held", backend="mysql", hostname=socket.gethostname(), version=2)
    holder = subprocess.Popen(  # another process holding the lock, as a live run does, until its stdin closes
        [sys.executable, "-c", "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_WRONLY); "
         "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()", str(folder / "held.lock")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with abandoned("mysql", "s1") as entries:
            assert entries == []
    finally:
        holder.communicate(timeout=10)
    with abandoned("mysql", "s1") as entries:
        assert [e.run for e, _ in entries] == ["held"]


def test_an_entry_with_unknown_fields_or_a_name_not_its_run_is_left_alone(folder: Path) -> None:
    folder.mkdir(mode=0o700)
    _dead(folder, "forged", backend="mysql", hostname="", token="abc")
    _dead(folder, "renamed", backend="mysql", hostname="")
    data = json.loads((folder / "renamed.json").read_text())
    (folder / "renamed.json").write_text(json.dumps({**data, "run": "someone-else"}))
    with abandoned("mysql", "s1") as entries:
        assert entries == []
    assert (folder / "forged.json").exists() and (folder / "renamed.json").exists()


def test_the_journal_refuses_a_directory_others_can_write_and_writes_no_secret(folder: Path) -> None:
    folder.mkdir(mode=0o700)
    folder.chmod(0o770)
    with pytest.raises(DbauditError, match="mode 0700"):
        Journal("mysql", "s1", "restore-check")
    folder.chmod(0o700)
    journal = Journal("mysql", "s1", "restore-check")
    journal.record(account_user="u", account_marker="m")
    with pytest.raises(ValueError):
        journal.record(password="x")
    entry = json.loads(journal.path.read_text())
    assert entry["account_user"] == "u" and entry["version"] == 2 and "password" not in entry
    assert oct(journal.path.stat().st_mode & 0o777) == "0o600"
    journal.close()
