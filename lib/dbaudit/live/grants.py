"""The least-privilege account for audits (`dbaudit grants`): exactly what a snapshot needs to see everything.

MariaDB/MySQL filter information_schema by privilege, so the grants decide what a snapshot can see:

- SELECT: tables, columns, indexes, keys, row counts, fingerprints, metrics;
- SHOW VIEW: view definitions;
- TRIGGER: the triggers (information_schema.TRIGGERS lists none without it). It is the one grant here
  that could change something (create or drop triggers), so the snapshot will say the account can write;
  leave it out if triggers do not matter, and the snapshot records that it saw none;
- EXECUTE: the routines' names and signatures;
- the routines' bodies: SELECT on mysql.proc (MariaDB before 11.3), SHOW CREATE ROUTINE (MariaDB 11.3+)
  or SHOW_ROUTINE (MySQL 8.0.20+). All three show the bodies of every database's routines, nothing else.

PostgreSQL's catalog is readable by every role; an audit needs CONNECT, USAGE on the schema and SELECT on
its tables (and default privileges, so tables created later are readable too).
"""

from __future__ import annotations

import re

from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from dbaudit.core.errors import DbauditError
from dbaudit.live.connect import create_audit_engine, describe_db_error, mask_url, parse_url

DEFAULT_USER = "dbaudit"


def _mysql_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def _backticks(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _pg_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def mysql_grants(database: str, version: str, user: str = DEFAULT_USER, host: str = "%") -> list[str]:
    """The statements for MariaDB/MySQL, given VERSION() (which decides how routine bodies are granted)."""
    account = f"{_mysql_string(user)}@{_mysql_string(host)}"
    # A database grant's name is a LIKE pattern: escape _ and % so it names this database only.
    pattern = _backticks(re.sub(r"([_%\\])", r"\\\1", database))
    statements = [f"GRANT SELECT, SHOW VIEW, TRIGGER, EXECUTE ON {pattern}.* TO {account};"]
    numbers = tuple(int(n) for n in re.findall(r"\d+", version)[:2]) or (0, 0)
    if "mariadb" in version.lower():
        if numbers >= (11, 3):
            statements.append(f"GRANT SHOW CREATE ROUTINE ON {pattern}.* TO {account};")
        else:
            statements.append(f"GRANT SELECT ON `mysql`.`proc` TO {account};")
    else:
        statements.append(f"GRANT SHOW_ROUTINE ON *.* TO {account};")
    return statements


def postgres_grants(database: str, schema: str, user: str = DEFAULT_USER) -> list[str]:
    role, schema_q = _pg_ident(user), _pg_ident(schema)
    return [
        f"GRANT CONNECT ON DATABASE {_pg_ident(database)} TO {role};",
        f"GRANT USAGE ON SCHEMA {schema_q} TO {role};",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema_q} TO {role};",
        # Only for tables the role running this creates later; repeat FOR ROLE <owner> for other owners.
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema_q} GRANT SELECT ON TABLES TO {role};",
    ]


def create_user_hint(backend: str, user: str = DEFAULT_USER, host: str = "%") -> str:
    if backend == "postgresql":
        return f"-- first: CREATE ROLE {_pg_ident(user)} LOGIN PASSWORD '…';  (no SUPERUSER, CREATEDB or CREATEROLE)"
    return f"-- first: CREATE USER {_mysql_string(user)}@{_mysql_string(host)} IDENTIFIED BY '…';"


def least_privilege_grants(server: str | URL, database: str | None = None, schema: str | None = None,
                           user: str = DEFAULT_USER, host: str = "%") -> list[str]:
    """The GRANT statements (preceded by a comment on creating the account) for `database` on `server`."""
    url = parse_url(server) if isinstance(server, str) else server
    backend = url.get_backend_name()
    if backend == "sqlite":
        raise DbauditError("SQLite has no accounts: dbaudit opens its files read-only (mode=ro)")
    database = database or url.database
    if not database:
        raise DbauditError("name the database to audit: --database DB (or /DB in the URL)")
    # MariaDB/MySQL: the server is enough (the database may not exist yet); PostgreSQL connects to a database.
    engine = create_audit_engine(url if backend == "postgresql" else url._replace(database=None))
    try:
        with engine.connect() as conn:
            version = str(conn.exec_driver_sql("SELECT VERSION()").scalar_one())
    except DBAPIError as exc:
        raise DbauditError(f"cannot connect to {mask_url(url)}: {describe_db_error(exc)}") from None
    finally:
        engine.dispose()
    if backend == "postgresql":
        statements = postgres_grants(database, schema or "public", user)
    elif backend in ("mysql", "mariadb"):
        statements = mysql_grants(database, version, user, host)
    else:
        raise DbauditError(f"no grants known for {backend}")
    return [create_user_hint(backend, user, host), *statements]

