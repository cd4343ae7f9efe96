"""backupDB / restoreLast / restoreChoose on real SQLite files."""

from __future__ import annotations

import gzip
import sqlite3
import stat
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from bursar.backup import (
    SAFETY_DIR,
    BackupError,
    create_backup,
    list_backups,
    parse_name,
    pick_backup,
    restore_backup,
    validate_backup,
)
from bursar.errors import UsageError
from bursar.store import open_store
from tests.backup.conftest import NOW, add_patron, files_in, patrons, set_balance

BEFORE = [("P1", Decimal("12.50")), ("P2", Decimal("0.99"))]


def test_backup_change_restore_round_trip(db_uri, db_path, backups_dir):
    backup, key = create_backup(db_uri, backups_dir, now=NOW, keep=5)
    assert key is None
    assert backup.name == "pybursar-sqlite-20240304T153000Z.sqlite.gz"
    assert backup.path == backups_dir / backup.name and backup.location == "local"

    add_patron(db_uri, "P3", "7.00")
    set_balance(db_uri, 1, "0.00")
    changed = [("P1", Decimal("0.00")), ("P2", Decimal("0.99")), ("P3", Decimal("7.00"))]
    assert patrons(db_uri) == changed

    (latest,) = list_backups(backups_dir)
    safety = restore_backup(db_uri, latest, backups_dir, now=NOW + timedelta(hours=1))

    assert patrons(db_uri) == BEFORE
    # the state just replaced was saved aside, and it is not "the last backup"
    assert safety is not None and safety.path.parent == backups_dir / SAFETY_DIR
    assert [b.name for b in list_backups(backups_dir)] == [backup.name]
    saved = safety.path.parent / "saved.sqlite3"
    saved.write_bytes(gzip.decompress(safety.path.read_bytes()))
    assert patrons(f"sqlite:///{saved}") == changed
    # no stale WAL companions or temporaries beside the restored file
    assert files_in(db_path.parent) == ["bursar.sqlite3"]
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600


def test_restored_store_accepts_writes_and_ids_continue(db_uri, backups_dir):
    backup, _ = create_backup(db_uri, backups_dir, now=NOW, keep=5)
    add_patron(db_uri, "P3", "1.00")
    restore_backup(db_uri, backup, backups_dir, now=NOW)
    assert add_patron(db_uri, "P4", "2.00") >= 3  # AUTOINCREMENT: ids are never reused
    assert [p for p, _ in patrons(db_uri)] == ["P1", "P2", "P4"]


def test_backup_file_is_private_gzip_of_a_checked_database(db_uri, backups_dir, tmp_path):
    backup, _ = create_backup(db_uri, backups_dir, now=NOW, keep=5)
    assert stat.S_IMODE(backup.path.stat().st_mode) == 0o600
    assert backup.size == backup.path.stat().st_size > 0
    assert files_in(backups_dir) == [backup.name]  # no temporary file left behind
    plain = tmp_path / "plain.sqlite3"
    plain.write_bytes(gzip.decompress(backup.path.read_bytes()))
    con = sqlite3.connect(plain)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert con.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # one self-contained file
    finally:
        con.close()
    validate_backup(backup.path, "sqlite")


def test_backup_is_a_consistent_snapshot_while_a_writer_is_busy(db_uri, backups_dir):
    store = open_store(db_uri)
    try:
        with store.transaction():
            store.insert("patrons", {"almaPatronId": "UNCOMMITTED", "balance": Decimal("1.00")})
            backup, _ = create_backup(db_uri, backups_dir, now=NOW, keep=5)
    finally:
        store.close()
    assert [p for p, _ in patrons(db_uri)] == ["P1", "P2", "UNCOMMITTED"]
    restore_backup(db_uri, backup, backups_dir, now=NOW)
    assert patrons(db_uri) == BEFORE


def test_names_sort_in_time_order_and_same_second_gets_a_suffix(db_uri, backups_dir):
    times = [NOW, NOW + timedelta(seconds=1), NOW + timedelta(days=40), NOW + timedelta(days=400)]
    made = [create_backup(db_uri, backups_dir, now=t, keep=10)[0].name for t in reversed(times)]
    assert sorted(made) == list(reversed(made))  # plain text order is time order
    again, _ = create_backup(db_uri, backups_dir, now=NOW + timedelta(days=400), keep=10)
    assert again.name == "pybursar-sqlite-20250408T153000Z-2.sqlite.gz"
    listed = [b.name for b in list_backups(backups_dir)]
    assert listed[:2] == [again.name, "pybursar-sqlite-20250408T153000Z.sqlite.gz"]
    assert listed[2:] == sorted(made, reverse=True)[1:]
    assert parse_name(again.name)[2] == 2


