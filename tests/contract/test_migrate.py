"""`migrate`: a whole store copied between engines, ids and totals intact; and `Store.put`.

The MongoDB variants are ADAPTER SMOKE TESTS on mongomock ("mongomock-smoke": mongomock is not
MongoDB), and run on a real mongod ("mongodb") when BURSAR_TEST_MONGODB_URI is set.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from bson.decimal128 import Decimal128

from bursar.errors import StoreError, UsageError
from bursar.store import migrate as mig
from bursar.store.base import Store
from bursar.store.overlay import OverlayStore
from bursar.store.schema import BOOL, COLLECTIONS, DATETIME, INT, JSON, MONEY, STR
from bursar.store.sqlite import SqliteStore
from tests.contract.conftest import Backend
from tests.contract.test_legacy_money import MONGO_ENGINES, Mongo, mongo_database, plant_legacy_database

T0 = datetime(2024, 3, 1, 9, 30, 15)


@pytest.fixture(params=MONGO_ENGINES, name="mongo")
def _mongo(request: pytest.FixtureRequest) -> Iterator[Mongo]:
    with mongo_database(request.param) as box:
        yield box


def sample(coll: str, i: int) -> dict[str, Any]:
    """A document using every field of the collection, with some fields left empty."""
    doc: dict[str, Any] = {}
    for n, (name, kind) in enumerate(COLLECTIONS[coll].items()):
        if (i + n) % 5 == 4 and not (coll == "meta" and name == "key"):
            doc[name] = None
        elif kind == STR:
            doc[name] = f"{coll}-{name}-{i}" if name != "almaLoanId" else "\\N"
        elif kind == INT:
            doc[name] = i * 3 + n
        elif kind == BOOL:
            doc[name] = (i + n) % 2 == 0
        elif kind == MONEY:
            doc[name] = Decimal(i * 137 - 500 + n).scaleb(-2)
        elif kind == DATETIME:
            doc[name] = T0 + timedelta(days=i, minutes=n, seconds=i)
        elif kind == JSON:
            doc[name] = {"n": i, "list": [1, "a", None], "total": "3.10"}
    return doc


def fill(store: Store, per_collection: int = 7) -> None:
    for coll in COLLECTIONS:
        store.insert_many(coll, [sample(coll, i) for i in range(per_collection)])
    # ids deleted at the top must stay used: the next export id is above them after the copy too
    store.delete_where("burs_exports", {"id": [per_collection - 1, per_collection]})
    store.delete_where("patrons", {"id": 2})  # and a gap in the middle survives as a gap


def everything(store: Store) -> dict[str, list[dict[str, Any]]]:
    return {coll: list(store.find(coll)) for coll in COLLECTIONS}


def totals(store: Store) -> dict[str, tuple[int, dict[str, Decimal]]]:
    out = {}
    for coll in COLLECTIONS:
        t = mig.tally(store, coll)
        out[coll] = (t.documents, t.totals)
    return out


def sqlite(tmp_path: Path, name: str) -> SqliteStore:
    return SqliteStore(tmp_path / f"{name}.sqlite3")


# ---- the round trip ------------------------------------------------------------------------


def test_round_trip_sqlite_mongodb_sqlite_gives_the_same_documents(tmp_path: Path, mongo: Mongo) -> None:
    first = sqlite(tmp_path, "first")
    fill(first)
    middle = mongo.open()
    last = sqlite(tmp_path, "last")
    try:
        one = mig.migrate(first, middle, dry_run=False, source_label="first", target_label="middle")
        two = mig.migrate(middle, last, dry_run=False, source_label="middle", target_label="last")
        want = everything(first)
        assert sum(len(docs) for docs in want.values()) > 7 * len(COLLECTIONS) - 4
        assert everything(middle) == want
        assert everything(last) == want
        assert totals(middle) == totals(first) == totals(last)
        for summary in (one, two):
            assert summary.exit_code == 0
            assert summary.counts["fines"] == 7 and summary.counts["burs_exports"] == 5
            assert summary.totals["fines.origAmtAlma (money)"] == mig.tally(first, "fines").totals["origAmtAlma"]
            assert any("verified" in note for note in summary.notes)
        # a fresh MongoDB target is ours: Decimal128 money, our marker
        assert mongo.raw["fines"].find_one({"id": 1})["origAmtAlma"] == Decimal128(str(want["fines"][0]["origAmtAlma"]))
        assert middle.money_type == "decimal128"
        assert mongo.raw["store_info"].find_one({"_id": "createdBy"})["value"] == "pyBursar-ng"
        # ids go on above every id the first store handed out, the deleted ones included
        for store in (first, middle, last):
            assert store.last_id("burs_exports") == 7
        assert middle.insert("burs_exports", {"state": "building"}) == 8
        assert last.insert("burs_exports", {"state": "building"}) == 8
        assert last.insert("patrons", {"almaPatronId": "new"}) == 8
        assert last.get("patrons", 2) is None
    finally:
        first.close()
        last.close()


def test_a_legacy_mongodb_database_moves_to_sqlite_and_back(tmp_path: Path, mongo: Mongo) -> None:
    plant_legacy_database(mongo.raw)
    source = mongo.open()
    target = sqlite(tmp_path, "left-mongodb")
    try:
        summary = mig.migrate(source, target, dry_run=False)
        assert everything(target) == everything(source)
        assert target.get("patrons", 2)["balance"] == Decimal("0.30")  # type: ignore[index]
        assert summary.totals["patrons.balance (money)"] == Decimal("17.80")
        assert summary.totals["trans_alma.amt (money)"] == Decimal("-22.90")
        assert target.get("burs_exports", 2)["sent_to_bursar"] is None  # the unsent export stays unsent
        assert target.get("trans_alma", 2)["almaCreated"] == datetime(2021, 9, 15, 8, 0)  # the string, parsed
        assert target.insert("trans_alma", {"fine": 1, "amt": Decimal("1.00")}) == 3
    finally:
        target.close()


# ---- refusals and dry runs -----------------------------------------------------------------


def test_a_non_empty_target_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    source, target = sqlite(tmp_path, "source"), sqlite(tmp_path, "target")
    try:
        fill(source)
        target.insert("jobs", {"type": "AlmaImport"})
        with pytest.raises(UsageError, match=r"not empty \(jobs: 1 documents\)"):
            mig.migrate(source, target, dry_run=False, target_label="sqlite:///target")
        assert {coll: target.count(coll) for coll in COLLECTIONS if target.count(coll)} == {"jobs": 1}
    finally:
        source.close()
        target.close()


def test_a_dry_run_reports_the_same_table_and_writes_nothing(tmp_path: Path, mongo: Mongo) -> None:
    source = sqlite(tmp_path, "source")
    try:
        fill(source)
        target = mongo.open(create=False)
        summary = mig.migrate(source, target, dry_run=True)
        assert summary.dry_run and summary.counts["trans_alma"] == 7
        assert any(note.startswith("would copy") for note in summary.notes)
        assert mongo.raw.list_collection_names() == []
        assert mig.migrate(source, None, dry_run=True).counts == summary.counts
        missing = tmp_path / "not-yet.sqlite3"
        mig.run(f"sqlite:///{source.path}", f"sqlite:///{missing}", dry_run=True)
        assert not missing.exists()
    finally:
        source.close()


def test_the_same_store_and_a_bad_target_uri_are_usage_errors(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite3"
    SqliteStore(path).close()
    with pytest.raises(UsageError, match="the configured store itself"):
        mig.run(f"sqlite:///{path}", f"sqlite:///{tmp_path}/../{tmp_path.name}/a.sqlite3")
    with pytest.raises(UsageError, match=r"^--to is not usable"):
        mig.run(f"sqlite:///{path}", "postgres://db/x")
    with pytest.raises(StoreError, match="does not exist"):  # a source that is not there is not created
        mig.run(f"sqlite:///{tmp_path / 'missing.sqlite3'}", f"sqlite:///{tmp_path / 'b.sqlite3'}")
    assert not (tmp_path / "missing.sqlite3").exists()


class _LossyStore(SqliteStore):
    """A target that silently changes one amount: the verification must notice."""

    def put(self, coll: str, doc: dict[str, Any]) -> None:
        if coll == "trans_burs" and doc["id"] == 3:
            doc = {**doc, "amt": Decimal("0.01")}
        super().put(coll, doc)


def test_a_copy_that_differs_fails_the_run(tmp_path: Path) -> None:
    source, target = sqlite(tmp_path, "source"), _LossyStore(tmp_path / "lossy.sqlite3")
    try:
        fill(source)
        with pytest.raises(StoreError, match=r"the copy differs: trans_burs\.amt: 6 values totalling") as err:
            mig.migrate(source, target, dry_run=False)
        assert err.value.summary.counts["trans_burs"] == 7  # type: ignore[attr-defined]
    finally:
        source.close()
        target.close()


def test_a_copy_that_stops_half_way_says_so(tmp_path: Path) -> None:
    class Failing(SqliteStore):
        def put(self, coll: str, doc: dict[str, Any]) -> None:
            if coll == "fine_mds":
                raise StoreError("disk full")
            super().put(coll, doc)

    source, target = sqlite(tmp_path, "source"), Failing(tmp_path / "half.sqlite3")
    try:
        fill(source)
        with pytest.raises(StoreError, match="stopped while copying fine_mds.*disk full.*partly filled"):
            mig.migrate(source, target, dry_run=False)
        with pytest.raises(UsageError, match="not empty"):  # and the next run refuses it
            mig.migrate(source, target, dry_run=False)
    finally:
        source.close()
        target.close()


# ---- Store.put and Store.last_id on every engine -------------------------------------------


def test_put_keeps_the_id_and_raises_the_counter(store: Store) -> None:
    assert store.last_id("fines") == 0
    store.put("fines", {"id": 41, "rootAlmaFineId": "x", "origAmtAlma": Decimal("1.10")})
    store.put("fines", {"id": 7, "rootAlmaFineId": "y"})
    got = store.get("fines", 41)
    assert got is not None and got["rootAlmaFineId"] == "x" and got["origAmtAlma"] == Decimal("1.10")
    assert got["type"] is None  # fields not given read as None, as after insert
    assert store.last_id("fines") == 41
    assert store.insert("fines", {"rootAlmaFineId": "z"}) == 42
    assert store.insert_many("fines", [{"rootAlmaFineId": "a"}]) == [43]
    store.delete_where("fines", {"id": 43})
    assert store.last_id("fines") == 43  # a deleted top id stays used
    assert store.last_id("patrons") == 0


def test_put_refuses_a_taken_id_a_missing_id_and_unknown_fields(store: Store) -> None:
    store.insert("patrons", {"almaPatronId": "1"})
    with pytest.raises(StoreError, match="already has a document with id 1"):
        store.put("patrons", {"id": 1, "almaPatronId": "again"})
    for bad in ({"almaPatronId": "no id"}, {"id": 0}, {"id": "3"}, {"id": True}):
        with pytest.raises(StoreError, match="put needs the document's id"):
            store.put("patrons", bad)
    with pytest.raises(StoreError, match="unknown field"):
        store.put("patrons", {"id": 5, "nope": 1})
    with pytest.raises(StoreError, match="money"):
        store.put("patrons", {"id": 5, "balance": 1.5})  # a float is never money
    assert [p["almaPatronId"] for p in store.find("patrons")] == ["1"]


def test_put_on_a_dry_run_overlay_stays_in_memory(store: Store, backend: Backend) -> None:
    store.insert("jobs", {"type": "AlmaImport"})
    overlay = OverlayStore(store)
    overlay.put("jobs", {"id": 10, "type": "Backup"})
    with pytest.raises(StoreError, match="already has"):
        overlay.put("jobs", {"id": 1, "type": "Backup"})
    assert overlay.get("jobs", 10)["type"] == "Backup"  # type: ignore[index]
    assert overlay.last_id("jobs") == 10 and overlay.insert("jobs", {"type": "x"}) == 11
    assert store.get("jobs", 10) is None and store.last_id("jobs") == 1
