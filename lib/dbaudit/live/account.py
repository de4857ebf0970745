"""What the audit account may do and see (issue #9, classes 3 and 4): read from the server's own grants.

Three questions, answered per dialect inside the audit session:

- *privileged*: rights beyond reading the audited database (superuser, FILE, SUPER, CREATEROLE, server
  file and program roles …). Code a table owner wrote (a view's function, a metric's callee) runs with
  the account's rights, so metrics refuse such an account unless the operator says --allow-privileged.
- *writes*: rights to change the audited database; the snapshot records and prints them as a warning.
- *visibility*: whether every table, view, trigger and routine (and its definition) could be read.
  MariaDB/MySQL filter information_schema by privilege without a word: with SELECT and SHOW VIEW only,
  the triggers and routines of the database read as none at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from dbaudit.core.snapshot import COMPLETE, HIDDEN, NAMES, OBJECT_CLASSES, PARTIAL, Account
from dbaudit.live.connect import AuditSession, describe_db_error


@dataclass
class Rights:
    account: Account
    visibility: dict[str, str] = field(default_factory=dict)


def read_rights(session: AuditSession) -> Rights:
    readers = {"mysql": _mysql_rights, "postgresql": _postgres_rights}
    reader = readers.get(session.dialect.name)
    if reader is None:  # SQLite: no accounts, the file is opened read-only (mode=ro)
        return Rights(Account(""), dict.fromkeys(OBJECT_CLASSES, COMPLETE))
    return reader(session)


# --- MySQL / MariaDB ------------------------------------------------------------------------------

#: Privileges that change nothing (and the ones that only show more): all others can write something.
MYSQL_READ_PRIVILEGES = frozenset({
    "USAGE", "SELECT", "SHOW VIEW", "SHOW DATABASES", "PROCESS", "EXECUTE", "LOCK TABLES", "REPLICATION CLIENT",
    "BINLOG MONITOR", "SLAVE MONITOR", "REPLICA MONITOR", "SHOW_ROUTINE", "SHOW CREATE ROUTINE",
})
_GRANT = re.compile(r"^GRANT\s+(?P<privileges>.+?)\s+ON\s+(?:(?:FUNCTION|PROCEDURE|PACKAGE(?:\s+BODY)?)\s+)?"
                    r"(?P<scope>\S+)\s+TO\s", re.IGNORECASE | re.DOTALL)
_PART = r"(?:`(?:[^`]|``)*`|[^.`\s]+)"
_SCOPE = re.compile(rf"^(?P<db>{_PART})\.(?P<object>{_PART})$")


@dataclass(frozen=True)
class Grant:
    privileges: frozenset[str]
    db: str  # "*" for global
    object: str  # "*" for the whole database
    grantable: bool = False

    def label(self, privilege: str) -> str:
        db = "*" if self.db == "*" else f"`{self.db}`"
        obj = "*" if self.object == "*" else f"`{self.object}`"
        return f"{privilege} on {db}.{obj}"


def parse_grants(lines: Iterable[str]) -> list[Grant]:
    """SHOW GRANTS lines as grants (role grants, `GRANT role TO user`, carry no privileges of their own)."""
    grants = []
    for line in lines:
        found = _GRANT.match(line.strip())
        scope = _SCOPE.match(found.group("scope")) if found else None
        if not found or not scope:
            continue
        privileges = frozenset(_privileges(found.group("privileges")))
        grantable = bool(re.search(r"\bWITH\b.*\bGRANT\s+OPTION\b", line, re.IGNORECASE))
        grants.append(Grant(privileges, _unquote(scope.group("db")), _unquote(scope.group("object")), grantable))
    return grants


def _privileges(text: str) -> list[str]:
    """`SELECT (a, b), INSERT, ALL PRIVILEGES` -> SELECT, INSERT, ALL (column lists dropped)."""
    names = [" ".join(part.split()).upper() for part in re.sub(r"\([^)]*\)", "", text).split(",")]
    return ["ALL" if n == "ALL PRIVILEGES" else n for n in names if n]


def _unquote(part: str) -> str:
    return part[1:-1].replace("``", "`") if part.startswith("`") else part


def _like(pattern: str, name: str) -> bool:
    """A database-level grant's name is a LIKE pattern (`shop\\_%`): `_` and `%` are wildcards."""
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c[-1])
                    for c in re.findall(r"\\.|.", pattern))
    return re.fullmatch(regex, name, re.DOTALL) is not None