def test_retention_keeps_the_newest_and_touches_nothing_else(db_uri, backups_dir):
    backups_dir.mkdir()
    foreign = ["notes.txt", "pybursar-sqlite-latest.sqlite.gz", "alma_bursar_dev_after_BursExport_2020-01-01.gz"]
    for name in foreign:
        (backups_dir / name).write_text("keep me")
    safety = backups_dir / SAFETY_DIR
    safety.mkdir()
    (safety / "pybursar-sqlite-20000101T000000Z.sqlite.gz").write_bytes(b"old safety copy")

    made = [create_backup(db_uri, backups_dir, now=NOW + timedelta(days=d), keep=3)[0] for d in range(5)]

    kept = sorted(b.name for b in made[-3:])
    assert files_in(backups_dir) == sorted(foreign + kept)
    assert files_in(safety) == ["pybursar-sqlite-20000101T000000Z.sqlite.gz"]
    assert [b.name for b in list_backups(backups_dir)] == sorted(kept, reverse=True)


def test_retention_of_one_keeps_the_backup_just_made(db_uri, backups_dir):
    first, _ = create_backup(db_uri, backups_dir, now=NOW, keep=1)
    # a clock that went backwards: the new backup is "older" by name, but is never pruned
    second, _ = create_backup(db_uri, backups_dir, now=NOW - timedelta(days=1), keep=1)
    assert second.path.exists()
    with pytest.raises(UsageError):
        create_backup(db_uri, backups_dir, now=NOW, keep=0)


def test_dry_run_writes_nothing(db_uri, backups_dir):
    planned, key = create_backup(db_uri, backups_dir, now=NOW, keep=5, dry_run=True)
    assert planned.name == "pybursar-sqlite-20240304T153000Z.sqlite.gz" and key is None
    assert not backups_dir.exists()


def test_backup_of_a_missing_database_is_refused(tmp_path, backups_dir):
    uri = f"sqlite:///{tmp_path / 'nothing.sqlite3'}"
    with pytest.raises(BackupError, match="no SQLite database"):
        create_backup(uri, backups_dir, now=NOW, keep=5)
    assert files_in(backups_dir) == []
    assert not (tmp_path / "nothing.sqlite3").exists()  # not created by the attempt


def _plant(backups_dir: Path, payload: bytes, *, name: str = "pybursar-sqlite-20300101T000000Z.sqlite.gz") -> Path:
    backups_dir.mkdir(exist_ok=True)
    path = backups_dir / name
    path.write_bytes(payload)
    return path


