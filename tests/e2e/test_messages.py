"""Messages an operator can act on (issue 13, items 6, 7, 11 and 12), through `abs.py` against
the sandbox: every failure says what and where and is notified, cron sees only what needs a
person, and the small things (--help, the help line, readable lookups, the restore prompt)."""

from __future__ import annotations

import copy
import errno
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bursar import backup as backup_mod
from bursar.backup import files as backup_files
from bursar.cli import COMMANDS
from bursar.rules import columns as c
from bursar.sandbox.generator import SANDBOX_REPORTS, install_world
from bursar.store import open_store
from tests.endpoints import free_port
from tests.httpreceiver import Receiver, receiver

from .conftest import ABS, ROOT
from .test_direction2 import PREFIX, csv, open_fines, row


def failures(hook: Receiver) -> list[str]:
    """The text of every failure notification the Slack stand-in received."""
    return [json.dumps(body, ensure_ascii=False) for body in hook.payloads() if "failed" in body.get("text", "")]


@pytest.fixture
def store(sandbox) -> None:
    """An empty pyBursar store: only importAlmaFines and today may start one."""
    open_store(sandbox.env["BURSAR_DB_URI"]).close()


@pytest.fixture
def slack(sandbox) -> Iterator[Receiver]:
    with receiver("/hook") as hook:
        sandbox.env["SLACK_ERROR_WEBHOOK_URL"] = hook.url
        yield hook


