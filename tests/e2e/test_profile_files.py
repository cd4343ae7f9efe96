"""Upload, roll-forward after a restore and reconcile with a profile other than pybursar.

With BURSAR_PROFILE=peoplesoft-csv (one CSV per export, CRLF, a count,total header) sftpToBurs
uploads each file exactly once; a restore to an older backup rolls forward from the CSV files
(the Bursar receives exactly the lines a clean week sends); a site that changed profile has its
old profile's files recognised from the text the store remembered, even after the old profile's
file is gone; reconcile reads stored lines back with the profile that wrote them.
"""

from __future__ import annotations

import re
import sqlite3
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from bursar import profile as pf
from bursar import profile_read as pr

from . import reconcile_world as rw
from .conftest import Sandbox
from .test_operations import backups
from .test_reconcile import report_rows
from .test_restore_rollforward import restore_day1
from .week import Week, clean_week

CSV = "peoplesoft-csv"
PREFIX = "LIB_charges.dat"
BUILTIN = Path(__file__).resolve().parents[2] / "bursar" / "profiles"


def site_a_text() -> str:
    """Another site's profile: two files with its own names, LF, UTF-8 (a copy of the CSV's fields)."""
    text = (BUILTIN / "peoplesoft-csv.toml").read_text()
    text = text.replace('name = "peoplesoft-csv"', 'name = "site-a"').replace('version = "1"', 'version = "7"')
    text = text.replace('name = "{prefix}.{date}.{export_id}.csv"',
                        'name = "{prefix}-{export_id}-{date}-{kind}.txt"\nkinds = ["C", "R"]')
    text = text.replace("split = false", "split = true").replace('line_ending = "crlf"', 'line_ending = "lf"')
    return text.replace('encoding = "ascii"', 'encoding = "utf-8"')


def billed(week: Week, profiles: list[pf.Profile]) -> Counter:
    """Every (reference, signed amount) line that reached the Bursar, over every version of every
    file, read back with the profile that makes the file's name."""
    out: Counter = Counter()
    for name, versions in week.versions.items():
        [(p, parsed)] = pr.recognise(profiles, PREFIX, name)
        for data in versions:
            out.update((v.fine_id, v.amount) for v in pr.parse_file(p, data, parsed).values)
    return out


@pytest.fixture(scope="module")
def clean_csv_week(tmp_path_factory, worlds):
    """Three days of `today` with the CSV profile, once, cleanly."""
    with clean_week(tmp_path_factory.mktemp("clean-csv"), worlds, CSV) as week:
        yield week


def test_csv_files_are_uploaded_exactly_once(sandbox: Sandbox):
    sandbox.env["BURSAR_PROFILE"] = CSV
    # a file the Bursar has from an export 9 this store never made, named by this profile
    (sandbox.upload_dir / "LIB_charges.dat.20260301.9.csv").write_bytes(b"")
    day = sandbox.install(0).day
    for command in ("importAlmaFines", "exportBurs"):
        assert sandbox.run(command, day=day).returncode in (0, 3), command
    written = {p.name: p.read_bytes() for p in sandbox.exports_dir.glob("*.csv")}
    assert list(written) == ["LIB_charges.dat.20260302.1.csv"]
    sent = sandbox.run("sftpToBurs", day=day)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "uploaded LIB_charges.dat.20260302.1.csv" in sent.stdout
    assert {n: d for n, d in sandbox.uploaded().items() if d} == written
    assert [p.name for p in (sandbox.exports_dir / "sent").iterdir()] == list(written)
    [export] = sandbox.ledger()["burs_exports"]
    assert (export["state"], export["chargesFilename"], export["reversalsFilename"]) == \
        ("sent", "LIB_charges.dat.20260302.1.csv", None)
    mtime = (sandbox.upload_dir / "LIB_charges.dat.20260302.1.csv").stat().st_mtime_ns
    before = sandbox.ledger()
    again = sandbox.run("sftpToBurs", day=day)
    assert again.returncode == 0 and "no written export waiting" in again.stdout
    assert sandbox.ledger() == before
    assert (sandbox.upload_dir / "LIB_charges.dat.20260302.1.csv").stat().st_mtime_ns == mtime
    # the next export goes on above the id the server's CSV name carries
    day = sandbox.install(1).day
    for command in ("importAlmaFines", "exportBurs"):
        assert sandbox.run(command, day=day).returncode in (0, 3), command
    assert max(e["id"] for e in sandbox.ledger()["burs_exports"]) == 10
    assert (sandbox.exports_dir / "LIB_charges.dat.20260303.10.csv").is_file()
    shown = sandbox.run("printLastExport", day=day).stdout
    assert "  file           LIB_charges.dat.20260303.10.csv  (charges and reversals)" in shown
    assert re.search(r"\n  charges        15 lines  \$[\d,]+\.\d\d\n  reversals      3 lines  \$1,006\.99\n",
                     shown), shown


