"""Fixtures for the backup tests: real SQLite stores with real rows, a real S3 endpoint
(moto's server mode on 127.0.0.1, an ephemeral port) and a fixed clock."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from bursar.clients.s3 import S3Target
from bursar.store import open_store
from tests.endpoints import dead_url

NOW = datetime(2024, 3, 4, 15, 30, 0, tzinfo=UTC)


def add_patron(uri: str, patron_id: str, balance: str) -> int:
    """Insert one patron through the real store and close it (no connection left open)."""
    store = open_store(uri)
    try:
        return store.insert(
            "patrons",
            {"almaPatronId": patron_id, "balance": Decimal(balance), "created": datetime(2024, 1, 1, 9, 0)},
        )
    finally:
        store.close()


def set_balance(uri: str, patron_pk: int, balance: str) -> None:
    store = open_store(uri)
    try:
        store.update("patrons", patron_pk, {"balance": Decimal(balance)})
    finally:
        store.close()


def patrons(uri: str) -> list[tuple[str, Decimal]]:
    """The patrons table as (almaPatronId, balance), in id order."""
    store = open_store(uri)
    try:
        return [(d["almaPatronId"], d["balance"]) for d in store.find("patrons")]
    finally:
        store.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "bursar.sqlite3"


@pytest.fixture
def db_uri(db_path: Path) -> str:
    """A real SQLite store holding two patrons."""
    uri = f"sqlite:///{db_path}"
    add_patron(uri, "P1", "12.50")
    add_patron(uri, "P2", "0.99")
    return uri


@pytest.fixture
def backups_dir(tmp_path: Path) -> Path:
    return tmp_path / "backups"


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """A real S3 HTTP endpoint (moto server mode) on 127.0.0.1, stopped after the module.
    Shared by a module's tests (stopping takes half a second); each test gets its own bucket."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        yield endpoint
    finally:
        try:
            requests.post(f"{endpoint}/moto-api/reset", timeout=5)  # moto's state is process-wide
        finally:
            server.stop()


def s3_client(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint)


@pytest.fixture
def s3(moto_endpoint: str) -> S3Target:
    """An existing, empty bucket on the moto endpoint, with a key prefix."""
    bucket = f"bursar-{uuid.uuid4().hex[:12]}"
    s3_client(moto_endpoint).create_bucket(Bucket=bucket)
    return S3Target(bucket=bucket, prefix="site/backups", endpoint_url=moto_endpoint)


@pytest.fixture
def dead_endpoint() -> str:
    """An http endpoint on 127.0.0.1 where nothing listens (a stopped server)."""
    return dead_url()


def files_in(folder: Path) -> list[str]:
    """Every file name directly in `folder` (hidden temporaries included), sorted."""
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_file())
