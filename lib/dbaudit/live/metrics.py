"""Metric SQL from expectations YAML: a real parse (sqlglot) instead of patterns, and least privilege.

A metric is the operator's SQL, but what it reads is not: a view or function a table owner wrote runs with
the audit account's rights. So two walls (docs/security.md):

1. The text must be one plain query. sqlglot parses it in the server's dialect; anything but a single
   SELECT / WITH … SELECT / set operation is refused, and so is every clause a read-only transaction still
   lets through: INTO (OUTFILE, DUMPFILE, @var, a new table), locking clauses, `:=` assignments, data-changing
   CTEs, and built-ins with side effects outside the database (files, locks, settings, signals,
   SQL run from a string). MySQL/MariaDB run the text of `/*! … */` and `/*M! … */` comments, which any
   parser skips as comments, so those comments are refused outright, as are OUTFILE/DUMPFILE anywhere.
2. The account must hold no rights beyond its database (see dbaudit.live.account); otherwise metrics
   are refused unless the operator passes allow_privileged (CLI --allow-privileged).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from dbaudit.core.errors import DbauditError
from dbaudit.live.account import Rights
from dbaudit.live.connect import AuditSession

_SQLGLOT_DIALECT = {"mysql": "mysql", "postgresql": "postgres", "sqlite": "sqlite"}
_EXECUTABLE_COMMENT = re.compile(r"/\*\s*M?!")
_FILE_WORDS = re.compile(r"\b(OUTFILE|DUMPFILE)\b", re.IGNORECASE)

# Built-ins that act outside the snapshot's read: files, programs, locks, settings, signals,
# sequences, notifications, other servers, or SQL run from a string (which no parse here can see).
_FORBIDDEN_FUNCTIONS = re.compile(
    r"^(load_file|get_lock|release_lock|release_all_locks|is_used_lock|master_pos_wait"
    r"|source_pos_wait|master_gtid_wait|sys_exec|sys_eval|sys_get|sys_set|pg_read_file|pg_read_binary_file"
    r"|pg_ls_\w+|pg_stat_file|pg_file_\w+|lo_\w+|dblink\w*|pg_advisory\w*|pg_try_advisory\w*"
    r"|set_config|pg_terminate_backend|pg_cancel_backend|pg_reload_conf|pg_rotate_logfile\w*|pg_switch_wal"
    r"|pg_notify|\w+_to_xml\w*|query_to_\w+|pg_logical_\w+|nextval|setval|currval|lastval|txid_current\w*"
    r"|pg_current_xact_id\w*|pg_create_\w+|pg_drop_\w+|pg_promote|pg_log_\w+|pg_import_system_collations"
    r"|pg_replication_\w+|pg_export_snapshot|pg_backup_\w+|pg_start_backup|pg_stop_backup|pg_wal_replay_\w+)$",
    re.IGNORECASE,
)
_WRITES = (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop, exp.Alter, exp.Command,
           exp.Set, exp.Transaction, exp.Commit, exp.Rollback, exp.TruncateTable, exp.Copy)


def check_metric_sql(metrics: Mapping[str, object], dialect: str) -> None:
    """Refuse (DbauditError) any metric that is not one plain read, before anything is sent to a server."""
    for name, sql in metrics.items():
        problem = metric_problem(sql, dialect)
        if problem:
            raise DbauditError(f"metric {name!r} {problem}")


def metric_problem(sql: object, dialect: str) -> str | None:
    """Why `sql` may not run as a metric on `dialect` (mysql, postgresql, sqlite); None when it may."""
    if not isinstance(sql, str) or not sql.strip():
        return "must be a single SELECT (or WITH …) query"
    if dialect == "mysql" and _EXECUTABLE_COMMENT.search(sql):
        return "must only read: an executable comment ('/*!' or '/*M!') is not allowed"
    found = _FILE_WORDS.search(sql)
    if found:  # anywhere, even in a comment or a string: a false alarm costs a rewording, a miss a file
        return f"must only read: 'INTO {found.group(1).upper()}' is not allowed"
    try:
        statements = [s for s in sqlglot.parse(sql, read=_SQLGLOT_DIALECT.get(dialect, dialect)) if s is not None]
    except SqlglotError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"must be a single SELECT (or WITH …) query that dbaudit can parse ({first})"
    if len(statements) > 1:
        return "must only read: a second statement is not allowed"
    if not statements or not _is_query(statements[0]):
        return "must be a single SELECT (or WITH …) query"
    return _side_effect(statements[0])


def _is_query(tree: exp.Expr) -> bool:
    while isinstance(tree, exp.Subquery):  # (SELECT …)
        tree = tree.this
    return isinstance(tree, (exp.Select, exp.Union, exp.Intersect, exp.Except))


def _side_effect(tree: exp.Expr) -> str | None:
    for node in tree.walk():
        if isinstance(node, exp.Into):
            return f"must only read: 'INTO {node.this.sql() if node.this else ''}' is not allowed"
        if isinstance(node, exp.Lock):
            clause = "FOR UPDATE" if node.args.get("update") else "FOR SHARE / LOCK IN SHARE MODE"
            return f"must only read: a locking clause ({clause}) is not allowed"
        if isinstance(node, exp.PropertyEQ):
            return "must only read: assigning a variable (':=') is not allowed"
        if isinstance(node, _WRITES):
            return f"must only read: {type(node).__name__.upper()} inside the query is not allowed"
        if isinstance(node, exp.Func):
            function = node.name if isinstance(node, exp.Anonymous) else node.sql_name()
            if _FORBIDDEN_FUNCTIONS.match(function or ""):
                return f"must only read: calling {function}() is not allowed (it acts outside the read)"
    return None


# SQL modes that change how the server *tokenizes* (quotes, escapes, comments), so that the text sqlglot
# checked would not be the statement the server runs; MariaDB's compatibility modes change the grammar.
_LEXING_MODES = frozenset({"NO_BACKSLASH_ESCAPES", "ANSI_QUOTES", "ANSI", "ORACLE", "MSSQL", "DB2", "POSTGRESQL",
                           "MAXDB", "IGNORE_SPACE"})


def lex_as_parsed(session: AuditSession) -> None:
    """Make the server read metric text as the check above read it (before any metric runs).

    MySQL/MariaDB: drop the SQL modes that change tokenizing, keeping the rest (ONLY_FULL_GROUP_BY …).
    PostgreSQL: standard_conforming_strings on, so a backslash in '…' is a plain character, as sqlglot has it."""
    conn = session.connection
    if session.dialect.name == "mysql":
        modes = str(conn.exec_driver_sql("SELECT @@SESSION.sql_mode").scalar_one() or "")
        kept = ",".join(m for m in modes.split(",") if m and m.upper() not in _LEXING_MODES)
        if kept != modes:
            conn.exec_driver_sql("SET SESSION sql_mode = %(modes)s", {"modes": kept})
    elif session.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL standard_conforming_strings = on")


def refuse_privileged(rights: Rights, metrics: Mapping[str, object], allow_privileged: bool) -> None:
    """Metrics run code the audited database's owners wrote: never with rights beyond the database."""
    if not metrics or allow_privileged or not rights.account.privileged:
        return
    held = ", ".join(rights.account.privileged[:4]) + (" …" if len(rights.account.privileged) > 4 else "")
    raise DbauditError(
        f"refusing to run metrics as {rights.account.user or 'this account'}, which holds {held}: a view or "
        "function the metrics read would run with those rights. Use an account with the grants "
        "`dbaudit grants` prints, or pass --allow-privileged (notebooks: allow_privileged=True) to accept the risk")
