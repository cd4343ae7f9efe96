"""Open the configured store, a `DbTarget` (BURSAR_DB_URI parsed once by the settings).

The rest of the program only sees the `Store` protocol; which engine runs is decided here,
once, from the target's engine.  Messages never echo a password from the URI (`redact_uri`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from bursar.errors import SettingsError, StoreError
from bursar.store.base import Doc, Store, Where
from bursar.store.schema import INT, STR
from bursar.store.target import DbTarget, db_target, parse_db_uri, redact_uri, uri_secrets

__all__ = ["DbTarget", "Doc", "Store", "Where", "db_target", "find_store", "no_store", "open_store",
           "parse_db_uri", "redact_uri", "store_location", "uri_secrets"]

MONEY_SETTINGS = ("auto", "double", "decimal128")  # BURSAR_MONGO_MONEY


def open_store(target: DbTarget | str, *, money: str = "auto", create: bool = True) -> Store:
    """Open the store the target names (a URI is parsed first: `parse_db_uri`).

    A malformed URI is a SettingsError (exit 2) naming BURSAR_DB_URI; a store that cannot be
    reached is a StoreError (exit 1).  `money` is BURSAR_MONGO_MONEY (auto | double |
    decimal128: how MongoDB stores money; see bursar.store.mongo).  `create=False` opens only
    what exists: a missing SQLite file is a StoreError, and no MongoDB indexes are created.
    """
    if money not in MONEY_SETTINGS:
        raise SettingsError(f"BURSAR_MONGO_MONEY must be auto, double or decimal128, got {money!r}")
    target = db_target(target)
    if target.path is not None:
        if not create and not target.path.is_file():
            raise StoreError(f"the SQLite file {target.path} does not exist")
        from bursar.store.sqlite import SqliteStore

        return SqliteStore(target.path)
    from bursar.store.mongo import MongoStore

    return MongoStore(target.uri, money=money, create=create)


def find_store(target: DbTarget | str, *, money: str = "auto") -> Store | None:
    """The existing pyBursar store the target names, opened without creating anything, or None
    when there is none (no SQLite file; a MongoDB database without any of our documents)."""
    target = db_target(target)
    if target.path is not None:
        if not target.path.is_file():
            return None
        return open_store(target, money=money, create=False)
    store = open_store(target, money=money, create=False)
    from bursar.store.schema import ORIGINAL_COLLECTIONS

    if any(store.count(coll) for coll in (*ORIGINAL_COLLECTIONS, "meta")):
        return store
    store.close()
    return None


def store_location(target: DbTarget | str) -> str:
    """Where the store is, for messages: the SQLite file's absolute path or the redacted URI."""
    return db_target(target).location


def no_store(target: DbTarget | str) -> SettingsError:
    return SettingsError(f"no pyBursar database at {store_location(target)} "
                         "(check BURSAR_DB_URI and the working directory)")


# ---- value rules shared by both engines ---------------------------------------------------
# Both engines check values the same way, so a document that one engine accepts the other
# accepts too, and a typo or a float fails loudly at the store instead of corrupting data.

CENT = Decimal("0.01")


def checked_plain(name: str, kind: str) -> Callable[[Any], Any] | None:
    """The type check both engines share for STR and INT fields (stored as they are): the value
    itself, or a StoreError naming the field.  None for the kinds each engine converts itself."""
    if kind == STR:

        def check_str(v: Any) -> Any:
            if v is None or isinstance(v, str):
                return v
            raise StoreError(f"{name}: expected str, got {type(v).__name__}")

        return check_str
    if kind == INT:

        def check_int(v: Any) -> Any:
            if v is None or (isinstance(v, int) and not isinstance(v, bool)):
                return v
            raise StoreError(f"{name}: expected int, got {type(v).__name__}")

        return check_int
    return None


def unknown_field(coll: str, field: object) -> StoreError:
    return StoreError(f"unknown field '{field}' in collection '{coll}'")


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


def utc_now() -> datetime:
    """Naive UTC now, whole seconds: the stamp the store itself writes (meta.updated)."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def one_line(message: object) -> str:
    """Error text from a driver, squeezed onto one line."""
    text = " ".join(str(message).split())
    return text if len(text) <= 300 else text[:297] + "..."
