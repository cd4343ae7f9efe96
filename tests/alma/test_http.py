"""AlmaHttp against the real sandbox: auth header, retries, thresholds, uncertain POSTs, secrecy;
the rate limiter on a fake clock and on real threads; the error-envelope parser."""

from __future__ import annotations

import logging
import threading
import time
from decimal import Decimal

import pytest

from bursar.clients.alma.fees import get_fee, pay_fee
from bursar.clients.alma.http import AlmaUncertain, RateLimiter, parse_error_envelope
from bursar.errors import AlmaDailyLimitError, AlmaError
from tests.alma.conftest import API_KEY, FakeClock, SleepRecorder, make_http

FEE_PATH = "/almaws/v1/users/u1/fees/f1"


@pytest.fixture
def fee(sandbox):
    sandbox.set_fee("u1", "f1", balance=Decimal("10.00"), original_amount=Decimal("10.00"))


def _pay(http, amount="4.00", ext="BURS-1"):
    return pay_fee(http, "u1", "f1", amount=Decimal(amount), method="ONLINE",
                   external_transaction_id=ext, comment="Paid to bursar")


# -- auth and secrecy ------------------------------------------------------------------------

def test_key_travels_in_header_only(sandbox, http, fee):
    assert get_fee(http, "u1", "f1").balance == Decimal("10.00")
    assert sandbox.key_in_url_seen is False
    assert all("apikey" not in call["params"] for call in sandbox.calls)


def test_wrong_key_is_a_clean_gateway_error(sandbox, fee):
    with make_http(sandbox.url, api_key="not-the-key") as client:
        with pytest.raises(AlmaError) as err:
            client.get(FEE_PATH)
    assert str(err.value) == ("GET /almaws/v1/users/u1/fees/f1: HTTP 400 GENERAL_ERROR A Gateway "
                              "error has occurred - Make sure you add an appropriate apikey as a "
                              "parameter or a header.")
    assert err.value.status == 400 and err.value.code == "GENERAL_ERROR"
    assert len(sandbox.calls) == 1  # a 4xx is not retried


def test_apikey_query_parameter_is_refused_before_sending(sandbox, http):
    with pytest.raises(ValueError):
        http.get(FEE_PATH, {"apikey": API_KEY})
    assert sandbox.calls == [] and sandbox.key_in_url_seen is False


def test_key_never_in_messages_or_logs(sandbox, fee, caplog):
    caplog.set_level(logging.DEBUG)
    errors = []
    with make_http(sandbox.url, max_retries=2) as client:
        sandbox.add_fault("error", status=503, times=10)
        with pytest.raises(AlmaError) as err:
            client.get(FEE_PATH)
        errors.append(err.value)
        sandbox.clear_faults()
        sandbox.add_fault("drop", times=10)
        with pytest.raises(AlmaError) as err:
            client.get(FEE_PATH)
        errors.append(err.value)
        sandbox.clear_faults()
        sandbox.add_fault("drop", method="POST")
        with pytest.raises(AlmaUncertain) as err:
            _pay(client)
        errors.append(err.value)
        # even if Alma echoed the key back in its message, it is masked
        sandbox.add_fault("error", status=400, code="UNAUTHORIZED", message=f"bad key {API_KEY}")
        with pytest.raises(AlmaError) as err:
            client.get(FEE_PATH)
        errors.append(err.value)
    assert "bad key ***" in str(errors[-1])
    for exc in errors:
        assert API_KEY not in str(exc) and API_KEY not in repr(exc.args)
    assert caplog.records, "retries should have been logged"
    assert API_KEY not in caplog.text
    assert sandbox.key_in_url_seen is False


# -- GET retries -----------------------------------------------------------------------------

def test_persistent_500_gives_up_with_clean_message(sandbox, fee):
    sleeps = SleepRecorder()
    with make_http(sandbox.url, max_retries=3, backoff_base=0.01, backoff_max=0.03,
                   sleep=sleeps) as client:
        sandbox.add_fault("error", status=500, times=100)
        with pytest.raises(AlmaError) as err:
            client.get(FEE_PATH, {"user_id_type": "all_unique"})
    assert str(err.value) == ("GET /almaws/v1/users/u1/fees/f1: HTTP 500 INTERNAL_SERVER_ERROR "
                              "Internal server error.")
    assert err.value.status == 500
    assert [c["status"] for c in sandbox.calls] == [500, 500, 500, 500]
    # exponential backoff with jitter: each wait within [cap/2, cap], caps 0.01, 0.02, 0.03
    assert len(sleeps.sleeps) == 3
    for wait, cap in zip(sleeps.sleeps, [0.01, 0.02, 0.03]):
        assert cap / 2 <= wait <= cap


def test_500_then_success(sandbox, http, fee):
    sandbox.add_fault("error", status=502, times=2)
    assert get_fee(http, "u1", "f1").id == "f1"
    assert [c["status"] for c in sandbox.calls] == [502, 502, 200]


