"""YAML nobody reviewed is read under bounds: alias bombs, self-reference, depth and size fail fast."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dbaudit.core import yamlsafe
from dbaudit.core.errors import DbauditError
from dbaudit.core.yamlsafe import YamlRefused, load_yaml, read_yaml_file


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """The classic: each anchor a list of `width` aliases of the previous one (width**levels leaves)."""
    lines = ["required:", "  -", f"    - &l0 [{','.join(['lol'] * width)}]"]
    lines += [f"    - &l{i} [{','.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_in_well_under_a_second() -> None:
    text = alias_bomb()
    assert len(text) < 450
    started = time.monotonic()
    with pytest.raises(YamlRefused, match="alias bomb"):
        load_yaml(text, "bomb.yml")
    assert time.monotonic() - started < 1


def test_a_self_referencing_alias_is_refused() -> None:
    with pytest.raises(YamlRefused, match="refers to itself"):
        load_yaml("a: &a [1, *a]\n", "loop.yml")
    with pytest.raises(YamlRefused, match="refers to itself"):
        load_yaml("a: &a {b: *a}\n", "loop.yml")


def test_deep_nesting_is_refused_without_a_recursion_error() -> None:
    with pytest.raises(YamlRefused):
        load_yaml("[" * 5000 + "]" * 5000, "deep.yml")
    with pytest.raises(YamlRefused, match="deeper"):
        load_yaml("[" * (yamlsafe.MAX_DEPTH + 5) + "]" * (yamlsafe.MAX_DEPTH + 5), "deep.yml")


def test_a_few_aliases_and_merge_keys_still_load() -> None:
    text = "base: &base {sql: SELECT 1, max: 5}\nmetrics:\n  a: *base\n  b: {<<: *base, max: 6}\n"
    data = load_yaml(text, "ok.yml")
    assert data["metrics"]["a"] == {"sql": "SELECT 1", "max": 5}
    assert data["metrics"]["b"] == {"sql": "SELECT 1", "max": 6}


def test_tags_that_build_objects_stay_refused() -> None:
    with pytest.raises(DbauditError, match="not valid YAML"):
        load_yaml("!!python/object/apply:os.system ['true']\n", "tag.yml")


def test_a_file_larger_than_the_bound_is_not_read_to_its_end(tmp_path: Path) -> None:
    big = tmp_path / "big.yml"
    big.write_text("# " + "x" * yamlsafe.MAX_BYTES + "\n", encoding="utf-8")
    with pytest.raises(YamlRefused, match="larger than"):
        read_yaml_file(big, "expectations")


def test_read_yaml_file_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DbauditError, match="expectations file not found"):
        read_yaml_file(tmp_path / "nope.yml", "expectations")
