"""`abs.py status` after real runs on the sandbox: last runs with exit codes, staleness, unsent
exports, payment rows, open attention items, the newest backup, the size; `--json` the same."""

from __future__ import annotations

import json
import time
from datetime import date, timedelta

from .conftest import Sandbox
from .test_direction2 import PREFIX, csv, open_fines, row


def _today(box: Sandbox, index: int):
    world = box.install(index)
    result = box.run("today", day=world.day)
    assert result.returncode in (0, 3), result.stdout + result.stderr
    return world


def _status(box: Sandbox, *args: str, day: date):
    started = time.monotonic()
    result = box.run("status", *args, day=day)
    return result, time.monotonic() - started


def test_no_store_is_exit_2_and_creates_nothing(sandbox):
    result, _ = _status(sandbox, day=sandbox.worlds[0].day)
    path = sandbox.work / "data" / "bursar.sqlite3"
    assert result.returncode == 2
    assert result.stderr.strip() == (f"error: no pyBursar database at {path} "
                                     "(check BURSAR_DB_URI and the working directory)")
    assert not (sandbox.work / "data").exists()


def test_a_week_on_the_sandbox(sandbox):
    monday = _today(sandbox, 0)
    a, b = open_fines(sandbox, 2)
    # Tuesday: a payment run where Alma fails one pay (the row is failed, retried next run) ...
    sandbox.drop_payment_file(f"{PREFIX}_20250701_20260630_20260303.csv", csv([row(a, "1.00"), row(b, "1.00")]))
    sandbox.alma.add_fault("error", method="POST", path_contains=a["ref"], status=500)
    tuesday = sandbox.worlds[1].day
    paid = sandbox.run("payFines", day=tuesday)
    assert paid.returncode == 3, paid.stdout + paid.stderr
    # ... and a Wednesday whose upload fails (wrong password): the export stays written
    wednesday = sandbox.install(2).day
    assert sandbox.run("importAlmaFines", day=wednesday).returncode in (0, 3)
    assert sandbox.run("exportBurs", day=wednesday).returncode in (0, 3)
    failed = sandbox.run("sftpToBurs", day=wednesday, extra_env={"BURSAR_SFTP_PASSWORD": "wrong"})
    assert failed.returncode == 1
    before = sandbox.ledger()

    result, seconds = _status(sandbox, day=wednesday)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ") and len(line.split()) > 1}
    assert "2026-03-02 18:00  exit 0  ok" in lines["today"]
    assert "2026-03-03 18:00  exit 3  needs attention" in lines["payFines"]
    assert "exit 3  needs attention (in payFines)" in lines["importAlmaPayments"]
    assert "2026-03-04 18:00  exit 1  failed: BURSAR_SFTP: login as 'bursar'" in lines["sftpToBurs"]
    assert "exit 0  ok" in lines["exportBurs"] and "(in today)" not in lines["exportBurs"]
    assert lines["restoreLast"].split()[1:] == ["never"]
    assert "backupDB            never on its own (today and payFines end with one)" in out
    assert "today last succeeded 2 days 0 hours ago (2026-03-02 18:00); status warns after 4 days" in out
    assert "Exports written but not sent: 1" in out and "LIB_charges.dat.20260304.2." in out
    assert "Payment rows pending: 0, failed: 1" in out
    assert f"  - failed: {a['ref']} ({PREFIX}_20250701_20260630_20260303.csv line 2)" in out
    assert f"  - payment for {a['ref']}: POST " in out and "(payFines, 2026-03-03)" in out
    assert "Newest backup: pybursar-sqlite-20260304T010000Z.sqlite.gz" in out
    assert "database: " in out and "(SQLite, " in out
    assert "WARNING" not in out.replace("WARNING: 1 export(s) written but not sent", "")
    assert a["emplid"] not in out  # the payment rows are named by reference, never by Emplid
    assert seconds < 10  # a subprocess start included; the look-ups themselves are a few indexed finds

    as_json, _ = _status(sandbox, "--json", day=wednesday)
    report = json.loads(as_json.stdout)
    commands = {c["command"]: c for c in report["commands"]}
    assert commands["sftpToBurs"]["exit_code"] == 1 and commands["sftpToBurs"]["outcome"] == "failed"
    assert commands["payFines"]["exit_code"] == 3 and commands["today"]["exit_code"] == 0
    assert commands["importAlmaPayments"]["via"] == "payFines"
    assert report["today"]["stale"] is False and report["today"]["age_days"] == 2.0
    assert [e["id"] for e in report["unsent_exports"]] == [2]
    assert report["payments"]["failed"] == 1 and report["payments"]["rows"][0]["reference"] == a["ref"]
    assert [item["ref"] for item in report["attention"]] == [f"payment for {a['ref']}"]
    assert report["backup"]["newest"].startswith("pybursar-sqlite-")
    assert report["database"]["size_bytes"] > 0 and report["running"] is None

    # read-only: the ledger and the run records are as they were
    assert sandbox.ledger() == before

    # five days without a successful today: a warning, in text and JSON
    late = monday.day + timedelta(days=6)
    stale, _ = _status(sandbox, day=late)
    assert "WARNING: today has not succeeded for 6 days 0 hours (more than STATUS_STALE_DAYS=4)" in stale.stdout
    stale_json, _ = _status(sandbox, "--json", day=late)
    assert json.loads(stale_json.stdout)["today"]["stale"] is True
    custom = sandbox.run("status", day=late, extra_env={"STATUS_STALE_DAYS": "7"})
    assert "WARNING: today has not succeeded" not in custom.stdout


def test_a_later_run_settles_what_an_earlier_one_reported(sandbox):
    _today(sandbox, 0)
    a, b = open_fines(sandbox, 2)
    sandbox.drop_payment_file(f"{PREFIX}_20250701_20260630_20260303.csv", csv([row(a, "1.00")]))
    sandbox.alma.add_fault("error", method="POST", path_contains=a["ref"], status=500)
    day = sandbox.worlds[1].day
    assert sandbox.run("importAlmaPayments", day=day).returncode == 3
    first, _ = _status(sandbox, day=day)
    assert "Attention items still open (reported by the latest runs): 1" in first.stdout
    assert sandbox.run("importAlmaPayments", day=day).returncode == 0  # the failed row is paid now
    second, _ = _status(sandbox, day=day)
    assert "Attention items still open (reported by the latest runs): none" in second.stdout
    assert "Payment rows pending: 0, failed: 0" in second.stdout


def test_dry_runs_are_not_recorded(sandbox):
    world = _today(sandbox, 0)
    jobs_before = _jobs(sandbox)
    assert sandbox.run("today", "--dry-run", day=world.day).returncode in (0, 3)
    assert _jobs(sandbox) == jobs_before


def _jobs(box: Sandbox) -> list[dict]:
    from bursar.store import open_store

    store = open_store(box.env["BURSAR_DB_URI"], create=False)
    try:
        return list(store.find("jobs"))
    finally:
        store.close()
