"""A held-out rehearsal on real application schemas (../shared/data: sakila, employees, world), run the way an
application team would: the database dumped with mariadb-dump (with and without routines and triggers,
extended and single-row INSERTs, gzip and zstd), a Laravel-style `artisan migrate` script that reads DB_* from its
environment and sends DDL through PyMySQL, SQL migration files, and expectations as YAML or as the migration itself.

Every correct rollback passes; every wrong one fails naming what it left wrong; nothing (scratch database,
reference restore, temporary account) is left on the server after any of them."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest
import sqlalchemy as sa

from conftest import (
    MARIADB_URL,
    ROOT,
    SHARED_DATA,
    client_args,
    dump_database,
    load_sql,
    scratch_mariadb_database,
    unavailable,
)
from dbaudit.backups import rehearse_scratch, restore_account
from dbaudit.backups.checks import check_dump
from dbaudit.backups.rehearse import Rehearsal, rehearse
from dbaudit.cli import main
from dbaudit.core import serde

SCHEMAS = ROOT / "lib" / "dbaudit" / "schemas"
LEDGER = "2026_12_01_000001_add_customer_loyalty"

# --- the application: sakila with a Laravel ledger, and a migration written as `php artisan migrate` would run it --

# What `php artisan migrate` does, in Python: DB_* from the environment, each statement through PyMySQL as the
# account it was handed. `rollback MISTAKE` plays the down migration a team could get wrong; `migrate --pretend`
# prints the SQL (as Laravel's does), which serves as the migration file for --expect and --migrate.
ARTISAN = r'''
import json, os, sys
import pymysql

ORIGINALS = json.load(open(os.environ["SAKILA_ORIGINALS"], encoding="utf-8"))
UP = [
    "ALTER TABLE customer ADD COLUMN loyalty_tier enum('bronze','silver','gold') NULL AFTER active, "
    "ADD INDEX idx_customer_loyalty (store_id, loyalty_tier)",
    "CREATE TABLE loyalty_event (id int unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY, "
    "customer_id smallint unsigned NOT NULL, points int NOT NULL DEFAULT 0, "
    "created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP, CONSTRAINT fk_loyalty_event_customer "
    "FOREIGN KEY (customer_id) REFERENCES customer (customer_id) ON DELETE CASCADE) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    "ALTER TABLE payment DROP FOREIGN KEY fk_payment_rental",
    "ALTER TABLE payment ADD CONSTRAINT fk_payment_rental FOREIGN KEY (rental_id) REFERENCES rental (rental_id) "
    "ON DELETE CASCADE ON UPDATE CASCADE",
    "CREATE INDEX idx_rental_customer_date ON rental (customer_id, rental_date)",
    "ALTER TABLE staff RENAME COLUMN username TO login",
    "DROP TRIGGER customer_create_date",
    "CREATE TRIGGER customer_create_date BEFORE INSERT ON customer FOR EACH ROW "
    "BEGIN SET NEW.create_date = NOW(); SET NEW.loyalty_tier = COALESCE(NEW.loyalty_tier, 'bronze'); END",
    "CREATE VIEW customer_loyalty AS SELECT customer_id, loyalty_tier FROM customer",
    "CREATE OR REPLACE VIEW staff_list AS SELECT s.staff_id AS ID, CONCAT(s.first_name, ' ', s.last_name) AS name, "
    "s.login AS login, s.store_id AS SID FROM staff s",
    "DROP VIEW sales_by_store",
    # A backfill that keeps last_update (ON UPDATE CURRENT_TIMESTAMP), so that a rollback can bring the rows back.
    "UPDATE customer SET loyalty_tier = 'gold', last_update = last_update WHERE customer_id <= 10",
    "INSERT INTO loyalty_event (customer_id, points) SELECT customer_id, 100 FROM customer WHERE customer_id <= 10",
    # Through the restored trigger customer_create_date's replacement and the restored function inventory_in_stock:
    # both run as their definer.
    "INSERT INTO customer (store_id, first_name, last_name, email, address_id, active) "
    "VALUES (1, 'LOYAL', 'TESTER', 'loyal@example.com', 1, inventory_in_stock(1))",
    "DELETE FROM customer WHERE email = 'loyal@example.com'",
    "DROP PROCEDURE rewards_report",
    "CREATE FUNCTION loyalty_points(p_customer smallint unsigned) RETURNS int READS SQL DATA "
    "RETURN (SELECT COALESCE(SUM(points), 0) FROM loyalty_event WHERE customer_id = p_customer)",
    f"INSERT INTO migrations (migration, batch) VALUES ('{LEDGER}', 2)",
]


def down(mistake):
    steps = {
        "ledger": f"DELETE FROM migrations WHERE migration = '{LEDGER}'",
        "function": "DROP FUNCTION loyalty_points",
        "routine": ORIGINALS["rewards_report"],
        "sales_view": ORIGINALS["sales_by_store"],
        "rename": "ALTER TABLE staff RENAME COLUMN login TO username",
        "staff_view": ORIGINALS["staff_list"].replace("CREATE VIEW", "CREATE OR REPLACE VIEW", 1),
        "loyalty_view": "DROP VIEW customer_loyalty",
        "trigger_drop": "DROP TRIGGER customer_create_date",
        "trigger": "CREATE TRIGGER customer_create_date BEFORE INSERT ON customer FOR EACH ROW SET NEW.create_date = NOW()",
        "index": "DROP INDEX idx_rental_customer_date ON rental",
        "fk_drop": "ALTER TABLE payment DROP FOREIGN KEY fk_payment_rental",
        "fk": "ALTER TABLE payment ADD CONSTRAINT fk_payment_rental FOREIGN KEY (rental_id) REFERENCES rental (rental_id) "
              "ON DELETE SET NULL ON UPDATE CASCADE",
        "table": "DROP TABLE loyalty_event",
        "column": "ALTER TABLE customer DROP INDEX idx_customer_loyalty, DROP COLUMN loyalty_tier",
    }
    forgets = {"forgets-index": "index", "forgets-trigger": "trigger", "forgets-view": "sales_view",
               "forgets-routine": "routine", "leaves-ledger": "ledger"}
    for each in mistake.split(","):
        if each in forgets:
            del steps[forgets[each]]
        elif each == "forgets-column":
            steps["column"] = "ALTER TABLE customer DROP INDEX idx_customer_loyalty"
        elif each == "changes-routine":  # restored from an older copy of its source
            steps["routine"] = steps["routine"].replace("min_monthly_purchases = 0", "min_monthly_purchases < 1")
        elif each == "forgets-fk":
            del steps["fk_drop"], steps["fk"]
        elif each == "changes-view":
            steps["staff_view"] = steps["staff_view"].replace("a.phone AS phone,", "")
        elif each == "loses-rows":
            steps["rows"] = "DELETE FROM payment WHERE customer_id = 5"
        elif each == "changes-values":  # the rename undone by a drop and an add: the usernames are gone
            steps["rename"] = ("ALTER TABLE staff DROP COLUMN login, "
                               "ADD COLUMN username varchar(16) NOT NULL DEFAULT '' AFTER active")
    return list(steps.values())


def main():
    what, option = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "")
    statements = UP if what == "migrate" else down(option)
    if option == "--pretend":
        for sql in (UP if what == "migrate" else down("")):
            print(f"DELIMITER //\n{sql} //\nDELIMITER ;" if "BEGIN" in sql else f"{sql};")
        return 0
    if option == "fails-halfway":
        statements = UP[:5] + ["CREATE INDEX idx_broken ON rental (no_such_column)"] + UP[5:]
    conn = pymysql.connect(host=os.environ["DB_HOST"], port=int(os.environ["DB_PORT"]),
                           user=os.environ["DB_USERNAME"], password=os.environ["DB_PASSWORD"],
                           database=os.environ["DB_DATABASE"], autocommit=True)
    with conn.cursor() as cur:
        for i, sql in enumerate(statements, 1):
            print(f"  {what} [{i}/{len(statements)}] {sql.splitlines()[0][:60]}", flush=True)
            try:
                cur.execute(sql)
            except pymysql.Error as exc:
                print(f"SQLSTATE error: {exc}", file=sys.stderr)
                return 1
    print(f"{what}: done")
    return 0


sys.exit(main())
'''.replace("{LEDGER}", LEDGER)

# The same plan, as its expectations would be written by hand.
LOYALTY_YML = """\
format_version: 1
name: sakila-loyalty
description: customers get a loyalty tier and a points ledger; staff.username becomes login; rewards_report retires.
metrics:
  customers:
    sql: SELECT COUNT(*) FROM customer
    expect: equal
  listed_customers:        # a restored SQL SECURITY DEFINER view: it reads as its definer
    sql: SELECT COUNT(*) FROM customer_list
    expect: equal
  balance_of_customer_1:   # a restored function
    sql: SELECT get_customer_balance(1, '2006-01-01')
    expect: equal
