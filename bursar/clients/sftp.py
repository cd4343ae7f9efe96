"""SFTP client for the Bursar upload and the payments pull, with host-key checking.

Why this module exists (docs/original-defects.md §17-§20): the original connected without checking the
server's host key, only by password, never closed its sessions, counted a size mismatch as a
success and exited 0 on errors.  Here:

- the server's key must already be in ``SFTP_KNOWN_HOSTS``; an unknown key is refused and a
  changed key is reported as CHANGED (possible man-in-the-middle);
- password or private-key authentication, never an agent or ``~/.ssh`` keys behind our back;
- an upload goes to ``.<name>.part``, is renamed to ``<name>`` and then verified (size, then
  sha256 read back), so the Bursar never sees a half-written file under its real name;
- a download is written to a local temporary file, verified, fsynced and renamed, and never
  changes anything on the server (the payments account may be read-only);
- every socket has a timeout, sessions are always closed, and every failure is a one-line
  :class:`~bursar.errors.SftpError` that never contains the password.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import logging
import os
import posixpath
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import NoReturn

import paramiko
from paramiko.message import Message

# _VERSION (the protocol version paramiko speaks) is private and missing from types-paramiko.
from paramiko.sftp import _VERSION, CMD_INIT, CMD_VERSION, SFTPError  # type: ignore[attr-defined]

from bursar.errors import SettingsError, SftpError
from bursar.runtime import crash, fs

__all__ = ["RemoteFile", "SftpEndpoint", "SftpSession", "connect"]

# The OpenSSH extension that renames over an existing file atomically.
_POSIX_RENAME = "posix-rename@openssh.com"

# paramiko's log channel.  Its lines ("Connected (version 2.0 ...)", "Authentication
# (password) successful!", tracebacks of transport threads) belong in the log file, never on
# the console: every failure already becomes one SftpError message.
SSH_LOG = "bursar.clients.sftp.ssh"


class _FileOnly(logging.Handler):
    """Hands paramiko's records to the 'bursar' handlers marked file-only (the console handler
    drops those), so they are kept in the log file and never printed."""

    def emit(self, record: logging.LogRecord) -> None:
        record.file_only = True
        logging.getLogger("bursar").handle(record)


_ssh_log = logging.getLogger(SSH_LOG)
_ssh_log.propagate = False
_ssh_log.addHandler(_FileOnly())


@dataclass(frozen=True)
class SftpEndpoint:
    """Where and how to reach one SFTP account.

    ``label`` is the settings prefix ("BURSAR_SFTP" or "PAYMENTS_SFTP"); it starts every error
    message so an operator knows which server and which settings to look at.
    """

    label: str
    host: str
    port: int
    user: str
    password: str | None = field(repr=False)
    key_file: Path | None
    directory: str
    known_hosts: Path

    def __post_init__(self) -> None:
        if not self.directory.startswith("/"):
            raise SettingsError(
                f"{self.label}_DIR must be an absolute path on the server, got {self.directory!r}"
            )

    def __repr__(self) -> str:
        # Written out so the password can never leak through a log of the endpoint.
        return (
            f"SftpEndpoint(label={self.label!r}, host={self.host!r}, port={self.port}, "
            f"user={self.user!r}, password={'***' if self.password else None}, "
            f"key_file={self.key_file!r}, directory={self.directory!r}, "
            f"known_hosts={self.known_hosts!r})"
        )


@dataclass(frozen=True)
class RemoteFile:
    """A regular file in the endpoint's directory; ``mtime`` is in seconds since the epoch."""

    name: str
    size: int
    mtime: int


class _UnknownHostKey(paramiko.SSHException):
    """Raised by our policy so that an unknown key is told apart from other SSH failures;
    carries the key the server offered (for its fingerprint and the known_hosts line)."""

    def __init__(self, hostname: str, key: paramiko.PKey) -> None:
        super().__init__(hostname)
        self.hostname = hostname
        self.key = key


class _RefuseUnknownHost(paramiko.RejectPolicy):
    """paramiko's RejectPolicy, but with an exception type we can recognise."""

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> NoReturn:
        raise _UnknownHostKey(hostname, key)


