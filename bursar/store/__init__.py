"""Open the configured store from `BURSAR_DB_URI`.

The rest of the program only sees the `Store` protocol; which engine runs is decided here,
once, from the URI's scheme.  Messages never echo a password from the URI (`redact_uri`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from bursar.errors import SettingsError, StoreError
from bursar.store.base import Doc, Store, Where

__all__ = ["Doc", "Store", "Where", "find_store", "no_store", "open_store", "redact_uri", "store_location"]

_SETTING = "BURSAR_DB_URI"
MONEY_SETTINGS = ("auto", "double", "decimal128")  # BURSAR_MONGO_MONEY

# scheme://user:password@...  (the password runs to the last "@" before any query string)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# ?...&tlsCertificateKeyFilePassword=secret&...
_QUERY_SECRET = re.compile(r"([?&][^=&]*password[^=&]*=)[^&]*", re.IGNORECASE)


def redact_uri(uri: str) -> str:
    """The URI with any password replaced by "***", safe for messages and logs."""
    m = _SCHEME.match(uri)
    if not m:
        return _QUERY_SECRET.sub(r"\1***", uri)
    head, rest = uri[: m.end()], uri[m.end() :]
    query_at = rest.find("?")
    authority_end = len(rest) if query_at < 0 else query_at
    at = rest.rfind("@", 0, authority_end)
    if at >= 0:
        userinfo = rest[:at]
        if ":" in userinfo:
            rest = userinfo.split(":", 1)[0] + ":***" + rest[at:]
    return head + _QUERY_SECRET.sub(r"\1***", rest)


def open_store(uri: str, *, money: str = "auto", create: bool = True) -> Store:
    """Open the store the URI names.

    `sqlite:///relative/path.sqlite3` (relative to the cwd), `sqlite:////abs/path.sqlite3`,
    `mongodb://host:port/dbname` or `mongodb+srv://...`.  A malformed URI is a SettingsError
    (exit 2) naming BURSAR_DB_URI; a store that cannot be reached is a StoreError (exit 1).
    `money` is BURSAR_MONGO_MONEY (auto | double | decimal128: how MongoDB stores money; see
    bursar.store.mongo).  `create=False` opens only what exists: a missing SQLite file is a
    StoreError, and no MongoDB indexes are created.
    """
    uri = (uri or "").strip()
    if money not in MONEY_SETTINGS:
        raise SettingsError(f"BURSAR_MONGO_MONEY must be auto, double or decimal128, got {money!r}")
    lower = uri.lower()
    if lower.startswith("sqlite:"):
        path = sqlite_path(uri)
        if not create and not path.is_file():
            raise StoreError(f"the SQLite file {path.absolute()} does not exist")
        from bursar.store.sqlite import SqliteStore

        return SqliteStore(path)
    if lower.startswith("mongodb://") or lower.startswith("mongodb+srv://"):
        from bursar.store.mongo import MongoStore

        return MongoStore(uri, money=money, create=create)
    scheme = uri.split(":", 1)[0] if ":" in uri else ""
    what = f"unknown scheme '{scheme}'" if scheme else "no scheme"
    raise SettingsError(f"{_SETTING} is not usable ({what}): expected sqlite:///PATH or mongodb://HOST:PORT/DBNAME")


def find_store(uri: str, *, money: str = "auto") -> Store | None:
    """The existing pyBursar store the URI names, opened without creating anything, or None
    when there is none (no SQLite file; a MongoDB database without any of our documents)."""
    if (uri or "").strip().lower().startswith("sqlite:"):
        if not sqlite_path(uri).is_file():
            return None
        return open_store(uri, money=money, create=False)
    store = open_store(uri, money=money, create=False)
    from bursar.store.schema import ORIGINAL_COLLECTIONS

    if any(store.count(coll) for coll in (*ORIGINAL_COLLECTIONS, "meta")):
        return store
    store.close()
    return None


def store_location(uri: str) -> str:
    """Where the store is, for messages: the SQLite file's absolute path or the redacted URI."""
    if (uri or "").strip().lower().startswith("sqlite:"):
        return str(sqlite_path(uri).absolute())
    return redact_uri(uri)


def no_store(uri: str) -> SettingsError:
    return SettingsError(f"no pyBursar database at {store_location(uri)} "
                         "(check BURSAR_DB_URI and the working directory)")


def sqlite_path(uri: str) -> Path:
    """The file a sqlite:/// URI names (relative to the cwd unless absolute)."""
    uri = (uri or "").strip()
    prefix = "sqlite:///"
    if not uri.lower().startswith(prefix):
        raise SettingsError(f"{_SETTING} is malformed: a SQLite URI is sqlite:///relative/path or sqlite:////abs/path")
    raw = uri[len(prefix) :]
    if not raw or raw.endswith("/") or "?" in raw or "#" in raw or "\x00" in raw:
        raise SettingsError(f"{_SETTING} is malformed: {redact_uri(uri)!r} names no SQLite file")
    return Path(raw)


# ---- helpers both engines share -----------------------------------------------------------
# (what a stored value may be is decided in bursar.store.validate)


def uri_secrets(uri: str) -> list[str]:
    """The URI's password, raw and decoded, so tool and driver messages can be scrubbed of it."""
    try:
        userinfo = urlsplit(uri).netloc.rpartition("@")[0]
    except ValueError:
        return []
    if ":" not in userinfo:
        return []
    password = userinfo.split(":", 1)[1]
    return [s for s in {password, unquote(password)} if s]


def utc_now() -> datetime:
    """Naive UTC now, whole seconds: the stamp the store itself writes (meta.updated)."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def one_line(message: object) -> str:
    """Error text from a driver, squeezed onto one line."""
    text = " ".join(str(message).split())
    return text if len(text) <= 300 else text[:297] + "..."
