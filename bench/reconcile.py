#!/usr/bin/env python3
"""Benchmark: `abs.py reconcile` over a store of N fines (target: 100,000 fines in under 30 s, in
flat memory).

    .venv/bin/python bench/reconcile.py                     # N = 100,000
    .venv/bin/python bench/reconcile.py --sizes 10000,100000

The store is built directly (insert_many, no Alma needed), shaped like three years of a site's
ledger: every fine charged in one of ~150 weekly exports; about a third partly waived in Alma and
the waive sent as a reversal; about a third paid at the Bursar, applied in Alma and seen by the
import (a payments row, the Alma payment, its mirrored Bursar line); a third of the patrons with
several fines and their All User Balances figures; and 1% of the fines with an Alma balance 1.00
below the ledger (so the CSV and the page carry 1,000 rows at N = 100,000).  Then `abs.py
reconcile` runs as a subprocess; its wall time and peak RSS are printed, and the differences it
found are checked against the ones built in.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import os
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from import_export import run_step  # noqa: E402  (bench/ is the script's folder)

from bursar.store import open_store  # noqa: E402

NOW = datetime(2026, 11, 27, 18, 0)
CHUNK = 20_000


def money(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


def build(db: Path, n: int, seed: int = 1) -> int:
    """A consistent ledger of n fines with n // 100 balance differences; returns that count."""
    rng = random.Random(seed)
    store = open_store(f"sqlite:///{db}")
    n_patrons = max(1, n // 3)
    first_day = NOW - timedelta(days=3 * 365)
    n_exports = 156
    export_ids = store.insert_many("burs_exports", (
        {"state": "sent", "exportDate": f"{first_day + timedelta(days=7 * e):%Y%m%d}", "chargesTotal": money(0),
         "reversalsTotal": money(0), "sent_to_bursar": first_day + timedelta(days=7 * e, hours=1)}
        for e in range(n_exports)))
    charges = [0] * n_exports
    reversals = [0] * n_exports
    balance = [0] * n_patrons
    patron_ids = store.insert_many("patrons", ({"almaPatronId": f"{1_000_000_000 + p}", "balance": None}
                                               for p in range(n_patrons)))
    broken = 0
    for start in range(0, n, CHUNK):
        fines, alma, burs, parts, pays = [], [], [], [], []
        for i in range(start, min(n, start + CHUNK)):
            p = rng.randrange(n_patrons)
            e = i * n_exports // n
            day = first_day + timedelta(days=7 * e)
            orig = rng.randrange(100, 20_000)
            ref = f"{5_000_000_000 + i * 7}0003841"
            waive = rng.randrange(1, orig) if rng.random() < 0.33 else 0
            paid = rng.randrange(1, orig - waive + 1) if rng.random() < 0.33 else 0
            rem = orig - waive - paid
            if i % 100 == 50:  # a difference: Alma 1.00 below the ledger
                rem_alma, broken = max(0, rem - 100), broken + 1
            else:
                rem_alma = rem
            balance[p] += rem_alma
            charges[e] += orig
            fines.append({"patron": patron_ids[p], "almaPatronId": f"{1_000_000_000 + p}", "rootAlmaFineId": ref,
                          "almaLoanId": "\\N", "isSierraFine": False, "almaCreated": day, "almaUpdated": day,
                          "type": "Overdue fine", "origAmtAlma": money(orig), "remAmtAlma": money(rem_alma),
                          "isClosedInAlma": rem_alma == 0, "created": day, "updated": day})
            # the same lines on both sides: Fine, the waive (sent as a reversal), the mirrored payment
            lines = [("Fine", orig)] + ([("Waive", -waive)] if waive else []) + ([("Payment", -paid)] if paid else [])
            alma.append(lines)
            if waive:
                reversals[min(n_exports - 1, e + 1)] += waive
            burs.append(lines)
            parts.append(ref)
            pays.append((ref, f"{1_000_000_000 + p}", paid, day + timedelta(days=9)))
        ids = store.insert_many("fines", fines)
        store.insert_many("fine_mds", ({"fine": fid, "bursFineId": ref, "alma_fine_id": ref, "isReplFee": False,
                                        "chargeAcc": "531000000002", "billingDate": doc["almaCreated"],
                                        "termCode": "2267"} for fid, ref, doc in zip(ids, parts, fines)))
        store.insert_many("trans_alma", ({"fine": fid, "almaFineId": ref, "almaTransId": None if t == "Fine" else
                                          f"{fid}{k}", "type": t, "amt": money(a), "newAlmaImp": False}
                                         for fid, ref, lines in zip(ids, parts, alma)
                                         for k, (t, a) in enumerate(lines)))
        store.insert_many("trans_burs", ({"fine": fid, "bursFineId": ref, "type": t, "amt": money(a),
                                          "newBursImp": False, "newBursExp": False, "created": fines[j]["created"]}
                                         for j, (fid, ref, lines) in enumerate(zip(ids, parts, burs))
                                         for t, a in lines))
        store.insert_many("burs_payments", (
            {"rowKey": f"{emplid}|{ref}|{when:%m/%d/%Y}|{money(paid)}|x|1", "fileName": "bench.csv",
             "lineNumber": k + 2, "emplid": emplid, "referenceNumber": ref, "datePaid": f"{when:%m/%d/%Y}",
             "paidAmount": money(paid), "chargeAmount": money(paid), "occurrence": 1, "state": "applied",
             "fine": fid, "almaFeeId": ref, "almaUserId": emplid, "amountApplied": money(paid),
             "externalTransactionId": f"pybursar-{fid}", "attempts": 1, "appliedAt": when}
            for k, (fid, (ref, emplid, paid, when)) in enumerate(zip(ids, pays)) if paid))
    for e, export_id in enumerate(export_ids):
        store.update("burs_exports", export_id, {"chargesTotal": money(charges[e]),
                                                 "reversalsTotal": money(reversals[e])})
    for p, patron_id in enumerate(patron_ids):
        store.update("patrons", patron_id, {"balance": money(balance[p])})
    store.set_meta("importAlmaFines.lastSuccess", NOW.replace(hour=6).isoformat())
    store.close()
    return broken


def run(n: int) -> str:
    with tempfile.TemporaryDirectory(prefix="bursar-bench-reconcile-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        # built in a process of its own: a child's peak RSS includes its parent's at fork time,
        # so the parent stays small and the figure measures reconcile alone
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            broken = pool.apply(build, (work / "bench.sqlite3", n))
        built = time.perf_counter() - t0
        env = {**os.environ, "BURSAR_DB_URI": f"sqlite:///{work / 'bench.sqlite3'}",
               "BURSAR_TIMEZONE": "America/Phoenix", "BURSAR_NOW": NOW.isoformat(),
               "REPORTS_DIR": str(work / "reports"), "LOG_DIR": str(work / "logs")}
        elapsed, peak_mb, _ = run_step(env, work, "reconcile")
        with (work / "reports" / f"reconcile-{NOW:%Y%m%d}.csv").open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        # a fine with less than 1.00 left reads as closed in Alma: reversal_missing, not balance_differs
        found = sum(1 for r in rows if r["class"] in ("balance_differs", "reversal_missing"))
        ok = "as built" if found == broken == len(rows) else f"FOUND {len(rows)}, BUILT {broken}"
        page = (work / "reports" / f"reconcile-{NOW:%Y%m%d}.html").stat().st_size
        print(f"(built {n:,} fines in {built:.1f} s)", file=sys.stderr)
        return (f"| {n:,} | {elapsed:.1f} s | {peak_mb:.0f} MB | {len(rows):,} ({ok}) "
                f"| {page / 1024:.0f} KiB |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000", help="comma-separated fine counts")
    args = parser.parse_args()
    print("| fines | reconcile wall time | peak RSS | differences | HTML page |")
    print("|---|---|---|---|---|")
    for n in (int(x) for x in args.sizes.split(",")):
        print(run(n), flush=True)


if __name__ == "__main__":
    main()
