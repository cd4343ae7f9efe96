"""BURSAR_DB_URI parsed once (bursar.store.target): the engine, the SQLite file or the MongoDB
database, and one-line messages that name the setting and never show the password."""

from __future__ import annotations

from pathlib import Path

import pytest

from bursar import settings
from bursar.errors import SettingsError
from bursar.store import DbTarget, db_target, parse_db_uri


def test_sqlite_paths_are_resolved_once_against_the_working_folder(tmp_path: Path) -> None:
    relative = parse_db_uri(" sqlite:///data/bursar.sqlite3 ", base=tmp_path)
    assert relative == DbTarget("sqlite", "sqlite:///data/bursar.sqlite3", path=tmp_path / "data" / "bursar.sqlite3")
    assert relative.location == str(tmp_path / "data" / "bursar.sqlite3") and relative.database is None
    absolute = parse_db_uri(f"sqlite:///{tmp_path}/b.sqlite3", base=Path("/elsewhere"))
    assert absolute.path == tmp_path / "b.sqlite3" and absolute.sqlite_file == tmp_path / "b.sqlite3"


def test_mongodb_database_is_validated_and_defaults_to_the_originals() -> None:
    named = parse_db_uri("mongodb://bursar:s3cret@h1:1,h2:2/fines_test?replicaSet=rs")
    assert (named.engine, named.database, named.path) == ("mongodb", "fines_test", None)
    assert named.location == "mongodb://bursar:***@h1:1,h2:2/fines_test?replicaSet=rs"
    assert "s3cret" not in repr(named) and named.secrets() == ["s3cret"]
    assert parse_db_uri("mongodb://h:27017").database == "almabursar"
    assert parse_db_uri("mongodb+srv://cluster.example/").database == "almabursar"
    with pytest.raises(ValueError):
        _ = named.sqlite_file


@pytest.mark.parametrize("uri, message", [
    ("postgres://u:s3cret@db/x", "is not usable (unknown scheme 'postgres')"),
    ("bursar.sqlite3", "is not usable (no scheme)"),
    ("sqlite://relative.sqlite3", "is malformed: a SQLite URI is"),
    ("sqlite:///data/", "names no SQLite file"),
    ("mongodb://u:pa/ss.word@host/almabursar", "names an invalid MongoDB database"),
    ("mongodb://host/has space", "names an invalid MongoDB database"),
    ("mongodb://u:s3cret@host/db\nx", "contains a control character"),
])
def test_unusable_uris_name_the_setting_on_one_line(uri: str, message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        parse_db_uri(uri)
    text = str(caught.value)
    assert text.startswith("BURSAR_DB_URI ") and message in text
    assert "s3cret" not in text and "ss.word" not in text and "\n" not in text
    with pytest.raises(SettingsError, match=r"^--to "):  # migrate --to: the same rules, its own name
        parse_db_uri(uri, setting="--to")


def test_a_target_passes_through_and_a_uri_is_parsed() -> None:
    target = parse_db_uri("mongodb://h/db")
    assert db_target(target) is target
    assert db_target("mongodb://h/db") == target


def test_settings_parse_the_uri_when_they_load(tmp_path: Path) -> None:
    loaded = settings.load({"BURSAR_DB_URI": "mongodb://u:pw@db.example/fines"}, cwd=tmp_path)
    assert loaded.db.engine == "mongodb" and loaded.db.database == "fines"
    assert "pw" not in repr(loaded.db)
    with pytest.raises(SettingsError, match="BURSAR_DB_URI names an invalid MongoDB database"):
        settings.load({"BURSAR_DB_URI": "mongodb://db.example/bad.name"}, cwd=tmp_path)
