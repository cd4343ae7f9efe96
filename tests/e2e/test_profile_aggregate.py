"""aggregate = "patron" over the sandbox days (bursar/jobs/export.py): one line per patron and
account per file, the pybursar golden files as the oracle, and a later reversal of a fine that
was billed inside a patron's line."""

from __future__ import annotations

import copy
from collections import Counter
from decimal import Decimal
from pathlib import Path

from bursar.rules import columns as C
from bursar.sandbox.generator import World, install_world

HERE = Path(__file__).parent

PROFILE = '''name = "per-patron"
version = "7"

[files]
name = "{prefix}.{date}.{export_id}.{kind}.csv"
kinds = ["chg", "crd"]

[lines]
format = "csv"
aggregate = "patron"

[[lines.fields]]
source = "emplid"
width = 11

[[lines.fields]]
source = "account"
width = 12

[[lines.fields]]
source = "amount"
width = 12
sign = "minus"

[[lines.fields]]
source = "term"
width = 4

[[lines.fields]]
source = "due_date"
date_format = "%Y-%m-%d"
when = "charge"
'''

# day 3: waives of fines billed on day 1, two of them one patron's (one credit line), one another's
WAIVES = {"8423596820003841": 500, "8423597140003841": 250, "8423597240003841": 1000}


def _cents(text: str) -> int:
    whole, _, frac = text.strip().lstrip("-").partition(".")
    return (-1 if text.strip().startswith("-") else 1) * (int(whole) * 100 + int(frac.ljust(2, "0")))


def _waived(world: World) -> World:
    """World 3 with the WAIVES made in Alma at noon."""
    world = copy.deepcopy(world)
    when = f"{world.day.isoformat()}T12:00:00"
    for n, row in enumerate(r for r in world.fines if r[C.FINE_ID] in WAIVES):
        cents = WAIVES[row[C.FINE_ID] or ""]
        remaining = _cents(row[C.REMAINING_AMOUNT] or "0") - cents
        assert remaining > 0, row
        row[C.REMAINING_AMOUNT] = f"{remaining // 100}.{remaining % 100:02d}"
        row[C.STATUS_DATE] = when
        world.transactions.append({
            C.FINE_ID: row[C.FINE_ID], C.TRANS_CREATED: when, C.TRANS_ID: f"119999999{n}0003841",
            C.TRANS_TYPE: "Waive", C.TRANS_NOTE: None, C.LOAN_ID: row[C.LOAN_ID],
            C.PRIMARY_ID: row[C.PRIMARY_ID], C.TRANS_AMOUNT: f"{cents // 100}.{cents % 100:02d}"})
    return world


def _golden_groups(name: str, extra: list[tuple[str, str, int, str]] = ()) -> Counter:
    """The golden pybursar file's lines summed per patron, account and term (the oracle)."""
    sums: dict[tuple[str, str, str], int] = {}
    for line in (HERE / "golden" / name).read_text().split("\n")[:-1]:
        key = (line[0:11].strip(), line[12:24].strip(), line[56:61].strip())
        sums[key] = sums.get(key, 0) + _cents(line[25:35])
    for emplid, account, cents, term in extra:
        sums[(emplid, account, term)] = sums.get((emplid, account, term), 0) + cents
    return Counter(sums)


def _produced_groups(path: Path) -> Counter:
    out: Counter = Counter()
    for line in path.read_text().split("\n")[:-1]:
        emplid, account, amount, term, _due = line.split(",")
        out[(emplid, account, term)] += abs(_cents(amount))
    return out


