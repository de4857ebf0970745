"""What a backup is, told by its content, and the reader that knows it.

dump-check is given a file or a directory. A file is told by its first bytes: a pg_dump custom archive
(`PGDMP`), a pg_dump tar archive (a tar whose first member is `toc.dat`), or SQL text, compressed or not (gzip,
zstd, xz, bzip2 by their magic bytes, never by the name), which is a pg_dump plain script when its first
comment says so and a MySQL dump otherwise. A directory is told by its files: `toc.dat` (pg_dump -Fd) or
mydumper's `metadata`/`metadata.partial` and `*-schema.sql` files. Every reader returns the same `DumpContents`
plus the checks only its format can make.

A directory's checksums are those of its `sha256sum` (`md5sum`) listing: one line `<hex>  ./<path>` per file,
sorted by path, as `cd DIR && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum` prints.
"""

from __future__ import annotations

import bz2
import hashlib
import lzma
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from tqdm import tqdm

from dbaudit.backups.dumpfile import CHUNK, DumpContents, DumpFile, read_dump
from dbaudit.backups.gzipcodec import GZIP_ERRORS, gzip_inflater
from dbaudit.core.checks import Check
from dbaudit.core.errors import DbauditError
from dbaudit.core.terminal import visible

PG_MAGIC = b"PGDMP"


def compression_of(head: bytes) -> str | None:
    """gzip, zstd, xz or bz2 by magic bytes; None for anything else."""
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:4] == b"\x28\xb5\x2f\xfd" or (head[1:4] == b"\x2a\x4d\x18" and 0x50 <= head[0] <= 0x5F):
        return "zstd"  # a frame, or the skippable frame pzstd starts with
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if head[:3] == b"BZh" and head[3:4].isdigit():
        return "bz2"
    return None


class HashingReader:
    """The file as stored: every byte read is hashed (SHA-256 and MD5) and counted on the progress bar."""

    def __init__(self, handle: BinaryIO, bar: tqdm | None = None) -> None:
        self.handle, self.bar = handle, bar
        self.md5, self.sha256 = hashlib.md5(usedforsecurity=False), hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size if size > 0 else CHUNK)
        self.md5.update(data)
        self.sha256.update(data)
        if self.bar is not None:
            self.bar.update(len(data))
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


def _decompressor(kind: str) -> Any:
    if kind == "gzip":
        return gzip_inflater()
    if kind == "zstd":
        import zstandard  # only for zstd files (mydumper's and MySQL Shell's default)

        return zstandard.ZstdDecompressor().decompressobj()
    return lzma.LZMADecompressor() if kind == "xz" else bz2.BZ2Decompressor()


def decompressed(reader: Any, kind: str | None) -> Iterator[bytes]:
    """The text inside, member by member (concatenated .gz, zstd frames, xz and bzip2 streams), in bounded pieces.

    Each member must reach its own end: a stream cut anywhere raises EOFError, which no decompressor signals by
    itself (zstd and xz simply stop). A file cut exactly between two members cannot be told from a whole one:
    the dump's own trailer is what proves it complete."""
    if kind is None:
        while data := reader.read(CHUNK):
            yield data
        return
    inflater, fed = _decompressor(kind), False
    while raw := reader.read(CHUNK):
        while raw:
            fed = True
            if kind == "gzip":
                yield inflater.decompress(raw, 4 * CHUNK)  # bounded output: a dense dump stays in memory limits
                raw = inflater.unconsumed_tail
            else:
                yield inflater.decompress(raw)
                raw = b""
            if inflater.eof:
                raw = inflater.unused_data + raw
                if kind in ("xz", "gzip") and not raw.strip(b"\0"):
                    raw = b""  # NUL padding after the last member, which xz and gzip -d accept
                inflater, fed = _decompressor(kind), False
    if fed:
        raise EOFError(f"the {kind} stream ends early")


def stream_problem(exc: Exception, kind: str | None) -> str:
    if isinstance(exc, EOFError):
        return str(exc)
    return f"the {kind} stream is corrupt ({exc})"


def _zstd_errors() -> tuple[type[Exception], ...]:
    try:
        import zstandard
    except ImportError:
        return ()
    return (zstandard.ZstdError,)  # an Exception of its own: "Data corruption detected" is no OSError


DECOMPRESS_ERRORS: tuple[type[Exception], ...] = (EOFError, *GZIP_ERRORS, lzma.LZMAError, OSError, ValueError,
                                                  *_zstd_errors())


@contextmanager
def opened(path: Path, progress: bool = False) -> Iterator[tuple[HashingReader, Iterator[bytes], str | None]]:
    """A file's hashing reader, its decompressed text and its compression; the rest is hashed on exit."""
    with path.open("rb") as handle, tqdm(total=path.stat().st_size, unit="B", unit_scale=True, leave=False,
                                         desc=f"reading {visible(path.name)}", disable=not progress, file=sys.stderr) as bar:
        kind = compression_of(handle.read(6))
        handle.seek(0)
        reader = HashingReader(handle, bar)
        yield reader, decompressed(reader, kind), kind
        reader.drain()  # bytes after the last member still belong to the file's checksum


def file_digest(path: Path) -> DumpFile:
    with path.open("rb") as handle:
        reader = HashingReader(handle)
        reader.drain()
    return DumpFile(str(path), path.stat().st_size, reader.sha256.hexdigest(), reader.md5.hexdigest(), False, 0)


