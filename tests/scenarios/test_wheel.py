"""An installed wheel is the whole product: notebooks, demo data and expectations travel inside it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT


def test_the_wheel_runs_the_demo_from_any_working_directory(tmp_path: Path) -> None:
    wheels, site, work = tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    work.mkdir()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(wheels), str(ROOT)], check=True, capture_output=True)
    (wheel,) = wheels.glob("dbaudit-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("DBAUDIT_NOTEBOOKS", None)

    where = subprocess.run([sys.executable, "-c", "import dbaudit; print(dbaudit.__file__)"], env=env, cwd=work,
                           capture_output=True, text=True, check=True)
    run = subprocess.run([sys.executable, "-m", "dbaudit", "demo", "--out-dir", "reports"], env=env, cwd=work,
                         capture_output=True, text=True, timeout=600)

    assert Path(where.stdout.strip()).is_relative_to(site)
    assert run.returncode == 0, run.stderr
    assert len(list((work / "reports").glob("*/report.html"))) == 4  # two audits, two rehearsals
