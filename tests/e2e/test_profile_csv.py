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


def test_a_bad_profile_is_refused_at_start_with_exit_2(sandbox, tmp_path):
    bad = tmp_path / "site.toml"
    text = (Path(__file__).parents[2] / "bursar" / "profiles" / "peoplesoft-csv.toml").read_text()
    bad.write_text(text.replace("{export_id}", "{exportid}"))
    day = sandbox.install(0).day
    result = sandbox.run("exportBurs", day=day, extra_env={"BURSAR_PROFILE": str(bad)})
    assert result.returncode == 2, result.stderr
    out = result.stdout + result.stderr
    assert f"profile {bad}, line 8: key files.name: unknown token {{exportid}}" in out
    assert "Traceback" not in out and not list(sandbox.exports_dir.glob("*.csv"))


def test_dry_run_previews_a_profile_changing_nothing(sandbox):
    day = sandbox.install(0).day
    assert sandbox.run("importAlmaFines", day=day).returncode in (0, 3)
    before = (sandbox.ledger(), sorted(sandbox.exports_dir.rglob("*")))
    result = sandbox.run("exportBurs", "--dry-run", "--profile", "peoplesoft-csv", day=day)
    assert result.returncode in (0, 3), result.stderr
    assert (sandbox.ledger(), sorted(sandbox.exports_dir.rglob("*"))) == before
    shown = [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("|")]
    golden = (GOLDEN / "LIB_charges.dat.20260302.1.csv").read_bytes().decode("ascii")
    assert shown == ["|" + line.replace(" ", "·") + "␍↵|" for line in golden.split("\r\n")[:-1]]
    assert "spaces as ·, tabs as →, line ends as ↵" in result.stdout
    # the pybursar preview marks the padding spaces
    result = sandbox.run("exportBurs", "--dry-run", "--profile", "pybursar", day=day)
    shown = [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("|")]
    first = (Path(__file__).parent / "golden" / "LIB_charges.dat.20260302.1.1").read_text().split("\n")[0]
    assert shown[0] == "|" + first.replace(" ", "·") + "↵|"
    # without --dry-run --profile is a usage error
    assert sandbox.run("exportBurs", "--profile", "pybursar", day=day).returncode == 2
