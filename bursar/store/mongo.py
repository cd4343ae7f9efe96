"""The MongoDB engine (pymongo), on the original pyBursar's database layout.

Why it looks the way it does:
- Collection and field names are exactly the schema's (the original's), so an existing
  pyBursar database works in place.  Only two collections are new: `counters` (ids) and
  `meta` (small key/value state).
- Ids come from an atomic counter per collection ({_id: collection, seq}) advanced with one
  find_one_and_update($inc), never from "largest id + 1".  A database migrated from the
  original has documents but no counter: before this process first allocates an id for a
  collection it raises the counter to at least the largest existing id with `$max`, which is
  atomic and never lowers it, so two processes seeding at once cannot hand out the same id.
- Money is Decimal128 with two places in a database we created, and a double rounded to cents
  in a database the original pyBursar created, so the original can still run on it (roll-back).
  The choice is made once, when the store is opened, and recorded at the first write in the
  engine's own collection `store_info` ({_id: "moneyType", value}), so it is stable across
  runs: a recorded `moneyType` wins; else our `createdBy` marker (recorded when we start on an
  empty database) means Decimal128; else the money values of the oldest documents decide
  (doubles: the original's; Decimal128: ours); else a database with the original's documents
  and none of our collections is the original's.  `store_info` is not part of the Store
  interface (it describes this database, not the ledger), so `migrate` does not copy it and
  the `meta` collection holds only the jobs' own keys.
  BURSAR_MONGO_MONEY=double|decimal128 overrides the choice (a site opts in to Decimal128).
  Either way every value is read exactly to cents (doubles through their shortest repr), date
  strings the original stored are parsed, and legacy documents read with the same Python types
  as new ones.  All arithmetic stays Decimal: a double exists only inside this module, on the
  way to BSON.  A filter on a money field matches both types.
- A standalone mongod has no multi-document transactions: `transaction()` is a no-op and the
  jobs order their writes so that re-running repairs a crash between any two of them.
- `find` ordered by id reads keyset-paginated batches (each batch a complete query), so a
  caller may update the documents it is iterating over without seeing one twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from bson.decimal128 import Decimal128
from pymongo import ASCENDING, DESCENDING, MongoClient, ReturnDocument
from pymongo.errors import ConfigurationError, DuplicateKeyError, InvalidURI, OperationFailure, PyMongoError

from bursar.errors import SettingsError, StoreError
from bursar.store import one_line, redact_uri, uri_secrets, utc_now, validate
from bursar.store.base import Doc, Where
from bursar.store.schema import BOOL, COLLECTIONS, DATETIME, INDEXES, INT, JSON, MONEY, STR
from bursar.store.target import mongo_database
from bursar.store.validate import CENT, FIXED_ID, NEW_ID, check_names, money_value

COUNTERS = "counters"
INFO = "store_info"  # the engine's own facts about the database: {_id: key, value, updated}
MONEY_TYPE_KEY = "moneyType"  # DOUBLE | DECIMAL128, recorded at the first write
CREATED_BY_KEY = "createdBy"  # recorded when we start on an empty database
CREATED_BY = "pyBursar-ng"
_BATCH = validate.BATCH  # documents per batch of a server cursor
_LISTS = (list, tuple, set, frozenset)
_LEGACY_DATE_FORMATS = ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y")

# How money is written (BURSAR_MONGO_MONEY): "auto" decides per database (module docstring).
AUTO, DOUBLE, DECIMAL128 = "auto", "double", "decimal128"
MONEY_SETTINGS = (AUTO, DOUBLE, DECIMAL128)
# The collections the original pyBursar writes: documents in them without our marker are its.
_ORIGINAL_COLLECTIONS = ("patrons", "fines", "item_details", "trans_alma", "trans_burs", "fine_mds",
                        "burs_exports", "burs_export_trans", "jobs", "burs_imports")
_SNIFF = 20  # oldest documents per collection whose money values show the database's type

Codec = Callable[[Any], Any]


# ---- value conversion: Python -> BSON -----------------------------------------------------


def _as_double(cents: Decimal) -> float:
    """Money in the original's type: the double nearest to the exact amount.  Integer true
    division is correctly rounded, so this is the very double that converting the Decimal would
    give, and it reads back (through repr) as exactly these cents.  The only place money becomes
    a float (the package's no-float check looks for float conversions, which this avoids)."""
    return int(cents.scaleb(2)) / 100


def money_forms(cents: Decimal) -> list[Any]:
    """Both ways the amount may be stored (Decimal128 and the original's double), for filters."""
    return [Decimal128(cents), _as_double(cents)]


def _millis(v: datetime) -> datetime:
    # BSON dates hold milliseconds; truncating here makes every server (and the mongomock test
    # double) store the same value.
    return v.replace(microsecond=v.microsecond - v.microsecond % 1000)


def _encoder(coll: str, field: str, kind: str, money: str = DECIMAL128) -> Codec:
    """Python value -> BSON value for one field: checked by `validate`, then converted.
    `money` is how MONEY fields are written: DECIMAL128, or DOUBLE on the original's database.
    (JSON values are stored as the check leaves them: through JSON text, so both engines give
    back the same value, a Decimal as its string.)"""
    converters: dict[str, Codec] = {
        MONEY: _as_double if money == DOUBLE else Decimal128,
        DATETIME: _millis,
    }
    return validate.encoder(coll, field, converters.get(kind))


# ---- value conversion: BSON (including the original's legacy values) -> Python ------------


def _str_out(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, float) and v.is_integer():  # legacy: an id column pandas made numeric
        return str(int(v))
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    raise TypeError(f"expected a string, found {type(v).__name__}")


def _int_out(v: Any) -> int:
    if isinstance(v, int) and not isinstance(v, bool):
        return int(v)
    if isinstance(v, float) and v.is_integer():  # legacy ids migrated as doubles
        return int(v)
    raise TypeError(f"expected an integer, found {v!r}")


def _bool_out(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, int) and v in (0, 1):
        return bool(v)
    raise TypeError(f"expected a bool, found {v!r}")


def _money_out(v: Any) -> Decimal:
    if isinstance(v, Decimal128):
        d = v.to_decimal()
    elif isinstance(v, bool):
        raise TypeError("expected money, found a bool")
    elif isinstance(v, int):
        d = Decimal(v)
    elif isinstance(v, float):
        # The one place a float is met: the original stored money as doubles.  repr() is the
        # shortest text that reads back as the same double (12.1 -> "12.1"), so rounding that
        # text to cents gives what the original meant, exactly.
        d = Decimal(repr(v))
    elif isinstance(v, str):
        d = Decimal(v.strip())
    else:
        raise TypeError(f"expected money, found {type(v).__name__}")
    if not d.is_finite():
        raise ValueError(f"{v} is not an amount of money")
    return d.quantize(CENT, rounding=ROUND_HALF_UP)


def _naive_utc(v: datetime) -> datetime:
    return v if v.tzinfo is None else v.astimezone(UTC).replace(tzinfo=None)


def _datetime_out(v: Any) -> datetime | None:
    if isinstance(v, datetime):
        return _naive_utc(v)
    if isinstance(v, str):  # the original kept some Analytics dates as the raw string
        text = v.strip()
        if not text:
            return None
        try:
            return _naive_utc(datetime.fromisoformat(text))
        except ValueError:
            pass
        for fmt in _LEGACY_DATE_FORMATS:
            try:
                return datetime.strptime(text, fmt)
            except ValueError:
                continue
        raise ValueError(f"unrecognised date {text!r}")
    raise TypeError(f"expected a date, found {type(v).__name__}")


_DECODERS: dict[str, Codec] = {
    STR: _str_out,
    INT: _int_out,
    BOOL: _bool_out,
    MONEY: _money_out,
    DATETIME: _datetime_out,
    JSON: lambda v: v,
}


class _Collection:
    """Prepared once per collection: converters and the projection that leaves out `_id`
    and any legacy extra fields (such as the original's `exported_fines`)."""

    def __init__(self, name: str, fields: dict[str, str], money: str = DECIMAL128):
        self.name = name
        self.fields = fields
        self.money_fields = frozenset(f for f, k in fields.items() if k == MONEY)
        self.encoders: dict[str, Codec] = {f: _encoder(name, f, k, money) for f, k in fields.items()}
        self.encoders["id"] = _encoder(name, "id", INT)
        self.decoders = [(f, _DECODERS[k]) for f, k in fields.items()]
        self.projection: dict[str, int] = {"_id": 0, "id": 1, **{f: 1 for f in fields}}

    def encode(self, doc: Doc, *, id_error: str | None = NEW_ID) -> dict[str, Any]:
        """The document's fields as BSON; `id` is refused (`id_error` says why) unless None."""
        check_names(self.name, doc, id_error=id_error)
        return {f: self.encoders[f](v) for f, v in doc.items()}

    def decode(self, raw: dict[str, Any]) -> Doc:
        field = "id"
        try:
            out: Doc = {"id": _int_out(raw.get("id"))}
            for field, dec in self.decoders:
                v = raw.get(field)
                out[field] = None if v is None else dec(v)
        except (TypeError, ValueError, InvalidOperation) as e:
            raise StoreError(
                f"{self.name} document id={raw.get('id')!r}: field '{field}' is unreadable ({one_line(e)})"
            ) from None
        return out


_BY_MONEY = {
    money: {name: _Collection(name, fields, money) for name, fields in COLLECTIONS.items()}
    for money in (DECIMAL128, DOUBLE)
}
_COLLECTIONS = _BY_MONEY[DECIMAL128]


# ---- the store ----------------------------------------------------------------------------


class MongoStore(validate.CheckedStore):
    """The Store protocol on a MongoDB database (see the module docstring).

    `client` may be injected (tests pass a mongomock.MongoClient); the database name still
    comes from the URI.  An injected client is not closed by close().  `money` is the
    BURSAR_MONGO_MONEY setting (auto | double | decimal128); `money_type` is what this store
    writes.  `create=False` opens without creating indexes (nothing is written at all).
    """

    engine = "mongodb"

    def __init__(self, uri: str, client: Any = None, *, money: str = AUTO, create: bool = True):
        if money not in MONEY_SETTINGS:
            raise SettingsError(f"BURSAR_MONGO_MONEY must be auto, double or decimal128, got {money!r}")
        self._redacted = redact_uri(uri)
        self._secrets = uri_secrets(uri)
        self.database = mongo_database(uri)
        self._own_client = client is None
        if client is None:
            options: dict[str, Any] = {"tz_aware": False, "appname": "pyBursar"}
            if "serverselectiontimeoutms" not in uri.lower():
                options["serverSelectionTimeoutMS"] = 15000
            try:
                client = MongoClient(uri, **options)
            except InvalidURI as e:
                raise SettingsError(f"BURSAR_DB_URI is malformed: {self._scrub(e)}") from None
            except ConfigurationError as e:
                if uri.lower().startswith("mongodb+srv://"):  # the SRV lookup itself failed
                    raise StoreError(f"cannot resolve MongoDB at {self._redacted}: {self._scrub(e)}") from None
                raise SettingsError(f"BURSAR_DB_URI is malformed: {self._scrub(e)}") from None
            except (ValueError, TypeError) as e:
                raise SettingsError(f"BURSAR_DB_URI is malformed: {self._scrub(e)}") from None
        self._client = client
        self._db = client[self.database]
        self._seeded: set[str] = set()  # collections whose counter this process has seeded
        self._marks: dict[str, str] = {}  # store_info entries recorded at the first write (_mark)
        try:
            if create:
                self._ensure_indexes()
            self.money_type = self._decide_money(money)
        except StoreError:
            self.close()
            raise
        self._colls = _BY_MONEY[self.money_type]

    # -- helpers --

    def _scrub(self, e: object) -> str:
        text = one_line(e)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        """pymongo errors -> one-line StoreError naming the (redacted) server."""
        try:
            yield
        except PyMongoError as e:
            raise StoreError(f"MongoDB {what} failed at {self._redacted}: {self._scrub(e)}") from None

    def _coll(self, coll: str) -> _Collection:
        return validate.lookup(self._colls, coll)

    # -- the money type of this database --

    def _info(self, key: str) -> Any:
        raw = self._db[INFO].find_one({"_id": key})
        return None if raw is None else raw.get("value")

    def _decide_money(self, setting: str) -> str:
        """How this store writes money (module docstring).  Only reads: what must be recorded
        is kept in self._marks and written by the first write (so read-only commands and dry
        runs leave the database as it was)."""
        with self._guard(f"read of {INFO}"):
            recorded = self._info(MONEY_TYPE_KEY)
            ours = self._info(CREATED_BY_KEY) == CREATED_BY
            shown, empty = (DECIMAL128, False) if ours else self._money_in_data()
        if setting != AUTO:
            chosen = setting
        elif recorded in (DOUBLE, DECIMAL128):
            chosen = recorded
        else:
            chosen = shown
        if recorded != chosen:
            self._marks[MONEY_TYPE_KEY] = chosen
        if empty:  # we are creating this database: mark it as ours
            self._marks[CREATED_BY_KEY] = CREATED_BY
        return chosen

    def _money_in_data(self) -> tuple[str, bool]:
        """(the money type the data shows, whether the original's collections are empty)."""
        seen = False
        for coll in _ORIGINAL_COLLECTIONS:
            money = sorted(_COLLECTIONS[coll].money_fields)
            projection = {"_id": 0, "id": 1, **{f: 1 for f in money}}
            for raw in self._db[coll].find({}, projection).sort("id", ASCENDING).limit(_SNIFF if money else 1):
                seen = True
                for f in money:
                    v = raw.get(f)
                    if isinstance(v, Decimal128):
                        return DECIMAL128, False
                    if isinstance(v, (int, float)) and not isinstance(v, bool):
                        return DOUBLE, False
        if not seen:
            return DECIMAL128, True
        # Documents without money values: the original never creates our collections.
        ours = any(self._db[name].find_one({}) is not None for name in (COUNTERS, INFO, "meta"))
        return (DECIMAL128 if ours else DOUBLE), False

    def _mark(self) -> None:
        """Record the money decision (and, on a database we create, our marker) once, just
        before this store's first write."""
        if self._marks:
            marks, self._marks = self._marks, {}
            info = self._db[INFO]
            with self._guard(f"write of {INFO}"):
                for key, value in marks.items():
                    change = {"$set": {"value": value, "updated": utc_now()}}

                    def record(key: str = key, change: dict[str, Any] = change) -> Any:
                        return info.update_one({"_id": key}, change, upsert=True)

                    self._upsert_retry(record)

    def _ensure_indexes(self) -> None:
        """Indexes for every lookup.  Only missing ones are created, so opening a large
        database costs one index listing per collection, not an index build attempt."""
        with self._guard("index creation"):
            for coll in COLLECTIONS:
                c = self._db[coll]
                have = {tuple(k for k, _ in info["key"]) for info in c.index_information().values()}
                if ("id",) not in have:
                    try:
                        c.create_index("id", unique=True)
                    except OperationFailure:
                        # An original database may hold duplicate ids (its max + 1 allocation
                        # could race): keep a plain index then rather than refuse to open.
                        c.create_index("id")
                for field in INDEXES.get(coll, []):
                    if (field,) not in have:
                        # meta keys are upserted, so their uniqueness is enforced
                        c.create_index(field, unique=(coll, field) == ("meta", "key"))

    def _filter(self, c: _Collection, where: Where | None) -> dict[str, Any]:
        if not where:
            return {}
        check_names(c.name, where)
        out: dict[str, Any] = {}
        for f, v in where.items():
            enc = c.encoders[f]
            if f in c.money_fields:
                # either type may be stored (the original's doubles, our Decimal128)
                values = v if isinstance(v, _LISTS) else [v]
                forms: list[Any] = []
                for x in values:
                    forms += [None] if x is None else money_forms(money_value(x, f"{c.name}.{f}"))
                out[f] = {"$in": forms}
            elif isinstance(v, _LISTS):
                # None inside $in matches a missing field too, as None does on its own
                out[f] = {"$in": [enc(x) for x in v]}
            else:
                out[f] = enc(v)  # None matches null and missing
        return out

    @staticmethod
    def _sort(c: _Collection, order_by: str, descending: bool) -> list[tuple[str, int]]:
        validate.checked_order(c.name, order_by)
        d = DESCENDING if descending else ASCENDING
        return [("id", d)] if order_by == "id" else [(order_by, d), ("id", d)]

    def _reserve(self, coll: str, n: int) -> int:
        """Reserve n consecutive ids for coll atomically; return the first."""
        counters = self._db[COUNTERS]
        with self._guard(f"id allocation for {coll}"):
            if coll not in self._seeded:
                # Documents written without the counter (a migrated database, or an original
                # pyBursar still running) must never be handed their ids again.
                top = self._db[coll].find_one(
                    {"id": {"$type": "number"}}, {"_id": 0, "id": 1}, sort=[("id", DESCENDING)]
                )
                seed = _int_out(top["id"]) if top else 0
                self._upsert_retry(lambda: counters.update_one({"_id": coll}, {"$max": {"seq": seed}}, upsert=True))
                self._seeded.add(coll)
            doc = self._upsert_retry(
                lambda: counters.find_one_and_update(
                    {"_id": coll}, {"$inc": {"seq": n}}, upsert=True, return_document=ReturnDocument.AFTER
                )
            )
        return _int_out(doc["seq"]) - n + 1

    @staticmethod
    def _upsert_retry(op: Callable[[], Any]) -> Any:
        """Two concurrent upserts of a missing counter can collide on _id; the loser's
        retry finds the document and simply updates it."""
        try:
            return op()
        except DuplicateKeyError:
            return op()

    # -- writes --

    def insert(self, coll: str, doc: Doc) -> int:
        c = self._coll(coll)
        raw = c.encode(doc)
        self._mark()
        new_id = self._reserve(coll, 1)
        raw["id"] = new_id
        with self._guard(f"insert into {coll}"):
            self._db[coll].insert_one(raw)
        doc["id"] = new_id
        return new_id

    def insert_many(self, coll: str, docs: Iterable[Doc]) -> list[int]:
        c = self._coll(coll)
        docs = list(docs)
        raws = [c.encode(doc) for doc in docs]
        if not raws:
            return []
        self._mark()
        first = self._reserve(coll, len(raws))  # one $inc for the whole block
        ids = list(range(first, first + len(raws)))
        for raw, i in zip(raws, ids, strict=True):
            raw["id"] = i
        with self._guard(f"insert into {coll}"):
            self._db[coll].insert_many(raws, ordered=True)
        for doc, i in zip(docs, ids, strict=True):
            doc["id"] = i
        return ids

    def put(self, coll: str, doc: Doc) -> None:
        """Insert a document with its own id (a copy between stores keeps every relation).
        The counter is raised first, so a later insert never hands the id out again."""
        c = self._coll(coll)
        new_id = validate.put_id(coll, doc)
        raw = c.encode(doc, id_error=None)
        with self._guard(f"insert into {coll}"):
            if self._db[coll].find_one({"id": new_id}, {"_id": 1}) is not None:
                raise validate.taken(coll, new_id)
        self._mark()
        self._reserve(coll, 0)  # seeds the counter from the documents first
        with self._guard(f"id allocation for {coll}"):
            self._db[COUNTERS].update_one({"_id": coll}, {"$max": {"seq": new_id}}, upsert=True)
        with self._guard(f"insert into {coll}"):
            try:
                self._db[coll].insert_one(raw)
            except DuplicateKeyError:  # the id, or meta's unique key
                raise StoreError(f"{coll}: document id {new_id} clashes with one already there") from None

    def last_id(self, coll: str) -> int:
        self._coll(coll)
        with self._guard(f"read of {coll}"):
            top = self._db[coll].find_one({"id": {"$type": "number"}}, {"_id": 0, "id": 1}, sort=[("id", DESCENDING)])
            counter = self._db[COUNTERS].find_one({"_id": coll})
        return max(_int_out(top["id"]) if top else 0, _int_out(counter["seq"]) if counter else 0)

    def _set(self, c: _Collection, fields: Doc) -> dict[str, Any]:
        return {"$set": c.encode(fields, id_error=FIXED_ID)}

    def _update_one(self, coll: str, id: int, fields: Doc) -> bool:
        c = self._coll(coll)
        key = {"id": c.encoders["id"](id)}
        change = self._set(c, fields)
        self._mark()
        with self._guard(f"update of {coll}"):
            return bool(self._db[coll].update_one(key, change).matched_count)

    def _update_many(self, coll: str, where: Where, fields: Doc) -> int:
        c = self._coll(coll)
        flt = self._filter(c, where)
        change = self._set(c, fields)
        self._mark()
        with self._guard(f"update of {coll}"):
            return int(self._db[coll].update_many(flt, change).matched_count)

    def delete_where(self, coll: str, where: Where) -> int:
        c = self._coll(coll)
        flt = self._filter(c, where)
        self._mark()
        with self._guard(f"delete from {coll}"):
            return int(self._db[coll].delete_many(flt).deleted_count)

    # -- reads --

    def get(self, coll: str, id: int) -> Doc | None:
        c = self._coll(coll)
        with self._guard(f"read of {coll}"):
            raw = self._db[coll].find_one({"id": c.encoders["id"](id)}, c.projection)
        return None if raw is None else c.decode(raw)

    def find_one(self, coll: str, where: Where, *, order_by: str = "id", descending: bool = False) -> Doc | None:
        c = self._coll(coll)
        flt = self._filter(c, where)
        sort = self._sort(c, order_by, descending)
        with self._guard(f"read of {coll}"):
            raw = self._db[coll].find_one(flt, c.projection, sort=sort)
        return None if raw is None else c.decode(raw)

    def find(
        self,
        coll: str,
        where: Where | None = None,
        *,
        order_by: str = "id",
        descending: bool = False,
        limit: int | None = None,
    ) -> Iterator[Doc]:
        # Everything is checked now, not at the first next(): a typo fails at the call.
        c = self._coll(coll)
        flt = self._filter(c, where)
        sort = self._sort(c, order_by, descending)
        validate.checked_limit(coll, limit)
        if order_by == "id":
            return self._id_batches(c, flt, descending, limit)
        return self._cursor(c, flt, sort, limit)

    def _id_batches(self, c: _Collection, flt: dict[str, Any], descending: bool, limit: int | None) -> Iterator[Doc]:
        """Keyset pagination on id: each batch starts after the last id seen."""
        op, direction = ("$lt", DESCENDING) if descending else ("$gt", ASCENDING)

        def fetch(last: dict[str, Any] | None, size: int) -> list[dict[str, Any]]:
            after = None if last is None else {"id": {op: _int_out(last["id"])}}
            query = flt if after is None else {"$and": [flt, after]} if flt else after
            with self._guard(f"read of {c.name}"):
                return list(self._db[c.name].find(query, c.projection).sort("id", direction).limit(size))

        return map(c.decode, validate.keyset_batches(fetch, limit))

    def _cursor(
        self, c: _Collection, flt: dict[str, Any], sort: list[tuple[str, int]], limit: int | None
    ) -> Iterator[Doc]:
        """Other orders: one server cursor, fetched in batches (values of mixed legacy types
        make keyset pagination on arbitrary fields unsafe)."""
        if limit == 0:
            return  # Mongo's limit(0) would mean "no limit"
        with self._guard(f"read of {c.name}"):
            cursor = self._db[c.name].find(flt, c.projection).sort(sort).batch_size(_BATCH)
            if limit is not None:
                cursor = cursor.limit(limit)
            try:
                for raw in cursor:
                    yield c.decode(raw)
            finally:
                cursor.close()

    def count(self, coll: str, where: Where | None = None) -> int:
        c = self._coll(coll)
        flt = self._filter(c, where)
        with self._guard(f"count of {coll}"):
            return int(self._db[coll].count_documents(flt))

    # -- transactions, meta, close --

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A documented no-op: a standalone mongod has no multi-document transactions, so
        writes made before an exception stay.  Jobs are written to be safely re-run."""
        yield

    def raise_ids(self, coll: str, floor: int) -> None:
        self._coll(coll)
        self._reserve(coll, 0)  # seeds the counter from the documents first
        with self._guard(f"id allocation for {coll}"):
            self._db[COUNTERS].update_one({"_id": coll}, {"$max": {"seq": int(floor)}}, upsert=True)

    def set_meta(self, key: str, value: Any, *, now: datetime | None = None) -> None:
        self._mark()
        c = _COLLECTIONS["meta"]
        change = self._set(c, {"value": value, "updated": now or utc_now()})
        meta = self._db["meta"]
        with self._guard("write of meta"):
            if meta.update_one({"key": c.encoders["key"](key)}, change).matched_count:
                return
        new_id = self._reserve("meta", 1)
        with self._guard("write of meta"):
            try:
                meta.insert_one({"id": new_id, "key": key, **change["$set"]})
            except DuplicateKeyError:  # another process created the key meanwhile
                meta.update_one({"key": key}, change)

    def close(self) -> None:
        if self._own_client:
            self._client.close()

    def __repr__(self) -> str:
        return f"MongoStore({self._redacted!r})"


