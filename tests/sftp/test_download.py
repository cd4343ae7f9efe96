"""listdir, size and the atomic download; a read-only server is never changed."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from bursar.clients.sftp import RemoteFile, SftpEndpoint, connect
from bursar.errors import SftpError
from bursar.sandbox.sftp_server import SandboxSftp
from tests.sftp.conftest import endpoint_for

PAYMENTS = "ASUSASF_LIBRARY_REPORT_DTRANGE_20240101_20240131.csv"


def _tree(root: Path) -> dict[str, tuple[bytes | None, int, int]]:
    """Everything under root: contents (None for directories), mode and mtime in ns."""
    out = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        data = path.read_bytes() if path.is_file() else None
        out[str(path.relative_to(root))] = (data, st.st_mode, st.st_mtime_ns)
    return out


def _payments_bytes() -> bytes:
    row = b"1234567890,LIBFINE0001,2024-01-05,12.50,12.50\n"
    return b"Emplid,Reference Number,Date Paid,Paid Amount,Charge Amount\n" + row * 5000


def test_listdir_and_size(
    server: SandboxSftp, endpoint: SftpEndpoint, remote_dir: Path
) -> None:
    (remote_dir / "b.csv").write_bytes(b"12345")
    (remote_dir / "a.csv").write_bytes(b"")
    os.utime(remote_dir / "a.csv", (1_700_000_000, 1_700_000_000))
    (remote_dir / "archive").mkdir()  # directories are not files to fetch

    with connect(endpoint, timeout=5) as session:
        listing = session.listdir()
        assert session.size("b.csv") == 5
        assert session.size("a.csv") == 0
        assert session.size("archive.csv") is None

    assert [f.name for f in listing] == ["a.csv", "b.csv"]
    assert listing[0] == RemoteFile("a.csv", 0, 1_700_000_000)
    assert listing[1].size == 5


def test_listdir_of_a_missing_directory(
    server: SandboxSftp, known_hosts: Path
) -> None:
    endpoint = endpoint_for(server, known_hosts, directory="/outgoing")
    with connect(endpoint, timeout=5) as session:
        with pytest.raises(SftpError, match="listing /outgoing failed: no such file"):
            session.listdir()


def test_download_is_complete_private_and_leaves_no_temporary_file(
    server: SandboxSftp, endpoint: SftpEndpoint, remote_dir: Path, tmp_path: Path
) -> None:
    (remote_dir / PAYMENTS).write_bytes(_payments_bytes())
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with connect(endpoint, timeout=5) as session:
        size = session.download(PAYMENTS, inbox / PAYMENTS)
    assert size == len(_payments_bytes())
    assert (inbox / PAYMENTS).read_bytes() == _payments_bytes()
    assert stat.S_IMODE((inbox / PAYMENTS).stat().st_mode) == 0o600
    assert os.listdir(inbox) == [PAYMENTS]
    assert (remote_dir / PAYMENTS).exists()  # the server's copy is untouched


def test_dropped_connection_mid_download_leaves_nothing(
    server: SandboxSftp, endpoint: SftpEndpoint, remote_dir: Path, tmp_path: Path
) -> None:
    (remote_dir / PAYMENTS).write_bytes(_payments_bytes())
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    server.drop_after_bytes(40_000, op="read")
    with connect(endpoint, timeout=5) as session:
        with pytest.raises(SftpError, match=r"^BURSAR_SFTP: downloading .* failed"):
            session.download(PAYMENTS, inbox / PAYMENTS)
    assert os.listdir(inbox) == []

    # An older local copy is left exactly as it was by a failed download.
    (inbox / PAYMENTS).write_bytes(b"previous copy")
    server.drop_after_bytes(40_000, op="read")
    with connect(endpoint, timeout=5) as session:
        with pytest.raises(SftpError):
            session.download(PAYMENTS, inbox / PAYMENTS)
    assert os.listdir(inbox) == [PAYMENTS]
    assert (inbox / PAYMENTS).read_bytes() == b"previous copy"

    # With the fault used up, the next run gets the whole file.
    with connect(endpoint, timeout=5) as session:
        session.download(PAYMENTS, inbox / PAYMENTS)
    assert (inbox / PAYMENTS).read_bytes() == _payments_bytes()


def test_download_of_a_missing_file(
    server: SandboxSftp, endpoint: SftpEndpoint, tmp_path: Path
) -> None:
    with connect(endpoint, timeout=5) as session:
        with pytest.raises(SftpError, match="no such file"):
            session.download("gone.csv", tmp_path / "gone.csv")
    assert not (tmp_path / "gone.csv").exists()


def test_read_only_server_downloads_and_is_never_changed(
    make_server: Callable[..., SandboxSftp], tmp_path: Path
) -> None:
    server = make_server(read_only=True)
    remote_dir = server.root / "upload"
    (remote_dir / PAYMENTS).write_bytes(_payments_bytes())
    (remote_dir / f".{PAYMENTS}.part").write_bytes(b"someone else's")
    known_hosts = tmp_path / "kh"
    server.write_known_hosts(known_hosts)
    before = _tree(server.root)
    inbox = tmp_path / "inbox"
    inbox.mkdir()

    with connect(endpoint_for(server, known_hosts), timeout=5) as session:
        assert [f.name for f in session.listdir()] == [f".{PAYMENTS}.part", PAYMENTS]
        session.download(PAYMENTS, inbox / PAYMENTS)
        with pytest.raises(SftpError, match="permission denied"):
            session.upload_verified(inbox / PAYMENTS, "mine.csv")

    assert (inbox / PAYMENTS).read_bytes() == _payments_bytes()
    assert _tree(server.root) == before
    assert server.uploads == []
