"""What the MariaDB restore-check tests share: each test's own state folder (so its scratch journal is its own) and
uniquely named scratch databases, dropped by name."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa


@pytest.fixture(autouse=True)
def private_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's own restore journal: another session's runs are none of its business."""
    state = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    return state


def new_name(tag: str) -> str:
    return f"dbaudit_t_{tag}_{uuid.uuid4().hex[:8]}"


def databases(server: sa.Engine) -> set[str]:
    with server.connect() as conn:
        return {r[0] for r in conn.exec_driver_sql("SHOW DATABASES")}


def drop_databases(server: sa.Engine, *names: str) -> None:
    with server.connect() as conn:
        for name in names:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
