"""The application's migrations ledger as a snapshot records it: which migrations the database says ran.

Every migration tool keeps one (Laravel `migrations`, Alembic `alembic_version`, Django
`django_migrations`, Rails `schema_migrations`, Flyway `flyway_schema_history`, Liquibase
`DATABASECHANGELOG`). dbaudit.live.ledger reads it inside the snapshot's read-only transaction;
dbaudit.audit.diff turns two of them into `migration_applied` / `migration_rolled_back` changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

APPLIED, FAILED, UNDONE = "applied", "failed", "undone"


@dataclass
class LedgerEntry:
    name: str  # as the tool names it: Laravel file name, Django app.name, Flyway script, Liquibase file::id::author
    batch: int | None = None  # Laravel batch, Flyway installed_rank, Liquibase ORDEREXECUTED
    status: str = APPLIED  # applied | failed (Flyway success=false, Liquibase FAILED) | undone (Flyway undo)
    detail: str = ""  # what else identifies the run: checksum, exec type, applied time


@dataclass
class Ledger:
    tool: str  # laravel, alembic, django, rails, flyway, liquibase
    table: str  # the table it was read from (its row count is then judged with the migrations, see docs/expect.md)
    entries: list[LedgerEntry] = field(default_factory=list)
    history: bool = True  # False: the tool keeps only the current head(s) (Alembic), not every migration

    def applied(self) -> dict[str, LedgerEntry]:
        """The migrations in effect, by name (the last entry of a name wins: Flyway appends re-runs and undos)."""
        found: dict[str, LedgerEntry] = {}
        for entry in self.entries:
            if entry.status == APPLIED:
                found[entry.name] = entry
            elif entry.status == UNDONE:
                found.pop(entry.name, None)
        return found

    def failed(self) -> set[str]:
        return {e.name for e in self.entries if e.status == FAILED}