def directory_files(root: Path) -> list[Path]:
    """Every file under a dump directory, sorted as `LC_ALL=C sort` sorts `./path`; links are refused, not followed."""
    found = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in [*dirs, *files]:
            entry = Path(folder) / name
            if entry.is_symlink():
                raise DbauditError(f"{entry} is a symbolic link: a dump directory must hold its own files")
        found += [Path(folder) / name for name in files]
    return sorted(found, key=lambda p: os.fsencode(p.relative_to(root)))


def _listing_line(digest: str, relative: str) -> bytes:
    name = relative.replace("\\", "\\\\").replace("\n", "\\n")
    escaped = "\\" if name != relative else ""  # sha256sum marks a line whose name it escaped
    return f"{escaped}{digest}  ./{name}\n".encode("utf-8", "surrogateescape")


def directory_digest(root: Path, each: Callable[[Path, str, str], None] | None = None) -> DumpFile:
    """Size and checksums of a directory: those of its sha256sum/md5sum listing (see the module doc)."""
    sha_listing, md5_listing, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    for path in directory_files(root):
        digest = file_digest(path)
        relative = str(path.relative_to(root))
        sha_listing.update(_listing_line(digest.sha256, relative))
        md5_listing.update(_listing_line(digest.md5, relative))
        size += digest.size
        if each is not None:
            each(path, digest.sha256, digest.md5)
    return DumpFile(str(root), size, sha_listing.hexdigest(), md5_listing.hexdigest(), False, 0)


def digest_of(path: Path) -> DumpFile:
    return directory_digest(path) if path.is_dir() else file_digest(path)


# --- telling the format ----------------------------------------------------------------------------


def _is_pg_directory(root: Path) -> bool:
    names = {p.name for p in root.iterdir()}
    return "toc.dat" in names or any(n.split(".")[0].isdigit() and ".dat" in n for n in names)


def _is_mydumper(root: Path) -> bool:
    names = [p.name for p in root.iterdir()]
    return any(n == "metadata" or n.startswith("metadata.partial") for n in names) or any(
        "-schema" in n and ".sql" in n for n in names)


def format_of(path: Path) -> str:
    """mysql, pg_dump plain|custom|tar|directory or mydumper, by what the file or directory holds."""
    if path.is_dir():
        if _is_pg_directory(path):
            return "pg_dump directory"
        if _is_mydumper(path):
            return "mydumper"
        raise DbauditError(f"{path} is a directory, but neither a pg_dump directory archive (toc.dat) "
                           "nor a mydumper dump (metadata, *-schema.sql)")
    if not path.is_file():
        raise DbauditError(f"dump file not found: {path}")
    with path.open("rb") as handle:
        head = handle.read(512)
    if head.startswith(PG_MAGIC):
        return "pg_dump custom"
    if head[257:262] == b"ustar" and head[:8] == b"toc.dat\0":
        return "pg_dump tar"
    return "pg_dump plain" if b"-- PostgreSQL database dump" in _text_head(path) else "mysql"


def _text_head(path: Path) -> bytes:
    """The first KiB of the text inside (decompressed): where pg_dump writes its header."""
    with path.open("rb") as handle:
        kind = compression_of(handle.read(6))
        handle.seek(0)
        head = b""
        try:
            for data in decompressed(handle, kind):
                head += data
                if len(head) >= 1024:
                    break
        except DECOMPRESS_ERRORS:
            pass  # a damaged stream is the reader's to report; what came out is enough to tell the format
    first = head[:1024]
    return first if first.lstrip().startswith(b"--") else b""


def read_backup(path: str | os.PathLike[str], progress: bool = False, md5: bool = True,
                ) -> tuple[DumpContents, list[Check]]:
    """Read any supported backup: its contents, and the checks only its format can make (a plain or gzip MySQL
    dump's MD5 only with `md5`; the other formats always have it)."""
    source = Path(path)
    kind = format_of(source)
    if kind == "mysql":
        return read_dump(source, progress, md5), []
    from dbaudit.backups import mydumper, pgdump

    if kind == "mydumper":
        return mydumper.read_mydumper(source, progress)
    if kind == "pg_dump plain":
        return _read_plain(source, progress)
    return pgdump.read_pg_archive_hashed(source, kind, lambda: digest_of(source))


def _read_plain(source: Path, progress: bool) -> tuple[DumpContents, list[Check]]:
    from dbaudit.backups import pgdump

    started = time.monotonic()
    problems: list[str] = []
    file = DumpFile(str(source), source.stat().st_size, "", "", False, 0)
    with opened(source, progress) as (reader, chunks, kind):
        file.compressed = kind is not None
        contents, checks = pgdump.read_pg_plain(file, _guarded(chunks, kind, problems), problems, started)
    file.sha256, file.md5 = reader.sha256.hexdigest(), reader.md5.hexdigest()
    if problems:  # the stream broke: the scanner saw a cut script; the stream's reason is the one to give
        contents.complete, contents.truncation = False, problems[0]
    return contents, checks


def _guarded(chunks: Iterator[bytes], kind: str | None, problems: list[str]) -> Iterator[bytes]:
    try:
        yield from chunks
    except DECOMPRESS_ERRORS as exc:
        problems.append(stream_problem(exc, kind))
