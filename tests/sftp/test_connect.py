"""Connecting: host-key checks, authentication, refused and hung servers, secrets kept out."""

from __future__ import annotations

import base64
import hashlib
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paramiko
import pytest

from bursar.clients.sftp import SftpEndpoint, connect, fingerprint, known_hosts_line
from bursar.errors import SettingsError, SftpError
from bursar.sandbox.sftp_server import SandboxSftp
from tests.endpoints import free_port, sftp_endpoint
from tests.sftp.conftest import PASSWORD, USER, endpoint_for


def _texts(error: BaseException) -> str:
    """str and repr of an error and of every exception chained to it."""
    parts = []
    seen: BaseException | None = error
    while seen is not None:
        parts += [str(seen), repr(seen)]
        seen = seen.__cause__ or seen.__context__
    return "\n".join(parts)


def test_connects_with_a_known_host_key(server: SandboxSftp, endpoint: SftpEndpoint) -> None:
    with connect(endpoint, timeout=5) as session:
        assert session.listdir() == []
    assert server.connections == 1


def _openssh_fingerprint(key: paramiko.PKey) -> str:
    """The fingerprint computed the long way: sha256 of the base64-decoded key blob."""
    digest = hashlib.sha256(base64.b64decode(key.get_base64())).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def test_unknown_host_key_is_refused_with_its_fingerprint_and_the_line_to_add(
    server: SandboxSftp, tmp_path: Path
) -> None:
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with pytest.raises(SftpError) as caught:
        connect(endpoint_for(server, empty), timeout=5)
    message = str(caught.value)
    key = server.host_key
    line = f"[127.0.0.1]:{server.port} {key.get_name()} {key.get_base64()}"
    assert message == (
        f"BURSAR_SFTP: host key for [127.0.0.1]:{server.port} is not in SFTP_KNOWN_HOSTS "
        f"({empty}); refusing to connect. The server offered the {key.get_name()} key "
        f"{_openssh_fingerprint(key)}; check that fingerprint with the Bursar's office, and once "
        f"it matches add this line to {empty}: {line}"
    )
    assert server.connections == 1  # it did reach the server, and then refused it
    # the line, added as told, is exactly what makes the next connect succeed
    empty.write_text(message.rsplit(f"{empty}: ", 1)[1] + "\n")
    with connect(endpoint_for(server, empty), timeout=5) as session:
        assert session.listdir() == []


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="OpenSSH's ssh-keygen is not installed")
def test_the_fingerprint_is_the_one_openssh_shows(server: SandboxSftp, tmp_path: Path) -> None:
    known = tmp_path / "kh"
    server.write_known_hosts(known)
    shown = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(known)],
                           capture_output=True, text=True, check=True).stdout.split()[1]
    assert fingerprint(server.host_key) == shown


def test_the_known_hosts_line_uses_the_bare_host_on_port_22() -> None:
    key = paramiko.ECDSAKey.generate()
    assert known_hosts_line("sftp.bursar.example.edu", 22, key) == \
        f"sftp.bursar.example.edu {key.get_name()} {key.get_base64()}"
    assert known_hosts_line("10.0.0.5", 2222, key).startswith("[10.0.0.5]:2222 ")


def test_a_different_key_for_the_host_is_reported_as_changed(
    server: SandboxSftp, tmp_path: Path
) -> None:
    impostor = paramiko.ECDSAKey.generate()
    path = tmp_path / "known_hosts_other_key"
    path.write_text(f"[127.0.0.1]:{server.port} {impostor.get_name()} {impostor.get_base64()}\n")
    with pytest.raises(SftpError, match="CHANGED") as caught:
        connect(endpoint_for(server, path), timeout=5)
    message = str(caught.value)
    assert f"[127.0.0.1]:{server.port}" in message
    assert str(path) in message
    key = server.host_key
    assert f"now offers the {key.get_name()} key {_openssh_fingerprint(key)}" in message
    assert f"the recorded one is {_openssh_fingerprint(impostor)}" in message
    assert "Bursar's office" in message
    assert message.endswith(f": [127.0.0.1]:{server.port} {key.get_name()} {key.get_base64()}")
    assert "\n" not in message


