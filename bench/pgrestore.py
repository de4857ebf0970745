"""Benchmark (issue #15): restore-check of a pg_dump against a plain client restore of the same file, same run.

    .venv/bin/python bench/pgrestore.py [--rows N] [--rounds N] [--json OUT]

Builds `dbaudit_bench_pg_<random>.big` (N rows: integer key, text, numeric, timestamp) server-side, dumps it
plain and custom (`pg_dump`, `-Fc`), then per round and format times the client restore (`psql -X -1 -v
ON_ERROR_STOP=1 -f` into a fresh database; `pg_restore -1 -d` for the archive) and, right after it, the whole
`pg_restore_check` (dump-check's read of the file, the restore as a temporary role, the snapshot with exact row
counts, the drops), then again `--against` a fingerprinted snapshot of the source (the content proof: the restored
table is fingerprinted too). The ratios are the medians of the rounds' ratios (target <= 1.3).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from dbaudit.backups.pgrestore import pg_restore_check
from dbaudit.core.snapshot import Snapshot
from dbaudit.live.inspect import take_snapshot

SERVER = os.environ.get("DBAUDIT_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432")


def _client_args(url: sa.URL, database: str) -> list[str]:
    return ["-h", url.host or "127.0.0.1", "-p", str(url.port or 5432), "-U", url.username or "postgres",
            "-d", database]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    url = sa.engine.make_url(SERVER)
    server = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    source = f"dbaudit_bench_pg_{uuid.uuid4().hex[:8]}"
    results: dict[str, Any] = {"rows": args.rows, "rounds": []}
    with server.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{source}"')
    try:
        with sa.create_engine(url.set(database=source), poolclass=sa.pool.NullPool).begin() as conn:
            conn.exec_driver_sql("CREATE TABLE big (id integer PRIMARY KEY, name text, amount numeric, at timestamp)")
            conn.exec_driver_sql(f"INSERT INTO big SELECT g, md5(g::text), g * 1.5, timestamp '2020-01-01' + "
                                 f"g * interval '1 second' FROM generate_series(1, {args.rows}) g")
        with tempfile.TemporaryDirectory() as work:
            os.environ.setdefault("DBAUDIT_RESTORE_JOURNAL", str(Path(work) / "journal"))
            dumps = {"plain": Path(work) / "big.sql", "custom": Path(work) / "big.dump"}
            for form, path in dumps.items():
                subprocess.run(["pg_dump", *_client_args(url, source), "-f", str(path),
                                *(["-Fc"] if form == "custom" else [])], check=True)
            results["sizes"] = {form: path.stat().st_size for form, path in dumps.items()}
            snapshot = take_snapshot(url.set(database=source), fingerprint="table")
            results["load_average"] = [os.getloadavg()]
            for _ in range(args.rounds):
                results["rounds"].append({form: _round(server, url, source, form, path, snapshot)
                                          for form, path in dumps.items()})
                results["load_average"].append(os.getloadavg())
    finally:
        with server.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{source}" WITH (FORCE)')
    rounds = results["rounds"]
    for form in ("plain", "custom"):
        client = statistics.median(r[form]["client_s"] for r in rounds)
        for kind, label in (("", "restore-check"), ("_fp", "restore-check --against fingerprints")):
            ratios = [r[form][f"ratio{kind}"] for r in rounds]
            results[f"{form}_ratio{kind}"] = round(statistics.median(ratios), 2)
            check = statistics.median(r[form][f"restore_check{kind}_s"] for r in rounds)
            print(f"{form}: client restore {client:.2f} s, {label} {check:.2f} s, ratio "
                  f"{results[f'{form}_ratio{kind}']} (rounds {min(ratios):.2f}-{max(ratios):.2f}; target <= 1.3)")
    for form in ("plain", "custom"):
        with_db = [r[form]["restore_check_s"] / (r[form]["client_s"] + r[form]["client_create_drop_s"]) for r in rounds]
        results[f"{form}_ratio_with_createdb"] = round(statistics.median(with_db), 2)
        print(f"{form}: restore-check / (client restore + its CREATE and DROP DATABASE): "
              f"{results[f'{form}_ratio_with_createdb']} (informational)")
    loads = [one for triple in results["load_average"] for one in triple[:1]]
    print(f"load average (1 min) during the run: {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


def _round(server: sa.Engine, url: sa.URL, source: str, form: str, path: Path, snapshot: Snapshot
           ) -> dict[str, float]:
    target = f"dbaudit_bench_pg_{uuid.uuid4().hex[:8]}"
    created = time.monotonic()
    with server.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{target}" TEMPLATE template0')
    create = time.monotonic() - created
    try:
        started = time.monotonic()
        if form == "plain":
            command = ["psql", "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", *_client_args(url, target), "-f", str(path)]
        else:
            command = ["pg_restore", "-1", *_client_args(url, target), str(path)]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        client = time.monotonic() - started
    finally:
        dropped = time.monotonic()
        with server.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
        drop = time.monotonic() - dropped
    check, load = _check(url, source, path, None)
    check_fp, _ = _check(url, source, path, snapshot)
    # Informational: restore-check creates and drops its database inside its time; the client's are outside it.
    return {"client_s": round(client, 3), "client_create_drop_s": round(create + drop, 3),
            "restore_check_s": round(check, 3), "load_s": load,
            "ratio": round(check / client, 3), "restore_check_fp_s": round(check_fp, 3),
            "ratio_fp": round(check_fp / client, 3)}


def _check(url: sa.URL, source: str, path: Path, against: Snapshot | None) -> tuple[float, float]:
    started = time.monotonic()
    result = pg_restore_check(path, url.set(database=source).render_as_string(hide_password=False), against=against)
    seconds = time.monotonic() - started
    if result.verdict != "pass":
        print([c.message for c in result.failed_checks], file=sys.stderr)
        raise SystemExit(1)
    if against is not None and not any("content of" in c.message for c in result.checks):
        print("the restored content was not proven by fingerprints", file=sys.stderr)
        raise SystemExit(1)
    return seconds, result.restore_seconds


if __name__ == "__main__":
    raise SystemExit(main())
