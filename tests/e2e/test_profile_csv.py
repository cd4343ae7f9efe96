"""The second built-in profile (peoplesoft-csv) over the three sandbox days: golden files."""

from __future__ import annotations

import os
from pathlib import Path

GOLDEN = Path(__file__).parent / "golden-csv"
PROFILE = {"BURSAR_PROFILE": "peoplesoft-csv"}


def test_three_days_produce_the_golden_csv_files(sandbox):
    for index in range(len(sandbox.worlds)):
        day = sandbox.install(index).day
        for command in ("importAlmaFines", "exportBurs"):
            result = sandbox.run(command, day=day, extra_env=PROFILE)
            assert result.returncode in (0, 3), f"{command} on {day}:\n{result.stdout}\n{result.stderr}"
            assert "Traceback" not in result.stderr
    produced = {p.name: p.read_bytes() for p in sorted(sandbox.exports_dir.glob("LIB_charges.dat.*.csv"))}
    if os.environ.get("BURSAR_UPDATE_GOLDEN"):
        for old in GOLDEN.glob("*.csv"):
            old.unlink()
        for name, data in produced.items():
            (GOLDEN / name).write_bytes(data)
    expected = {p.name: p.read_bytes() for p in sorted(GOLDEN.glob("*.csv"))}
    assert produced == expected and produced
    for name, data in produced.items():
        lines = data.decode("ascii").split("\r\n")
        assert lines[-1] == "" and "\n" not in data.decode("ascii").replace("\r\n", "")
        count, total = lines[0].split(",")
        body = lines[1:-1]
        assert int(count) == len(body)
        from decimal import Decimal
        assert Decimal(total) == sum(Decimal(line.split(",")[2]) for line in body)
        assert (sandbox.exports_dir / name).stat().st_mode & 0o777 == 0o600