def test_a_key_for_another_port_does_not_count(server: SandboxSftp, tmp_path: Path) -> None:
    # known_hosts entries are per [host]:port; trusting port 1 must not trust this server.
    key = server.host_key
    path = tmp_path / "known_hosts_port1"
    path.write_text(f"[127.0.0.1]:1 {key.get_name()} {key.get_base64()}\n")
    with pytest.raises(SftpError, match="is not in SFTP_KNOWN_HOSTS"):
        connect(endpoint_for(server, path), timeout=5)


def test_missing_known_hosts_file(server: SandboxSftp, tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "known_hosts"
    with pytest.raises(SftpError) as caught:
        connect(endpoint_for(server, missing), timeout=5)
    assert str(missing) in str(caught.value)
    assert "SFTP_KNOWN_HOSTS" in str(caught.value)
    assert server.connections == 0  # refused before touching the network


def test_known_hosts_that_is_a_folder_is_said_to_be_a_folder(server: SandboxSftp, tmp_path: Path) -> None:
    folder = tmp_path / "known_hosts.d"
    folder.mkdir()
    with pytest.raises(SftpError) as caught:
        connect(endpoint_for(server, folder), timeout=5)
    assert str(caught.value) == (
        f"BURSAR_SFTP: known_hosts file {folder} (SFTP_KNOWN_HOSTS) is a folder, not a file"
    )
    assert server.connections == 0


@pytest.mark.parametrize(("content", "line"), [
    ("# ours\n\nnot a known_hosts line\n", 3),
    ("{host} ssh-ed25519 AAAA-not-base64!!\n", 1),
    ("# a comment\n{host} ecdsa-sha2-nistp256 AAAAE2VjZHNh\n", 2),
    (b"\xff\xfe garbage\n", 1),
])
def test_a_garbage_known_hosts_file_gives_the_line_number(
    server: SandboxSftp, tmp_path: Path, content: str | bytes, line: int
) -> None:
    path = tmp_path / "known_hosts_garbage"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content.format(host=f"[127.0.0.1]:{server.port}"))
    with pytest.raises(SftpError) as caught:
        connect(endpoint_for(server, path), timeout=5)
    message = str(caught.value)
    assert message.startswith(
        f"BURSAR_SFTP: cannot read known_hosts file {path} (SFTP_KNOWN_HOSTS): line {line} "
    )
    assert "Error(" not in message and "('" not in message  # never a Python tuple or repr
    assert server.connections == 0


def test_markers_comments_and_unknown_key_types_are_not_garbage(
    server: SandboxSftp, known_hosts: Path
) -> None:
    trusted = known_hosts.read_text()
    other = paramiko.ECDSAKey.generate()
    known_hosts.write_text(
        "# managed by hand\n"
        f"@cert-authority *.example.edu {other.get_name()} {other.get_base64()}\n"
        f"@revoked old.example.edu {other.get_name()} {other.get_base64()}\n"
        "other.example.edu sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29t\n"
        + trusted
    )
    with connect(endpoint_for(server, known_hosts), timeout=5) as session:
        assert session.listdir() == []


def test_wrong_password(server: SandboxSftp, known_hosts: Path) -> None:
    wrong = "wrong-" + PASSWORD
    with pytest.raises(SftpError, match="login as 'bursar'") as caught:
        connect(endpoint_for(server, known_hosts, password=wrong), timeout=5)
    assert wrong not in _texts(caught.value)


def test_unknown_user(server: SandboxSftp, known_hosts: Path) -> None:
    with pytest.raises(SftpError, match="login as 'mallory'"):
        connect(endpoint_for(server, known_hosts, user="mallory"), timeout=5)


def test_no_password_and_no_key_file(server: SandboxSftp, known_hosts: Path) -> None:
    with pytest.raises(SftpError, match="BURSAR_SFTP_PASSWORD nor BURSAR_SFTP_KEY_FILE"):
        connect(endpoint_for(server, known_hosts, password=None), timeout=5)


def test_key_file_authentication(
    make_server: Callable[..., SandboxSftp], tmp_path: Path
) -> None:
    client_key = paramiko.ECDSAKey.generate()
    key_file = tmp_path / "id_ecdsa"
    client_key.write_private_key_file(str(key_file))
    server = make_server(users={}, authorized_keys={USER: [client_key]})
    known_hosts = tmp_path / "kh"
    server.write_known_hosts(known_hosts)

    endpoint = endpoint_for(server, known_hosts, password=None, key_file=key_file)
    with connect(endpoint, timeout=5) as session:
        assert session.size("absent") is None

    # A key the server does not know is an authentication failure naming the key file.
    other = tmp_path / "id_other"
    paramiko.ECDSAKey.generate().write_private_key_file(str(other))
    with pytest.raises(SftpError, match="login as 'bursar'.*id_other"):
        connect(endpoint_for(server, known_hosts, password=None, key_file=other), timeout=5)