def test_one_line_per_patron_and_account_with_a_later_reversal(sandbox, tmp_path):
    profile = tmp_path / "per-patron.toml"
    profile.write_text(PROFILE)
    env = {"BURSAR_PROFILE": str(profile)}
    for index in range(3):
        world = sandbox.worlds[index] if index < 2 else _waived(sandbox.worlds[index])
        install_world(sandbox.alma, world)
        for command in ("importAlmaFines", "exportBurs"):
            result = sandbox.run(command, day=world.day, extra_env=env)
            assert result.returncode in (0, 3), f"{command}:\n{result.stdout}\n{result.stderr}"
    files = {p.name: p for p in sorted(sandbox.exports_dir.glob("LIB_charges.dat.*.csv"))}
    assert sorted(files) == ["LIB_charges.dat.20260302.1.chg.csv", "LIB_charges.dat.20260303.2.chg.csv",
                             "LIB_charges.dat.20260303.2.crd.csv", "LIB_charges.dat.20260304.3.chg.csv",
                             "LIB_charges.dat.20260304.3.crd.csv"]
    ledger = sandbox.ledger()
    patron_of = {f["rootAlmaFineId"]: f["almaPatronId"] for f in ledger["fines"]}
    account_of = {md["bursFineId"]: md["chargeAcc"] for md in ledger["fine_mds"]}
    later = [(patron_of[ref], account_of[ref], cents, "2261") for ref, cents in WAIVES.items()]
    for name, path in files.items():
        golden = name.replace(".chg.csv", ".1").replace(".crd.csv", ".2")
        want = _golden_groups(golden, later if name.endswith("20260304.3.crd.csv") else [])
        assert _produced_groups(path) == want, name
        lines = path.read_text().split("\n")[:-1]
        assert len(lines) == len(want) == len(set(tuple(ln.split(",")[:2]) for ln in lines))
    # patrons with several fines on day 1 have one line each: fewer lines than the golden file
    day1 = files["LIB_charges.dat.20260302.1.chg.csv"].read_text().split("\n")[:-1]
    assert len(day1) < len((HERE / "golden" / "LIB_charges.dat.20260302.1.1").read_text().split("\n")[:-1])
    # the two waives of one patron's fines went out as one credit line of their sum
    credits = files["LIB_charges.dat.20260304.3.crd.csv"].read_text().split("\n")[:-1]
    two = patron_of["8423596820003841"]
    assert patron_of["8423597140003841"] == two
    assert [ln for ln in credits if ln.startswith(two + ",")] == [f"{two},{account_of['8423596820003841']},-7.50,2261,"]

    # every ledger line is recorded as billed, once, in the export whose file has its patron's line
    by_tb = Counter(row["transBurs"] for row in ledger["burs_export_trans"])
    assert set(by_tb.values()) == {1}
    assert not [t for t in ledger["trans_burs"] if t["newBursExp"] and t["amt"] != 0]
    texts = {row["bursExport"]: set() for row in ledger["burs_export_trans"]}
    for row in ledger["burs_export_trans"]:
        assert row["lineGroup"] and row["profile"] == "per-patron@7"
        texts[row["bursExport"]].add(row["line"])
    for export_id, stored in texts.items():
        written = {ln for name, p in files.items() if f".{export_id}." in name for ln in p.read_text().split("\n")[:-1]}
        assert stored == written
    exports = {e["id"]: e for e in ledger["burs_exports"]}
    assert exports[1]["numCharges"] == len(day1) and exports[1]["chargesTotal"] == sum(
        (Decimal(ln.split(",")[2]) for ln in day1), Decimal(0))

    # a re-run bills nothing twice and leaves the files as they are
    before = {name: p.read_bytes() for name, p in files.items()}
    again = sandbox.run("exportBurs", day=sandbox.worlds[2].day, extra_env=env)
    assert again.returncode in (0, 3), again.stderr
    assert {p.name: p.read_bytes() for p in sandbox.exports_dir.glob("LIB_charges.dat.*.csv")} == before
    # lookupFine says where the reversal went
    shown = sandbox.run("lookupFine", "--rootAlmaFineId", "8423597240003841", day=sandbox.worlds[2].day,
                        extra_env=env)
    assert shown.returncode == 0, shown.stderr
    assert "billed: reversal 10.00 of part 8423597240003841 in export 3" in shown.stdout
    assert "written by profile per-patron@7, summed into the patron's line" in shown.stdout


