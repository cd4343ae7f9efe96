"""`abs.py migrate --to URI` as a subprocess: SQLite -> SQLite after a real `today` on the sandbox.

(A subprocess cannot reach mongomock: the MongoDB legs of migrate are in tests/contract.)
"""

from __future__ import annotations

from bursar.store import open_store
from bursar.store.schema import COLLECTIONS

from .conftest import LEDGER


def _contents(uri: str) -> dict[str, list[dict]]:
    store = open_store(uri, create=False)
    try:
        return {coll: list(store.find(coll)) for coll in COLLECTIONS}
    finally:
        store.close()


def test_migrate_copies_the_store_verifies_it_and_refuses_to_overwrite(sandbox):
    world = sandbox.install(0)
    assert sandbox.run("today", day=world.day).returncode in (0, 3)
    target = sandbox.work / "moved" / "bursar.sqlite3"
    to = f"sqlite:///{target}"

    dry = sandbox.run("migrate", "--to", to, "--dry-run", day=world.day)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "would copy" in dry.stdout and "dry run" in dry.stdout
    assert not target.exists()

    result = sandbox.run("migrate", "--to", to, day=world.day)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verified" in result.stdout and "Traceback" not in result.stderr
    source, copy = _contents(sandbox.env["BURSAR_DB_URI"]), _contents(to)
    assert copy == source
    assert all(source[coll] for coll in ("fines", "trans_alma", "trans_burs", "burs_exports", "jobs"))
    for coll in LEDGER:  # the per-collection table names every collection with its count
        assert f"{coll} " in result.stdout
    fines_line = next(line for line in result.stdout.splitlines() if line.strip().startswith("fines "))
    assert fines_line.split()[1] == str(len(source["fines"]))

    again = sandbox.run("migrate", "--to", to, day=world.day)
    assert again.returncode == 2
    assert "not empty" in again.stderr and "Traceback" not in again.stderr
    assert len([line for line in again.stderr.splitlines() if line.startswith("error:")]) == 1
    assert _contents(to) == source

    # the copy is a working store: the next day's run goes on from it, ids continuing
    world = sandbox.install(1)
    moved = sandbox.run("today", day=world.day, extra_env={"BURSAR_DB_URI": to})
    assert moved.returncode in (0, 3), moved.stdout + moved.stderr
    after = _contents(to)
    assert max(e["id"] for e in after["burs_exports"]) > max(e["id"] for e in source["burs_exports"])


def test_migrate_usage_errors(sandbox):
    world = sandbox.install(0)
    missing = sandbox.run("migrate", day=world.day)
    assert missing.returncode == 2 and "--to" in missing.stderr
    nothing = sandbox.run("migrate", "--to", f"sqlite:///{sandbox.work / 'copy.sqlite3'}", day=world.day)
    assert nothing.returncode == 2 and "no pyBursar database at" in nothing.stderr  # no store yet: none is made
    assert not (sandbox.work / "copy.sqlite3").exists()
    open_store(sandbox.env["BURSAR_DB_URI"]).close()  # an empty store
    itself = sandbox.run("migrate", "--to", sandbox.env["BURSAR_DB_URI"], day=world.day)
    assert itself.returncode == 2 and "configured store itself" in itself.stderr
    secret = sandbox.run("migrate", "--to", "mongodb://user:hunter2@host:notaport/db", day=world.day)
    assert secret.returncode == 2 and "--to is malformed" in secret.stderr
    assert "hunter2" not in secret.stdout + secret.stderr
    listed = sandbox.run("help", day=world.day)
    assert "abs.py migrate --to sqlite:///" in listed.stdout
