"""dump-check on real dumps: MySQL 8's world.sql, sakila's scripts and a fresh mariadb-dump of sakila."""

from __future__ import annotations

import gzip
import json
import random
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import MARIADB_URL, ROOT, dump_database, load_sql, scratch_mariadb_database, unavailable
from dbaudit.backups.checks import check_dump, load_dump_check, manifest_path, write_manifest
from dbaudit.backups.dumpfile import read_dump
from dbaudit.backups.sqlscan import SqlScanner, Statement
from dbaudit.live.inspect import take_snapshot

SAKILA_ROWS = {"payment": 16049, "rental": 16044, "film": 1000, "film_actor": 5462, "inventory": 4581,
               "customer": 599, "address": 603, "city": 600, "country": 109, "actor": 200}
WORLD_ROWS = {"city": 4079, "country": 239, "countrylanguage": 984}


def sakila_script(shared: Path) -> str:
    """Sakila's scripts name their database; load them into ours instead."""
    script = (shared / "sakila" / "sakila-mv-schema.sql").read_text(encoding="utf-8")
    script += (shared / "sakila" / "sakila-mv-data.sql").read_text(encoding="utf-8")
    script = re.sub(r"^(DROP SCHEMA IF EXISTS|CREATE SCHEMA|USE) sakila;\s*$", "", script, flags=re.M)
    return script.replace("sakila.", "")


