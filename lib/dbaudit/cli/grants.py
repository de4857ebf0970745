"""`dbaudit grants`: the least-privilege account an audit needs, as GRANT statements to run as an admin."""

from __future__ import annotations

import argparse
from typing import Any

from dbaudit.cli.common import EXIT_PASS, say


def add_commands(sub: Any) -> None:
    cmd = sub.add_parser("grants", help="print the least-privilege GRANT statements for an audit account")
    cmd.add_argument("--server", required=True, metavar="URL",
                     help="the server (SQLAlchemy URL; its database is the default for --database)")
    cmd.add_argument("--database", metavar="DB", help="the database to audit (default: the URL's)")
    cmd.add_argument("--schema", help="PostgreSQL schema to audit (default public)")
    cmd.add_argument("--user", default="dbaudit", help="the audit account's name (default dbaudit)")
    cmd.add_argument("--host", default="%", help="MariaDB/MySQL: the account's host part (default %%)")
    cmd.set_defaults(run=grants_command)


def grants_command(args: argparse.Namespace) -> int:
    from dbaudit.live.grants import least_privilege_grants

    for statement in least_privilege_grants(args.server, args.database, args.schema, args.user, args.host):
        say(statement)
    return EXIT_PASS