def test_encrypted_key_file_is_refused_with_a_clear_message(
    server: SandboxSftp, known_hosts: Path, tmp_path: Path
) -> None:
    key_file = tmp_path / "id_locked"
    paramiko.ECDSAKey.generate().write_private_key_file(str(key_file), password="phrase")
    with pytest.raises(SftpError, match="passphrase.*not supported") as caught:
        connect(endpoint_for(server, known_hosts, key_file=key_file), timeout=5)
    assert "BURSAR_SFTP_KEY_FILE" in str(caught.value)
    assert server.connections == 0


@pytest.mark.parametrize("content", [None, "not a key\n"])
def test_missing_or_garbage_key_file(
    server: SandboxSftp, known_hosts: Path, tmp_path: Path, content: str | None
) -> None:
    key_file = tmp_path / "id_bad"
    if content is not None:
        key_file.write_text(content)
    with pytest.raises(SftpError, match="BURSAR_SFTP_KEY_FILE"):
        connect(endpoint_for(server, known_hosts, key_file=key_file), timeout=5)


def test_connection_refused(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    known_hosts = tmp_path / "kh"
    known_hosts.write_text("")
    endpoint = sftp_endpoint(label="PAYMENTS_SFTP", port=port, user=USER, password=PASSWORD, directory="/in",
                             known_hosts=known_hosts)
    with pytest.raises(SftpError) as caught:
        connect(endpoint, timeout=5)
    assert str(caught.value) == f"PAYMENTS_SFTP: connection to [127.0.0.1]:{port} refused"


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A TCP port that accepts connections (kernel backlog) but never says anything."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    yield listener.getsockname()[1]
    listener.close()


def test_a_silent_server_times_out_instead_of_hanging(
    silent_listener: int, tmp_path: Path
) -> None:
    known_hosts = tmp_path / "kh"
    known_hosts.write_text("")
    endpoint = sftp_endpoint(port=silent_listener, user=USER, password=PASSWORD, directory="/u",
                             known_hosts=known_hosts)
    started = time.monotonic()
    with pytest.raises(SftpError) as caught:
        connect(endpoint, timeout=0.5)
    assert str(caught.value) == (
        f"BURSAR_SFTP: no SSH handshake from [127.0.0.1]:{silent_listener} within 0.5s"
    )
    assert time.monotonic() - started < 5


def test_directory_must_be_absolute(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="BURSAR_SFTP_DIR"):
        sftp_endpoint(host="h", port=22, user="u", password="p", directory="upload", known_hosts=tmp_path / "kh")


def test_password_never_appears_in_reprs_or_errors(
    server: SandboxSftp, known_hosts: Path, tmp_path: Path
) -> None:
    endpoint = endpoint_for(server, known_hosts)
    assert PASSWORD not in repr(endpoint)
    assert PASSWORD not in str(endpoint)
    assert "password=***" in repr(endpoint)

    with connect(endpoint, timeout=5) as session:
        assert PASSWORD not in repr(session)
        errors: list[SftpError] = []
        for action in (
            lambda: session.download("missing.csv", tmp_path / "x"),
            lambda: session.upload_verified(tmp_path / "no-such-local", "a"),
            lambda: session.upload_verified(tmp_path / "no-such-local", "../a"),
        ):
            with pytest.raises(SftpError) as caught:
                action()
            errors.append(caught.value)

    empty = tmp_path / "empty_kh"
    empty.write_text("")
    failing = [
        endpoint_for(server, empty),
        endpoint_for(server, tmp_path / "missing_kh"),
        endpoint_for(server, known_hosts, user="nobody"),
    ]
    for bad in failing:
        with pytest.raises(SftpError) as caught:
            connect(bad, timeout=5)
        errors.append(caught.value)

    assert len(errors) == 6
    for error in errors:
        text = _texts(error)
        assert PASSWORD not in text
        assert "\n" not in str(error)
        assert str(error).startswith("BURSAR_SFTP: ")
