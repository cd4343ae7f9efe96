"""E-mail against a real SMTP server on loopback (aiosmtpd): the message received, scrubbed; the
recipients; STARTTLS and implicit TLS with a login; an outage never raises."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from bursar import settings as settings_mod
from bursar.clients.mail import mail_failure, mail_run
from bursar.errors import SettingsError
from bursar.runtime.summary import Summary
from tests.endpoints import free_port
from tests.mailserver import PASSWORD, USER, self_signed, smtp_server

API_KEY = "l8xxSECRETKEYvalue0001"
EMPLID = "1201901471"
RAW_BODY = '{"errorsExist":true,"errorList":{"error":[{"errorMessage":"User 0123456789 not found"}]}}'


def settings(tmp_path, port: int, **extra: str) -> settings_mod.Settings:
    env = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port), "SMTP_SECURITY": "none",
           "MAIL_FROM": "pyBursar <bursar@library.example.edu>", "MAIL_TO": "systems@library.example.edu",
           "MAIL_ERRORS_TO": "oncall@library.example.edu", "ALMA_API_KEY": API_KEY, **extra}
    return settings_mod.load(env, cwd=tmp_path)


def summary(*, attention: bool = True) -> Summary:
    s = Summary("today")
    s.count("importAlmaFines: fines new", 12, Decimal("123.45"))
    s.count("exportBurs: charge lines", 3, Decimal("1234.50"))
    s.count("sftpToBurs: exports sent", 1)
    s.note("export 1: LIB_charges.dat.20260302.1.1, LIB_charges.dat.20260302.1.2 in /srv/exports")
    s.note(f"asked Alma with key {API_KEY} (a note that must never carry it)")
    s.note(f"    |{EMPLID}  531000000002  ...|")  # a dry-run line preview stays home
    if attention:
        s.flag(f"payment for 7816239430003841 (Emplid {EMPLID})", f"Alma answered {RAW_BODY}")
    s.stamp(host="bursar-01", started=datetime(2026, 3, 2, 6, 30, tzinfo=ZoneInfo("America/Phoenix")))
    return s


def test_the_summary_as_text_and_html_scrubbed(tmp_path):
    with smtp_server() as inbox:
        assert mail_run(settings(tmp_path, inbox.port), summary()) == []
    assert len(inbox.messages) == 1
    msg = inbox.messages[0]
    assert msg["Subject"] == "pyBursar today on bursar-01, started 2026-03-02 06:30:00 MST: 1 item needs attention"
    assert msg["From"] == "pyBursar <bursar@library.example.edu>" and msg["Auto-Submitted"] == "auto-generated"
    assert msg.get_content_type() == "multipart/alternative"
    text, page = inbox.text(msg).replace("\r\n", "\n"), inbox.html(msg)
    for body in (text, page):
        assert "importAlmaFines: fines new" in body and "$1,234.50" in body and "$123.45" in body
        assert "LIB_charges.dat.20260302.1.1" in body and "LIB_charges.dat.20260302.1.2" in body
        assert "payment for 7816239430003841" in body and "[response body removed]" in body
        assert EMPLID not in body and "0123456789" not in body and "errorsExist" not in body
        assert API_KEY not in body and "***" in body
        assert "531000000002" not in body  # the file-line preview was left out
    assert "Export files:\n  LIB_charges.dat.20260302.1.1\n  LIB_charges.dat.20260302.1.2" in text
    assert "<table" in page and "<td>sftpToBurs: exports sent</td>" in page
    # a run that needs attention goes to the errors address too
    assert inbox.recipients == [["systems@library.example.edu", "oncall@library.example.edu"]]


def test_a_clean_run_goes_to_mail_to_only(tmp_path):
    with smtp_server() as inbox:
        assert mail_run(settings(tmp_path, inbox.port), summary(attention=False)) == []
    assert inbox.recipients == [["systems@library.example.edu"]]
    assert inbox.messages[0]["Subject"].endswith(": ok")


def test_a_failure_goes_to_the_errors_address_only(tmp_path):
    partial = summary(attention=False)
    with smtp_server() as inbox:
        warnings = mail_failure(settings(tmp_path, inbox.port), "today",
                                f"today failed at sftpToBurs (BURSAR_SFTP: login refused for {EMPLID})", partial)
    assert warnings == []
    assert inbox.recipients == [["oncall@library.example.edu"]]
    msg = inbox.messages[0]
    assert msg["Subject"].startswith("pyBursar today FAILED on ")
    text = inbox.text(msg)
    assert "today failed at sftpToBurs (BURSAR_SFTP: login refused for [id])" in text
    assert "What the run did before it stopped:" in text and "exportBurs: charge lines" in text
    assert EMPLID not in text + inbox.html(msg)


def test_without_errors_address_failures_go_to_mail_to(tmp_path):
    with smtp_server() as inbox:
        mail_failure(settings(tmp_path, inbox.port, MAIL_ERRORS_TO=""), "payFines", "boom")
    assert inbox.recipients == [["systems@library.example.edu"]]


def test_starttls_with_a_login(tmp_path, monkeypatch):
    cert = self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert[0]))  # trust the test certificate (as a site's CA)
    with smtp_server(tls="starttls", cert=cert, login=True) as inbox:
        st = settings(tmp_path, inbox.port, SMTP_SECURITY="starttls", SMTP_USER=USER, SMTP_PASSWORD=PASSWORD)
        assert mail_run(st, summary()) == []
        wrong = settings(tmp_path, inbox.port, SMTP_SECURITY="starttls", SMTP_USER=USER, SMTP_PASSWORD="wrong-pw")
        warnings = mail_run(wrong, summary())
    assert inbox.logins[0] == (USER, PASSWORD) and len(inbox.messages) == 1
    assert len(warnings) == 1 and "refused the login of SMTP_USER (SMTP 535)" in warnings[0]
    assert "wrong-pw" not in warnings[0]


def test_implicit_tls(tmp_path, monkeypatch):
    cert = self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert[0]))
    with smtp_server(tls="tls", cert=cert, login=True) as inbox:
        st = settings(tmp_path, inbox.port, SMTP_SECURITY="tls", SMTP_USER=USER, SMTP_PASSWORD=PASSWORD)
        assert mail_run(st, summary()) == []
    assert len(inbox.messages) == 1


def test_an_untrusted_certificate_is_refused(tmp_path):
    cert = self_signed(tmp_path)  # not trusted: no SSL_CERT_FILE
    with smtp_server(tls="starttls", cert=cert) as inbox:
        warnings = mail_run(settings(tmp_path, inbox.port, SMTP_SECURITY="starttls"), summary())
    assert inbox.messages == []
    assert warnings == [f"e-mail not sent: the TLS certificate of 127.0.0.1:{inbox.port} is not trusted or not "
                        "for that name"]


def test_an_smtp_outage_never_raises(tmp_path):
    port = free_port()  # nothing listens
    assert mail_run(settings(tmp_path, port), summary()) == [f"e-mail not sent: connection to 127.0.0.1:{port} refused"]
    assert mail_failure(settings(tmp_path, port), "today", "x")[0].startswith("e-mail not sent")


def test_off_without_smtp_host(tmp_path):
    assert mail_run(settings_mod.load({}, cwd=tmp_path), summary()) == []


@pytest.mark.parametrize("extra, message", [
    ({"MAIL_TO": ""}, "SMTP_HOST is set but MAIL_TO is not"),
    ({"MAIL_FROM": ""}, "SMTP_HOST is set but MAIL_FROM is not"),
    ({"SMTP_SECURITY": "ssl"}, "SMTP_SECURITY must be starttls, tls or none, got 'ssl'"),
    ({"SMTP_PORT": "smtp"}, "SMTP_PORT must be a port number, got 'smtp'"),
    ({"MAIL_TO": "not an address"}, "MAIL_TO must be e-mail addresses separated by commas"),
    ({"SMTP_USER": "me"}, "SMTP_USER and SMTP_PASSWORD go together"),
    ({"SMTP_HOST": "smtp.example.edu", "SMTP_USER": "me", "SMTP_PASSWORD": "pw12"},
     "SMTP_SECURITY=none would send SMTP_PASSWORD in clear"),
    ({"HEALTHCHECK_URL": "hc-ping.com/abc"}, "HEALTHCHECK_URL must be an http(s) URL"),
])
def test_half_configured_mail_is_a_settings_error(tmp_path, extra, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        settings(tmp_path, 2525, **extra)


def test_smtp_password_is_a_secret(tmp_path):
    st = settings(tmp_path, 2525, SMTP_USER=USER, SMTP_PASSWORD=PASSWORD)
    assert PASSWORD in st.secret_values() and st.redacted()["SMTP_PASSWORD"] == "***"
