"""Where test servers listen and how clients reach them: one helper for each.

- `free_port()`: a local TCP port nothing listens on now, for a server to start on, or to
  stand for a stopped server (a connection to it is refused);
- `dead_url()`: an http URL on such a port;
- `sftp_endpoint()`: the `SftpEndpoint` a test client uses, with the fields a test varies.
"""

from __future__ import annotations

import socket
from pathlib import Path

from bursar.clients.sftp import SftpEndpoint

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (bound by the kernel's choice, then let go)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def dead_url(path: str = "") -> str:
    """An http URL on 127.0.0.1 where nothing listens (a stopped server)."""
    return f"http://{HOST}:{free_port()}{path}"


def sftp_endpoint(*, port: int, user: str, known_hosts: Path, directory: str = "/upload",
                  password: str | None = None, key_file: Path | None = None, label: str = "BURSAR_SFTP",
                  host: str = HOST) -> SftpEndpoint:
    """An endpoint on a test SFTP server (a password or a key file to log in with)."""
    return SftpEndpoint(label=label, host=host, port=port, user=user, password=password, key_file=key_file,
                        directory=directory, known_hosts=known_hosts)
