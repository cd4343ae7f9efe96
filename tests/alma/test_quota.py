"""The institution's daily quota (issue 9 item 2): X-Exl-Api-Remaining and ALMA_DAILY_RESERVE."""

from __future__ import annotations

import pytest

from bursar.clients.alma.analytics import iter_report
from bursar.clients.alma.http import AlmaDailyReserveError
from bursar.errors import AlmaDailyLimitError
from bursar.rules import columns as C
from tests.alma.conftest import make_http
from tests.alma.test_analytics import FINES, fine_rows, report_calls


def test_the_remaining_header_is_read_from_every_answer(sandbox):
    sandbox.set_report(FINES, C.FINES_COLUMNS, fine_rows(300))
    sandbox.api_remaining = 70_000
    with make_http(sandbox.url) as http:
        assert http.remaining is None and http.calls == 0
        assert len(list(iter_report(http, FINES, limit=100))) == 300
        assert http.calls == 3 and http.remaining == 69_997 == sandbox.api_remaining
        assert "3 made, 69,997 left today" in http.quota_line()


def test_no_call_is_sent_below_the_reserve(sandbox):
    sandbox.set_report(FINES, C.FINES_COLUMNS, fine_rows(300))
    sandbox.api_remaining = 12
    with make_http(sandbox.url, daily_reserve=10) as http:
        with pytest.raises(AlmaDailyReserveError, match="ALMA_DAILY_RESERVE") as caught:
            list(iter_report(http, FINES, limit=50))
        assert isinstance(caught.value, AlmaDailyLimitError)  # the payments job stops on it
        # 12 -> 11 -> 10 left; a third call would leave 9 < 10: never sent
        assert len(report_calls(sandbox)) == 2 and sandbox.api_remaining == 10
        assert http.calls == 2
