"""`BURSAR_DB_URI`, parsed once: which engine, which SQLite file or MongoDB URI, which database.

Settings parse the configured URI into a `DbTarget` when they load; the store, the backups,
`status`, `doctor` and the CLI receive that value and never look at the text again.
`migrate --to URI` parses its second URI with the same function (`setting="--to"`), so both
are held to the same rules and their messages name what was given.

Every message is one line, names the setting and never shows a password (`redact_uri`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from bursar.errors import SettingsError

SETTING = "BURSAR_DB_URI"
SQLITE, MONGODB = "sqlite", "mongodb"
DEFAULT_DATABASE = "almabursar"  # the original's MongoDB database name, when the URI names none

_BAD_DB_CHARS = re.compile(r'[/\\. "$*<>:|?\x00]')
_SQLITE_PREFIX = "sqlite:///"
# scheme://user:password@...  (the password runs to the last "@" before any query string)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# ?...&tlsCertificateKeyFilePassword=secret&...
_QUERY_SECRET = re.compile(r"([?&][^=&]*password[^=&]*=)[^&]*", re.IGNORECASE)


@dataclass(frozen=True)
class DbTarget:
    """Where the store is.  SQLite: `path` (absolute).  MongoDB: `uri` (it may hold a password,
    so it is kept out of repr) and `database`, the validated database name."""

    engine: str  # SQLITE | MONGODB
    uri: str = field(repr=False)  # as configured, without surrounding spaces
    path: Path | None = None  # SQLite only
    database: str | None = None  # MongoDB only

    @property
    def sqlite_file(self) -> Path:
        """The SQLite file (a programming error to ask a MongoDB target)."""
        if self.path is None:
            raise ValueError(f"{self.engine} target has no SQLite file")
        return self.path

    @property
    def location(self) -> str:
        """Where the store is, for messages: the SQLite file or the redacted URI."""
        return str(self.path) if self.path is not None else redact_uri(self.uri)

    def secrets(self) -> list[str]:
        """The URI's password, raw and decoded (for scrubbing tool and driver messages)."""
        return uri_secrets(self.uri)


def parse_db_uri(uri: str, *, setting: str = SETTING, base: Path | None = None) -> DbTarget:
    """Parse a store URI, or raise a one-line SettingsError naming `setting`.

    `sqlite:///relative/path` (relative to `base`, by default the working directory),
    `sqlite:////abs/path`, `mongodb://host:port/dbname` or `mongodb+srv://...` (no database in
    the URI: the original's, almabursar).  What needs the server (a host that does not resolve,
    a bad port) is found when the store is opened."""
    uri = (uri or "").strip()
    lower = uri.lower()
    if lower.startswith("sqlite:"):
        return DbTarget(SQLITE, uri, path=_sqlite_file(uri, setting, base))
    if lower.startswith(("mongodb://", "mongodb+srv://")):
        if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in uri):
            raise SettingsError(f"{setting} contains a control character")
        return DbTarget(MONGODB, uri, database=mongo_database(uri, setting=setting))
    scheme = uri.split(":", 1)[0] if ":" in uri else ""
    what = f"unknown scheme '{scheme}'" if scheme else "no scheme"
    raise SettingsError(f"{setting} is not usable ({what}): expected sqlite:///PATH or mongodb://HOST:PORT/DBNAME")


def db_target(value: DbTarget | str) -> DbTarget:
    """A DbTarget as it is, or a URI parsed (for callers that hold a URI, such as tests)."""
    return value if isinstance(value, DbTarget) else parse_db_uri(value)


def _sqlite_file(uri: str, setting: str, base: Path | None) -> Path:
    if not uri.lower().startswith(_SQLITE_PREFIX):
        raise SettingsError(f"{setting} is malformed: a SQLite URI is sqlite:///relative/path or sqlite:////abs/path")
    raw = uri[len(_SQLITE_PREFIX):]
    if not raw or raw.endswith("/") or "?" in raw or "#" in raw or "\x00" in raw:
        raise SettingsError(f"{setting} is malformed: {redact_uri(uri)!r} names no SQLite file")
    path = Path(raw)
    return path if path.is_absolute() else (base or Path.cwd()) / path


def mongo_database(uri: str, *, setting: str = SETTING) -> str:
    """The database a MongoDB URI names (its path), validated; the original's when it names none."""
    try:
        path = urlsplit(uri).path
    except ValueError as e:
        raise SettingsError(f"{setting} is malformed ({' '.join(str(e).split())})") from None
    name = unquote(path.lstrip("/"))
    if not name:
        return DEFAULT_DATABASE
    if _BAD_DB_CHARS.search(name) or len(name) > 63:
        # the name is not echoed: with an unescaped "/" in a password it could be part of it
        raise SettingsError(
            f'{setting} names an invalid MongoDB database (at most 63 characters, none of / \\ . space " $)'
        )
    return name


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
