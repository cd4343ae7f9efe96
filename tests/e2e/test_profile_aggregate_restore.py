"""aggregate = "patron" around a restore and with reconcile (docs/restore-roll-forward.md, "One
line per patron"; docs/profiles.md, "One line per patron").

A patron's line names no fine, so the Bursar's files alone cannot say which fines it billed.
The roll-forward takes the fines of a delivered patron line from the backup's record of the
export (an export the backup has as written) or from the replaced store's record of it
(captured by the restore); when neither has it, it is a gap, and billing refuses.  The oracle is
a clean run of the same three days with the same profile: the Bursar receives exactly the same
lines, and every ledger line is billed once, in the same export.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from bursar.store import open_store

from .conftest import Sandbox
from .test_operations import backups
from .test_profile_aggregate import PROFILE
from .test_restore_rollforward import restore_day1
from .week import Week, clean_week


@pytest.fixture(scope="module")
def patron_profile(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("profile") / "per-patron.toml"
    path.write_text(PROFILE)
    return path


def _week(box: Sandbox, profile: Path) -> Week:
    box.env["BURSAR_PROFILE"] = str(profile)
    return Week(box)


@pytest.fixture(scope="module")
def clean_patron_week(tmp_path_factory, worlds, patron_profile):
    """Three days of `today` with the per-patron profile, once, cleanly."""
    with clean_week(tmp_path_factory.mktemp("clean-patron"), worlds, str(patron_profile)) as week:
        yield week


def billed(box: Sandbox) -> Counter:
    """Every ledger line recorded as billed: (Bursar reference, signed amount, export, line text)."""
    ledger = box.ledger()
    tbs = {t["id"]: t for t in ledger["trans_burs"]}
    return Counter((tbs[r["transBurs"]]["bursFineId"], tbs[r["transBurs"]]["amt"], r["bursExport"], r["line"])
                   for r in ledger["burs_export_trans"])


def test_a_restore_after_send_rolls_the_patron_lines_forward(sandbox: Sandbox, clean_patron_week: Week,
                                                            patron_profile: Path):
    week = _week(sandbox, patron_profile)
    week.today(0)
    day1_backup = backups(sandbox)[-1]
    week.today(1)
    restored = restore_day1(sandbox, day1_backup)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "export 2" in restored.stdout and "recorded as sent" in restored.stdout
    assert "one line per patron and account" in restored.stdout and "accounted for" in restored.stdout
    week.today(1)
    week.today(2)

    assert all(len(v) == 1 for v in week.versions.values()), "a file on the Bursar's server was replaced"
    assert week.lines() == clean_patron_week.lines()
    assert all(n == 1 for n in week.lines().values()), "a line reached the Bursar twice"
    assert sorted(week.versions) == sorted(clean_patron_week.versions)
    # every ledger line billed once, in the export (and patron line) the clean week billed it in
    mine, clean = billed(sandbox), billed(clean_patron_week.sandbox)
    assert mine == clean and set(mine.values()) == {1}
    rows = [r for r in sandbox.ledger()["burs_export_trans"] if r["bursExport"] == 2]
    assert rows and all(r["lineGroup"] for r in rows)
    assert not [t for t in sandbox.ledger()["trans_burs"] if t["newBursExp"] and t["amt"] != 0]


def test_a_patron_export_nothing_recorded_is_a_gap(sandbox: Sandbox, patron_profile: Path):
    """The store is lost before the restore, so only the files know export 2: its patron lines
    name no fine, so the roll-forward cannot tell what they billed, and billing refuses."""
    week = _week(sandbox, patron_profile)
    week.today(0)
    day1_backup = backups(sandbox)[-1]
    week.today(1)
    for path in (sandbox.work / "data").glob("bursar.sqlite3*"):
        path.unlink()
    restored = restore_day1(sandbox, day1_backup)
    assert restored.returncode == 3, restored.stdout + restored.stderr
    assert "export 2" in restored.stdout and "name no fine" in restored.stdout
    uploaded, paid = sandbox.uploaded(), list(sandbox.alma.pay_calls)

    refused = sandbox.run("today", day=sandbox.worlds[1].day)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    message = refused.stderr.strip().splitlines()[-1]
    assert "cannot account for: export 2 (LIB_charges.dat.20260303.2.chg.csv, LIB_charges.dat.20260303.2.crd.csv)" \
        in message
    assert "one line per patron" in message and "--accept-restore-gap" in message
    assert "Traceback" not in refused.stderr
    for command in ("exportBurs", "sftpToBurs", "importAlmaFines"):
        assert sandbox.run(command, day=sandbox.worlds[1].day).returncode == 1, command
    assert sandbox.uploaded() == uploaded and sandbox.alma.pay_calls == paid
    store = open_store(sandbox.env["BURSAR_DB_URI"])
    try:
        assert store.count("burs_sent_lines") == 0 and store.get("burs_exports", 2) is None
    finally:
        store.close()


def test_a_patron_export_whose_files_differ_from_the_record_is_a_gap(sandbox: Sandbox, patron_profile: Path):
    """A line missing from the archived file of export 2: the replaced store's record of the
    export has a patron line the files do not hold, so the roll-forward cannot say which of
    the export's fines the Bursar has, and refuses."""
    week = _week(sandbox, patron_profile)
    week.today(0)
    day1_backup = backups(sandbox)[-1]
    week.today(1)
    archived = sandbox.exports_dir / "sent" / "LIB_charges.dat.20260303.2.chg.csv"
    lines = archived.read_text().split("\n")[:-1]
    assert len(lines) > 1
    archived.write_text("\n".join(lines[:-1]) + "\n")
    restored = restore_day1(sandbox, day1_backup)
    assert restored.returncode == 3, restored.stdout + restored.stderr
    assert ("export 2 (LIB_charges.dat.20260303.2.chg.csv, LIB_charges.dat.20260303.2.crd.csv): the store before "
            "the restore records patron lines for it that its files do not hold") in restored.stdout
    refused = sandbox.run("exportBurs", day=sandbox.worlds[1].day)
    assert refused.returncode == 1 and "export 2" in refused.stderr.strip().splitlines()[-1]


