"""Benchmark (issue #15): dump-check's CPU against `sha256sum` (plain dump) and `gzip -dc | sha256sum` (.gz), in one run.

    .venv/bin/python bench/dumpcheck.py [--mb 100] [--skip-mb 20] [--rounds 3] [--keep DIR] [--json OUT]

Writes a synthetic mysqldump of about --mb MB (extended INSERTs of 1 MB, as mysqldump writes them: integers,
decimals, dates, NULLs and strings with escaped quotes, backslashes and newlines) and its gzip, then times, per
round and back to back so both see the same machine load: `sha256sum` of the file, `dbaudit dump-check` reading
it in-process (check_dump: hashing, scanning, classifying, counting rows), and the same for the .gz against
`gzip -dc | sha256sum`; and a dump of --skip-mb MB with one row per INSERT (`mysqldump --skip-extended-insert`)
against `sha256sum` of it. CPU is user+system time (of the child processes for the baselines, of this process for
dump-check); the ratio is the median of the rounds'. It also records dump-check's peak memory (in a process of its
own) and the CLI's wall time on a small dump (start-up cost).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from dbaudit.backups.checks import check_dump

HEADER = """-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)
--
-- Host: 127.0.0.1    Database: bench
-- ------------------------------------------------------
-- Server version\t10.11.19-MariaDB-0+deb12u1

/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;
/*!40101 SET NAMES utf8mb4 */;
/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */;
/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;

