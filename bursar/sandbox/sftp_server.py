"""A real SSH/SFTP server on 127.0.0.1 for tests and the demo, built on paramiko's server classes.

Why a real server: the upload and payment jobs must be tested against the same protocol, host
key checks, renames and dropped connections they meet in production, not against a mock.

Remote absolute paths map under ``root`` ("/upload/x" -> root/upload/x) and nothing can escape
it.  Faults can be armed to drop the whole connection (or to go silent) mid-transfer, and a
read-only mode refuses every change, like the Bursar's payments account.
"""

from __future__ import annotations

import hmac
import logging
import os
import posixpath
import socket
import threading
from pathlib import Path
from types import TracebackType
from typing import IO, Any, NamedTuple

import paramiko
from paramiko.common import AUTH_FAILED, AUTH_SUCCESSFUL, OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED, OPEN_SUCCEEDED
from paramiko.message import Message

# _VERSION (the protocol version paramiko speaks) is private and missing from types-paramiko.
from paramiko.sftp import (  # type: ignore[attr-defined]
    _VERSION,
    CMD_INIT,
    CMD_VERSION,
    SFTP_FAILURE,
    SFTP_OK,
    SFTP_OP_UNSUPPORTED,
    SFTP_PERMISSION_DENIED,
    SFTPError,
)
from paramiko.sftp_attr import SFTPAttributes
from paramiko.sftp_server import SFTPServer
from paramiko.sftp_si import SFTPServerInterface

__all__ = ["SandboxSftp", "Upload"]

_OPS = ("write", "read")
_LOG_CHANNEL = "bursar.sandbox.sftp"
# Dropped and refused connections are the point of a test server; keep paramiko's warnings
# about them off stderr unless the application has configured logging.
logging.getLogger(_LOG_CHANNEL).addHandler(logging.NullHandler())
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class Upload(NamedTuple):
    """A file that became complete on the server by a rename: its base name and size."""

    name: str
    size: int


