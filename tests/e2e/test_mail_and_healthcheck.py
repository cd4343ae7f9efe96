"""E-mail and the dead-man's switch through `abs.py`, against a real local SMTP server and a local
HTTP monitor: what a run sends, what a failed run sends, that an outage never changes the exit
code, that a dry run sends nothing; and `doctor --notify`."""

from __future__ import annotations

from tests.endpoints import dead_url, free_port
from tests.httpreceiver import receiver
from tests.mailserver import smtp_server

from .conftest import Sandbox

UUID = "0d9f1c2b-1111-4a2b-8c3d-9e8f7a6b5c4d"


def mail_env(port: int) -> dict[str, str]:
    return {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port), "SMTP_SECURITY": "none",
            "MAIL_FROM": "pyBursar <bursar@library.example.edu>", "MAIL_TO": "systems@library.example.edu",
            "MAIL_ERRORS_TO": "oncall@library.example.edu"}


def test_a_run_mails_its_summary_and_pings_start_then_success(sandbox: Sandbox):
    world = sandbox.install(0)
    with smtp_server() as inbox, receiver() as monitor:
        env = {**mail_env(inbox.port), "HEALTHCHECK_URL": f"{monitor.base}/{UUID}"}
        result = sandbox.run("today", day=world.day, extra_env=env)
    assert result.returncode in (0, 3), result.stdout + result.stderr
    assert monitor.paths == [f"/{UUID}/start", f"/{UUID}"]
    assert b"today on " in monitor.requests[1].body  # the finish ping carries the summary
    assert len(inbox.messages) == 1
    msg = inbox.messages[0]
    assert msg["Subject"].startswith("pyBursar today on ")
    text = inbox.text(msg)
    assert "LIB_charges.dat.20260302.1.1" in text and "exportBurs: charge lines" in text and "$" in text
    emplids = {r["Primary Identifier"] for r in world.fines if r.get("Primary Identifier")}
    assert not any(e in text or e in inbox.html(msg) for e in emplids)
    assert "sandbox-password" not in text and sandbox.alma.api_key not in text


def test_a_failed_run_mails_the_errors_address_and_pings_fail(sandbox: Sandbox):
    world = sandbox.install(0)
    assert sandbox.run("importAlmaFines", day=world.day).returncode == 0
    assert sandbox.run("exportBurs", day=world.day).returncode == 0
    with smtp_server() as inbox, receiver() as monitor:
        env = {**mail_env(inbox.port), "HEALTHCHECK_URL": f"{monitor.base}/{UUID}",
               "BURSAR_SFTP_PASSWORD": "wrong"}
        result = sandbox.run("sftpToBurs", day=world.day, extra_env=env)
    assert result.returncode == 1
    assert monitor.paths == [f"/{UUID}/start", f"/{UUID}/fail"]
    assert inbox.recipients == [["oncall@library.example.edu"]]
    assert "FAILED" in inbox.messages[0]["Subject"] and "login as 'bursar'" in inbox.text(inbox.messages[0])


def test_an_outage_of_both_never_changes_the_outcome(sandbox: Sandbox):
    world = sandbox.install(0)
    env = {**mail_env(free_port()), "HEALTHCHECK_URL": f"http://127.0.0.1:{free_port()}/{UUID}"}
    result = sandbox.run("today", day=world.day, extra_env=env)
    assert result.returncode in (0, 3), result.stdout + result.stderr
    assert "e-mail not sent: connection to 127.0.0.1:" in result.stderr
    assert "HEALTHCHECK_URL: start ping not sent" in result.stderr
    assert "HEALTHCHECK_URL: success ping not sent" in result.stderr
    assert UUID not in result.stdout + result.stderr  # the ping URL is a secret
    assert "Traceback" not in result.stderr


def test_a_dry_run_sends_nothing(sandbox: Sandbox):
    world = sandbox.install(0)
    with smtp_server() as inbox, receiver() as monitor:
        env = {**mail_env(inbox.port), "HEALTHCHECK_URL": f"{monitor.base}/{UUID}"}
        result = sandbox.run("today", "--dry-run", day=world.day, extra_env=env)
    assert result.returncode in (0, 3), result.stdout + result.stderr
    assert inbox.messages == [] and monitor.requests == []


def test_doctor_notify_sends_a_test_to_each(sandbox: Sandbox):
    world = sandbox.install(0)
    assert sandbox.run("importAlmaFines", day=world.day).returncode == 0
    with smtp_server() as inbox, receiver() as monitor:
        env = {**mail_env(inbox.port), "HEALTHCHECK_URL": f"{monitor.base}/{UUID}",
               "SLACK_WEBHOOK_URL": f"{monitor.base}/services/T0/B0/summary",
               "SLACK_ERROR_WEBHOOK_URL": f"{monitor.base}/services/T0/B0/errors"}
        quiet = sandbox.run("doctor", day=world.day, extra_env=env)
        assert quiet.returncode == 0 and monitor.requests == [] and inbox.messages == []
        assert "add --notify to send each a test message" in quiet.stdout
        result = sandbox.run("doctor", "--notify", day=world.day, extra_env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "✓ e-mail to MAIL_TO (systems@library.example.edu): test message accepted" in result.stdout
    assert "✓ e-mail to MAIL_ERRORS_TO (oncall@library.example.edu)" in result.stdout
    assert "✓ SLACK_WEBHOOK_URL: test message sent" in result.stdout
    assert "✓ SLACK_ERROR_WEBHOOK_URL: test message sent" in result.stdout
    assert "✓ HEALTHCHECK_URL: the monitor accepted a /log ping" in result.stdout
    assert sorted(monitor.paths) == sorted(["/services/T0/B0/summary", "/services/T0/B0/errors", f"/{UUID}/log"])
    assert [r for r in inbox.recipients] == [["systems@library.example.edu"], ["oncall@library.example.edu"]]
    assert UUID not in result.stdout


def test_doctor_notify_with_everything_down(sandbox: Sandbox):
    world = sandbox.install(0)
    assert sandbox.run("importAlmaFines", day=world.day).returncode == 0
    dead = dead_url()
    env = {**mail_env(free_port()), "MAIL_ERRORS_TO": "", "HEALTHCHECK_URL": f"{dead}/{UUID}",
           "SLACK_WEBHOOK_URL": f"{dead}/services/T0/B0/summary"}
    result = sandbox.run("doctor", "--notify", day=world.day, extra_env=env)
    assert result.returncode == 1
    failures = [line for line in result.stdout.splitlines() if line.startswith("✗")]
    assert [f.split(":")[0] for f in failures] == ["✗ e-mail to MAIL_TO (systems@library.example.edu)",
                                                   "✗ SLACK_WEBHOOK_URL", "✗ HEALTHCHECK_URL"]
    assert "connection to 127.0.0.1:" in failures[0] and "refused" in failures[0]
    assert UUID not in result.stdout and "/services/T0" not in result.stdout