def errors(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def imported(sandbox) -> object:
    """Day 1 imported; returns the day."""
    day = sandbox.install(0).day
    result = sandbox.run("importAlmaFines", day=day)
    assert result.returncode in (0, 3), result.stdout + result.stderr
    return day


# -- item 6: file-system conditions name the setting and the path, and are notified ---------


def test_exports_dir_that_is_a_file(sandbox, slack):
    day = imported(sandbox)
    sandbox.exports_dir.write_text("not a folder")
    result = sandbox.run("exportBurs", day=day)
    assert result.returncode == 1, result.stdout + result.stderr
    assert errors(result) == [f"error: EXPORTS_DIR {sandbox.exports_dir} is a file, not a folder "
                              "(move the file away or point EXPORTS_DIR elsewhere)"]
    assert "unexpected" not in result.stderr and "Traceback" not in result.stderr
    assert len(failures(slack)) == 1 and "EXPORTS_DIR" in failures(slack)[0]
    assert str(sandbox.exports_dir) in failures(slack)[0]


def test_exports_sent_that_is_a_file(sandbox, slack):
    day = imported(sandbox)
    assert sandbox.run("exportBurs", day=day).returncode in (0, 3)
    sent = sandbox.exports_dir / "sent"
    sent.write_text("not a folder")
    result = sandbox.run("sftpToBurs", day=day)
    assert result.returncode == 1, result.stdout + result.stderr
    assert errors(result) == [f"error: EXPORTS_DIR/sent {sent} is a file, not a folder "
                              "(move the file away or point EXPORTS_DIR elsewhere)"]
    assert "unexpected" not in result.stderr
    assert len(failures(slack)) == 1 and f"EXPORTS_DIR/sent {sent}" in failures(slack)[0]


def test_payments_dir_that_is_a_file(sandbox, store, slack):
    sandbox.drop_payment_file(f"{PREFIX}_20250701_20260630_20260303.csv", csv([]))
    payments = sandbox.work / "payments"
    payments.write_text("not a folder")
    result = sandbox.run("importAlmaPayments", day=sandbox.worlds[0].day)
    assert result.returncode == 1, result.stdout + result.stderr
    assert errors(result) == [f"error: PAYMENTS_DIR {payments} is a file, not a folder "
                              "(move the file away or point PAYMENTS_DIR elsewhere)"]
    assert len(failures(slack)) == 1 and "PAYMENTS_DIR" in failures(slack)[0]


def test_a_folder_under_a_file_names_the_file_in_the_way(sandbox, slack):
    day = imported(sandbox)
    blocker = sandbox.work / "blocker"
    blocker.write_text("")
    result = sandbox.run("exportBurs", day=day, extra_env={"EXPORTS_DIR": str(blocker / "exports")})
    assert result.returncode == 1
    assert errors(result) == [f"error: EXPORTS_DIR {blocker / 'exports'} cannot be created: {blocker} is a "
                              "file, not a folder (move the file away or point EXPORTS_DIR elsewhere)"]
    assert len(failures(slack)) == 1


@pytest.mark.parametrize("debug", [False, True])
def test_an_unexpected_error_is_notified_too(sandbox, slack, debug):
    """An error no handler knows (here: the archive target is a folder) still sends the failure
    notification; with --debug the message does not tell the user to add --debug."""
    day = imported(sandbox)
    assert sandbox.run("exportBurs", day=day).returncode in (0, 3)
    name = next(p.name for p in sandbox.exports_dir.glob("LIB_charges.dat.*.1"))
    (sandbox.exports_dir / "sent" / name).mkdir(parents=True)
    result = sandbox.run("sftpToBurs", *(["--debug"] if debug else []), day=day)
    assert result.returncode == 1, result.stdout + result.stderr
    [line] = errors(result)
    assert name in line  # what and where, even when unexpected
    assert len(failures(slack)) == 1 and name in failures(slack)[0]
    assert ("run again with --debug" in result.stderr) is (not debug and "unexpected" in line)


# -- item 7: messages that say where -----------------------------------------------------------


def test_alma_unreachable_names_the_host_and_says_what_it_waits_for(sandbox):
    port = free_port()
    result = sandbox.run("importAlmaFines", day=sandbox.worlds[0].day,
                         extra_env={"ALMA_API_URL": f"http://127.0.0.1:{port}", "ALMA_RETRIES": "1"})
    assert result.returncode == 1
    assert errors(result) == [f"error: GET /almaws/v1/analytics/reports: Alma at 127.0.0.1:{port} not reachable "
                              "(connection refused); gave up after 2 attempts (check ALMA_API_URL and the network)"]
    # the three reports are fetched in parallel: each may retry once before the first gives up
    retries = [line for line in result.stderr.splitlines() if "retry" in line]
    assert 1 <= len(retries) <= 3
    for line in retries:
        assert re.fullmatch(rf"WARNING Alma at 127\.0\.0\.1:{port} not reachable \(connection refused\); "
                            r"retry 1 of 1 in [0-9.]+ s \(GET /almaws/v1/analytics/reports\)", line)


def test_no_more_rows_on_the_first_page_names_the_report_setting(sandbox):
    world = sandbox.install(0)
    columns = [h for h in c.FINES_COLUMNS if h != c.STATUS_DATE]  # no prompt on the filtered column
    sandbox.alma.set_report(SANDBOX_REPORTS.fines, columns,
                            [{k: v for k, v in r.items() if k != c.STATUS_DATE} for r in world.fines])
    result = sandbox.run("importAlmaFines", day=world.day)
    assert result.returncode == 1
    [line] = errors(result)
    assert f"ALMA_REPORT_FINES ({SANDBOX_REPORTS.fines})" in line
    assert "420033" in line and 'needs an "is prompted" filter on its date column' in line
    assert c.FINES_FILTER_COLUMN in line
    assert sandbox.ledger()["fines"] == []


def _mount_tiny_tmpfs(folder: Path) -> bool:
    folder.mkdir(parents=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(folder)],
                          capture_output=True)
    return done.returncode == 0


def test_backups_dir_full_names_the_backups_folder(sandbox):
    day = imported(sandbox)
    backups = sandbox.work / "tiny-backups"
    if not _mount_tiny_tmpfs(backups):
        pytest.skip("needs root and tmpfs to make a full BACKUPS_DIR")
    try:
        result = sandbox.run("backupDB", day=day, extra_env={"BACKUPS_DIR": str(backups)})
    finally:
        subprocess.run(["umount", str(backups)], check=True)
    assert result.returncode == 1, result.stdout + result.stderr
    assert errors(result) == [f"error: BACKUPS_DIR {backups}: no space left on the device (free some space, "
                              "or point BACKUPS_DIR elsewhere); the store was not changed"]
    assert "bursar.sqlite3" not in result.stderr  # the database is not the problem


