"""Runs of one-row INSERTs (`mysqldump --skip-extended-insert`): read at once by SqlScanner._row_run and classified
once per run by Collector, against the reference (byte-by-byte scanner, every statement classified on its own).

Whatever comes between two otherwise identical INSERTs (USE, SET sql_mode, SET NAMES, a DELIMITER block, a client
command, comments, an INSERT into another database, REPLACE, INSERT … SELECT, ON DUPLICATE KEY UPDATE, a row naming
another database in its values) must be seen exactly as the reference sees it: every statement yielded, its
classification and refusal, and the dump's contents, at any chunk size.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import Any

import pytest

from dbaudit.backups import statements as classification
from dbaudit.backups.dumpfile import DumpScan
from dbaudit.backups.sqlscan import SqlScanner, Statement

HEADER = "-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)\n--\n-- Host: localhost    Database: own\n"
TRAILER = "-- Dump completed on 2026-12-01 10:00:00\n"


def _scan(path: Path, chunk: int, fast: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, ...]:
    """Every statement DumpScan yields, its refusals and the dump's contents (without the time it took)."""
    with monkeypatch.context() as patch:
        if not fast:
            patch.setattr(SqlScanner, "_tuples_fast", lambda self, buf, i, n, first=False: i)
            patch.setattr(SqlScanner, "_row_run", lambda self, buf, i, n: None)
            patch.setattr(classification, "_same_run", lambda st, prefix: False)
        scan = DumpScan(path, keep_text=True, chunk=chunk)
        statements = list(scan)
        contents = dataclasses.asdict(scan.contents())
    contents.pop("duration_seconds")
    return statements, scan.refusals, contents