def test_a_patron_export_the_backup_has_as_written_is_rolled_forward_to_sent(sandbox: Sandbox,
                                                                             patron_profile: Path):
    sandbox.env["BURSAR_PROFILE"] = str(patron_profile)
    day = sandbox.install(0).day
    for command in ("importAlmaFines", "exportBurs", "backupDB", "sftpToBurs"):
        assert sandbox.run(command, day=day).returncode in (0, 3), command
    uploaded = sandbox.uploaded()
    before = billed(sandbox)
    restored = sandbox.run("restoreLast", day=day)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "export 1" in restored.stdout and "recorded as sent" in restored.stdout
    assert [e["state"] for e in sandbox.ledger()["burs_exports"]] == ["sent"]
    assert billed(sandbox) == before
    again = sandbox.run("sftpToBurs", day=day)
    assert again.returncode == 0 and "no written export waiting" in again.stdout
    assert sandbox.run("exportBurs", day=day).returncode in (0, 3)
    assert sandbox.uploaded() == uploaded and billed(sandbox) == before


@pytest.fixture(scope="module")
def clean_fine_week(tmp_path_factory, worlds):
    """The same three days with the default profile (one line per fine)."""
    with clean_week(tmp_path_factory.mktemp("clean-fine"), worlds) as week:
        yield week


def test_reconcile_with_a_per_patron_profile_sees_what_one_line_per_fine_sees(clean_patron_week: Week,
                                                                             clean_fine_week: Week):
    """reconcile's Bursar side is the ledger (each fine's ledger lines, billed one by one whatever
    the line) and the payment rows (by reference), never the text of a line; so the same days
    give the same report with one line per patron as with one line per fine."""
    pages = []
    for week in (clean_patron_week, clean_fine_week):
        box = week.sandbox
        result = box.run("reconcile", day=box.worlds[2].day)
        assert result.returncode in (0, 3), result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        pages.append((box.work / "reports" / "reconcile-20260304.csv").read_text(encoding="utf-8"))
    patron, fine = pages
    assert patron == fine
    assert len(patron.splitlines()) > 1, "the days should give reconcile something to report"

    # an export without its control totals is summed from its lines: a patron's line counts each
    # of its ledger lines once, not the line's sum once per member (nor nothing)
    box = clean_patron_week.sandbox
    html = box.work / "reports" / "reconcile-20260304.html"
    page = html.read_text(encoding="utf-8")
    db = sqlite3.connect(box.env["BURSAR_DB_URI"].removeprefix("sqlite:///"))
    with db:
        db.execute("UPDATE burs_exports SET chargesTotal = NULL, reversalsTotal = NULL")
    db.close()
    again = box.run("reconcile", day=box.worlds[2].day)
    assert again.returncode in (0, 3), again.stdout + again.stderr
    assert html.read_text(encoding="utf-8") == page