def fingerprint(key: paramiko.PKey) -> str:
    """The key's SHA256 fingerprint as OpenSSH shows it: ``SHA256:`` + base64 without padding."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def known_hosts_name(host: str, port: int) -> str:
    """How known_hosts names a server: ``host`` on port 22, ``[host]:port`` otherwise."""
    return host if port == 22 else f"[{host}]:{port}"


def known_hosts_line(host: str, port: int, key: paramiko.PKey) -> str:
    """The exact known_hosts line that trusts ``key`` for the server."""
    return f"{known_hosts_name(host, port)} {key.get_name()} {key.get_base64()}"


_KEY_TYPE = re.compile(r"[a-z0-9.@]+(-[a-z0-9.@]+)+")  # ssh-ed25519, ecdsa-sha2-nistp256, ...


class _BadKnownHosts(Exception):
    """The known_hosts file cannot be used; the message says why, with the line number."""


def read_known_hosts(path: Path) -> list[paramiko.hostkeys.HostKeyEntry]:
    """The entries of a known_hosts file, read line by line so that a bad line is reported by
    its number (paramiko's own loader reports a Python tuple, and stops at a valid
    ``@cert-authority`` line).  Blank lines, comments and @-marker lines (which paramiko does
    not support) are skipped, and so are key types paramiko does not know (a real file may
    hold them)."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise _BadKnownHosts(e.strerror or type(e).__name__) from None
    entries = []
    for number, raw in enumerate(data.splitlines(), start=1):
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise _BadKnownHosts(f"line {number} is not UTF-8 text") from None
        if not line or line.startswith(("#", "@")):
            continue
        fields = line.split()
        not_an_entry = _BadKnownHosts(
            f"line {number} is not a known_hosts entry (expected: host key-type base64-key)"
        )
        if len(fields) < 3:
            raise not_an_entry
        try:
            entry = paramiko.hostkeys.HostKeyEntry.from_line(line, number)
        except Exception:  # bad base64 (InvalidHostKey), or key bytes the key type cannot hold
            if not _KEY_TYPE.fullmatch(fields[1]):
                raise not_an_entry from None
            raise _BadKnownHosts(f"line {number} has a {fields[1]} key that cannot be read") from None
        if entry is not None:  # None: a key type paramiko does not know
            entries.append(entry)
    return entries


class _SftpClient(paramiko.SFTPClient):
    """An SFTPClient that remembers the extensions the server advertised in its VERSION reply.

    paramiko reads the reply and throws the extension list away; we need it to know whether
    ``posix-rename@openssh.com`` may be used (as OpenSSH's own sftp client does).
    """

    server_extensions: dict[str, bytes]

    def _send_version(self) -> int:
        # Mirrors paramiko.sftp.BaseSFTP._send_version, keeping the extension pairs.
        self.server_extensions = {}
        m = Message()
        m.add_int(_VERSION)
        # BaseSFTP's packet helpers are private and missing from types-paramiko.
        self._send_packet(CMD_INIT, m)  # type: ignore[attr-defined]
        t, data = self._read_packet()  # type: ignore[attr-defined]
        if t != CMD_VERSION:
            raise SFTPError("Incompatible sftp protocol")
        reply = Message(data)
        version = reply.get_int()
        try:
            while reply.get_remainder():
                name = reply.get_text()
                self.server_extensions[name] = reply.get_binary()
        except Exception:  # a malformed extension list only costs us the fast path
            pass
        return version


def connect(endpoint: SftpEndpoint, *, timeout: float = 30.0) -> SftpSession:
    """Open an SFTP session, refusing any server whose host key is not in known_hosts.

    ``timeout`` bounds the TCP connect, the SSH banner, authentication, opening the channel and
    every later read on it, so a hung server fails the run instead of hanging it.
    """
    label = endpoint.label
    known_hosts = endpoint.known_hosts
    if known_hosts.is_dir():
        raise SftpError(
            f"{label}: known_hosts file {known_hosts} (SFTP_KNOWN_HOSTS) is a folder, not a file"
        )
    if not known_hosts.is_file():
        raise SftpError(
            f"{label}: known_hosts file {known_hosts} does not exist (set SFTP_KNOWN_HOSTS)"
        )
    try:
        trusted = read_known_hosts(known_hosts)
    except _BadKnownHosts as e:
        raise SftpError(
            f"{label}: cannot read known_hosts file {known_hosts} (SFTP_KNOWN_HOSTS): {e}"
        ) from None
    pkey = _load_key(endpoint) if endpoint.key_file is not None else None
    if pkey is None and not endpoint.password:
        raise SftpError(
            f"{label}: neither {label}_PASSWORD nor {label}_KEY_FILE is set; cannot log in"
        )

    client = paramiko.SSHClient()
    client.set_log_channel(SSH_LOG)  # paramiko's own log: to the log file only (see _FileOnly)
    try:
        host_keys = client.get_host_keys()
        for entry in trusted:
            for name in entry.hostnames:
                host_keys.add(name, entry.key.get_name(), entry.key)
        client.set_missing_host_key_policy(_RefuseUnknownHost())
        try:
            client.connect(
                endpoint.host,
                port=endpoint.port,
                username=endpoint.user,
                # With a key, the password is not offered: it is not a key passphrase.
                password=None if pkey is not None else endpoint.password,
                pkey=pkey,
                timeout=timeout,
                banner_timeout=timeout,
                auth_timeout=timeout,
                channel_timeout=timeout,
                allow_agent=False,
                look_for_keys=False,
            )
            transport = client.get_transport()
            assert transport is not None
            sftp = _SftpClient.from_transport(transport)
            if sftp is None:
                raise paramiko.SSHException("the server refused an SFTP channel")
            channel = sftp.get_channel()
            if channel is None:  # from_transport always opens one; the stubs allow None
                raise paramiko.SSHException("the server refused an SFTP channel")
            channel.settimeout(timeout)
        except (paramiko.SSHException, OSError, EOFError) as e:
            raise _connect_error(e, endpoint, using_key=pkey is not None, timeout=timeout) from None
    except BaseException:
        client.close()
        raise
    return SftpSession(endpoint, client, sftp, timeout=timeout)


