"""The documentation stays true to the code: every command and option is documented, the README stays a
short guide, and every page the README links to exists (sqlite-utils' test_docs.py, in spirit)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from dbaudit.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _commands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _docs_text() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(DOCS.glob("*.md")))


@pytest.mark.parametrize("command", sorted(_commands()))
def test_every_command_has_a_section_in_the_command_reference(command: str) -> None:
    assert f"## `dbaudit {command}`" in (DOCS / "cli.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(("command", "option"), sorted(
    (name, option) for name, parser in _commands().items() for action in parser._actions
    for option in action.option_strings if option not in ("-h", "--help")))
def test_every_option_is_documented_under_its_command(command: str, option: str) -> None:
    reference = (DOCS / "cli.md").read_text(encoding="utf-8")
    section = reference.split(f"## `dbaudit {command}`", 1)[1].split("\n## ", 1)[0]
    assert f"`{option}`" in section, f"dbaudit {command} {option} is not in docs/cli.md"


def test_the_readme_is_a_short_guide_that_starts_with_the_two_commands() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200
    assert "make demo" in lines[3] and "make test" in lines[4]


def test_every_linked_page_exists() -> None:
    for page in [ROOT / "README.md", *DOCS.glob("*.md")]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            assert (page.parent / target).exists(), f"{page.relative_to(ROOT)} links to a missing {target}"
