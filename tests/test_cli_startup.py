"""The CLI starts light: `dbaudit dump-check` imports neither SQLAlchemy nor pandas (they cost most of its start-up)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import ROOT

_PROBE = """
import sys
from dbaudit.cli import main
code = main(sys.argv[1:])
heavy = sorted(m for m in ("sqlalchemy", "pandas", "numpy", "jinja2", "nbformat") if m in sys.modules)
print("heavy:", ",".join(heavy))
"""


def test_dump_check_runs_without_importing_sqlalchemy_or_pandas(tmp_path: Path) -> None:
    dump = tmp_path / "d.sql"
    dump.write_text("CREATE TABLE t (id int);\nINSERT INTO t VALUES (1),(2);\n")

    run = subprocess.run([sys.executable, "-c", _PROBE, "dump-check", str(dump)], capture_output=True, text=True,
                         cwd=ROOT)

    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip().splitlines()[-1] == "heavy:"


def test_the_cli_default_for_compare_max_keys_is_the_library_s() -> None:
    from dbaudit.cli import compare as cli_compare
    from dbaudit.live.compare import MAX_KEYS

    assert cli_compare.MAX_KEYS == MAX_KEYS
    from dbaudit.cli import audit as cli_audit
    from dbaudit.live.connect import DEFAULT_LOCK_TIMEOUT
    assert cli_audit.DEFAULT_LOCK_TIMEOUT == DEFAULT_LOCK_TIMEOUT
