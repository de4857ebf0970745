"""The temporary restore account and scratch database: created journaled, dropped always, found again after a crash.

The account gets the privileges a restore needs on the scratch database and nothing else (no GRANT OPTION,
no FILE, nothing on another database); its random password lives in this process only. On MariaDB it is
created `IDENTIFIED BY PASSWORD '*…'` (the hash computed here), so the password itself never reaches the
server's logs either. The scratch database carries a random marker as its comment (MariaDB 10.5+), which
is what lets a later run prove that a database of that name is the one a dead run created.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from dbaudit.backups.scratch_journal import Journal, abandoned, forget
from dbaudit.core.errors import DbauditError
from dbaudit.core.secrets import remember_secret
from dbaudit.live.connect import describe_db_error

ACCOUNT_PREFIX = "dbaudit_restore_"  # temporary restore accounts: easy to find if a SIGKILL leaves one
REHEARSE_ACCOUNT_PREFIX = "dbaudit_rehearse_"  # rehearse's migrate/rollback accounts (see rehearse_scratch)
BACKEND = "mysql"  # the journal's backend for MySQL and MariaDB
MARKER_PREFIX = "dbaudit restore-check "
# What restoring a dump needs on its database: tables, indexes, views, triggers, routines, events, locks.
# Not ALL PRIVILEGES: no DELETE HISTORY (MariaDB), and nothing a later server version adds to ALL; no CREATE
# TEMPORARY TABLES: no dump holds one (view placeholders are plain CREATE TABLE / CREATE VIEW), restore-check refuses
# them, and a temporary table shadows a real one unseen by information_schema.
RESTORE_PRIVILEGES = ("SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX, REFERENCES, LOCK TABLES, "
                      "CREATE VIEW, SHOW VIEW, TRIGGER, CREATE ROUTINE, ALTER ROUTINE, "
                      "EXECUTE, EVENT")
# What the reads after the restore need (snapshot, metrics, fingerprints): no writes, no DDL.
WRITE_PRIVILEGES = ("INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX, REFERENCES, LOCK TABLES, "
                    "CREATE VIEW, CREATE ROUTINE, ALTER ROUTINE, EVENT")
_NATIVE_HASH = re.compile(r"'(\*[0-9A-F]{40})'")


@dataclass
class RestoreAccount:
    """A temporary account limited to one scratch database. Its password is never printed or written."""

    user: str
    host: str
    password: str = field(repr=False)
    marker: str = ""  # what proves the account on the server is this one (see scratch_journal)

    def __str__(self) -> str:
        return f"'{self.user}'@'{self.host}'"

    def url(self, server: URL, database: str) -> URL:
        """`server` (host, port, socket, TLS options: connected the same way) as this account, on `database`."""
        return server.set(username=self.user, password=self.password, database=database)


def native_hash(password: str) -> str:
    """mysql_native_password's stored form: '*' + SHA1(SHA1(password)), upper-case hex."""
    return "*" + hashlib.sha1(hashlib.sha1(password.encode()).digest()).hexdigest().upper()


def _marker_of_hash(stored: str) -> str:
    return hashlib.sha256(stored.encode()).hexdigest()


def server_identity(conn: sa.Connection) -> str:
    """Which server this is, however it is reached (TCP, socket, another host name)."""
    row = conn.exec_driver_sql("SELECT @@hostname, @@port, @@datadir").one()
    return hashlib.sha256("|".join(str(v) for v in row).encode()).hexdigest()[:32]