@pytest.mark.parametrize(
    "damage",
    ["truncated", "garbage-inside", "not-gzip", "foreign-sqlite", "empty"],
)
def test_bad_archive_is_refused_and_nothing_changes(damage, db_uri, db_path, backups_dir, tmp_path):
    good, _ = create_backup(db_uri, backups_dir, now=NOW, keep=5)
    data = good.path.read_bytes()
    if damage == "truncated":
        payload = data[: len(data) // 2]
    elif damage == "garbage-inside":
        payload = gzip.compress(b"this is not a database " * 500)
    elif damage == "not-gzip":
        payload = b"PK\x03\x04 some zip file"
    elif damage == "foreign-sqlite":
        other = tmp_path / "other.sqlite3"
        con = sqlite3.connect(other)
        con.execute("CREATE TABLE t (x)")
        con.commit()
        con.close()
        payload = gzip.compress(other.read_bytes())
    else:
        payload = gzip.compress(b"")
    bad_path = _plant(backups_dir, payload)
    add_patron(db_uri, "P3", "5.00")  # the current state, which must survive
    before = db_path.read_bytes()
    before_backups = files_in(backups_dir)

    (newest, *_) = list_backups(backups_dir)
    assert newest.path == bad_path
    with pytest.raises(BackupError) as caught:
        restore_backup(db_uri, newest, backups_dir, now=NOW)

    assert "\n" not in str(caught.value) and bad_path.name in str(caught.value)
    assert db_path.read_bytes() == before
    assert files_in(db_path.parent) == ["bursar.sqlite3"]
    assert files_in(backups_dir) == before_backups
    assert not (backups_dir / SAFETY_DIR).exists()
    with pytest.raises(BackupError):
        validate_backup(bad_path, "sqlite")


def test_choosing_a_number_outside_the_list_changes_nothing(db_uri, db_path, backups_dir):
    for d in range(2):
        create_backup(db_uri, backups_dir, now=NOW + timedelta(days=d), keep=5)
    add_patron(db_uri, "P3", "5.00")
    before = db_path.read_bytes()
    listed = list_backups(backups_dir)
    for answer in ["0", "3", "6", "-1", "abc", "", "1.5", 2.0]:
        with pytest.raises(UsageError):
            chosen = pick_backup(listed, answer)
            restore_backup(db_uri, chosen, backups_dir, now=NOW)
    assert db_path.read_bytes() == before
    assert not (backups_dir / SAFETY_DIR).exists()

    chosen = pick_backup(listed, " 2 ")
    assert chosen == listed[1]
    restore_backup(db_uri, chosen, backups_dir, now=NOW)
    assert patrons(db_uri) == BEFORE


def test_pick_offers_only_the_five_newest(db_uri, backups_dir):
    for d in range(7):
        create_backup(db_uri, backups_dir, now=NOW + timedelta(days=d), keep=10)
    listed = list_backups(backups_dir)
    assert pick_backup(listed, 5) == listed[4]
    with pytest.raises(UsageError):
        pick_backup(listed, 6)
    with pytest.raises(UsageError):
        pick_backup([], 1)


def test_restore_when_there_is_no_current_store(db_uri, db_path, backups_dir):
    backup, _ = create_backup(db_uri, backups_dir, now=NOW, keep=5)
    db_path.unlink()
    assert restore_backup(db_uri, backup, backups_dir, now=NOW) is None
    assert patrons(db_uri) == BEFORE


def test_restore_of_a_damaged_current_store_still_saves_it(db_uri, db_path, backups_dir):
    backup, _ = create_backup(db_uri, backups_dir, now=NOW, keep=5)
    db_path.write_bytes(b"scribbled over by a disk problem" * 100)
    safety = restore_backup(db_uri, backup, backups_dir, now=NOW)
    assert patrons(db_uri) == BEFORE
    assert safety is not None
    assert gzip.decompress(safety.path.read_bytes()) == b"scribbled over by a disk problem" * 100


def test_safety_copies_are_capped_at_ten(db_uri, backups_dir):
    backup, _ = create_backup(db_uri, backups_dir, now=NOW, keep=5)
    for i in range(12):
        restore_backup(db_uri, backup, backups_dir, now=NOW + timedelta(minutes=i))
    assert len(files_in(backups_dir / SAFETY_DIR)) == 10
    assert files_in(backups_dir) == [backup.name]


def test_engine_mismatch_is_refused(db_uri, db_path, backups_dir):
    backup, _ = create_backup(db_uri, backups_dir, now=NOW, keep=5)
    before = db_path.read_bytes()
    with pytest.raises(BackupError, match="sqlite backup"):
        restore_backup("mongodb://127.0.0.1:1/almabursar", backup, backups_dir, now=NOW)
    assert db_path.read_bytes() == before


def test_restore_over_a_crashed_store_with_a_hot_wal(db_uri, db_path, backups_dir):
    """A process that died mid-run leaves committed rows only in the -wal file.  The safety
    copy must include them, and the stale -wal must never be replayed onto the restored file."""
    backup, _ = create_backup(db_uri, backups_dir, now=NOW, keep=5)
    store = open_store(db_uri)
    store.insert("patrons", {"almaPatronId": "ONLY-IN-WAL", "balance": Decimal("3.00")})
    wal = Path(f"{db_path}-wal")
    crashed_main, crashed_wal = db_path.read_bytes(), wal.read_bytes()
    store.close()  # (checkpoints and removes the WAL; put the crashed state back)
    db_path.write_bytes(crashed_main)
    wal.write_bytes(crashed_wal)
    assert len(crashed_wal) > 0

    safety = restore_backup(db_uri, backup, backups_dir, now=NOW)

    assert files_in(db_path.parent) == ["bursar.sqlite3"]
    assert patrons(db_uri) == BEFORE
    saved = backups_dir / "saved.sqlite3"
    saved.write_bytes(gzip.decompress(safety.path.read_bytes()))
    assert [p for p, _ in patrons(f"sqlite:///{saved}")] == ["P1", "P2", "ONLY-IN-WAL"]
