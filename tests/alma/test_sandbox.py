"""SandboxAlma itself: auth, key-in-URL detection, envelopes per Accept, fault bookkeeping,
page speed, shutdown with open keep-alive connections."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest
import requests

from bursar.clients.alma.http import parse_error_envelope
from bursar.rules import columns as C
from bursar.sandbox.alma_server import SandboxAlma
from tests.alma.conftest import API_KEY

REPORTS = "/almaws/v1/analytics/reports"


@pytest.fixture
def raw(sandbox):
    with requests.Session() as session:
        yield session


def test_missing_key_is_a_gateway_error(sandbox, raw):
    resp = raw.get(sandbox.url + REPORTS, params={"path": "/x"}, timeout=5)
    assert resp.status_code == 400
    body = resp.json()
    assert body["web_service_result"]["errorList"]["error"]["errorCode"] == "GENERAL_ERROR"
    assert sandbox.calls[-1]["status"] == 400


def test_key_in_the_url_is_noticed_and_not_logged(sandbox, raw):
    resp = raw.get(sandbox.url + REPORTS, params={"path": "/x", "apikey": API_KEY}, timeout=5)
    assert resp.status_code == 400  # only the header authenticates
    assert sandbox.key_in_url_seen is True
    assert sandbox.calls[-1]["params"] == {"path": "/x"}
    assert API_KEY not in repr(sandbox.calls)


@pytest.mark.parametrize("accept, ctype", [("application/json", "json"),
                                           ("application/xml", "xml")])
def test_error_envelope_follows_accept(sandbox, raw, accept, ctype):
    sandbox.set_fee("u1", "f1", balance=Decimal("1"), original_amount=Decimal("1"))
    resp = raw.get(sandbox.url + "/almaws/v1/users/u1/fees/zzz", timeout=5,
                   headers={"Authorization": f"apikey {API_KEY}", "Accept": accept})
    assert resp.status_code == 400 and ctype in resp.headers["Content-Type"]
    assert parse_error_envelope(resp.content, resp.headers["Content-Type"]) == (
        "401665", "Fine not found.")


def test_fee_json_has_exact_amounts(sandbox, raw):
    sandbox.set_fee("u1", "f1", balance=Decimal("4.50"), original_amount=Decimal("750.00"))
    resp = raw.get(sandbox.url + "/almaws/v1/users/u1/fees/f1", timeout=5,
                   headers={"Authorization": f"apikey {API_KEY}", "Accept": "application/json"})
    assert '"balance":4.5' in resp.text and '"original_amount":750' in resp.text
    doc = json.loads(resp.text, parse_float=Decimal)
    assert doc["status"] == {"value": "ACTIVE", "desc": "Active"} and doc["transaction"] == []


def test_unknown_fault_kind_and_undeclared_columns_are_refused(sandbox):
    with pytest.raises(ValueError):
        sandbox.add_fault("explode")
    with pytest.raises(ValueError):
        sandbox.set_report("/r", ["A"], [{"A": "1", "B": "2"}])


def test_faults_are_consumed(sandbox, raw):
    sandbox.set_report("/r", C.BALANCES_COLUMNS, [])
    sandbox.add_fault("error", status=503, times=2, path_contains="analytics")
    headers = {"Authorization": f"apikey {API_KEY}", "Accept": "application/xml"}
    statuses = [raw.get(sandbox.url + REPORTS, params={"path": "/r"}, headers=headers,
                        timeout=5).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]


def test_a_page_of_1000_rows_of_21_columns_is_quick(sandbox, raw):
    rows = [{c: f"{c[:8]} {i}" for c in C.FINES_COLUMNS} for i in range(3000)]
    sandbox.set_report("/big", C.FINES_COLUMNS, rows)
    headers = {"Authorization": f"apikey {API_KEY}", "Accept": "application/xml"}
    first = raw.get(sandbox.url + REPORTS, params={"path": "/big", "limit": 1000},
                    headers=headers, timeout=5)
    token = first.text.split("<ResumptionToken>")[1].split("<")[0]
    start = time.perf_counter()
    second = raw.get(sandbox.url + REPORTS, params={"token": token, "limit": 1000},
                     headers=headers, timeout=5)
    elapsed = time.perf_counter() - start
    assert second.text.count("<Row>") == 1000 and "<ResumptionToken>" not in second.text
    assert "xsd:schema" not in second.text
    assert elapsed < 0.25, f"page took {elapsed * 1000:.0f} ms"  # typically well under 30 ms


def test_stop_ends_idle_keep_alive_connections_quickly():
    sb = SandboxAlma(api_key=API_KEY)
    url = sb.start()
    session = requests.Session()
    try:
        session.get(url + REPORTS, timeout=5)  # leaves a keep-alive connection open
        start = time.perf_counter()
        sb.stop()
        assert time.perf_counter() - start < 2
        with pytest.raises(requests.ConnectionError):
            requests.get(url + REPORTS, timeout=2)
    finally:
        session.close()
        sb.stop()  # idempotent
