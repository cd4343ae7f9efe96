"""The fuzzing harness of the two parsers, shared by the hypothesis tests
(tests/unit/test_parser_fuzz.py) and the coverage-guided fuzzer (bench/fuzz_parsers.py).

Each `*_outcome` returns what the parser made, or None for our own error; anything else
propagates, and is a finding.  No test framework is imported here, so the fuzzer's venv needs
only the project and atheris."""

from __future__ import annotations

from decimal import Decimal

from bursar.clients.alma.analytics import iter_report
from bursar.errors import BursarError
from bursar.rules import columns as C
from bursar.rules.payments_csv import PaymentFileError, parse_payments
from bursar.rules.rows import RowError, parse_fine


def payments_outcome(data: bytes):
    """The parse, or None for our own whole-file error; anything else propagates (a failure)."""
    try:
        parsed = parse_payments(data, name="fuzz.csv")
    except PaymentFileError:
        return None
    for row in parsed.rows:
        assert isinstance(row.paid, Decimal) and isinstance(row.charge, Decimal)
        assert row.paid.is_finite() and row.paid == row.paid.quantize(Decimal("0.01"))
        assert row.charge == row.charge.quantize(Decimal("0.01"))
    assert all(bad.message.startswith("line ") for bad in parsed.bad)
    return parsed


class _Response:
    def __init__(self, body: bytes):
        self._body = body

    def iter_content(self, size: int):
        for start in range(0, len(self._body), size):
            yield self._body[start:start + size]

    def close(self) -> None:
        pass


class PageServer:
    """A stand-in for AlmaHttp: every GET gets `page(n)` (n = 1, 2, ...), status 200."""

    def __init__(self, page):
        self.page = page
        self.calls = 0

    def get(self, path, params, **_kwargs):
        self.calls += 1
        return _Response(self.page(self.calls))


def report_outcome(page, *, max_pages: int = 20):
    """The report's rows, each parsed as a fine (FineRecord or RowError), or None for our own
    error; anything else propagates (a failure)."""
    http = PageServer(page if callable(page) else (lambda n: page))
    try:
        rows = list(iter_report(http, "/shared/fuzz", fallback_columns=list(C.FINES_COLUMNS), limit=1000,
                                still_loading_retries=2, sleep=lambda s: None, max_pages=max_pages))
    except BursarError:
        return None
    finally:
        assert http.calls <= max_pages + 3  # it stops
    out = []
    for row in rows:
        try:
            out.append(parse_fine(row))
        except RowError as exc:
            out.append(exc)
    return out
