"""Fixtures: Debian's real OpenSSH ``sshd`` on 127.0.0.1, one per pytest(-xdist) worker.

Why a real sshd: the sandbox SFTP server (paramiko) is ours, so tests against it can only show
that our client agrees with our server.  OpenSSH is what the Bursar and the payments account
actually run; these tests show that the upload (temp name, posix-rename, size check), the
download and the host-key checking work against it.

How: when ``/usr/sbin/sshd`` is missing, ``scripts/ensure-openssh.sh`` installs it (root and
apt-get only), once per run under a file lock shared by the xdist workers.  If it still cannot
be had, every test here is skipped with the reason, also emitted as a warning so it shows in
the default summary.  Each worker then starts its own sshd on a free port, in the foreground
(``-D -e``), with its own host key, authorized client keys and config in a temporary
directory, key login only, and the ``internal-sftp`` subsystem.  It is stopped at the end of
the session.
"""

from __future__ import annotations

import fcntl
import getpass
import os
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bursar.clients.sftp import SftpEndpoint
from tests.endpoints import HOST, free_port, sftp_endpoint
from tests.threads import no_new_threads_after

SSHD = Path("/usr/sbin/sshd")
SSH_KEYGEN = "ssh-keygen"
ENSURE_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ensure-openssh.sh"
PRIVSEP_DIR = Path("/run/sshd")  # sshd running as root refuses to start without it
START_TIMEOUT = 10.0  # seconds for sshd to answer with its banner
START_ATTEMPTS = 5  # a free port can be taken between our probe and sshd's bind

# The sshd processes this worker started and has not stopped yet.
_STARTED: list[OpenSsh] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "openssh: runs against Debian's real OpenSSH sshd on 127.0.0.1"
    )


@dataclass(frozen=True)
class OpenSsh:
    """A running sshd and everything a client needs to reach it with host-key checking on.

    ``key_file`` (Ed25519) and ``ecdsa_key_file`` are authorized; ``stranger_key_file`` is a
    valid key that is not.  ``known_hosts`` holds exactly this server's host key for
    ``[127.0.0.1]:port``; ``host_key_line`` is its ``ssh-ed25519 AAAA...`` part.
    """

    host: str
    port: int
    user: str
    key_file: Path
    ecdsa_key_file: Path
    stranger_key_file: Path
    known_hosts: Path
    host_key_line: str
    config: Path
    log: Path
    process: subprocess.Popen[bytes] = field(repr=False, compare=False)

    def endpoint(self, directory: Path | str, **changes: Any) -> SftpEndpoint:
        """An endpoint for this server logging in with the Ed25519 key; fields overridable."""
        values: dict[str, Any] = dict(host=self.host, port=self.port, user=self.user, key_file=self.key_file,
                                      directory=str(directory), known_hosts=self.known_hosts)
        return sftp_endpoint(**{**values, **changes})

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no sshd log)"


def _shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory every xdist worker of this run sees (the parent of their base temps)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def _sshd_present() -> bool:
    return SSHD.is_file() and os.access(SSHD, os.X_OK)


def _ensure_sshd(shared: Path) -> str | None:
    """Install sshd if needed, at most once per run; None when present, else the reason."""
    if _sshd_present():
        return None
    result = shared / "ensure-openssh.result"
    with open(shared / "ensure-openssh.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        if _sshd_present():
            return None
        if result.exists():  # another worker already tried and failed: do not retry apt
            return result.read_text()
        try:
            run = subprocess.run(
                ["sh", str(ENSURE_SCRIPT)],
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            detail = (run.stderr.strip().splitlines() or [f"exit {run.returncode}"])[0]
        except (OSError, subprocess.TimeoutExpired) as e:
            detail = f"{ENSURE_SCRIPT.name} could not run: {e}"
        if _sshd_present():
            return None
        reason = f"OpenSSH sshd ({SSHD}) is not installed and could not be installed: {detail}"
        result.write_text(reason)
        return reason


def _keygen(path: Path, key_type: str) -> None:
    subprocess.run(
        [SSH_KEYGEN, "-q", "-t", key_type, "-N", "", "-C", f"pybursar-test-{path.name}",
         "-f", str(path)],
        check=True,
        capture_output=True,
        timeout=30,
    )


def _public(path: Path) -> str:
    """``<type> <base64>`` of a key pair's .pub file, without the comment."""
    kind, blob = path.with_name(path.name + ".pub").read_text().split()[:2]
    return f"{kind} {blob}"


def _write_config(directory: Path, port: int, user: str) -> Path:
    # Quoted paths: sshd_config splits arguments on spaces.
    config = directory / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                f"ListenAddress {HOST}",
                f'HostKey "{directory / "ssh_host_ed25519_key"}"',
                f'PidFile "{directory / "sshd.pid"}"',
                f'AuthorizedKeysFile "{directory / "authorized_keys"}"',
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "StrictModes no",
                "UsePAM no",
                f"AllowUsers {user}",
                "Subsystem sftp internal-sftp",
                # INFO, not ERROR: it goes to a log file only, and says why a login failed.
                "LogLevel INFO",
                "",
            ]
        )
    )
    return config


def _wait_for_banner(proc: subprocess.Popen[bytes], port: int) -> str | None:
    """Wait (bounded) until our sshd answers on ``port``; None if it exited or never did."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return None
        try:
            with socket.create_connection((HOST, port), timeout=1) as s:
                banner = s.recv(64).decode("ascii", "replace")
            if banner.startswith("SSH-2.0-OpenSSH"):
                return banner.strip()
        except OSError:
            pass
        time.sleep(0.02)
    return None


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture(scope="session")
def openssh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenSsh]:
    """This worker's running sshd (started once per session, stopped at its end)."""
    reason = _ensure_sshd(_shared_dir(tmp_path_factory))
    if reason is not None:
        warnings.warn(
            pytest.PytestWarning(f"OpenSSH integration tests skipped: {reason}"), stacklevel=1
        )
        pytest.skip(reason)

    if os.geteuid() == 0:
        PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)

    directory = tmp_path_factory.mktemp("openssh")
    _keygen(directory / "ssh_host_ed25519_key", "ed25519")
    _keygen(directory / "client_ed25519", "ed25519")
    _keygen(directory / "client_ecdsa", "ecdsa")
    _keygen(directory / "stranger_ed25519", "ed25519")
    (directory / "authorized_keys").write_text(
        f"{_public(directory / 'client_ed25519')}\n{_public(directory / 'client_ecdsa')}\n"
    )
    user = getpass.getuser()
    log = directory / "sshd.log"

    proc: subprocess.Popen[bytes] | None = None
    for _ in range(START_ATTEMPTS):
        port = free_port()
        config = _write_config(directory, port, user)
        with open(log, "ab") as log_out:
            proc = subprocess.Popen(
                [str(SSHD), "-D", "-e", "-f", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log_out,
                stderr=subprocess.STDOUT,
            )
        if _wait_for_banner(proc, port) is not None:
            break
        _stop(proc)
        proc = None
    if proc is None:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-10:])
        pytest.fail(f"sshd did not start on {HOST} after {START_ATTEMPTS} attempts:\n{tail}")

    host_key_line = _public(directory / "ssh_host_ed25519_key")
    known_hosts = directory / "known_hosts"
    known_hosts.write_text(f"[{HOST}]:{port} {host_key_line}\n")
    server = OpenSsh(
        host=HOST,
        port=port,
        user=user,
        key_file=directory / "client_ed25519",
        ecdsa_key_file=directory / "client_ecdsa",
        stranger_key_file=directory / "stranger_ed25519",
        known_hosts=known_hosts,
        host_key_line=host_key_line,
        config=config,
        log=log,
        process=proc,
    )
    _STARTED.append(server)
    try:
        yield server
    finally:
        _STARTED.remove(server)
        _stop(proc)


@pytest.fixture
def remote_dir(tmp_path: Path) -> Path:
    """A fresh, empty directory for this test, used as the server-side absolute path.

    sshd runs on this machine with no chroot, so the path on the server and the local path
    are the same: tests check the server's files directly with the file system.
    """
    path = tmp_path / "remote"
    path.mkdir()
    return path


@pytest.fixture(autouse=True)
def sshd_still_running() -> Iterator[None]:
    """A test that killed sshd fails itself, rather than letting the next tests fail oddly."""
    yield
    for server in _STARTED:
        if server.process.poll() is not None:
            pytest.fail(f"sshd exited during the test:\n{server.log_tail()}")


@pytest.fixture(autouse=True)
def no_threads_left_behind() -> Iterator[None]:
    """Every paramiko transport a test opens must be closed by the end of it."""
    with no_new_threads_after():
        yield
