"""Fixtures for the Alma client tests: a real SandboxAlma, a client wired to it with tiny
backoffs, and a canned-answer HTTP server for protocol edge cases the sandbox never produces."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from bursar.clients.alma.http import AlmaHttp
from bursar.sandbox.alma_server import SandboxAlma

# A distinctive key, so a leak into any message or log line is easy to spot.
API_KEY = "l7xx-SECRET-KEY-0123456789abcdef"


@pytest.fixture
def sandbox() -> Iterator[SandboxAlma]:
    with SandboxAlma(api_key=API_KEY) as sb:
        yield sb


def make_http(url: str, **overrides: Any) -> AlmaHttp:
    options: dict[str, Any] = dict(calls_per_second=0, connect_timeout=2.0, read_timeout=5.0,
                                   max_retries=4, backoff_base=0.001, backoff_max=0.004)
    options.update(overrides)
    return AlmaHttp(url, options.pop("api_key", API_KEY), **options)


@pytest.fixture
def http(sandbox: SandboxAlma) -> Iterator[AlmaHttp]:
    client = make_http(sandbox.url)
    yield client
    client.close()


class FakeClock:
    """A clock whose sleep() advances it: lets the rate limiter be checked without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class SleepRecorder:
    """Records requested sleeps without sleeping (for backoff and still-loading waits)."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.sleeps.append(seconds)


class CannedServer:
    """Answers requests, in order, with the given (status, body) pairs; records each request's
    path+query.  For Analytics edge cases that the sandbox (a well-behaved Alma) never sends."""

    def __init__(self, answers: list[tuple[int, str]]):
        self.answers = list(answers)
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                outer.requests.append(self.path)
                status, body = outer.answers.pop(0) if outer.answers else (404, "gone")
                data = body.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def canned() -> Iterator[Any]:
    servers: list[CannedServer] = []

    def start(answers: list[tuple[int, str]]) -> CannedServer:
        server = CannedServer(answers)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()
