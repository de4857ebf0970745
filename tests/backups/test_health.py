"""backup-health over folders of real dumps (world.sql by mariadb-dump's MySQL 8 cousin, a mydumper directory of
world): age, retention, damaged and missing backups, gaps, permissions, git, offsite copies (path and file://)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from formats_samples import mariadb_samples, mydumper  # noqa: F401

from conftest import ROOT
from dbaudit.backups.checks import check_dump, manifest_path, write_manifest
from dbaudit.backups.health import backup_health, load_backup_health

DAY = 86400.0


def _dbaudit(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ROOT / ".venv" / "bin" / "dbaudit"), *args], capture_output=True, text=True, cwd=cwd)


def _age(path: Path, days: float) -> None:
    """Make a backup (and its manifest) look `days` old."""
    moment = time.time() - days * DAY
    manifest = manifest_path(path)
    if manifest.is_file():
        document = json.loads(manifest.read_text())
        document["written_at"] = datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")
        manifest.write_text(json.dumps(document))
    for file in [path, *(path.rglob("*") if path.is_dir() else [])]:
        os.utime(file, (moment, moment))


def _series(folder: Path, shared: Path, days: list[float]) -> list[Path]:
    """One world.sql backup per age in `days`, each 0600 with the manifest dump-check --write-manifest writes."""
    folder.mkdir(parents=True, exist_ok=True)
    template = folder.parent / "template.sql"
    shutil.copyfile(shared / "world" / "world.sql", template)
    manifest = json.loads(write_manifest(check_dump(template)).read_text())
    made = []
    for age in days:
        dump = folder / f"world_{age:05.1f}d.sql"
        shutil.copyfile(template, dump)
        dump.chmod(0o600)
        manifest_path(dump).write_text(json.dumps({**manifest, "file": dump.name}))
        _age(dump, age)
        made.append(dump)
    return made


def _failed(result: object) -> dict[str, str]:
    return {c.name: c.message for c in result.failed_checks}  # type: ignore[attr-defined]


def test_a_month_of_daily_restorable_private_backups_passes(shared_data: Path, tmp_path: Path) -> None:
    _series(tmp_path / "backups", shared_data, [0.5 + d for d in range(32)])

    run = _dbaudit("backup-health", str(tmp_path / "backups"), "--keep-days", "30", "--json", str(tmp_path / "h.json"),
                   "--junit", str(tmp_path / "h.xml"))

    assert run.returncode == 0, run.stdout + run.stderr
    result = load_backup_health(tmp_path / "h.json")
    assert result.summary["backups"] == 32 and result.verdict == "pass"
    assert [b.restorable for b in result.backups[:31]] == [True] * 31 and result.backups[-1].restorable is None
    assert "<testcase" in (tmp_path / "h.xml").read_text()


def test_backups_that_stopped_days_ago_fail_the_newest_age(shared_data: Path, tmp_path: Path) -> None:
    _series(tmp_path / "b", shared_data, [3.0 + d for d in range(31)])

    failed = _failed(backup_health([str(tmp_path / "b")]))

    assert failed == {"newest backup": "the newest restorable backup, world_003.0d.sql, is 72.0 hours old (at most 26)"}


def test_too_short_a_history_fails_retention(shared_data: Path, tmp_path: Path) -> None:
    _series(tmp_path / "b", shared_data, [0.5 + d for d in range(10)])

    failed = _failed(backup_health([str(tmp_path / "b")], keep_days=30))

    assert failed == {"oldest backup": "no restorable backup is 30 days old: the oldest restorable is 9.5 days old"}


def test_a_damaged_a_missing_and_an_unchecked_backup_in_the_window_fail_by_name(shared_data: Path, tmp_path: Path) -> None:
    dumps = _series(tmp_path / "b", shared_data, [0.5 + d for d in range(32)])
    damaged, gone, unchecked = dumps[3], dumps[10], dumps[20]
    damaged.write_bytes(damaged.read_bytes().replace(b"'Kabul'", b"'Kabol'"))
    _age(damaged, 3.5)
    gone.unlink()
    manifest_path(unchecked).unlink()

    failed = _failed(backup_health([str(tmp_path / "b")]))

    assert failed[f"backup {damaged.name}"].startswith(f"{damaged.name} (taken ")
    assert "is not restorable: changed since its manifest (398,629 → 398,629 bytes, sha256" in failed[f"backup {damaged.name}"]
    assert failed[f"backup {gone.name}"].endswith("is not restorable: gone: its manifest remains but the dump does not")
    assert failed[f"backup {unchecked.name}"].endswith("no manifest: it never passed dump-check --write-manifest")
    assert "oldest backup" not in failed


def test_days_without_a_backup_fail_as_a_gap(shared_data: Path, tmp_path: Path) -> None:
    _series(tmp_path / "b", shared_data, [0.5 + d for d in range(32) if d not in (5, 6, 7)])

    failed = _failed(backup_health([str(tmp_path / "b")]))

    [gap] = [m for n, m in failed.items() if n.startswith("gap before")]
    assert gap.startswith("no restorable backup for 96.0 hours between ")


def test_a_dump_readable_by_group_or_other_fails(shared_data: Path, tmp_path: Path) -> None:
    dumps = _series(tmp_path / "b", shared_data, [0.5 + d for d in range(31)])
    dumps[4].chmod(0o644)

    failed = _failed(backup_health([str(tmp_path / "b")]))

    assert failed["backup files"].startswith(f"readable or writable by group or other, while a dump holds production "
                                             f"data: {dumps[4].name} (0644)")


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True,
                   capture_output=True)


def test_a_dump_in_a_git_work_tree_fails_unless_ignored_and_a_committed_one_always(shared_data: Path,
                                                                                   tmp_path: Path) -> None:
    repo = tmp_path / "app"
    repo.mkdir()
    _git(repo, "init", "-q")
    [dump] = _series(repo / "database" / "backups", shared_data, [0.5])
    args = ([str(repo / "database" / "backups")], )

    assert _failed(backup_health(*args, keep_days=0))["work tree"].startswith(
        f"backups inside a git work tree and not ignored: {dump.name}: not ignored")
    (repo / ".gitignore").write_text("*.sql\n")
    assert backup_health(*args, keep_days=0).passed
    _git(repo, "add", "-f", str(dump))
    _git(repo, "commit", "-qm", "oops")
    assert f"{dump.name}: committed" in _failed(backup_health(*args, keep_days=0))["work tree"]


@pytest.mark.parametrize("scheme", ["path", "file://"])
def test_an_offsite_copy_must_hold_the_manifests_sha256(shared_data: Path, tmp_path: Path, scheme: str) -> None:
    dumps = _series(tmp_path / "b", shared_data, [0.5, 1.5])
    offsite = tmp_path / "offsite"
    offsite.mkdir()
    url = str(offsite) if scheme == "path" else f"file://{offsite}"

    assert _failed(backup_health([str(tmp_path / "b")], keep_days=1, offsite=url))["offsite copy"] == \
        f"no copy of {dumps[0].name} at {url}"
    shutil.copyfile(dumps[0], offsite / dumps[0].name)
    assert backup_health([str(tmp_path / "b")], keep_days=1, offsite=url).passed
    (offsite / dumps[0].name).write_bytes(dumps[0].read_bytes()[:-100])
    assert _failed(backup_health([str(tmp_path / "b")], keep_days=1, offsite=url))["offsite copy"].startswith(
        f"the copy of {dumps[0].name} at {url} differs: sha256 ")


def test_a_mydumper_directory_is_one_backup_its_files_checked_offsite_too(
    mariadb_samples: dict[str, str], tmp_path: Path  # noqa: F811
) -> None:
    backups = tmp_path / "backups"
    backups.mkdir()
    folder = mydumper(mariadb_samples["world"], backups / "world-20261201")
    write_manifest(check_dump(folder))
    offsite = shutil.copytree(backups, tmp_path / "offsite")

    result = backup_health([str(backups)], keep_days=0, offsite=f"file://{offsite}")

    # mydumper writes its files 0644: a dump of production data readable by anyone on the host.
    assert set(_failed(result)) == {"backup files"} and result.offsite is not None and result.offsite.matches
    for file in folder.iterdir():
        file.chmod(0o600)
    assert backup_health([str(backups)], keep_days=0, offsite=f"file://{offsite}").passed
    (offsite / folder.name / "metadata").write_text("Started dump at: x\n")
    assert "offsite copy" in _failed(backup_health([str(backups)], keep_days=0, offsite=str(offsite)))


def test_cli_backup_health_exits_1_on_a_failure_and_2_on_bad_input(shared_data: Path, tmp_path: Path) -> None:
    _series(tmp_path / "b", shared_data, [5.0])

    failing = _dbaudit("backup-health", str(tmp_path / "b"))
    missing = _dbaudit("backup-health", str(tmp_path / "nope"))
    protocol = _dbaudit("backup-health", str(tmp_path / "b"), "--offsite", "nosuchproto://x/y")

    assert failing.returncode == 1 and "verdict: FAIL" in failing.stdout
    assert (missing.returncode, protocol.returncode) == (2, 2)
    assert missing.stderr.count("\n") == 1 and "Traceback" not in missing.stderr + protocol.stderr
