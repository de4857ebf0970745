"""Reading YAML nobody reviewed: bounded in size, in alias expansion and in depth.

PyYAML's safe loader builds no objects from tags, but an alias is a reference: nine anchors of nine
aliases each (a few hundred bytes) stand for 9**9 leaves, and the first code that walks them (an error
message's repr, a JSON dump) runs out of memory after a minute. Here the composed node graph is measured
*before* anything is constructed: its size as a tree (each alias counted as the whole subtree it stands
for) must stay under a bound a hand-written or derived expectations file never comes near, and an alias
that contains itself is refused. Every YAML dbaudit reads (expectations, rollback settings, telling an
expectations file from a migration) goes through `load_yaml`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from dbaudit.core.errors import DbauditError

MAX_BYTES = 4 * 1024 * 1024  # a derived expectations file for hundreds of migrations is a few hundred KB
MAX_NODES = 200_000  # scalars, sequences and mappings once aliases are expanded
MAX_DEPTH = 200


class YamlRefused(DbauditError):
    """Valid YAML, perhaps, but beyond the bounds: too large, too deep, or aliases expanding too far."""


def load_yaml(text: str, source: str) -> Any:
    """Parse one YAML document under the bounds above; DbauditError (one line) otherwise."""
    if len(text) > MAX_BYTES:
        raise YamlRefused(f"{source}: YAML larger than {MAX_BYTES // (1024 * 1024)} MB; refusing to read it")
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, source)
        return loader.construct_document(node)
    except RecursionError:
        raise YamlRefused(f"{source}: YAML nested too deeply") from None
    except yaml.YAMLError as exc:
        raise DbauditError(f"{source} is not valid YAML: {exc}") from None
    finally:
        loader.dispose()


def read_yaml_file(path: str | os.PathLike[str], what: str = "YAML") -> Any:
    """A YAML file, read at most MAX_BYTES (a device or a huge file is not read to its end)."""
    source = Path(path)
    try:
        with source.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise DbauditError(f"{what} file not found: {source}") from None
    except IsADirectoryError:
        raise DbauditError(f"{what} file {source} is a directory") from None
    except OSError as exc:
        raise DbauditError(f"cannot read {what} file {source}: {exc.strerror}") from None
    if len(raw) > MAX_BYTES:
        raise YamlRefused(f"{what} file {source} is larger than {MAX_BYTES // (1024 * 1024)} MB; refusing to read it")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DbauditError(f"{what} file {source} is not valid YAML: {exc}") from None
    return load_yaml(text, f"{what} file {source}")


def _check_expansion(root: yaml.Node, source: str) -> None:
    """Count the tree the graph stands for, iteratively (no recursion), each shared node's size computed once."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 0, False)]
    while stack:
        node, depth, children_done = stack.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            size = 1 + sum(sizes[id(child)] for child in _children(node))
            if size > MAX_NODES:
                raise YamlRefused(f"{source}: YAML aliases expand to more than {MAX_NODES:,} nodes "
                                   "(an alias bomb?); refusing it")
            sizes[key] = size
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise YamlRefused(f"{source}: YAML alias refers to itself; refusing it")
        if depth > MAX_DEPTH:
            raise YamlRefused(f"{source}: YAML nested deeper than {MAX_DEPTH} levels")
        on_path.add(key)
        stack.append((node, depth, True))
        stack.extend((child, depth + 1, False) for child in _children(node) if id(child) not in sizes)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []
