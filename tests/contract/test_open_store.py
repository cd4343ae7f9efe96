"""open_store(BURSAR_DB_URI) and redact_uri: choosing the engine, and never leaking a password."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from bursar.errors import SettingsError, StoreError
from bursar.store import open_store, redact_uri
from bursar.store.mongo import MongoStore
from bursar.store.sqlite import SqliteStore
from tests.endpoints import free_port


def test_relative_sqlite_uri_is_relative_to_the_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///data/bursar.sqlite3")
    try:
        assert isinstance(store, SqliteStore) and store.engine == "sqlite"
        assert store.path == tmp_path / "data" / "bursar.sqlite3"
        assert store.path.is_absolute() and store.path.is_file()
        assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700 & ~_umask()
        assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    finally:
        store.close()


def test_absolute_sqlite_uri(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "er" / "b.sqlite3"
    store = open_store(f"sqlite:///{target}")  # sqlite:////abs/path
    try:
        assert store.path == target  # type: ignore[attr-defined]
        store.insert("jobs", {"type": "Backup"})
    finally:
        store.close()
    assert target.is_file()


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "bursar.sqlite3",
        "postgres://bursar:s3cret@db/bursar",
        "sqlite://relative.sqlite3",
        "sqlite:///",
        "sqlite:///data/",
        "sqlite:///x.sqlite3?mode=ro",
        "mysql://u:s3cret@h/db",
    ],
)
def test_unusable_uris_are_settings_errors_naming_the_setting(uri: str) -> None:
    with pytest.raises(SettingsError, match="BURSAR_DB_URI") as caught:
        open_store(uri)
    assert "s3cret" not in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "uri",
    [
        "mongodb://bursar:s3cret@/almabursar",
        "mongodb://bursar:s3c@ret@host/almabursar",
        "mongodb://host:notaport/almabursar",
        "mongodb://host/bad.name",
        "mongodb://host/has space",
    ],
)
def test_malformed_mongodb_uris_are_settings_errors_without_the_password(uri: str) -> None:
    with pytest.raises(SettingsError, match="BURSAR_DB_URI") as caught:
        open_store(uri)
    assert "s3c" not in str(caught.value)


def test_unreachable_mongodb_is_a_store_error_with_the_uri_redacted() -> None:
    port = free_port()
    uri = f"mongodb://bursar:s3cret@127.0.0.1:{port}/almabursar?serverSelectionTimeoutMS=300&connectTimeoutMS=300"
    with pytest.raises(StoreError) as caught:
        open_store(uri)
    message = str(caught.value)
    assert "s3cret" not in message and "bursar:***@" in message
    assert "\n" not in message


def test_mongo_database_name_defaults_to_the_originals() -> None:
    import mongomock

    client: Any = mongomock.MongoClient()
    assert MongoStore("mongodb://h:27017", client=client).database == "almabursar"
    assert MongoStore("mongodb://h:27017/", client=client).database == "almabursar"
    store = MongoStore("mongodb://u:p@h1:1,h2:2/fines_test?replicaSet=rs", client=client)
    assert store.database == "fines_test" and store.engine == "mongodb"
    store.insert("jobs", {"type": "AlmaImport"})
    assert client["fines_test"]["jobs"].count_documents({}) == 1
    assert "p@" not in repr(store)


@pytest.mark.parametrize(
    "uri, expected",
    [
        ("mongodb://bursar:s3cret@db.example:27017/almabursar", "mongodb://bursar:***@db.example:27017/almabursar"),
        (
            "mongodb+srv://u:p%40ss@cluster.example/db?retryWrites=true",
            "mongodb+srv://u:***@cluster.example/db?retryWrites=true",
        ),
        ("mongodb://u:pa/ss@h1:1,h2:2/db", "mongodb://u:***@h1:1,h2:2/db"),
        ("mongodb://u@h/db", "mongodb://u@h/db"),
        ("mongodb://h/db?tlsCertificateKeyFilePassword=zz&x=1", "mongodb://h/db?tlsCertificateKeyFilePassword=***&x=1"),
        ("sqlite:////var/lib/bursar.sqlite3", "sqlite:////var/lib/bursar.sqlite3"),
        ("sqlite:///data/bursar.sqlite3", "sqlite:///data/bursar.sqlite3"),
    ],
)
def test_redact_uri(uri: str, expected: str) -> None:
    assert redact_uri(uri) == expected


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def test_a_bad_database_name_message_does_not_echo_the_uri() -> None:
    with pytest.raises(SettingsError, match="database") as caught:
        open_store("mongodb://bursar:pa/ss.word@host/almabursar")
    assert "ss.word" not in str(caught.value)
