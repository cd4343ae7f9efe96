"""Fault injection: every command is safe to re-run after a fault or a crash at any point."""

from __future__ import annotations

import pytest

from bursar.runtime.crash import CRASH_EXIT_CODE
from bursar.sandbox.generator import bulk_world

from .conftest import make_sandbox
from .test_direction1 import GOLDEN, STEPS, run_day


def test_500_on_page_2_fails_cleanly_and_rerun_gives_the_fault_free_result(sandbox, tmp_path):
    world = bulk_world(1500, seed=7, trans_per_fine=1, today=sandbox.worlds[0].day)
    from bursar.sandbox.generator import install_world

    install_world(sandbox.alma, world)
    day = world.day
    sandbox.alma.add_fault("error", path_contains="analytics", page=2, times=50, status=500)
    failed = sandbox.run("importAlmaFines", day=day)
    assert failed.returncode == 1, failed.stderr
    assert "HTTP 500" in failed.stderr and "Traceback" not in failed.stderr
    assert all(rows == [] for rows in sandbox.ledger().values()), "a failed import must change nothing"
    nothing = sandbox.run("exportBurs", day=day)
    assert nothing.returncode == 0 and "nothing to do" in nothing.stdout
    sandbox.alma.clear_faults()
    assert sandbox.run("importAlmaFines", day=day).returncode in (0, 3)
    with make_sandbox(tmp_path / "clean", sandbox.worlds) as clean:
        install_world(clean.alma, world)
        assert clean.run("importAlmaFines", day=day).returncode in (0, 3)
        assert _without_ids(clean.ledger()) == _without_ids(sandbox.ledger())


def _without_ids(ledger):
    return {name: sorted(repr(sorted((k, v) for k, v in row.items())) for row in rows) for name, rows in ledger.items()}


def test_429_bursts_do_not_fail_the_run(sandbox):
    sandbox.alma.add_fault("rate_limit", times=3)
    sandbox.alma.add_fault("rate_limit", path_contains="analytics", page=1, times=2)
    sandbox.env["ALMA_RETRIES"] = "6"
    run_day(sandbox, 0)
    assert sandbox.uploaded()
    assert sum(1 for call in sandbox.alma.calls if call["status"] == 429) == 5


def test_sftp_dropped_mid_upload_then_rerun_sends_each_file_exactly_once(sandbox):
    day = sandbox.install(0).day
    for command in STEPS[:2]:
        assert sandbox.run(command, day=day).returncode in (0, 3)
    sandbox.sftp.drop_after_bytes(100, op="write")
    dropped = sandbox.run("sftpToBurs", day=day)
    assert dropped.returncode == 1 and "Traceback" not in dropped.stderr
    assert sandbox.ledger()["burs_exports"][0]["state"] == "written"
    assert sandbox.run("sftpToBurs", day=day).returncode == 0
    assert sandbox.run("sftpToBurs", day=day).returncode == 0
    names = [name for name, _size in sandbox.sftp.uploads]
    assert len(names) == len(set(names)) and set(names) == set(sandbox.uploaded())
    assert not [p for p in sandbox.upload_dir.iterdir() if p.name.startswith(".")], "temp file left on the server"


CRASH_POINTS = [
    "import.after_stage", "import.mid_merge",
    "export.after_apply", "export.build_line", "export.after_build", "export.after_write_1", "export.after_write_2",
    "send.after_upload", "send.before_archive", "send.before_mark_sent",
]


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_killed_at_any_step_then_rerun_gives_the_same_files(sandbox, point):
    """Day 2 dies at `point`; running the day's commands again must give the golden files:
    no line lost or doubled, nothing uploaded twice."""
    run_day(sandbox, 0)
    day = sandbox.install(1).day
    crashed = False
    for command in STEPS:
        result = sandbox.run(command, day=day, extra_env={"BURSAR_CRASH_AT": point})
        if result.returncode == CRASH_EXIT_CODE:
            crashed = True
            break
        assert result.returncode in (0, 3), result.stderr
    assert crashed, f"crash point {point} was never reached"
    for command in STEPS:
        assert sandbox.run(command, day=day).returncode in (0, 3)
    run_day(sandbox, 2)
    expected = {p.name: p.read_bytes() for p in sorted(GOLDEN.glob("LIB_charges.dat.*"))}
    assert sandbox.uploaded() == expected
    names = [name for name, _size in sandbox.sftp.uploads]
    assert len(names) == len(set(names)), f"a file was uploaded twice: {names}"


def test_unknown_host_key_is_refused(sandbox, tmp_path):
    day = sandbox.install(0).day
    for command in STEPS[:2]:
        assert sandbox.run(command, day=day).returncode in (0, 3)
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    refused = sandbox.run("sftpToBurs", day=day, extra_env={"SFTP_KNOWN_HOSTS": str(empty)})
    assert refused.returncode == 1
    assert "host key" in refused.stderr and "refusing" in refused.stderr
    assert sandbox.uploaded() == {}
    assert sandbox.ledger()["burs_exports"][0]["state"] == "written"
