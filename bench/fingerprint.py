"""Benchmark (issue #3): fingerprint and compare a 2,000,000-row MariaDB table, against the server's own
COUNT(*) and CHECKSUM TABLE and against reladiff, all measured in the same run.

    .venv/bin/python bench/fingerprint.py [--rows N] [--rounds N] [--repeat N] [--keep] [--json OUT]

Builds `dbaudit_bench_a.people` server-side from MariaDB's seq_1_to_N sequence table, copies it to
`dbaudit_bench_b`, then changes the copy: 3 updates, 1 delete, 1 insert. Prints ratios:

- fingerprint / CHECKSUM TABLE (target <= 3): --rounds rounds, each timing CHECKSUM TABLE and then the
  fingerprint back to back, so both see the same machine load; the ratio is the median of the rounds'
  ratios. The fingerprint is timed as a snapshot takes it (key-range query plus the sliced reads that
  drive its progress bar), and once more as a single unsliced scan, so the cost of slicing shows.
- compare / reladiff (target < 1): best of --repeat runs each; both must name exactly the 5 keys.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from dbaudit.live.compare import compare
from dbaudit.live.connect import audit_session
from dbaudit.live.fingerprint import Fingerprinter, fingerprint_table

SERVER = os.environ.get("DBAUDIT_BENCH_MARIADB", "mysql+pymysql://root@127.0.0.1:3306")
A, B = "dbaudit_bench_a", "dbaudit_bench_b"
COLUMNS = ["id", "first_name", "last_name", "phone", "balance", "born", "updated_at"]
CREATE = """CREATE TABLE people (
  id INT UNSIGNED NOT NULL PRIMARY KEY, first_name VARCHAR(40) NOT NULL, last_name VARCHAR(40) NOT NULL,
  phone VARCHAR(20) NULL, balance DECIMAL(12,2) NOT NULL, born DATE NOT NULL, updated_at DATETIME NOT NULL
) ENGINE=InnoDB"""
FILL = """INSERT INTO people SELECT seq, CONCAT('first', MOD(seq, 1000)), CONCAT('last', MOD(seq, 7919)),
  IF(MOD(seq, 10) = 0, NULL, CONCAT('+62', LPAD(seq, 9, '0'))), MOD(seq, 100000) / 100,
  DATE('1950-01-01') + INTERVAL MOD(seq, 20000) DAY, TIMESTAMP('2020-01-01') + INTERVAL seq SECOND
  FROM seq_1_to_{rows}"""


def changes(rows: int) -> tuple[list[str], set[str]]:
    """3 updates (one NULL -> ''), 1 delete, 1 insert, spread over the key range; the 5 keys they touch."""
    upd = [rows // 7, rows // 2, rows - 3]
    gone, new = rows // 3, rows + 1
    sql = [
        f"UPDATE people SET last_name = 'Changed' WHERE id = {upd[0]}",
        f"UPDATE people SET phone = '' WHERE id = {upd[1]}",
        f"UPDATE people SET updated_at = updated_at + INTERVAL 1 SECOND WHERE id = {upd[2]}",
        f"DELETE FROM people WHERE id = {gone}",
        f"INSERT INTO people VALUES ({new}, 'new', 'row', NULL, 0, '2000-01-01', '2020-01-01 00:00:00')",
    ]
    return sql, {str(k) for k in (*upd, gone, new)}


def build(server: sa.Engine, rows: int) -> set[str]:
    with server.connect() as conn:
        for name in (A, B):
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
            conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        conn.exec_driver_sql(f"USE `{A}`")
        conn.exec_driver_sql(CREATE)
        conn.exec_driver_sql(FILL.format(rows=int(rows)))
        conn.exec_driver_sql(f"CREATE TABLE `{B}`.people LIKE `{A}`.people")
        conn.exec_driver_sql(f"INSERT INTO `{B}`.people SELECT * FROM `{A}`.people")
        conn.exec_driver_sql(f"USE `{B}`")
        sql, keys = changes(rows)
        for statement in sql:
            conn.exec_driver_sql(statement)
    return keys


def best(repeat: int, work: Callable[[], Any]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return min(times), result


def on_server(server: sa.Engine, sql: str) -> Callable[[], Any]:
    def run() -> Any:
        with server.connect() as conn:
            return conn.exec_driver_sql(sql).all()
    return run


def fingerprint_rounds(server: sa.Engine, url: str, rounds: int) -> dict[str, Any]:
    """CHECKSUM TABLE, the snapshot's table fingerprint and one unsliced scan, timed back to back per round."""
    from dbaudit.live.inspect import take_snapshot

    table = take_snapshot(url).tables["people"]  # with its exact row count, as a snapshot has it
    checksum = on_server(server, f"CHECKSUM TABLE `{A}`.people")
    times: dict[str, list[float]] = {"checksum": [], "sliced": [], "whole": []}
    with audit_session(url) as session:
        fp = Fingerprinter(session)
        for _ in range(rounds):
            for name, work in (("checksum", checksum), ("sliced", lambda: fingerprint_table(fp, table, "table")),
                               ("whole", lambda: fp.digest("people", table.columns))):
                times[name].append(best(1, work)[0])
        token = fp.digest("people", table.columns).token()
    assert table.fingerprint == token, "the sliced and the whole-table fingerprints differ"
    ratios = sorted(s / c for s, c in zip(times["sliced"], times["checksum"]))
    return {"checksum_table_seconds": min(times["checksum"]), "fingerprint_seconds": min(times["sliced"]),
            "one_scan_seconds": min(times["whole"]), "fingerprint": token,
            "fingerprint_ratios": [round(r, 2) for r in ratios], "fingerprint_ratio": statistics.median(ratios)}


