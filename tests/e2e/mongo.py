"""The MongoDB engines the in-process end-to-end tests run on (an `abs.py` subprocess cannot
reach mongomock): mongomock, an ADAPTER SMOKE TEST, always; a real mongod when
BURSAR_TEST_MONGODB_URI is set, on a fresh database dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import mongomock
import pytest

ENGINES = [
    pytest.param("mongomock", id="mongomock-smoke"),
    pytest.param("mongod", id="mongodb", marks=pytest.mark.skipif(
        not os.environ.get("BURSAR_TEST_MONGODB_URI"), reason="BURSAR_TEST_MONGODB_URI is not set (no mongod here)")),
]


@contextmanager
def mongo_target(engine: str) -> Iterator[tuple[str, Any]]:
    """(URI, client) of a database for one test on `engine`."""
    if engine == "mongomock":
        client: Any = mongomock.MongoClient()
        uri = "mongodb://localhost:27017/almabursar"
    else:
        import pymongo

        uri = os.environ["BURSAR_TEST_MONGODB_URI"].rsplit("/", 1)[0] + f"/bursar_test_{uuid.uuid4().hex[:8]}"
        client = pymongo.MongoClient(uri)
    try:
        yield uri, client
    finally:
        if engine == "mongod":
            client.drop_database(uri.rsplit("/", 1)[1])
        client.close()
