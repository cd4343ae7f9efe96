"""Money keeps the original's type on a database the original pyBursar created (roll-back).

ADAPTER SMOKE TESTS on mongomock ("mongomock-smoke": mongomock is not MongoDB), and the same
tests on a real mongod ("mongodb") when BURSAR_TEST_MONGODB_URI is set.

The legacy documents below are shaped exactly as the original writes them (docs/ledger.md §2):
integer ids, money as doubles that were never rounded, some Analytics dates as raw strings, no
`state` on exports, no `created` on fine_mds, and a written-but-unsent export.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from bson.decimal128 import Decimal128

from bursar import settings as settings_mod
from bursar.errors import SettingsError, StoreError
from bursar.store import open_store
from bursar.store.mongo import INFO, MongoStore, _as_double
from bursar.store.overlay import OverlayStore
from tests.contract.conftest import MONGODB_URI, _with_database

T0 = datetime(2021, 9, 14, 17, 5, 12)

MONGO_ENGINES = [
    pytest.param("mongomock", id="mongomock-smoke"),
    pytest.param("mongodb", id="mongodb", marks=pytest.mark.skipif(
        not MONGODB_URI, reason="real MongoDB not configured: set BURSAR_TEST_MONGODB_URI to run")),
]


@dataclass
class Mongo:
    """One empty MongoDB database (mongomock or a real mongod) and the raw handle to it."""

    kind: str
    uri: str
    client: Any
    raw: Any
    opened: list[MongoStore] = field(default_factory=list)

    def open(self, money: str = "auto", create: bool = True) -> MongoStore:
        store = MongoStore(self.uri, client=self.client, money=money, create=create)
        self.opened.append(store)
        return store


@contextmanager
def mongo_database(kind: str) -> Iterator[Mongo]:
    """A fresh database: on mongomock, or on the real mongod of BURSAR_TEST_MONGODB_URI (dropped after)."""
    if kind == "mongomock":
        import mongomock

        client: Any = mongomock.MongoClient()
        uri = "mongodb://mongomock.invalid/almabursar"
        name = "almabursar"
    else:
        import pymongo

        name = f"bursar_test_{uuid.uuid4().hex[:12]}"
        uri = _with_database(MONGODB_URI, name)
        client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000)
    box = Mongo(kind, uri, client, client[name])
    try:
        yield box
    finally:
        for store in box.opened:
            store.close()
        if kind == "mongodb":
            client.drop_database(name)
        client.close()


@pytest.fixture(params=MONGO_ENGINES, name="mongo")
def _mongo(request: pytest.FixtureRequest) -> Iterator[Mongo]:
    with mongo_database(request.param) as box:
        yield box


def plant_legacy_database(db: Any) -> None:
    """A small database exactly as the original pyBursar leaves it (doubles, strings, no state)."""
    db["patrons"].insert_many([
        {"id": 1, "almaPatronId": "1000000001", "balance": 17.5, "created": T0, "updated": T0},
        {"id": 2, "almaPatronId": "1000000002", "balance": 0.1 + 0.2, "created": T0, "updated": T0},
    ])
    db["fines"].insert_many([
        {"id": 1, "patron": 1, "almaPatronId": "1000000001", "rootAlmaFineId": "7816239430003841",
         "almaLoanId": "\\N", "isSierraFine": False, "almaCreated": T0, "almaUpdated": T0,
         "type": "Overdue fine", "origAmtAlma": 12.1, "remAmtAlma": 12.1, "isClosedInAlma": False,
         "almaNote": None, "created": T0, "updated": T0},
        {"id": 2, "patron": 2, "almaPatronId": "1000000002", "rootAlmaFineId": "7816239430003842",
         "almaLoanId": "7816239420003842", "isSierraFine": False, "almaCreated": T0, "almaUpdated": T0,
         "type": "Lost item replacement fee", "origAmtAlma": 75.0, "remAmtAlma": 40.0,
         "isClosedInAlma": False, "almaNote": "lost", "created": T0, "updated": T0},
    ])
    db["item_details"].insert_one({"id": 1, "fine": 1, "title": "A book", "author": None, "callNumber": "QA1",
                                   "barcode": None, "loanDate": T0, "dueDate": T0, "returnedDate": None,
                                   "locationCode": "main", "created": T0, "updated": T0})
    db["trans_alma"].insert_many([
        {"id": 1, "fine": 1, "almaFineId": "7816239430003841", "almaTransId": None, "almaCreated": T0,
         "type": "Fine", "amt": 12.1, "almaNote": None, "newAlmaImp": False, "created": T0, "updated": T0},
        {"id": 2, "fine": 2, "almaFineId": "7816239430003842", "almaTransId": "7816239450003842",
         "almaCreated": "2021-09-15T08:00:00", "type": "Payment", "amt": -35.0, "almaNote": None,
         "newAlmaImp": False, "created": T0, "updated": T0},
    ])
    db["trans_burs"].insert_one({"id": 1, "fine": 1, "bursFineId": "7816239430003841", "bursTransId": None,
                                 "bursCreated": None, "type": "Fine", "amt": 12.1, "newBursImp": False,
                                 "newBursExp": False, "created": T0, "updated": T0})
    db["fine_mds"].insert_one({"id": 1, "fine": 1, "bursFineId": "7816239430003841",
                               "alma_fine_id": "7816239430003841", "isReplFee": False,
                               "chargeAcc": "531000000002", "billingDate": T0, "fineDueDate": T0,
                               "termCode": "2217", "sierra_item_detail": None})
    db["burs_exports"].insert_many([
        {"id": 1, "chargesFilename": "LIB_charges.dat.20210914.1.1", "reversalsFilename": None,
         "numSent": 1, "sent_to_bursar": T0, "created": T0, "updated": T0, "exported_fines": [1]},
        {"id": 2, "chargesFilename": "LIB_charges.dat.20210915.2.1", "reversalsFilename": None,
         "numSent": 1, "sent_to_bursar": None, "created": T0, "updated": T0},  # written, never sent
    ])
    db["burs_export_trans"].insert_one({"id": 1, "transBurs": 1, "bursExport": 1, "bursFineMd": 1,
                                        "sent": None, "arrived": None, "created": T0, "updated": T0})
    db["jobs"].insert_one({"id": 1, "type": "AlmaImport", "status": "Success", "scheduled": T0,
                           "started": T0, "finished": T0, "created": T0, "updated": T0})


def is_double(value: Any, cents: str) -> bool:
    """The original's type, holding exactly these cents (as its own float() would give them)."""
    return type(value) is float and value == float(Decimal(cents)) and Decimal(repr(value)) == Decimal(cents)