def test_429_burst_is_ridden_out(sandbox, http, fee):
    sandbox.add_fault("rate_limit", times=4)
    assert get_fee(http, "u1", "f1").id == "f1"
    assert [c["status"] for c in sandbox.calls] == [429] * 4 + [200]


def test_daily_threshold_stops_at_once(sandbox, http, fee):
    sandbox.add_fault("daily_limit", times=5)
    with pytest.raises(AlmaDailyLimitError) as err:
        http.get(FEE_PATH)
    assert "daily API limit is reached" in str(err.value) and "tomorrow" in str(err.value)
    assert len(sandbox.calls) == 1


def test_dropped_connection_on_get_is_retried(sandbox, http, fee):
    sandbox.add_fault("drop", times=2)
    assert get_fee(http, "u1", "f1").id == "f1"
    assert [c["status"] for c in sandbox.calls] == [None, None, 200]


def test_read_timeout_on_get_is_retried(sandbox, fee):
    sandbox.add_fault("slow", delay=0.5)
    with make_http(sandbox.url, read_timeout=0.15) as client:
        assert get_fee(client, "u1", "f1").id == "f1"
    # the retry answered; the slow first attempt is logged only when it finally answers
    assert [c["status"] for c in sandbox.calls][:1] == [200]


def test_every_attempt_waits_for_the_limiter(sandbox, fee):
    clock = FakeClock()
    limiter = RateLimiter(10, clock=clock, sleep=clock.sleep)
    sandbox.add_fault("error", status=500, times=2)
    with make_http(sandbox.url, limiter=limiter) as client:
        client.get(FEE_PATH)
    assert clock.sleeps == pytest.approx([0.1, 0.1])  # three attempts, spaced by 1/rate


# -- POST ------------------------------------------------------------------------------------

def test_post_rate_limit_is_retried_and_pays_once(sandbox, http, fee):
    sandbox.add_fault("rate_limit", method="POST", times=2)
    assert _pay(http).balance == Decimal("6.00")
    assert len(sandbox.pay_calls) == 1


def test_post_4xx_is_not_retried(sandbox, http, fee):
    with pytest.raises(AlmaError) as err:
        _pay(http, amount="12.00")
    assert not isinstance(err.value, AlmaUncertain)
    assert str(err.value) == ("POST /almaws/v1/users/u1/fees/f1: HTTP 400 401666 "
                              "Parameter is not valid.")
    assert len(sandbox.calls) == 1 and sandbox.pay_calls == []


def test_post_5xx_is_uncertain_and_not_retried(sandbox, http, fee):
    sandbox.add_fault("error", method="POST", status=500, times=3)
    with pytest.raises(AlmaUncertain) as err:
        _pay(http)
    assert "outcome unknown" in str(err.value)
    assert len(sandbox.calls) == 1


def test_post_drop_is_uncertain(sandbox, http, fee):
    sandbox.add_fault("drop", method="POST")
    with pytest.raises(AlmaUncertain):
        _pay(http)
    assert len(sandbox.calls) == 1 and sandbox.pay_calls == []


def test_post_apply_then_drop_is_uncertain_but_applied(sandbox, http, fee):
    sandbox.add_fault("apply_then_drop", method="POST")
    with pytest.raises(AlmaUncertain):
        _pay(http, ext="BURS-77")
    assert len(sandbox.calls) == 1
    assert [p["external_transaction_id"] for p in sandbox.pay_calls] == ["BURS-77"]
    assert sandbox.fees[("u1", "f1")]["balance"] == Decimal("6.00")


def test_post_timeout_is_uncertain(sandbox, fee):
    sandbox.add_fault("slow", method="POST", delay=0.4)
    with make_http(sandbox.url, read_timeout=0.1) as client:
        with pytest.raises(AlmaUncertain):
            _pay(client)
    deadline = time.monotonic() + 3
    while not sandbox.pay_calls and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(sandbox.pay_calls) == 1  # the slow request did go through in the end


def test_post_daily_threshold(sandbox, http, fee):
    sandbox.add_fault("daily_limit", method="POST")
    with pytest.raises(AlmaDailyLimitError):
        _pay(http)
    assert sandbox.pay_calls == []


def test_unreachable_alma(sandbox):
    url = sandbox.url
    sandbox.stop()
    with make_http(url, max_retries=1) as client:
        with pytest.raises(AlmaError) as err:
            client.get(FEE_PATH)
        host = url.removeprefix("http://")
        assert str(err.value) == (f"GET /almaws/v1/users/u1/fees/f1: Alma at {host} not reachable "
                                  "(connection refused); gave up after 2 attempts "
                                  "(check ALMA_API_URL and the network)")
        with pytest.raises(AlmaUncertain):
            client.post(FEE_PATH, {"op": "pay"})


