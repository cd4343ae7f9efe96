"""Bad input: a clear one-line message, the right exit code, never a traceback; good rows go on."""

from __future__ import annotations

import copy

from bursar.rules import columns as c
from bursar.sandbox.generator import SANDBOX_REPORTS, install_world


def test_report_missing_a_column_is_a_clear_failure(sandbox):
    world = sandbox.worlds[0]
    install_world(sandbox.alma, world)
    columns = [h for h in c.FINES_COLUMNS if h != c.ORIGINAL_AMOUNT]
    sandbox.alma.set_report(SANDBOX_REPORTS.fines, columns,
                            [{k: v for k, v in row.items() if k != c.ORIGINAL_AMOUNT} for row in world.fines])
    result = sandbox.run("importAlmaFines", day=world.day)
    assert result.returncode == 1
    assert "'Original Amount'" in result.stderr and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: the All Fines report has no column 'Original Amount'; "
                      "check the report's columns in Alma Analytics"]
    assert "ERROR" not in result.stderr  # said once, not twice
    assert sandbox.ledger()["fines"] == []


def test_unknown_transaction_type_is_reported_and_the_rest_imported(sandbox):
    world = copy.deepcopy(sandbox.worlds[0])
    install_world(sandbox.alma, world)
    rows = copy.deepcopy(world.transactions)
    rows[0][c.TRANS_TYPE] = "Refund"
    sandbox.alma.set_report(SANDBOX_REPORTS.transactions, c.TRANSACTIONS_COLUMNS, rows)
    result = sandbox.run("importAlmaFines", day=world.day)
    assert result.returncode == 3, result.stderr
    assert "unknown transaction type 'Refund'" in result.stdout and "Traceback" not in result.stderr
    ledger = sandbox.ledger()
    assert len(ledger["trans_alma"]) > len(ledger["fines"])  # root lines plus the good transactions


def test_value_too_wide_blocks_only_its_fine(sandbox):
    world = copy.deepcopy(sandbox.worlds[0])
    debit = next(row for row in world.fines if row[c.FINE_TYPE] != "Credit")
    debit[c.PRIMARY_ID] = "123456789012"  # 12 characters: the patron field holds 11
    install_world(sandbox.alma, world)
    assert sandbox.run("importAlmaFines", day=world.day).returncode in (0, 3)
    result = sandbox.run("exportBurs", day=world.day)
    assert result.returncode == 3, result.stderr
    assert f"fine {debit[c.FINE_ID]}" in result.stdout and "too wide" in result.stdout
    assert "Traceback" not in result.stderr
    written = list(sandbox.exports_dir.glob("LIB_charges.dat.*.1"))
    assert written and "123456789012" not in written[0].read_text()