# ---- a database the original created ------------------------------------------------------


def test_our_writes_keep_the_originals_doubles(mongo: Mongo) -> None:
    plant_legacy_database(mongo.raw)
    store = mongo.open()
    assert store.money_type == "double"
    store.update("patrons", 1, {"balance": Decimal("12.34"), "updated": T0})
    store.update("fines", 2, {"remAmtAlma": Decimal("0.30")})
    store.update_where("fines", {"rootAlmaFineId": "7816239430003841"}, {"remAmtAlma": Decimal("-2.68")})
    new = store.insert("trans_burs", {"fine": 2, "bursFineId": "7816239430003842", "type": "Fine",
                                      "amt": Decimal("75.00"), "newBursImp": False, "newBursExp": True})
    more = store.insert_many("trans_burs", [{"fine": 2, "type": "Payment", "amt": Decimal("-0.07")}])
    store.insert("burs_exports", {"state": "building", "chargesTotal": Decimal("1234567.89")})

    raw = mongo.raw
    assert is_double(raw["patrons"].find_one({"id": 1})["balance"], "12.34")
    assert is_double(raw["fines"].find_one({"id": 2})["remAmtAlma"], "0.30")
    assert is_double(raw["fines"].find_one({"id": 1})["remAmtAlma"], "-2.68")
    assert is_double(raw["trans_burs"].find_one({"id": new})["amt"], "75.00")
    assert is_double(raw["trans_burs"].find_one({"id": more[0]})["amt"], "-0.07")
    assert is_double(raw["burs_exports"].find_one({"id": 3})["chargesTotal"], "1234567.89")
    assert new == 2 and more == [3]  # ids continue above the original's
    # the values the original wrote itself are left exactly as they were
    assert raw["patrons"].find_one({"id": 2})["balance"] == 0.1 + 0.2
    # and we read everything back exactly, as Decimal cents
    assert store.get("patrons", 1)["balance"] == Decimal("12.34")  # type: ignore[index]
    assert store.get("patrons", 2)["balance"] == Decimal("0.30")  # type: ignore[index]
    assert [t["amt"] for t in store.find("trans_burs")] == [Decimal("12.10"), Decimal("75.00"), Decimal("-0.07")]
    # the decision is recorded in the engine's own collection, never as our "created" marker
    assert raw[INFO].find_one({"_id": "moneyType"})["value"] == "double"
    assert raw[INFO].find_one({"_id": "createdBy"}) is None
    assert store.count("meta") == 0  # the jobs' meta keys are untouched