required:
  - table_added: loyalty_event
  - column_added: customer.loyalty_tier
    nullable: true
  - index_added: customer.idx_customer_loyalty
  - index_added: rental.idx_rental_customer_date
  - column_added: staff.login
  - column_removed: staff.username
  - view_added: customer_loyalty
  - view_removed: sales_by_store
  - routine_added: loyalty_points
  - routine_removed: rewards_report
allowed:
  - fk_changed: payment.fk_payment_rental
  - trigger_changed: customer_create_date
  - view_changed: staff_list
  - content_changed: staff
rows:
  default: no_shrink
  any: [migrations]
"""


@dataclass
class App:
    """The application's migration, in each form a team has it."""

    artisan: Path
    env: dict[str, str]  # what the script needs besides DB_*
    up_sql: Path  # `artisan migrate --pretend`
    down_sql: Path
    yml: Path

    def cmd(self, what: str, option: str = "") -> str:
        return f"{sys.executable} {self.artisan} {what} {option}".rstrip()


def _unavailable_without_shared_data() -> None:
    if not SHARED_DATA.is_dir():
        unavailable(f"the shared sample data folder {SHARED_DATA} is absent")


def _dump(database: str, target: Path, *options: str, routines: bool = True) -> Path:
    """mariadb-dump as a backup job runs it; `routines=False`: --skip-triggers and no --routines/--events."""
    dumper = shutil.which("mariadb-dump") or shutil.which("mysqldump")
    if dumper is None:
        unavailable("mariadb-dump is not installed")
    if routines:
        return dump_database(database, target, "--events", *options)
    with target.open("wb") as out:
        subprocess.run([str(dumper), *client_args(), "--single-transaction", "--skip-triggers", *options, database],
                       stdout=out, check=True)
    return target


