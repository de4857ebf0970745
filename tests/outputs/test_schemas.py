"""The JSON Schemas of compare, dump-check, restore-check and rollback documents are generated from their
dataclasses (outputs/schemagen.py): the committed files must be what the generator writes, and real
documents of each kind, made against real databases and dumps, must validate."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import sqlalchemy as sa

from conftest import MARIADB_URL
from dbaudit.core import serde
from dbaudit.demo import EXPECTATIONS, build_database
from dbaudit.outputs import schemagen


@pytest.mark.parametrize("name", sorted(schemagen.GENERATED))
def test_the_committed_schema_is_the_generated_one(name: str) -> None:
    committed = (schemagen.SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8")
    assert committed == schemagen.text(name), "run `python -m dbaudit.outputs.schemagen` and commit the result"


def _valid(name: str, document: Any) -> dict[str, Any]:
    schema = json.loads((schemagen.SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    data = json.loads(serde.dumps(document))
    jsonschema.validate(data, schema)
    return data


def _rejects(name: str, data: dict[str, Any]) -> None:
    schema = json.loads((schemagen.SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, schema)


def test_a_real_compare_result_validates_and_a_broken_one_does_not(tmp_path: Path) -> None:
    from dbaudit.live.compare import compare

    a = build_database(tmp_path / "a.sqlite")
    b = build_database(tmp_path / "b.sqlite", "faulty")
    data = _valid("compare", compare(f"sqlite:///{a}", f"sqlite:///{b}"))
    _rejects("compare", {**data, "tables": [{**data["tables"][0], "rows_a": "many"}]})
    _rejects("compare", {**data, "extra": 1})


def test_a_real_dump_check_validates_and_a_broken_one_does_not(shared_data: Path) -> None:
    from dbaudit.backups.checks import check_dump

    data = _valid("dump-check", check_dump(shared_data / "world" / "world.sql"))
    _rejects("dump-check", {**data, "kind": "dbaudit.result"})


def test_a_real_rollback_result_validates(tmp_path: Path) -> None:
    from dbaudit.live.rollback import evaluate_triggers

    db = build_database(tmp_path / "db.sqlite", "webjs")
    data = _valid("rollback", evaluate_triggers(f"sqlite:///{db}", EXPECTATIONS))
    _rejects("rollback", {k: v for k, v in data.items() if k != "checks"})


def test_a_real_restore_check_validates(tmp_path: Path, mariadb_server: sa.Engine) -> None:
    from dbaudit.backups.restore import restore_check

    dump = tmp_path / "small.sql"
    dump.write_text("-- MariaDB dump 10.19  Distrib 10.11.6-MariaDB, for debian-linux-gnu (x86_64)\n--\n"
                    "-- Host: localhost    Database: shop\n\nCREATE TABLE `t` (`id` int NOT NULL, PRIMARY KEY (`id`));\n"
                    "INSERT INTO `t` VALUES (1),(2);\n-- Dump completed on 2026-12-01 10:00:00\n", encoding="utf-8")
    result = restore_check(dump, MARIADB_URL, scratch=f"dbaudit_t_schema_{uuid.uuid4().hex[:8]}")
    data = _valid("restore-check", result)
    _rejects("restore-check", {**data, "restore_seconds": "slow"})