class SandboxSftp:
    """An SFTP server in background threads.  ``start()`` returns the ephemeral port.

    ``users`` maps user -> password; ``authorized_keys`` maps user -> public keys accepted.
    ``posix_rename=False`` makes it behave like a server without the OpenSSH posix-rename
    extension (not advertised, and refused), to exercise the client's fallback.
    """

    def __init__(
        self,
        root: Path,
        *,
        users: dict[str, str] | None = None,
        authorized_keys: dict[str, list[paramiko.PKey]] | None = None,
        host_key: paramiko.PKey | None = None,
        read_only: bool = False,
        posix_rename: bool = True,
    ) -> None:
        self.root = Path(root).resolve()
        self.users = dict(users or {})
        self.authorized_keys = {u: list(ks) for u, ks in (authorized_keys or {}).items()}
        self.host_key = host_key if host_key is not None else paramiko.ECDSAKey.generate()
        self.read_only = read_only
        self.posix_rename = posix_rename
        self.port: int | None = None
        self.uploads: list[Upload] = []
        self.connections = 0
        self._lock = threading.Lock()
        # op -> queued faults: (bytes allowed, "drop" or "hang")
        self._faults: dict[str, list[tuple[int, str]]] = {op: [] for op in _OPS}
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._transports: list[paramiko.Transport] = []
        self._stopping = threading.Event()
        # file name -> bytes appended to it right after a client opens it for reading: the
        # Bursar still writing the file while we download it
        self.append_on_read: dict[str, bytes] = {}

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> int:
        """Listen on 127.0.0.1 with an ephemeral port and serve until ``stop()``."""
        if self._listener is not None:
            raise RuntimeError("SandboxSftp is already started")
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        # A short accept timeout lets stop() end the loop promptly on every platform.
        listener.settimeout(0.05)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._stopping.clear()
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"sandbox-sftp-{self.port}", daemon=True
        )
        self._accept_thread.start()
        return self.port

    def stop(self) -> None:
        """Stop accepting, close every connection and wait for the threads to finish."""
        self._stopping.set()
        if self._accept_thread is not None:
            self._accept_thread.join(5)
            self._accept_thread = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            transports, self._transports = self._transports, []
        for transport in transports:
            transport.close()
        for transport in transports:
            transport.join(5)

    def __enter__(self) -> SandboxSftp:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- known_hosts --------------------------------------------------------------------------

    def known_hosts_line(self, host: str = "127.0.0.1") -> str:
        """The known_hosts line a client needs to trust this server."""
        if self.port is None:
            raise RuntimeError("start the server before asking for its known_hosts line")
        return f"[{host}]:{self.port} {self.host_key.get_name()} {self.host_key.get_base64()}"

    def write_known_hosts(self, path: Path) -> None:
        """Append this server's line to a known_hosts file (created if missing)."""
        with open(path, "a", encoding="ascii") as f:
            f.write(self.known_hosts_line() + "\n")

    # -- faults -------------------------------------------------------------------------------

    def drop_after_bytes(self, n: int, *, op: str = "write", times: int = 1) -> None:
        """Make the next ``times`` transfers of kind ``op`` drop the connection after n bytes.

        "write" counts bytes a client uploads into one opened file, "read" bytes it downloads.
        The server keeps the first n bytes of a write, then closes the whole transport.
        """
        self._arm(n, op, times, "drop")

    def hang_after_bytes(self, n: int, *, op: str = "write", times: int = 1) -> None:
        """Make the next ``times`` transfers of kind ``op`` stop answering after n bytes.

        The connection stays open but the server says nothing more until ``stop()``, which is
        how a stuck server looks to a client (it must time out rather than wait forever).
        """
        self._arm(n, op, times, "hang")

    def _arm(self, n: int, op: str, times: int, kind: str) -> None:
        if op not in _OPS:
            raise ValueError(f"op must be one of {_OPS}, not {op!r}")
        if n < 0 or times < 1:
            raise ValueError("n must be >= 0 and times >= 1")
        with self._lock:
            self._faults[op].extend([(n, kind)] * times)

    def _take_fault(self, op: str) -> tuple[int, str] | None:
        with self._lock:
            queue = self._faults[op]
            return queue.pop(0) if queue else None

    # -- internals ----------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            with self._lock:
                self.connections += 1
            try:
                self._serve(conn)
            except Exception:
                conn.close()

    def _serve(self, conn: socket.socket) -> None:
        transport = paramiko.Transport(conn)
        transport.set_log_channel(_LOG_CHANNEL)
        transport.add_server_key(self.host_key)
        transport.set_subsystem_handler("sftp", _SandboxSftpServer, _SandboxInterface)
        with self._lock:
            self._transports.append(transport)
        # With an event the negotiation runs in the transport's own thread, so one slow or
        # refused client never blocks the accept loop.
        transport.start_server(event=threading.Event(), server=_SshServer(self, transport))

    def _record_upload(self, local: str) -> None:
        with self._lock:
            self.uploads.append(Upload(os.path.basename(local), os.stat(local).st_size))

    def _local(self, remote: str) -> str | int:
        """Map a remote path under root, or return SFTP_PERMISSION_DENIED for an escape."""
        parts = [p for p in remote.replace("\\", "/").split("/") if p not in ("", ".")]
        if ".." in parts:
            return SFTP_PERMISSION_DENIED
        local = self.root.joinpath(*parts)
        # Also refuse a symlink inside root that points outside it.
        real = os.path.realpath(local)
        if real != str(self.root) and not real.startswith(str(self.root) + os.sep):
            return SFTP_PERMISSION_DENIED
        return str(local)


def _status(e: OSError) -> int:
    """The SFTP status for a failed file operation (an OSError without an errno is a failure)."""
    return SFTP_FAILURE if e.errno is None else SFTPServer.convert_errno(e.errno)