def test_backups_dir_full_while_compressing_names_the_backups_folder(tmp_path, monkeypatch):
    """The same without root: the disk fills up while the archive is compressed."""
    import sqlite3

    db = tmp_path / "data" / "bursar.sqlite3"
    db.parent.mkdir()
    sqlite3.connect(db).close()

    def full(src: Path, dest: Path, **_: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dest))

    monkeypatch.setattr(backup_files, "gzip_into", full)  # the compression step both engines share
    with pytest.raises(backup_mod.BackupError) as caught:
        backup_mod.create_backup(f"sqlite:///{db}", tmp_path / "backups", now=_now(), keep=3)
    assert str(caught.value) == (f"BACKUPS_DIR {tmp_path / 'backups'}: no space left on the device (free some "
                                 "space, or point BACKUPS_DIR elsewhere); the store was not changed")
    assert [p.name for p in (tmp_path / "backups").iterdir()] == []  # no temporary file left


def _now():
    from datetime import UTC, datetime

    return datetime(2026, 3, 2, 18, 0, tzinfo=UTC)


@pytest.mark.parametrize("case", ["unknown key", "folder", "garbage"])
def test_known_hosts_problems_say_what_to_do(sandbox, store, tmp_path, case):
    known_hosts = tmp_path / "kh"
    if case == "unknown key":
        known_hosts.write_text("")
    elif case == "folder":
        known_hosts.mkdir()
    else:
        known_hosts.write_text("# hand-edited\nthis is not a known_hosts line\n")
    result = sandbox.run("importAlmaPayments", day=sandbox.worlds[0].day,
                         extra_env={"SFTP_KNOWN_HOSTS": str(known_hosts)})
    assert result.returncode == 1
    [line] = errors(result)
    key = sandbox.sftp.host_key
    if case == "unknown key":
        assert "SHA256:" in line and "Bursar's office" in line
        assert line.endswith(f"add this line to {known_hosts}: [127.0.0.1]:{sandbox.sftp.port} "
                             f"{key.get_name()} {key.get_base64()}")
    elif case == "folder":
        assert line == (f"error: PAYMENTS_SFTP: known_hosts file {known_hosts} (SFTP_KNOWN_HOSTS) "
                        "is a folder, not a file")
    else:
        assert line.startswith(f"error: PAYMENTS_SFTP: cannot read known_hosts file {known_hosts} "
                               "(SFTP_KNOWN_HOSTS): line 2 is not a known_hosts entry")


HOLDER = """
import sys
from datetime import datetime
from pathlib import Path
from bursar.runtime.lock import run_lock
with run_lock(Path(sys.argv[1]), command="today", now=datetime.fromisoformat("2026-03-02T06:00:00-07:00")):
    print("locked", flush=True)
    sys.stdin.read()
"""


def test_lock_held_shows_the_holders_command(sandbox, store):
    lock = sandbox.work / "data" / "pybursar.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock)], cwd=ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        result = sandbox.run("exportBurs", day=sandbox.worlds[0].day)
    finally:
        holder.kill()
        holder.communicate(timeout=10)
    assert result.returncode == 1
    assert errors(result) == [f"error: another pyBursar run (today, pid {holder.pid}, started "
                              f"2026-03-02T06:00:00-07:00) holds the lock {lock}; try again when it has finished"]


def test_a_wrong_payments_file_prefix_says_files_exist_but_none_matches(sandbox, store):
    sandbox.drop_payment_file("LIBRARY_PAYMENTS_20260303.csv", csv([]))
    sandbox.drop_payment_file("LIBRARY_PAYMENTS_20260304.csv", csv([]))
    result = sandbox.run("importAlmaPayments", day=sandbox.worlds[0].day)
    assert result.returncode == 0, result.stdout + result.stderr
    assert ("no new payment file in /bursar/outgoing: 2 files there, but none starts with "
            f"PAYMENTS_FILE_PREFIX '{PREFIX}'") in result.stdout
    assert "LIBRARY_PAYMENTS_20260303.csv" in result.stdout


