"""The sandbox server itself: confinement under root, known_hosts lines, read-only refusals."""

from __future__ import annotations

import errno
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from bursar.sandbox.sftp_server import SandboxSftp
from tests.sftp.conftest import PASSWORD, USER


@pytest.fixture
def raw_sftp(server: SandboxSftp) -> Iterator[paramiko.SFTPClient]:
    """paramiko's own client, to send paths our client would never send."""
    assert server.port is not None
    transport = paramiko.Transport(("127.0.0.1", server.port))
    transport.connect(hostkey=server.host_key, username=USER, password=PASSWORD)
    sftp = paramiko.SFTPClient.from_transport(transport)
    assert sftp is not None
    yield sftp
    sftp.close()
    transport.close()


def test_paths_cannot_escape_root(
    server: SandboxSftp, raw_sftp: paramiko.SFTPClient, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    (server.root / "upload" / "link").symlink_to(outside)
    for path in ("/../outside.txt", "/upload/../../outside.txt", "/upload/link"):
        with pytest.raises(PermissionError):
            raw_sftp.stat(path)
    with pytest.raises(PermissionError):
        raw_sftp.open("/../escaped.txt", "w")
    assert not (tmp_path / "escaped.txt").exists()


def test_remote_paths_map_under_root(
    server: SandboxSftp, raw_sftp: paramiko.SFTPClient
) -> None:
    raw_sftp.mkdir("/upload/sub")
    with raw_sftp.open("/upload/sub/a.txt", "w") as f:
        f.write(b"hello")
    assert (server.root / "upload" / "sub" / "a.txt").read_bytes() == b"hello"
    assert raw_sftp.listdir("/upload") == ["sub"]
    assert raw_sftp.normalize("upload/./sub") == "/upload/sub"
    raw_sftp.remove("/upload/sub/a.txt")
    raw_sftp.rmdir("/upload/sub")
    assert list((server.root / "upload").iterdir()) == []


def test_plain_rename_refuses_to_replace_like_openssh(
    server: SandboxSftp, raw_sftp: paramiko.SFTPClient
) -> None:
    upload = server.root / "upload"
    (upload / "a").write_text("a")
    (upload / "b").write_text("b")
    with pytest.raises(OSError):
        raw_sftp.rename("/upload/a", "/upload/b")
    raw_sftp.posix_rename("/upload/a", "/upload/b")
    assert (upload / "b").read_text() == "a"
    assert not (upload / "a").exists()


def test_read_only_refuses_every_change(
    tmp_path: Path, host_key: paramiko.PKey
) -> None:
    root = tmp_path / "ro"
    (root / "in").mkdir(parents=True)
    (root / "in" / "f.csv").write_text("data")
    with SandboxSftp(root, users={USER: PASSWORD}, host_key=host_key, read_only=True) as server:
        assert server.port is not None
        transport = paramiko.Transport(("127.0.0.1", server.port))
        try:
            transport.connect(hostkey=host_key, username=USER, password=PASSWORD)
            sftp = paramiko.SFTPClient.from_transport(transport)
            assert sftp is not None
            with sftp.open("/in/f.csv", "r") as f:
                assert f.read() == b"data"
            attempts = [
                lambda: sftp.open("/in/new.csv", "w"),
                lambda: sftp.open("/in/f.csv", "a"),
                lambda: sftp.remove("/in/f.csv"),
                lambda: sftp.rename("/in/f.csv", "/in/g.csv"),
                lambda: sftp.posix_rename("/in/f.csv", "/in/g.csv"),
                lambda: sftp.mkdir("/in/d"),
                lambda: sftp.chmod("/in/f.csv", 0o777),
            ]
            for attempt in attempts:
                with pytest.raises(OSError) as caught:
                    attempt()
                assert caught.value.errno == errno.EACCES
        finally:
            transport.close()
    assert sorted(p.name for p in (root / "in").iterdir()) == ["f.csv"]
    assert (root / "in" / "f.csv").read_text() == "data"


def test_known_hosts_line_and_file(server: SandboxSftp, tmp_path: Path) -> None:
    line = server.known_hosts_line()
    assert line == (
        f"[127.0.0.1]:{server.port} ecdsa-sha2-nistp256 {server.host_key.get_base64()}"
    )
    path = tmp_path / "kh"
    path.write_text("[other]:22 ssh-ed25519 AAAA\n")
    server.write_known_hosts(path)
    assert path.read_text().splitlines() == ["[other]:22 ssh-ed25519 AAAA", line]


def test_stop_is_prompt_and_frees_the_port(tmp_path: Path, host_key: paramiko.PKey) -> None:
    server = SandboxSftp(tmp_path, host_key=host_key)
    port = server.start()
    assert port == server.port and port > 0
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 2
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