class _SshServer(paramiko.ServerInterface):
    """Authentication and channel policy for one connection."""

    def __init__(self, sandbox: SandboxSftp, transport: paramiko.Transport) -> None:
        self.sandbox = sandbox
        self.transport = transport

    def get_allowed_auths(self, username: str) -> str:
        return "password,publickey"

    def check_auth_password(self, username: str, password: str) -> int:
        expected = self.sandbox.users.get(username)
        if expected is not None and hmac.compare_digest(
            expected.encode("utf-8"), password.encode("utf-8")
        ):
            return AUTH_SUCCESSFUL
        return AUTH_FAILED

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        for allowed in self.sandbox.authorized_keys.get(username, []):
            if allowed.get_name() == key.get_name() and allowed.asbytes() == key.asbytes():
                return AUTH_SUCCESSFUL
        return AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return OPEN_SUCCEEDED
        return OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED


class _SandboxSftpServer(SFTPServer):
    """paramiko's SFTP subsystem, advertising posix-rename when the sandbox supports it.

    paramiko handles the posix-rename request but never advertises it, so clients that (like
    OpenSSH's and ours) look for the advertisement would never use it.
    """

    # paramiko builds it from the sftp_si class given to set_subsystem_handler (see _serve).
    server: _SandboxInterface

    def _send_server_version(self) -> int:
        # BaseSFTP's packet helpers are private and missing from types-paramiko.
        t, data = self._read_packet()  # type: ignore[attr-defined]
        if t != CMD_INIT:
            raise SFTPError("Incompatible sftp protocol")
        version = int.from_bytes(data[:4], "big")
        pairs = ["check-file", "md5,sha1"]
        if self.server.sandbox.posix_rename:  # self.server is our _SandboxInterface
            pairs += ["posix-rename@openssh.com", "1"]
        msg = Message()
        msg.add_int(_VERSION)
        msg.add(*pairs)
        self._send_packet(CMD_VERSION, msg)  # type: ignore[attr-defined]
        return version


class _Handle(paramiko.SFTPHandle):
    """An open file; counts bytes to fire an armed drop-the-connection fault."""

    # The files paramiko's SFTPHandle reads from and writes to, when set (it looks them up with
    # getattr, so a read-only handle simply has no writefile); the stubs do not declare them.
    readfile: IO[bytes]
    writefile: IO[bytes]

    def __init__(
        self,
        flags: int,
        path: str,
        transport: paramiko.Transport,
        fault: tuple[int, str] | None,
        stopping: threading.Event,
    ) -> None:
        super().__init__(flags)
        self.path = path
        self.transport = transport
        # Bytes allowed before the fault fires, or None; and what it does then.
        self.budget: int | None = fault[0] if fault is not None else None
        self.fault_kind = fault[1] if fault is not None else ""
        self.stopping = stopping
        self.moved = 0
        self.dropped = False

    # paramiko's server always hands over bytes (a decoded packet field); the stubs say any buffer.
    def write(self, offset: int, data: bytes) -> int:  # type: ignore[override]
        if self.dropped:
            # Requests already buffered when the connection was cut are not served.
            return SFTP_FAILURE
        if self.budget is not None and self.moved + len(data) > self.budget:
            keep = self.budget - self.moved
            if keep > 0:
                super().write(offset, data[:keep])
            self._drop()
            return SFTP_FAILURE
        self.moved += len(data)
        result: int = super().write(offset, data)
        return result

    def read(self, offset: int, length: int) -> bytes | int:
        if self.dropped:
            return SFTP_FAILURE
        data = super().read(offset, length)
        if self.budget is not None and isinstance(data, bytes):
            if self.moved + len(data) > self.budget:
                self._drop()
                return SFTP_FAILURE
            self.moved += len(data)
        return data

    def _drop(self) -> None:
        """Close the whole connection as a network failure would, or go silent until stop()."""
        self.dropped = True
        if self.fault_kind == "hang":
            self.stopping.wait()
        self.transport.close()

    def stat(self) -> SFTPAttributes | int:
        try:
            return SFTPAttributes.from_stat(os.stat(self.path))
        except OSError as e:
            return _status(e)


