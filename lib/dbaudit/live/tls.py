"""PyMySQL's TLS-preferred connections, without building the same TLS context for every connection.

PyMySQL 1.1+ connects TLS-preferred when a URL names no TLS option: every connection builds an
`ssl.create_default_context()` (certificate checks off) whether or not the server offers TLS, and loading
the system's CA store for it costs 20-60 ms of CPU each time. restore-check opens a dozen connections
(the load, its watchdog, the early readers, the snapshot, the account's set-up and clean-up), so that was
a tenth of a plain restore's time. The context of that mode is built from constants only; sharing one is
what the `ssl` module intends (an SSLContext serves any number of connections, from any thread). Explicit
TLS options (`ssl_ca`, `ssl_verify_cert` …) still get their own context, as PyMySQL builds it.
"""

from __future__ import annotations

import ssl
import threading
from typing import Any

import pymysql

_lock = threading.Lock()
_shared: dict[str, ssl.SSLContext] = {}


def share_preferred_context() -> None:
    """Make every later PyMySQL connection of this process that has no TLS option use one shared context."""
    connection: Any = pymysql.connections.Connection
    original = connection._create_ssl_ctx
    if getattr(original, "dbaudit_shared", False):
        return

    def create(self: Any, sslp: Any) -> ssl.SSLContext:
        if isinstance(sslp, dict) and not sslp:  # the TLS-preferred mode: no CA, no certificate check
            with _lock:
                if "preferred" not in _shared:
                    _shared["preferred"] = original(self, sslp)
                return _shared["preferred"]
        return original(self, sslp)

    create.dbaudit_shared = True  # type: ignore[attr-defined]
    connection._create_ssl_ctx = create
