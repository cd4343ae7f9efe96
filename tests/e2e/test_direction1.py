"""Direction 1 end to end: `abs.py` as a subprocess against the sandbox over simulated days."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bursar.rules.bursar_file import LINE_LENGTH, parse_line

from .conftest import Sandbox

GOLDEN = Path(__file__).parent / "golden"
STEPS = ("importAlmaFines", "exportBurs", "sftpToBurs")


def run_day(sandbox: Sandbox, index: int, *, expect=(0, 3)) -> None:
    day = sandbox.install(index).day
    for command in STEPS:
        result = sandbox.run(command, day=day)
        assert result.returncode in expect, f"{command} on {day}: {result.returncode}\n{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stderr


def test_three_days_produce_the_golden_files(sandbox):
    for index in range(len(sandbox.worlds)):
        run_day(sandbox, index)
    produced = sandbox.uploaded()
    if os.environ.get("BURSAR_UPDATE_GOLDEN"):
        for old in GOLDEN.glob("LIB_charges.dat.*"):
            old.unlink()
        for name, data in produced.items():
            (GOLDEN / name).write_bytes(data)
    expected = {p.name: p.read_bytes() for p in sorted(GOLDEN.glob("LIB_charges.dat.*"))}
    assert produced == expected
    # every line is a well-formed 97-character line; .1 files hold charges, .2 reversals
    for name, data in produced.items():
        lines = data.decode("ascii").split("\n")
        assert lines[-1] == "" and all(len(line) == LINE_LENGTH for line in lines[:-1])
        kinds = {parse_line(line).amount > 0 for line in lines[:-1]}
        assert kinds == ({True} if name.endswith(".1") else {False})
    # the local archive holds the same bytes, mode 0600
    for name, data in produced.items():
        archived = sandbox.exports_dir / "sent" / name
        assert archived.read_bytes() == data
        assert archived.stat().st_mode & 0o777 == 0o600


def test_rerunning_any_command_changes_nothing(sandbox):
    for index in range(len(sandbox.worlds)):
        day = sandbox.install(index).day
        for command in STEPS:
            first = sandbox.run(command, day=day)
            assert first.returncode in (0, 3), first.stderr
            before = (sandbox.ledger(), sandbox.uploaded(), sorted(sandbox.exports_dir.rglob("*")))
            again = sandbox.run(command, day=day)
            assert again.returncode in (0, 3), again.stderr
            assert (sandbox.ledger(), sandbox.uploaded(), sorted(sandbox.exports_dir.rglob("*"))) == before, \
                f"re-running {command} on {day} changed something"


def test_dry_run_changes_nothing_and_prints_the_lines(sandbox):
    day = sandbox.install(0).day
    for command in ("importAlmaFines", "exportBurs"):
        before = sandbox.ledger()
        dry = sandbox.run(command, "--dry-run", day=day)
        assert dry.returncode in (0, 3), dry.stderr
        assert "dry run" in dry.stdout
        assert sandbox.ledger() == before
        assert sandbox.run(command, day=day).returncode in (0, 3)
    # the export dry run after a real import prints the exact lines the real run then writes
    sandbox2_day = sandbox.worlds[1].day
    sandbox.install(1)
    assert sandbox.run("importAlmaFines", day=sandbox2_day).returncode in (0, 3)
    dry = sandbox.run("exportBurs", "--dry-run", day=sandbox2_day)
    printed = [line.strip()[1:-1] for line in dry.stdout.splitlines() if line.strip().startswith("|")]
    assert printed, dry.stdout
    earlier = set(sandbox.exports_dir.glob("LIB_charges.dat.*"))
    assert sandbox.run("exportBurs", day=sandbox2_day).returncode in (0, 3)
    written = []
    for path in sorted(set(sandbox.exports_dir.glob("LIB_charges.dat.*")) - earlier):
        written += path.read_text().splitlines()
    assert sorted(printed) == sorted(written)


def test_help_lists_exactly_the_real_commands(sandbox):
    from bursar.cli import COMMANDS

    result = sandbox.run("help", day=sandbox.worlds[0].day)
    assert result.returncode == 0
    listed = [line.split("abs.py ", 1)[1].split()[0] for line in result.stdout.splitlines() if "abs.py " in line]
    assert listed == [c.name for c in COMMANDS]


def test_lookup_and_print_last_export(sandbox):
    run_day(sandbox, 0)
    last = sandbox.run("printLastExport", day=sandbox.worlds[0].day)
    assert last.returncode == 0 and "Export 1" in last.stdout and "sent" in last.stdout
    fine_id = sandbox.ledger()["fines"][0]["rootAlmaFineId"]
    found = sandbox.run("lookupFine", "--rootAlmaFineId", fine_id, day=sandbox.worlds[0].day)
    assert found.returncode == 0 and f"Fine with rootAlmaFineId {fine_id} found" in found.stdout
    assert '"trans_burs"' in found.stdout and '"exports"' in found.stdout
    missing = sandbox.run("lookupFine", "--rootAlmaFineId", "123", day=sandbox.worlds[0].day)
    assert missing.returncode == 0 and "No fine with rootAlmaFineId 123 found." in missing.stdout
    no_value = sandbox.run("lookupFine", "--rootAlmaFineId", day=sandbox.worlds[0].day)
    assert no_value.returncode == 2 and "Traceback" not in no_value.stderr


@pytest.mark.parametrize("argv, code, text", [
    (["frobnicate"], 2, "unknown command 'frobnicate'"),
    (["exportBurs", "--bogus"], 2, "unrecognized arguments"),
])
def test_usage_errors(sandbox, argv, code, text):
    result = sandbox.run(*argv, day=sandbox.worlds[0].day)
    assert result.returncode == code and text in result.stderr and "Traceback" not in result.stderr


def test_missing_setting_names_itself(sandbox):
    result = sandbox.run("importAlmaFines", day=sandbox.worlds[0].day, extra_env={"ALMA_API_KEY": ""})
    assert result.returncode == 2
    assert "ALMA_API_KEY is not set" in result.stderr and "Traceback" not in result.stderr