class _SandboxInterface(SFTPServerInterface):
    """File operations for one SFTP session, confined to the sandbox root."""

    def __init__(self, server: _SshServer, *args: Any, **kwargs: Any) -> None:
        super().__init__(server, *args, **kwargs)
        self.server = server
        self.sandbox = server.sandbox

    def _denied_if_read_only(self) -> int | None:
        return SFTP_PERMISSION_DENIED if self.sandbox.read_only else None

    def open(self, path: str, flags: int, attr: SFTPAttributes) -> paramiko.SFTPHandle | int:
        local = self.sandbox._local(path)
        if isinstance(local, int):
            return local
        writing = bool(flags & _WRITE_FLAGS)
        if writing and self.sandbox.read_only:
            return SFTP_PERMISSION_DENIED
        try:
            fd = os.open(local, flags | getattr(os, "O_BINARY", 0), 0o644)
        except OSError as e:
            return _status(e)
        if flags & os.O_APPEND:
            mode = "ab"
        elif flags & os.O_RDWR:
            mode = "r+b"
        elif flags & os.O_WRONLY:
            mode = "wb"
        else:
            mode = "rb"
        f = os.fdopen(fd, mode)
        fault = self.sandbox._take_fault("write" if writing else "read")
        grow = None if writing else self.sandbox.append_on_read.pop(os.path.basename(local), None)
        if grow is not None:
            with open(local, "ab") as more:
                more.write(grow)
        handle = _Handle(flags, local, self.server.transport, fault, self.sandbox._stopping)
        if "r" in mode or "+" in mode:
            handle.readfile = f
        if mode != "rb":
            handle.writefile = f
        return handle

    def list_folder(self, path: str) -> list[SFTPAttributes] | int:
        local = self.sandbox._local(path)
        if isinstance(local, int):
            return local
        try:
            out = []
            for name in sorted(os.listdir(local)):
                attr = SFTPAttributes.from_stat(os.lstat(os.path.join(local, name)))
                attr.filename = name
                out.append(attr)
            return out
        except OSError as e:
            return _status(e)

    def stat(self, path: str) -> SFTPAttributes | int:
        return self._stat(path, os.stat)

    def lstat(self, path: str) -> SFTPAttributes | int:
        return self._stat(path, os.lstat)

    def _stat(self, path: str, how: Any) -> SFTPAttributes | int:
        local = self.sandbox._local(path)
        if isinstance(local, int):
            return local
        try:
            return SFTPAttributes.from_stat(how(local))
        except OSError as e:
            return _status(e)

    def remove(self, path: str) -> int:
        return self._change(path, os.remove)

    def mkdir(self, path: str, attr: SFTPAttributes) -> int:
        return self._change(path, os.mkdir)

    def rmdir(self, path: str) -> int:
        return self._change(path, os.rmdir)

    def chattr(self, path: str, attr: SFTPAttributes) -> int:
        return self._change(path, lambda p: SFTPServer.set_file_attr(p, attr))

    def rename(self, oldpath: str, newpath: str) -> int:
        # SFTP v3 (and OpenSSH) RENAME refuses to replace an existing file.
        return self._rename(oldpath, newpath, replace=False)

    def posix_rename(self, oldpath: str, newpath: str) -> int:
        if not self.sandbox.posix_rename:
            return SFTP_OP_UNSUPPORTED
        return self._rename(oldpath, newpath, replace=True)

    def _rename(self, oldpath: str, newpath: str, *, replace: bool) -> int:
        denied = self._denied_if_read_only()
        if denied is not None:
            return denied
        old, new = self.sandbox._local(oldpath), self.sandbox._local(newpath)
        if isinstance(old, int):
            return old
        if isinstance(new, int):
            return new
        try:
            if replace:
                os.replace(old, new)
            else:
                os.link(old, new)  # fails with EEXIST when new exists, like OpenSSH
                os.unlink(old)
        except OSError as e:
            return _status(e)
        self.sandbox._record_upload(new)
        return SFTP_OK

    def _change(self, path: str, action: Any) -> int:
        denied = self._denied_if_read_only()
        if denied is not None:
            return denied
        local = self.sandbox._local(path)
        if isinstance(local, int):
            return local
        try:
            action(local)
        except OSError as e:
            return _status(e)
        return SFTP_OK

    def canonicalize(self, path: str) -> str:
        return posixpath.normpath("/" + path.replace("\\", "/")).replace("//", "/")