def mysql_assessment(grants: list[Grant], database: str, mariadb: bool = True) -> Rights:
    """Rights of an account from its grants, for one audited database (pure: tested without a server)."""
    glob = [g for g in grants if g.db == "*"]
    on_db = [g for g in grants if g.db != "*" and g.object == "*" and _like(g.db, database)]
    on_objects = [g for g in grants if g.db == database and g.object != "*"]
    broad = frozenset().union(*(g.privileges for g in glob + on_db))
    narrow = frozenset().union(*(g.privileges for g in on_objects))
    everything = "ALL" in broad

    privileged = [g.label(p) for g in glob for p in sorted(g.privileges) if p not in MYSQL_READ_PRIVILEGES]
    privileged += [g.label("GRANT OPTION") for g in glob if g.grantable]
    privileged += [g.label(p) for g in grants if g.db != "*" and _like(g.db, "mysql")
                   for p in sorted(g.privileges) if p not in MYSQL_READ_PRIVILEGES]
    writes = [g.label(p) for g in glob + on_db + on_objects for p in sorted(g.privileges)
              if p not in MYSQL_READ_PRIVILEGES]

    def has(privilege: str, within: frozenset[str] = broad) -> bool:
        return everything or privilege in within or ("ALL" in within)

    seen_any = bool(broad - {"USAGE"})
    tables = COMPLETE if seen_any else PARTIAL if narrow else HIDDEN
    views = tables if tables != COMPLETE else (COMPLETE if has("SHOW VIEW") else NAMES)
    triggers = COMPLETE if has("TRIGGER") else PARTIAL if has("TRIGGER", narrow) else HIDDEN
    global_read = frozenset().union(*(g.privileges for g in glob))
    proc_read = frozenset().union(*(g.privileges for g in grants if g.db == "mysql" and g.object in ("*", "proc")))
    bodies = ("ALL" in global_read or "SELECT" in global_read or "SELECT" in proc_read
              or "SHOW_ROUTINE" in global_read or "SHOW CREATE ROUTINE" in broad)
    listed = everything or bool(broad & {"EXECUTE", "ALTER ROUTINE", "CREATE ROUTINE"})
    routines = (COMPLETE if bodies else NAMES) if listed else (PARTIAL if narrow else HIDDEN)
    return Rights(Account("", writes, privileged),
                  {"tables": tables, "views": views, "triggers": triggers, "routines": routines})


_ROLE_GRANT = re.compile(r"^GRANT\s+((?:`(?:[^`]|``)+`(?:@`[^`]*`)?\s*,?\s*)+)\s+TO\s", re.IGNORECASE)


def _grants_with_roles(conn: Connection) -> tuple[list[str], list[str]]:
    """SHOW GRANTS, plus the grants of every role the account holds, active or not (code the audit runs
    could switch to one with SET ROLE, so their rights count as the account's own), and the roles whose
    grants the server would not show (counted as privileged: their rights are unknown)."""
    lines = [str(r[0]) for r in conn.exec_driver_sql("SHOW GRANTS").all()]
    seen: set[str] = set()
    unreadable: list[str] = []
    pending = list(lines)
    while pending:
        found = _ROLE_GRANT.match(pending.pop().strip())
        for role in re.findall(r"`(?:[^`]|``)+`(?:@`[^`]*`)?", found.group(1)) if found else []:
            if role in seen or len(seen) > 50:
                continue
            seen.add(role)
            try:
                more = [str(r[0]) for r in conn.exec_driver_sql(f"SHOW GRANTS FOR {role}").all()]
            except DBAPIError:
                unreadable.append(role)
                continue
            lines += more
            pending += more
    return list(dict.fromkeys(lines)), unreadable  # an active role's grants are in SHOW GRANTS already


