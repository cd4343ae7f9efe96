#!/usr/bin/env python3
"""Coverage-guided fuzzing of the two parsers with atheris (optional; not in requirements).

    pip install atheris          # into a scratch venv, not the project's requirements
    python bench/fuzz_parsers.py csv tests/data/fuzz -atheris_runs=100000
    python bench/fuzz_parsers.py xml tests/data/fuzz -atheris_runs=100000

`csv` feeds bytes to bursar.rules.payments_csv.parse_payments; `xml` serves them as an Analytics
page to bursar.clients.alma.analytics.iter_report and parses each row as a fine.  Our own errors
(BursarError, and RowError for one row) are fine; any other exception is a finding, and atheris
stops there with the input that caused it.  The files in tests/data/fuzz seed the corpus; the
same property runs in `make test` as hypothesis tests (tests/unit/test_parser_fuzz.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bursar.clients.alma.analytics import iter_report  # noqa: E402
from bursar.errors import BursarError  # noqa: E402
from bursar.rules import columns as C  # noqa: E402
from bursar.rules.payments_csv import parse_payments  # noqa: E402
from bursar.rules.rows import RowError, parse_fine  # noqa: E402


class _Response:
    def __init__(self, body: bytes):
        self._body = body

    def iter_content(self, size: int):
        for start in range(0, len(self._body), size):
            yield self._body[start:start + size]

    def close(self) -> None:
        pass


class _Pages:
    def __init__(self, body: bytes):
        self.body = body

    def get(self, path, params, **_kwargs):
        return _Response(self.body)


def fuzz_csv(data: bytes) -> None:
    try:
        parse_payments(data, name="atheris.csv")
    except BursarError:
        pass


def fuzz_xml(data: bytes) -> None:
    try:
        for row in iter_report(_Pages(data), "/shared/atheris", fallback_columns=list(C.FINES_COLUMNS),
                               still_loading_retries=1, sleep=lambda s: None, max_pages=5):
            try:
                parse_fine(row)
            except RowError:
                pass
    except BursarError:
        pass


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in ("csv", "xml"):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        import atheris  # type: ignore[import-not-found]
    except ImportError:
        print("atheris is not installed (pip install atheris, in a scratch venv)", file=sys.stderr)
        return 2
    target = fuzz_csv if sys.argv[1] == "csv" else fuzz_xml
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
