"""Direction 2 end to end: the Bursar's payment files, each payment applied in Alma exactly once."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bursar.runtime.crash import CRASH_EXIT_CODE

from .test_direction1 import run_day

HEADER = "Emplid,Date Paid,Reference Number,Charge Amount,Paid Amount,Item Type,Charge Description"
PREFIX = "ASUSASF_LIBRARY_REPORT_DTRANGE"


def open_fines(sandbox, count: int) -> list[dict]:
    """Fines the Bursar was charged for that are still open in the sandbox Alma."""
    ledger = sandbox.ledger()
    charged = {t["fine"] for t in ledger["trans_burs"] if t["type"] == "Fine"}
    out = []
    for fine in ledger["fines"]:
        fee = sandbox.alma.fees.get((fine["almaPatronId"], fine["rootAlmaFineId"]))
        if fine["id"] in charged and fee and fee["status"] == "ACTIVE" and fee["balance"] >= Decimal("2.00"):
            out.append({"emplid": fine["almaPatronId"], "ref": fine["rootAlmaFineId"], "balance": fee["balance"],
                        "charge": fine["origAmtAlma"]})
    assert len(out) >= count, "the sandbox days should leave enough open fines"
    return out[:count]


def csv(rows: list[str], *, bom: bool = True) -> bytes:
    text = "\r\n".join([HEADER, *rows]) + "\r\n"
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode()


def row(f: dict, paid: Decimal | str, date: str = "03/03/2026", charge: Decimal | str | None = None) -> str:
    return f'{f["emplid"]},{date},{f["ref"]},{charge if charge is not None else f["charge"]},{paid},LIB,"Fine, library"'


@pytest.fixture
def paid_day(sandbox):
    """Day 1 of Direction 1 done; returns five open fines A-E."""
    run_day(sandbox, 0)
    return open_fines(sandbox, 5)


def pays(sandbox) -> list[tuple[str, Decimal]]:
    return [(call["fee_id"], call["amount"]) for call in sandbox.alma.pay_calls]


def test_each_payment_applied_once_and_awkward_rows_reported(sandbox, paid_day):
    a, b, c, d, e = paid_day
    sandbox.alma.fees[(d["emplid"], d["ref"])]["status"] = "CLOSED"
    rows = [row(a, a["balance"]), row(b, "1.00"), row(c, c["balance"] + Decimal("5.00")), row(d, "2.00"),
            row(e, "0.50"), row(e, "0.50"),  # a genuine repeat: both are payments
            row(a, "1.00", charge="0.00"), row(b, "0.00"),
            "1201901471,03/03/2026,9999999999999999,5.00,5.00,LIB,unknown", "",
            f'{a["emplid"]},03/03/2026,{a["ref"]},abc,1.00,LIB,malformed']
    sandbox.drop_payment_file(f"{PREFIX}_20250701_20260630_20260303.csv", csv(rows), mtime=1_000)
    day = sandbox.worlds[1].day
    first = sandbox.run("importAlmaPayments", day=day)
    assert first.returncode == 3, first.stdout + first.stderr
    assert sorted(pays(sandbox)) == sorted([(a["ref"], a["balance"]), (b["ref"], Decimal("1.00")),
                                            (c["ref"], c["balance"]), (e["ref"], Decimal("0.50")),
                                            (e["ref"], Decimal("0.50"))])
    out = first.stdout
    assert "9999999999999999" in out and "not found" in out          # unknown reference
    assert "overpayment" in out and c["ref"] in out                   # overpayment reported
    assert "line 12" in out                                           # malformed row, by line number
    assert "zero charge" in out and "zero payment" in out and "closed in Alma" in out
    assert "applied in Alma" in out
    # the same file again, and a cumulative file with one new row: only the new row is paid
    again = sandbox.run("importAlmaPayments", day=day)
    assert again.returncode == 0, again.stdout + again.stderr
    sandbox.drop_payment_file(f"{PREFIX}_20250701_20260630_20260304.csv",
                              csv(rows + [row(b, "1.00", date="03/04/2026")]), mtime=2_000)
    third = sandbox.run("importAlmaPayments", day=sandbox.worlds[2].day)
    assert third.returncode == 0, third.stdout + third.stderr
    assert len(pays(sandbox)) == 6 and pays(sandbox)[-1] == (b["ref"], Decimal("1.00"))
    # a reset range: the new year's file restarts; nothing already paid is paid again
    sandbox.drop_payment_file(f"{PREFIX}_20260301_20270228_20260305.csv",
                              csv([row(b, "1.00", date="03/04/2026")]), mtime=3_000)
    assert sandbox.run("importAlmaPayments", day=sandbox.worlds[2].day).returncode == 0
    assert len(pays(sandbox)) == 6
    # lookupFine shows the payments ledger rows
    found = sandbox.run("lookupFine", "--rootAlmaFineId", e["ref"], day=day)
    assert found.stdout.count('"state": "applied"') == 2


def test_dry_run_lists_decisions_and_pays_nothing(sandbox, paid_day):
    a, b, *_ = paid_day
    sandbox.drop_payment_file(f"{PREFIX}_x.csv", csv([row(a, "1.00"), row(b, "0.00")]))
    before = sandbox.ledger()
    dry = sandbox.run("importAlmaPayments", "--dry-run", day=sandbox.worlds[1].day)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert f"would pay 1.00 on fee {a['ref']}" in dry.stdout and "zero payment" in dry.stdout
    # nothing failed: a dry run shows only what would happen
    assert "failed" not in dry.stdout and "not yet tried" not in dry.stdout
    assert pays(sandbox) == [] and sandbox.ledger() == before
    assert not (sandbox.work / "payments").exists()


def test_500_on_one_post_fails_that_row_and_the_next_run_pays_it(sandbox, paid_day):
    a, b, *_ = paid_day
    sandbox.drop_payment_file(f"{PREFIX}_1.csv", csv([row(a, "1.00"), row(b, "1.00")]))
    sandbox.alma.add_fault("error", method="POST", path_contains=a["ref"], status=500)
    first = sandbox.run("importAlmaPayments", day=sandbox.worlds[1].day)
    assert first.returncode == 3 and "retried on the next run" in first.stdout
    assert pays(sandbox) == [(b["ref"], Decimal("1.00"))]
    second = sandbox.run("importAlmaPayments", day=sandbox.worlds[1].day)
    assert second.returncode == 0, second.stdout
    assert sorted(pays(sandbox)) == sorted([(a["ref"], Decimal("1.00")), (b["ref"], Decimal("1.00"))])


@pytest.mark.parametrize("full", [False, True], ids=["partial", "closing"])
def test_applied_then_dropped_is_not_paid_again(sandbox, paid_day, full):
    a, *_ = paid_day
    amount = a["balance"] if full else Decimal("1.00")
    sandbox.drop_payment_file(f"{PREFIX}_1.csv", csv([row(a, amount)]))
    sandbox.alma.add_fault("apply_then_drop", method="POST")
    first = sandbox.run("importAlmaPayments", day=sandbox.worlds[1].day)
    assert first.returncode == 3 and "before paying again" in first.stdout
    second = sandbox.run("importAlmaPayments", day=sandbox.worlds[1].day)
    assert second.returncode == 0, second.stdout + second.stderr
    assert pays(sandbox) == [(a["ref"], amount)]
    assert "already in Alma: its external id was found on the fee" in sandbox.run(
        "lookupFine", "--rootAlmaFineId", a["ref"], day=sandbox.worlds[1].day).stdout


def test_killed_after_pending_before_the_post_pays_exactly_once(sandbox, paid_day):
    a, b, *_ = paid_day
    sandbox.drop_payment_file(f"{PREFIX}_1.csv", csv([row(a, "1.00"), row(b, "2.00")]))
    crashed = sandbox.run("importAlmaPayments", day=sandbox.worlds[1].day,
                          extra_env={"BURSAR_CRASH_AT": "payments.after_pending"})
    assert crashed.returncode == CRASH_EXIT_CODE
    assert sandbox.run("importAlmaPayments", day=sandbox.worlds[1].day).returncode == 0
    assert sandbox.run("importAlmaPayments", day=sandbox.worlds[1].day).returncode == 0
    assert sorted(pays(sandbox)) == sorted([(a["ref"], Decimal("1.00")), (b["ref"], Decimal("2.00"))])


def test_429_bursts_and_sftp_drop_mid_download(sandbox, paid_day):
    a, b, *_ = paid_day
    big = [row(a, "0.01", date=f"03/{d:02d}/2026") for d in range(1, 29)] * 4  # > 100 rows
    sandbox.drop_payment_file(f"{PREFIX}_1.csv", csv(big + [row(b, "1.00")]))
    sandbox.sftp.drop_after_bytes(200, op="read")
    dropped = sandbox.run("importAlmaPayments", day=sandbox.worlds[1].day)
    assert dropped.returncode == 1 and "Traceback" not in dropped.stderr
    assert pays(sandbox) == []
    sandbox.alma.add_fault("rate_limit", times=3)
    sandbox.env["ALMA_RETRIES"] = "6"
    ok = sandbox.run("importAlmaPayments", day=sandbox.worlds[1].day)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert len(pays(sandbox)) == len(big) + 1


def test_an_unusable_file_is_reported_and_the_other_files_still_go_through(sandbox, paid_day):
    a, *_ = paid_day
    sandbox.drop_payment_file(f"{PREFIX}_1.csv", b"Emplid,Date Paid,Reference,Charge Amount,Paid Amount\n1,2,3,4,5\n",
                              mtime=1_000)
    sandbox.drop_payment_file(f"{PREFIX}_2.csv", csv([row(a, "1.00")]), mtime=2_000)
    result = sandbox.run("importAlmaPayments", day=sandbox.worlds[1].day)
    assert result.returncode == 3 and "Reference Number" in result.stdout and "Traceback" not in result.stderr
    assert pays(sandbox) == [(a["ref"], Decimal("1.00"))]
