"""Slack notifications against a real local HTTP receiver (127.0.0.1, ephemeral port)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest

from bursar import settings as settings_mod
from bursar.clients.notify import (
    HEADER_LIMIT,
    SECTION_LIMIT,
    failure_blocks,
    notify_failure,
    notify_run,
    scrub,
    send,
    summary_blocks,
)
from bursar.runtime.summary import Summary
from tests.endpoints import dead_url
from tests.httpreceiver import Receiver
from tests.httpreceiver import receiver as running_receiver

EMPLIDS = ("0123456789", "1201901471")
ALMA_ERROR_BODY = ('{"errorsExist":true,"errorList":{"error":[{"errorCode":"401861",'
                  '"errorMessage":"User with identifier 1201901471 was not found."}]}}')
ALMA_XML_BODY = ('<?xml version="1.0"?><web_service_result><errorsExist>true</errorsExist>'
                 '<errorList><error><errorMessage>user 0123456789</errorMessage></error></errorList>'
                 '</web_service_result>')


_HOOK = "/services/T000/B000/sEcReTwEbHoOk"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver(_HOOK) as state:
        yield state


@pytest.fixture
def error_receiver() -> Iterator[Receiver]:
    """A second, independent receiver for the error hook."""
    with running_receiver(_HOOK) as state:
        yield state


@pytest.fixture
def closed_port_url() -> str:
    return dead_url(_HOOK)


def _settings(tmp_path, **values: str):
    return settings_mod.load(environ=values, cwd=tmp_path)


def _busy_summary() -> Summary:
    summary = Summary("exportBurs")
    summary.count("charge lines", 3, Decimal("1234.56"))
    summary.count("reversal lines", 1, Decimal("65.00"))
    summary.count("skipped", 2)
    summary.note("export 42: LIB_charges.dat.20210920.42.1, LIB_charges.dat.20210920.42.2 in /srv/bursar/exports")
    summary.flag("fine 7816239430003841", "patron 0123456789 has no Emplid in the Bursar file")
    summary.flag("fine 12894251030003841", f"Alma answered 400: {ALMA_ERROR_BODY}")
    summary.flag("transaction 9999999990003841", f"Alma answered 500: {ALMA_XML_BODY}")
    summary.flag("payment of 1201901471", "could not be matched")
    return summary


def _texts(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from _texts(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _texts(v)


def _assert_valid_payload(payload: dict) -> None:
    assert isinstance(payload["text"], str) and payload["text"]
    assert isinstance(payload["blocks"], list) and payload["blocks"]
    for block in payload["blocks"]:
        assert isinstance(block, dict) and isinstance(block.get("type"), str)
        if block["type"] == "header":
            assert block["text"]["type"] == "plain_text"
            assert 0 < len(block["text"]["text"]) <= HEADER_LIMIT
        if block["type"] == "section":
            assert 0 < len(block["text"]["text"]) <= SECTION_LIMIT
    wire = json.dumps(payload)
    for emplid in EMPLIDS:
        assert emplid not in wire
    assert "errorsExist" not in wire and "web_service_result" not in wire and "errorCode" not in wire


# --- scrub ---------------------------------------------------------------------------------


def test_scrub_replaces_emplids_but_keeps_alma_ids_accounts_and_dates():
    text = ("patron 0123456789 and 1201901471, fine 7816239430003841, loan 12894251030003841, "
            "account 531000000002, file LIB_charges.dat.20210920.42.1, $1,234.56, /users/120190147/fees")
    out = scrub(text)
    assert "0123456789" not in out and "1201901471" not in out and "120190147" not in out
    assert out.count("[id]") == 3
    for kept in ("7816239430003841", "12894251030003841", "531000000002", "20210920", "$1,234.56"):
        assert kept in out


def test_scrub_cuts_raw_json_xml_and_dict_bodies():
    assert scrub(f"Alma answered 400: {ALMA_ERROR_BODY}") == "Alma answered 400: [response body removed]"
    assert scrub(f"Alma answered 500:\n{ALMA_XML_BODY}") == "Alma answered 500: [response body removed]"
    assert scrub("bad fine {'id': 3, 'almaPatronId': '1201901471'}") == "bad fine [response body removed]"
    assert scrub("amount < 5 and {0} placeholders") == "amount < 5 and {0} placeholders"
    once = scrub(f"x 1201901471 {ALMA_ERROR_BODY}")
    assert scrub(once) == once  # idempotent


# --- payload shape -------------------------------------------------------------------------


def test_summary_payload_is_valid_and_carries_counts_totals_files_and_refs():
    payload = summary_blocks(_busy_summary(), title="pyBursar exportBurs", ok=False)
    _assert_valid_payload(payload)
    wire = json.dumps(payload)
    assert json.loads(wire) == payload
    for expected in ("charge lines", "$1,234.56", "$65.00", "skipped", "LIB_charges.dat.20210920.42.1",
                     "LIB_charges.dat.20210920.42.2", "fine 7816239430003841", "fine 12894251030003841",
                     "Needs attention (4)", "[response body removed]"):
        assert expected in wire, expected


def test_many_attention_items_are_capped_and_long_texts_fit_slack_limits():
    summary = Summary("importAlmaFines")
    for i in range(500):
        summary.flag(f"fine {7816239430000000 + i}", "x" * 5000 + " patron 1201901471")
    summary.note("n" * 10000)
    payload = summary_blocks(summary, title="T" * 400, ok=False)
    _assert_valid_payload(payload)
    wire = json.dumps(payload)
    assert "fine 7816239430000000" in wire
    assert "fine 7816239430000499" not in wire
    assert "more" in wire


def test_nothing_to_do_dry_run_and_file_line_previews_stay_home():
    summary = Summary("exportBurs", dry_run=True)
    payload = summary_blocks(summary, title="pyBursar exportBurs", ok=True)
    _assert_valid_payload(payload)
    assert "nothing to do" in json.dumps(payload) and "dry run" in json.dumps(payload)
    summary.note("would write exports/LIB_charges.dat.20210920.42.1 (1 lines):")
    summary.note("    |1201901471  531000000002      65.00 10252021  09202021  2217      "
                 "12894251030003841              |")
    wire = json.dumps(summary_blocks(summary, title="pyBursar exportBurs", ok=True))
    assert "would write" in wire and "531000000002      65.00" not in wire


def test_failure_payload_is_valid_and_scrubbed():
    payload = failure_blocks("importAlmaPayments", f"Alma refused user 1201901471:\n{ALMA_ERROR_BODY}")
    _assert_valid_payload(payload)
    assert "importAlmaPayments failed" in json.dumps(payload)


# --- send ----------------------------------------------------------------------------------


def test_send_posts_json_with_blocks_as_a_list(receiver):
    payload = summary_blocks(_busy_summary(), title="pyBursar exportBurs", ok=False)
    assert send(receiver.url, payload) is None
    [request] = receiver.requests
    assert request.path == "/services/T000/B000/sEcReTwEbHoOk"
    assert request.headers["Content-Type"] == "application/json"
    received = json.loads(request.body)
    assert isinstance(received["blocks"], list) and received == payload


def test_send_reports_a_500_without_the_url(receiver):
    receiver.status, receiver.reply = 500, b"invalid_payload"
    warning = send(receiver.url, {"text": "x"})
    assert warning is not None and "500" in warning and "invalid_payload" in warning
    assert "sEcReTwEbHoOk" not in warning and "127.0.0.1" not in warning
    assert len(receiver.requests) == 1


def test_send_to_a_down_receiver_warns_quickly(closed_port_url):
    started = time.monotonic()
    warning = send(closed_port_url, {"text": "x"}, timeout=0.5)
    assert warning is not None and "sEcReTwEbHoOk" not in warning and "\n" not in warning
    assert time.monotonic() - started < 2


def test_send_to_a_slow_receiver_times_out(receiver):
    receiver.delay = 5
    started = time.monotonic()
    warning = send(receiver.url, {"text": "x"}, timeout=0.5)
    assert time.monotonic() - started < 2.5
    assert warning is not None and "0.5 s" in warning and "sEcReTwEbHoOk" not in warning


@pytest.mark.parametrize("url", ["not a url", "ftp://example.invalid/hook", "http://", "https://[::1/x"])
def test_send_with_a_bad_url_warns_and_never_raises(url):
    warning = send(url, {"text": "x"}, timeout=0.5)
    assert warning is not None and url not in warning


def test_send_without_url_sends_nothing(receiver):
    assert send(None, {"text": "x"}) is None
    assert send("", {"text": "x"}) is None
    assert receiver.requests == []


# --- notify_run / notify_failure -----------------------------------------------------------


def test_clean_run_goes_to_the_summary_hook_only(tmp_path, receiver, error_receiver):
    s = _settings(tmp_path, SLACK_WEBHOOK_URL=receiver.url, SLACK_ERROR_WEBHOOK_URL=error_receiver.url)
    summary = Summary("backupDB")
    summary.count("backups written", 1)
    assert notify_run(s, summary) == []
    assert len(receiver.requests) == 1 and error_receiver.requests == []
    _assert_valid_payload(receiver.payloads()[0])


def test_run_needing_attention_goes_to_both_hooks_scrubbed(tmp_path, receiver, error_receiver):
    s = _settings(tmp_path, SLACK_WEBHOOK_URL=receiver.url, SLACK_ERROR_WEBHOOK_URL=error_receiver.url,
                  ALMA_API_KEY="l8xxSECRETKEYVALUE")
    summary = _busy_summary()
    summary.flag("fine 7816239430003842", "GET /almaws/v1/users?apikey=l8xxSECRETKEYVALUE failed")
    assert notify_run(s, summary) == []
    for r in (receiver, error_receiver):
        [payload] = r.payloads()
        _assert_valid_payload(payload)
        assert "l8xxSECRETKEYVALUE" not in json.dumps(payload)


def test_failure_goes_to_the_error_hook_only(tmp_path, receiver, error_receiver):
    s = _settings(tmp_path, SLACK_WEBHOOK_URL=receiver.url, SLACK_ERROR_WEBHOOK_URL=error_receiver.url)
    assert notify_failure(s, "sftpToBurs", "upload failed for patron 0123456789") == []
    assert receiver.requests == []
    [payload] = error_receiver.payloads()
    _assert_valid_payload(payload)
    assert "sftpToBurs" in json.dumps(payload)


def test_unset_hooks_send_nothing_and_warn_nothing(tmp_path, receiver):
    s = _settings(tmp_path)
    assert notify_run(s, _busy_summary()) == []
    assert notify_failure(s, "today", "boom") == []
    s = _settings(tmp_path, SLACK_WEBHOOK_URL=receiver.url)
    assert notify_failure(s, "today", "boom") == []  # no error hook: the summary hook is not used
    assert receiver.requests == []


def test_notify_failures_come_back_as_warnings_naming_the_setting(tmp_path, receiver, closed_port_url):
    receiver.status = 500
    s = _settings(tmp_path, SLACK_WEBHOOK_URL=receiver.url, SLACK_ERROR_WEBHOOK_URL=closed_port_url)
    warnings = notify_run(s, _busy_summary())
    assert len(warnings) == 2
    assert warnings[0].startswith("SLACK_WEBHOOK_URL:") and "500" in warnings[0]
    assert warnings[1].startswith("SLACK_ERROR_WEBHOOK_URL:")
    assert all("sEcReTwEbHoOk" not in w for w in warnings)


def test_same_url_for_both_hooks_posts_once(tmp_path, receiver):
    s = _settings(tmp_path, SLACK_WEBHOOK_URL=receiver.url, SLACK_ERROR_WEBHOOK_URL=receiver.url)
    assert notify_run(s, _busy_summary()) == []
    assert len(receiver.requests) == 1
