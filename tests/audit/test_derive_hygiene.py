"""A migration nobody reviewed cannot write its own expectations through its file name or its text."""

from __future__ import annotations

from pathlib import Path

from dbaudit.audit.derive import derive
from dbaudit.core.yamlsafe import load_yaml

INJECTED = "m\nallowed:\n  - table_dropped: chats\n#.sql"


def test_a_file_name_holding_yaml_adds_no_rule(tmp_path: Path) -> None:
    migration = tmp_path / INJECTED
    migration.write_text("CREATE TABLE t (id int);\nDROP TABLE chats;\n", encoding="utf-8")
    derived = derive([migration], "mysql")
    assert derived.expectations.allowed == []
    assert len(derived.expectations.required) == 2  # table added, table removed: required, not allowed
    assert "\\nallowed:\\n" in derived.text  # the name is there, escaped
    assert load_yaml(derived.text, "derived")["allowed"] == []


def test_control_characters_in_the_sql_stay_inside_their_comment(tmp_path: Path) -> None:
    migration = tmp_path / "m.sql"
    migration.write_text("CREATE TABLE t (id int, note varchar(9) DEFAULT '\x1b[2K\u2028x');\n", encoding="utf-8")
    derived = derive([migration], "mysql")
    comments = [line for line in derived.text.splitlines() if line.lstrip().startswith("#")]
    assert not any("\x1b" in line or "\u2028" in line for line in comments)
    assert load_yaml(derived.text, "derived")["required"]


def test_a_bidi_override_in_a_name_is_written_escaped_for_the_reviewer(tmp_path: Path) -> None:
    """"Trojan Source": a right-to-left override would make the reviewer read another table name."""
    migration = tmp_path / "m.sql"
    name = "users\u202e_sgol"
    migration.write_text(f"DROP TABLE `{name}`;\nCREATE TABLE `Straße` (id int);\n", encoding="utf-8")
    derived = derive([migration], "mysql")
    assert "\u202e" not in derived.text and "\\u202E" in derived.text
    assert "Straße" in derived.text  # readable names stay readable
    assert load_yaml(derived.text, "derived")["required"][0]["table_removed"] == name
