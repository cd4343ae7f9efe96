"""Each command removes the temporary files a killed run of its kind left, and nothing else."""

from __future__ import annotations

from .test_operations import run_today_days


def test_today_removes_a_killed_runs_temporary_files_and_only_those(sandbox):
    work = sandbox.work
    for folder in ("exports", "payments", "backups", "backups/before-restore", "data"):
        (work / folder).mkdir(parents=True, exist_ok=True)
    ours = [
        "exports/.LIB_charges.dat.20260302.1.1.k3j_x9a0.tmp",
        "payments/.ASUSASF_LIBRARY_REPORT_DTRANGE_20250701.csv.ab12cd34.part",
        "backups/.pybursar-tmp-q1w2e3r4.sqlite3", "backups/.pybursar-tmp-q1w2e3r4.sqlite3-journal",
        "backups/.pybursar-tmp-zx8_cv7b.sqlite.gz",
    ]
    not_ours = [
        "exports/.notes.txt.k3j_x9a0.tmp",            # not an export file name
        "exports/LIB_charges.dat.draft.tmp",
        "payments/.other_report.csv.ab12cd34.part",   # another prefix
        "payments/.ASUSASF_LIBRARY_REPORT_DTRANGE_x.csv.part",  # not our random part
        "backups/.pybursar-tmp-important",            # not a name we make
        "backups/pybursar-notes.txt",
    ]
    for name in ours + not_ours:
        (work / name).write_bytes(b"patron data")
    run_today_days(sandbox)
    assert [n for n in ours if (work / n).exists()] == []
    assert [n for n in not_ours if not (work / n).exists()] == []