@pytest.fixture(scope="module")
def sakila_dump(mariadb_server: sa.Engine, mariadb_client: str, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[tuple[str, Path]]:
    """sakila loaded into a scratch MariaDB database and dumped by MariaDB's own mysqldump."""
    from conftest import SHARED_DATA

    if not SHARED_DATA.is_dir():
        unavailable(f"{SHARED_DATA} is absent")
    with scratch_mariadb_database(mariadb_server, "sak") as name:
        load_sql(mariadb_client, name, sakila_script(SHARED_DATA))
        yield name, dump_database(name, tmp_path_factory.mktemp("sakila") / f"{name}.sql", "--events")


def test_world_dump_from_mysql_8_counts_every_row_and_reads_its_header(shared_data: Path) -> None:
    check = check_dump(shared_data / "world" / "world.sql")

    dump = check.dump
    assert check.verdict == "pass"
    assert {n: t.rows for n, t in dump.tables.items()} == WORLD_ROWS
    assert dump.header.tool == "MySQL dump 10.13" and dump.header.server_version == "8.0.19-debug"
    assert dump.header.completed_at == "2020-01-22  9:56:18"
    assert dump.header.settings["FOREIGN_KEY_CHECKS"] == "0" and dump.header.settings["NAMES"] == "utf8mb4"
    assert dump.databases == ["world"]
    assert [kind for _, _, kind in dump.unsafe_spans] == ["drop_database", "create_database", "use"]


def test_sakila_scripts_list_views_routines_and_triggers_and_count_extended_inserts(shared_data: Path) -> None:
    schema = read_dump(shared_data / "sakila" / "sakila-mv-schema.sql")
    data = read_dump(shared_data / "sakila" / "sakila-mv-data.sql")

    assert len(schema.tables) == 16 and len(schema.views) == 7
    assert {n: r.kind for n, r in schema.routines.items()} == {
        "rewards_report": "procedure", "get_customer_balance": "function", "film_in_stock": "procedure",
        "film_not_in_stock": "procedure", "inventory_held_by_customer": "function", "inventory_in_stock": "function"}
    assert set(schema.triggers) == {"ins_film", "upd_film", "del_film"}
    assert schema.triggers["upd_film"].summary == "AFTER UPDATE ON film"
    assert {n: data.tables[n].rows for n in SAKILA_ROWS} == SAKILA_ROWS
    assert "extended-insert" in data.header.features
    # Not mysqldump output: no trailer is expected, and every statement is terminated.
    assert schema.complete and data.complete and data.header.tool is None


def test_mariadb_dump_of_sakila_passes_with_binary_columns_and_matches_its_source(
    sakila_dump: tuple[str, Path]
) -> None:
    name, dump = sakila_dump
    source = take_snapshot(f"{MARIADB_URL}/{name}")

    check = check_dump(dump, against=source)

    assert check.verdict == "pass", [c.message for c in check.failed_checks]
    assert check.dump.header.tool.startswith("MariaDB dump")
    assert {n: check.dump.tables[n].rows for n in SAKILA_ROWS} == SAKILA_ROWS
    assert check.dump.tables["film_text"].rows == 1000  # filled by the ins_film trigger, dumped as data
    assert len(check.dump.views) == 7 and len(check.dump.routines) == 6 and len(check.dump.triggers) == 6
    assert "views" not in check.dump.tables and "customer_list" not in check.dump.tables


def test_dump_differing_from_the_source_snapshot_names_the_table_and_the_difference(
    sakila_dump: tuple[str, Path]
) -> None:
    name, dump = sakila_dump
    source = take_snapshot(f"{MARIADB_URL}/{name}")
    source.tables["payment"].row_count = 16050
    del source.tables["store"]

    check = check_dump(dump, against=source)

    assert check.verdict == "fail"
    assert {c.message for c in check.failed_checks} == {
        "payment: 16,050 rows in the snapshot, 16,049 in the dump (-1)",
        "table store is in the dump but not in the snapshot"}


def _cut(source: Path, size: int, target: Path) -> Path:
    with source.open("rb") as handle:
        target.write_bytes(handle.read(size))
    return target


@pytest.mark.parametrize("seed", [1, 2])
def test_a_dump_cut_at_random_byte_offsets_is_always_flagged_truncated(
    shared_data: Path, sakila_dump: tuple[str, Path], tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    for source in (shared_data / "world" / "world.sql", sakila_dump[1]):
        size = source.stat().st_size
        offsets = [rng.randrange(1, size) for _ in range(12)] + [size - 1, size - 2, size - 30]
        for offset in offsets:
            check = check_dump(_cut(source, offset, tmp_path / "cut.sql"))
            assert check.verdict == "fail" and not check.dump.complete, (source.name, offset)
            assert check.failed_checks[0].message.startswith("truncated: ")


def test_a_cut_gzip_dump_is_flagged_truncated_and_names_the_last_table(shared_data: Path, tmp_path: Path) -> None:
    packed = tmp_path / "world.sql.gz"
    packed.write_bytes(gzip.compress((shared_data / "world" / "world.sql").read_bytes()))
    assert check_dump(packed).verdict == "pass"

    check = check_dump(_cut(packed, packed.stat().st_size // 2, tmp_path / "half.sql.gz"))

    assert check.verdict == "fail"
    assert check.dump.truncation == "the gzip stream ends early"
    assert check.dump.last_table in WORLD_ROWS


def test_a_tampered_row_fails_the_checksum_and_the_manifest(shared_data: Path, tmp_path: Path) -> None:
    dump = tmp_path / "world.sql"
    shutil.copyfile(shared_data / "world" / "world.sql", dump)
    good = check_dump(dump, compute_md5=True)
    write_manifest(good)
    text = dump.read_bytes()
    dump.write_bytes(text.replace(b"(1,'Kabul','AFG','Kabol',1780000)", b"(1,'Kabul','AFG','Kabol',1780001)"))

    check = check_dump(dump, md5=good.dump.file.md5)

    assert check.verdict == "fail"
    failed = {(c.category, c.name) for c in check.failed_checks}
    assert failed == {("integrity", "md5 checksum"), ("manifest", "file")}
    assert check.manifest == str(manifest_path(dump))


def test_a_deleted_row_shows_as_a_row_count_difference_against_the_manifest(shared_data: Path, tmp_path: Path) -> None:
    dump = tmp_path / "world.sql"
    shutil.copyfile(shared_data / "world" / "world.sql", dump)
    write_manifest(check_dump(dump))
    dump.write_bytes(dump.read_bytes().replace(b"INSERT INTO `city` VALUES (7,'Haag','NLD','Zuid-Holland',440900);\n", b""))

    messages = [c.message for c in check_dump(dump).failed_checks]

    assert "city: 4,079 rows in the manifest, 4,078 in the dump (-1)" in messages


TRICKY = rb"""-- a comment with a quote ' and a ; semicolon
/*!40101 SET NAMES utf8mb4 */;
# hash comment (
CREATE TABLE `we``ird` (id int, s text, b blob);
INSERT INTO `we``ird` VALUES (1,'it\'s (a) test;',_binary 'a\0b\\'),(2,'two''quotes),(',0x28293B27),
(3,'multi
line;
string',NULL),(4,"double \" quoted (",'-- not a comment'),(5,'/* not a comment */',-1);
INSERT INTO `we``ird` (id, s) VALUES (6, 'columns listed' /* a ( comment */), (7, 'x');
DELIMITER ;;
/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER `t1` BEFORE INSERT ON `we``ird` FOR EACH ROW BEGIN
  SET NEW.s = CONCAT(NEW.s, ';(');
END */;;
DELIMITER ;
-- Dump completed on 2026-01-01 10:00:00
"""


def _scan(data: bytes, chunk: int) -> list[Statement]:
    found: list[Statement] = []
    scanner = SqlScanner(found.append)
    for i in range(0, len(data), chunk):
        scanner.feed(data[i : i + chunk])
    assert scanner.finish().problem is None
    return found


def test_quotes_escapes_comments_and_delimiters_split_statements_the_same_at_any_chunk_size() -> None:
    whole = _scan(TRICKY, len(TRICKY))

    assert [s.tuples for s in whole] == [0, 0, 5, 2, 0]
    assert whole[3].head.startswith("INSERT INTO `we``ird` (id, s) VALUES")
    for chunk in (1, 2, 3, 5, 7, 64):
        assert _scan(TRICKY, chunk) == whole, chunk


def test_tricky_dump_counts_rows_of_a_table_whose_name_holds_a_backtick(tmp_path: Path) -> None:
    dump = tmp_path / "tricky.sql"
    dump.write_bytes(TRICKY)

    contents = read_dump(dump)

    assert {n: t.rows for n, t in contents.tables.items()} == {"we`ird": 7}
    assert contents.triggers["t1"].table == "we`ird"
    assert contents.complete


def _dbaudit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ROOT / ".venv" / "bin" / "dbaudit"), *args], capture_output=True, text=True)


def test_cli_dump_check_exits_0_1_2_and_writes_result_and_manifest(shared_data: Path, tmp_path: Path) -> None:
    dump = tmp_path / "world.sql"
    shutil.copyfile(shared_data / "world" / "world.sql", dump)

    ok = _dbaudit("dump-check", str(dump), "--write-manifest", "--json", str(tmp_path / "ok.json"))
    cut = _dbaudit("dump-check", str(_cut(dump, 1000, tmp_path / "cut.sql")))
    missing = _dbaudit("dump-check", str(tmp_path / "nope.sql"))
    bad_digest = _dbaudit("dump-check", str(dump), "--md5", "abc")

    assert (ok.returncode, cut.returncode, missing.returncode, bad_digest.returncode) == (0, 1, 2, 2)
    assert manifest_path(dump).is_file() and load_dump_check(tmp_path / "ok.json").verdict == "pass"
    assert "truncated" in cut.stdout and "Traceback" not in missing.stderr + bad_digest.stderr
    assert missing.stderr.count("\n") == 1 and bad_digest.stderr.startswith("dbaudit: error: --md5")


CLIENT_COMMANDS = b"""CREATE TABLE t (id int primary key); INSERT INTO t VALUES (1);
\\! touch /tmp/x_pwned
system touch /tmp/y_pwned
SOURCE /etc/passwd.sql
INSERT INTO t VALUES ('a\\\\b'), (2);
\\u other_db
CREATE TABLE landed (id int);
connect other_db 127.0.0.1
/*M!999999\\- enable the sandbox mode */
INSERT INTO t VALUES (3) \\g
"""


def _commands(data: bytes, chunk: int) -> tuple[list[str], list[Statement]]:
    found: list[Statement] = []
    commands: list[str] = []
    scanner = SqlScanner(found.append, on_client_command=lambda text, offset: commands.append(text))
    for i in range(0, len(data), chunk):
        scanner.feed(data[i : i + chunk])
    scanner.finish()
    return commands, found


def test_client_commands_are_reported_and_kept_out_of_statements_at_any_chunk_size() -> None:
    commands, statements = _commands(CLIENT_COMMANDS, len(CLIENT_COMMANDS))

    assert commands == ["\\! touch /tmp/x_pwned", "system touch /tmp/y_pwned", "SOURCE /etc/passwd.sql",
                        "\\u other_db", "connect other_db 127.0.0.1", "\\g"]
    assert [s.head for s in statements][:4] == ["CREATE TABLE t (id int primary key)", "INSERT INTO t VALUES (1)",
                                                "INSERT INTO t VALUES ('a\\\\b'), (2)", "CREATE TABLE landed (id int)"]
    for chunk in (1, 2, 3, 5, 7, 64):
        assert _commands(CLIENT_COMMANDS, chunk) == (commands, statements), chunk


def test_dump_check_fails_a_dump_with_client_commands_or_account_statements_naming_them(tmp_path: Path) -> None:
    dump = tmp_path / "evil.sql"
    dump.write_text("CREATE TABLE t (id int primary key); INSERT INTO t VALUES (1);\n\\! touch /tmp/x_pwned\n"
                    "system touch /tmp/y_pwned\nCREATE USER IF NOT EXISTS 'evil'@'%' IDENTIFIED BY 'x';\n"
                    "GRANT ALL ON *.* TO 'evil'@'%';\n\\u other_db\nCREATE TABLE landed (id int);\n")

    check = check_dump(dump)

    assert check.verdict == "fail"
    [safety] = [c for c in check.failed_checks if c.name == "restore safety"]
    assert safety.message == ("not a plain backup, holds client command(s) \\! touch /tmp/x_pwned; "
                              "system touch /tmp/y_pwned; \\u other_db; CREATE USER statement(s); GRANT statement(s)")


def test_cli_dump_check_write_manifest_on_a_failing_dump_exits_1_and_still_writes_json(
    shared_data: Path, tmp_path: Path
) -> None:
    cut = _cut(shared_data / "world" / "world.sql", 1000, tmp_path / "cut.sql")

    run = _dbaudit("dump-check", str(cut), "--write-manifest", "--json", str(tmp_path / "r.json"))

    assert run.returncode == 1, run.stdout + run.stderr
    assert "manifest not written: the dump did not pass" in run.stdout and run.stderr == ""
    assert load_dump_check(tmp_path / "r.json").verdict == "fail" and not manifest_path(cut).exists()


def test_cli_dump_check_report_shows_the_check_it_made_instead_of_reading_the_dump_again(
    shared_data: Path, tmp_path: Path
) -> None:
    dump = tmp_path / "world.sql"
    shutil.copyfile(shared_data / "world" / "world.sql", dump)

    run = _dbaudit("dump-check", str(dump), "--report", "--out-dir", str(tmp_path / "reports"),
                   "--json", str(tmp_path / "r.json"))

    assert run.returncode == 0, run.stdout + run.stderr
    [folder] = [p for p in (tmp_path / "reports").iterdir() if p.is_dir()]
    # Another read would have its own generated_at and duration; the report holds the CLI's very check.
    assert json.loads((folder / "result.json").read_text()) == json.loads((tmp_path / "r.json").read_text())
    assert (folder / "dump-check.json").is_file()


def test_statements_acting_on_accounts_plugins_replication_or_the_server_are_refused_by_kind(tmp_path: Path) -> None:
    statements = [
        "CREATE USER 'a'@'%'", "CREATE OR REPLACE USER a", "ALTER USER root IDENTIFIED BY 'x'", "DROP USER a",
        "RENAME USER a TO b", "GRANT ALL ON *.* TO a", "REVOKE ALL ON *.* FROM a", "SET PASSWORD = PASSWORD('x')",
        "/*!80000 SET PERSIST max_connections = 7 */", "INSTALL PLUGIN x SONAME 'x.so'", "INSTALL SONAME 'x'",
        "UNINSTALL PLUGIN x", "UNINSTALL SONAME 'x'", "FLUSH PRIVILEGES", "KILL 1", "SHUTDOWN",
        "CREATE SERVER s FOREIGN DATA WRAPPER mysql OPTIONS (HOST 'evil')", "CHANGE MASTER TO MASTER_HOST='evil'",
        "CHANGE REPLICATION SOURCE TO SOURCE_HOST='evil'", "LOAD DATA INFILE '/etc/passwd' INTO TABLE t",
        "SELECT * FROM t INTO OUTFILE '/tmp/t'", "PREPARE s FROM @q", "EXECUTE s", "CALL p()",
    ]
    dump = tmp_path / "server.sql"
    dump.write_text("CREATE TABLE t (id int);\n" + "".join(f"{s};\n" for s in statements))

    refused = read_dump(dump).refused_statements

    assert refused == ["CREATE USER", "CREATE OR REPLACE USER", "ALTER USER", "DROP USER", "RENAME USER", "GRANT",
                       "REVOKE", "SET PASSWORD", "SET PERSIST", "INSTALL PLUGIN", "INSTALL SONAME", "UNINSTALL PLUGIN",
                       "UNINSTALL SONAME", "FLUSH", "KILL", "SHUTDOWN", "CREATE SERVER", "CHANGE MASTER",
                       "CHANGE REPLICATION", "LOAD DATA", "SELECT … INTO OUTFILE", "PREPARE", "EXECUTE", "CALL"]


def test_world_dump_drops_and_recreates_its_own_database_as_a_warning_not_a_failure(shared_data: Path) -> None:
    check = check_dump(shared_data / "world" / "world.sql")

    [safety] = [c for c in check.checks if c.name == "restore safety"]
    assert safety.status == "pass" and "drops and recreates database world when loaded with mysql" in safety.message
    assert check.dump.own_database == "world" and check.dump.foreign_statements == []


@pytest.mark.parametrize("statement, named", [
    ("DROP DATABASE x;", "x"), ("/*!40000 DROP DATABASE IF EXISTS `x`*/;", "x"), ("CREATE DATABASE other;", "other"),
    ("USE other;", "other"), ("DROP TABLE other.t;", "other"), ("UPDATE other.t SET id = id + 100;", "other"),
    ("DELETE FROM `other`.t;", "other"), ("/*!40000 DROP TABLE other.t */;", "other"),
    ("RENAME TABLE other.t TO shop.t;", "other"), ("TRUNCATE TABLE `other`.`t`;", "other"),
    ("ALTER TABLE t RENAME TO other.t;", "other"), ("INSERT INTO other.t VALUES (1);", "other"),
    ("REPLACE INTO t SELECT * FROM other.t;", "other"), ("LOCK TABLES `other`.`t` WRITE;", "other"),
    ("CREATE TABLE other.t (id int);", "other"), ("UPDATE t AS a, other.t AS other SET other.id = 1;", "other"),
])
def test_dump_check_fails_statements_naming_another_database(statement: str, named: str, tmp_path: Path) -> None:
    dump = tmp_path / "shop.sql"
    dump.write_text("-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)\n"
                    "-- Host: 127.0.0.1    Database: shop\n"
                    "CREATE TABLE t (id int);\nINSERT INTO t VALUES (1),('other.t');\n"
                    f"{statement}\n-- Dump completed on 2026-01-01 10:00:00\n")

    check = check_dump(dump)

    [safety] = [c for c in check.checks if c.name == "restore safety"]
    assert safety.status == "fail" and f"other database(s) {named} besides its own (shop)" in safety.message, \
        safety.message


@pytest.mark.parametrize("statement", ["UPDATE t AS a SET a.id = 1;", "UPDATE t SET t.id = 2 WHERE t.id = 1;",
                                       "USE shop;", "CREATE TABLE shop.u (id int);",
                                       "INSERT INTO t VALUES ('other.t'), (\"x.y\");"])
def test_column_qualifiers_strings_and_the_own_database_are_no_other_database(statement: str, tmp_path: Path) -> None:
    dump = tmp_path / "shop.sql"
    dump.write_text(f"-- Host: 127.0.0.1    Database: shop\nCREATE TABLE t (id int);\n{statement}\n")

    check = check_dump(dump)

    assert check.passed and check.dump.foreign_statements == [], [c.message for c in check.failed_checks]


def test_mariadb_dump_of_sakila_restores_as_the_temporary_account_with_its_definers_stripped(
    sakila_dump: tuple[str, Path], mariadb_server: sa.Engine
) -> None:
    from dbaudit.backups.restore import restore_check

    source, dump = sakila_dump
    assert b"DEFINER=`root`" in dump.read_bytes() and read_dump(dump).definer_spans
    scratch = f"dbaudit_t_rst_{uuid.uuid4().hex[:8]}"
    try:
        result = restore_check(dump, f"{MARIADB_URL}/{source}", scratch=scratch,
                               against=take_snapshot(f"{MARIADB_URL}/{source}"))

        assert result.verdict == "pass", [c.message for c in result.failed_checks]
        restored = result.restored
        assert restored is not None and len(restored.views) == 7 and restored.triggers and restored.routines
    finally:
        with mariadb_server.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{scratch}`")