def quote(conn: sa.Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote_identifier(name)


def _grant_pattern(conn: sa.Connection, scratch: str) -> str:
    # In a database-level GRANT, _ and % are wildcards: `a_b`.* would also cover a database called axb.
    return quote(conn, scratch.replace("_", "\\_").replace("%", "\\%"))


def _is_mariadb(conn: sa.Connection) -> bool:
    return "mariadb" in str(conn.exec_driver_sql("SELECT VERSION()").scalar_one()).lower()


def new_password() -> str:
    """A random password for a temporary account, registered for masking. Nine characters of each class:
    passes password-strength plugins, and needs no quoting anywhere."""
    password = "".join(secrets.choice(c) for c in ("ABCDEFGHJKLMNPQRSTUVWXYZ", "abcdefghijkmnopqrstuvwxyz",
                                                     "23456789") for _ in range(9)) + "_-."
    remember_secret(password)  # masked should a driver error or a command's output ever repeat it
    return password


def create_account(conn: sa.Connection, scratch: str, journal: Journal, *,
                   privileges: str = RESTORE_PRIVILEGES, prefix: str | None = None,
                   purpose: str = "restore-check restores", name: str | None = None) -> RestoreAccount:
    """A fresh account `<prefix><random>` with `privileges` on `scratch`.* only, journaled (with its proof) before
    it exists. Refused (never the connecting account instead) when the connecting account may not create it.
    `purpose` opens the refusal ("rehearse migrates"). `prefix` is read when called: ACCOUNT_PREFIX by default.
    `name`: the account's whole name instead (rehearse takes the name of restore-check's dropped account)."""
    password = new_password()
    me = str(conn.exec_driver_sql("SELECT USER()").scalar_one())
    # The host the server sees this machine as: '%' could lose to an anonymous ''@'localhost'.
    name = name or f"{ACCOUNT_PREFIX if prefix is None else prefix}{secrets.token_hex(6)}"
    account = RestoreAccount(name, me.rpartition("@")[2] or "%", password)
    mariadb = _is_mariadb(conn)
    token = secrets.token_hex(16)
    account.marker = _marker_of_hash(native_hash(password)) if mariadb else MARKER_PREFIX + token
    journal.record(account_user=account.user, account_host=account.host, account_marker=account.marker)
    try:
        _create_user(conn, account, mariadb)
    except DBAPIError as exc:
        journal.record(account_user=None, account_host=None, account_marker=None)
        raise DbauditError(
            f"{purpose} as a temporary account limited to the scratch database, and {me} may "
            f"not create it ({describe_db_error(exc)}): it needs the CREATE USER privilege and GRANT OPTION "
            f"(GRANT CREATE USER ON *.* TO …; GRANT ALL ON `{scratch}`.* TO … WITH GRANT OPTION)") from None
    try:
        conn.exec_driver_sql(f"GRANT {privileges} ON {_grant_pattern(conn, scratch)}.* TO %s@%s",
                             (account.user, account.host))
    except DBAPIError as exc:
        drop_account(conn, account, journal)
        raise DbauditError(
            f"{purpose} as a temporary account limited to the scratch database, and {me} may "
            f"not grant it {privileges} on {scratch} ({describe_db_error(exc)}): it needs GRANT OPTION "
            f"(GRANT ALL ON `{scratch}`.* TO … WITH GRANT OPTION)") from None
    return account


def _create_user(conn: sa.Connection, account: RestoreAccount, mariadb: bool) -> None:
    if mariadb:
        try:
            conn.exec_driver_sql("CREATE USER %s@%s IDENTIFIED BY PASSWORD %s",
                                 (account.user, account.host, native_hash(account.password)))
            return
        except DBAPIError as exc:
            if getattr(exc.orig, "args", (0,))[0] != 1819:  # ER_NOT_VALID_PASSWORD: a strict validation plugin
                raise
        conn.exec_driver_sql("CREATE USER %s@%s IDENTIFIED BY %s", (account.user, account.host, account.password))
        return
    conn.exec_driver_sql("CREATE USER %s@%s IDENTIFIED BY %s COMMENT %s",
                         (account.user, account.host, account.password, account.marker))


def revoke_writes(conn: sa.Connection, account: RestoreAccount, scratch: str) -> None:
    """After the load: the reads that follow (snapshot, metrics, fingerprints) run with SELECT, SHOW VIEW,
    TRIGGER and EXECUTE only, so nothing the dump defined can change the restored data while it is checked."""
    conn.exec_driver_sql(f"REVOKE {WRITE_PRIVILEGES} ON {_grant_pattern(conn, scratch)}.* FROM %s@%s",
                         (account.user, account.host))


def kill_sessions(conn: sa.Connection, user: str) -> None:
    """End every session of `user` (a dropped account's open sessions would otherwise live on)."""
    try:
        ids = conn.exec_driver_sql("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = %s",
                                   (user,)).scalars().all()
    except DBAPIError:
        return
    for thread in ids:
        with contextlib.suppress(DBAPIError):  # it may have ended already
            conn.exec_driver_sql(f"KILL CONNECTION {int(thread)}")


def drop_account(conn: sa.Connection, account: RestoreAccount, journal: Journal | None = None) -> None:
    """End the account's sessions and drop it; then, given its `journal`, strike it from the entry."""
    kill_sessions(conn, account.user)
    try:
        conn.exec_driver_sql("DROP USER IF EXISTS %s@%s", (account.user, account.host))
    except DBAPIError as exc:
        raise DbauditError(f"drop user {account}: {describe_db_error(exc)} (drop it by hand)") from None
    if journal is not None:
        journal.record(account_user=None, account_host=None, account_marker=None)


def create_scratch(conn: sa.Connection, scratch: str, journal: Journal) -> None:
    marker = MARKER_PREFIX + secrets.token_hex(16)
    journal.record(scratch=scratch, scratch_marker=marker)
    try:
        if _is_mariadb(conn):
            conn.exec_driver_sql(f"CREATE DATABASE {quote(conn, scratch)} CHARACTER SET utf8mb4 COMMENT %s", (marker,))
        else:
            conn.exec_driver_sql(f"CREATE DATABASE {quote(conn, scratch)} CHARACTER SET utf8mb4")
    except DBAPIError as exc:
        journal.record(scratch=None, scratch_marker=None)
        raise DbauditError(f"create database {scratch}: {describe_db_error(exc)}") from None


def drop_scratch(conn: sa.Connection, scratch: str) -> None:
    try:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quote(conn, scratch)}")
    except DBAPIError as exc:
        raise DbauditError(f"drop database {scratch}: {describe_db_error(exc)} (drop it by hand)") from None


