"""MongoDB backups run the real mongodump/mongorestore programs found on PATH.

No MongoDB Database Tools are needed here: each test builds a PATH of its own, either empty
(the tools are not installed) or holding small stand-in executables that behave like the
tools at their interface (arguments, the archive file, exit status, stderr).
"""

from __future__ import annotations

import gzip
import json
import stat
import sys
from pathlib import Path

import pytest

from bursar.backup import SAFETY_DIR, BackupError, create_backup, list_backups, restore_backup, validate_backup
from tests.backup.conftest import NOW, files_in

URI = "mongodb://bursar:s3cr%40t@127.0.0.1:27017/almabursar_test?authSource=admin"
MAGIC = bytes.fromhex("6de29981")

# A stand-in for mongodump / mongorestore: logs its arguments, then does what FAKE_MODE says.
TOOL = """#!PYTHON
import gzip, json, os, sys
tool = os.path.basename(sys.argv[0])
with open(os.environ["FAKE_TOOL_LOG"], "a") as log:
    log.write(json.dumps([tool] + sys.argv[1:]) + "\\n")
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


def calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


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
    (call,) = calls(tools)
    assert call[0] == "mongodump" and f"--uri={URI}" in call and "--gzip" in call
    validate_backup(backup.path, "mongodb")


def test_restore_saves_the_current_state_then_runs_mongorestore(tools, backups_dir):
    backup, _ = create_backup(URI, backups_dir, now=NOW, keep=5)
    (chosen,) = list_backups(backups_dir)
    safety = restore_backup(URI, chosen, backups_dir, now=NOW)
    assert safety.path.parent == backups_dir / SAFETY_DIR
    dump, safety_dump, restore = calls(tools)
    assert safety_dump[0] == "mongodump"
    assert restore[0] == "mongorestore"
    assert f"--archive={backup.path}" in restore
    assert {"--gzip", "--drop", "--nsInclude=almabursar_test.*", f"--uri={URI}"} <= set(restore)


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
