"""serde.write_atomic, the one writer of every file the CLI produces: atomic, and only onto regular files.

Canaries: a file a symbolic link points to, a FIFO, a device node made in tmp (as root), a directory.
None of them may be replaced or written through."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from dbaudit.core import serde
from dbaudit.core.errors import DbauditError


def test_a_new_file_is_written_whole_with_the_umask_mode(tmp_path: Path) -> None:
    target = serde.write_atomic(tmp_path / "sub" / "out.json", "{}\n")
    assert target.read_text() == "{}\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~_umask()
    assert [p.name for p in target.parent.iterdir()] == ["out.json"]  # no temporary left behind


def test_an_existing_file_is_replaced_and_keeps_its_permissions(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("old")
    target.chmod(0o600)
    serde.write_atomic(target, "new")
    assert target.read_text() == "new" and stat.S_IMODE(target.stat().st_mode) == 0o600


def test_a_symbolic_link_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    canary = tmp_path / "canary.txt"
    canary.write_text("canary")
    link = tmp_path / "out.json"
    link.symlink_to(canary)
    with pytest.raises(DbauditError, match="symbolic link"):
        serde.write_atomic(link, "{}")
    assert link.is_symlink() and os.readlink(link) == str(canary)
    assert canary.read_text() == "canary"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["canary.txt", "out.json"]


def test_a_dangling_symbolic_link_is_refused_too(tmp_path: Path) -> None:
    link = tmp_path / "out.json"
    link.symlink_to(tmp_path / "would-be-created")
    with pytest.raises(DbauditError, match="symbolic link"):
        serde.write_atomic(link, "{}")
    assert not (tmp_path / "would-be-created").exists()


def test_a_fifo_is_refused_and_stays_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "out.json"
    os.mkfifo(fifo)
    with pytest.raises(DbauditError, match="not a regular file"):
        serde.write_atomic(fifo, "{}")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
def test_a_device_node_is_refused_and_stays_a_device(tmp_path: Path) -> None:
    device = tmp_path / "null"
    os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a private /dev/null, never the real one
    with pytest.raises(DbauditError, match="not a regular file"):
        serde.write_atomic(device, "{}")
    assert stat.S_ISCHR(os.lstat(device).st_mode) and os.lstat(device).st_rdev == os.makedev(1, 3)


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DbauditError, match="is a directory"):
        serde.write_atomic(tmp_path, "{}")


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