def _connect_error(
    e: BaseException, endpoint: SftpEndpoint, *, using_key: bool, timeout: float
) -> SftpError:
    """The one-line message for a failed connect: host key, login, or network."""
    label, where = endpoint.label, f"[{endpoint.host}]:{endpoint.port}"
    known_hosts = endpoint.known_hosts
    if isinstance(e, _UnknownHostKey):
        return SftpError(
            f"{label}: host key for {where} is not in SFTP_KNOWN_HOSTS ({known_hosts}); "
            f"refusing to connect. The server offered the {e.key.get_name()} key "
            f"{fingerprint(e.key)}; check that fingerprint with the Bursar's office, and once it "
            f"matches add this line to {known_hosts}: "
            f"{known_hosts_line(endpoint.host, endpoint.port, e.key)}"
        )
    if isinstance(e, paramiko.BadHostKeyException):
        return SftpError(
            f"{label}: host key for {where} has CHANGED since it was recorded in "
            f"SFTP_KNOWN_HOSTS ({known_hosts}); refusing to connect (possible "
            f"man-in-the-middle). The server now offers the {e.key.get_name()} key "
            f"{fingerprint(e.key)}, the recorded one is {fingerprint(e.expected_key)}; check the "
            "new fingerprint with the Bursar's office, and only once it matches replace the line "
            f"for {known_hosts_name(endpoint.host, endpoint.port)} in {known_hosts} with: "
            f"{known_hosts_line(endpoint.host, endpoint.port, e.key)}"
        )
    if isinstance(e, paramiko.AuthenticationException):
        how = f"key file {endpoint.key_file}" if using_key else "password"
        return SftpError(f"{label}: login as {endpoint.user!r} on {where} failed ({how})")
    if isinstance(e, paramiko.ssh_exception.NoValidConnectionsError):
        return SftpError(f"{label}: connection to {where} refused")
    if isinstance(e, TimeoutError):
        return SftpError(f"{label}: connecting to {where} timed out after {timeout:g}s")
    if isinstance(e, paramiko.SSHException) and _is_handshake_timeout(e):
        return SftpError(f"{label}: no SSH handshake from {where} within {timeout:g}s")
    return SftpError(f"{label}: cannot connect to {where}: {_reason(e, endpoint)}")


def _load_key(endpoint: SftpEndpoint) -> paramiko.PKey:
    """Read an unencrypted private key of any type paramiko knows (Ed25519, ECDSA, RSA)."""
    setting = f"{endpoint.label}_KEY_FILE"
    path = endpoint.key_file
    assert path is not None
    if not path.is_file():
        raise SftpError(f"{endpoint.label}: key file {path} ({setting}) does not exist")
    for key_class in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return key_class.from_private_key_file(str(path))
        except paramiko.PasswordRequiredException:
            raise SftpError(
                f"{endpoint.label}: key file {path} ({setting}) is protected by a passphrase; "
                "passphrases are not supported, use an unencrypted key readable only by this "
                "account"
            ) from None
        except (paramiko.SSHException, ValueError, TypeError, IndexError):
            continue
        except OSError as e:
            raise SftpError(
                f"{endpoint.label}: cannot read key file {path} ({setting}): "
                f"{e.strerror or type(e).__name__}"
            ) from None
    raise SftpError(
        f"{endpoint.label}: key file {path} ({setting}) is not an Ed25519, ECDSA or RSA "
        "private key"
    )


