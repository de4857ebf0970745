"""The scratch journal: what a restore-check or rehearse run creates on a server, written down before it exists.

A run killed with SIGKILL (or a machine that lost power) cannot drop its temporary account (PostgreSQL: role)
and its scratch database. Every run that makes them, whatever the backend (MySQL/MariaDB restore-check and
rehearse, PostgreSQL restore-check), therefore keeps one entry in a private directory: `<run>.json` names the
backend, the server (an identity, never credentials), the account, the scratch database and, for each, the
proof that the object on the server is the one this run made; `<run>.lock` is held (flock) for as long as the
run lives. The next run against the same server takes over every entry whose lock is free (its run is dead)
and that was written on this host, hands it to the backend, and the backend drops only what the server proves
is that run's (backups/restore_account.py: MariaDB password hash, MySQL account comment, database comment;
backups/pgrestore.py: role comment, database owned by that role). A name alone is never enough to drop anything.

Nothing secret is written: no password, only markers (a SHA-256 of a stored password hash, random tokens).
The directory is `$DBAUDIT_RESTORE_JOURNAL`, else `$XDG_STATE_HOME/dbaudit/restore` (`~/.local/state/…`); it
must be a directory of this user, mode 0700: entries decide what gets dropped. This module has no database
imports: it only keeps the files.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import socket
import stat
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path

from dbaudit.core.errors import DbauditError

JOURNAL_ENV = "DBAUDIT_RESTORE_JOURNAL"
ENTRY_VERSION = 2


@dataclass
class JournalEntry:
    """One run's objects on one server. The defaults read an entry of the previous MySQL journal (version 1)."""

    run: str  # the entry's file stem
    pid: int
    server: str  # identity of the server (restore_account.server_identity, pgrestore's host:port key)
    started_at: str
    account_user: str | None = None  # the temporary account (PostgreSQL: role)
    account_host: str | None = None  # MySQL/MariaDB only
    account_marker: str | None = None  # what proves the account on the server is this run's
    scratch: str | None = None  # the scratch database
    scratch_marker: str | None = None  # what proves the database is this run's
    backend: str = "mysql"  # mysql, postgresql
    purpose: str = "restore-check"  # restore-check, rehearse: which command made them (for messages)
    hostname: str = ""  # where the run ran: another host's run is never taken for dead ("" : not recorded)
    version: int = 1


def journal_dir() -> Path:
    configured = os.environ.get(JOURNAL_ENV)
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "dbaudit" / "restore"


def _private_dir() -> Path:
    """The journal directory, created 0700; refused when it is not this user's, or others could write to it."""
    path = journal_dir()
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        info = os.lstat(path)
    except OSError as exc:
        raise DbauditError(f"scratch journal {path}: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        raise DbauditError(f"scratch journal {path} must be a directory of this user, mode 0700 "
                           f"(chmod 700 it, or set {JOURNAL_ENV} to another)")
    return path


class Journal:
    """This run's entry: held locked while the run lives, updated before each object is created."""

    def __init__(self, backend: str, server: str, purpose: str) -> None:
        self.dir = _private_dir()
        run = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{os.getpid()}-{secrets.token_hex(4)}"
        self.entry = JournalEntry(run, os.getpid(), server, datetime.now(UTC).isoformat(timespec="seconds"),
                                  backend=backend, purpose=purpose, hostname=socket.gethostname(),
                                  version=ENTRY_VERSION)
        self.lock_path, self.path = self.dir / f"{run}.lock", self.dir / f"{run}.json"
        self._lock = os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o600)
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        self._closed = False

    def record(self, **changes: str | None) -> None:
        """Set fields of the entry (None: that object is gone) and write it whole before the caller goes on."""
        for key, value in changes.items():
            if key not in _OBJECT_FIELDS:
                raise ValueError(f"not a journal field: {key}")
            setattr(self.entry, key, value)
        _write(self.path, self.entry)

    def close(self) -> None:
        """The run's objects are gone (or handed over, e.g. a kept database): the entry goes."""
        if self._closed:
            return
        self.path.unlink(missing_ok=True)
        self.lock_path.unlink(missing_ok=True)
        os.close(self._lock)
        self._closed = True


_OBJECT_FIELDS = {"account_user", "account_host", "account_marker", "scratch", "scratch_marker"}


def _write(path: Path, entry: JournalEntry) -> None:
    """Atomically: a run killed while writing leaves the previous entry, never half of one."""
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_CREAT | os.O_TRUNC | os.O_WRONLY | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(asdict(entry), handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


@contextlib.contextmanager
def abandoned(backend: str, server: str) -> Iterator[list[tuple[JournalEntry, Path]]]:
    """Entries of dead runs of `backend` against `server` (their lock is free, written on this host), locked by
    this run while it cleans up. The caller removes an entry's files (`forget`) once what it names is gone."""
    directory = journal_dir()
    taken: list[tuple[JournalEntry, Path]] = []
    held: list[int] = []
    if not directory.is_dir():
        yield taken  # no run ever wrote here: not even the directory is made
        return
    directory = _private_dir()
    here = socket.gethostname()
    try:
        for lock_path in sorted(directory.glob("*.lock")):
            try:
                fd = os.open(lock_path, os.O_WRONLY | os.O_NOFOLLOW)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)  # a live run holds it
                continue
            held.append(fd)
            entry = _read(lock_path.with_suffix(".json"))
            if entry is None:
                if not lock_path.with_suffix(".json").exists():
                    forget(lock_path)  # the run died before it wrote anything: it created nothing
            elif entry.backend == backend and entry.server == server and entry.hostname in ("", here):
                taken.append((entry, lock_path))
        yield taken
    finally:
        for fd in held:
            os.close(fd)


def _read(path: Path) -> JournalEntry | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        known = {f.name for f in fields(JournalEntry)}
        if not isinstance(data, dict) or not set(data) <= known:
            return None  # not an entry this version can read: left alone
        entry = JournalEntry(**data)
    except (OSError, ValueError, TypeError):
        return None
    return entry if entry.run == path.stem else None


def forget(lock_path: Path) -> None:
    lock_path.with_suffix(".json").unlink(missing_ok=True)
    lock_path.with_suffix(".tmp").unlink(missing_ok=True)
    lock_path.unlink(missing_ok=True)
