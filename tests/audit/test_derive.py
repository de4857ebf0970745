"""dbaudit.audit.derive without a server: statements in, expectations out (the servers are in tests/live)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from dbaudit.audit.derive import derive, is_migration_file, load_or_derive
from dbaudit.audit.derive.split import split_statements
from dbaudit.audit.expectations import parse_expectations
from dbaudit.core.errors import DbauditError
from dbaudit.core.snapshot import Column, ForeignKey, Index, Server, Snapshot, Table


def _derive(tmp_path: Path, sql: str, dialect: str = "mysql", before: Snapshot | None = None, name: str = "m.sql"):
    path = tmp_path / name
    path.write_text(sql, encoding="utf-8")
    return derive([path], dialect, before)


def _entries(derived: Any, section: str = "required") -> dict[str, dict[str, Any]]:
    return {f"{p.kind} {p.target}": p.attributes for p in getattr(derived.expectations, section)}


# --- splitting --------------------------------------------------------------------------------


def test_the_splitter_knows_delimiters_bodies_comments_and_strings() -> None:
    sql = (
        "-- a comment; with a semicolon\n"
        "SET NAMES utf8mb4;\n"
        "/*!40101 SET @x = 1 */;\n"
        "ALTER TABLE `a;b` ADD c int COMMENT 'x;y\\';z'; # trailing ; comment\n"
        "DELIMITER $$\n"
        "CREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW BEGIN SET NEW.a = ';'; END$$\n"
        "DELIMITER ;\n"
        "CREATE TRIGGER t2 BEFORE INSERT ON x FOR EACH ROW BEGIN\n"
        "  CASE WHEN 1 THEN SET @a = 1; END CASE;\n"
        "  IF 1 THEN SET @b = CASE 1 WHEN 1 THEN 2 END; END IF;\n"
        "END;\n"
        "SELECT 1;"
    )
    statements, _ = split_statements(sql, "mysql")
    assert [s.line for s in statements] == [2, 3, 4, 6, 8, 12]
    assert statements[1].text.strip() == "SET @x = 1"  # the executable comment is SQL
    assert statements[2].text.endswith("COMMENT 'x;y\\';z'")
    assert statements[3].text.endswith("END")
    assert "END IF;\nEND" in statements[4].text


def test_the_splitter_knows_postgres_dollar_bodies_nested_comments_and_psql_lines() -> None:
    sql = ("\\connect shop\n"
           "CREATE FUNCTION f() RETURNS trigger AS $fn$ BEGIN x; END; $fn$ LANGUAGE plpgsql;\n"
           "/* nested /* inner ; */ still ; a comment */ SELECT 'a;''b';\n"
           "DO $$ BEGIN PERFORM 1; END $$;")
    statements, client = split_statements(sql, "postgresql")
    assert [(s.line, s.text[:6]) for s in statements] == [(2, "CREATE"), (3, "SELECT"), (4, "DO $$ ")]
    assert client[0].text == "\\connect shop" and client[0].line == 1


def test_sqlite_trigger_bodies_stay_whole() -> None:
    statements, _ = split_statements("CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET a = 1; END; SELECT 2;",
                                     "sqlite")
    assert len(statements) == 2 and statements[0].text.endswith("END")


# --- statement forms --------------------------------------------------------------------------


MYSQL_FORMS = [
    ("ALTER TABLE t ADD COLUMN c varchar(20) NOT NULL DEFAULT 'x' COMMENT 'why' AFTER b",
     "column_added t.c", {"type": "varchar(20)", "nullable": False, "default": "'x'", "comment": "why"}),
    ("ALTER TABLE `t` ADD `n` bigint unsigned NULL", "column_added t.n", {"type": "bigint(20) unsigned", "nullable": True}),
    ("ALTER TABLE t ADD e enum('a','b''c') NULL", "column_added t.e", {"type": "enum('a','b''c')"}),
    ("ALTER TABLE t ADD u timestamp NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP", "column_added t.u",
     {"extra": "on update current_timestamp()", "default": "current_timestamp"}),
    ("ALTER TABLE t ADD j json", "column_added t.j", {"type": "longtext"}),
    ("ALTER TABLE t ADD z int(10) unsigned zerofill NOT NULL", "column_added t.z", {"type": "int(10) unsigned zerofill"}),
    ("ALTER TABLE t ADD r real, ADD b boolean DEFAULT true", "column_added t.b", {"type": "tinyint(1)", "default": "1"}),
    ("ALTER TABLE t MODIFY COLUMN c varchar(50) NOT NULL", "column_changed t.c",
     {"type": "varchar(50)", "nullable": False, "comment": "", "default": None}),
    ("ALTER TABLE t CHANGE a b int NULL", "column_added t.b", {"type": "int(11)", "nullable": True}),
    ("ALTER TABLE t CHANGE a b int NULL", "column_removed t.a", {}),
    ("ALTER TABLE t RENAME COLUMN a TO b", "column_removed t.a", {}),
    ("ALTER TABLE t DROP COLUMN a", "column_removed t.a", {}),
    ("ALTER TABLE t ALTER COLUMN a SET DEFAULT 5", "column_changed t.a", {"default": "5"}),
    ("ALTER TABLE t ADD INDEX i (a, b(10))", "index_added t.i", {"columns": ["a", "b(10)"], "unique": False}),
    ("ALTER TABLE t ADD UNIQUE KEY u (a)", "index_added t.u", {"columns": ["a"], "unique": True}),
    ("ALTER TABLE t ADD CONSTRAINT u UNIQUE (a)", "index_added t.u", {"unique": True}),
    ("ALTER TABLE t ADD FULLTEXT INDEX ft (body)", "index_added t.ft", {"type": "FULLTEXT"}),
    ("ALTER TABLE t ADD PRIMARY KEY (id)", "index_added t.PRIMARY", {"primary": True}),
    ("ALTER TABLE t ADD INDEX (a)", "index_added t.*", {"columns": ["a"]}),
    ("CREATE UNIQUE INDEX i ON t (a)", "index_added t.i", {"unique": True}),
    ("CREATE INDEX i ON t (a) USING BTREE", "index_added t.i", {"columns": ["a"]}),
    ("DROP INDEX i ON t", "index_removed t.i", {}),
    ("ALTER TABLE t DROP INDEX i", "index_removed t.i", {}),
    ("ALTER TABLE t DROP PRIMARY KEY", "index_removed t.PRIMARY", {}),
    ("ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES p (id) ON DELETE SET NULL ON UPDATE CASCADE",
     "fk_added t.fk", {"columns": ["a"], "ref_table": "p", "ref_columns": ["id"], "on_delete": "SET NULL",
                       "on_update": "CASCADE"}),
    ("ALTER TABLE t ADD FOREIGN KEY (a) REFERENCES p (id)", "fk_added t.*", {"ref_table": "p"}),
    ("ALTER TABLE t DROP FOREIGN KEY fk", "fk_removed t.fk", {}),
    ("CREATE TABLE n (id int PRIMARY KEY, v varchar(5)) ENGINE=InnoDB COLLATE=utf8mb4_bin", "table_added n",
     {"engine": "InnoDB", "collation": "utf8mb4_bin"}),
    ("DROP TABLE t", "table_removed t", {}),
    ("ALTER TABLE t RENAME TO u", "table_added u", {}),
    ("RENAME TABLE a TO b, c TO d", "table_added d", {}),
    ("ALTER TABLE t ENGINE=MyISAM", "table_changed t", {"engine": "MyISAM"}),
    ("CREATE VIEW v AS SELECT 1", "view_added v", {}),
    ("DROP VIEW v", "view_removed v", {}),
    ("CREATE DEFINER=`root`@`%` TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = 1", "trigger_added tr",
     {"table": "t"}),
    ("DROP TRIGGER tr", "trigger_removed tr", {}),
    ("CREATE PROCEDURE p(IN x int) BEGIN SELECT x; END", "routine_added p", {"kind": "procedure"}),
    ("CREATE FUNCTION f(x int) RETURNS int DETERMINISTIC RETURN x * 2", "routine_added f", {"kind": "function"}),
    ("DROP PROCEDURE p", "routine_removed p", {}),
]


@pytest.mark.parametrize(("sql", "entry", "attrs"), MYSQL_FORMS, ids=[f[0][:50] for f in MYSQL_FORMS])
def test_each_mysql_form_becomes_an_entry_with_the_attributes_it_states(tmp_path, sql, entry, attrs) -> None:
    found = _entries(_derive(tmp_path, sql + ";"))
    assert entry in found, sorted(found)
    for key, value in attrs.items():
        assert found[entry][key] == value, (key, found[entry])


POSTGRES_FORMS = [
    ("ALTER TABLE t ADD COLUMN c varchar(20) DEFAULT 'x'", "column_added t.c",
     {"type": "character varying(20)", "default": "'x'", "nullable": True}),
    ("ALTER TABLE t ADD COLUMN c timestamp(0)", "column_added t.c", {"type": "timestamp(0) without time zone"}),
    ("ALTER TABLE t ADD COLUMN c timestamptz NOT NULL DEFAULT now()", "column_added t.c",
     {"type": "timestamp with time zone", "default": "current_timestamp"}),
    ("ALTER TABLE t ADD COLUMN c int[]", "column_added t.c", {"type": "integer[]"}),
    ("ALTER TABLE t ADD COLUMN c numeric(8)", "column_added t.c", {"type": "numeric(8,0)"}),
    ("ALTER TABLE t ADD COLUMN \"Mixed\" int", "column_added t.Mixed", {"type": "integer"}),
    ("ALTER TABLE T ADD COLUMN C float", "column_added t.c", {"type": "double precision"}),  # unquoted: folded
    ("ALTER TABLE t ADD COLUMN id int GENERATED ALWAYS AS IDENTITY", "column_added t.id",
     {"extra": "identity always", "nullable": False}),
    ("ALTER TABLE t ALTER COLUMN c TYPE bigint", "column_changed t.c", {"type": "bigint"}),
    ("ALTER TABLE t ALTER COLUMN c SET NOT NULL", "column_changed t.c", {"nullable": False}),
    ("ALTER TABLE t ALTER COLUMN c DROP DEFAULT", "column_changed t.c", {"default": None}),
    ("COMMENT ON COLUMN t.c IS 'why'", "column_changed t.c", {"comment": "why"}),
    ("ALTER TABLE t ADD CONSTRAINT u UNIQUE (a, b)", "index_added t.u", {"columns": ["a", "b"], "unique": True}),
    ("ALTER TABLE t ADD PRIMARY KEY (a)", "index_added t.t_pkey", {"primary": True}),
    ("CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t USING gin (tags)", "index_added t.i", {"type": "gin"}),
    ("CREATE INDEX ON t (a)", "index_added t.*", {"columns": ["a"]}),
    ("DROP INDEX CONCURRENTLY i", "index_removed *.i", {}),
    ("ALTER INDEX a RENAME TO b", "index_added *.b", {}),
    ("ALTER TABLE t DROP CONSTRAINT t_a_fkey", "fk_removed t.t_a_fkey", {}),  # allowed: its kind is not stated
    ("ALTER TABLE t ADD COLUMN c bigint REFERENCES p (id) ON DELETE CASCADE", "fk_added t.*",
     {"columns": ["c"], "on_delete": "CASCADE"}),
    ("CREATE TRIGGER tr BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION f()", "trigger_added t.tr", {"table": "t"}),
    ("DROP TRIGGER tr ON t", "trigger_removed t.tr", {}),
    ("CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$", "routine_added f(*)", {}),
    ("CREATE MATERIALIZED VIEW mv AS SELECT 1", "view_added mv", {}),
]


@pytest.mark.parametrize(("sql", "entry", "attrs"), POSTGRES_FORMS, ids=[f[0][:50] for f in POSTGRES_FORMS])
def test_each_postgres_form_becomes_an_entry(tmp_path, sql, entry, attrs) -> None:
    derived = _derive(tmp_path, sql + ";", "postgresql")
    found = {**_entries(derived), **_entries(derived, "allowed")}
    assert entry in found, sorted(found)
    for key, value in attrs.items():
        assert found[entry][key] == value, (key, found[entry])


def test_sqlite_types_are_kept_as_declared_and_its_keys_have_no_names(tmp_path) -> None:
    derived = _derive(tmp_path, "ALTER TABLE t ADD COLUMN c VARCHAR ( 255 ) NOT NULL DEFAULT 'x';\n"
                                "CREATE TABLE n (id INTEGER PRIMARY KEY, p int CONSTRAINT named REFERENCES t (id));\n"
                                "CREATE TABLE kv (k TEXT PRIMARY KEY) WITHOUT ROWID;", "sqlite")
    found = _entries(derived)
    assert found["column_added t.c"]["type"] == "VARCHAR ( 255 )"
    assert found["table_added n"]["foreign_keys"] == [{"columns": ["p"], "ref_table": "t", "ref_columns": ["id"]}]
    assert found["table_added kv"]["engine"] == "WITHOUT ROWID"
    assert any("WITHOUT ROWID" in w for w in derived.warnings)


# --- net effects ------------------------------------------------------------------------------


def test_what_happens_to_a_new_table_is_part_of_its_table_added(tmp_path) -> None:
    found = _entries(_derive(tmp_path, """
        CREATE TABLE g (id int NOT NULL AUTO_INCREMENT PRIMARY KEY, a int, tmp int);
        CREATE INDEX g_a ON g (a);
        ALTER TABLE g DROP COLUMN tmp, ADD COLUMN b varchar(10) NOT NULL;
        ALTER TABLE g RENAME COLUMN b TO c;"""))
    assert list(found) == ["table_added g"]
    assert list(found["table_added g"]["columns"]) == ["id", "a", "c"]
    assert {"columns": ["a"], "unique": False, "name": "g_a"} in found["table_added g"]["indexes"]


def test_a_column_added_then_dropped_leaves_nothing_and_a_rename_chain_one_entry(tmp_path) -> None:
    found = _entries(_derive(tmp_path, """
        ALTER TABLE t ADD COLUMN scratch int;
        ALTER TABLE t DROP COLUMN scratch;
        ALTER TABLE t ADD COLUMN a int;
        ALTER TABLE t RENAME COLUMN a TO b;
        CREATE TABLE tmp (id int);
        DROP TABLE tmp;"""))
    assert list(found) == ["column_added t.b"]


def test_innodb_side_effects_are_allowed_with_the_reason(tmp_path) -> None:
    derived = _derive(tmp_path, "ALTER TABLE c ADD CONSTRAINT fk FOREIGN KEY (g) REFERENCES g (id);\n"
                                "CREATE INDEX c_g_t ON c (g, t);")
    allowed = _entries(derived, "allowed")
    assert allowed["index_added c.fk"] == {"columns": ["g"], "unique": False}
    assert allowed["index_removed c.*"] == {"columns": ["g"], "unique": False}
    assert "InnoDB adds an index for a new foreign key" in derived.text
    assert "InnoDB drops the index it created for a foreign key" in derived.text


def test_row_rules_follow_the_data_statements(tmp_path) -> None:
    derived = _derive(tmp_path, "UPDATE a SET x = 1 WHERE id = 2; DELETE FROM b WHERE x = 1; UPDATE c SET x = 2;\n"
                                "INSERT INTO d VALUES (1), (2); TRUNCATE e;")
    rows = derived.expectations.rows
    assert rows.default == "no_shrink"
    assert rows.tables == {"b": "any", "e": "any", "a": "no_shrink", "c": "no_shrink", "d": "no_shrink"}
    assert any("UPDATE without WHERE: every row of c" in w for w in derived.warnings)
    assert "UPDATE without WHERE" in derived.text


# --- against the before snapshot ----------------------------------------------------------------


def _snapshot() -> Snapshot:
    chats = Table("chats", [Column("id", 1, "bigint(20) unsigned", False, None, "auto_increment"),
                            Column("status", 2, "varchar(20)", False, None),
                            Column("group_id", 3, "bigint(20) unsigned", True, None)],
                  [Index("PRIMARY", ["id"], True, True), Index("fk_group", ["group_id"], False)],
                  [ForeignKey("fk_group", ["group_id"], "groups", ["id"], "CASCADE")])
    groups = Table("groups", [Column("id", 1, "bigint(20) unsigned", False, None)], [Index("PRIMARY", ["id"], True, True)])
    return Snapshot(1, "dbaudit.snapshot", "2026-01-01T00:00:00+00:00", "mysql://x/db", "db",
                    Server("mysql", "MariaDB", "10.11.19-MariaDB"), {"chats": chats, "groups": groups})


@pytest.mark.parametrize(("sql", "error"), [
    ("ALTER TABLE chats ADD COLUMN status int;", "adds column chats.status, which is already there"),
    ("DROP TABLE missing;", "drops table missing, which is not there"),
    ("ALTER TABLE chats DROP COLUMN nope;", "drops column chats.nope, which is not there"),
    ("DROP INDEX nope ON chats;", "drops index chats.nope, which is not there"),
    ("CREATE TABLE groups (id int);", "creates table groups, which is already there"),
    ("ALTER TABLE chats ADD INDEX fk_group (status);", "adds index chats.fk_group, which is already there"),
])
def test_the_before_snapshot_catches_what_cannot_run(tmp_path, sql, error) -> None:
    with pytest.raises(DbauditError, match="does not fit") as caught:
        _derive(tmp_path, sql, before=_snapshot())
    assert error in str(caught.value) and "m.sql:1" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_with_the_before_snapshot_side_effects_are_named_exactly(tmp_path) -> None:
    derived = _derive(tmp_path, "CREATE INDEX chats_group_status ON chats (group_id, status);\n"
                                "ALTER TABLE chats DELETE_ME;\n".replace("ALTER TABLE chats DELETE_ME;\n", "")
                                + "DELETE FROM groups WHERE id = 1;", before=_snapshot())
    allowed = _entries(derived, "allowed")
    assert "index_removed chats.fk_group" in allowed  # the implicit index InnoDB drops, by name
    assert derived.expectations.rows.tables == {"groups": "any", "chats": "any"}  # ON DELETE CASCADE from groups


def test_if_exists_on_something_not_there_is_a_note_not_an_error(tmp_path) -> None:
    derived = _derive(tmp_path, "DROP TABLE IF EXISTS missing; ALTER TABLE chats ADD COLUMN note text;",
                      before=_snapshot())
    assert list(_entries(derived)) == ["column_added chats.note"]
    assert any("IF EXISTS missing: it is not there" in w for w in derived.warnings)


# --- the file ---------------------------------------------------------------------------------


def test_the_file_names_its_sources_with_sha256_and_every_entry_its_line(tmp_path) -> None:
    sql = ("SET NAMES utf8mb4;\n\nALTER TABLE t\n  ADD COLUMN a int,\n  ADD COLUMN b int;\n"
           "CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO SELECT 1;\n")
    derived = _derive(tmp_path, sql)
    digest = hashlib.sha256(sql.encode()).hexdigest()
    assert f"#   {digest}  {tmp_path / 'm.sql'}" in derived.text
    assert f"# {tmp_path / 'm.sql'}:4: ADD COLUMN a int" in derived.text
    assert f"# {tmp_path / 'm.sql'}:5: ADD COLUMN b int" in derived.text
    assert any(w.startswith(f"{tmp_path / 'm.sql'}:6: sqlglot returned it as an unparsed command")
               for w in derived.warnings)  # never silently dropped: listed in the file's header too
    assert "WARNINGS (1)" in derived.text and derived.text.count("m.sql:6: ") == 2  # the warning, and event_added
    # What is written is what is used.
    assert parse_expectations(yaml.safe_load(derived.text), derived.expectations.name) == derived.expectations


@pytest.mark.parametrize(("content", "message"), [
    ("", "holds no SQL statements: an empty migration"),
    ("-- only a comment\n/* and another */\n", "holds no SQL statements"),
    ("# Title\n\nSome prose, not SQL.\n", "is not SQL"),
    ("format_version: 1\nname: x\nrequired: []\n", "is not SQL"),
])
def test_bad_input_is_one_line(tmp_path, content, message) -> None:
    with pytest.raises(DbauditError, match=message) as caught:
        _derive(tmp_path, content)
    assert "\n" not in str(caught.value)


def test_binary_files_directories_and_unknown_dialects_are_refused(tmp_path) -> None:
    (tmp_path / "x.sql").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(DbauditError, match="binary"):
        derive([tmp_path / "x.sql"])
    with pytest.raises(DbauditError, match="is a directory"):
        derive([tmp_path])
    (tmp_path / "y.sql").write_text("SELECT 1;")
    with pytest.raises(DbauditError, match="unknown dialect 'oracle'"):
        derive([tmp_path / "y.sql"], "oracle")


def test_migration_files_are_told_from_expectations_by_content(tmp_path) -> None:
    (tmp_path / "plan.txt").write_text("ALTER TABLE t ADD COLUMN c int;")
    (tmp_path / "rules.sql").write_text("format_version: 1\nname: x\nrequired:\n  - table_added: t\n")
    assert is_migration_file(tmp_path / "plan.txt")
    assert not is_migration_file(tmp_path / "rules.sql")
    rules, derived = load_or_derive(tmp_path / "plan.txt")
    assert derived is not None and [p.target for p in rules.required] == ["t.c"]
    rules, derived = load_or_derive(tmp_path / "rules.sql")
    assert derived is None and rules.required[0].target == "t"


def test_the_dialect_comes_from_the_snapshot_or_the_file_name(tmp_path) -> None:
    assert _derive(tmp_path, "SELECT 1;", None, name="m.pgsql").dialect == "postgresql"
    assert _derive(tmp_path, "SELECT 1;", None, name="m.sqlite.sql").dialect == "sqlite"
    assert _derive(tmp_path, "SELECT 1;", None, before=_snapshot()).dialect == "mysql"
    with pytest.raises(DbauditError, match="before snapshot is of a mysql database"):
        _derive(tmp_path, "SELECT 1;", "postgresql", before=_snapshot())


# --- Laravel ----------------------------------------------------------------------------------

# Exactly what Laravel 11 prints for `php artisan migrate --pretend` (Migrator::pretendToRun through
# Termwind: the INFO line, each migration's name with a dotted filler, `⇂ ` bullets), ANSI included,
# with one query wrapped at the terminal width. Written from laravel/framework's source: no PHP here.
PRETEND = (
    "\n   \x1b[44;1m INFO \x1b[49;22m Running migrations.  \n\n"
    "  2025_10_22_000001_add_chat_provider_and_groups \x1b[90m.......................................\x1b[39m  \n"
    "  ⇂ alter table `chats` add `provider_type` varchar(20) null comment 'Provider: meta | webjs' after `status`  \n"
    "  ⇂ alter table `chats` add `group_id` bigint unsigned null  \n"
    "  ⇂ create table `whatsapp_groups` (`id` bigint unsigned not null auto_increment primary key, `name`\n"
    "    varchar(255) not null) default character set utf8mb4 collate 'utf8mb4_unicode_ci'  \n"
    "  2025_10_22_000002_add_chat_indexes \x1b[90m...................................................\x1b[39m  \n"
    "  ⇂ alter table `chats` add index `idx_chats_group_chat`(`group_id`, `created_at`)  \n"
    "  ⇂ alter table `chats` add constraint `chats_group_id_foreign` foreign key (`group_id`) references "
    "`whatsapp_groups` (`id`) on delete set null  \n\n"
)


def test_laravel_pretend_output_attributes_each_statement_to_its_migration(tmp_path) -> None:
    derived = _derive(tmp_path, PRETEND, "mysql", name="pretend.txt")
    assert derived.migrations == ["2025_10_22_000001_add_chat_provider_and_groups", "2025_10_22_000002_add_chat_indexes"]
    assert derived.expectations.migrations is not None
    assert derived.expectations.migrations.applied == derived.migrations
    found = _entries(derived)
    assert found["column_added chats.provider_type"]["comment"] == "Provider: meta | webjs"
    assert list(found["table_added whatsapp_groups"]["columns"]) == ["id", "name"]  # the wrapped query, joined
    assert found["fk_added chats.chats_group_id_foreign"]["on_delete"] == "SET NULL"
    assert "# 2025_10_22_000002_add_chat_indexes (" in derived.text and "pretend.txt:10)" in derived.text


def test_laravel_class_names_are_mapped_to_file_names_or_left_out(tmp_path) -> None:
    old_style = "AddProviderToChats: alter table `chats` add `provider_type` varchar(20) null\n"
    path = tmp_path / "pretend.txt"
    path.write_text(old_style)
    unmapped = derive([path])
    assert unmapped.expectations.migrations is None and any("class name" in w for w in unmapped.warnings)
    mapped = derive([path], migration_files=["2024_01_01_000000_create_users", "2025_05_01_120000_add_provider_to_chats"])
    assert mapped.migrations == ["2025_05_01_120000_add_provider_to_chats"]


def test_laravel_placeholders_from_before_10_30_are_called_out(tmp_path) -> None:
    pretend = "  2025_01_01_000000_fill ......  \n  ⇂ update `chats` set `status` = ? where `id` = ?\n"
    derived = _derive(tmp_path, pretend, name="p.txt")
    assert any("placeholders" in w for w in derived.warnings)


# --- statements sqlglot does not model ------------------------------------------------------------


@pytest.mark.parametrize(("sql", "dialect", "entries"), [
    ("ALTER TABLE t ADD COLUMN (a int, b int)", "mysql", {"column_added t.a", "column_added t.b"}),
    ("ALTER TABLE t ADD CHECK (a > 0), ADD COLUMN z int", "mysql", {"check_added t.*", "column_added t.z"}),
    ("CREATE TABLE p (id int PRIMARY KEY) PARTITION BY HASH(id) PARTITIONS 4", "mysql", {"table_added p"}),
    ("CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO DELETE FROM t", "mysql", {"event_added e"}),
    ("ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID, ADD COLUMN z int", "postgresql",
     {"check_added t.c", "column_added t.z"}),
    ("ALTER TABLE t OWNER TO app", "postgresql", set()),
    ("ALTER TABLE t VALIDATE CONSTRAINT c", "postgresql", set()),
])
def test_statements_sqlglot_does_not_model_are_warnings_and_still_read(tmp_path, sql, dialect, entries) -> None:
    derived = _derive(tmp_path, sql + ";", dialect)
    assert set(_entries(derived)) == entries
    assert any("unparsed command" in w or "cannot parse" in w for w in derived.warnings), derived.warnings


def test_a_clause_that_cannot_be_read_allows_any_change_to_its_table_and_says_so(tmp_path) -> None:
    derived = _derive(tmp_path, "ALTER TABLE t SET ACCESS METHOD heap, ADD COLUMN z int;", "postgresql")
    assert set(_entries(derived)) == {"column_added t.z"}
    assert "column_removed t.*" in _entries(derived, "allowed")
    assert any("clause(s) not read: SET" in w for w in derived.warnings), derived.warnings


def test_a_statement_with_no_meaning_to_sqlglot_is_never_silently_dropped(tmp_path) -> None:
    derived = _derive(tmp_path, "ALTER TABLE t ADD COLUMN a int; FROBNICATE TABLE t;", "mysql")
    assert len(derived.warnings) == 1 and "sqlglot" in derived.warnings[0] and "not checked" in derived.warnings[0]


def test_a_mysqldump_style_view_with_definer_is_read(tmp_path) -> None:
    derived = _derive(tmp_path, "CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`%` SQL SECURITY DEFINER VIEW `v` AS "
                                "select 1 AS `x`;")
    assert set(_entries(derived)) == {"view_added v"}


def test_drop_if_exists_then_create_allows_either_a_new_table_or_its_differences(tmp_path) -> None:
    derived = _derive(tmp_path, "DROP TABLE IF EXISTS s; CREATE TABLE s (id int PRIMARY KEY, v text);")
    allowed = _entries(derived, "allowed")
    assert list(allowed["table_added s"]["columns"]) == ["id", "v"] and "column_added s.*" in allowed
    assert not _entries(derived)


@pytest.mark.parametrize(("sql", "dialect", "allowed"), [
    ("/*!40000 ALTER TABLE t DISABLE KEYS */;", "mysql", set()),
    ("ALTER TABLE t ENABLE ROW LEVEL SECURITY;", "postgresql", {"table_changed t"}),
    ("ALTER TABLE t DISABLE TRIGGER ALL;", "postgresql", {"table_changed t", "trigger_changed t.*"}),
    ("ALTER TABLE t DEFAULT CHARSET=utf8mb4;", "mysql", {"table_changed t"}),
])
def test_table_clauses_that_change_properties_are_allowed_not_blanket(tmp_path, sql, dialect, allowed) -> None:
    derived = _derive(tmp_path, sql, dialect)
    assert set(_entries(derived, "allowed")) == allowed and not _entries(derived)


def test_pg_dump_style_cast_defaults_are_read(tmp_path) -> None:
    found = _entries(_derive(tmp_path, "ALTER TABLE t ADD COLUMN s character varying(20) DEFAULT 'new'::character varying;",
                             "postgresql"))
    assert found["column_added t.s"]["default"] == "'new'"


def test_a_modify_that_restates_the_column_is_allowed_not_required(tmp_path) -> None:
    derived = _derive(tmp_path, "ALTER TABLE chats MODIFY status varchar(20) NOT NULL;", before=_snapshot())
    assert "column_changed chats.status" in _entries(derived, "allowed") and not _entries(derived)


def test_several_files_keep_their_order(tmp_path) -> None:
    (tmp_path / "b_first.sql").write_text("ALTER TABLE t ADD COLUMN one int;")
    (tmp_path / "a_second.sql").write_text("ALTER TABLE t ADD COLUMN two int;")
    derived = derive([tmp_path / "b_first.sql", tmp_path / "a_second.sql"])
    assert [p.target for p in derived.expectations.required] == ["t.one", "t.two"]


def test_drop_if_exists_is_allowed_not_required_unless_the_snapshot_knows(tmp_path) -> None:
    derived = _derive(tmp_path, "DROP TABLE IF EXISTS tmp_copy; ALTER TABLE t DROP COLUMN IF EXISTS c;"
                                " DROP VIEW IF EXISTS v; DROP INDEX IF EXISTS i ON t;")
    assert not _entries(derived)
    assert {"table_removed tmp_copy", "column_removed t.c", "view_removed v", "index_removed t.i"} <= set(
        _entries(derived, "allowed"))
    known = _derive(tmp_path, "DROP TABLE IF EXISTS groups;", before=_snapshot())
    assert "table_removed groups" in _entries(known)


def test_versioned_executable_comments_run_as_the_server_would(tmp_path) -> None:
    sql = "CREATE TABLE a (id int /*!50705 , g geometry */ /*!40101 , n int */ /*M!100100 , m int */);"
    mariadb = _entries(_derive(tmp_path, sql))  # no snapshot: as MariaDB does
    assert list(mariadb["table_added a"]["columns"]) == ["id", "n", "m"]
    mysql = _snapshot()
    mysql.server = Server("mysql", "MySQL", "8.0.36")
    assert list(_entries(_derive(tmp_path, sql, before=mysql))["table_added a"]["columns"]) == ["id", "g", "n"]


def test_a_change_declared_by_name_but_not_by_attributes_says_what_differs(tmp_path) -> None:
    from dbaudit.audit.result import audit

    derived = _derive(tmp_path, "DROP TABLE IF EXISTS s; CREATE TABLE s (id int PRIMARY KEY, v text, KEY s_v (v(10)));")
    before = _snapshot()
    after = _snapshot()
    after.tables["s"] = Table("s", [Column("id", 1, "int(11)", False, None), Column("v", 2, "text", True, None),
                                    Column("stray", 3, "int(11)", True, None)], [Index("PRIMARY", ["id"], True, True)])
    messages = [c.message for c in audit(before, after, derived.expectations).failed_checks]
    assert any("unexpected columns stray" in m and "no index like" in m and "s_v" in m for m in messages), messages