def test_no_payment_file_at_all_is_told_apart(sandbox, store):
    result = sandbox.run("importAlmaPayments", day=sandbox.worlds[0].day)
    assert result.returncode == 0
    assert "no new payment file in /bursar/outgoing (the folder is empty)" in result.stdout


@pytest.mark.parametrize("case", ["missing", "broken"])
def test_a_bad_legacy_xref_file_stops_the_import_at_the_start(sandbox, tmp_path, case):
    xref = tmp_path / "sierra_fine_xref.json"
    if case == "broken":
        xref.write_text('[\n  {"bursar_ref_id": "364089_b_01",\n  oops\n]\n')
    sandbox.install(0)  # no Sierra fine in Alma at all: the file is checked anyway
    result = sandbox.run("importAlmaFines", day=sandbox.worlds[0].day,
                         extra_env={"BURSAR_LEGACY_XREF_FILE": str(xref)})
    assert result.returncode == 2, result.stdout + result.stderr
    [line] = errors(result)
    if case == "missing":
        assert line == f"error: BURSAR_LEGACY_XREF_FILE {xref} does not exist"
    else:
        assert line.startswith(f"error: BURSAR_LEGACY_XREF_FILE {xref}: the legacy cross-reference file is "
                               "not JSON (line 3, column 3")
    assert not [call for call in sandbox.alma.calls if call["path"].endswith("/reports")]  # nothing fetched


# -- item 11: cron and the console ------------------------------------------------------------


def test_quiet_prints_nothing_on_a_clean_run(sandbox):
    day = imported(sandbox)
    for command in ("exportBurs", "sftpToBurs", "importAlmaPayments", "backupDB"):
        result = sandbox.run(command, "--quiet", day=day)
        assert result.returncode == 0, result.stdout + result.stderr
        assert (command, result.stdout, result.stderr) == (command, "", "")


def test_quiet_prints_the_attention_list_on_exit_3(sandbox):
    world = copy.deepcopy(sandbox.worlds[0])
    install_world(sandbox.alma, world)
    rows = copy.deepcopy(world.transactions)
    rows[0][c.TRANS_TYPE] = "Refund"
    sandbox.alma.set_report(SANDBOX_REPORTS.transactions, c.TRANSACTIONS_COLUMNS, rows)
    result = sandbox.run("importAlmaFines", "--quiet", day=world.day)
    assert result.returncode == 3
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"importAlmaFines on .+, started .+: 1 item needs attention", lines[0])
    assert lines[1] == "  needs attention (1):"
    assert "unknown transaction type 'Refund'" in lines[2]
    assert len(lines) == 3 and "fines new" not in result.stdout  # the list, not the whole summary
    assert result.stderr == ""


def test_quiet_prints_the_error_on_failure(sandbox):
    port = free_port()
    result = sandbox.run("importAlmaFines", "--quiet", day=sandbox.worlds[0].day,
                         extra_env={"ALMA_API_URL": f"http://127.0.0.1:{port}", "ALMA_RETRIES": "0"})
    assert result.returncode == 1
    assert result.stdout == ""
    assert errors(result) == [line for line in result.stderr.splitlines() if line]
    assert len(errors(result)) == 1 and f"127.0.0.1:{port}" in errors(result)[0]


def test_the_summary_is_printed_once_and_starts_with_command_host_start_and_outcome(sandbox):
    world = sandbox.install(0)
    result = sandbox.run("importAlmaFines", day=world.day)
    assert result.returncode == 0, result.stdout + result.stderr
    first = result.stdout.splitlines()[0]
    assert first == f"importAlmaFines on {socket.gethostname()}, started {world.day} 18:00:00 MST: ok"
    both = result.stdout + result.stderr
    assert both.count("importAlmaFines on ") == 1
    assert both.count("fines new") == 1
    log = (sandbox.work / "logs" / "bursar.log").read_text()
    assert first in log and "fines new" in log  # the log still has it