def _scratch_is_ours(conn: sa.Connection, scratch: str, marker: str) -> bool:
    try:
        comment = conn.exec_driver_sql("SELECT SCHEMA_COMMENT FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s",
                                       (scratch,)).scalar()
    except DBAPIError:
        return False  # MySQL: no database comments, so nothing can be proven
    return comment == marker


def _account_is_ours(conn: sa.Connection, user: str, host: str, marker: str) -> bool:
    if not user.startswith((ACCOUNT_PREFIX, REHEARSE_ACCOUNT_PREFIX)):  # a journal never points elsewhere
        return False
    try:
        if marker.startswith(MARKER_PREFIX):
            found = conn.exec_driver_sql("SELECT ATTRIBUTE FROM information_schema.USER_ATTRIBUTES "
                                         "WHERE USER = %s AND HOST = %s", (user, host)).scalar()
            return found is not None and marker in str(found)
        shown = str(conn.exec_driver_sql("SHOW CREATE USER %s@%s", (user, host)).scalar())
    except DBAPIError:
        return False  # gone already, or no right to look: not provable
    m = _NATIVE_HASH.search(shown)
    return m is not None and _marker_of_hash(m[1]) == marker


def clean_abandoned(conn: sa.Connection, server: str) -> list[str]:
    """Drop what dead runs against this server left and can be proven theirs; what was dropped, one line each.
    What cannot be proven (its marker differs or cannot be read) is left alone and named as left."""
    done: list[str] = []
    with abandoned(BACKEND, server) as entries:
        for entry, lock_path in entries:
            clean = True
            account = None
            if entry.account_user and entry.account_host and entry.account_marker:
                if _account_is_ours(conn, entry.account_user, entry.account_host, entry.account_marker):
                    account = RestoreAccount(entry.account_user, entry.account_host, "")
                    kill_sessions(conn, account.user)  # a statement still running holds the scratch tables' locks
                elif _account_exists(conn, entry.account_user, entry.account_host):
                    clean = False
                    done.append(f"left account '{entry.account_user}'@'{entry.account_host}' (named by dead run "
                                f"{entry.run}): it cannot be proven {entry.purpose}'s; drop it by hand")
            if entry.scratch and entry.scratch_marker:
                if _scratch_is_ours(conn, entry.scratch, entry.scratch_marker):
                    drop_scratch(conn, entry.scratch)
                    done.append(f"dropped scratch database {entry.scratch} left by {entry.purpose} run {entry.run}")
                elif _exists(conn, entry.scratch):
                    clean = False
                    done.append(f"left database {entry.scratch} (named by dead run {entry.run}): its marker does not "
                                f"prove {entry.purpose} created it; drop it by hand if it is")
            if account is not None:
                drop_account(conn, account)
                done.append(f"dropped account {account} left by {entry.purpose} run {entry.run}")
            if clean:
                forget(lock_path)
    return done


