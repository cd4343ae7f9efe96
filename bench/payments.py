#!/usr/bin/env python3
"""Benchmark: importAlmaPayments (Direction 2) against a slow sandbox Alma with a call budget.

    .venv/bin/python bench/payments.py                          # 1,000 payments, 100 ms, 25 calls/s
    .venv/bin/python bench/payments.py --payments 200 --latency 0.05 --budget 10

The issue's target: with N payments, `latency` seconds added to every Alma call and a budget of
B calls/s, the floor is (Alma calls made) / B seconds; pyBursar must finish within 1.15x of it
and make at most 1.3 calls per payment with this patron mix (one GET of each patron's fee list,
one POST op=pay per payment).

The patron mix: payments come in patrons of 1, 2, 3, 4, 5, 6, 3 and 4 fees in turn (3.5 on
average: a student who pays the Bursar usually clears the whole library account, every fee on
it, at once), so the best possible is 1 + 1/3.5 = 1.29 calls per payment.

Why it is built this way:
* The store is written directly (patrons, fines, fine_mds with bursFineId = alma_fine_id = the
  fee id), so every Reference Number resolves without running Direction 1 first.
* The sandbox Alma and SFTP servers run in their own process: neither the measured `abs.py`
  child nor the sequential loop below shares a GIL with the servers' threads.
* The job has no "sequential" knob and none is added for a benchmark, so the sequential figure
  is a one-thread loop of `get_fee` + `pay_fee` in this process, paced by the same
  RateLimiter budget, against a fresh server with the same latency.  It does no store writes,
  so it is, if anything, flattering to the sequential side.
* Exit status 1 when any fee was paid twice or not at all (in either run), or the job failed.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from multiprocessing.connection import Connection
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bursar.clients.alma.fees import get_fee, pay_fee  # noqa: E402
from bursar.clients.alma.http import AlmaHttp  # noqa: E402
from bursar.rules.payments_csv import external_transaction_id, parse_payments  # noqa: E402
from bursar.store import open_store  # noqa: E402

PREFIX = "ASUSASF_LIBRARY_REPORT_DTRANGE"
PAYMENTS_DIR = "/bursar/outgoing"
HEADER = "Emplid,Date Paid,Reference Number,Charge Amount,Paid Amount,Item Type,Charge Description"
USER, PASSWORD = "bursar", "bench-password"
CHARGE = Decimal("20.00")  # every fee's original amount and balance: above any payment below
STAMP = datetime(2026, 3, 3, 12, 0, 0)


@dataclass(frozen=True)
class Payment:
    user_id: str
    fee_id: str
    paid: Decimal


MIX = (1, 2, 3, 4, 5, 6, 3, 4)  # fees per patron, in turn


def payments(n: int) -> list[Payment]:
    """N payments, one per fee, of 1.00 .. 9.99 (always below the fee's balance); patron p
    has MIX[p % len(MIX)] of them."""
    out: list[Payment] = []
    patron = 0
    while len(out) < n:
        for _ in range(MIX[patron % len(MIX)]):
            i = len(out)
            if i == n:
                break
            out.append(Payment(f"B{patron:09d}", str(9_100_000_000_000_000 + i),
                               Decimal(100 + (i * 37) % 900) / 100))
        patron += 1
    return out


def payments_csv(rows: list[Payment]) -> bytes:
    lines = [HEADER] + [f'{p.user_id},03/03/2026,{p.fee_id},{CHARGE},{p.paid},LIB,"Overdue fine"' for p in rows]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def write_store(uri: str, rows: list[Payment]) -> None:
    """The ledger rows the payment references resolve to (what Direction 1 would have left)."""
    store = open_store(uri)
    try:
        users = sorted({p.user_id for p in rows})
        patron_ids = dict(zip(users, store.insert_many("patrons", [
            {"almaPatronId": user, "balance": CHARGE, "created": STAMP, "updated": STAMP} for user in users]),
            strict=True))
        fine_ids = store.insert_many("fines", [
            {"patron": patron_ids[p.user_id], "almaPatronId": p.user_id, "rootAlmaFineId": p.fee_id,
             "almaLoanId": "\\N", "isSierraFine": False, "almaCreated": STAMP, "almaUpdated": STAMP,
             "type": "OVERDUEFINE",
             "origAmtAlma": CHARGE, "remAmtAlma": CHARGE, "isClosedInAlma": False,
             "created": STAMP, "updated": STAMP}
            for p in rows])
        store.insert_many("trans_burs", [  # billed: the Bursar's charge amount is what we billed
            {"fine": fid, "bursFineId": p.fee_id, "bursTransId": p.fee_id, "bursCreated": STAMP, "type": "Fine",
             "amt": CHARGE, "newBursImp": False, "newBursExp": False, "created": STAMP, "updated": STAMP}
            for fid, p in zip(fine_ids, rows, strict=True)])
        store.insert_many("fine_mds", [
            {"fine": fid, "bursFineId": p.fee_id, "alma_fine_id": p.fee_id, "isReplFee": False,
             "created": STAMP, "updated": STAMP}
            for fid, p in zip(fine_ids, rows, strict=True)])
    finally:
        store.close()


# -- the servers, in their own process ------------------------------------------------------------
def serve(fees: list[tuple[str, str]], latency: float, sftp_root: str, conn: Connection) -> None:
    """Sandbox Alma (fees set, `latency` per call) and SFTP (serving sftp_root) until told to stop.
    Answers "stats" with (calls per method, pay calls per fee id)."""
    from bursar.sandbox.alma_server import SandboxAlma
    from bursar.sandbox.sftp_server import SandboxSftp

    with SandboxAlma() as alma, SandboxSftp(Path(sftp_root), users={USER: PASSWORD}) as sftp:
        for user_id, fee_id in fees:
            alma.set_fee(user_id, fee_id, balance=CHARGE, original_amount=CHARGE)
        alma.latency = latency
        conn.send((alma.url, alma.api_key, sftp.port, sftp.known_hosts_line()))
        while (command := conn.recv()) != "done":
            if command == "stats":
                methods = Counter(c["method"] for c in alma.calls)
                paid = Counter(c["fee_id"] for c in alma.pay_calls)
                conn.send((dict(methods), dict(paid)))


class Servers:
    """Start/stop the server process; read its counters."""

    def __init__(self, rows: list[Payment], latency: float, sftp_root: Path):
        self._conn, child = multiprocessing.Pipe()
        self._proc = multiprocessing.get_context("spawn").Process(
            target=serve, args=([(p.user_id, p.fee_id) for p in rows], latency, str(sftp_root), child), daemon=True)

    def __enter__(self) -> tuple[str, str, int, str]:
        self._proc.start()
        return self._conn.recv()

    def stats(self) -> tuple[dict[str, int], dict[str, int]]:
        self._conn.send("stats")
        return self._conn.recv()

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._conn.send("done")
        except OSError:
            pass
        self._proc.join(timeout=30)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(timeout=5)


@dataclass
class Result:
    seconds: float
    calls: int
    problems: list[str]


def check_paid(rows: list[Payment], paid: dict[str, int]) -> list[str]:
    """Every fee paid exactly once, and nothing else paid."""
    expected = {p.fee_id for p in rows}
    twice = sorted(f for f, n in paid.items() if n > 1)
    unpaid = sorted(expected - set(paid))
    stray = sorted(set(paid) - expected)
    problems = []
    if twice:
        problems.append(f"{len(twice)} fee(s) paid more than once, e.g. {twice[0]}")
    if unpaid:
        problems.append(f"{len(unpaid)} fee(s) not paid, e.g. {unpaid[0]}")
    if stray:
        problems.append(f"{len(stray)} unknown fee(s) paid, e.g. {stray[0]}")
    return problems


def run_pybursar(rows: list[Payment], latency: float, budget: int) -> Result:
    """`abs.py importAlmaPayments --quiet` on a fresh store and fresh servers, timed."""
    with tempfile.TemporaryDirectory(prefix="bursar-bench-pay-") as tmp:
        work = Path(tmp)
        sftp_root = work / "sftp-server"
        drop = sftp_root / PAYMENTS_DIR.strip("/")
        drop.mkdir(parents=True)
        (drop / f"{PREFIX}_20250701_20260630_20260303.csv").write_bytes(payments_csv(rows))
        db = work / "data" / "bench.sqlite3"
        db.parent.mkdir()
        write_store(f"sqlite:///{db}", rows)
        servers = Servers(rows, latency, sftp_root)
        with servers as (url, api_key, port, known_hosts_line):
            known_hosts = work / "known_hosts"
            known_hosts.write_text(known_hosts_line + "\n", encoding="ascii")
            env = {**os.environ, "BURSAR_DB_URI": f"sqlite:///{db}", "ALMA_API_URL": url,
                   "ALMA_API_KEY": api_key, "ALMA_CALLS_PER_SECOND": str(budget),
                   "PAYMENTS_SFTP_HOST": "127.0.0.1", "PAYMENTS_SFTP_PORT": str(port),
                   "PAYMENTS_SFTP_USER": USER, "PAYMENTS_SFTP_PASSWORD": PASSWORD,
                   "PAYMENTS_SFTP_DIR": PAYMENTS_DIR, "SFTP_KNOWN_HOSTS": str(known_hosts),
                   "PAYMENTS_FILE_PREFIX": PREFIX, "BURSAR_TIMEZONE": "America/Phoenix",
                   "BURSAR_NOW": "2026-03-04T18:00:00", "PAYMENTS_DIR": str(work / "payments"),
                   "EXPORTS_DIR": str(work / "exports"), "LOG_DIR": str(work / "logs")}
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, str(ROOT / "abs.py"), "importAlmaPayments", "--quiet"],
                                  cwd=work, env=env, capture_output=True, text=True)
            seconds = time.perf_counter() - start
            methods, paid = servers.stats()
    problems = check_paid(rows, paid)
    if not methods:
        problems.append("Alma saw no calls")
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
        problems.insert(0, f"importAlmaPayments exited {proc.returncode}: " + " | ".join(tail))
    return Result(seconds, sum(methods.values()), problems)


def run_sequential(rows: list[Payment], latency: float, budget: int) -> Result:
    """One thread, one call at a time: GET the fee, POST op=pay, next row; same budget."""
    keys = parse_payments(payments_csv(rows), name="bench.csv").rows  # the job's own row keys
    with tempfile.TemporaryDirectory(prefix="bursar-bench-seq-") as tmp:
        servers = Servers(rows, latency, Path(tmp))
        with servers as (url, api_key, _port, _known_hosts_line), \
                AlmaHttp(url, api_key, calls_per_second=budget) as http:
            start = time.perf_counter()
            for p, row in zip(rows, keys, strict=True):
                fee = get_fee(http, p.user_id, p.fee_id)
                pay_fee(http, p.user_id, p.fee_id, amount=min(p.paid, fee.balance), method="ONLINE",
                        external_transaction_id=external_transaction_id(row.key),
                        comment=f"Paid to the Bursar on {row.date_paid} (bench, sequential)")
            seconds = time.perf_counter() - start
            methods, paid = servers.stats()
    return Result(seconds, sum(methods.values()), check_paid(rows, paid))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--payments", type=int, default=1000, help="number of payments (one per fee)")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds added to every Alma call")
    parser.add_argument("--budget", type=int, default=25, help="Alma calls per second (ALMA_CALLS_PER_SECOND)")
    args = parser.parse_args()
    if args.payments < 1 or args.budget < 1 or args.latency < 0:
        parser.error("--payments and --budget must be >= 1, --latency >= 0")
    rows = payments(args.payments)

    ours = run_pybursar(rows, args.latency, args.budget)
    seq = run_sequential(rows, args.latency, args.budget)
    floor = ours.calls / args.budget
    per = ours.calls / len(rows)
    ratio = ours.seconds / floor if floor else 0.0  # no calls at all: reported as a problem below
    print(f"(latency {args.latency * 1000:.0f} ms per call, budget {args.budget} calls/s; "
          f"target: <= 1.15x floor, <= 1.3 calls/payment; {len(rows):,} payments of "
          f"{len({p.user_id for p in rows}):,} patrons)")
    print("| payments | Alma calls | calls/payment | floor (calls/budget) | pyBursar wall time | vs floor "
          "| sequential wall time (calls) |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {len(rows):,} | {ours.calls:,} | {per:.2f} | {floor:.1f} s | {ours.seconds:.1f} s | {ratio:.2f}x "
          f"| {seq.seconds:.1f} s ({seq.calls:,}) |", flush=True)
    verdict = "meets" if ratio <= 1.15 and per <= 1.3 else "MISSES"
    print(f"pyBursar {verdict} the target; {seq.seconds / ours.seconds:.1f}x faster than sequential")
    problems = [f"pyBursar: {p}" for p in ours.problems] + [f"sequential: {p}" for p in seq.problems]
    for problem in problems:
        print("PROBLEM: " + problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
