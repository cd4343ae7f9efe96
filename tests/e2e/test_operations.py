"""Daily operation: today and payFines, backups and restores, one run at a time."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime
from datetime import time as dtime
from decimal import Decimal

import pytest

from bursar.runtime.crash import CRASH_EXIT_CODE
from bursar.sandbox.payments_gen import fold_payments, install_world_keeping_payments, payment_files
from tests.endpoints import dead_url
from tests.httpreceiver import receiver

from .conftest import ABS
from .test_direction1 import GOLDEN
from .test_direction2 import PREFIX, csv, open_fines, pays, row


def backups(sandbox) -> list[str]:
    folder = sandbox.work / "backups"
    return sorted(p.name for p in folder.glob("pybursar-*")) if folder.exists() else []


def run_today_days(sandbox, *, crash_at: str | None = None, crash_day: int = 1, command: str = "today") -> list:
    """The cron week on the sandbox: each day Alma's Analytics shows yesterday's pay calls (the
    nightly refresh), the Bursar drops its cumulative payments file, and `today` runs."""
    files = payment_files(sandbox.worlds)
    stamped: list[dict] = []
    for index, world in enumerate(sandbox.worlds):
        now = datetime.combine(world.day, dtime(18, 0))
        install_world_keeping_payments(sandbox.alma, fold_payments(world, stamped, now=now))
        sandbox.drop_payment_file(files[index].name, files[index].data, mtime=1000 + index)
        if crash_at and index == crash_day:
            crashed = sandbox.run(command, day=world.day, extra_env={"BURSAR_CRASH_AT": crash_at})
            assert crashed.returncode == CRASH_EXIT_CODE, f"{crash_at} not reached:\n{crashed.stdout}{crashed.stderr}"
        result = sandbox.run(command, day=world.day)
        assert result.returncode in (0, 3), result.stdout + result.stderr
        stamped = [{**call, "time": call.get("time", now)} for call in
                   stamped + sandbox.alma.pay_calls[len(stamped):]]
    return files


def paid_per_fee(sandbox) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for fee, amount in pays(sandbox):
        out[fee] = out.get(fee, Decimal("0.00")) + amount
    return out


def test_today_runs_both_directions_and_backs_up(sandbox):
    files = run_today_days(sandbox)
    assert paid_per_fee(sandbox) == {fee: amount for fee, amount in files[-1].expected.items() if amount}
    assert set(sandbox.uploaded()) >= {p.name for p in GOLDEN.glob("LIB_charges.dat.*.1")}
    assert len(backups(sandbox)) == 3
    before = pays(sandbox)
    again = sandbox.run("today", day=sandbox.worlds[-1].day)
    assert again.returncode == 0, again.stdout + again.stderr
    assert pays(sandbox) == before
    assert "no new payment file" in again.stdout


TODAY_POINTS = ["today.before_exportBurs", "today.before_sftpToBurs", "today.before_importAlmaPayments",
                "today.before_backupDB", "export.after_build", "send.after_upload", "payments.after_pending"]


@pytest.mark.parametrize("point", TODAY_POINTS)
def test_today_killed_at_a_step_boundary_then_rerun_equals_a_clean_run(sandbox, tmp_path, point):
    from .conftest import make_sandbox

    run_today_days(sandbox, crash_at=point, crash_day=2 if point == "payments.after_pending" else 1)
    with make_sandbox(tmp_path / "clean", sandbox.worlds) as clean:
        run_today_days(clean)
        assert sandbox.uploaded() == clean.uploaded()
        assert sorted(pays(sandbox)) == sorted(pays(clean))
        assert _comparable(sandbox.ledger()) == _comparable(clean.ledger())


def _comparable(ledger):
    """The ledger without run-dependent stamps (a re-run happens later than a clean run's step)."""
    skip = {"updated", "created", "appliedAt", "sent_to_bursar", "chargesSent", "reversalsSent", "attempts",
            "reason", "mtime"}
    return {name: [{k: v for k, v in doc.items() if k not in skip} for doc in docs] for name, docs in ledger.items()}


def test_pay_fines_is_payments_then_backup(sandbox):
    run_today_days(sandbox)
    fines = open_fines(sandbox, 1)
    sandbox.drop_payment_file(f"{PREFIX}_20250701_20260630_20260310.csv", csv([row(fines[0], "0.50")]), mtime=9000)
    result = sandbox.run("payFines", day=sandbox.worlds[-1].day)
    assert result.returncode in (0, 3), result.stdout + result.stderr
    assert pays(sandbox)[-1] == (fines[0]["ref"], Decimal("0.50"))
    assert "backupDB: backups" in result.stdout and len(backups(sandbox)) == 4


def test_a_failed_upload_does_not_stop_the_payments_and_the_backup_still_runs(sandbox):
    """The two directions are independent: a wrong upload password stops Direction 1 at
    sftpToBurs, and the Bursar's payments are still applied."""
    files = payment_files(sandbox.worlds)
    assert sandbox.run("today", day=sandbox.install(0).day).returncode in (0, 3)
    world = sandbox.worlds[1]
    install_world_keeping_payments(sandbox.alma, fold_payments(world, [], now=datetime.combine(world.day, dtime(18))))
    sandbox.drop_payment_file(files[1].name, files[1].data, mtime=1001)
    sandbox.env["BURSAR_SFTP_PASSWORD"] = "wrong"
    result = sandbox.run("today", day=world.day)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "sftpToBurs failed" in result.stdout and "importAlmaPayments: applied in Alma" in result.stdout
    assert "today failed at sftpToBurs" in result.stderr and "Traceback" not in result.stderr
    assert paid_per_fee(sandbox) == {fee: amount for fee, amount in files[1].expected.items() if amount}
    assert len(backups(sandbox)) == 2


def test_every_failed_step_is_named(sandbox):
    day = sandbox.install(0).day
    sandbox.env["BURSAR_SFTP_PASSWORD"] = "wrong"
    sandbox.env["PAYMENTS_SFTP_PASSWORD"] = "wrong too"
    result = sandbox.run("today", day=day)
    assert result.returncode == 1
    assert "today failed at sftpToBurs, importAlmaPayments" in result.stderr
    assert len(backups(sandbox)) == 1


def test_backup_change_restore_round_trip(sandbox):
    day = sandbox.install(0).day
    assert sandbox.run("importAlmaFines", day=day).returncode in (0, 3)
    assert sandbox.run("backupDB", day=day).returncode == 0
    saved = sandbox.ledger()
    assert sandbox.run("exportBurs", day=day).returncode in (0, 3)
    assert sandbox.ledger() != saved
    restored = sandbox.run("restoreLast", day=day)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert sandbox.ledger() == saved
    assert "saved as" in restored.stdout


@pytest.mark.parametrize("answer", ["9", "abc", ""])
def test_restore_choose_with_a_bad_answer_changes_nothing(sandbox, answer):
    day = sandbox.install(0).day
    assert sandbox.run("importAlmaFines", day=day).returncode in (0, 3)
    assert sandbox.run("backupDB", day=day).returncode == 0
    assert sandbox.run("exportBurs", day=day).returncode in (0, 3)
    before = (sandbox.ledger(), backups(sandbox))
    result = sandbox.run("restoreChoose", day=day, stdin=answer + "\n" if answer else "")
    assert result.returncode == 2 and "nothing was changed" in result.stderr
    assert (sandbox.ledger(), backups(sandbox)) == before
    picked = sandbox.run("restoreChoose", "--pick", "1", day=day)
    assert picked.returncode == 0 and sandbox.ledger() != before[0]


def test_two_concurrent_runs_one_proceeds_the_other_exits_cleanly(sandbox):
    day = sandbox.install(0).day
    sandbox.alma.latency = 3.0  # keep the first run busy while the second starts (reports load in parallel)
    env = {**os.environ, **sandbox.env, "BURSAR_NOW": f"{day.isoformat()}T18:00:00"}
    first = subprocess.Popen([sys.executable, str(ABS), "today"], cwd=sandbox.work, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        from bursar.runtime.lock import lock_holder

        lock, deadline = sandbox.work / "data" / "pybursar.lock", time.monotonic() + 20
        while lock_holder(lock) is None and time.monotonic() < deadline:  # the first run holds the lock
            time.sleep(0.05)
        second = sandbox.run("today", day=day)
        assert second.returncode == 1
        assert "another pyBursar run" in second.stderr and "Traceback" not in second.stderr
    finally:
        out, err = first.communicate(timeout=120)
    assert first.returncode in (0, 3), out + err


def test_slack_gets_the_summary_and_failures_without_emplids(sandbox):
    with receiver("/hook") as summary_hook, receiver("/hook") as error_hook:
        sandbox.env.update({"SLACK_WEBHOOK_URL": summary_hook.url, "SLACK_ERROR_WEBHOOK_URL": error_hook.url})
        day = sandbox.install(0).day
        assert sandbox.run("today", day=day).returncode in (0, 3)
        assert len(summary_hook.payloads()) == 1 and isinstance(summary_hook.payloads()[0]["blocks"], list)
        text = str(summary_hook.payloads()[0])
        assert "exportBurs" in text
        emplids = {fine["almaPatronId"] for fine in sandbox.ledger()["fines"]}
        assert not [e for e in emplids if e in text]
        sandbox.env["BURSAR_SFTP_PASSWORD"] = "wrong"
        sandbox.install(1)
        assert sandbox.run("today", day=sandbox.worlds[1].day).returncode == 1
        assert error_hook.payloads() and "sftpToBurs" in str(error_hook.payloads()[-1])
        assert "wrong" not in str(error_hook.payloads())
        # Slack down: the run is not affected
        sandbox.env.pop("BURSAR_SFTP_PASSWORD")
        sandbox.env.update({"BURSAR_SFTP_PASSWORD": "sandbox-password", "SLACK_WEBHOOK_URL": dead_url("/x")})
        result = sandbox.run("today", day=sandbox.worlds[1].day)
        assert result.returncode in (0, 3) and "Slack notification not sent" in result.stderr
