"""A journal of the scratch objects restore-check creates, so a later run can drop what a dead run left.

Before a run creates its temporary role (account) and scratch database it writes one small JSON entry naming
them, its process (pid and start time) and its server (host:port, never credentials) into a private directory;
the entry is removed once both are dropped. A run killed with SIGKILL (or a machine that lost power) leaves its
entry behind. A later run on the same host lists the entries whose process is gone and hands each to the caller,
which drops the objects only when the server proves they are that run's (a token the run also wrote on the server,
e.g. as the role's comment): a name alone is never enough to drop anything.

The directory is `$DBAUDIT_RESTORE_JOURNAL`, else `$XDG_STATE_HOME/dbaudit/restores` (`~/.local/state/…`).
It must belong to the current user and be private (0700): entries decide what gets dropped.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from dbaudit.core.errors import DbauditError

JOURNAL_ENV = "DBAUDIT_RESTORE_JOURNAL"
ENTRY_VERSION = 1


@dataclass
class JournalEntry:
    token: str  # random, also written on the server: the proof that the objects are this run's
    backend: str  # postgresql, mysql
    server: str  # host:port as the run reached it (no user, no password)
    role: str  # the temporary role / account
    database: str  # the scratch database
    pid: int
    process_started: str  # /proc/<pid>/stat start time ("" where unknown): a reused pid is another process
    hostname: str
    started_at: str
    version: int = ENTRY_VERSION


def journal_dir() -> Path:
    configured = os.environ.get(JOURNAL_ENV)
    if configured:
        return Path(configured).expanduser()
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "dbaudit" / "restores"


def _private_dir() -> Path:
    folder = journal_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise DbauditError(f"restore journal {folder} must be a directory of this user, mode 0700 "
                           f"(set {JOURNAL_ENV} to another)")
    return folder


def process_started(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), which tells a reused pid from the original."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return ""
    return text.rpartition(")")[2].split()[19] if ")" in text else ""


def new_entry(token: str, backend: str, server: str, role: str, database: str) -> JournalEntry:
    pid = os.getpid()
    return JournalEntry(token, backend, server, role, database, pid, process_started(pid), socket.gethostname(),
                        datetime.now(UTC).isoformat(timespec="seconds"))


def write_entry(entry: JournalEntry) -> Path:
    """Written whole (temporary file, fsync, rename) before the objects it names exist."""
    folder = _private_dir()
    target = folder / f"{entry.token}.json"
    fd, temporary = tempfile.mkstemp(prefix=".entry-", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(asdict(entry), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def remove_entry(entry: JournalEntry) -> None:
    (journal_dir() / f"{entry.token}.json").unlink(missing_ok=True)


def _alive(entry: JournalEntry) -> bool:
    if entry.hostname != socket.gethostname():
        return True  # another machine's run: its process cannot be seen from here, so it is never taken for dead
    try:
        os.kill(entry.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not entry.process_started or process_started(entry.pid) == entry.process_started


def dead_entries(backend: str, server: str) -> list[JournalEntry]:
    """Entries of runs on this host against `server` whose process is gone: what they created may be left."""
    folder = journal_dir()
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(_private_dir().glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            entry = JournalEntry(**data)
        except (OSError, ValueError, TypeError):
            continue  # not an entry this version wrote: left alone
        if entry.backend == backend and entry.server == server and path.stem == entry.token and not _alive(entry):
            found.append(entry)
    return found
