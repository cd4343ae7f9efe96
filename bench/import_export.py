#!/usr/bin/env python3
"""Benchmark: importAlmaFines then exportBurs on generated data, then a no-change re-import.

    .venv/bin/python bench/import_export.py                 # N = 100,000 fines, 3 transactions each
    .venv/bin/python bench/import_export.py --sizes 10000,100000

For each N: generate N fines (3 transactions each) into the sandbox Alma server (running in this
process), then run `abs.py` as a subprocess on a fresh SQLite store and report wall time and the
child's peak RSS for each step.  The no-change re-import must write nothing.
Targets (2 cores): import <= 60 s, export <= 15 s, peak RSS <= 300 MB and flat in N,
no-change re-import <= 25% of the first.

Measured (issue 9; shared 2-core machine).  Before the streaming of issue 9 item 6 (the
100,000 run at a load average of 1 to 3, the 1,000,000 run at 3 to 6, the 50,000 and 200,000
runs at 2 to 6):

| fines | importAlmaFines | exportBurs | no-change re-import |
|---|---|---|---|
| 50,000 | 50.9 s, 62 MB | 23.0 s (24,850 lines), 107 MB | 1.1 s, 56 MB, writes nothing |
| 100,000 | 95.0 s, 66 MB | 26.9 s (49,918 lines), 84 MB | 0.9 s, 55 MB, writes nothing |
| 200,000 | 419.6 s, 74 MB | 102.3 s (99,520 lines), 267 MB | 1.2 s, 56 MB, writes nothing |
| 1,000,000 | 1463.3 s, 120 MB | 295.8 s (499,405 lines), 359 MB | 4.6 s, 155 MB, writes nothing |

After it (the export streams every phase from the store: fines to decide, lines to attach,
file lines; the import streams the Alma payments it mirrors and dedupes the balances report's
patrons on disk), at a load average of 2.5 to 4 (the 500,000 run at 1 to 2), with test runs
beside the 100,000 run (so its times are high; the 50,000 import still had the patron set):

| fines | importAlmaFines | exportBurs | no-change re-import |
|---|---|---|---|
| 50,000 | 45.9 s, 60 MB | 18.3 s (24,850 lines), 56 MB | 1.5 s, 56 MB, writes nothing |
| 100,000 | 186.3 s, 63 MB | 62.7 s (49,918 lines), 56 MB | 1.7 s, 56 MB, writes nothing |
| 200,000 | 303.7 s, 63 MB | 72.2 s (99,520 lines), 55 MB | 1.8 s, 56 MB, writes nothing |
| 500,000 | 556.5 s, 62 MB | 160.7 s (249,417 lines), 56 MB | 2.4 s, 94 MB, writes nothing |

Peak RSS is now flat in N for the first import and the export (the export files are byte for
byte the same: compared at 20,000); times are about linear from 200,000 to 500,000 (1.8x and
2.2x for 2.5x, at a lower load), too noisy below.  Not flat yet: the no-change re-import
(56 MB at 200,000, 94 MB at 500,000; not looked into), an export with aggregate = "patron"
(its groups are summed in memory), and the ids of credit fines the import keeps in a set.
The 1,000,000-fine run was not repeated after the fix.

At 1,000,000 the windowed fetch split 101 capped windows (23 windows kept for the fines, 80 for
the transactions): each capped run was read to ALMA_ANALYTICS_ROW_LIMIT rows (65 pages) and
thrown away, about 6,600 pages beside the 4,000 kept.  Before the sandbox answered windows
from a sorted index, each window run scanned the whole report, and the 1,000,000 run did not
finish its staging in 30 minutes.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bursar.sandbox.alma_server import SandboxAlma  # noqa: E402
from bursar.sandbox.generator import SANDBOX_REPORTS, bulk_world, install_world  # noqa: E402

LEDGER = ("patrons", "fines", "item_details", "trans_alma", "trans_burs", "fine_mds",
          "burs_exports", "burs_export_trans")


def run_step(env: dict[str, str], cwd: Path, command: str) -> tuple[float, float, int]:
    """(seconds, peak RSS in MB, exit code) of one `abs.py` run."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(ROOT / "abs.py"), command, "--quiet"], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 3):
        sys.exit(f"{command} failed ({code}): {proc.stderr.read().decode() if proc.stderr else ''}")
    return elapsed, usage.ru_maxrss / 1024, code