def _compress(path: Path, tool: str) -> Path:
    if shutil.which(tool) is None:
        unavailable(f"{tool} is not installed")
    subprocess.run([tool, "-q", "-f", "-k", str(path)], check=True)
    return path.with_name(path.name + {"gzip": ".gz", "zstd": ".zst", "xz": ".xz", "bzip2": ".bz2"}[tool])


@pytest.fixture(scope="module")
def sakila(mariadb_server: sa.Engine, mariadb_client: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """sakila with a Laravel `migrations` ledger and an event, loaded into a database of its own for the module."""
    _unavailable_without_shared_data()
    script = "".join((SHARED_DATA / "sakila" / f).read_text(encoding="utf-8")
                     for f in ("sakila-mv-schema.sql", "sakila-mv-data.sql"))
    script = re.sub(r"^(DROP SCHEMA IF EXISTS|CREATE SCHEMA|USE) sakila;\s*$", "", script, flags=re.M)
    with scratch_mariadb_database(mariadb_server, "rasak") as name:
        load_sql(mariadb_client, name, script.replace("sakila.", ""))
        load_sql(mariadb_client, name, "CREATE TABLE migrations (id int unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY, "
                                       "migration varchar(255) NOT NULL, batch int NOT NULL) ENGINE=InnoDB;\n"
                                       "INSERT INTO migrations (migration, batch) VALUES "
                                       "('2014_10_12_000000_create_users_table', 1), "
                                       "('2019_08_19_000000_create_failed_jobs_table', 1);\n"
                                       "CREATE EVENT purge_old_rentals ON SCHEDULE EVERY 1 DAY DISABLE "
                                       "DO DELETE FROM rental WHERE rental_date < '2000-01-01';\n")
        yield name


@pytest.fixture(scope="module")
def sakila_gz(sakila: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """--routines --triggers --events, extended INSERTs, gzip: the usual nightly backup."""
    return _compress(_dump(sakila, tmp_path_factory.mktemp("sakila") / "sakila.sql"), "gzip")


@pytest.fixture(scope="module")
def app(sakila: str, mariadb_server: sa.Engine, tmp_path_factory: pytest.TempPathFactory) -> App:
    """The team's migration: the artisan script, its --pretend SQL as files, and the YAML."""
    folder = tmp_path_factory.mktemp("app")
    schema = (SHARED_DATA / "sakila" / "sakila-mv-schema.sql").read_text(encoding="utf-8")
    # The views as the application's source has them; the routine as production stores it (without its definer).
    originals = {v: re.search(rf"CREATE VIEW {v}.*?;", schema, re.S)[0].rstrip(";")  # type: ignore[index]
                 for v in ("staff_list", "sales_by_store")}
    with mariadb_server.connect() as conn:
        create = conn.exec_driver_sql(f"SHOW CREATE PROCEDURE `{sakila}`.rewards_report").one()[2]
    originals["rewards_report"] = re.sub(r"DEFINER=`[^`]*`@`[^`]*` ", "", create, count=1)
    (folder / "originals.json").write_text(json.dumps(originals), encoding="utf-8")
    artisan = folder / "artisan.py"
    artisan.write_text(ARTISAN, encoding="utf-8")
    env = {"SAKILA_ORIGINALS": str(folder / "originals.json")}
    result = App(artisan, env, folder / "up.sql", folder / "down.sql", folder / "loyalty.yml")
    for what, target in (("migrate", result.up_sql), ("rollback", result.down_sql)):
        target.write_text(subprocess.run(result.cmd(what, "--pretend").split(), capture_output=True, text=True,
                                         check=True, env={**os.environ, **env}).stdout, encoding="utf-8")
    result.yml.write_text(LOYALTY_YML, encoding="utf-8")
    return result


@pytest.fixture
def app_env(app: App, monkeypatch: pytest.MonkeyPatch) -> App:
    for key, value in app.env.items():
        monkeypatch.setenv(key, value)
    return app


@pytest.fixture
def account_prefix(monkeypatch: pytest.MonkeyPatch) -> str:
    """This test's temporary accounts alone (restore-check's, which the rehearsal's takes the name of, and any other)."""
    prefix = f"dbaudit_t_ra{uuid.uuid4().hex[:6]}_"
    monkeypatch.setattr(restore_account, "ACCOUNT_PREFIX", prefix)
    monkeypatch.setattr(rehearse_scratch, "ACCOUNT_PREFIX", prefix)
    return prefix


@pytest.fixture
def scratch(mariadb_server: sa.Engine, account_prefix: str) -> Iterator[str]:
    """A scratch name; after the test it, its reference restore and every account of the test must be gone."""
    name = f"dbaudit_t_ra_{uuid.uuid4().hex[:8]}"
    try:
        yield name
        assert_nothing_left(mariadb_server, name, account_prefix)
    finally:
        with mariadb_server.connect() as conn:
            for db in (name, f"{name}_ref"):
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{db}`")
            for user, host in conn.exec_driver_sql("SELECT User, Host FROM mysql.user WHERE User LIKE %s",
                                                   (account_prefix.replace("_", "\\_") + "%",)).all():
                conn.exec_driver_sql("DROP USER IF EXISTS %s@%s", (user, host))


def assert_nothing_left(server: sa.Engine, name: str, prefix: str) -> None:
    with server.connect() as conn:
        databases = {r[0] for r in conn.exec_driver_sql("SHOW DATABASES")}
        accounts = conn.exec_driver_sql("SELECT COUNT(*) FROM mysql.user WHERE User LIKE %s",
                                        (prefix.replace("_", "\\_") + "%",)).scalar_one()
        grants = conn.exec_driver_sql("SELECT COUNT(*) FROM mysql.db WHERE Db LIKE %s",
                                      (name.replace("_", "\\_") + "%",)).scalar_one()
    assert not {name, f"{name}_ref"} & databases, "a scratch database was left"
    assert accounts == 0 and grants == 0, "a temporary account was left"


def _failed(result: Rehearsal, stage: str) -> list[str]:
    return [c.message for c in result.stage(stage).checks if c.status == "fail"]


def _passes(result: Rehearsal) -> None:
    assert result.verdict == "pass", [f"{c.category} {c.name}: {c.message}" for c in result.failed_checks]


# --- sakila through a Laravel-style command ------------------------------------------------------------------------


@pytest.mark.parametrize("expect", ["yml", "migration"])
def test_sakila_migrated_by_an_artisan_style_command_with_a_correct_rollback_passes(
        expect: str, sakila_gz: Path, app_env: App, scratch: str) -> None:
    result = rehearse(sakila_gz, MARIADB_URL, expect=app_env.yml if expect == "yml" else app_env.up_sql,
                      migrate_cmd=app_env.cmd("migrate"), rollback_cmd=app_env.cmd("rollback"), scratch=scratch)

    _passes(result)
    if expect == "yml":  # every metric answered before the migration, as the temporary account
        assert [c.status for c in result.stage("snapshot").checks] == ["pass"]
        assert result.audit is not None
        metrics = {c.name: c.status for c in result.audit.checks if c.category == "metric"}
        assert metrics.get("listed_customers") == metrics.get("balance_of_customer_1") == "pass", metrics
    assert result.audit is not None and {c.kind for c in result.audit.changes} >= {
        "table_added", "column_added", "index_added", "fk_changed", "view_added", "view_removed", "view_changed",
        "trigger_changed", "routine_added", "routine_removed", "migration_applied"}
    assert result.stage("migrate").steps[0].output.rstrip().endswith("migrate: done")
    assert (result.derived_expectations is not None) == (expect == "migration")


MISTAKES = {
    "forgets-index": ["index rental.idx_rental_customer_date added"],
    "forgets-column": ["column customer.loyalty_tier added: enum('bronze','silver','gold') NULL"],
    "forgets-trigger": ["trigger customer_create_date removed"],
    "forgets-view": ["view sales_by_store removed"],
    "forgets-routine": ["routine rewards_report removed"],
    "changes-view": ["view staff_list changed (sha256: "],
    "changes-routine": ["routine rewards_report changed (sha256: "],
    "forgets-fk": ["foreign key payment.fk_payment_rental changed (on_delete: 'SET NULL' → 'CASCADE')"],
    "loses-rows": ["rows of payment: 16,049 → 16,011 (-38)", "payment_id=108 removed"],
    "changes-values": ["content of staff changed", "staff_id=1 changed, staff_id=2 changed"],
    "leaves-ledger": ["rows of migrations: 2 → 3 (+1)", "id=3 added", f"migration {LEDGER} applied (batch 2)"],
}
# Each of these alone runs in the slow set; together (they touch different objects) in one quick rehearsal.
SCHEMA_MISTAKES = ["forgets-index", "forgets-column", "forgets-trigger", "forgets-view", "forgets-routine",
                   "changes-view", "changes-routine", "forgets-fk"]


def _rehearse_mistake(dump: Path, app: App, scratch: str, mistake: str) -> list[str]:
    result = rehearse(dump, MARIADB_URL, expect=app.yml, migrate_cmd=app.cmd("migrate"),
                      rollback_cmd=app.cmd("rollback", mistake), scratch=scratch)
    assert result.verdict == "fail"
    assert [s.status for s in result.stages] == ["pass"] * 6 + ["fail"], [(s.name, s.message) for s in result.stages]
    return _failed(result, "proof")


TOGETHER = [m for m in SCHEMA_MISTAKES if m != "changes-routine"]  # forgets-routine forgets it altogether


@pytest.mark.parametrize("mistake", ["loses-rows", "changes-values", "leaves-ledger", ",".join(TOGETHER)],
                         ids=["loses-rows", "changes-values", "leaves-ledger", "schema-mistakes"])
def test_sakila_a_wrong_rollback_fails_the_proof_naming_what_it_left_wrong(
        mistake: str, sakila_gz: Path, app_env: App, scratch: str) -> None:
    failed = _rehearse_mistake(sakila_gz, app_env, scratch, mistake)

    named = [part for m in mistake.split(",") for part in MISTAKES[m]]
    assert all(any(part in message for message in failed) for part in named), failed
    # one failed check each (the ledger's: its table, and the migration still applied), nothing else
    assert len(failed) == sum(2 if m == "leaves-ledger" else 1 for m in mistake.split(",")), failed


@pytest.mark.slow
@pytest.mark.parametrize("mistake", SCHEMA_MISTAKES)
def test_sakila_each_schema_mistake_of_a_rollback_alone_fails_naming_its_object(
        mistake: str, sakila_gz: Path, app_env: App, scratch: str) -> None:
    failed = _rehearse_mistake(sakila_gz, app_env, scratch, mistake)

    assert len(failed) == 1 and all(part in failed[0] for part in MISTAKES[mistake]), failed


def test_a_migration_that_fails_halfway_fails_the_migrate_stage_with_its_output_and_the_scratch_is_dropped(
        sakila_gz: Path, app_env: App, scratch: str) -> None:
    result = rehearse(sakila_gz, MARIADB_URL, expect=app_env.yml, migrate_cmd=app_env.cmd("migrate", "fails-halfway"),
                      rollback_cmd=app_env.cmd("rollback"), scratch=scratch)

    migrate = result.stage("migrate")
    assert migrate.status == "fail" and "Key column 'no_such_column' doesn't exist" in migrate.message
    (step,) = migrate.steps
    assert step.exit_code == 1 and "migrate [5/" in step.output and "idx_broken" in step.output
    assert [s.status for s in result.stages[4:]] == ["skipped"] * 3 and not result.kept
    # the scratch fixture checks that the database and the account are gone


def test_a_migration_that_fires_a_restored_trigger_and_calls_a_restored_function_runs_as_their_definer(
        sakila_gz: Path, scratch: str, tmp_path: Path) -> None:
    """restore-check creates the dump's triggers, views and routines with its own account as definer and drops that
    account: the rehearsal's account must be that definer, or the first INSERT into a table with a trigger fails
    with 1449 and every view or routine the rollback recreates reads as changed (its definer)."""
    migration, rollback = tmp_path / "up.sql", tmp_path / "down.sql"
    migration.write_text("INSERT INTO customer (store_id, first_name, last_name, email, address_id) "
                         "VALUES (1, 'NEW', 'CUSTOMER', 'new@example.com', 1);\n"
                         "CREATE TABLE report_cache AS SELECT * FROM sales_by_store;\n"
                         "INSERT INTO report_cache (store, manager, total_sales) "
                         "SELECT 'x', 'y', get_customer_balance(1, NOW());\n", encoding="utf-8")
    rollback.write_text("DROP TABLE report_cache;\nDELETE FROM customer WHERE email = 'new@example.com';\n"
                        "DROP TRIGGER payment_date;\nCREATE TRIGGER payment_date BEFORE INSERT ON payment "
                        "FOR EACH ROW SET NEW.payment_date = NOW();\n", encoding="utf-8")

    result = rehearse(sakila_gz, MARIADB_URL, migrate=[migration], rollback=[rollback], scratch=scratch)

    _passes(result)
    assert result.stage("migrate").steps[0].statements == 3


# --- SQL files, and the other dumps ------------------------------------------------------------------------------


def test_the_pretend_sql_as_migration_and_rollback_files_passes_and_a_file_that_forgets_the_index_fails(
        sakila_gz: Path, app: App, scratch: str, tmp_path: Path) -> None:
    good = rehearse(sakila_gz, MARIADB_URL, migrate=[app.up_sql], rollback=[app.down_sql], scratch=scratch)
    forgetful = tmp_path / "down.sql"
    text = app.down_sql.read_text(encoding="utf-8")
    forgetful.write_text(text.replace("DROP INDEX idx_rental_customer_date ON rental;\n", ""), encoding="utf-8")
    bad = rehearse(sakila_gz, MARIADB_URL, migrate=[app.up_sql], rollback=[forgetful], scratch=scratch)

    _passes(good)
    assert good.stage("migrate").steps[0].statements == 18  # the trigger's BEGIN … END through DELIMITER //
    assert _failed(bad, "proof") == ["index rental.idx_rental_customer_date added"]


def test_sakila_dumped_without_routines_and_triggers_rehearses_what_it_holds(
        sakila: str, scratch: str, tmp_path: Path) -> None:
    dump = _dump(sakila, tmp_path / "sakila.sql", routines=False)
    migration, rollback = tmp_path / "up.sql", tmp_path / "down.sql"
    migration.write_text("ALTER TABLE film ADD FULLTEXT INDEX ft_film_description (description);\n"
                         "CREATE TRIGGER film_touch BEFORE UPDATE ON film FOR EACH ROW SET NEW.last_update = NOW();\n",
                         encoding="utf-8")
    rollback.write_text("DROP TRIGGER film_touch;\nALTER TABLE film DROP INDEX ft_film_description;\n", encoding="utf-8")

    result = rehearse(dump, MARIADB_URL, migrate=[migration], rollback=[rollback], scratch=scratch)

    _passes(result)
    assert result.triggers is not None
    assert result.audit is not None and {c.kind for c in result.audit.changes} == {"index_added", "trigger_added"}


@pytest.fixture(scope="module")
def world(mariadb_server: sa.Engine, mariadb_client: str) -> Iterator[str]:
    _unavailable_without_shared_data()
    script = (SHARED_DATA / "world" / "world.sql").read_text(encoding="utf-8")
    script = re.sub(r"^(CREATE DATABASE `world`.*|USE `world`;)$", "", script, flags=re.M)
    with scratch_mariadb_database(mariadb_server, "raworld") as name:
        load_sql(mariadb_client, name, script)
        yield name


WORLD_UP = """\
ALTER TABLE city ADD COLUMN slug varchar(64) NULL, ADD UNIQUE INDEX city_slug_unique (CountryCode, slug);
UPDATE city SET slug = LOWER(REPLACE(Name, ' ', '-')) WHERE CountryCode = 'NLD';
ALTER TABLE countrylanguage RENAME COLUMN IsOfficial TO is_official;
"""
WORLD_DOWN = """\
ALTER TABLE countrylanguage RENAME COLUMN is_official TO IsOfficial;
ALTER TABLE city DROP INDEX city_slug_unique, DROP COLUMN slug;
"""


@pytest.mark.parametrize("how", ["zstd", "single-row-inserts-xz", "databases-bzip2"])
def test_world_rehearses_from_each_way_a_dump_is_written(
        how: str, world: str, scratch: str, tmp_path: Path) -> None:
    options = {"zstd": (), "single-row-inserts-xz": ("--skip-extended-insert",),
               "databases-bzip2": ("--databases",)}[how]
    tool = {"zstd": "zstd", "single-row-inserts-xz": "xz", "databases-bzip2": "bzip2"}[how]
    dump = _compress(_dump(world, tmp_path / "world.sql", *options), tool)
    (tmp_path / "up.sql").write_text(f"USE `{world}`;\n" + WORLD_UP, encoding="utf-8")  # written for the source
    (tmp_path / "down.sql").write_text(WORLD_DOWN, encoding="utf-8")

    result = rehearse(dump, MARIADB_URL, migrate=[tmp_path / "up.sql"], rollback=[tmp_path / "down.sql"],
                      scratch=scratch)

    _passes(result)
    assert result.stage("dump-check").message.startswith("3 tables, 5,302 rows")


@pytest.mark.parametrize("tool", ["zstd", "xz", "bzip2"])
def test_dump_check_reads_a_mariadb_dump_compressed_with_zstd_xz_or_bzip2_and_names_a_cut_one(
        tool: str, world: str, tmp_path: Path) -> None:
    dump = _compress(_dump(world, tmp_path / "world.sql"), tool)
    cut = tmp_path / f"cut-{dump.name}"
    cut.write_bytes(dump.read_bytes()[: dump.stat().st_size // 2])

    whole, half = check_dump(dump), check_dump(cut)

    assert whole.verdict == "pass" and whole.dump.total_rows == 5302 and whole.dump.file.compressed
    failed = {c.name: c.message for c in half.checks if c.status == "fail"}
    assert "ends early" in failed["complete"] and "restore safety" not in failed, failed


def test_employees_a_rollback_that_changes_one_salary_fails_naming_its_composite_key(
        employees: tuple[str, Path], scratch: str, tmp_path: Path) -> None:
    dump = _compress(employees[1], "gzip")
    up, down = tmp_path / "up.sql", tmp_path / "down.sql"
    up.write_text("ALTER TABLE employee ADD COLUMN email varchar(255) NULL AFTER last_name;\n"
                  "CREATE INDEX idx_salary_amount ON salary (amount);\n"
                  "CREATE TABLE employee_note (id bigint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY, "
                  "employee_id int NOT NULL, note text NOT NULL, CONSTRAINT fk_note_employee FOREIGN KEY (employee_id) "
                  "REFERENCES employee (emp_no) ON DELETE CASCADE);\n"
                  "UPDATE employee SET email = CONCAT(LOWER(first_name), '.', LOWER(last_name), '@example.com') "
                  "WHERE emp_no < 10100;\n", encoding="utf-8")
    good = "DROP TABLE employee_note;\nDROP INDEX idx_salary_amount ON salary;\nALTER TABLE employee DROP COLUMN email;\n"
    down.write_text(good + "UPDATE salary SET amount = amount + 1 WHERE emp_no = 10042 AND from_date = '1993-03-21';\n",
                    encoding="utf-8")

    result = rehearse(dump, MARIADB_URL, migrate=[up], rollback=[down], scratch=scratch)

    assert _failed(result, "proof") == ["content of salary changed in 1 chunk(s): emp_no 10016..10047; rows that "
                                        "differ from the backup: emp_no=10042, from_date=1993-03-21 changed"]


# --- SQLite: world as an application's SQLite file ------------------------------------------------------------


@pytest.fixture(scope="module")
def world_sqlite(world: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import pymysql

    url = sa.engine.make_url(MARIADB_URL)
    source = pymysql.connect(host=url.host, port=url.port or 3306, user=url.username, password=url.password or "",
                             database=world)
    target = tmp_path_factory.mktemp("sqlite") / "world.sqlite"
    conn = sqlite3.connect(target)
    conn.executescript("""
        CREATE TABLE country (Code TEXT PRIMARY KEY, Name TEXT NOT NULL, Population INTEGER NOT NULL);
        CREATE TABLE city (ID INTEGER PRIMARY KEY AUTOINCREMENT, Name TEXT NOT NULL,
            CountryCode TEXT NOT NULL REFERENCES country (Code), Population INTEGER NOT NULL);
        CREATE INDEX city_country ON city (CountryCode);
        CREATE VIEW big_cities AS SELECT Name, Population FROM city WHERE Population > 1000000;
        CREATE TABLE migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, migration TEXT NOT NULL, batch INTEGER NOT NULL);
    """)
    with source.cursor() as cur:
        cur.execute("SELECT Code, Name, Population FROM country")
        conn.executemany("INSERT INTO country VALUES (?, ?, ?)", cur.fetchall())
        cur.execute("SELECT ID, Name, CountryCode, Population FROM city")
        conn.executemany("INSERT INTO city VALUES (?, ?, ?, ?)", cur.fetchall())
    source.close()
    conn.commit()
    conn.close()
    return target


SQLITE_UP = """\
ALTER TABLE city ADD COLUMN slug TEXT NULL;
CREATE INDEX city_population ON city (Population);
UPDATE city SET slug = lower(replace(Name, ' ', '-')) WHERE CountryCode = 'NLD';
DROP VIEW big_cities;
CREATE VIEW big_cities AS SELECT Name, Population, slug FROM city WHERE Population > 1000000;
INSERT INTO migrations (migration, batch) VALUES ('2026_12_01_add_city_slug', 1);
"""
SQLITE_DOWN = """\
DELETE FROM migrations WHERE migration = '2026_12_01_add_city_slug';
DROP VIEW big_cities;
CREATE VIEW big_cities AS SELECT Name, Population FROM city WHERE Population > 1000000;
DROP INDEX city_population;
ALTER TABLE city DROP COLUMN slug;
"""


@pytest.mark.parametrize(("mistake", "failed"), [
    ("", []),
    ("DROP INDEX city_population;\n", ["index city.city_population added"]),
    ("DELETE FROM migrations WHERE migration = '2026_12_01_add_city_slug';\n",
     ["rows of migrations: 0 → 1 (+1); content of migrations changed", "migration 2026_12_01_add_city_slug applied"]),
], ids=["rollback", "forgets-index", "leaves-ledger"])
def test_an_sqlite_application_file_rehearses_and_a_wrong_rollback_is_named(
        mistake: str, failed: list[str], world_sqlite: Path, tmp_path: Path) -> None:
    (tmp_path / "up.sql").write_text(SQLITE_UP, encoding="utf-8")
    (tmp_path / "down.sql").write_text(SQLITE_DOWN.replace(mistake, ""), encoding="utf-8")

    result = rehearse(world_sqlite, f"sqlite:///{tmp_path}", migrate=[tmp_path / "up.sql"],
                      rollback=[tmp_path / "down.sql"], scratch="world_rehearsal")

    text = "\n".join(_failed(result, "proof"))
    assert all(part in text for part in failed) and bool(text) == bool(failed), text
    assert not (tmp_path / "world_rehearsal.sqlite").exists()


# --- the CLI: bad input, outputs, secrets ------------------------------------------------------------------------


@pytest.fixture
def taken(mariadb_server: sa.Engine) -> Iterator[str]:
    with scratch_mariadb_database(mariadb_server, "rataken") as name:
        yield name


@pytest.mark.parametrize(("args", "says"), [
    (["{missing}", "--server", MARIADB_URL], "dump file not found: "),
    (["{dump}", "--server", MARIADB_URL, "--migrate", "{missing}"], "SQL file not found: "),
    (["{dump}", "--server", MARIADB_URL, "--expect", "{missing}"], "expectations file not found: "),
    (["{dump}", "--server", MARIADB_URL, "--expect", "{bad_yml}"], "is not valid YAML"),
    (["{dump}", "--server", "not a url"], "not a database URL"),
    (["{dump}", "--server", "mysql+pymsql://root@127.0.0.1"], "no SQLAlchemy driver 'mysql+pymsql'"),
    (["{dump}", "--server", "mysql+pymysql://root@127.0.0.1:1"], "cannot connect to mysql+pymysql://root@127.0.0.1:1"),
    (["{dump}", "--server", "mssql+pymssql://sa@127.0.0.1/app"], "rehearse restores MySQL/MariaDB dumps"),
    (["{dump}", "--server", "sqlite://"], "is not an SQLite database file"),
    (["{dump}", "--server", MARIADB_URL, "--scratch", "{taken}"], "it already exists"),
    (["{dump}", "--server", MARIADB_URL, "--scratch", "bad-name!"], "use letters, digits and _ only"),
    (["{dump}", "--server", MARIADB_URL, "--stage-timeout", "0"], "must be a positive number"),
    (["{dump}", "--server", MARIADB_URL, "--migrate", "{binary}"], "is not UTF-8 text"),
    (["{folder}", "--server", MARIADB_URL], "is a directory, but neither"),
], ids=["missing-dump", "missing-migration", "missing-expect", "bad-yaml", "bad-url", "driver-typo", "unreachable",
        "wrong-server-type", "sqlite-for-a-mysql-dump", "scratch-exists", "bad-scratch-name", "bad-timeout", "binary-migration",
        "folder-as-dump"])
def test_bad_input_is_one_clear_line_and_exit_2(
        args: list[str], says: str, request: pytest.FixtureRequest, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], mariadb_server: sa.Engine) -> None:
    dump = tmp_path / "app.sql"
    dump.write_text("-- MariaDB dump\nCREATE TABLE t (id int PRIMARY KEY);\nINSERT INTO t VALUES (1);\n",
                    encoding="utf-8")
    (tmp_path / "up.sql").write_text("ALTER TABLE t ADD COLUMN c int;\n", encoding="utf-8")
    (tmp_path / "bad.yml").write_text("format_version: 1\nrequired: [[[\n", encoding="utf-8")
    (tmp_path / "binary.sql").write_bytes(b"\xff\xfe\x00\x81")
    (tmp_path / "folder").mkdir()
    names = {"dump": dump, "missing": tmp_path / "nope.sql", "bad_yml": tmp_path / "bad.yml",
             "binary": tmp_path / "binary.sql", "folder": tmp_path / "folder",
             "taken": request.getfixturevalue("taken") if "{taken}" in args else ""}
    argv = [a.format(**names) for a in args]
    if "--migrate" not in argv:
        argv += ["--migrate", str(tmp_path / "up.sql")]
    argv += ["--rollback", str(tmp_path / "up.sql")]

    code = main(["rehearse", *argv])

    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("… ")]  # progress
    assert code == 2 and len(lines) == 1 and says in lines[0], err
    assert "Traceback" not in err + out and "unexpected" not in err


def test_the_cli_writes_valid_json_junit_and_a_report_and_never_the_temporary_password(
        sakila_gz: Path, app_env: App, scratch: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seen = tmp_path / "password"  # the command writes down what it was handed, to look for it everywhere after
    migrate = f"printf %s \"$DB_PASSWORD\" > {seen}; echo \"connecting with $DB_PASSWORD\"; {app_env.cmd('migrate')}"
    rollback = f"{app_env.cmd('rollback', 'forgets-index')}; echo \"$DBAUDIT_SCRATCH_URL\" >&2"
    out_dir = tmp_path / "reports"

    code = main(["rehearse", str(sakila_gz), "--server", MARIADB_URL, "--expect", str(app_env.yml),
                 "--migrate-cmd", migrate, "--rollback-cmd", rollback, "--scratch", scratch,
                 "--json", str(tmp_path / "r.json"), "--junit", str(tmp_path / "r.xml"), "--report",
                 "--out-dir", str(out_dir)])

    out, err = capsys.readouterr()
    assert code == 1 and "index rental.idx_rental_customer_date added" in out
    document = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    jsonschema.validate(document, json.loads((SCHEMAS / "rehearsal.schema.json").read_text(encoding="utf-8")))
    assert "connecting with ***" in document["stages"][3]["steps"][0]["output"]
    cases = list(ET.parse(tmp_path / "r.xml").getroot().iter("testcase"))
    assert len(cases) == len(document["checks"]) and sum(c.find("failure") is not None for c in cases) == 2
    (folder,) = [p for p in out_dir.iterdir() if p.is_dir()]
    assert {"report.html", "before.json", "after.json", "rolled-back.json"} <= {p.name for p in folder.iterdir()}
    assert "idx_rental_customer_date" in (folder / "report.html").read_text(encoding="utf-8")
    password = seen.read_text(encoding="utf-8")
    assert len(password) >= 20
    everything = [out, err, *(p.read_text(encoding="utf-8", errors="replace") for p in tmp_path.rglob("*")
                              if p.is_file() and p != seen)]
    assert not [t[:80] for t in everything if password in t]
    assert serde.dumps(document)  # the document round-trips


def test_a_command_on_a_server_reached_through_its_socket_is_handed_the_socket_too(
        world: str, mariadb_server: sa.Engine, scratch: str, tmp_path: Path) -> None:
    """Over the socket the temporary account is 'user'@'localhost': a TCP connection to DB_HOST:DB_PORT is refused
    (1045), so the command needs DB_SOCKET (Laravel's unix_socket) to reach it."""
    with mariadb_server.connect() as conn:
        socket = str(conn.exec_driver_sql("SELECT @@socket").scalar_one())
    if not Path(socket).exists():
        unavailable(f"the server's socket {socket} is not on this machine")
    url = sa.engine.make_url(MARIADB_URL).set(host="localhost", port=None, query={"unix_socket": socket})
    dump = _dump(world, tmp_path / "world.sql")
    (tmp_path / "up.sql").write_text(WORLD_UP, encoding="utf-8")
    (tmp_path / "down.sql").write_text(WORLD_DOWN, encoding="utf-8")
    artisan = tmp_path / "artisan.py"
    artisan.write_text("import os, sys, pymysql\n"
                       "conn = pymysql.connect(unix_socket=os.environ['DB_SOCKET'], user=os.environ['DB_USERNAME'],\n"
                       "    password=os.environ['DB_PASSWORD'], database=os.environ['DB_DATABASE'], autocommit=True)\n"
                       "for sql in open(sys.argv[1]).read().split(';\\n'):\n"
                       "    if sql.strip():\n"
                       "        conn.cursor().execute(sql)\n", encoding="utf-8")

    result = rehearse(dump, url.render_as_string(hide_password=False), expect=tmp_path / "up.sql",
                      migrate_cmd=f"{sys.executable} {artisan} {tmp_path / 'up.sql'}",
                      rollback_cmd=f"{sys.executable} {artisan} {tmp_path / 'down.sql'}", scratch=scratch)

    _passes(result)


def test_a_file_that_is_no_dump_fails_the_dump_check_and_nothing_is_restored(
        scratch: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dump = tmp_path / "backup.sql"
    dump.write_bytes(b"<html><body>502 Bad Gateway</body></html>\n")  # what a failed download leaves
    (tmp_path / "up.sql").write_text("ALTER TABLE t ADD COLUMN c int;\n", encoding="utf-8")

    code = main(["rehearse", str(dump), "--server", MARIADB_URL, "--migrate", str(tmp_path / "up.sql"),
                 "--rollback", str(tmp_path / "up.sql"), "--scratch", scratch])

    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in err
    assert out.splitlines()[0] == f"rehearsal of {dump} on {MARIADB_URL}, scratch database {scratch}"
    assert re.search(r"^FAIL +dump-check .*0 tables", out, re.M) and re.search(r"^SKIPPED +restore", out, re.M)
