"""A profile's selection criteria over the sandbox days (bursar/profile.py Selection)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from bursar.sandbox.generator import user_group

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


# -- user groups (the fines report's optional column) ------------------------------------------

def _run_groups(sandbox, index: int, env: dict[str, str], *, column: bool = True) -> None:
    day = sandbox.install(index, user_groups=column).day
    for command in ("importAlmaFines", "exportBurs"):
        result = sandbox.run(command, day=day, extra_env=env)
        assert result.returncode in (0, 3), f"{command}:\n{result.stdout}\n{result.stderr}"


def _without_group(files: dict[str, list[str]], group: str) -> dict[str, list[str]]:
    kept = {name: [line for line in lines if user_group(line[:11].strip()) != group] for name, lines in files.items()}
    return {name: lines for name, lines in kept.items() if lines}


def test_an_excluded_user_group_is_never_billed(sandbox, tmp_path):
    env = {"BURSAR_PROFILE": _profile(tmp_path, 'user_groups_exclude = ["Staff"]\n')}
    for index in range(3):
        _run_groups(sandbox, index, env)
    golden = _golden()
    assert _without_group(golden, "Staff") != golden  # some patrons are staff
    assert _files(sandbox) == _without_group(golden, "Staff")
    groups = {d["userGroup"] for d in sandbox.ledger()["item_details"]}
    assert "Staff" in groups and None not in groups  # stored with the fine's details


def test_only_included_user_groups_are_billed(sandbox, tmp_path):
    env = {"BURSAR_PROFILE": _profile(tmp_path, 'user_groups_include = ["Graduate", "Faculty"]\n')}
    _run_groups(sandbox, 0, env)
    produced = _files(sandbox)["LIB_charges.dat.20260302.1.1"]
    expected = [line for line in _golden()["LIB_charges.dat.20260302.1.1"]
                if user_group(line[:11].strip()) in ("Graduate", "Faculty")]
    assert produced == expected and expected


def test_selecting_by_user_group_needs_the_column(sandbox, tmp_path):
    env = {"BURSAR_PROFILE": _profile(tmp_path, 'user_groups_include = ["Staff"]\n')}
    day = sandbox.install(0, user_groups=False).day
    result = sandbox.run("importAlmaFines", day=day, extra_env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    out = result.stdout + result.stderr
    assert "the All Fines report has no column 'User Group', but BURSAR_PROFILE selects fines by user group" in out
    assert "Traceback" not in out and not sandbox.ledger()["fines"]
    # without the criterion the same report imports as before
    assert sandbox.run("importAlmaFines", day=day).returncode in (0, 3)


def test_fines_imported_without_the_column_are_flagged_until_a_full_import(sandbox, tmp_path):
    day = sandbox.install(0, user_groups=False).day
    assert sandbox.run("importAlmaFines", day=day).returncode in (0, 3)  # no criterion yet, no column
    env = {"BURSAR_PROFILE": _profile(tmp_path, 'user_groups_exclude = ["Staff"]\n')}
    sandbox.install(0, user_groups=True)
    held = sandbox.run("exportBurs", day=day, extra_env=env)
    assert held.returncode == 3, held.stdout + held.stderr
    assert "its user group is not known" in held.stdout + held.stderr
    assert not list(sandbox.exports_dir.glob("LIB_charges.dat.*"))  # nothing billed while unknown
    ref = _golden()["LIB_charges.dat.20260302.1.1"][0][66:].strip()
    shown = sandbox.run("lookupFine", "--rootAlmaFineId", ref, day=day, extra_env=env).stdout
    assert "held and flagged by exportBurs" in shown and "select.user_groups_exclude" in shown
    assert sandbox.run("importAlmaFines", "--full", day=day, extra_env=env).returncode in (0, 3)
    assert sandbox.run("exportBurs", day=day, extra_env=env).returncode == 0
    assert _files(sandbox) == _without_group({k: v for k, v in _golden().items() if ".20260302." in k}, "Staff")


# -- lookupFine says why ------------------------------------------------------------------------

def _why(sandbox, ref: str, day, env: dict[str, str]) -> str:
    result = sandbox.run("lookupFine", "--rootAlmaFineId", ref, day=day, extra_env=env)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    return result.stdout


def test_lookup_fine_says_why_a_fine_is_held_excluded_ignored_or_billed(sandbox, tmp_path):
    select = 'fee_types_exclude = ["Card renewal"]\nlocations_exclude = ["^hay"]\nmin_amount = "10.00"\n'
    env = {"BURSAR_PROFILE": _profile(tmp_path, select)}
    day = sandbox.install(0).day
    for command in ("importAlmaFines", "exportBurs"):
        assert sandbox.run(command, day=day, extra_env=env).returncode in (0, 3)
    ledger = sandbox.ledger()
    location = {d["fine"]: d["locationCode"] for d in ledger["item_details"]}
    pending = {t["fine"] for t in ledger["trans_burs"] if t["newBursExp"] and t["amt"] > 0}
    billed = {t["fine"] for t in ledger["trans_burs"] if not t["newBursExp"] and t["amt"] > 0}
    fines = {f["id"]: f for f in ledger["fines"]}

    def pick(test) -> str:
        return next(f["rootAlmaFineId"] for i, f in sorted(fines.items()) if test(f, i))

    card = pick(lambda f, i: f["type"] == "Card renewal" and i in pending)
    assert "excluded: 1 Bursar line (net 7.75) never billed under profile select-test@1: fee type " \
           "'Card renewal' is excluded by the profile's select.fee_types_exclude" in _why(sandbox, card, day, env)
    hay = pick(lambda f, i: (location[i] or "").startswith("hay") and i in pending)
    assert "is excluded by the profile's select.locations_exclude" in _why(sandbox, hay, day, env)
    small = pick(lambda f, i: i in pending and f["type"] != "Card renewal" and not (location[i] or "").startswith("hay")
                 and f["remAmtAlma"] < 10)
    assert "below the profile's select.min_amount 10.00" in _why(sandbox, small, day, env)
    done = pick(lambda f, i: i in billed)
    shown = _why(sandbox, done, day, env)
    assert "billed: charge" in shown and "in export 1 (written, file LIB_charges.dat.20260302.1.1), " \
                                         "line written by profile select-test@1" in shown
    # too young: the day it becomes eligible
    young_env = {"BURSAR_PROFILE": _profile(tmp_path, "min_age_days = 30\n")}
    young = pick(lambda f, i: i in pending and str(f["almaCreated"]) >= "2026-03-01")
    shown = _why(sandbox, young, day, young_env)
    created = next(str(f["almaCreated"])[:10] for f in fines.values() if f["rootAlmaFineId"] == young)
    eligible = (date.fromisoformat(created) + timedelta(days=30)).isoformat()
    assert "held: 1 Bursar line (net " in shown
    assert f"under profile select-test@1, not yet eligible: created {created}, " \
           f"younger than the profile's select.min_age_days 30; eligible on {eligible}" in shown
    # the ignore list: a fine in the ledger, and one never imported
    ignore = tmp_path / "ignore.txt"
    ignore.write_text(f"{done}  # disputed\n1234567890003841\n")
    ignore_env = {**env, "BURSAR_IGNORE_FILE": str(ignore)}
    assert "ignored: the fine is on the ignore list (BURSAR_IGNORE_FILE)" in _why(sandbox, done, day, ignore_env)
    missing = _why(sandbox, "1234567890003841", day, ignore_env)
    assert "No fine with rootAlmaFineId 1234567890003841 found. It is on the ignore list" in missing
    assert "never imports it" in missing
    # with a pybursar profile nothing pending is held
    assert "pending: 1 Bursar line (net 7.75), to go out with the next exportBurs" in _why(sandbox, card, day, {})


def test_a_user_group_excluded_after_billing_is_still_reversed_for_what_was_billed(sandbox, tmp_path):
    reversals = _golden()["LIB_charges.dat.20260304.3.2"]
    patron = next(line[:11].strip() for line in reversals if line[66:].strip() == "8423593520003841")
    group = user_group(patron)
    _run_groups(sandbox, 0, {})  # day 1 without the criterion: the fine is billed
    env = {"BURSAR_PROFILE": _profile(tmp_path, f'user_groups_exclude = ["{group}"]\n')}
    _run_groups(sandbox, 1, env)
    _run_groups(sandbox, 2, env)
    produced = _files(sandbox)
    assert produced["LIB_charges.dat.20260302.1.1"] == _golden()["LIB_charges.dat.20260302.1.1"]
    assert any(line[66:].strip() == "8423593520003841" for line in produced["LIB_charges.dat.20260304.3.2"])
    # new fines of that group on days 2 and 3 are not billed
    for name, lines in produced.items():
        if ".20260302." not in name and name.endswith(".1"):
            assert all(user_group(line[:11].strip()) != group for line in lines)