def _is_handshake_timeout(e: paramiko.SSHException) -> bool:
    """paramiko reports a server that never completes the handshake only through messages:
    the banner read timing out, or (when negotiation ran out of time) no session at all."""
    text = str(e)
    return text.startswith("Error reading SSH protocol banner") or text == "No existing session"


def _reason(e: BaseException, endpoint: SftpEndpoint) -> str:
    """One short phrase for an exception, with the password scrubbed out just in case."""
    if isinstance(e, TimeoutError):
        text = "timed out"
    elif isinstance(e, EOFError):
        text = "connection closed by the server"
    elif isinstance(e, OSError) and e.errno == errno.ENOENT:
        text = "no such file"
    elif isinstance(e, OSError) and e.errno == errno.EACCES:
        text = "permission denied"
    elif isinstance(e, OSError) and e.strerror:
        text = e.strerror
    else:
        text = str(e) or type(e).__name__
    text = " ".join(text.split()).rstrip(" :")  # one line, no dangling colon
    if endpoint.password:
        text = text.replace(endpoint.password, "***")
    return text


class SftpSession:
    """An open session on one endpoint's directory.  Use it as a context manager.

    File names passed in are plain names inside ``endpoint.directory``; a name with a slash or
    a dot-only name is refused so nothing can be written elsewhere.
    """

    def __init__(
        self,
        endpoint: SftpEndpoint,
        client: paramiko.SSHClient,
        sftp: _SftpClient,
        *,
        timeout: float,
    ) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self._client = client
        self._sftp = sftp

    def __enter__(self) -> SftpSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SftpSession({self.endpoint!r})"

    def close(self) -> None:
        """Close the SFTP channel, then always the transport and client (docs/original-defects.md §17)."""
        try:
            self._sftp.close()
        except Exception:
            pass
        finally:
            self._client.close()

    # -- queries ------------------------------------------------------------------------------

    def listdir(self) -> list[RemoteFile]:
        """The regular files in the directory, sorted by name (directories are left out)."""
        with self._errors(f"listing {self.endpoint.directory}"):
            entries = self._sftp.listdir_attr(self.endpoint.directory)
        files = [
            RemoteFile(a.filename, int(a.st_size or 0), int(a.st_mtime or 0))
            for a in entries
            if a.st_mode is None or stat.S_ISREG(a.st_mode)
        ]
        return sorted(files, key=lambda f: f.name)

    def size(self, name: str) -> int | None:
        """The size of ``name`` in the directory, or None when there is no such file."""
        path = self._path(name)
        with self._errors(f"checking {path}"):
            try:
                return int(self._sftp.stat(path).st_size or 0)
            except OSError as e:
                if e.errno == errno.ENOENT:
                    return None
                raise

    def stat(self, name: str) -> RemoteFile | None:
        """``name``'s size and modification time now, or None when there is no such file."""
        path = self._path(name)
        with self._errors(f"checking {path}"):
            try:
                a = self._sftp.stat(path)
            except OSError as e:
                if e.errno == errno.ENOENT:
                    return None
                raise
        return RemoteFile(name, int(a.st_size or 0), int(a.st_mtime or 0))

    def sha256(self, name: str) -> str | None:
        """The sha256 of ``name``'s content on the server (read back in full), or None when
        there is no such file.  What "delivered" means: the same bytes, not the same size."""
        path = self._path(name)
        digest = hashlib.sha256()
        with self._errors(f"reading back {path}"):
            try:
                with self._sftp.open(path, "rb") as remote:
                    for chunk in iter(lambda: remote.read(65536), b""):
                        digest.update(chunk)
            except OSError as e:
                if e.errno == errno.ENOENT:
                    return None
                raise
        return digest.hexdigest()

    # -- transfers ----------------------------------------------------------------------------

    def upload_verified(self, local: Path, name: str) -> int:
        """Upload ``local`` as ``name``: write ``.<name>.part``, rename, verify the size.

        Returns the size.  On any failure the temporary file is removed if the connection still
        allows it (otherwise the next upload removes the stale one first) and SftpError is
        raised; ``name`` itself only ever appears complete.
        """
        final = self._path(name)
        temp = self._path(f".{name}.part")
        try:
            local_size = local.stat().st_size
        except OSError as e:
            raise SftpError(
                f"{self.endpoint.label}: cannot read local file {local}: "
                f"{e.strerror or type(e).__name__}"
            ) from None
        try:
            with self._errors(f"removing stale {temp}"):
                self._remove_if_present(temp)
            with self._errors(f"uploading {local.name} to {temp}"):
                self._sftp.put(str(local), temp, confirm=True)
            crash.point("sftp.after_put")
            with self._errors(f"renaming {temp} to {final}"):
                self._rename_over(temp, final)
            with self._errors(f"checking {final}"):
                remote_size = int(self._sftp.stat(final).st_size or 0)
            if remote_size != local_size:
                raise SftpError(
                    f"{self.endpoint.label}: verification failed for {final}: the server has "
                    f"{remote_size} bytes, the local file has {local_size}"
                )
            if self.sha256(name) != file_sha256(local):
                raise SftpError(
                    f"{self.endpoint.label}: verification failed for {final}: the content read "
                    "back differs from the local file"
                )
        except SftpError:
            self._try_remove(temp)
            raise
        return local_size

    def download(self, name: str, local: Path) -> int:
        """Copy ``name`` to ``local`` atomically; returns the size.  The server is not changed.

        The bytes go to a temporary file next to ``local`` which is checked against the
        remote size, fsynced, made 0600 and renamed into place (``fs.atomic_file``); on
        failure nothing new is left at ``local`` and no temporary file remains.
        """
        path = self._path(name)
        with self._errors(f"checking {path}"):
            remote_size = int(self._sftp.stat(path).st_size or 0)
        opened = False
        try:
            with fs.atomic_file(local, suffix=".part") as out:
                opened = True
                with self._errors(f"downloading {path}"):
                    # No prefetch: paramiko's prefetch thread dies with an unhandled
                    # exception when the connection drops; payment files are small.
                    received = self._sftp.getfo(path, out, prefetch=False)
                out.flush()
                written = os.fstat(out.fileno()).st_size
                if received != remote_size or written != remote_size:
                    raise SftpError(
                        f"{self.endpoint.label}: verification failed for {path}: the server "
                        f"reported {remote_size} bytes, {written} arrived"
                    )
        except OSError as e:
            where = f"write {local}" if opened else f"write in {local.parent}"
            raise SftpError(
                f"{self.endpoint.label}: cannot {where}: {e.strerror or type(e).__name__}"
            ) from None
        return remote_size

    def remove(self, name: str) -> None:
        """Remove ``name`` from the directory (only doctor's probe file: pyBursar never removes
        the Bursar's files)."""
        path = self._path(name)
        with self._errors(f"removing {path}"):
            self._remove_if_present(path)

    # -- internals ----------------------------------------------------------------------------

    def _path(self, name: str) -> str:
        if not name or "/" in name or name in (".", ".."):
            raise SftpError(f"{self.endpoint.label}: {name!r} is not a plain file name")
        return posixpath.join(self.endpoint.directory, name)

    def _remove_if_present(self, path: str) -> None:
        try:
            self._sftp.remove(path)
        except OSError as e:
            if e.errno != errno.ENOENT:
                raise

    def _rename_over(self, source: str, target: str) -> None:
        """Rename, replacing ``target``: atomically when the server offers posix-rename.

        Plain SFTP v3 RENAME fails when the target exists, so without the extension an
        existing target is removed first (a brief window where neither name exists).
        """
        if _POSIX_RENAME in self._sftp.server_extensions:
            self._sftp.posix_rename(source, target)
            return
        self._remove_if_present(target)
        self._sftp.rename(source, target)

    def _try_remove(self, path: str) -> None:
        """Best-effort cleanup after a failure; the connection may already be gone."""
        try:
            self._remove_if_present(path)
        except Exception:
            pass

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Turn transport and protocol failures into one-line SftpErrors."""
        try:
            yield
        except SftpError:
            raise
        except TimeoutError:
            # A late reply would desynchronise the request stream, and any cleanup would only
            # wait again: a session that timed out is closed and every later call fails fast.
            self.close()
            raise SftpError(
                f"{self.endpoint.label}: {action} timed out after {self.timeout:g}s"
            ) from None
        except (paramiko.SSHException, OSError, EOFError) as e:
            raise SftpError(
                f"{self.endpoint.label}: {action} failed: {_reason(e, self.endpoint)}"
            ) from None


def file_sha256(path: Path) -> str:
    """The sha256 of a local file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(65536), b""):
            digest.update(chunk)
    return digest.hexdigest()