def _mysql_rights(session: AuditSession) -> Rights:
    conn = session.connection
    user = str(conn.exec_driver_sql("SELECT CURRENT_USER()").scalar_one())
    try:
        lines, unreadable = _grants_with_roles(conn)
    except DBAPIError as exc:
        # Rights unknown: metrics are refused as if privileged, and visibility stays unknown.
        return Rights(Account(user, [], [f"rights dbaudit could not read (SHOW GRANTS: {describe_db_error(exc)})"]))
    rights = mysql_assessment(parse_grants(lines), session.database)
    rights.account.user = user
    rights.account.privileged += [f"role {role} (its grants are not shown to this account)" for role in unreadable]
    return rights


# --- PostgreSQL -----------------------------------------------------------------------------------

# Predefined roles that reach the server's files and programs (COPY … TO PROGRAM, pg_read_file …).
_PG_SERVER_ROLES = ("pg_execute_server_program", "pg_write_server_files", "pg_read_server_files")

_PG_ACCOUNT = """
SELECT CURRENT_USER::pg_catalog.text AS name, r.rolsuper AS super, r.rolcreaterole AS createrole,
       pg_catalog.has_schema_privilege(%(schema)s::pg_catalog.text, 'CREATE') AS schema_create,
       pg_catalog.has_database_privilege(pg_catalog.current_database(), 'CREATE') AS database_create
FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER
"""

_PG_SERVER_ROLE_MEMBERSHIP = """
SELECT r.rolname::pg_catalog.text AS name FROM pg_catalog.pg_roles r
WHERE r.rolname OPERATOR(pg_catalog.=) ANY (%(roles)s::pg_catalog.name[])
  AND pg_catalog.pg_has_role(CURRENT_USER, r.oid, 'MEMBER')
"""

# Tables, views and sequences of the schema the account owns (so may ALTER or DROP) or may change.
_PG_WRITABLE = """
SELECT
  pg_catalog.count(*) FILTER (WHERE pg_catalog.pg_has_role(CURRENT_USER, c.relowner, 'USAGE')) AS owned,
  pg_catalog.count(*) FILTER (WHERE pg_catalog.has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE'))
    AS writable
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
WHERE n.nspname OPERATOR(pg_catalog.=) %(schema)s::pg_catalog.name AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
"""


def _pg_one(conn: Connection, sql: str, **params: object) -> dict[str, object]:
    found = conn.exec_driver_sql(sql, params).mappings().one()
    return dict(found)


def _postgres_rights(session: AuditSession) -> Rights:
    conn, schema = session.connection, session.schema or "public"
    me = _pg_one(conn, _PG_ACCOUNT, schema=schema)
    server_roles = [str(r["name"]) for r in
                    conn.exec_driver_sql(_PG_SERVER_ROLE_MEMBERSHIP, {"roles": list(_PG_SERVER_ROLES)}).mappings()]
    privileged = (["superuser"] if me["super"] else []) + (["CREATEROLE"] if me["createrole"] else [])
    privileged += [f"member of {role}" for role in server_roles]
    counts = _pg_one(conn, _PG_WRITABLE, schema=schema)
    writes = ["superuser"] if me["super"] else []
    writes += [f"owns {counts['owned']} relation(s) in schema {schema}"] if counts["owned"] else []
    writes += [f"INSERT/UPDATE/DELETE/TRUNCATE on {counts['writable']} relation(s) in schema {schema}"] \
        if counts["writable"] else []
    writes += [f"CREATE on schema {schema}"] if me["schema_create"] else []
    writes += ["CREATE on the database"] if me["database_create"] else []
    # The catalog (pg_class, pg_trigger, pg_proc, pg_get_*def) is readable by every role.
    return Rights(Account(str(me["name"]), writes, privileged), dict.fromkeys(OBJECT_CLASSES, COMPLETE))

