#!/usr/bin/env python3
"""Coverage-guided fuzzing of the two parsers with atheris (optional; not in requirements).

    pip install atheris          # into a scratch venv, not the project's requirements
    python bench/fuzz_parsers.py csv tests/data/fuzz -atheris_runs=100000
    python bench/fuzz_parsers.py xml tests/data/fuzz -atheris_runs=100000

`csv` feeds bytes to bursar.rules.payments_csv.parse_payments; `xml` serves them as an Analytics
page to bursar.clients.alma.analytics.iter_report and parses each row as a fine, through the
harness the hypothesis tests use (tests/fuzzing.py).  Our own errors (a whole-file error, and
RowError for one row) are fine; any other exception, or a parsed amount that is not whole cents,
is a finding, and atheris stops there with the input that caused it.  The files in tests/data/fuzz seed the corpus; the
same property runs in `make test` as hypothesis tests (tests/unit/test_parser_fuzz.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fuzzing import payments_outcome, report_outcome  # noqa: E402


def fuzz_csv(data: bytes) -> None:
    payments_outcome(data)


def fuzz_xml(data: bytes) -> None:
    report_outcome(data, max_pages=5)


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
