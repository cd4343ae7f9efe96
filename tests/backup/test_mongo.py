"""MongoDB backups run the real mongodump/mongorestore programs found on PATH.

No MongoDB Database Tools are needed here: each test builds a PATH of its own, either empty
(the tools are not installed) or holding small stand-in executables that behave like the
tools at their interface (arguments, the --config file, the archive file, exit status, stderr).
Each stand-in records its argv, its whole environment and the --config file it was given, so
the tests can prove the password is on neither the command line nor in the environment.
"""

from __future__ import annotations

import gzip
import json
import stat
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from bursar.backup import SAFETY_DIR, BackupError, create_backup, list_backups, restore_backup, validate_backup
from bursar.errors import SettingsError
from tests.backup.conftest import NOW, files_in

URI = "mongodb://bursar:s3cr%40t@127.0.0.1:27017/almabursar_test?authSource=admin"
PASSWORDS = ("s3cr%40t", "s3cr@t")  # the password as it is in the URI, and decoded
MAGIC = bytes.fromhex("6de29981")

# A stand-in for mongodump / mongorestore: logs its argv, environment and --config file, then
# does what FAKE_MODE says.
TOOL = """#!PYTHON
import gzip, json, os, stat, sys
tool = os.path.basename(sys.argv[0])
config = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--config=")), None)
record = {"argv": [tool] + sys.argv[1:], "env": dict(os.environ), "config": None}
if config:
    with open(config) as f:
        record["config"] = {"text": f.read(), "mode": stat.S_IMODE(os.stat(config).st_mode),
                            "dir_mode": stat.S_IMODE(os.stat(os.path.dirname(config)).st_mode),
                            "path": config}
with open(os.environ["FAKE_TOOL_LOG"], "a") as log:
    log.write(json.dumps(record) + "\\n")
mode = os.environ.get("FAKE_MODE", "ok")
if mode == "fail":
    sys.stderr.write("2024-03-04T15:30:00 connecting to mongodb://bursar:s3cr@t@127.0.0.1\\n")
    sys.stderr.write("Failed: can't create session: auth error for bursar:s3cr@t\\n")
    sys.exit(1)
args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if "=" in a)
if tool == "mongodump":
    with gzip.open(args["archive"], "wb") as f:
        f.write(bytes.fromhex("6de29981") + b"archive body " * 100)
else:
    sys.stderr.write("42 document(s) restored successfully. {failed} document(s) failed to restore.\\n")
"""


def tool_script(*, failed: int) -> str:
    return TOOL.replace("PYTHON", sys.executable, 1).replace("{failed}", str(failed))