def test_a_restore_after_send_rolls_forward_from_the_csv_files(sandbox: Sandbox, clean_csv_week: Week):
    sandbox.env["BURSAR_PROFILE"] = CSV
    week = Week(sandbox)
    week.today(0)
    day1_backup = backups(sandbox)[-1]
    week.today(1)
    restored = restore_day1(sandbox, day1_backup)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "recorded as sent" in restored.stdout and "accounted for" in restored.stdout
    week.today(1)
    week.today(2)
    assert all(len(v) == 1 for v in week.versions.values()), "a file on the Bursar's server was replaced"
    assert sorted(week.versions) == sorted(clean_csv_week.versions)
    assert week.versions == clean_csv_week.versions  # byte for byte what a clean week sends
    lines = billed(week, [pf.builtin(CSV)])
    assert lines == billed(clean_csv_week, [pf.builtin(CSV)]) and lines
    # the parts billed before the restore have their dates and term again (a later reversal needs them)
    parts = {md["bursFineId"]: md for md in sandbox.ledger()["fine_mds"]}
    assert all(parts[ref]["termCode"] and parts[ref]["fineDueDate"] for ref, amount in lines if amount > 0)


def test_files_of_a_former_profile_are_recognised_after_a_restore(sandbox: Sandbox, clean_csv_week: Week,
                                                                   tmp_path):
    site_a = tmp_path / "site-a.toml"
    site_a.write_text(site_a_text())
    sandbox.env["BURSAR_PROFILE"] = str(site_a)
    week = Week(sandbox)
    week.today(0)
    day1_backup = backups(sandbox)[-1]
    week.today(1)
    a_files = sorted(week.versions)
    assert a_files and all(n.startswith("LIB_charges.dat-") for n in a_files)
    # the site moves to the CSV profile; its old profile file is gone; then the restore
    sandbox.env["BURSAR_PROFILE"] = CSV
    site_a.unlink()
    restored = restore_day1(sandbox, day1_backup)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "recorded as sent" in restored.stdout and "accounted for" in restored.stdout
    week.today(1)
    week.today(2)
    assert all(len(v) == 1 for v in week.versions.values())
    a_profile = pf.loads(site_a_text(), "site-a.toml")
    lines = billed(week, [a_profile, pf.builtin(CSV)])
    assert lines == billed(clean_csv_week, [pf.builtin(CSV)]), "a line was billed twice or not at all"
    assert all(n == 1 for n in lines.values())
    new = sorted(set(week.versions) - set(a_files))
    assert new and all(n.endswith(".csv") for n in new)
    # export ids went on above the old profile's names
    a_ids = pr.export_ids([a_profile], PREFIX, a_files)
    assert min(pr.export_ids([pf.builtin(CSV)], PREFIX, new)) > max(a_ids)
    links = sandbox.ledger()["burs_export_trans"]
    assert {t["profile"] for t in links} == {"site-a@7", "peoplesoft-csv@1"}


def test_an_archived_file_no_known_profile_makes_is_a_gap(sandbox: Sandbox):
    sandbox.env["BURSAR_PROFILE"] = CSV
    day = sandbox.install(0).day
    for command in ("importAlmaFines", "exportBurs", "sftpToBurs", "backupDB"):
        assert sandbox.run(command, day=day).returncode in (0, 3), command
    stranger = sandbox.exports_dir / "sent" / "SU_LIB_260302_4.txt"
    stranger.write_bytes(b"H2603020|0.00\r\n")
    stranger.chmod(0o600)
    restored = sandbox.run("restoreLast", day=day)
    assert restored.returncode == 3, restored.stdout + restored.stderr
    assert "SU_LIB_260302_4.txt is in the archive of sent files, but no known profile makes that name" \
        in restored.stdout
    assert sandbox.run("exportBurs", day=day).returncode == 1
    stranger.unlink()
    assert sandbox.run("exportBurs", day=day).returncode in (0, 3)


