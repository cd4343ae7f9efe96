"""The checks every store applies, in one place: collections, fields, ids, limits and values.

The engines encode values their own way (integer cents, Decimal128, ISO text); what a value
may be is decided here, so a document that one store accepts every store accepts, the dry-run
overlay included: a dry run can never pass where the real run would fail.  A typo or a float
fails loudly at the store instead of corrupting data.

Each engine builds its per-field encoders with `encoder` (this module's check, then the
engine's conversion of the checked value), names its fields through `check_names`, and
inherits the method rules all stores share from `CheckedStore`; `keyset_batches` is the
batch loop of every `find` that reads in keyset-paginated batches.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from bursar.errors import StoreError
from bursar.store.base import Doc, Where
from bursar.store.schema import BOOL, COLLECTIONS, DATETIME, INT, JSON, MONEY, STR

CENT = Decimal("0.01")
BATCH = 1000  # rows per batch of a keyset-paginated find
NEW_ID = "a new document must not carry an id (the store assigns it)"
FIXED_ID = "the id of a document cannot be changed"
_LISTS = (list, tuple, set, frozenset)

Check = Callable[[Any], Any]
T = TypeVar("T")


# ---- names ----------------------------------------------------------------------------------


def lookup(prepared: Mapping[str, T], coll: str) -> T:
    """What an engine prepared for the collection; an unknown collection is a StoreError."""
    found = prepared.get(coll)
    if found is None:
        raise StoreError(f"unknown collection '{coll}'")
    return found


def fields(coll: str) -> dict[str, str]:
    """The collection's fields and kinds; an unknown collection is a StoreError."""
    return lookup(COLLECTIONS, coll)


def unknown_field(coll: str, field: object) -> StoreError:
    return StoreError(f"unknown field '{field}' in collection '{coll}'")


def check_names(coll: str, names: Iterable[str], *, id_error: str | None = None) -> None:
    """Every name is a field of the collection.  `id` is allowed (filters, orders), or refused
    with `id_error` when one is given (a new document, a change of fields)."""
    known = fields(coll)
    for f in names:
        if f == "id":
            if id_error is not None:
                raise StoreError(f"{coll}: {id_error}")
        elif f not in known:
            raise unknown_field(coll, f)


def checked_order(coll: str, order_by: str) -> None:
    check_names(coll, (order_by,))


def checked_limit(coll: str, limit: int | None) -> None:
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise StoreError(f"find on {coll}: limit must be a non-negative int, got {limit!r}")


def put_id(coll: str, doc: Doc) -> int:
    """The id a document given to `put` carries: a positive int."""
    new_id = doc.get("id")
    if not isinstance(new_id, int) or isinstance(new_id, bool) or new_id < 1:
        raise StoreError(f"{coll}: put needs the document's id (a positive int), got {new_id!r}")
    return new_id


def missing(coll: str, id: object) -> StoreError:
    return StoreError(f"{coll} has no document with id {id}")


def taken(coll: str, id: object) -> StoreError:
    return StoreError(f"{coll} already has a document with id {id}")


# ---- values ---------------------------------------------------------------------------------