# -- rate limiter ----------------------------------------------------------------------------

def test_rate_limiter_spaces_calls_on_a_smooth_schedule():
    clock = FakeClock()
    limiter = RateLimiter(4, clock=clock, sleep=clock.sleep)
    starts = []
    for _ in range(5):
        limiter.acquire()
        starts.append(clock.now)
    assert [round(s - starts[0], 6) for s in starts] == [0, 0.25, 0.5, 0.75, 1.0]
    clock.now += 10  # idle time is not banked into a burst beyond one call
    limiter.acquire()
    limiter.acquire()
    assert clock.sleeps[-1] == pytest.approx(0.25)


def test_rate_limiter_zero_budget_never_sleeps():
    clock = FakeClock()
    limiter = RateLimiter(0, clock=clock, sleep=clock.sleep)
    for _ in range(100):
        limiter.acquire()
    assert clock.sleeps == []


def test_rate_limiter_is_shared_across_threads():
    limiter = RateLimiter(100)
    stamps: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(5):
            limiter.acquire()
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(stamps) == 20
    assert max(stamps) - start >= 19 / 100 - 0.005  # 20 calls at 100/s need >= 0.19 s
    # (exact spacing is checked with a fake clock above; wall-clock windows are too jittery
    # on a loaded 2-core machine to assert here)


# -- error envelopes -------------------------------------------------------------------------

XML_ENVELOPE = """<?xml version="1.0" encoding="utf-8" standalone="yes"?>
<web_service_result xmlns="http://com/exlibris/urm/general/xmlbeans">
  <errorsExist>true</errorsExist>
  <errorList><error>
    <errorCode>401664</errorCode>
    <errorMessage>Mandatory field is missing: library</errorMessage>
    <trackingId>E02-2807130150-8OWYS-AWAE533535741</trackingId>
  </error></errorList>
</web_service_result>"""

XML_PREFIXED = ('<x:web_service_result xmlns:x="http://com/exlibris/urm/general/xmlbeans">'
                "<x:errorsExist>true</x:errorsExist><x:errorList><x:error>"
                "<x:errorCode>420033</x:errorCode><x:errorMessage>No more rows to fetch"
                "</x:errorMessage><x:trackingId>t</x:trackingId></x:error></x:errorList>"
                "</x:web_service_result>")


@pytest.mark.parametrize("body, ctype, expected", [
    (XML_ENVELOPE, "application/xml", ("401664", "Mandatory field is missing: library")),
    (XML_ENVELOPE.encode("utf-8"), None, ("401664", "Mandatory field is missing: library")),
    (XML_PREFIXED, "text/xml", ("420033", "No more rows to fetch")),
    ('{"errorsExist":true,"errorList":{"error":[{"errorCode":"402204","errorMessage":"Input '
     'parameters mmsId banana is not numeric.","trackingId":"E01"}]},"result":null}',
     "application/json", ("402204", "Input parameters mmsId banana is not numeric.")),
    ('{"web_service_result":{"errorsExist":true,"errorList":{"error":{"errorCode":"NOT_FOUND",'
     '"errorMessage":"","trackingId":"unknown"}}}}', "application/json", ("NOT_FOUND", None)),
    ('{"web_service_result":{"errorsExist":true,"errorList":{"error":[{"errorCode":'
     '"UNAUTHORIZED","errorMessage":"API-key not defined or not configured to allow this API."}]}}}',
     "application/json;charset=UTF-8",
     ("UNAUTHORIZED", "API-key not defined or not configured to allow this API.")),
    ('{"errorsExist":true,"errorList":{"error":{"errorCode":401652,"errorMessage":"x"}}}', None,
     ("401652", "x")),
    ('{"errorList":{"error":[{"errorCode":"1","errorMessage":"a"},{"errorCode":"2",'
     '"errorMessage":"b"}]}}', "application/json", ("1", "a; b")),
    ("Invalid API Key", "text/plain", (None, "Invalid API Key")),
    (b"  Invalid API Key\n", None, (None, "Invalid API Key")),
    ("x" * 500, "text/plain", (None, "x" * 200)),
    ("<html><body>Bad gateway</body></html>", "text/html", (None, None)),
    ("", None, (None, None)),
    ('{"unrelated": 1}', "application/json", (None, '{"unrelated": 1}')),
])
def test_parse_error_envelope(body, ctype, expected):
    assert parse_error_envelope(body, ctype) == expected


def test_session_sends_auth_and_accept_headers(sandbox, http, fee):
    resp = http.get(FEE_PATH, accept="application/xml")  # the sandbox answers fees in JSON anyway
    assert resp.status_code == 200
    assert resp.request.headers["Authorization"] == f"apikey {API_KEY}"
    assert resp.request.headers["Accept"] == "application/xml"
    assert "apikey" not in resp.request.url