def fingerprint(db: Path) -> dict[str, tuple[int, str]]:
    with sqlite3.connect(db) as con:
        return {t: con.execute(f"SELECT count(*), coalesce(max(updated), '') FROM {t}").fetchone() for t in LEDGER}


def serve(n: int, trans: int, conn) -> None:  # type: ignore[no-untyped-def]
    """The sandbox Alma server with the generated world, in its own process: the benchmark's
    parent stays small, so a child's peak RSS (inherited at fork) measures only abs.py."""
    t0 = time.perf_counter()
    world = bulk_world(n, trans_per_fine=trans)
    generated = time.perf_counter() - t0
    with SandboxAlma() as alma:
        install_world(alma, world)
        del world
        conn.send((alma.url, alma.api_key, generated))
        conn.recv()  # until the parent is done


def report(rows: list[str], row: str) -> None:
    """Print a step's row as soon as it is measured (a 1,000,000-fine run takes a while)."""
    print(row, flush=True)
    rows.append(row)


def bench(n: int, trans: int) -> list[str]:
    parent_end, child_end = multiprocessing.Pipe()
    server = multiprocessing.get_context("spawn").Process(target=serve, args=(n, trans, child_end), daemon=True)
    server.start()
    url, api_key, gen = parent_end.recv()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bursar-bench-") as tmp:
        work = Path(tmp)
        env = {**os.environ, "BURSAR_DB_URI": f"sqlite:///{work / 'bench.sqlite3'}", "ALMA_API_URL": url,
               "ALMA_API_KEY": api_key, "ALMA_REPORT_FINES": SANDBOX_REPORTS.fines,
               "ALMA_REPORT_TRANSACTIONS": SANDBOX_REPORTS.transactions, "ALMA_CALLS_PER_SECOND": "1000",
               "BURSAR_TIMEZONE": "America/Phoenix", "BURSAR_NOW": "2026-11-27T18:00:00",
               "EXPORTS_DIR": str(work / "exports"), "LOG_DIR": str(work / "logs")}
        first = run_step(env, work, "importAlmaFines")
        report(rows, f"| {n:,} | importAlmaFines | {first[0]:.1f} s | {first[1]:.0f} MB |")
        exported = run_step(env, work, "exportBurs")
        lines = sum(len(p.read_text().splitlines()) for p in (work / "exports").glob("LIB_*"))
        report(rows, f"| {n:,} | exportBurs ({lines:,} lines) | {exported[0]:.1f} s | {exported[1]:.0f} MB |")
        before = fingerprint(work / "bench.sqlite3")
        again = run_step(env, work, "importAlmaFines")
        unchanged = fingerprint(work / "bench.sqlite3") == before
        report(rows, f"| {n:,} | importAlmaFines, no change | {again[0]:.1f} s ({again[0] / first[0]:.0%} of "
               f"first) | {again[1]:.0f} MB | {'writes nothing' if unchanged else 'WROTE SOMETHING'}")
    parent_end.send("done")
    server.join(timeout=30)
    print(f"(generated {n:,} fines x {trans} transactions in {gen:.1f} s)", file=sys.stderr)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000", help="comma-separated fine counts")
    parser.add_argument("--trans", type=int, default=3, help="transactions per fine")
    args = parser.parse_args()
    print("| fines | step | wall time | peak RSS |")
    print("|---|---|---|---|")
    for n in (int(x) for x in args.sizes.split(",")):
        bench(n, args.trans)


if __name__ == "__main__":
    main()
