"""A local HTTP receiver (127.0.0.1, ephemeral port) that records every request: the stand-in for
a Slack webhook or a healthchecks-style monitor in the tests.  It answers `status` with `reply`,
after `delay` seconds when told to (the teardown ends the wait, so no test sits it out)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.endpoints import HOST


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    status: int = 200
    reply: bytes = b"ok"
    delay: float = 0.0
    requests: list[Request] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    base: str = ""  # http://127.0.0.1:PORT
    url: str = ""  # the base and the path the receiver was started with

    @property
    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    def payloads(self) -> list[dict]:
        """The JSON body of every request, in order."""
        return [json.loads(r.body) for r in self.requests]


@contextmanager
def receiver(path: str = "") -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state.requests.append(Request(self.command, self.path, dict(self.headers), body))
            if state.delay:
                state.release.wait(state.delay)
            try:
                self.send_response(state.status)
                self.send_header("Content-Length", str(len(state.reply)))
                self.end_headers()
                self.wfile.write(state.reply)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting (a timeout test)
                pass

        do_GET = do_POST = do_HEAD = _answer  # noqa: N815 - http.server's naming

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((HOST, 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.base = f"http://{HOST}:{server.server_address[1]}"
    state.url = state.base + path
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
