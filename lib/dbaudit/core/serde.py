"""Dataclass <-> JSON for the versioned documents (snapshots, results).

Documents are written with sorted keys and a trailing newline so two snapshots of the same database
are byte-identical apart from the time they were taken, and diff cleanly in git or `diff -u`.
Files are written to a temporary name and renamed, so a failed run never leaves half a document.
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import tempfile
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from dbaudit.core.errors import DbauditError

T = TypeVar("T")


def to_jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    return obj


def dumps(obj: Any) -> str:
    return json.dumps(to_jsonable(obj), indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"


def write_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write via a temp file in the same folder, fsync and rename, so readers never see a partial file.

    Only a regular file (or a new name) is replaced: a device (as root, `--json /dev/null` would have
    replaced the device node), a FIFO, a directory or a symbolic link is refused. A link is not followed,
    since whoever can write the folder could point it anywhere."""
    target = check_output_target(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _mode_for(target))
        check_output_target(target)  # again, just before the rename: the folder may have changed meanwhile
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(target.parent)
    return target


def check_output_target(path: str | os.PathLike[str]) -> Path:
    """The path, if dbaudit may write it: absent, or a regular file that is not a symbolic link."""
    target = Path(path)
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        return target
    except OSError as exc:
        raise DbauditError(f"cannot write {target}: {exc.strerror}") from None
    if stat.S_ISLNK(info.st_mode):
        raise DbauditError(f"refusing to write {target}: it is a symbolic link (not followed; name a regular file)")
    if stat.S_ISDIR(info.st_mode):
        raise DbauditError(f"cannot write {target}: it is a directory")
    if not stat.S_ISREG(info.st_mode):
        raise DbauditError(f"refusing to write {target}: it is not a regular file (a device, FIFO or socket)")
    return target


def _mode_for(target: Path) -> int:
    """An existing file keeps its permissions; a new one gets the umask's (mkstemp creates 0600, and
    archived documents are for readers too)."""
    try:
        return stat.S_IMODE(os.lstat(target).st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (a crash right after must not bring back the old file)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a directory; the data itself is synced
    finally:
        os.close(fd)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def read_json(path: str | os.PathLike[str], what: str) -> dict[str, Any]:
    source = Path(path)
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DbauditError(f"{what} file not found: {os.fspath(path)}") from None
    except IsADirectoryError:
        raise DbauditError(f"{what} file {os.fspath(path)} is a directory") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DbauditError(f"{what} file {source} is not valid JSON: {exc}") from None
    except RecursionError:
        raise DbauditError(f"{what} file {source} is nested too deeply to be a dbaudit document") from None
    except OSError as exc:
        raise DbauditError(f"cannot read {what} file {source}: {exc.strerror}") from None
    if not isinstance(data, dict):
        raise DbauditError(f"{what} file {source} does not hold a JSON object")
    return data


class Document:
    """A dataclass written as one JSON document (snapshot, result, manifest)."""

    def save(self, path: str | os.PathLike[str]) -> None:
        write_atomic(path, dumps(self))


def load_document(cls: type[T], path: str | os.PathLike[str], kind: str, version: int | tuple[int, ...],
                  what: str) -> T:
    """Read a document back, refusing another kind or format_version by name rather than misreading it.
    `version` may list every version this dbaudit still reads (older ones lack later fields' defaults)."""
    data = read_json(path, what)
    if data.get("kind") != kind:
        raise DbauditError(f"{path} is not a dbaudit {what} (kind={data.get('kind')!r})")
    versions = version if isinstance(version, tuple) else (version,)
    found = data.get("format_version")
    if isinstance(found, bool) or found not in versions:
        readable = " or ".join(map(str, versions))
        raise DbauditError(
            f"{path} has {what} format_version {found!r}; this dbaudit reads version {readable}"
        )
    try:
        return from_dict(cls, data, where=str(path))
    except (TypeError, ValueError) as exc:
        raise DbauditError(f"{path} is not a valid {what}: {exc}") from None


def from_dict(cls: type[T], data: Any, where: str = "") -> T:
    """Build a (nested) dataclass from parsed JSON, naming the path of the first bad field."""
    return typing.cast(T, _convert(cls, data, where or cls.__name__))


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value, where) if len(inner) == 1 else value
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            raise DbauditError(f"{where}: {value!r} is not one of {typing.get_args(tp)}")
        return value
    if origin is list:
        _expect(isinstance(value, list), where, "a list")
        (item,) = typing.get_args(tp)
        return [_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        _expect(isinstance(value, dict), where, "an object")
        _, item = typing.get_args(tp)
        return {k: _convert(item, v, f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        _expect(isinstance(value, dict), where, "an object")
        hints = typing.get_type_hints(tp)
        kwargs = {}
        for field in dataclasses.fields(tp):
            if field.name in value:
                kwargs[field.name] = _convert(hints[field.name], value[field.name], f"{where}.{field.name}")
            elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise DbauditError(f"{where}: missing field {field.name!r}")
        return typing.cast(Any, tp)(**kwargs)
    if tp is float:
        _expect(isinstance(value, (int, float)) and not isinstance(value, bool), where, "a number")
        return value
    if tp in (int, str, bool):
        ok = isinstance(value, tp) and (tp is bool or not isinstance(value, bool))
        _expect(ok, where, f"a {tp.__name__}")
        return value
    return value


def _expect(ok: bool, where: str, what: str) -> None:
    if not ok:
        raise DbauditError(f"{where}: expected {what}")
