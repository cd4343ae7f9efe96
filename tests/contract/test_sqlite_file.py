"""What the SQLite engine puts in its file, read back with plain sqlite3: the layout other
tools (backups, an operator with the sqlite3 shell) rely on."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from bursar.errors import SettingsError, StoreError
from bursar.store.schema import COLLECTIONS, INDEXES
from bursar.store.sqlite import USER_VERSION, SqliteStore


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "bursar.sqlite3"


@pytest.fixture
def store(path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(path)
    yield s
    s.close()


def raw(path: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def test_layout_version_wal_tables_and_indexes(store: SqliteStore, path: Path) -> None:
    assert raw(path, "PRAGMA user_version") == [(USER_VERSION,)] == [(1,)]
    assert raw(path, "PRAGMA journal_mode") == [("wal",)]
    for coll, fields in COLLECTIONS.items():
        columns = [row[1] for row in raw(path, f'PRAGMA table_info("{coll}")')]
        assert columns == ["id", *fields], coll
    indexed = {
        (t, c)
        for t, name in raw(path, "SELECT tbl_name, name FROM sqlite_master WHERE type='index'")
        for (_, _, c) in raw(path, f'PRAGMA index_info("{name}")')
    }
    for coll, indexed_fields in INDEXES.items():
        for f in indexed_fields:
            assert (coll, f) in indexed, (coll, f)


def test_values_are_stored_as_documented(store: SqliteStore, path: Path) -> None:
    store.insert(
        "trans_alma",
        {
            "fine": 1,
            "amt": Decimal("-12.34"),
            "almaCreated": datetime(2024, 1, 2, 3, 4, 5, 600000),
            "newAlmaImp": True,
            "almaNote": "note",
        },
    )
    store.insert("jobs", {"summary": {"total": Decimal("1.50")}})
    assert raw(path, "SELECT amt, typeof(amt), almaCreated, newAlmaImp FROM trans_alma") == [
        (-1234, "integer", "2024-01-02T03:04:05.600000", 1)
    ]
    assert raw(path, "SELECT summary FROM jobs") == [('{"total":"1.50"}',)]


def test_microseconds_round_trip(store: SqliteStore) -> None:
    when = datetime(2024, 1, 2, 3, 4, 5, 123456)
    new_id = store.insert("jobs", {"started": when})
    assert store.get("jobs", new_id)["started"] == when  # type: ignore[index]


def test_a_file_that_is_not_a_database_is_refused_naming_it_and_left_as_it_was(path: Path) -> None:
    data = b"this is not a database, just some bytes " * 100
    path.write_bytes(data)
    with pytest.raises(SettingsError, match=str(path)):  # exit 2: a settings problem (BURSAR_DB_URI)
        SqliteStore(path)
    assert path.read_bytes() == data


def test_another_programs_sqlite_file_is_refused_without_changing_a_byte(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount TEXT)")
    con.execute("INSERT INTO invoices (amount) VALUES ('12.50')")
    con.commit()
    con.close()
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(SettingsError, match="not a pyBursar database.*invoices"):
        SqliteStore(path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert not Path(str(path) + "-wal").exists()


def test_a_file_with_some_of_our_tables_but_no_marker_is_refused(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE fines (id INTEGER PRIMARY KEY)")
    con.commit()
    con.close()
    with pytest.raises(SettingsError, match="no pyBursar layout marker"):
        SqliteStore(path)


def test_a_newer_layout_is_refused(path: Path) -> None:
    SqliteStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 2")
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        SqliteStore(path)


def test_fields_added_to_the_schema_later_become_columns(path: Path) -> None:
    conn = sqlite3.connect(path)  # a file from before jobs.summary existed
    conn.execute('CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, "type" TEXT, status TEXT)')
    conn.execute("INSERT INTO jobs (type, status) VALUES ('AlmaImport', 'Success')")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    store = SqliteStore(path)
    try:
        assert store.get("jobs", 1)["summary"] is None  # type: ignore[index]
        store.update("jobs", 1, {"summary": {"ok": True}})
        assert store.get("jobs", 1)["summary"] == {"ok": True}  # type: ignore[index]
    finally:
        store.close()


def test_a_file_that_cannot_be_created_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="not-a-dir"):
        SqliteStore(blocker / "bursar.sqlite3")


def test_a_closed_store_raises_store_errors(path: Path) -> None:
    store = SqliteStore(path)
    store.close()
    with pytest.raises(StoreError, match=str(path)):
        store.get("jobs", 1)


def test_opening_does_not_wait_for_another_writer(store: SqliteStore, path: Path) -> None:
    """A long import holds the write lock; `lookupFine` in another process must still open."""
    with store.transaction():
        store.insert("jobs", {"type": "AlmaImport"})
        reader = SqliteStore(path)  # would block for the busy timeout if opening took the lock
        try:
            assert reader.count("jobs") == 0
        finally:
            reader.close()


def test_selective_index_wins_over_a_repetitive_one(store: SqliteStore, path: Path) -> None:
    """almaLoanId is mostly "\\N": a lookup by rootAlmaFineId and almaLoanId must use the
    rootAlmaFineId index (planner choice checked, not timed)."""
    store.find_one("fines", {"rootAlmaFineId": "1", "almaLoanId": "\\N"})
    sql = next(k for k in store._sql if k[0] == "find_one")  # the cached statement
    conn = sqlite3.connect(path)
    try:
        plan = conn.execute(f"EXPLAIN QUERY PLAN {store._sql[sql]}", ("1", "\\N")).fetchall()
    finally:
        conn.close()
    assert any("ix_fines_rootAlmaFineId" in str(row) for row in plan), plan


def test_each_batch_of_an_ordered_find_is_an_index_range(store: SqliteStore, path: Path) -> None:
    """find() ordered by a field reads batch after batch from where the last one ended: the
    keyset must be a range on an index (planner choice checked, not timed), or every batch
    scans or sorts from the first row and a large find is quadratic.  An export's lines are
    read filtered by export and ordered by Bursar line."""
    store.insert_many("burs_export_trans", [{"bursExport": 1 + i % 2, "transBurs": i % 500} for i in range(2200)])
    store.insert_many("trans_alma", [{"fine": i % 700} for i in range(2200)])
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    try:
        assert len(list(store.find("burs_export_trans", {"bursExport": 2}, order_by="transBurs"))) == 1100
        assert len(list(store.find("trans_alma", order_by="fine"))) == 2200
    finally:
        store._conn.set_trace_callback(None)
    later = [s for s in statements if ") AND (" in s]  # the batches after the first (a keyset)
    assert len(later) == 3, statements
    conn = sqlite3.connect(path)
    try:
        for sql in later:
            plan = " ".join(str(row[3]) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
            assert "SEARCH" in plan and ">" in plan and "TEMP B-TREE" not in plan, (sql, plan)
    finally:
        conn.close()
