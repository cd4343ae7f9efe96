"""A profile's selection criteria over the sandbox days (bursar/profile.py Selection)."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent
PYBURSAR = (HERE.parents[1] / "bursar" / "profiles" / "pybursar.toml").read_text()


def _descriptions() -> dict[str, str]:
    """Reference -> fee type, read from the CSV golden files (which show both)."""
    out = {}
    for path in (HERE / "golden-csv").glob("*.csv"):
        for line in path.read_bytes().decode("ascii").split("\r\n")[1:-1]:
            cells = line.split(",")
            out[cells[5]] = cells[6]
    return out


def _profile(tmp_path: Path, select: str) -> str:
    path = tmp_path / "select.toml"
    path.write_text(PYBURSAR.replace('name = "pybursar"', 'name = "select-test"') + "\n[select]\n" + select)
    return str(path)


def _run(sandbox, index: int, env: dict[str, str]) -> None:
    day = sandbox.install(index).day
    for command in ("importAlmaFines", "exportBurs"):
        result = sandbox.run(command, day=day, extra_env=env)
        assert result.returncode in (0, 3), f"{command}:\n{result.stdout}\n{result.stderr}"


def _files(sandbox) -> dict[str, list[str]]:
    return {p.name: p.read_text().split("\n")[:-1] for p in sorted(sandbox.exports_dir.glob("LIB_charges.dat.*"))}


def _golden() -> dict[str, list[str]]:
    return {p.name: p.read_text().split("\n")[:-1] for p in sorted((HERE / "golden").glob("LIB_charges.dat.*"))}


def test_an_excluded_fee_type_is_never_billed_but_what_was_billed_is_reversed(sandbox, tmp_path):
    kinds = _descriptions()
    _run(sandbox, 0, {})  # day 1 under pybursar: the card renewal fines are billed
    env = {"BURSAR_PROFILE": _profile(tmp_path, 'fee_types_exclude = ["Card renewal"]\n')}
    _run(sandbox, 1, env)
    _run(sandbox, 2, env)
    produced, golden = _files(sandbox), _golden()
    assert produced[next(iter(golden))] == golden[next(iter(golden))]  # day 1 unchanged
    for name, lines in golden.items():
        if name.endswith(".1") and ".20260302." not in name:
            # new charges on days 2 and 3: the golden ones without the excluded fee type
            expected = [line for line in lines if kinds[line[66:].strip()] != "Card renewal"]
            assert produced.get(name, []) == expected
    # the day-3 reversal of a card renewal fine billed on day 1 (before the criterion) is sent
    reversals = produced["LIB_charges.dat.20260304.3.2"]
    assert any(line[66:].strip() == "8423593520003841" for line in reversals)
    assert reversals == golden["LIB_charges.dat.20260304.3.2"]


def _net(files: dict[str, list[str]]) -> dict[str, int]:
    net: dict[str, int] = {}
    for lines in files.values():
        for line in lines:
            ref = line[66:].strip()
            net[ref] = net.get(ref, 0) + (-1 if line[62] == "Y" else 1) * amount_cents(line)
    return net


def test_a_fine_too_young_is_billed_on_the_first_export_after_it_becomes_eligible(sandbox, tmp_path):
    env = {"BURSAR_PROFILE": _profile(tmp_path, "min_age_days = 2\n")}
    for index in range(3):
        _run(sandbox, index, env)
    ledger = sandbox.ledger()
    created = {f["id"]: str(f["almaCreated"])[:10] for f in ledger["fines"]}
    created_of = {md["bursFineId"]: created[md["fine"]] for md in ledger["fine_mds"]}
    produced, golden = _files(sandbox), _golden()
    day3 = {line[66:].strip() for name, lines in produced.items() if ".20260304." in name and name.endswith(".1")
            for line in lines}
    young_on_day1 = {ref for ref, day in created_of.items() if day == "2026-03-02"} & set(_net(golden))
    assert young_on_day1 and young_on_day1 <= day3  # billed on day 3, two days old
    for name, lines in produced.items():
        for line in lines:
            ref = line[66:].strip()
            assert created_of[ref] <= "2026-03-02"  # nothing younger than two days is billed
            if ".20260304." not in name:
                assert created_of[ref] < "2026-03-02"
    # what is billed in the end is what the golden files bill for those fines, no more
    want = {ref: amt for ref, amt in _net(golden).items() if created_of[ref] <= "2026-03-02"}
    assert {r: a for r, a in _net(produced).items() if a} == {r: a for r, a in want.items() if a}


def test_below_the_minimum_amount_waits(sandbox, tmp_path):
    env = {"BURSAR_PROFILE": _profile(tmp_path, 'min_amount = "10.00"\n')}
    _run(sandbox, 0, env)
    day1 = _files(sandbox)["LIB_charges.dat.20260302.1.1"]
    golden = _golden()["LIB_charges.dat.20260302.1.1"]
    assert day1 == [line for line in golden if amount_cents(line) >= 1000]


def amount_cents(line: str) -> int:
    """The line's amount in cents."""
    whole, cents = line[25:35].strip().split(".")
    return int(whole) * 100 + int(cents)


def test_each_billed_line_records_the_profile_and_version(sandbox, tmp_path):
    _run(sandbox, 0, {})
    _run(sandbox, 1, {"BURSAR_PROFILE": _profile(tmp_path, "min_amount = \"0.00\"\n")})
    rows = sandbox.ledger()["burs_export_trans"]
    by_export = {(r["bursExport"], r["profile"]) for r in rows}
    assert by_export == {(1, "pybursar@1"), (2, "select-test@1")}
    day = sandbox.install(1).day
    shown = sandbox.run("lookupFine", "--rootAlmaFineId", rows[0]["line"][66:].strip(), day=day)
    assert '"profile": "pybursar@1"' in shown.stdout
