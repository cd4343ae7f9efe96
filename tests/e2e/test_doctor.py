"""`abs.py doctor` against the sandbox: all green, then each check broken in turn.

Every broken variant must turn exactly its own line into ✗ (with one line of advice under it)
and leave the others alone, and doctor must change nothing: the store, the working folder and
the Bursar's folders are the same afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from bursar.rules import columns as C
from bursar.runtime.lock import run_lock
from bursar.sandbox.generator import SANDBOX_REPORTS
from tests.endpoints import dead_url

from .conftest import PAYMENTS_DIR, Sandbox
from .test_direction2 import PREFIX, csv


def _files(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under root: (size, mtime_ns); hidden temporaries included."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def _failures(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("✗")]


def _advice_after(stdout: str, failure: str) -> str:
    lines = stdout.splitlines()
    return lines[lines.index(failure) + 1]


@pytest.fixture
def ready(sandbox: Sandbox) -> Sandbox:
    """A sandbox with a store (one import), a payments file waiting, and the world of day 1."""
    world = sandbox.install(0)
    sandbox.drop_payment_file(f"{PREFIX}_20250701_20260630_20260302.csv", csv([]))
    result = sandbox.run("importAlmaFines", day=world.day)
    assert result.returncode == 0, result.stdout + result.stderr
    return sandbox


def doctor(box: Sandbox, *args: str, env: dict[str, str] | None = None):
    return box.run("doctor", *args, day=box.worlds[0].day, extra_env=env)


def test_all_green_and_nothing_changes(ready):
    before_work, before_server = _files(ready.work), _files(ready.sftp_root)
    before_ledger = ready.ledger()
    result = doctor(ready)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _failures(result.stdout) == []
    out = result.stdout
    for expected in ("✓ settings: every required setting is set and valid",
                     "✓ Alma: the API key works at 127.0.0.1",
                     "✓ All Fines report (ALMA_REPORT_FINES): found, with all 8 required columns by heading; "
                     "its date filter on 'Status Date' is prompted",
                     "✓ All Transactions report (ALMA_REPORT_TRANSACTIONS)",
                     "✓ All User Balances report (ALMA_REPORT_BALANCES)",
                     "✓ BURSAR_SFTP: [127.0.0.1]:", "✓ BURSAR_SFTP: host key ecdsa-sha2-nistp256 SHA256:",
                     "✓ BURSAR_SFTP: login as 'bursar' works (password)",
                     "✓ BURSAR_SFTP: upload folder /bursar/incoming is writable",
                     "✓ PAYMENTS_SFTP: payments folder /bursar/outgoing is readable: 1 file(s) start with",
                     "- S3: off", "✓ store: a pyBursar store at", "pyBursar layout version 1",
                     "✓ lock: free", "✓ EXPORTS_DIR", "✓ BACKUPS_DIR", "✓ LOG_DIR",
                     "✓ time zone: America/Phoenix"):
        assert expected in out, expected
    assert "doctor: all 19 checks passed" in out
    # read-only: no file appeared, changed or vanished here or on the server (the probe is gone)
    assert _files(ready.work) == before_work
    assert _files(ready.sftp_root) == before_server
    assert ready.ledger() == before_ledger
    assert "Traceback" not in result.stderr and "sandbox-password" not in out + result.stderr


def _wrong_key(box: Sandbox) -> dict[str, str]:
    return {"ALMA_API_KEY": "not-the-key"}


def _missing_column(box: Sandbox) -> dict[str, str]:
    world = box.worlds[0]
    columns = [c for c in C.FINES_COLUMNS if c != C.FINE_TYPE]
    box.alma.set_report(SANDBOX_REPORTS.fines, columns, [{k: v for k, v in r.items() if k != C.FINE_TYPE}
                                                         for r in world.fines])
    return {}


def _unprompted_filter(box: Sandbox) -> dict[str, str]:
    box.alma.set_report(SANDBOX_REPORTS.transactions, list(C.TRANSACTIONS_COLUMNS), box.worlds[0].transactions,
                        prompted=False)
    return {}


def _missing_report(box: Sandbox) -> dict[str, str]:
    return {"ALMA_REPORT_BALANCES": "/shared/Sandbox University/Reports/No Such Report"}


def _unknown_host_key(box: Sandbox) -> dict[str, str]:
    empty = box.work.parent / "empty_known_hosts"
    empty.write_text("")
    return {"SFTP_KNOWN_HOSTS": str(empty)}


def _bad_password(box: Sandbox) -> dict[str, str]:
    return {"BURSAR_SFTP_PASSWORD": "wrong-password"}


def _unwritable_upload(box: Sandbox) -> dict[str, str]:
    box.sftp.read_only = True  # the payments account may be read-only; the upload one must not be
    return {}


def _wrong_prefix(box: Sandbox) -> dict[str, str]:
    return {"PAYMENTS_FILE_PREFIX": "LIBRARY_PAYMENTS"}


def _store_missing(box: Sandbox) -> dict[str, str]:
    return {"BURSAR_DB_URI": f"sqlite:///{box.work / 'elsewhere' / 'bursar.sqlite3'}"}


def _bad_time_zone(box: Sandbox) -> dict[str, str]:
    return {"BURSAR_TIMEZONE": "Mars/Olympus_Mons"}


BROKEN: list[tuple[str, Callable[[Sandbox], dict[str, str]], str, str]] = [
    ("wrong key", _wrong_key, "✗ Alma: 127.0.0.1 (a local server, such as the sandbox) refused the API key",
     "check ALMA_API_KEY"),
    ("missing column", _missing_column,
     "✗ All Fines report (ALMA_REPORT_FINES): no column with the heading 'Fine Fee Type'",
     "exactly that heading"),
    ("unprompted filter", _unprompted_filter,
     "✗ All Transactions report (ALMA_REPORT_TRANSACTIONS): its date filter is not prompted: Alma answered 420033 "
     "'No more rows to fetch' to a filter on \"Fines and Fees Transactions\".\"Fine Fee Transaction Creation Date\"",
     "add a filter on 'Fine Fee Transaction Creation Date' with the operator 'is prompted'"),
    ("missing report", _missing_report,
     "✗ All User Balances report (ALMA_REPORT_BALANCES): no report at /shared/Sandbox University/Reports/No Such",
     "into ALMA_REPORT_BALANCES"),
    # one server plays both parts in the sandbox: its unknown key is a ✗ for each endpoint
    ("unknown host key", _unknown_host_key, "✗ BURSAR_SFTP: host key not known|✗ PAYMENTS_SFTP: host key not known",
     "add this line to"),
    ("bad password", _bad_password, "✗ BURSAR_SFTP: login as 'bursar' on [127.0.0.1]:", "BURSAR_SFTP_PASSWORD"),
    ("unwritable upload folder", _unwritable_upload,
     "✗ BURSAR_SFTP: upload folder /bursar/incoming is not writable", "let the account write"),
    ("wrong prefix", _wrong_prefix,
     "✗ PAYMENTS_SFTP: payments folder /bursar/outgoing is readable, but none of its 1 file(s) starts with "
     "PAYMENTS_FILE_PREFIX='LIBRARY_PAYMENTS'", "set PAYMENTS_FILE_PREFIX"),
    ("store missing", _store_missing, "✗ store: no pyBursar database at", "the first importAlmaFines (or today)"),
    ("bad time zone", _bad_time_zone,
     "✗ time zone: BURSAR_TIMEZONE 'Mars/Olympus_Mons' is not a time zone name", "America/Phoenix"),
]


@pytest.mark.parametrize("name, breaks, line, advice", BROKEN, ids=[b[0] for b in BROKEN])
def test_each_broken_check_is_its_own_line_with_advice(ready, name, breaks, line, advice):
    env = breaks(ready)
    before = _files(ready.sftp_root)
    result = doctor(ready, env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    failures = _failures(result.stdout)
    expected = line.split("|")
    assert len(failures) == len(expected), "\n" + result.stdout
    for failure, start in zip(failures, expected):
        assert failure.startswith(start), "\n" + result.stdout
        assert advice in _advice_after(result.stdout, failure)
        assert _advice_after(result.stdout, failure).startswith("    → ")
    assert "checks failed" in result.stderr and "Traceback" not in result.stderr
    assert _files(ready.sftp_root) == before  # no probe file left behind, whatever failed
    if name == "unknown host key":
        port = ready.sftp.port
        assert "the server offers ecdsa-sha2-nistp256 SHA256:" in failures[0]
        assert f"[127.0.0.1]:{port} ecdsa-sha2-nistp256 {ready.sftp.host_key.get_base64()}" in result.stdout
        assert "- BURSAR_SFTP: login and folder not tried until the host key is known" in result.stdout
    if name == "bad time zone":  # the other checks went on (in UTC)
        assert "✓ store: a pyBursar store" in result.stdout and "✓ Alma: the API key works" in result.stdout


def test_lock_held_by_a_run(ready):
    lock = ready.work / "data" / "pybursar.lock"
    with run_lock(lock, command="today", now=datetime(2026, 3, 2, 18, 0)):
        result = doctor(ready)
    assert result.returncode == 1
    assert _failures(result.stdout) == [f"✗ lock: a run holds {lock} (pid {os.getpid()}, today, started "
                                        "2026-03-02T18:00:00)"]
    assert "wait for that run to finish" in result.stdout


def test_settings_errors_are_a_line_too(ready):
    result = doctor(ready, env={"BURSAR_SFTP_PORT": "not-a-port"})
    assert result.returncode == 1
    assert _failures(result.stdout) == ["✗ settings: BURSAR_SFTP_PORT must be a port number, got 'not-a-port'"]
    missing = doctor(ready, env={"ALMA_REPORT_FINES": "", "PAYMENTS_SFTP_DIR": ""})
    # the environment wins, but an empty value means unset: only .env could fill it (there is none)
    assert "✗ settings: valid, but not set: ALMA_REPORT_FINES, PAYMENTS_SFTP_DIR" in missing.stdout


def test_quiet_prints_only_what_failed(ready):
    result = doctor(ready, "--quiet", env=_wrong_prefix(ready))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("✗ PAYMENTS_SFTP") and lines[1].startswith("    → ")


# -- S3 --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        yield endpoint
    finally:
        try:
            requests.post(f"{endpoint}/moto-api/reset", timeout=5)
        finally:
            server.stop()


def test_s3_reachable_and_writable_and_the_probe_removed(ready, moto_endpoint):
    bucket = f"doctor-{uuid.uuid4().hex[:10]}"
    client = boto3.client("s3", endpoint_url=moto_endpoint)
    client.create_bucket(Bucket=bucket)
    result = doctor(ready, env={"S3_BUCKET": bucket, "S3_PREFIX": "site/backups", "S3_ENDPOINT_URL": moto_endpoint})
    assert result.returncode == 0, result.stdout
    assert f"✓ S3: s3://{bucket}/site/backups is reachable and writable" in result.stdout
    assert client.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


def test_s3_down(ready):
    dead = dead_url()
    result = doctor(ready, env={"S3_BUCKET": "backups", "S3_ENDPOINT_URL": dead})
    assert result.returncode == 1
    failures = _failures(result.stdout)
    assert len(failures) == 1 and failures[0].startswith("✗ S3: S3 upload to s3://backups/"), result.stdout
    assert "AWS credentials" in _advice_after(result.stdout, failures[0])


def test_payments_folder_with_no_file_yet_is_fine(ready):
    for path in (ready.sftp_root / PAYMENTS_DIR.strip("/")).iterdir():
        path.unlink()
    result = doctor(ready)
    assert result.returncode == 0, result.stdout
    assert "0 file(s) start with PAYMENTS_FILE_PREFIX='ASUSASF_LIBRARY_REPORT_DTRANGE' (none has arrived yet)" \
        in result.stdout


def test_a_settings_file_others_can_read_is_a_failure(ready):
    env_file = ready.work / "site.env"
    env_file.write_text("BURSAR_DUE_DAY=25\n")
    env_file.chmod(0o644)
    result = doctor(ready, env={"BURSAR_ENV_FILE": str(env_file)})
    assert result.returncode == 1
    assert _failures(result.stdout) == [f"✗ settings file: the settings file {env_file} is readable by group and "
                                        "others (mode 0644) and holds secrets"]
    assert f"    → run chmod 600 {env_file}" in result.stdout
    env_file.chmod(0o600)
    assert doctor(ready, env={"BURSAR_ENV_FILE": str(env_file)}).returncode == 0
