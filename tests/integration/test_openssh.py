"""The Bursar upload and the payments download against Debian's real OpenSSH sshd.

Everything goes through bursar.clients.sftp exactly as the jobs use it, with host-key checking on and
key login only.  The server's directory is on this machine, so results are checked directly on
disk: bytes, leftover temporary files, and (for the read-only payments account) that nothing at
all changed.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from bursar.clients.sftp import RemoteFile, SftpSession, connect
from bursar.errors import SftpError
from tests.integration.conftest import OpenSsh

pytestmark = pytest.mark.openssh

CHARGES = "LIB_charges.dat.20240105.1.1"
PAYMENTS = "ASUSASF_LIBRARY_REPORT_DTRANGE_20240101_20240131.csv"
TIMEOUT = 10.0


def _bursar_lines(count: int, tag: str = "A") -> bytes:
    """``count`` Bursar-shaped lines: 97 characters plus ``\\n`` each (docs/file-format.md §1)."""
    lines = []
    for i in range(count):
        # Fields only need the right total width here; bursar_file owns the real layout.
        line = f"1234567{i:03d} LIBFINE{tag}{i:04d} 2024-01-05 0000012.50 LIB 2241 {tag}"
        line = line.ljust(97, "X")
        assert len(line) == 97
        lines.append(line + "\n")
    return "".join(lines).encode("ascii")


def _payments_csv() -> bytes:
    head = b"Emplid,Reference Number,Date Paid,Paid Amount,Charge Amount\n"
    return head + b"1234567890,LIBFINE0001,2024-01-05,12.50,12.50\n" * 2000


def _snapshot(directory: Path) -> dict[str, tuple[int, int, int, int, int]]:
    """Name -> (inode, size, mode, mtime_ns, ctime_ns) for the directory and its entries.

    ctime moves on any write, rename, chmod or link change, so an equal snapshot means the
    server's files were not touched (reading only moves atime, which is left out).
    """
    out = {}
    for path in [directory, *sorted(directory.iterdir())]:
        st = path.lstat()
        out[path.name] = (st.st_ino, st.st_size, st.st_mode, st.st_mtime_ns, st.st_ctime_ns)
    return out


def _advertises_posix_rename(session: SftpSession) -> bool:
    # White-box on purpose: the atomic replace relies on this OpenSSH extension being seen.
    return "posix-rename@openssh.com" in session._sftp.server_extensions


# -- the Bursar upload --------------------------------------------------------------------------


def test_upload_verified_puts_the_exact_bytes_under_the_real_name(
    openssh: OpenSsh, remote_dir: Path, tmp_path: Path
) -> None:
    local = tmp_path / CHARGES
    data = _bursar_lines(2)
    assert len(data) == 196
    local.write_bytes(data)
    (remote_dir / f".{CHARGES}.part").write_bytes(b"half a file from a crashed run")

    with connect(openssh.endpoint(remote_dir), timeout=TIMEOUT) as session:
        assert _advertises_posix_rename(session)
        assert session.upload_verified(local, CHARGES) == 196

    assert (remote_dir / CHARGES).read_bytes() == data
    # The stale temporary file was removed first and the new one renamed away.
    assert sorted(p.name for p in remote_dir.iterdir()) == [CHARGES]


def test_uploading_the_same_name_again_replaces_it_atomically(
    openssh: OpenSsh, remote_dir: Path, tmp_path: Path
) -> None:
    first, second = _bursar_lines(2, "A"), _bursar_lines(3, "B")
    local = tmp_path / CHARGES
    target = remote_dir / CHARGES

    # A server-side reader polls the name throughout the second upload: with posix-rename it
    # must never find it missing (remove-then-rename would leave a gap).
    seen_missing = threading.Event()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            try:
                target.stat()
            except FileNotFoundError:
                seen_missing.set()

    with connect(openssh.endpoint(remote_dir), timeout=TIMEOUT) as session:
        local.write_bytes(first)
        session.upload_verified(local, CHARGES)
        old_inode = target.stat().st_ino
        local.write_bytes(second)
        watcher = threading.Thread(target=watch, name="watch-target")
        watcher.start()
        try:
            assert session.upload_verified(local, CHARGES) == len(second)
        finally:
            stop.set()
            watcher.join(timeout=5)

    assert target.read_bytes() == second
    assert target.stat().st_ino != old_inode  # a new file renamed over, not rewritten in place
    assert not seen_missing.is_set()
    assert sorted(p.name for p in remote_dir.iterdir()) == [CHARGES]


def test_listdir_and_size(openssh: OpenSsh, remote_dir: Path) -> None:
    (remote_dir / "b.csv").write_bytes(b"12345")
    (remote_dir / "a.csv").write_bytes(b"")
    os.utime(remote_dir / "a.csv", (1_700_000_000, 1_700_000_000))
    (remote_dir / "archive").mkdir()  # directories are not files to fetch

    with connect(openssh.endpoint(remote_dir, label="PAYMENTS_SFTP"), timeout=TIMEOUT) as s:
        listing = s.listdir()
        assert s.size("b.csv") == 5
        assert s.size("a.csv") == 0
        assert s.size("missing.csv") is None

    b_mtime = int((remote_dir / "b.csv").stat().st_mtime)
    assert listing == [RemoteFile("a.csv", 0, 1_700_000_000), RemoteFile("b.csv", 5, b_mtime)]


# -- the payments download ----------------------------------------------------------------------


def test_download_replaces_the_local_copy_atomically(
    openssh: OpenSsh, remote_dir: Path, tmp_path: Path
) -> None:
    data = _payments_csv()
    (remote_dir / PAYMENTS).write_bytes(data)
    inbox = tmp_path / "payments"
    inbox.mkdir()
    local = inbox / PAYMENTS
    local.write_bytes(b"an older, shorter copy\n")

    with connect(openssh.endpoint(remote_dir, label="PAYMENTS_SFTP"), timeout=TIMEOUT) as s:
        assert s.download(PAYMENTS, local) == len(data)

    assert local.read_bytes() == data
    assert stat.S_IMODE(local.stat().st_mode) == 0o600
    assert [p.name for p in inbox.iterdir()] == [PAYMENTS]  # no temporary file left


def test_download_of_a_missing_file_fails_and_writes_nothing(
    openssh: OpenSsh, remote_dir: Path, tmp_path: Path
) -> None:
    inbox = tmp_path / "payments"
    inbox.mkdir()
    with connect(openssh.endpoint(remote_dir, label="PAYMENTS_SFTP"), timeout=TIMEOUT) as s:
        with pytest.raises(SftpError, match=r"^PAYMENTS_SFTP: checking .* failed: no such file$"):
            s.download(PAYMENTS, inbox / PAYMENTS)
    assert list(inbox.iterdir()) == []


def test_download_from_a_read_only_directory_changes_nothing(
    openssh: OpenSsh, remote_dir: Path, tmp_path: Path
) -> None:
    # Root ignores these modes, so the proof is the snapshot below, not a permission error.
    data = _payments_csv()
    (remote_dir / PAYMENTS).write_bytes(data)
    (remote_dir / "older.csv").write_bytes(b"Emplid\n")
    for path in remote_dir.iterdir():
        path.chmod(0o444)
    remote_dir.chmod(0o555)
    local = tmp_path / PAYMENTS
    try:
        before = _snapshot(remote_dir)
        with connect(openssh.endpoint(remote_dir, label="PAYMENTS_SFTP"), timeout=TIMEOUT) as s:
            names = [f.name for f in s.listdir()]
            assert s.size(PAYMENTS) == len(data)
            assert s.download(PAYMENTS, local) == len(data)
        after = _snapshot(remote_dir)
    finally:
        remote_dir.chmod(0o755)  # so tmp_path can be cleaned up by a non-root user

    assert names == sorted([PAYMENTS, "older.csv"])
    assert local.read_bytes() == data
    assert after == before


# -- refusals -----------------------------------------------------------------------------------


def test_an_unknown_host_key_is_refused(
    openssh: OpenSsh, remote_dir: Path, tmp_path: Path
) -> None:
    # known_hosts trusts this very key, but only for another port: this server is unknown.
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[{openssh.host}]:{openssh.port + 1} {openssh.host_key_line}\n")
    endpoint = openssh.endpoint(remote_dir, known_hosts=known_hosts)
    with pytest.raises(SftpError) as caught:
        connect(endpoint, timeout=TIMEOUT)
    assert str(caught.value).startswith(
        f"BURSAR_SFTP: host key for [{openssh.host}]:{openssh.port} is not in "
        f"SFTP_KNOWN_HOSTS ({known_hosts}); refusing to connect. The server offered the "
    )
    # the line to add, once checked with the Bursar's office, is exactly the server's key
    assert str(caught.value).endswith(f"[{openssh.host}]:{openssh.port} {openssh.host_key_line}")


def test_a_changed_host_key_is_refused(
    openssh: OpenSsh, remote_dir: Path, tmp_path: Path
) -> None:
    # Another Ed25519 public key recorded for exactly this [host]:port.
    other = openssh.stranger_key_file.with_name(openssh.stranger_key_file.name + ".pub")
    kind, blob = other.read_text().split()[:2]
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[{openssh.host}]:{openssh.port} {kind} {blob}\n")
    endpoint = openssh.endpoint(remote_dir, known_hosts=known_hosts)
    with pytest.raises(SftpError, match=r"host key for \[127\.0\.0\.1\]:\d+ has CHANGED"):
        connect(endpoint, timeout=TIMEOUT)


def test_a_key_the_server_does_not_know_is_refused(
    openssh: OpenSsh, remote_dir: Path
) -> None:
    endpoint = openssh.endpoint(remote_dir, key_file=openssh.stranger_key_file)
    with pytest.raises(SftpError) as caught:
        connect(endpoint, timeout=TIMEOUT)
    assert str(caught.value) == (
        f"BURSAR_SFTP: login as {openssh.user!r} on [{openssh.host}]:{openssh.port} failed "
        f"(key file {openssh.stranger_key_file})"
    )


def test_a_password_is_refused_by_a_key_only_server(
    openssh: OpenSsh, remote_dir: Path
) -> None:
    password = "pw-Zq8!never-print-me"
    endpoint = openssh.endpoint(remote_dir, key_file=None, password=password)
    with pytest.raises(SftpError) as caught:
        connect(endpoint, timeout=TIMEOUT)
    message = str(caught.value)
    assert message.endswith("failed (password)")
    assert password not in message


def test_an_ecdsa_client_key_logs_in(openssh: OpenSsh, remote_dir: Path) -> None:
    (remote_dir / PAYMENTS).write_bytes(b"Emplid\n")
    endpoint = openssh.endpoint(remote_dir, key_file=openssh.ecdsa_key_file)
    with connect(endpoint, timeout=TIMEOUT) as session:
        assert [f.name for f in session.listdir()] == [PAYMENTS]