@pytest.fixture
def tools(tmp_path, monkeypatch) -> Path:
    """A PATH holding only stand-in mongodump and mongorestore; returns the argument log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("mongodump", "mongorestore"):
        exe = bin_dir / name
        exe.write_text(tool_script(failed=0))
        exe.chmod(0o755)
    log = tmp_path / "tools.log"
    log.touch()
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("FAKE_TOOL_LOG", str(log))
    return log


def records(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def calls(log: Path) -> list[list[str]]:
    return [record["argv"] for record in records(log)]


def assert_uri_only_in_the_config_file(record: dict) -> None:
    """The password is in no argument and no environment variable; the URI is in the --config
    file, which was 0600 in a 0700 folder while the tool ran and is gone afterwards."""
    for password in PASSWORDS:
        assert not any(password in arg for arg in record["argv"]), record["argv"]
        assert not any(password in value for value in record["env"].values())
    assert not any(arg.startswith("--uri") for arg in record["argv"])
    config = record["config"]
    assert config is not None, "no --config file given"
    assert config["text"] == f"uri: '{URI}'\n"
    assert config["mode"] == 0o600 and config["dir_mode"] == 0o700
    assert not Path(config["path"]).exists() and not Path(config["path"]).parent.exists()


def test_mongodump_missing_is_a_clear_error(tmp_path, monkeypatch, backups_dir):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(BackupError, match=r"mongodump is not installed \(install MongoDB Database Tools"):
        create_backup(URI, backups_dir, now=NOW, keep=5)
    assert files_in(backups_dir) == []
    with pytest.raises(BackupError, match="mongodump is not installed"):
        create_backup(URI, backups_dir, now=NOW, keep=5, dry_run=True)


def test_mongodump_failure_is_reported_with_the_password_redacted(tools, monkeypatch, backups_dir):
    monkeypatch.setenv("FAKE_MODE", "fail")
    with pytest.raises(BackupError) as caught:
        create_backup(URI, backups_dir, now=NOW, keep=5)
    message = str(caught.value)
    assert "mongodump failed with exit status 1" in message and "auth error" in message
    assert "s3cr" not in message and "\n" not in message
    assert files_in(backups_dir) == []


def test_backup_uses_the_configured_uri_and_checks_the_archive(tools, backups_dir):
    backup, key = create_backup(URI, backups_dir, now=NOW, keep=5)
    assert key is None
    assert backup.name == "pybursar-mongodb-20240304T153000Z.archive.gz" and backup.engine == "mongodb"
    assert stat.S_IMODE(backup.path.stat().st_mode) == 0o600
    assert files_in(backups_dir) == [backup.name]
    (record,) = records(tools)
    call = record["argv"]
    assert call[0] == "mongodump" and "--gzip" in call
    assert_uri_only_in_the_config_file(record)
    validate_backup(backup.path, "mongodb")


def test_the_password_is_on_no_command_line_and_in_no_environment(tools, monkeypatch, backups_dir):
    """Even with the URI in the process environment (BURSAR_DB_URI, or another variable that
    holds it), neither mongodump nor mongorestore sees the password anywhere but in its 0600
    --config file; a failing tool leaves no config file behind either."""
    monkeypatch.setenv("BURSAR_DB_URI", URI)
    monkeypatch.setenv("SITE_MONGO_URL", URI)
    monkeypatch.setenv("UNRELATED_SETTING", "kept")
    backup, _ = create_backup(URI, backups_dir, now=NOW, keep=5)
    restore_backup(URI, backup, backups_dir, now=NOW)
    monkeypatch.setenv("FAKE_MODE", "fail")
    with pytest.raises(BackupError):
        create_backup(URI, backups_dir, now=NOW, keep=5)
    dump, safety_dump, restore, failed = records(tools)
    assert [r["argv"][0] for r in (dump, safety_dump, restore, failed)] == [
        "mongodump", "mongodump", "mongorestore", "mongodump"]
    for record in (dump, safety_dump, restore, failed):
        assert_uri_only_in_the_config_file(record)
        assert record["env"]["UNRELATED_SETTING"] == "kept"
        assert "BURSAR_DB_URI" not in record["env"] and "SITE_MONGO_URL" not in record["env"]


def test_restore_saves_the_current_state_then_runs_mongorestore(tools, backups_dir):
    backup, _ = create_backup(URI, backups_dir, now=NOW, keep=5)
    (chosen,) = list_backups(backups_dir)
    safety = restore_backup(URI, chosen, backups_dir, now=NOW)
    assert safety.path.parent == backups_dir / SAFETY_DIR
    dump, safety_dump, restore = calls(tools)
    assert safety_dump[0] == "mongodump"
    assert restore[0] == "mongorestore"
    assert f"--archive={backup.path}" in restore
    assert {"--gzip", "--drop", "--nsInclude=almabursar_test.*"} <= set(restore)
    assert all(password not in arg for arg in restore for password in PASSWORDS)


def test_mongorestore_reporting_failed_documents_fails_the_restore(tools, tmp_path, backups_dir):
    restore_tool = tmp_path / "bin" / "mongorestore"
    restore_tool.write_text(tool_script(failed=3))
    backup, _ = create_backup(URI, backups_dir, now=NOW, keep=5)
    with pytest.raises(BackupError, match="could not restore 3 document"):
        restore_backup(URI, backup, backups_dir, now=NOW)


@pytest.mark.parametrize("payload", [b"", b"\x1f\x8b garbage", "truncated", "not-an-archive"])
def test_bad_mongo_archive_is_refused_before_anything_runs(payload, tools, backups_dir):
    backup, _ = create_backup(URI, backups_dir, now=NOW, keep=5)
    good = backup.path.read_bytes()
    if payload == "truncated":
        payload = good[: len(good) - 10]
    elif payload == "not-an-archive":
        payload = gzip.compress(b"{not: a dump}")
    backup.path.write_bytes(payload)
    before = calls(tools)
    with pytest.raises(BackupError, match=backup.name):
        restore_backup(URI, backup, backups_dir, now=NOW)
    assert calls(tools) == before  # no safety dump, no mongorestore
    assert not (backups_dir / SAFETY_DIR).exists()


def test_the_database_a_restore_names_is_the_validated_one(tools, backups_dir):
    """The backups use the database name BURSAR_DB_URI was parsed into once: the original's
    (almabursar) when the URI names none, and a name MongoDB would refuse stops the backup
    before any tool runs (the backup code once fell back to a default where the store refused)."""
    default = URI.replace("/almabursar_test?", "/?")
    backup, _ = create_backup(default, backups_dir, now=NOW, keep=5)
    restore_backup(default, backup, backups_dir, now=NOW)
    assert "--nsInclude=almabursar.*" in calls(tools)[-1]
    before = calls(tools)
    for bad in (URI.replace("/almabursar_test?", "/bad.name?"), URI.replace("/almabursar_test?", "/x\ty?")):
        with pytest.raises(SettingsError, match="BURSAR_DB_URI") as caught:
            create_backup(bad, backups_dir, now=NOW + timedelta(hours=1), keep=5)
        assert all(p not in str(caught.value) for p in PASSWORDS)
    assert calls(tools) == before
