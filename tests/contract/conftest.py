"""Fixtures that run the store contract suite on every engine.

- "sqlite": a real SQLite file in tmp_path (always runs).
- "mongomock-smoke": MongoStore on a mongomock client.  An ADAPTER SMOKE TEST only: it
  checks our conversion and query-building code, but mongomock is not MongoDB.
- "mongodb": a real mongod, when BURSAR_TEST_MONGODB_URI is set (for example
  mongodb://127.0.0.1:27017/); each test gets a fresh, uniquely named database that is
  dropped afterwards.  Skipped, with the reason shown, otherwise.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from bursar.store.base import Store
from bursar.store.mongo import MongoStore
from bursar.store.overlay import OverlayStore
from bursar.store.sqlite import SqliteStore

MONGODB_URI = os.environ.get("BURSAR_TEST_MONGODB_URI", "").strip()

ENGINES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("overlay", id="overlay-on-sqlite"),  # the dry-run store: the same contract
    pytest.param("mongomock", id="mongomock-smoke"),
    pytest.param(
        "mongodb",
        id="mongodb",
        marks=pytest.mark.skipif(
            not MONGODB_URI, reason="real MongoDB not configured: set BURSAR_TEST_MONGODB_URI to run"
        ),
    ),
]


@dataclass
class Backend:
    """One engine's backing storage for a test: opens stores on it and exposes the raw
    database (Mongo variants) so tests can plant legacy documents."""

    kind: str  # "sqlite" | "mongomock" | "mongodb"
    opener: Callable[[], Store]
    raw_db: Any = None  # pymongo/mongomock Database, None for SQLite
    path: Path | None = None  # the SQLite file
    opened: list[Store] = field(default_factory=list)

    def open(self) -> Store:
        """Another store (a separate connection / client) on the same data."""
        store = self.opener()
        self.opened.append(store)
        return store

    @property
    def is_mongo(self) -> bool:
        return self.kind in ("mongomock", "mongodb")


def _with_database(uri: str, name: str) -> str:
    parts = urlsplit(uri)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@pytest.fixture(params=ENGINES)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    kind = request.param
    cleanup: list[Callable[[], None]] = []
    if kind == "sqlite":
        path = tmp_path / "data" / "store.sqlite3"
        b = Backend(kind, lambda: SqliteStore(path), path=path)
    elif kind == "overlay":
        path = tmp_path / "data" / "store.sqlite3"
        b = Backend(kind, lambda: OverlayStore(SqliteStore(path)), path=path)
    elif kind == "mongomock":
        import mongomock

        client: Any = mongomock.MongoClient()
        uri = "mongodb://mongomock.invalid/bursar_contract"
        b = Backend(kind, lambda: MongoStore(uri, client=client), raw_db=client["bursar_contract"])
    else:
        import pymongo

        name = f"bursar_test_{uuid.uuid4().hex[:12]}"
        uri = _with_database(MONGODB_URI, name)
        admin: Any = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000)
        b = Backend(kind, lambda: MongoStore(uri), raw_db=admin[name])

        def drop() -> None:
            admin.drop_database(name)
            admin.close()

        cleanup.append(drop)
    try:
        yield b
    finally:
        for store in b.opened:
            store.close()
        for step in cleanup:
            step()


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.open()


@pytest.fixture
def sqlite_only(backend: Backend) -> None:
    if backend.kind != "sqlite":
        pytest.skip("SQLite-only behaviour")


@pytest.fixture
def persistent(backend: Backend) -> None:
    if backend.kind == "overlay":
        pytest.skip("the dry-run overlay keeps its writes in memory: nothing outlives the object")


@pytest.fixture
def mongo_only(backend: Backend) -> None:
    if not backend.is_mongo:
        pytest.skip("MongoDB-only behaviour")