def test_paramiko_lines_stay_out_of_the_console(sandbox):
    day = imported(sandbox)
    assert sandbox.run("exportBurs", day=day).returncode in (0, 3)
    result = sandbox.run("sftpToBurs", day=day)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Authentication" not in result.stderr and "Connected (version" not in result.stderr
    assert "sftp session" not in result.stderr
    log = (sandbox.work / "logs" / "bursar.log").read_text()
    assert "Authentication (password) successful!" in log  # kept where it belongs


def test_a_malformed_payment_row_names_its_line_once(sandbox):
    from .test_direction1 import run_day

    run_day(sandbox, 0)
    [fine] = open_fines(sandbox, 1)
    rows = [row(fine, "1.00"), f'{fine["emplid"]},03/03/2026,{fine["ref"]},abc,1.00,LIB,malformed']
    sandbox.drop_payment_file(f"{PREFIX}_20250701_20260630_20260303.csv", csv(rows))
    result = sandbox.run("importAlmaPayments", day=sandbox.worlds[1].day)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "line 3: 'Charge Amount'" in result.stdout
    assert not re.search(r"line (\d+):? line \1", result.stdout)


# -- item 12: small things --------------------------------------------------------------------


@pytest.mark.parametrize("name", [command.name for command in COMMANDS])
def test_help_works_for_every_command(tmp_path, name):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALMA_", "BURSAR_", "SLACK_"))}
    empty = tmp_path / "empty"
    empty.mkdir()
    for flag in ("--help", "-h"):
        result = subprocess.run([sys.executable, str(ABS), name, flag], cwd=empty, env=env,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.startswith(f"usage: abs.py {name}")
        assert "--help" in result.stdout and "example:" in result.stdout
        assert result.stderr == ""
    assert list(empty.iterdir()) == []  # help creates nothing


def test_the_help_line_for_restore_choose_is_safe_to_paste(tmp_path):
    result = subprocess.run([sys.executable, str(ABS), "help"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().endswith(" restoreChoose"))
    assert "ask" in lines[at - 1] and "--pick" not in lines[at - 1] + lines[at]
    assert "restoreChoose --pick" in (ROOT / "README.md").read_text()  # documented for scripts


def test_lookup_fine_prints_readable_text(sandbox):
    world = copy.deepcopy(sandbox.worlds[0])
    fine = next(r for r in world.fines if r[c.FINE_TYPE] != "Credit")
    fine[c.LOAN_DETAILS] = "Über die Brücke"
    fine[c.AUTHOR] = "Müller, Jürgen"
    install_world(sandbox.alma, world)
    assert sandbox.run("importAlmaFines", day=world.day).returncode in (0, 3)
    result = sandbox.run("lookupFine", "--rootAlmaFineId", fine[c.FINE_ID], day=world.day)
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"title": "Über die Brücke"' in result.stdout and "Müller, Jürgen" in result.stdout
    assert "\\u00" not in result.stdout


@pytest.mark.parametrize("answer", ["²", "١", "１"])
def test_the_restore_prompt_accepts_only_ascii_digits(sandbox, answer):
    day = imported(sandbox)
    assert sandbox.run("backupDB", day=day).returncode == 0
    assert sandbox.run("exportBurs", day=day).returncode in (0, 3)
    before = sandbox.ledger()
    result = sandbox.run("restoreChoose", day=day, stdin=answer + "\n")
    assert result.returncode == 2, result.stdout + result.stderr
    assert errors(result) == [f"error: {answer!r} is not a number from the list; nothing was changed"]
    assert "Traceback" not in result.stderr
    assert sandbox.ledger() == before


def test_a_folder_this_account_cannot_write_in_names_the_setting(tmp_path, monkeypatch):
    """(In-process: as root every folder is writable.)"""
    from bursar.errors import BursarError
    from bursar.runtime import fs

    folder = tmp_path / "exports"
    folder.mkdir()
    monkeypatch.setattr(fs.os, "access", lambda path, mode: False)
    with pytest.raises(BursarError) as caught:
        fs.ensure_dir(folder, "EXPORTS_DIR")
    assert str(caught.value) == f"EXPORTS_DIR {folder}: permission denied (check the folder's owner and mode)"
