#!/usr/bin/env python3
"""Benchmark: a daily `today` at realistic Alma latency (issue 9 item 5).

    .venv/bin/python bench/daily.py                       # 100,000 fines of history
    .venv/bin/python bench/daily.py --history 20000 --page-latency 1.5 --fee-latency 0.15

The world: `--history` fines (3 transactions each) spread over three years and imported the day
before (at no latency), then a day of changes: `--new` fines with 3 transactions each dated
today.  The sandbox then adds `--page-latency` seconds to every Analytics page and
`--fee-latency` to every fee call, and `today` runs (import, export, upload, payments, backup).

Reported: the wall time of `today`, the Alma calls it made, and the floor: the slowest report's
pages x page latency (the three reports are fetched in parallel), plus the payment calls at the
rate budget.  Target: `today` within 1.25x of the floor.

Not yet in this world: payment files (the day's ~300 payments).  The payments step finds no file,
so the payment part of the floor is 0 and the figure measures Direction 1 and the backup.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bursar.clients.alma import columns as C  # noqa: E402
from bursar.sandbox.generator import World, bulk_world, install_world  # noqa: E402
from tests.e2e.conftest import make_sandbox  # noqa: E402

TODAY = date(2026, 11, 27)
PAGE = 1000  # rows per Analytics page


def world_of_the_day(history: int, new: int) -> tuple[World, World]:
    old = bulk_world(history, today=TODAY - timedelta(days=1))
    day = bulk_world(new, seed=2, today=TODAY, history_days=1)
    known = {r[C.FINE_ID] for r in old.fines}
    day_fines = [r for r in day.fines if r[C.FINE_ID] not in known]
    known_t = {r[C.TRANS_ID] for r in old.transactions}
    day_trans = [r for r in day.transactions if r[C.TRANS_ID] not in known_t]
    balances = {r[C.PRIMARY_ID]: r for r in old.balances}
    balances.update({r[C.PRIMARY_ID]: r for r in day.balances})
    return old, World(TODAY, old.fines + day_fines, old.transactions + day_trans, list(balances.values()))


def run(box, command: str, day: date) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
    """`abs.py command` against the sandbox, without the tests' 120 s timeout."""
    env = {**os.environ, **box.env, "BURSAR_NOW": f"{day.isoformat()}T18:00:00"}
    return subprocess.run([sys.executable, str(ROOT / "abs.py"), command], cwd=box.work, env=env,
                          capture_output=True, text=True)


def pages(rows: int) -> int:
    return max(1, math.ceil(rows / PAGE))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--history", type=int, default=100_000)
    parser.add_argument("--new", type=int, default=1_000)
    parser.add_argument("--page-latency", type=float, default=1.5)
    parser.add_argument("--fee-latency", type=float, default=0.15)
    parser.add_argument("--budget", type=int, default=25, help="Alma calls per second")
    args = parser.parse_args()
    t0 = time.perf_counter()
    old, world = world_of_the_day(args.history, args.new)
    print(f"(world: {len(world.fines):,} fines, {len(world.transactions):,} transactions, "
          f"{len(world.balances):,} patrons; built in {time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="bursar-daily-") as tmp, make_sandbox(Path(tmp), []) as box:
        box.env["ALMA_CALLS_PER_SECOND"] = str(args.budget)
        install_world(box.alma, old)
        t1 = time.perf_counter()
        first = run(box, "importAlmaFines", TODAY - timedelta(days=1))
        if first.returncode not in (0, 3):
            sys.exit(f"the history import failed ({first.returncode}): {first.stdout}{first.stderr}")
        print(f"(history imported in {time.perf_counter() - t1:.1f} s)", file=sys.stderr)
        install_world(box.alma, world)
        box.alma.analytics_latency = args.page_latency
        box.alma.fee_latency = args.fee_latency
        box.alma.clear_calls()
        started = time.perf_counter()
        result = run(box, "today", TODAY)
        wall = time.perf_counter() - started
        if result.returncode not in (0, 3):
            sys.exit(f"today failed ({result.returncode}): {result.stdout}{result.stderr}")
        calls = box.alma.calls
        report_calls = sum(1 for c in calls if c["path"] == "/almaws/v1/analytics/reports")
        fee_calls = len(calls) - report_calls
        # the incremental window: the history import's day minus the 7-day overlap
        since = datetime.combine(TODAY - timedelta(days=1 + 7), datetime.min.time()).isoformat()
        fines_rows = sum(1 for r in world.fines if (r[C.STATUS_DATE] or "") >= since)
        trans_rows = sum(1 for r in world.transactions if (r[C.TRANS_CREATED] or "") >= since)
        slowest = max(pages(fines_rows), pages(trans_rows), pages(len(world.balances)))
        floor = slowest * args.page_latency + fee_calls / args.budget
    print("| step | figure |")
    print("|---|---|")
    print(f"| `today` wall time | {wall:.1f} s |")
    print(f"| Alma calls | {len(calls)} ({report_calls} Analytics pages, {fee_calls} fee calls) |")
    print(f"| window rows | fines {fines_rows:,}, transactions {trans_rows:,}, patrons {len(world.balances):,} |")
    print(f"| floor | {floor:.1f} s (slowest report {slowest} pages x {args.page_latency} s"
          f" + {fee_calls} fee calls at {args.budget}/s) |")
    print(f"| ratio | {wall / floor:.2f}x of the floor (target <= 1.25x) |")


if __name__ == "__main__":
    main()
