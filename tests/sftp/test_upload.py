"""upload_verified: temporary name, rename, size check, and recovery from a dropped connection."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from bursar.clients.sftp import SftpEndpoint, connect
from bursar.errors import SftpError
from bursar.sandbox.sftp_server import SandboxSftp, Upload
from tests.sftp.conftest import endpoint_for

NAME = "LIB_charges.dat.20240105.1.1"


@pytest.fixture
def local_file(tmp_path: Path) -> Path:
    # 98-byte lines like a Bursar file, large enough to span many SFTP write requests.
    path = tmp_path / "exports" / NAME
    path.parent.mkdir()
    line = b"1234567890 " + b"X" * 86 + b"\n"
    path.write_bytes(line * 3000)
    return path


def test_upload_is_verified_and_leaves_no_temporary_file(
    server: SandboxSftp, endpoint: SftpEndpoint, remote_dir: Path, local_file: Path
) -> None:
    with connect(endpoint, timeout=5) as session:
        size = session.upload_verified(local_file, NAME)
        assert session.size(NAME) == size

    assert size == local_file.stat().st_size == 294000
    assert (remote_dir / NAME).read_bytes() == local_file.read_bytes()
    assert sorted(os.listdir(remote_dir)) == [NAME]
    assert server.uploads == [Upload(NAME, size)]


def test_upload_replaces_a_stale_temporary_file(
    server: SandboxSftp, endpoint: SftpEndpoint, remote_dir: Path, local_file: Path
) -> None:
    # Left by an earlier run that died mid-upload; longer than the real file on purpose.
    (remote_dir / f".{NAME}.part").write_bytes(b"junk" * 200_000)
    with connect(endpoint, timeout=5) as session:
        session.upload_verified(local_file, NAME)
    assert sorted(os.listdir(remote_dir)) == [NAME]
    assert (remote_dir / NAME).read_bytes() == local_file.read_bytes()


@pytest.mark.parametrize("posix_rename", [True, False], ids=["posix-rename", "plain-rename"])
def test_upload_replaces_an_existing_file_with_either_rename(
    make_server: Callable[..., SandboxSftp], tmp_path: Path, local_file: Path, posix_rename: bool
) -> None:
    server = make_server(posix_rename=posix_rename)
    known_hosts = tmp_path / "kh"
    server.write_known_hosts(known_hosts)
    remote_dir = server.root / "upload"
    (remote_dir / NAME).write_bytes(b"an older, shorter copy\n")

    with connect(endpoint_for(server, known_hosts), timeout=5) as session:
        assert session.upload_verified(local_file, NAME) == local_file.stat().st_size

    assert (remote_dir / NAME).read_bytes() == local_file.read_bytes()
    assert sorted(os.listdir(remote_dir)) == [NAME]


def test_dropped_connection_mid_upload_then_a_clean_retry(
    server: SandboxSftp, endpoint: SftpEndpoint, remote_dir: Path, local_file: Path
) -> None:
    server.drop_after_bytes(50_000, op="write")
    with connect(endpoint, timeout=5) as session:
        with pytest.raises(SftpError, match=r"^BURSAR_SFTP: uploading .* failed"):
            session.upload_verified(local_file, NAME)

    # The real name never appeared; only the partial temporary file (the connection was gone,
    # so it could not be cleaned up) is there.
    assert not (remote_dir / NAME).exists()
    assert os.listdir(remote_dir) == [f".{NAME}.part"]
    assert (remote_dir / f".{NAME}.part").stat().st_size <= 50_000
    assert server.uploads == []

    with connect(endpoint, timeout=5) as session:
        assert session.size(NAME) is None  # what a retrying job checks first
        session.upload_verified(local_file, NAME)

    assert sorted(os.listdir(remote_dir)) == [NAME]
    assert (remote_dir / NAME).read_bytes() == local_file.read_bytes()
    assert server.uploads == [Upload(NAME, local_file.stat().st_size)]  # exactly once
    assert server.connections == 2


def test_a_failed_rename_removes_the_temporary_file(
    server: SandboxSftp, endpoint: SftpEndpoint, remote_dir: Path, local_file: Path
) -> None:
    # A directory where the file should go makes the rename fail on the server.
    (remote_dir / NAME).mkdir()
    (remote_dir / NAME / "keep").write_text("x")
    with connect(endpoint, timeout=5) as session:
        with pytest.raises(SftpError, match="renaming"):
            session.upload_verified(local_file, NAME)
    assert sorted(os.listdir(remote_dir)) == [NAME]
    assert server.uploads == []


@pytest.mark.parametrize("name", ["", ".", "..", "../etc/passwd", "sub/file"])
def test_only_plain_names_are_accepted(
    server: SandboxSftp, endpoint: SftpEndpoint, local_file: Path, name: str
) -> None:
    with connect(endpoint, timeout=5) as session:
        with pytest.raises(SftpError, match="not a plain file name"):
            session.upload_verified(local_file, name)
    assert server.uploads == []


def test_missing_local_file(
    server: SandboxSftp, endpoint: SftpEndpoint, remote_dir: Path, tmp_path: Path
) -> None:
    with connect(endpoint, timeout=5) as session:
        with pytest.raises(SftpError, match="cannot read local file"):
            session.upload_verified(tmp_path / "absent.dat", "absent.dat")
    assert os.listdir(remote_dir) == []
