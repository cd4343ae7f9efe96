"""Fixtures: a real SandboxSftp on 127.0.0.1 per test, and endpoints that trust it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest

from bursar.clients.sftp import SftpEndpoint
from bursar.sandbox.sftp_server import SandboxSftp
from tests.endpoints import sftp_endpoint
from tests.threads import no_new_threads_after

USER = "bursar"
# Distinctive so a leak into any message or repr is easy to spot.
PASSWORD = "pw-Zq8!never-print-me"
UPLOAD_DIR = "/upload"


@pytest.fixture(scope="session")
def host_key() -> paramiko.PKey:
    """One ECDSA host key for every server in the run: generating keys is the slow part."""
    return paramiko.ECDSAKey.generate()


@pytest.fixture
def make_server(
    tmp_path: Path, host_key: paramiko.PKey
) -> Iterator[Callable[..., SandboxSftp]]:
    """Start a SandboxSftp rooted in tmp_path/remote with an /upload directory; stopped after."""
    started: list[SandboxSftp] = []

    def make(**kwargs: Any) -> SandboxSftp:
        root = tmp_path / f"remote{len(started) or ''}"
        (root / UPLOAD_DIR.strip("/")).mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("users", {USER: PASSWORD})
        kwargs.setdefault("host_key", host_key)
        server = SandboxSftp(root, **kwargs)
        started.append(server)
        server.start()
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def server(make_server: Callable[..., SandboxSftp]) -> SandboxSftp:
    return make_server()


@pytest.fixture
def known_hosts(tmp_path: Path, server: SandboxSftp) -> Path:
    path = tmp_path / "known_hosts"
    server.write_known_hosts(path)
    return path


def endpoint_for(server: SandboxSftp, known_hosts: Path, **changes: Any) -> SftpEndpoint:
    """An endpoint that reaches ``server`` as USER/PASSWORD in /upload, with overrides."""
    assert server.port is not None
    values: dict[str, Any] = dict(port=server.port, user=USER, password=PASSWORD, directory=UPLOAD_DIR,
                                  known_hosts=known_hosts)
    return sftp_endpoint(**{**values, **changes})


@pytest.fixture
def endpoint(server: SandboxSftp, known_hosts: Path) -> SftpEndpoint:
    return endpoint_for(server, known_hosts)


@pytest.fixture
def remote_dir(server: SandboxSftp) -> Path:
    """The local directory behind the server's /upload."""
    return server.root / UPLOAD_DIR.strip("/")


@pytest.fixture(autouse=True)
def no_threads_left_behind() -> Iterator[None]:
    """Every server, transport and SFTP thread a test starts must be gone after it."""
    with no_new_threads_after():
        yield
