"""bursar.runtime.fs: the one atomic writer (temporary file, fsync, rename, folder fsync) and its rule
for a folder that cannot be synced."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from bursar.runtime import fs


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder of its own (the suite's tmp_path also holds a home folder)."""
    out = tmp_path / "out"
    out.mkdir()
    return out


def _names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_atomic_file_appears_whole_and_private(folder: Path) -> None:
    target = folder / "out.1"
    target.write_bytes(b"old\n")
    old_inode = target.stat().st_ino
    with fs.atomic_file(target) as fh:
        fh.write(b"new line\n")
        assert target.read_bytes() == b"old\n"  # the real name is untouched until the block ends
        (temp,) = [p for p in folder.iterdir() if p.name != "out.1"]
        assert temp.name.startswith(".out.1.") and temp.name.endswith(".tmp")
        assert stat.S_IMODE(temp.stat().st_mode) == 0o600  # private from its first byte
    assert target.read_bytes() == b"new line\n"
    assert target.stat().st_ino != old_inode  # renamed in, not rewritten in place
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert _names(folder) == {"out.1"}


def test_atomic_file_leaves_nothing_when_the_block_fails(folder: Path) -> None:
    target = folder / "pay.csv"
    target.write_bytes(b"keep")
    with pytest.raises(ValueError, match="verification"):
        with fs.atomic_file(target, suffix=".part") as fh:
            fh.write(b"half")
            raise ValueError("verification failed")
    assert target.read_bytes() == b"keep" and _names(folder) == {"pay.csv"}


def test_atomic_file_rename_failure_removes_the_temporary_file(folder: Path) -> None:
    target = folder / "taken"
    target.mkdir()  # a folder has the name: os.replace fails after the bytes were written
    with pytest.raises(OSError):
        with fs.atomic_file(target, prefix=".pybursar-tmp-", suffix=".download") as fh:
            fh.write(b"x")
    assert _names(folder) == {"taken"} and target.is_dir()


def test_publish_makes_a_filled_temporary_file_private_under_its_name(folder: Path) -> None:
    temp = fs.temp_file(folder, prefix=".pybursar-tmp-", suffix=".archive.gz")
    os.chmod(temp, 0o644)  # as another program might leave it
    temp.write_bytes(b"archive")
    final = folder / "pybursar-mongodb-20240304T153000Z.archive.gz"
    fs.publish(temp, final)
    assert final.read_bytes() == b"archive" and stat.S_IMODE(final.stat().st_mode) == 0o600
    assert not temp.exists()


def test_move_renames_across_folders(folder: Path) -> None:
    (folder / "sent").mkdir()
    source = folder / "f.1"
    source.write_bytes(b"x")
    fs.move(source, folder / "sent" / "f.1")
    assert not source.exists() and (folder / "sent" / "f.1").read_bytes() == b"x"


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux procfs")
def test_a_folder_the_file_system_cannot_sync_is_skipped() -> None:
    # procfs answers fsync on a folder with EINVAL, as some network and FUSE file systems do
    fd = os.open("/proc", os.O_RDONLY)
    try:
        with pytest.raises(OSError) as caught:
            os.fsync(fd)
        assert caught.value.errno == 22  # EINVAL: the case fsync_dir skips
    finally:
        os.close(fd)
    fs.fsync_dir(Path("/proc"))  # no error


def test_other_folder_errors_are_raised(folder: Path) -> None:
    with pytest.raises(FileNotFoundError):
        fs.fsync_dir(folder / "gone")
    (folder / "file").write_bytes(b"")
    with pytest.raises(NotADirectoryError):
        fs.fsync_dir(folder / "file")
    fs.fsync_dir(folder)  # an ordinary folder syncs
