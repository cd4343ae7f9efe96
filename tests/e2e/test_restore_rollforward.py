"""Exactly once across restores: a restore to an older backup never bills or pays again.

The scenario of issue 7: day 1 `today` (and its backup), day 2 `today` (an export sent, full and
partial payments applied), then the day-1 backup restored, day 2 `today` again and day 3
`today`.  Compared with a clean run of the same three days, the Bursar receives exactly the
same lines and Alma exactly the same payments; no remote file is ever replaced.
"""

from __future__ import annotations

import shutil
from collections import Counter

import pytest

from .conftest import Sandbox
from .test_operations import backups
from .week import Week
from .week import clean_week as clean_week_of


@pytest.fixture
def clean_week(tmp_path_factory, worlds):
    """The same three days run once, cleanly: what the Bursar and Alma should end up with."""
    with clean_week_of(tmp_path_factory.mktemp("clean"), worlds) as week:
        yield week


def restore_day1(sandbox: Sandbox, day1_backup: str):
    names = sorted(p.name for p in (sandbox.work / "backups").glob("pybursar-*"))
    pick = len(names) - names.index(day1_backup)  # restoreChoose lists the newest first
    return sandbox.run("restoreChoose", "--pick", str(pick), day=sandbox.worlds[1].day)


def test_restore_after_send_bills_and_pays_nothing_twice(sandbox, clean_week):
    week = Week(sandbox)
    week.today(0)
    day1_backup = backups(sandbox)[-1]
    week.today(1)
    assert any(c["amount"] for c in sandbox.alma.pay_calls), "day 2 should apply payments"
    restored = restore_day1(sandbox, day1_backup)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "recorded as sent" in restored.stdout and "accounted for" in restored.stdout
    again = week.today(1)
    assert "found already applied in Alma (not paid again)" in again.stdout
    week.today(2)

    ext_ids = Counter(c["external_transaction_id"] for c in sandbox.alma.pay_calls)
    assert [i for i, n in ext_ids.items() if n > 1] == [], "an external_transaction_id was sent twice"
    assert week.paid() == clean_week.paid()
    assert all(len(v) == 1 for v in week.versions.values()), "a file on the Bursar's server was replaced"
    assert week.lines() == clean_week.lines()
    assert all(n == 1 for n in week.lines().values()), "a line reached the Bursar twice"
    # export ids went on above every id the Bursar has: no name was handed out twice
    assert sorted(week.versions) == sorted(set(week.versions))
    assert len(week.versions) == len(clean_week.versions)


def test_restore_without_the_archive_refuses_until_the_evidence_is_back(sandbox):
    week = Week(sandbox)
    week.today(0)
    day1_backup = backups(sandbox)[-1]
    week.today(1)
    archive = sandbox.exports_dir / "sent"
    shutil.move(archive, sandbox.work / "archive-elsewhere")
    restored = restore_day1(sandbox, day1_backup)
    assert restored.returncode == 3, restored.stdout + restored.stderr
    assert "--accept-restore-gap" in restored.stdout
    uploaded, paid = sandbox.uploaded(), list(sandbox.alma.pay_calls)

    refused = sandbox.run("today", day=sandbox.worlds[1].day)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    message = refused.stderr.strip().splitlines()[-1]
    assert "cannot account for" in message and "sent" in message and "--accept-restore-gap" in message
    assert "Traceback" not in refused.stderr
    for command in ("importAlmaPayments", "sftpToBurs", "exportBurs", "importAlmaFines", "payFines"):
        assert sandbox.run(command, day=sandbox.worlds[1].day).returncode == 1, command
    assert sandbox.uploaded() == uploaded and sandbox.alma.pay_calls == paid

    # putting the archive back is enough: the next run rolls forward and goes on
    shutil.move(sandbox.work / "archive-elsewhere", archive)
    week.today(1)
    assert Counter(c["external_transaction_id"] for c in sandbox.alma.pay_calls).most_common(1)[0][1] == 1
    assert all(n == 1 for n in week.lines().values())


def test_accepting_the_gap_is_one_flag_and_is_remembered(sandbox):
    week = Week(sandbox)
    week.today(0)
    day1_backup = backups(sandbox)[-1]
    week.today(1)
    shutil.rmtree(sandbox.exports_dir / "sent")
    assert restore_day1(sandbox, day1_backup).returncode == 3
    accepted = sandbox.run("importAlmaPayments", "--accept-restore-gap", day=sandbox.worlds[1].day)
    assert accepted.returncode in (0, 3), accepted.stdout + accepted.stderr
    # payments are still found in Alma by their external ids: nothing is paid twice
    ext_ids = Counter(c["external_transaction_id"] for c in sandbox.alma.pay_calls)
    assert max(ext_ids.values()) == 1
    assert sandbox.run("importAlmaPayments", day=sandbox.worlds[1].day).returncode in (0, 3)


def test_a_backup_taken_before_the_upload_is_rolled_forward_to_sent(sandbox):
    day = sandbox.install(0).day
    for command in ("importAlmaFines", "exportBurs", "backupDB", "sftpToBurs"):
        assert sandbox.run(command, day=day).returncode in (0, 3), command
    uploaded = sandbox.uploaded()
    restored = sandbox.run("restoreLast", day=day)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "export 1" in restored.stdout and "recorded as sent" in restored.stdout
    assert [e["state"] for e in sandbox.ledger()["burs_exports"]] == ["sent"]
    again = sandbox.run("sftpToBurs", day=day)
    assert again.returncode == 0 and "no written export waiting" in again.stdout
    assert sandbox.uploaded() == uploaded


@pytest.mark.parametrize("profile, pattern", [(None, "LIB_charges.dat.*"), ("peoplesoft-csv", "*.csv")],
                         ids=["pybursar", "peoplesoft-csv (one file for charges and reversals)"])
def test_an_export_written_after_the_backup_and_never_sent_is_set_aside(sandbox, profile, pattern):
    if profile:
        sandbox.env["BURSAR_PROFILE"] = profile
    day = sandbox.install(0).day
    for command in ("importAlmaFines", "backupDB", "exportBurs"):
        assert sandbox.run(command, day=day).returncode in (0, 3), command
    written = sorted(p.name for p in sandbox.exports_dir.glob(pattern))
    assert written
    restored = sandbox.run("restoreLast", day=day)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "never delivered" in restored.stdout
    assert sorted(p.name for p in (sandbox.exports_dir / "written-before-restore").iterdir()) == written
    # the restore's undo stands: the next export bills the same lines under a new id
    for command in ("exportBurs", "sftpToBurs"):
        assert sandbox.run(command, day=day).returncode in (0, 3), command
    assert sorted(sandbox.uploaded()) == [n.replace(".1.", ".2.") for n in written]
