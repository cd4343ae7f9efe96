"""The shape the code must keep: jobs never decide what a dry run means."""

from __future__ import annotations

import re
from pathlib import Path

JOBS = Path(__file__).resolve().parents[2] / "bursar" / "jobs"


def test_no_job_reads_dry_run():
    offenders = [f"{p.name}:{n}" for p in sorted(JOBS.glob("*.py"))
                 for n, line in enumerate(p.read_text().splitlines(), 1) if re.search(r"\bdry_run\b", line)]
    assert offenders == [], "a job decides on dry_run itself; go through ctx.effects instead"


def test_no_job_writes_files_or_pays_around_the_effects():
    direct = re.compile(r"\b(os\.replace|write_file_atomic|upload_verified|pay_fee|create_backup|restore_backup)\(")
    # doctor is read-only by design: its upload probe (a temporary name, removed) is its check
    offenders = [f"{p.name}:{n}: {line.strip()}" for p in sorted(JOBS.glob("*.py")) if p.name != "doctor.py"
                 for n, line in enumerate(p.read_text().splitlines(), 1) if direct.search(line)]
    assert offenders == []


def test_files_are_renamed_into_place_only_by_fs():
    """One atomic writer (bursar/runtime/fs.py): a temporary file, a rename or a folder fsync written
    anywhere else is a fourth copy with its own error handling (the sandbox is not production)."""
    package = JOBS.parent
    by_hand = re.compile(r"\b(os\.replace\(|os\.rename\(|tempfile\.mkstemp\(|os\.fsync\(\w*fd\)|def _?fsync_dir)")
    offenders = [f"{p.relative_to(package)}:{n}: {line.strip()}" for p in sorted(package.rglob("*.py"))
                 if p.name != "fs.py" and "sandbox" not in p.parts
                 for n, line in enumerate(p.read_text().splitlines(), 1) if by_hand.search(line)]
    assert offenders == [], "write through bursar.runtime.fs (atomic_file, publish, move, fsync_dir)"


def test_the_layering_contracts_hold():
    """The import-linter contracts of `make lint` (.importlinter), in the test run too, so CI
    fails on a broken layer."""
    import subprocess
    import sys

    root = JOBS.parents[1]
    tool = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(tool)], cwd=root, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