def test_the_decision_is_recorded_and_stable_across_runs(mongo: Mongo) -> None:
    plant_legacy_database(mongo.raw)
    mongo.open().insert("jobs", {"type": "AlmaImport"})
    # evidence that would now point the other way does not change a recorded decision
    mongo.raw["patrons"].update_many({}, {"$set": {"balance": Decimal128("1.00")}})
    again = mongo.open()
    assert again.money_type == "double"
    again.update("patrons", 1, {"balance": Decimal("9.99")})
    assert is_double(mongo.raw["patrons"].find_one({"id": 1})["balance"], "9.99")


def test_a_filter_on_money_matches_either_type(mongo: Mongo) -> None:
    plant_legacy_database(mongo.raw)
    mongo.raw["trans_alma"].insert_one({"id": 3, "fine": 1, "type": "Fine", "amt": Decimal128("12.10")})
    store = mongo.open()
    store.insert("trans_alma", {"fine": 2, "type": "Fine", "amt": Decimal("12.10")})  # a double
    assert [t["id"] for t in store.find("trans_alma", {"amt": Decimal("12.10")})] == [1, 3, 4]
    assert store.count("trans_alma", {"amt": [Decimal("-35.00"), Decimal("99.00")]}) == 1
    assert store.count("trans_alma", {"amt": [Decimal("12.10"), None]}) == 3
    assert store.count("fines", {"origAmtAlma": 75}) == 1  # whole amounts as int too


def test_a_legacy_database_with_decimal128_opted_in(mongo: Mongo) -> None:
    plant_legacy_database(mongo.raw)
    money = settings_mod.load({"BURSAR_MONGO_MONEY": "decimal128"}).get("BURSAR_MONGO_MONEY")
    store = mongo.open(money=str(money))
    assert store.money_type == "decimal128"
    store.update("patrons", 1, {"balance": Decimal("12.34")})
    assert mongo.raw["patrons"].find_one({"id": 1})["balance"] == Decimal128("12.34")
    assert mongo.raw[INFO].find_one({"_id": "moneyType"})["value"] == "decimal128"
    # opting in is for good: later runs in `auto` keep Decimal128
    assert mongo.open().money_type == "decimal128"
    assert store.get("patrons", 2)["balance"] == Decimal("0.30")  # type: ignore[index]