DROP TABLE IF EXISTS `people`;
CREATE TABLE `people` (
  `id` int(10) unsigned NOT NULL,
  `name` varchar(40) NOT NULL,
  `note` text DEFAULT NULL,
  `balance` decimal(12,2) NOT NULL,
  `born` date NOT NULL,
  `updated_at` datetime DEFAULT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

LOCK TABLES `people` WRITE;
/*!40000 ALTER TABLE `people` DISABLE KEYS */;
"""
FOOTER = """/*!40000 ALTER TABLE `people` ENABLE KEYS */;
UNLOCK TABLES;
/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;
/*!40014 SET UNIQUE_CHECKS=@OLD_UNIQUE_CHECKS */;
/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;

-- Dump completed on 2026-12-01 13:30:00
"""
# Text as dumps hold it: apostrophes and backslashes escaped, parentheses, commas, semicolons, newlines; now and
# then something that looks like SQL (a comment, a tuple boundary) inside a string.
NOTES = ["it\\'s (a) test;", "C:\\\\path\\\\to", "two\\nlines", "plain note", "", "Smith, John (Jr.)",
         "quote \\\" inside", "see https://example.org/a-b?c=1&d=2", "caf\u00e9 cr\u00e8me"]
RARE = ["-- not a comment", "/* nor this */", "x,y),(z", "DROP TABLE other.t; --"]


def write_dump(path: Path, megabytes: int, seed: int = 7, extended: bool = True) -> int:
    """A dump of about `megabytes` MB (extended INSERTs of 1 MB, or one row per INSERT); returns its row count."""
    rng = random.Random(seed)
    rows, target = 0, megabytes * 1_000_000
    with path.open("w", encoding="utf-8") as out:
        out.write(HEADER)
        written = len(HEADER)
        while written < target:
            tuples = []
            size = 0
            while size < (1_000_000 if extended else 100_000):
                rows += 1
                text = rng.choice(RARE if rng.random() < 0.001 else NOTES)
                note = "NULL" if rng.random() < 0.2 else f"'{text} {rng.randrange(10**6)}'"
                t = (f"({rows},'name{rng.randrange(10**5)}',{note},{rng.randrange(10**7)}.{rng.randrange(100):02d},"
                     f"'19{rng.randrange(50, 99)}-0{rng.randrange(1, 9)}-1{rng.randrange(9)}',"
                     f"{'NULL' if rng.random() < 0.1 else repr('2026-01-01 10:00:00')})")
                tuples.append(t)
                size += len(t) + 1
            if extended:
                line = "INSERT INTO `people` VALUES " + ",".join(tuples) + ";\n"
            else:
                line = "".join(f"INSERT INTO `people` VALUES {t};\n" for t in tuples)
            out.write(line)
            written += len(line)
        out.write(FOOTER)
    return rows


def _child_cpu(command: str) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, shell=True, check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _own_cpu(path: Path, rows: int) -> float:
    before = resource.getrusage(resource.RUSAGE_SELF)
    check = check_dump(path, use_manifest=False)
    after = resource.getrusage(resource.RUSAGE_SELF)
    if check.verdict != "pass" or check.dump.total_rows != rows:
        raise SystemExit(f"dump-check of {path} did not pass with {rows} rows: "
                         f"{[c.message for c in check.failed_checks]} {check.dump.total_rows}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


_PEAK = """import re, sys
from dbaudit.backups.checks import check_dump
check_dump(sys.argv[1], use_manifest=False)
print(re.search(r"VmHWM:\\s*(\\d+)", open("/proc/self/status").read())[1])
"""


def _peak_rss_mb(path: Path) -> float:
    """dump-check's peak resident memory (VmHWM: this process's, not the benchmark's it was forked from)."""
    run = subprocess.run([sys.executable, "-c", _PEAK, str(path)], check=True, capture_output=True, text=True)
    return int(run.stdout.split()[-1]) / 1024


def _cli_wall(small: Path) -> float:
    dbaudit = Path(sys.executable).with_name("dbaudit")
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([str(dbaudit), "dump-check", str(small)], check=True, stdout=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--skip-mb", type=int, default=20, help="size of the one-row-per-INSERT dump (0: none)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="write the dumps here and keep them")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="dbaudit-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    plain, packed, small = folder / "bench.sql", folder / "bench.sql.gz", folder / "small.sql"
    rows = write_dump(plain, args.mb)
    packed.write_bytes(gzip.compress(plain.read_bytes(), compresslevel=6))
    write_dump(small, 1)
    single = folder / "bench-skip-extended.sql"
    single_rows = write_dump(single, args.skip_mb, extended=False) if args.skip_mb else 0
    rounds: dict[str, list[float]] = {"sha256sum": [], "dump-check": [], "gzip|sha256sum": [], "dump-check .gz": [],
                                      "sha256sum skip-extended": [], "dump-check skip-extended": []}
    load_before = os.getloadavg()
    for _ in range(args.rounds):
        rounds["sha256sum"].append(_child_cpu(f"sha256sum {plain}"))
        rounds["dump-check"].append(_own_cpu(plain, rows))
        rounds["gzip|sha256sum"].append(_child_cpu(f"gzip -dc {packed} | sha256sum"))
        rounds["dump-check .gz"].append(_own_cpu(packed, rows))
        if single_rows:
            rounds["sha256sum skip-extended"].append(_child_cpu(f"sha256sum {single}"))
            rounds["dump-check skip-extended"].append(_own_cpu(single, single_rows))
    peak_mb = max(_peak_rss_mb(plain), _peak_rss_mb(packed))
    plain_ratio = statistics.median(d / s for d, s in zip(rounds["dump-check"], rounds["sha256sum"]))
    gz_ratio = statistics.median(d / s for d, s in zip(rounds["dump-check .gz"], rounds["gzip|sha256sum"]))
    size_mb = plain.stat().st_size / 1e6
    result: dict[str, Any] = {
        "dump_mb": round(size_mb, 1), "gz_mb": round(packed.stat().st_size / 1e6, 1), "rows": rows,
        "cpu_seconds": {k: [round(x, 3) for x in v] for k, v in rounds.items()},
        "ratio_plain_vs_sha256sum": round(plain_ratio, 2), "ratio_gz_vs_gzip_sha256sum": round(gz_ratio, 2),
        "dump_check_mb_per_cpu_second": round(size_mb / statistics.median(rounds["dump-check"]), 1),
        "peak_rss_mb": round(peak_mb, 1), "cli_wall_seconds_small_dump": round(_cli_wall(small), 3),
        "load_average_1min_before_after": [round(load_before[0], 1), round(os.getloadavg()[0], 1)],
    }
    if single_rows:
        single_ratio = statistics.median(d / s for d, s in zip(rounds["dump-check skip-extended"],
                                                              rounds["sha256sum skip-extended"]))
        result |= {"skip_extended_mb": round(single.stat().st_size / 1e6, 1), "skip_extended_rows": single_rows,
                   "ratio_skip_extended_vs_sha256sum": round(single_ratio, 1),
                   "skip_extended_mb_per_cpu_second": round(
                       single.stat().st_size / 1e6 / statistics.median(rounds["dump-check skip-extended"]), 1)}
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if not args.keep:
        for path in (plain, packed, small, single):
            path.unlink(missing_ok=True)
        folder.rmdir()


if __name__ == "__main__":
    main()
