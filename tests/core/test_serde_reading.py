"""A snapshot or result file from elsewhere is input: a hostile one fails with one line, not a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbaudit.core import serde
from dbaudit.core.errors import DbauditError


def test_a_deeply_nested_json_file_is_an_input_error(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(DbauditError, match="nested too deeply"):
        serde.read_json(deep, "snapshot")
