"""What every notebook calls first: one-line errors, and default inputs found from the package.

A notebook run by papermill from any folder, or opened in JupyterLab, must find its defaults without
relying on the working directory, and bad input must read as one line (like the CLI), not as a
72-line traceback of library internals."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dbaudit.core.errors import DbauditError, first_line
from dbaudit.outputs import provenance as provenance_facts
from dbaudit.outputs.provenance import InputFile, ServerSide

PACKAGE = Path(__file__).resolve().parents[1]


def setup() -> None:
    """In a kernel: a DbauditError prints as `dbaudit: error: …` and still stops Run All (papermill too)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - only in a kernel
        return
    shell = get_ipython()
    if shell is None:
        return

    def one_line(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: int | None = None) -> None:
        shell._showtraceback(etype, value, [f"dbaudit: error: {first_line(str(value))}"])

    shell.set_custom_exc((DbauditError,), one_line)
    if not isinstance(sys.stderr, _NoBlankWrites):
        sys.stderr = _NoBlankWrites(sys.stderr)


class _NoBlankWrites:
    """The kernel's stderr without the blank writes a finished progress bar makes (tqdm, leave=False):
    JupyterLab would show them as an empty red box under the cell; the bar's last state stays instead."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        if text and not text.strip(" \r"):
            return len(text)
        return int(self._stream.write(text) or 0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def sample_data() -> Path:
    """The sample databases beside the repository (shared/data), or DBAUDIT_SAMPLES."""
    configured = os.environ.get("DBAUDIT_SAMPLES")
    return Path(configured) if configured else PACKAGE.parents[2] / "shared" / "data"


def sample_dump() -> str:
    """The world sample dump: what the backup notebooks check when given no dump."""
    return str(sample_data() / "world" / "world.sql")


def provenance(path: str, sides: Sequence[ServerSide] = (), inputs: dict[str, str | None] | None = None,
               parameters: dict[str, Any] | None = None, expectations: str | None = None,
               extra: Sequence[InputFile] = ()) -> Any:
    """The provenance block: the report folder's provenance.json, or (in JupyterLab) gathered now."""
    facts = provenance_facts.load(path) if path else provenance_facts.gather(
        inputs or {}, parameters, expectations, command="")
    return provenance_facts.block(facts, sides, extra)


def side(label: str, database: str, product: str, version: str) -> ServerSide:
    return ServerSide(label, database, product, version)


def dump_input(label: str, path: str, size: int, sha256: str) -> InputFile:
    """A dump read in place: its size and SHA-256 as the check measured them while reading it."""
    return InputFile(label, path, size, sha256)
