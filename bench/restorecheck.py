"""restore-check against a plain client restore of the same dump, in one run (issue #15: ≤ 1.3×).

Builds a source database server-side (two InnoDB tables, `--rows` and 2 × `--rows` rows), dumps it with
mariadb-dump as a backup job would, then times in alternating order, `--rounds` times:

- plain: `mariadb <scratch> < dump` (the client restore restore-check replaces), into a fresh database;
- restore-check: the whole `restore_check` call (temporary account, the scan and the load overlapped, snapshot,
  compare, drop);
- restore-check with content proof: the same with `--against` a chunk-fingerprinted snapshot of the source.

The ratios are per round (each restore-check against the plain restore of the same round); the median is
what docs/benchmarks.md reports. Run: `.venv/bin/python bench/restorecheck.py [--rows 400000] [--rounds 3]`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

from dbaudit.backups.restore import restore_check, scan_dump
from dbaudit.live.inspect import take_snapshot

URL = os.environ.get("DBAUDIT_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306")


def _client_args() -> list[str]:
    url = sa.engine.make_url(URL + "/")
    args = ["--protocol=tcp", "-h", url.host or "127.0.0.1", "-P", str(url.port or 3306), "-u", url.username or "root"]
    return args + ([f"--password={url.password}"] if url.password else [])


def _build(engine: sa.Engine, name: str, rows: int) -> None:
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{name}`")
        conn.exec_driver_sql(f"CREATE TABLE `{name}`.orders (id int primary key, customer int not null, "
                             "amount decimal(10,2), note varchar(40), created datetime, KEY (customer))")
        conn.exec_driver_sql(f"INSERT INTO `{name}`.orders SELECT seq, seq %% 9973, (seq %% 100000) / 100, "
                             f"IF(seq %% 7 = 0, NULL, CONCAT('note ', seq)), '2024-01-01' + INTERVAL seq SECOND "
                             f"FROM `{name}`.seq_1_to_{rows}")
        conn.exec_driver_sql(f"CREATE TABLE `{name}`.items (id int primary key, order_id int not null, "
                             "sku char(12), qty smallint, KEY (order_id))")
        conn.exec_driver_sql(f"INSERT INTO `{name}`.items SELECT seq, (seq + 1) DIV 2, CONCAT('SKU', seq %% 5000), "
                             f"seq %% 17 FROM `{name}`.seq_1_to_{2 * rows}")


def _drop(engine: sa.Engine, name: str) -> None:
    with engine.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")


def _plain(engine: sa.Engine, client: str, dump: Path) -> float:
    scratch = f"dbaudit_b_plain_{uuid.uuid4().hex[:8]}"
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{scratch}`")
    try:
        started = time.monotonic()
        with dump.open("rb") as handle:
            subprocess.run([client, *_client_args(), scratch], stdin=handle, check=True)
        return time.monotonic() - started
    finally:
        _drop(engine, scratch)


def _check(source: str, dump: Path, against: object | None) -> float:
    scratch = f"dbaudit_b_rc_{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    result = restore_check(dump, f"{URL}/{source}", scratch=scratch, against=against)  # type: ignore[arg-type]
    seconds = time.monotonic() - started
    print(f"  restore-check {seconds:.2f} s, of which the load (the scan overlapping it) {result.restore_seconds:.2f} s",
          flush=True)
    if result.verdict != "pass":
        sys.exit(f"restore-check failed: {[c.message for c in result.failed_checks]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    client = shutil.which("mariadb") or shutil.which("mysql")
    dumper = shutil.which("mariadb-dump") or shutil.which("mysqldump")
    if not (client and dumper):
        sys.exit("needs the mariadb client and mariadb-dump")
    engine = sa.create_engine(URL, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    source = f"dbaudit_b_src_{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as work:
        os.environ["XDG_STATE_HOME"] = work  # the bench's own restore journal
        dump = Path(work) / "bench.sql"
        try:
            _build(engine, source, args.rows)
            with dump.open("wb") as out:
                subprocess.run([dumper, *_client_args(), "--single-transaction", source], stdout=out, check=True)
            snapshot = take_snapshot(f"{URL}/{source}", fingerprint="chunks")
            print(f"dump: {dump.stat().st_size / 1e6:.1f} MB, {3 * args.rows:,} rows; {args.rounds} rounds")
            started = time.monotonic()
            scan_dump(dump)[2].close()
            print(f"the scan alone (restore-check's one read of the dump): {time.monotonic() - started:.2f} s")
            plain, checked, proven = [], [], []
            for i in range(args.rounds):
                order = ["plain", "check", "proven"] if i % 2 == 0 else ["proven", "check", "plain"]
                for what in order:
                    if what == "plain":
                        plain.append(_plain(engine, client, dump))
                    elif what == "check":
                        checked.append(_check(source, dump, None))
                    else:
                        proven.append(_check(source, dump, snapshot))
                print(f"round {i + 1}: plain {plain[-1]:.2f} s, restore-check {checked[-1]:.2f} s, "
                      f"with content proof {proven[-1]:.2f} s", flush=True)
        finally:
            _drop(engine, source)
    ratio = statistics.median(c / p for c, p in zip(checked, plain))
    ratio_proven = statistics.median(c / p for c, p in zip(proven, plain))
    print(f"plain mariadb restore, s (median): {statistics.median(plain):.2f}")
    print(f"restore-check, s (median): {statistics.median(checked):.2f}; ratio (median of rounds) {ratio:.2f}")
    print(f"restore-check with --against fingerprints, s (median): {statistics.median(proven):.2f}; "
          f"ratio {ratio_proven:.2f} (target ≤ 1.3)")


if __name__ == "__main__":
    main()
