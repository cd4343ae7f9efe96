"""Open the configured store, a `DbTarget` (BURSAR_DB_URI parsed once by the settings).

The rest of the program only sees the `Store` protocol; which engine runs is decided here,
once, from the target's engine.  Messages never echo a password from the URI (`redact_uri`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from bursar.errors import SettingsError, StoreError
from bursar.store.base import Doc, Store, Where
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




def utc_now() -> datetime:
    """Naive UTC now, whole seconds: the stamp the store itself writes (meta.updated)."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def one_line(message: object) -> str:
    """Error text from a driver, squeezed onto one line."""
    text = " ".join(str(message).split())
    return text if len(text) <= 300 else text[:297] + "..."
