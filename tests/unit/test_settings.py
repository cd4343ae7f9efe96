"""Settings: defaults, .env handling, validation messages that name the setting, redaction."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest

from bursar import settings as s
from bursar.errors import SettingsError

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_are_the_specs(tmp_path):
    st = s.load({}, cwd=tmp_path)
    assert st.db.uri == "sqlite:///data/bursar.sqlite3"
    assert st.db.engine == "sqlite" and st.db.path == tmp_path / "data" / "bursar.sqlite3"
    assert st.alma_api_url == "https://api-na.hosted.exlibrisgroup.com"
    assert st.payments_file_prefix == "ASUSASF_LIBRARY_REPORT_DTRANGE"
    accounts = (st.account_law, st.account_replacement, st.account_default)
    assert accounts == ("531000000005", "531000000001", "531000000002")
    assert st.law_pattern == "(^law)|(_lw_)" and st.due_day == 25 and st.file_prefix == "LIB_charges.dat"
    assert st.payment_method == "ONLINE" and st.import_since == datetime(2017, 1, 1)
    assert st.exports_dir == tmp_path / "exports" and st.bursar_sftp.port == 22


def test_env_wins_over_dotenv_which_fills_the_rest(tmp_path):
    (tmp_path / ".env").write_text("EXPORTS_DIR=from-file\nBURSAR_DUE_DAY=20\n")
    st = s.load({"EXPORTS_DIR": "/abs/from-env"}, cwd=tmp_path)
    assert st.exports_dir == Path("/abs/from-env")
    assert st.due_day == 20


def test_bursar_env_file_names_another_file(tmp_path):
    other = tmp_path / "site.env"
    other.write_text("BURSAR_FILE_PREFIX=OTHER.dat\n")
    assert s.load({"BURSAR_ENV_FILE": str(other)}, cwd=tmp_path).file_prefix == "OTHER.dat"
    with pytest.raises(SettingsError, match="BURSAR_ENV_FILE"):
        s.load({"BURSAR_ENV_FILE": str(tmp_path / "missing.env")}, cwd=tmp_path)


@pytest.mark.parametrize("name, value", [
    ("BURSAR_DUE_DAY", "31"), ("BURSAR_DUE_DAY", "x"), ("BURSAR_SFTP_PORT", "0"),
    ("ALMA_IMPORT_SINCE", "yesterday"), ("BURSAR_TIMEZONE", "Mars/Olympus"),
    ("BURSAR_ACCOUNT_LAW", "12345678901234"), ("BURSAR_LAW_LOCATION_PATTERN", "(unclosed"),
    ("ALMA_API_URL", "ftp://example"), ("BURSAR_SFTP_DIR", "relative/dir"), ("BURSAR_NOW", "soon"),
])
def test_malformed_setting_is_named(tmp_path, name, value):
    with pytest.raises(SettingsError, match=name):
        s.load({name: value}, cwd=tmp_path)


def test_require_names_the_missing_setting(tmp_path):
    st = s.load({}, cwd=tmp_path)
    with pytest.raises(SettingsError, match="ALMA_API_KEY is not set"):
        st.require("ALMA_API_KEY", "importAlmaFines")


def test_secrets_are_redacted_and_never_in_repr(tmp_path):
    st = s.load({"ALMA_API_KEY": "l8xxSECRETKEY", "BURSAR_SFTP_PASSWORD": "hunter2pw"}, cwd=tmp_path)
    assert st.redacted()["ALMA_API_KEY"] == "***"
    assert "l8xxSECRETKEY" not in repr(st) and "hunter2pw" not in repr(st)
    assert set(st.secret_values()) == {"l8xxSECRETKEY", "hunter2pw"}


def test_fixed_clock_is_in_the_institution_zone(tmp_path):
    st = s.load({"BURSAR_NOW": "2021-09-20T14:03:11", "BURSAR_TIMEZONE": "America/Phoenix"}, cwd=tmp_path)
    assert st.now().isoformat() == "2021-09-20T14:03:11-07:00"
    assert st.today().isoformat() == "2021-09-20"


def test_env_example_documents_every_setting():
    text = (ROOT / ".env.example").read_text()
    named = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", text, flags=re.M))
    assert named == {setting.name for setting in s.SETTINGS}
