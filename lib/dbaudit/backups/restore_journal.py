"""The restore journal: what a restore-check run creates on a server, written down before it is created.

A run killed with SIGKILL (or a machine that lost power) cannot drop its temporary account and scratch
database. Each run therefore keeps an entry in a private directory (0700, `$XDG_STATE_HOME/dbaudit/restore`
or `~/.local/state/dbaudit/restore`): `<run>.json` says which server, which account and which scratch
database, with a marker that proves the object on the server is the one this run made, and `<run>.lock`
is held (flock) for as long as the run lives. The next run against the same server takes over every entry
whose lock is free (its run is dead), drops what it can prove, and removes the entry. Nothing secret is
written: no password, only a SHA-256 of the account's stored password hash (MariaDB) or a random token
kept as the account's comment (MySQL), and a random token kept as the scratch database's comment.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import stat
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from dbaudit.core.errors import DbauditError


@dataclass
class JournalEntry:
    run: str
    pid: int
    server: str  # identity of the server (see restore_account.server_identity)
    started_at: str
    account_user: str | None = None
    account_host: str | None = None
    account_marker: str | None = None
    scratch: str | None = None
    scratch_marker: str | None = None  # the comment the scratch database was created with


def journal_dir() -> Path:
    """The private journal directory, created 0700; refused when someone else could write to it."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    path = Path(base) / "dbaudit" / "restore"
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        info = os.lstat(path)
    except OSError as exc:
        raise DbauditError(f"restore journal {path}: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise DbauditError(f"restore journal {path} is not a directory of this user: refusing to use it")
    if info.st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


class Journal:
    """This run's entry: held locked while the run lives, updated before each object is created."""

    def __init__(self, server: str) -> None:
        self.dir = journal_dir()
        run = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{os.getpid()}-{secrets.token_hex(4)}"
        self.entry = JournalEntry(run, os.getpid(), server, datetime.now(UTC).isoformat(timespec="seconds"))
        self.lock_path, self.path = self.dir / f"{run}.lock", self.dir / f"{run}.json"
        self._lock = os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o600)
        fcntl.flock(self._lock, fcntl.LOCK_EX)

    def record(self, **changes: str | None) -> None:
        for key, value in changes.items():
            setattr(self.entry, key, value)
        _write(self.path, self.entry)

    def close(self) -> None:
        self.path.unlink(missing_ok=True)
        self.lock_path.unlink(missing_ok=True)
        os.close(self._lock)


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
def abandoned(server: str) -> Iterator[list[tuple[JournalEntry, Path]]]:
    """Entries of dead runs against `server` (their lock is free), locked by this run while it cleans up.

    The caller removes an entry's files (`forget`) once what it names is gone."""
    directory = journal_dir()
    taken: list[tuple[JournalEntry, Path]] = []
    held: list[int] = []
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
                forget(lock_path)  # the run died before it wrote anything: it created nothing
            elif entry.server == server:
                taken.append((entry, lock_path))
        yield taken
    finally:
        for fd in held:
            os.close(fd)


def _read(path: Path) -> JournalEntry | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return JournalEntry(**data)
    except (OSError, ValueError, TypeError):
        return None


def forget(lock_path: Path) -> None:
    lock_path.with_suffix(".json").unlink(missing_ok=True)
    lock_path.with_suffix(".tmp").unlink(missing_ok=True)
    lock_path.unlink(missing_ok=True)