def dbaudit_keys(url_a: str, url_b: str) -> set[str]:
    (table,) = compare(url_a, url_b, tables=["people"], max_keys=100).tables
    return {k.key["id"] for k in table.keys}


def reladiff_keys(url_a: str, url_b: str) -> set[str]:
    import reladiff

    def table(url: str) -> Any:
        return reladiff.connect_to_table(url.replace("mysql+pymysql://", "mysql://"), "people", "id", thread_count=4)

    tables = table(url_a), table(url_b)
    try:
        diff = reladiff.diff_tables(*tables, extra_columns=tuple(COLUMNS[1:]), algorithm=reladiff.Algorithm.HASHDIFF,
                                    skip_sort_results=True)  # its sort fails on NULL next to ''
        return {str(row[1][0]) for row in diff}
    finally:
        for t in tables:  # its sessions keep a transaction open, which would block dropping the databases
            t.database.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=5, help="CHECKSUM TABLE / fingerprint rounds")
    parser.add_argument("--repeat", type=int, default=2, help="runs of compare and of reladiff (best kept)")
    parser.add_argument("--keep", action="store_true", help="keep the two bench databases")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()

    server = sa.create_engine(f"{SERVER}/", isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    url_a, url_b = f"{SERVER}/{A}", f"{SERVER}/{B}"
    started = time.perf_counter()
    expected = build(server, args.rows)
    figures: dict[str, Any] = {"expected_keys": sorted(expected, key=int), "rows": args.rows,
                               "build_seconds": round(time.perf_counter() - started, 2)}
    try:
        figures["count_seconds"], _ = best(args.repeat, on_server(server, f"SELECT COUNT(*) FROM `{A}`.people"))
        figures.update(fingerprint_rounds(server, url_a, args.rounds))
        figures["compare_seconds"], found = best(args.repeat, lambda: dbaudit_keys(url_a, url_b))
        figures["compare_keys_ok"] = found == expected
        figures["compare_keys"] = sorted(found, key=int)
        try:
            figures["reladiff_seconds"], found = best(args.repeat, lambda: reladiff_keys(url_a, url_b))
            figures["reladiff_keys_ok"] = found == expected
            figures["reladiff_keys"] = sorted(found, key=int)
        except Exception as exc:  # noqa: BLE001 - the baseline failing must not hide our own figures
            figures["reladiff_error"] = " ".join(str(exc).split())[:300]
    finally:
        if not args.keep:
            with server.connect() as conn:
                for name in (A, B):
                    conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
    report(figures)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(figures, out, indent=2)
    return 0 if figures["compare_keys_ok"] else 1


def report(f: dict[str, Any]) -> None:
    print(f"{f['rows']:,} rows (built server-side in {f['build_seconds']:.1f} s); best of each, seconds:")
    for label, key in (("SELECT COUNT(*)", "count_seconds"), ("CHECKSUM TABLE", "checksum_table_seconds"),
                       ("dbaudit table fingerprint", "fingerprint_seconds"),
                       ("  as one unsliced scan", "one_scan_seconds"),
                       ("dbaudit compare (5 keys)", "compare_seconds"), ("reladiff hashdiff", "reladiff_seconds")):
        if key in f:
            print(f"  {label:<28} {f[key]:7.2f}")
    print(f"  compare named exactly the 5 changed keys: {f['compare_keys_ok']}")
    one = f["one_scan_seconds"] / f["checksum_table_seconds"]
    print(f"fingerprint / CHECKSUM TABLE = {f['fingerprint_ratio']:.2f} (target <= 3; median of rounds "
          f"{f['fingerprint_ratios']}; best one-scan / best CHECKSUM TABLE: {one:.2f})")
    print(f"fingerprint / COUNT(*)       = {f['fingerprint_seconds'] / f['count_seconds']:.2f}")
    if "reladiff_seconds" in f:
        print(f"  reladiff named exactly the 5 changed keys: {f['reladiff_keys_ok']}")
        print(f"compare / reladiff           = {f['compare_seconds'] / f['reladiff_seconds']:.2f} (target < 1)")
    else:
        print(f"reladiff could not run: {f.get('reladiff_error')}")


if __name__ == "__main__":
    sys.exit(main())