def money_value(value: Any, name: str) -> Decimal:
    """Money as a Decimal with exactly two places.  Anything that is not whole cents is
    refused rather than rounded: rounding belongs to the money rules, not to storage."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise StoreError(f"{name}: {value} is not a storable amount of money")
        try:
            cents = value.quantize(CENT)
        except InvalidOperation:
            raise StoreError(f"{name}: {value} is not a storable amount of money") from None
        if cents != value:
            raise StoreError(f"{name}: {value} is not a whole number of cents")
        return cents
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value).quantize(CENT)
    raise StoreError(f"{name}: money must be a Decimal, got {type(value).__name__}")


def datetime_value(value: Any, name: str) -> datetime:
    """A naive datetime (the schema says which zone each field is in)."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            raise StoreError(f"{name}: datetimes are stored naive, got one with a time zone")
        return value
    raise StoreError(f"{name}: expected a datetime, got {type(value).__name__}")


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)  # exact; a float would not be
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def json_text(value: Any, name: str) -> str:
    """JSON text for a JSON field; Decimals are written as strings (they read back as str)."""
    try:
        return json.dumps(value, default=_json_default, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as e:
        raise StoreError(f"{name}: not a JSON value ({e})") from None


def _of_type(name: str, expected: str, types: type, *, no_bool: bool = False) -> Check:
    def check(v: Any) -> Any:
        if v is None or (isinstance(v, types) and not (no_bool and isinstance(v, bool))):
            return v
        raise StoreError(f"{name}: expected {expected}, got {type(v).__name__}")

    return check


def value_check(coll: str, field: str, kind: str) -> Check:
    """The value as stored (money with two places, JSON as it reads back), or a StoreError
    naming the field.  None passes: an unset field."""
    name = f"{coll}.{field}"
    if kind == STR:
        return _of_type(name, "str", str)
    if kind == INT:
        return _of_type(name, "int", int, no_bool=True)  # a bool is an int to Python, never to us
    if kind == BOOL:
        return _of_type(name, "bool", bool)
    if kind == MONEY:
        return lambda v: None if v is None else money_value(v, name)
    if kind == DATETIME:
        return lambda v: None if v is None else datetime_value(v, name)
    if kind == JSON:
        # through JSON text, as the engines store it: a Decimal reads back as its string
        return lambda v: None if v is None else json.loads(json_text(v, name))
    raise StoreError(f"{name}: unknown field type {kind!r}")  # pragma: no cover - schema uses the above


_KINDS: dict[tuple[str, str], str] = {
    (coll, f): kind for coll, fs in COLLECTIONS.items() for f, kind in {"id": INT, **fs}.items()
}
_CHECKS: dict[tuple[str, str], Check] = {key: value_check(*key, kind) for key, kind in _KINDS.items()}


def encoder(coll: str, field: str, convert: Check | None = None) -> Check:
    """One field's encoder for an engine: this module's check, then `convert` (the engine's
    form of the checked value; None passes through without it)."""
    if convert is None:
        return _CHECKS[(coll, field)]
    name, kind = f"{coll}.{field}", _KINDS[(coll, field)]
    if kind == MONEY:  # the checks of the common kinds called directly: one call fewer a value
        return lambda v: None if v is None else convert(money_value(v, name))
    if kind == DATETIME:
        return _memo_datetime(name, convert)
    check = _CHECKS[(coll, field)]
    return lambda v: None if v is None else convert(check(v))


def _memo_datetime(name: str, convert: Check) -> Check:
    """A datetime field's encoder that remembers its last value: a run stamps thousands of
    documents with the same time, and converting (isoformat) is the slow part.  A value equal to
    the last one, and of the same type, was checked then (an aware datetime never equals a naive
    one)."""
    last: list[Any] = [None, None]

    def encode(v: Any) -> Any:
        if v is None:
            return None
        if type(v) is datetime and v == last[0]:
            return last[1]
        out = convert(datetime_value(v, name))
        last[0], last[1] = v, out
        return out

    return encode


def checked(coll: str, doc: Doc, *, id_error: str) -> Doc:
    """The document's fields, checked and normalised; `id` is refused (`id_error` says why)."""
    check_names(coll, doc, id_error=id_error)
    return {f: _CHECKS[(coll, f)](v) for f, v in doc.items()}


def complete(coll: str, id: int, doc: Doc) -> Doc:
    """A stored document as every engine returns it: every schema field, None when unset."""
    return {"id": id, **{f: doc.get(f) for f in fields(coll)}}


def checked_where(coll: str, where: Where | None) -> Where:
    """The filter with its values checked and normalised (each one of a list too)."""
    check_names(coll, where or {})
    out: Where = {}
    for f, v in (where or {}).items():
        check = _CHECKS[(coll, f)]
        out[f] = type(v)(check(x) for x in v) if isinstance(v, _LISTS) else check(v)
    return out


# ---- the method rules every store shares ----------------------------------------------------


def keyset_batches(fetch: Callable[[T | None, int], list[T]], limit: int | None) -> Iterator[T]:
    """Rows read in batches, each a complete query that starts after the last row seen
    (`fetch(last row or None, size)`), so a caller may change what it iterates over and memory
    stays bounded; at most `limit` rows."""
    remaining = limit
    last: T | None = None
    while remaining is None or remaining > 0:
        size = BATCH if remaining is None else min(BATCH, remaining)
        rows = fetch(last, size)
        yield from rows
        if len(rows) < size:
            return
        if remaining is not None:
            remaining -= len(rows)
        last = rows[-1]


class CheckedStore(ABC):
    """The rules of the Store protocol that do not depend on the engine: an empty update still
    needs the document, an empty update_where counts, meta values are read the same way."""

    @abstractmethod
    def get(self, coll: str, id: int) -> Doc | None: ...

    @abstractmethod
    def count(self, coll: str, where: Where | None = None) -> int: ...

    @abstractmethod
    def find_one(self, coll: str, where: Where, *, order_by: str = "id", descending: bool = False) -> Doc | None: ...

    @abstractmethod
    def _update_one(self, coll: str, id: int, fields: Doc) -> bool:
        """Set the (non-empty) fields on the document; whether it exists."""

    @abstractmethod
    def _update_many(self, coll: str, where: Where, fields: Doc) -> int:
        """Set the (non-empty) fields on every matching document; how many matched."""

    def update(self, coll: str, id: int, fields: Doc) -> None:
        if not fields:
            if self.get(coll, id) is None:
                raise missing(coll, id)
            return
        if not self._update_one(coll, id, fields):
            raise missing(coll, id)

    def update_where(self, coll: str, where: Where, fields: Doc) -> int:
        if not fields:
            return self.count(coll, where)
        return self._update_many(coll, where, fields)

    def get_meta(self, key: str) -> Any:
        doc = self.find_one("meta", {"key": key})
        return None if doc is None else doc["value"]
