"""Never a database by mistake: only importAlmaFines, today and the restores start a store;
nothing touches a SQLite file that is not a pyBursar store."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest


def db_path(sandbox):
    return sandbox.work / "data" / "bursar.sqlite3"


@pytest.mark.parametrize("command", [["printLastExport"], ["lookupFine", "--rootAlmaFineId", "1"],
                                     ["exportBurs"], ["sftpToBurs"], ["importAlmaPayments"], ["payFines"]])
def test_commands_that_need_a_store_say_so_and_create_nothing(sandbox, command):
    result = sandbox.run(*command, day=sandbox.worlds[0].day)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: no pyBursar database at {db_path(sandbox)} (check BURSAR_DB_URI and the working directory)")
    assert not db_path(sandbox).exists() and not (sandbox.work / "data").exists()


def test_import_says_it_starts_a_new_store(sandbox):
    result = sandbox.run("importAlmaFines", day=sandbox.install(0).day)
    assert result.returncode in (0, 3), result.stdout + result.stderr
    assert f"no pyBursar database at {db_path(sandbox)}: starting a new one" in result.stdout
    assert db_path(sandbox).is_file()


@pytest.mark.parametrize("command", [["printLastExport"], ["importAlmaFines"], ["exportBurs", "--dry-run"],
                                     ["today"], ["backupDB"]])
def test_another_programs_sqlite_file_is_refused_and_left_byte_for_byte(sandbox, command):
    path = db_path(sandbox)
    path.parent.mkdir(parents=True)
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, vendor TEXT, amount TEXT)")
    con.execute("INSERT INTO invoices (vendor, amount) VALUES ('ACME', '12.50')")
    con.commit()
    con.close()
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    result = sandbox.run(*command, day=sandbox.install(0).day)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "is not a pyBursar database" in result.stderr and "invoices" in result.stderr
    assert "Traceback" not in result.stderr
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["bursar.sqlite3"]