def _exists(conn: sa.Connection, scratch: str) -> bool:
    return bool(conn.exec_driver_sql("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s",
                                     (scratch,)).scalar())


def _account_exists(conn: sa.Connection, user: str, host: str) -> bool:
    try:
        return bool(conn.exec_driver_sql("SELECT COUNT(*) FROM mysql.user WHERE User = %s AND Host = %s",
                                         (user, host)).scalar())
    except DBAPIError:
        return True  # cannot tell: keep the entry


@dataclass
class ScratchRestore:
    """A scratch database and the temporary account restoring into it; `keep` may be cleared by the caller."""

    scratch: str
    account: RestoreAccount
    keep: bool = False
    leftovers: list[str] = field(default_factory=list)  # what killed earlier runs left (see clean_abandoned)

    def url(self, server: URL) -> URL:
        return self.account.url(server, self.scratch)


@contextmanager
def scratch_restore(engine: sa.Engine, scratch: str, *, keep: bool = False,
                    journal: Journal | None = None) -> Iterator[ScratchRestore]:
    """Drop what killed earlier runs left (clean_abandoned), create the temporary account and the scratch database
    (journaled first; a scratch database that exists already is refused), yield both; afterwards end the
    account's sessions and drop it always, and the scratch database unless `keep` is still set and the block
    ended without an exception. The journal entry goes only once both are gone: else the next run drops them.

    With a caller's `journal` (rehearse: it goes on with the kept database), that entry is used and left open, and
    a kept scratch database stays in it: the caller drops it, or strikes it from the entry when it is handed over."""
    own = journal is None
    handle: ScratchRestore | None = None
    created = completed = False
    try:
        with _autocommit(engine) as conn:
            identity = server_identity(conn)
            leftovers = clean_abandoned(conn, identity)
            if journal is None:
                journal = Journal(BACKEND, identity, "restore-check")
            handle = ScratchRestore(scratch, create_account(conn, scratch, journal), keep, leftovers)
            create_scratch(conn, scratch, journal)
            created = True
        yield handle
        completed = True
    finally:
        if journal is not None:
            kept = created and handle is not None and handle.keep and completed
            with _autocommit(engine) as conn:
                if handle is not None:
                    kill_sessions(conn, handle.account.user)  # a load still running would hold its locks
                if created and not kept:
                    drop_scratch(conn, scratch)
                if own or not kept:
                    journal.record(scratch=None, scratch_marker=None)
                if handle is not None:
                    drop_account(conn, handle.account, journal)
            if own:
                journal.close()


@contextmanager
def _autocommit(engine: sa.Engine) -> Iterator[sa.Connection]:
    try:
        with engine.connect() as conn:
            yield conn.execution_options(isolation_level="AUTOCOMMIT")
    except DBAPIError as exc:
        raise DbauditError(f"cannot prepare the restore: {describe_db_error(exc)}") from None