def _rows_read_at_once(path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """How many statements SqlScanner._row_run built (the rest the scanner read event by event)."""
    found: list[Statement] = []
    read = [0]
    row_run = SqlScanner._row_run

    def counted(self: SqlScanner, buf: bytes, i: int, n: int) -> int | None:
        before = len(found)
        end = row_run(self, buf, i, n)
        read[0] += len(found) - before
        return end

    with monkeypatch.context() as patch:
        patch.setattr(SqlScanner, "_row_run", counted)
        scanner = SqlScanner(found.append)
        scanner.feed(path.read_bytes())
        scanner.finish()
    return read[0]


def _same_as_reference(path: Path, monkeypatch: pytest.MonkeyPatch, chunks: tuple[int, ...] = ()) -> tuple[Any, ...]:
    reference = _scan(path, 1 << 20, False, monkeypatch)
    for chunk in (1 << 20, 4096, 97, *chunks):
        assert _scan(path, chunk, True, monkeypatch) == reference, chunk
    return reference


def _dump(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "rows.sql"
    path.write_text(HEADER + "CREATE TABLE `t` (id int, a text);\n" + body + TRAILER, encoding="utf-8")
    return path


ROW = "INSERT INTO `t` VALUES ({n},'a {n}');\n"


def _rows(start: int, count: int, row: str = ROW) -> str:
    return "".join(row.format(n=n) for n in range(start, start + count))


def test_a_plain_run_of_rows_is_read_at_once_and_counted_as_the_reference_counts_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _dump(tmp_path, _rows(1, 500))

    statements, refusals, contents = _same_as_reference(path, monkeypatch)

    assert contents["tables"]["t"]["rows"] == contents["tables"]["t"]["inserts"] == 500
    assert refusals == [] and [st.kind for st in statements].count("insert") == 500
    assert _rows_read_at_once(path, monkeypatch) >= 499  # every row after the first


def test_use_between_two_identical_inserts_moves_the_second_to_that_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _dump(tmp_path, _rows(1, 3) + "USE other_db;\n" + _rows(4, 3) + "USE own;\n" + _rows(7, 2))

    statements, refusals, contents = _same_as_reference(path, monkeypatch)

    assert {name: t["rows"] for name, t in contents["tables"].items()} == {"t": 3, "other_db.t": 3, "own.t": 2}
    assert any("other_db" in r for r in refusals)


def test_sql_mode_set_between_two_identical_inserts_changes_how_the_second_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Under NO_BACKSLASH_ESCAPES a backslash is a plain byte, which the head spells doubled (as the default mode
    # would write it) and the tuple list is read without escapes.
    row = "INSERT INTO `t` VALUES (1,'a\\\\b'),(2,'c''d');\n"
    path = _dump(tmp_path, row * 3 + "/*!40101 SET SQL_MODE='NO_BACKSLASH_ESCAPES' */;\n" + row * 3
                 + "SET sql_mode='';\n" + row * 2)

    statements, _, contents = _same_as_reference(path, monkeypatch)

    inserts = [st for st in statements if st.kind == "insert"]
    assert [st.no_backslash_escapes for st in inserts] == [False] * 3 + [True] * 3 + [False] * 2
    assert len({st.head for st in inserts}) == 2 and inserts[3].head == inserts[0].head.replace("\\", "\\\\")
    assert [st.rows for st in inserts] == [2] * 8 and contents["tables"]["t"]["rows"] == 16


def test_ansi_quotes_set_between_two_identical_inserts_is_the_second_ones_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _dump(tmp_path, _rows(1, 2) + "SET sql_mode='ANSI_QUOTES';\n" + _rows(3, 2))

    statements, _, _ = _same_as_reference(path, monkeypatch)

    inserts = [st for st in statements if st.kind == "insert"]
    assert [(st.sql_mode, st.ansi_quotes) for st in inserts] == [(None, False)] * 2 + [("ANSI_QUOTES", True)] * 2


def test_set_names_between_two_identical_inserts_is_seen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _dump(tmp_path, _rows(1, 2) + "/*!40101 SET NAMES gbk */;\n" + _rows(3, 2)
                 + "/*!40101 SET NAMES utf8mb4 */;\n" + _rows(5, 2))

    _, refusals, contents = _same_as_reference(path, monkeypatch)

    assert any("gbk" in r for r in refusals)
    assert contents["tables"]["t"]["rows"] == 6


@pytest.mark.parametrize("between, named", [
    ("INSERT INTO other_db.t VALUES (9,'a 9');\n", "other_db"),
    ("INSERT INTO `t` VALUES (9,other_db.t.a);\n", "other_db"),  # the same head: only the row names the database
    ("INSERT INTO `t` VALUES (9, other_db . f);\n", "other_db"),
    ("INSERT INTO `t` SELECT * FROM other_db.t;\n", "other_db"),
    ("INSERT INTO `t` VALUES (9,'a') ON DUPLICATE KEY UPDATE a = other_db.t.a;\n", "other_db"),
    ("REPLACE INTO `t` VALUES (9,'a 9');\n", None),
    ("INSERT IGNORE INTO `t` VALUES (9,'a 9');\n", None),
    ("INSERT INTO `t` (id, a) VALUES (9,'a 9');\n", None),
    ("INSERT INTO `t` VALUES (9,'other_db.t');\n", None),  # in a string: no name
    ("INSERT INTO `t` VALUES (9,1.5e3);\n", None),
])
def test_an_insert_between_identical_rows_is_classified_on_its_own(
    between: str, named: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _dump(tmp_path, _rows(1, 3) + between + _rows(4, 3))

    statements, refusals, contents = _same_as_reference(path, monkeypatch)

    assert len(statements) == 8
    if named:
        assert statements[4].refusal is not None and named in statements[4].refusal
        assert [st.refusal for st in statements[5:]] == [None] * 3  # the rows after it are clean again
        assert named in contents["qualified_databases"]
    else:
        assert refusals == []
    features = set(contents["header"]["features"])
    assert ("complete-insert" in features) == ("(id, a)" in between)


@pytest.mark.parametrize("between", [
    "-- a comment\n", "/* a comment */\n", "-- '\n", "--'\n", "\\! ls\n", "DELIMITER ;;\nSELECT 1;;\nDELIMITER ;\n",
    "/*!40000 ALTER TABLE `t` DISABLE KEYS */;\n", "SET @v = 1;\n", "INSERT INTO `t` VALUES (9,@v);\n",
    "/*!50700 SET sql_mode='ANSI_QUOTES' */;\n", "INSERT INTO `t` VALUES (9,'a')/* x */;\n",
    "INSERT INTO `t` VALUES (9,'a'),(10,'b');\n", "INSERT INTO `t` VALUES (9,'a');INSERT INTO `t` VALUES (10,'b');\n",
    "INSERT INTO /*!40000 `t` */ VALUES (9,'a');\n", "insert into `t` values (9,'a');\n",
])
def test_anything_between_identical_rows_reads_as_the_reference_reads_it(
    between: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _dump(tmp_path, _rows(1, 3) + between + _rows(4, 3))

    _same_as_reference(path, monkeypatch, (1, 13))


# Random dumps: runs of rows under random heads, with random statements between them.
_HEADS = ["INSERT INTO `t` VALUES ", "INSERT INTO t VALUES", "REPLACE INTO `t` VALUES ", "INSERT IGNORE INTO `t` VALUES ",
          "INSERT INTO `t` (`id`, `a`) VALUES ", "INSERT INTO other_db.`t` VALUES ", "INSERT  INTO\t`t`\nVALUES ",
          "INSERT INTO `t2` VALUES ", "INSERT INTO `caf\u00e9` VALUES ", "INSERT INTO `t``q` VALUES "]
_VALUES = ["NULL", "-1.5e-3", "7", "0x2829", "'it\\'s'", "'\\\\'", "''", "'a''b'", "'),('", "';\\nINSERT'", "'x.y'",
           "other_db.t.a", "t.a", "caf\u00e9.x", "1e5.x", "_binary 'b'", "'--'", "'/*'", "'caf\u00e9'", "X'41'"]
_BETWEEN = ["USE other_db;\n", "USE own;\n", "SET sql_mode='NO_BACKSLASH_ESCAPES';\n", "SET sql_mode='ANSI_QUOTES';\n",
            "SET sql_mode='';\n", "/*!40101 SET NAMES utf8mb4 */;\n", "/*!40101 SET NAMES gbk */;\n", "SET @v=1;\n",
            "-- comment\n", "/* c */ ", "-- '\n", "\\! ls\n", "CREATE TABLE `t2` (id int, a text);\n",
            "CREATE DATABASE own;\n", "LOCK TABLES `t` WRITE;\n", "UNLOCK TABLES;\n", "DELIMITER ;;\nSELECT 1;;\nDELIMITER ;\n",
            "INSERT INTO `t` SELECT * FROM other_db.t;\n", "INSERT INTO `t` VALUES (0,'a') ON DUPLICATE KEY UPDATE a=1;\n",
            "/*!50700 SET sql_mode='ANSI_QUOTES' */;\n", "\n\n"]


def _random_dump(seed: int) -> str:
    rng = random.Random(seed)
    parts = []
    for _ in range(rng.randrange(1, 12)):
        head = rng.choice(_HEADS)
        for n in range(rng.randrange(1, 40)):
            values = [str(n)] + [rng.choice(_VALUES) for _ in range(rng.randrange(1, 3))]
            tuples = "(" + ",".join(values) + ")"
            if rng.random() < 0.05:
                tuples += ",(" + ",".join(values) + ")"
            parts.append(f"{head}{tuples};" + ("\n" if rng.random() < 0.95 else ""))
            if rng.random() < 0.03:
                parts.append(rng.choice(_BETWEEN))
        parts.append(rng.choice(_BETWEEN))
    return "".join(parts)


@pytest.mark.parametrize("seed", range(60))
def test_random_runs_of_rows_read_and_classify_as_the_reference_at_any_chunk_size(
    seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _dump(tmp_path, _random_dump(seed))

    _same_as_reference(path, monkeypatch, (random.Random(seed).randrange(1, 300),))


def test_a_real_skip_extended_insert_dump_of_world_reads_as_the_reference_and_counts_every_row(
    shared_data: Path, mariadb_server: Any, mariadb_client: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import re

    from test_dumpfile import WORLD_ROWS

    from conftest import dump_database, load_sql, scratch_mariadb_database

    script = (shared_data / "world" / "world.sql").read_text(encoding="utf-8")
    script = re.sub(r"^(CREATE DATABASE|USE) `world`.*$", "", script, flags=re.M)  # into the scratch database
    with scratch_mariadb_database(mariadb_server, "wrr") as name:
        load_sql(mariadb_client, name, script)
        path = dump_database(name, tmp_path / "world-rows.sql", "--skip-extended-insert")

    statements, refusals, contents = _same_as_reference(path, monkeypatch)

    assert {n: t["rows"] for n, t in contents["tables"].items()} == WORLD_ROWS
    assert {n: t["inserts"] for n, t in contents["tables"].items()} == WORLD_ROWS  # one row per INSERT
    assert refusals == [] and contents["complete"]
    assert _rows_read_at_once(path, monkeypatch) > 0.99 * sum(WORLD_ROWS.values())


def test_the_cheap_name_test_never_misses_a_qualified_name_the_exact_one_finds() -> None:
    from dbaudit.backups.statements import _QUALIFIED, _may_qualify

    rng = random.Random(11)
    atoms = ["a", "Z", "_", "$", "`", "``", "1", "9", "0", ".", " ", "\u00a0", "\t", "\u00e9", "\u0663", "'", "(", ",",
             "-", "e", "x1", "1e5", "NULL", "db", "`d b`", "\u2014"]
    found = 0
    for _ in range(30000):
        text = "".join(rng.choice(atoms) for _ in range(rng.randrange(1, 10)))
        if _QUALIFIED.search(text):
            found += 1
            assert _may_qualify(text), text
    assert found > 200
    assert not _may_qualify("(1,'x',1234567.89,-0.5,.5, 7 . 2)") and _may_qualify("(1,a1.b)")