def test_reconcile_with_the_csv_profile(sandbox: Sandbox):
    sandbox.env["BURSAR_PROFILE"] = CSV
    cases = rw.build(sandbox)
    result = sandbox.run("reconcile", day=rw.DAY1)
    assert result.returncode == 3, result.stdout + result.stderr
    assert rw.found(report_rows(sandbox, "20260303")) == cases.expected
    page = (sandbox.work / "reports" / "reconcile-20260303.html").read_text(encoding="utf-8")
    # exports without their control totals: the chart sums their stored CSV lines instead
    db = sqlite3.connect(sandbox.work / "data" / "bursar.sqlite3")
    with db:
        assert db.execute("UPDATE burs_exports SET chargesTotal = NULL, reversalsTotal = NULL").rowcount >= 1
    db.close()
    again = sandbox.run("reconcile", day=rw.DAY1)
    assert again.returncode == 3, again.stdout + again.stderr
    assert (sandbox.work / "reports" / "reconcile-20260303.html").read_text(encoding="utf-8") == page


def test_a_csv_export_the_backup_has_as_written_is_rolled_forward_to_sent(sandbox: Sandbox):
    sandbox.env["BURSAR_PROFILE"] = CSV
    for index, commands in ((0, ("importAlmaFines", "exportBurs", "sftpToBurs")),
                            (1, ("importAlmaFines", "exportBurs", "backupDB", "sftpToBurs"))):
        day = sandbox.install(index).day
        for command in commands:
            assert sandbox.run(command, day=day).returncode in (0, 3), command
    uploaded = sandbox.uploaded()
    restored = sandbox.run("restoreLast", day=day)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "export 2" in restored.stdout and "recorded as sent" in restored.stdout
    export = sandbox.ledger()["burs_exports"][-1]  # charges and reversals in the one file
    assert (export["id"], export["state"], export["numCharges"], export["numReversals"]) == (2, "sent", 15, 3)
    again = sandbox.run("sftpToBurs", day=day)
    assert again.returncode == 0 and "no written export waiting" in again.stdout
    assert sandbox.uploaded() == uploaded


PLAIN = '''name = "plain"
version = "1"

[files]
name = "{prefix}_{date}_{export_id}_{kind}.txt"
kinds = ["DR", "CR"]

[lines]
format = "csv"

[[lines.fields]]
source = "emplid"

[[lines.fields]]
source = "amount"

[[lines.fields]]
source = "term"

[[lines.fields]]
source = "fine_id"

[due]
rule = "days-after"
days = 30
'''


def test_a_profile_without_dates_rolls_forward_with_the_export_date_and_its_rules(sandbox: Sandbox, tmp_path):
    """Two files whose lines show neither dates nor sign: the file says charge or credit, the
    export's date and the profile's due rule give a rolled-forward charge its dates."""
    plain = tmp_path / "plain.toml"
    plain.write_text(PLAIN)
    sandbox.env["BURSAR_PROFILE"] = str(plain)
    day = sandbox.install(0).day
    for command in ("importAlmaFines", "backupDB", "exportBurs", "sftpToBurs"):
        assert sandbox.run(command, day=day).returncode in (0, 3), command
    assert sorted(sandbox.uploaded()) == ["LIB_charges.dat_20260302_1_DR.txt"]

    def parts() -> dict:
        return {md["bursFineId"]: (md["billingDate"], md["fineDueDate"], md["termCode"])
                for md in sandbox.ledger()["fine_mds"] if md["termCode"]}

    before = parts()
    assert before and {d for _, d, _ in before.values()} == {datetime(2026, 4, 1)}
    restored = sandbox.run("restoreLast", day=day)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "recorded as sent" in restored.stdout
    assert parts() == {}  # the backup was taken before the export
    again = sandbox.run("exportBurs", day=day)
    assert again.returncode in (0, 3), again.stdout + again.stderr
    assert "lines the Bursar already had" in again.stdout
    assert parts() == before
    assert list(sandbox.exports_dir.glob("*.txt")) == []  # nothing exported again
