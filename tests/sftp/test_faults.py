"""A server that stops answering mid-transfer: the client gives up after its timeout."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from bursar.clients.sftp import SftpEndpoint, connect
from bursar.errors import SftpError
from bursar.sandbox.sftp_server import SandboxSftp

TIMEOUT = 0.5


def test_a_hung_download_times_out_and_leaves_nothing(
    server: SandboxSftp, endpoint: SftpEndpoint, remote_dir: Path, tmp_path: Path
) -> None:
    (remote_dir / "pay.csv").write_bytes(b"x" * 200_000)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    server.hang_after_bytes(10_000, op="read")
    started = time.monotonic()
    with connect(endpoint, timeout=TIMEOUT) as session:
        with pytest.raises(SftpError, match=r"downloading /upload/pay.csv timed out after 0.5s"):
            session.download("pay.csv", inbox / "pay.csv")
    assert time.monotonic() - started < 5
    assert os.listdir(inbox) == []


def test_a_hung_upload_times_out_and_never_shows_the_final_name(
    server: SandboxSftp, endpoint: SftpEndpoint, remote_dir: Path, tmp_path: Path
) -> None:
    local = tmp_path / "charges.dat"
    local.write_bytes(b"y" * 500_000)
    server.hang_after_bytes(10_000, op="write")
    started = time.monotonic()
    with connect(endpoint, timeout=TIMEOUT) as session:
        with pytest.raises(SftpError, match="timed out after 0.5s"):
            session.upload_verified(local, "charges.dat")
    assert time.monotonic() - started < 5
    assert not (remote_dir / "charges.dat").exists()
    assert server.uploads == []


def test_faults_are_used_up_in_order(
    server: SandboxSftp, endpoint: SftpEndpoint, remote_dir: Path, tmp_path: Path
) -> None:
    local = tmp_path / "charges.dat"
    local.write_bytes(b"z" * 100_000)
    server.drop_after_bytes(1_000, op="write", times=2)
    for _ in range(2):
        with connect(endpoint, timeout=5) as session:
            with pytest.raises(SftpError):
                session.upload_verified(local, "charges.dat")
    with connect(endpoint, timeout=5) as session:
        session.upload_verified(local, "charges.dat")
    assert (remote_dir / "charges.dat").read_bytes() == local.read_bytes()
    assert len(server.uploads) == 1
    assert server.connections == 3


def test_fault_arguments_are_checked(server: SandboxSftp) -> None:
    with pytest.raises(ValueError):
        server.drop_after_bytes(10, op="delete")
    with pytest.raises(ValueError):
        server.hang_after_bytes(-1)
