"""The dead-man's switch against a local HTTP monitor: paths, bodies, timeouts, outages."""

from __future__ import annotations

import time

from bursar import settings as settings_mod
from bursar.clients import healthcheck
from tests.endpoints import free_port
from tests.httpreceiver import receiver

UUID = "5f2b9a8e-0000-4c1d-9e8f-3a1b2c3d4e5f"


def test_each_event_pings_its_path_with_a_scrubbed_body():
    with receiver() as monitor:
        url = f"{monitor.base}/ping/{UUID}"
        for event in ("start", "success", "fail", "log"):
            assert healthcheck.send(url, event, "today: ok\npayment for 1201901471: {\"raw\": 1}\nkey SECRETkey9",
                                    secrets=["SECRETkey9"]) is None
    assert monitor.paths == [f"/ping/{UUID}/start", f"/ping/{UUID}", f"/ping/{UUID}/fail", f"/ping/{UUID}/log"]
    assert {r.method for r in monitor.requests} == {"POST"}
    body = monitor.requests[0].body.decode()
    assert "1201901471" not in body and "raw" not in body and "SECRETkey9" not in body and "today: ok" in body


def test_a_trailing_slash_is_fine():
    with receiver() as monitor:
        assert healthcheck.send(f"{monitor.base}/{UUID}/", "start") is None
    assert monitor.paths == [f"/{UUID}/start"]


def test_a_slow_monitor_times_out_quickly_and_the_url_is_never_shown():
    with receiver() as monitor:
        monitor.delay = 5.0
        started = time.monotonic()
        warning = healthcheck.send(f"{monitor.base}/{UUID}", "success", timeout=0.3)
        assert time.monotonic() - started < 2
    assert warning == "HEALTHCHECK_URL: success ping not sent: no answer within 0.3 s"


def test_down_or_refusing_monitors_give_a_warning_never_an_error():
    port = free_port()
    assert healthcheck.send(f"http://127.0.0.1:{port}/{UUID}", "fail") == \
        "HEALTHCHECK_URL: fail ping not sent: could not connect to the monitor"
    with receiver() as monitor:
        monitor.status = 404
        warning = healthcheck.send(f"{monitor.base}/{UUID}", "start")
    assert warning == "HEALTHCHECK_URL: start ping not accepted: the monitor answered HTTP 404"
    assert UUID not in warning


def test_off_without_a_url_and_the_url_is_a_secret(tmp_path):
    assert healthcheck.ping(settings_mod.load({}, cwd=tmp_path), "start") is None
    st = settings_mod.load({"HEALTHCHECK_URL": f"https://hc-ping.com/{UUID}"}, cwd=tmp_path)
    assert f"https://hc-ping.com/{UUID}" in st.secret_values()


def test_exit_codes_map_to_success_or_fail():
    assert [healthcheck.event_for(code) for code in (0, 1, 2, 3)] == ["success", "fail", "fail", "success"]