def test_a_per_fine_field_in_an_aggregated_profile_is_refused_at_start(sandbox, tmp_path):
    profile = tmp_path / "bad.toml"
    profile.write_text(PROFILE + '\n[[lines.fields]]\nsource = "fine_id"\nwidth = 20\n')
    result = sandbox.run("exportBurs", day=sandbox.install(0).day, extra_env={"BURSAR_PROFILE": str(profile)})
    assert result.returncode == 2
    out = result.stdout + result.stderr
    assert f"profile {profile}, line 35: key lines.fields[5].source: fine_id is one fine's value" in out
    assert "Traceback" not in out and not list(sandbox.exports_dir.glob("*.csv"))


def test_an_export_resumed_after_a_crash_sums_the_new_lines_into_the_patron_lines(sandbox, tmp_path):
    """Day 1 without one of a patron's two fines, killed after the build; the fine appears in
    Alma, a full import brings it, and the resumed export writes one line for the patron."""
    from bursar.runtime.crash import CRASH_EXIT_CODE

    profile = tmp_path / "per-patron.toml"
    profile.write_text(PROFILE)
    env = {"BURSAR_PROFILE": str(profile)}
    full = sandbox.worlds[0]
    late = "8423597140003841"  # patron 0860309439's second fine (15.00), beside 8423596820003841 (232.05)
    partial = copy.deepcopy(full)
    partial.fines = [r for r in partial.fines if r[C.FINE_ID] != late]
    partial.transactions = [t for t in partial.transactions if t[C.FINE_ID] != late]
    install_world(sandbox.alma, partial)
    assert sandbox.run("importAlmaFines", day=full.day, extra_env=env).returncode in (0, 3)
    crashed = sandbox.run("exportBurs", day=full.day, extra_env={**env, "BURSAR_CRASH_AT": "export.after_build"})
    assert crashed.returncode == CRASH_EXIT_CODE, crashed.stderr
    assert not list(sandbox.exports_dir.glob("*.csv"))
    stored = {r["line"] for r in sandbox.ledger()["burs_export_trans"]}
    assert "0860309439,531000000005,232.05,2261,2026-04-25" in stored
    install_world(sandbox.alma, full)
    assert sandbox.run("importAlmaFines", "--full", day=full.day, extra_env=env).returncode in (0, 3)
    resumed = sandbox.run("exportBurs", day=full.day, extra_env=env)
    assert resumed.returncode in (0, 3), resumed.stdout + resumed.stderr
    (path,) = sandbox.exports_dir.glob("LIB_charges.dat.*.csv")
    assert path.name == "LIB_charges.dat.20260302.1.chg.csv"
    assert _produced_groups(path) == _golden_groups("LIB_charges.dat.20260302.1.1")
    lines = path.read_text().split("\n")[:-1]
    assert [ln for ln in lines if ln.startswith("0860309439,")] == ["0860309439,531000000005,247.05,2261,2026-04-25"]
    rows = sandbox.ledger()["burs_export_trans"]
    assert {r["line"] for r in rows} == set(lines)  # the first member's text was recomputed


def test_dry_run_previews_the_patron_lines(sandbox, tmp_path):
    profile = tmp_path / "per-patron.toml"
    profile.write_text(PROFILE)
    day = sandbox.install(0).day
    assert sandbox.run("importAlmaFines", day=day).returncode in (0, 3)
    before = sandbox.ledger()
    result = sandbox.run("exportBurs", "--dry-run", "--profile", str(profile), day=day)
    assert result.returncode in (0, 3), result.stderr
    assert sandbox.ledger() == before and not list(sandbox.exports_dir.glob("*.csv"))
    shown = [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("|")]
    assert "|0860309439,531000000005,247.05,2261,2026-04-25↵|" in shown
    assert len(shown) == len(_golden_groups("LIB_charges.dat.20260302.1.1"))
    golden_lines = len((HERE / "golden" / "LIB_charges.dat.20260302.1.1").read_text().split("\n")[:-1])
    counted = [ln for ln in result.stdout.splitlines() if "ledger lines in those" in ln]
    assert len(counted) == 1 and counted[0].split()[-1] == str(golden_lines), result.stdout