def test_read_only_use_and_dry_runs_record_nothing(mongo: Mongo) -> None:
    plant_legacy_database(mongo.raw)
    store = mongo.open()
    assert store.get("fines", 1)["origAmtAlma"] == Decimal("12.10")  # type: ignore[index]
    overlay = OverlayStore(store)
    overlay.update("patrons", 1, {"balance": Decimal("1.00")})
    overlay.insert("trans_burs", {"fine": 1, "amt": Decimal("5.00")})
    assert INFO not in mongo.raw.list_collection_names()
    assert mongo.raw["patrons"].find_one({"id": 1})["balance"] == 17.5
    quiet = mongo.open(create=False)  # no indexes either
    assert quiet.money_type == "double" and quiet.count("fines") == 2


# ---- a database we create, and the edge cases of telling them apart ------------------------


def test_a_fresh_database_gets_decimal128_and_our_marker(mongo: Mongo) -> None:
    store = mongo.open()
    assert store.money_type == "decimal128"
    assert INFO not in mongo.raw.list_collection_names()  # nothing recorded before a write
    store.insert("patrons", {"almaPatronId": "1", "balance": Decimal("12.34")})
    assert mongo.raw["patrons"].find_one({"id": 1})["balance"] == Decimal128("12.34")
    info = {d["_id"]: d["value"] for d in mongo.raw[INFO].find()}
    assert info == {"moneyType": "decimal128", "createdBy": "pyBursar-ng"}
    # even once money values that look like the original's appear, ours stays ours
    mongo.raw["patrons"].update_one({"id": 1}, {"$set": {"balance": 1.5}})
    mongo.raw[INFO].delete_one({"_id": "moneyType"})
    assert mongo.open().money_type == "decimal128"


def test_a_fresh_database_with_doubles_chosen(mongo: Mongo) -> None:
    store = mongo.open(money="double")
    store.insert("fines", {"origAmtAlma": Decimal("5.05")})
    assert is_double(mongo.raw["fines"].find_one({"id": 1})["origAmtAlma"], "5.05")
    assert mongo.open().money_type == "double"


def test_a_database_we_made_before_the_marker_existed_stays_decimal128(mongo: Mongo) -> None:
    mongo.raw["fines"].insert_one({"id": 1, "origAmtAlma": Decimal128("5.00")})
    mongo.raw["counters"].insert_one({"_id": "fines", "seq": 1})
    assert mongo.open().money_type == "decimal128"


def test_the_originals_documents_without_money_still_mean_the_original(mongo: Mongo) -> None:
    mongo.raw["jobs"].insert_one({"id": 1, "type": "AlmaImport", "status": "Success"})
    mongo.raw["fines"].insert_one({"id": 1, "rootAlmaFineId": "1", "origAmtAlma": None})
    assert mongo.open().money_type == "double"


def test_a_bad_money_setting_is_a_settings_error(mongo: Mongo) -> None:
    with pytest.raises(SettingsError, match="BURSAR_MONGO_MONEY"):
        mongo.open(money="float")
    with pytest.raises(SettingsError, match="BURSAR_MONGO_MONEY"):
        open_store("sqlite:///data/x.sqlite3", money="Decimal")


# ---- the double itself ---------------------------------------------------------------------


def test_the_double_is_exactly_what_float_of_the_cents_gives() -> None:
    samples = [Decimal(n).scaleb(-2) for n in range(-100_000, 100_001, 7)]
    samples += [Decimal(s) for s in ("0.00", "0.01", "-0.01", "0.10", "0.29", "1.15", "2.675",
                                     "99999999.99", "-12345678.91", "4503599627370.49")]
    for cents in samples:
        cents = cents.quantize(Decimal("0.01"))
        value = _as_double(cents)
        assert type(value) is float and value == float(cents), cents
        assert Decimal(repr(value)) == cents, cents  # reads back (as our decoder does) exactly


def test_open_store_without_create_refuses_a_missing_sqlite_file(tmp_path: Any) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        open_store(f"sqlite:///{tmp_path / 'nope.sqlite3'}", create=False)
    assert not (tmp_path / "nope.sqlite3").exists()
