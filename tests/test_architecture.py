"""The layers of lib/dbaudit, enforced: each package imports only from itself and the layers below it.

core (documents, errors) → audit (pure judging) → live (servers) → backups (dumps, restores) → outputs
(notebook views, reports) → demo → cli. The pure layers never import the database or notebook stack,
and nothing in the library imports the CLI.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lib" / "dbaudit"
LAYERS = ["core", "audit", "live", "backups", "outputs", "demo", "cli"]
# Third-party stacks the pure layers must not pull in.
HEAVY = {"sqlalchemy", "pymysql", "psycopg", "pandas", "matplotlib", "IPython", "papermill", "nbconvert", "nbformat"}
PURE = {"core", "audit"}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "notebooks" not in p.parts)


def _layer(path: Path) -> str | None:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 and parts[0] in LAYERS else None


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            if node.module == "dbaudit":
                names += [f"dbaudit.{alias.name}" for alias in node.names]
    return names


def test_every_module_lives_in_a_layer() -> None:
    loose = [str(p.relative_to(PACKAGE)) for p in _modules() if _layer(p) is None]
    assert sorted(loose) == ["__init__.py", "__main__.py"]


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_a_module_imports_only_its_own_layer_and_the_layers_below(path: Path) -> None:
    layer = _layer(path)
    if layer is None:
        return
    rank = LAYERS.index(layer)
    above = [name for name in _imports(path) if name.startswith("dbaudit.")
             and (target := name.split(".")[1]) in LAYERS and LAYERS.index(target) > rank]
    assert not above, f"{path.relative_to(PACKAGE)} ({layer}) imports from a higher layer: {above}"


@pytest.mark.parametrize("path", [p for p in _modules() if _layer(p) in PURE], ids=lambda p: str(p.relative_to(PACKAGE)))
def test_pure_logic_never_imports_the_database_or_notebook_stack(path: Path) -> None:
    heavy = [name for name in _imports(path) if name.split(".")[0] in HEAVY]
    assert not heavy, f"{path.relative_to(PACKAGE)} imports {heavy}"


def test_reading_and_judging_a_dump_loads_no_database_driver() -> None:
    probe = ("import sys, dbaudit.backups.checks, dbaudit.backups.dumpfile, dbaudit.audit.diff, "
             "dbaudit.audit.expectations, dbaudit.audit.result; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in "
             f"{sorted(HEAVY)!r}))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
