"""backup-health: the hygiene a backup runbook asks for, checked over a folder of backups.

A backup is *restorable* when it has the manifest dump-check writes only for a passing dump, and its size and
SHA-256 still equal the manifest's: it is the very dump that passed. On top of that this module checks what a
runbook says in prose: the newest restorable backup is recent (`max_age_hours`), backups go back `keep_days`
with none missing or damaged in between and no gap longer than `max_age_hours`, no dump of production data is
readable (or writable) by group or other, none sits in a git work tree without being ignored, and the newest
has an offsite copy (any fsspec URL) whose SHA-256 is the manifest's.

A backup's time is its modification time (what `ls -l`, `find -mtime` and retention scripts go by), or the time
its manifest was written if that is earlier: a copy that lost its mtime is still as old as its manifest.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dbaudit.backups.checks import MANIFEST_SUFFIX, DumpManifest, load_manifest
from dbaudit.backups.formats import _is_mydumper, _is_pg_directory, compression_of, digest_of, directory_files
from dbaudit.core import secrets, serde
from dbaudit.core.checks import Check, Judged, count_failed, verdict_of
from dbaudit.core.errors import DbauditError

FORMAT_VERSION = 1
KIND = "dbaudit.backup-health"
# Names of dump files worth a look even without a manifest (a backup nobody checked is still a backup).
_DUMP_NAME = re.compile(r"\.(?:sql|dump|backup|pgdump|mysql|tar)(?:\.(?:gz|zst|xz|bz2))?$|\.(?:gz|zst|xz|bz2)$", re.I)


@dataclass
class BackupEntry:
    path: str
    taken_at: str  # ISO 8601 UTC: its mtime, or its manifest's time if earlier
    age_hours: float
    size: int
    manifest: str | None
    restorable: bool | None  # None: not checked (older than the oldest backup retention needs)
    reason: str  # why it is (not) restorable
    mode: str  # the widest permission bits among its files, e.g. 0600
    exposed: list[str] = field(default_factory=list)  # files readable or writable by group or other
    git: str | None = None  # None: outside any git work tree; ignored / not ignored / committed


@dataclass
class OffsiteCopy:
    url: str  # credentials masked
    backup: str
    found: bool
    sha256: str | None
    matches: bool


@dataclass
class BackupHealth(Judged):
    format_version: int
    kind: str
    verdict: str
    title: str
    generated_at: str
    keep_days: float
    max_age_hours: float
    backups: list[BackupEntry]  # newest first
    checks: list[Check]
    offsite: OffsiteCopy | None
    ignored: list[str]  # files in the folders that are no backups
    summary: dict[str, Any]


@dataclass
class _Candidate:
    path: Path
    mtime: float
    manifest: DumpManifest | None
    manifest_problem: str | None
    entry: BackupEntry


# --- finding the backups ---------------------------------------------------------------------------


def _is_dump_directory(path: Path) -> bool:
    return _is_pg_directory(path) or _is_mydumper(path)


def _looks_like_a_dump(path: Path) -> bool:
    if Path(f"{path}{MANIFEST_SUFFIX}").is_file() or _DUMP_NAME.search(path.name):
        return True
    with path.open("rb") as handle:
        head = handle.read(8)
    return compression_of(head) is not None or head.startswith(b"PGDMP")


def find_backups(paths: list[str]) -> tuple[list[Path], list[Path], list[str]]:
    """The backups named (files, dump directories, or folders holding them), manifests whose dump is gone, and
    what else the folders hold."""
    backups: list[Path] = []
    orphans: list[Path] = []
    ignored: list[str] = []
    for given in paths:
        path = Path(given)
        if not path.exists():
            raise DbauditError(f"backup not found: {path}")
        if path.is_file() or _is_dump_directory(path):
            backups.append(path)
            continue
        for entry in sorted(path.iterdir()):
            if entry.name.startswith("."):
                continue
            if entry.name.endswith(MANIFEST_SUFFIX):
                if not Path(str(entry)[: -len(MANIFEST_SUFFIX)]).exists():
                    orphans.append(entry)
            elif (entry.is_dir() and _is_dump_directory(entry)) or (entry.is_file() and _looks_like_a_dump(entry)):
                backups.append(entry)
            else:
                ignored.append(str(entry))
    return list(dict.fromkeys(backups)), orphans, ignored


def _files_of(path: Path) -> list[Path]:
    return directory_files(path) if path.is_dir() else [path]


def _candidate(path: Path, now: float) -> _Candidate:
    files = _files_of(path)
    mtime = max((f.stat().st_mtime for f in files), default=path.stat().st_mtime)
    manifest_file = Path(f"{path}{MANIFEST_SUFFIX}")
    manifest, problem = None, None
    if manifest_file.is_file():
        try:
            manifest = load_manifest(manifest_file)
        except DbauditError as exc:
            problem = f"its manifest cannot be read: {exc}"
    taken = min(mtime, _timestamp(manifest.written_at)) if manifest else mtime
    modes = [f.stat().st_mode & 0o777 for f in files]
    exposed = [str(f) for f, mode in zip(files, modes) if mode & 0o066]
    entry = BackupEntry(str(path), _iso(taken), round((now - taken) / 3600, 2), sum(f.stat().st_size for f in files),
                        str(manifest_file) if manifest_file.is_file() else None, None, "not checked",
                        f"{max(modes, default=0):04o}", exposed)
    return _Candidate(path, taken, manifest, problem, entry)


def _orphan(manifest_file: Path, now: float) -> _Candidate:
    try:
        manifest = load_manifest(manifest_file)
        taken = _timestamp(manifest.written_at)
    except DbauditError:
        taken = manifest_file.stat().st_mtime
    dump = str(manifest_file)[: -len(MANIFEST_SUFFIX)]
    entry = BackupEntry(dump, _iso(taken), round((now - taken) / 3600, 2), 0, str(manifest_file), False,
                        "gone: its manifest remains but the dump does not", "0000")
    return _Candidate(Path(dump), taken, None, None, entry)


def _timestamp(iso: str) -> float:
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        raise DbauditError(f"manifest time {iso!r} is not ISO 8601") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


# --- restorable ------------------------------------------------------------------------------------


def _judge(c: _Candidate) -> bool:
    """Hash the backup against its manifest, once; record the answer on its entry."""
    if c.entry.restorable is not None:
        return c.entry.restorable
    if c.manifest is None:
        c.entry.restorable = False
        c.entry.reason = c.manifest_problem or "no manifest: it never passed dump-check --write-manifest"
        return False
    digest = digest_of(c.path)
    if (digest.size, digest.sha256) != (c.manifest.size, c.manifest.sha256):
        c.entry.restorable = False
        c.entry.reason = (f"changed since its manifest ({c.manifest.size:,} → {digest.size:,} bytes, sha256 "
                          f"{c.manifest.sha256[:12]} → {digest.sha256[:12]})")
        return False
    c.entry.restorable = True
    c.entry.reason = f"size and sha256 as its manifest recorded on {c.manifest.written_at}"
    return True


def _freshness(ordered: list[_Candidate], max_age_hours: float) -> tuple[Check, _Candidate | None]:
    newest = next((c for c in ordered if _judge(c)), None)
    if newest is None:
        return Check("freshness", "newest backup", "fail", "no restorable backup at all"), None
    skipped = [Path(c.entry.path).name for c in ordered if c.mtime > newest.mtime]
    later = f" (newer but not restorable: {', '.join(skipped[:3])})" if skipped else ""
    fresh = newest.entry.age_hours <= max_age_hours
    name = Path(newest.entry.path).name
    return Check("freshness", "newest backup", "pass" if fresh else "fail", f"the newest restorable backup, {name}, "
                 f"is {newest.entry.age_hours:,.1f} hours old (at most {max_age_hours:g}){later}"), newest


def _retention(ordered: list[_Candidate], keep_days: float, max_age_hours: float) -> list[Check]:
    """The oldest restorable backup at least keep_days old; every one after it restorable, none far apart."""
    keep_hours = keep_days * 24
    anchor = next((c for c in ordered if c.entry.age_hours >= keep_hours and _judge(c)), None)
    chain = [c for c in ordered if anchor is None or c.mtime >= anchor.mtime]
    broken = [c for c in chain if not _judge(c)]
    checks = [Check("retention", f"backup {Path(c.entry.path).name}", "fail",
                    f"{Path(c.entry.path).name} (taken {c.entry.taken_at}) is not restorable: {c.entry.reason}")
              for c in broken]
    if anchor is None:
        oldest = next((c for c in reversed(ordered) if c.entry.restorable), None)
        since = f"the oldest restorable is {oldest.entry.age_hours / 24:,.1f} days old" if oldest else "none is restorable"
        checks.append(Check("retention", "oldest backup", "fail",
                            f"no restorable backup is {keep_days:g} days old: {since}"))
    else:
        checks.append(Check("retention", "oldest backup", "pass",
                            f"{Path(anchor.entry.path).name} is {anchor.entry.age_hours / 24:,.1f} days old "
                            f"(at least {keep_days:g}), restorable"))
    good = sorted((c for c in chain if c.entry.restorable), key=lambda c: c.mtime)
    for older, newer in zip(good, good[1:]):
        gap = (newer.mtime - older.mtime) / 3600
        if gap > max_age_hours:
            checks.append(Check("retention", f"gap before {Path(newer.entry.path).name}", "fail",
                                f"no restorable backup for {gap:,.1f} hours between {older.entry.taken_at} and "
                                f"{newer.entry.taken_at} (at most {max_age_hours:g})"))
    return checks


# --- permissions and git ---------------------------------------------------------------------------


def _permissions(ordered: list[_Candidate]) -> Check:
    exposed = [f for c in ordered for f in c.entry.exposed]
    if not exposed:
        return Check("permissions", "backup files", "pass", "no backup file is readable or writable by group or other")
    modes = ", ".join(f"{Path(f).name} ({os.stat(f).st_mode & 0o777:04o})" for f in exposed[:5])
    more = f" (+{len(exposed) - 5} more)" if len(exposed) > 5 else ""
    return Check("permissions", "backup files", "fail", f"readable or writable by group or other, while a dump holds "
                 f"production data: {modes}{more}; chmod 600 them")


def _git_env() -> dict[str, str]:
    # Only the work tree's own ignore rules count (a global excludes file protects one clone, not the repository),
    # and nothing from the caller's git configuration or environment (hooks, fsmonitor) may run.
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tempfile.gettempdir(), "LC_ALL": "C",
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    git = shutil.which("git")
    assert git is not None
    return subprocess.run([git, "-c", "core.fsmonitor=false", *args], cwd=cwd, capture_output=True, text=True,
                          env=_git_env(), stdin=subprocess.DEVNULL, check=False)


def git_state(path: Path) -> str | None:
    """None outside a git work tree; else ignored, not ignored or committed (tracked files are never ignored)."""
    folder = path if path.is_dir() else path.parent
    if shutil.which("git") is None:
        inside = any((p / ".git").exists() for p in [folder.resolve(), *folder.resolve().parents])
        return "cannot tell: git is not installed" if inside else None
    top = _git(["rev-parse", "--show-toplevel"], folder)
    if top.returncode != 0:
        return None if "not a git repository" in top.stderr else f"cannot tell: {top.stderr.strip()[:120]}"
    root = Path(top.stdout.strip())
    relative = str(path.resolve().relative_to(root.resolve()))
    if _git(["ls-files", "--error-unmatch", "--", relative], root).returncode == 0:
        return "committed"
    ignored = _git(["check-ignore", "-q", "--no-index", "--", relative], root)
    return "ignored" if ignored.returncode == 0 else "not ignored"


def _git_check(ordered: list[_Candidate]) -> Check:
    for c in ordered:
        if Path(c.entry.path).exists():
            c.entry.git = git_state(Path(c.entry.path))
    bad = [c for c in ordered if c.entry.git not in (None, "ignored")]
    if not bad:
        inside = sum(1 for c in ordered if c.entry.git == "ignored")
        return Check("git", "work tree", "pass", "no backup in a git work tree that git would add"
                     + (f" ({inside} inside one, ignored)" if inside else ""))
    shown = "; ".join(f"{Path(c.entry.path).name}: {c.entry.git}" for c in bad[:5])
    return Check("git", "work tree", "fail", f"backups inside a git work tree and not ignored: {shown} "
                 "(add them to .gitignore; a committed one stays in the history)")


# --- offsite ---------------------------------------------------------------------------------------


def mask_url(url: str) -> str:
    """An fsspec URL as it may be shown: password, tokens and signatures masked (dbaudit.core.secrets)."""
    return secrets.mask_url(url)


def _offsite(url: str, backup: _Candidate | None) -> tuple[Check, OffsiteCopy | None]:
    if backup is None or backup.manifest is None:
        return Check("offsite", "offsite copy", "fail", "no restorable backup to look for offsite"), None
    import fsspec  # type: ignore[import-untyped]  # fsspec ships no type information

    name = Path(backup.entry.path).name
    try:
        fs, root = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise DbauditError(f"--offsite {mask_url(url)}: {exc}") from None
    remote = f"{root.rstrip('/')}/{name}"
    try:
        sha = _remote_sha256(fs, remote) if fs.exists(remote) else None
    except OSError as exc:
        raise DbauditError(f"--offsite {mask_url(url)}: {exc}") from None
    copy = OffsiteCopy(mask_url(url), name, sha is not None, sha, sha == backup.manifest.sha256)
    if sha is None:
        return Check("offsite", "offsite copy", "fail", f"no copy of {name} at {copy.url}"), copy
    if not copy.matches:
        return Check("offsite", "offsite copy", "fail", f"the copy of {name} at {copy.url} differs: sha256 {sha[:12]}, "
                     f"its manifest records {backup.manifest.sha256[:12]}"), copy
    return Check("offsite", "offsite copy", "pass", f"{name} at {copy.url} has the manifest's sha256"), copy


def _stream_sha256(fs: Any, path: str) -> tuple[str, str]:
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with fs.open(path, "rb") as handle:
        while data := handle.read(1 << 20):
            sha.update(data)
            md5.update(data)
    return sha.hexdigest(), md5.hexdigest()


def _remote_sha256(fs: Any, remote: str) -> str:
    """A remote file's SHA-256, or a remote directory's listing digest (as formats.directory_digest computes it)."""
    from dbaudit.backups.formats import _listing_line

    if not fs.isdir(remote):
        return _stream_sha256(fs, remote)[0]
    listing = hashlib.sha256()
    prefix = remote.rstrip("/") + "/"
    files = sorted(fs.find(remote), key=lambda p: os.fsencode(p[len(prefix) :]))
    for path in files:
        listing.update(_listing_line(_stream_sha256(fs, path)[0], path[len(prefix) :]))
    return listing.hexdigest()


# --- the whole check -------------------------------------------------------------------------------


def backup_health(paths: list[str], *, keep_days: float = 30, max_age_hours: float = 26,
                  offsite: str | None = None, title: str | None = None) -> BackupHealth:
    if keep_days < 0 or max_age_hours <= 0:
        raise DbauditError("--keep-days must be 0 or more and --max-age-hours more than 0")
    now = time.time()
    found, orphans, ignored = find_backups(paths)
    ordered = sorted([_candidate(p, now) for p in found] + [_orphan(m, now) for m in orphans],
                     key=lambda c: c.mtime, reverse=True)
    fresh, newest = _freshness(ordered, max_age_hours)
    checks = [fresh, *_retention(ordered, keep_days, max_age_hours), _permissions(ordered), _git_check(ordered)]
    copy = None
    if offsite is not None:
        check, copy = _offsite(offsite, newest)
        checks.append(check)
    entries = [c.entry for c in ordered]
    restorable = [e for e in entries if e.restorable]
    return BackupHealth(
        format_version=FORMAT_VERSION, kind=KIND, verdict=verdict_of(checks), title=title or f"backups in {', '.join(paths)}",
        generated_at=_iso(now), keep_days=keep_days, max_age_hours=max_age_hours, backups=entries, checks=checks,
        offsite=copy, ignored=ignored,
        summary={"backups": len(entries), "restorable": len(restorable), "checks": len(checks),
                 "checks_failed": count_failed(checks),
                 "newest_age_hours": newest.entry.age_hours if newest else None,
                 "oldest_restorable_age_days": round(restorable[-1].age_hours / 24, 2) if restorable else None},
    )


def load_backup_health(path: str | os.PathLike[str]) -> BackupHealth:
    return serde.load_document(BackupHealth, path, KIND, FORMAT_VERSION, "backup-health result")
