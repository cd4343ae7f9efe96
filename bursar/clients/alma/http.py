"""One HTTP session to Alma: auth header, timeouts, a shared rate limiter, retries, error envelopes.

Why a module of its own: every Alma call (Analytics pages, fee look-ups, payments) must obey the
same rules (docs/alma.md §9-§12): the key travels only in the `Authorization` header, every attempt waits
for a slot of the institution-wide calls-per-second budget, GETs are retried on transient
failures, and a POST `op=pay` is never retried once it may have reached Alma, because paying
twice is worse than stopping (the caller re-reads the fee instead, docs/alma.md §7).
"""

from __future__ import annotations

import json
import logging
import random
import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import requests

from bursar.errors import AlmaDailyLimitError, AlmaError

log = logging.getLogger(__name__)

ALMA_ERROR_NS = "http://com/exlibris/urm/general/xmlbeans"
PER_SECOND_THRESHOLD = "PER_SECOND_THRESHOLD"
DAILY_THRESHOLD = "DAILY_THRESHOLD"
_BARE_TEXT_LIMIT = 200


class AlmaUncertain(AlmaError):
    """A POST whose outcome is unknown (timeout, dropped connection, 5xx after sending).

    Alma may or may not have applied it; the caller must look before trying again.
    """


REMAINING_HEADER = "X-Exl-Api-Remaining"


class AlmaDailyReserveError(AlmaDailyLimitError):
    """The calls left today (X-Exl-Api-Remaining) reached ALMA_DAILY_RESERVE: the run stops
    calling Alma, so the institution's other integrations keep their share of the quota."""


class AlmaHttpError(AlmaError):
    """Alma answered with an error status.  `error_message` is Alma's own errorMessage text,
    kept apart from the human message so callers can match on it (e.g. the closed-fee case)."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 error_message: str | None = None):
        super().__init__(message, status=status, code=code)
        self.error_message = error_message


class RateLimiter:
    """A smooth schedule shared by all threads: call k may start no earlier than call k-1 + 1/rate.

    A slot is reserved under the lock and slept for outside it, so threads queue fairly and
    never hold the lock while waiting.  A budget <= 0 disables limiting.
    """

    def __init__(self, calls_per_second: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self._interval = 1.0 / calls_per_second if calls_per_second > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._last_slot: float | None = None

    def acquire(self) -> None:
        """Block until this caller's slot in the schedule has come."""
        if self._interval <= 0:
            return
        with self._lock:
            now = self._clock()
            slot = now if self._last_slot is None else max(now, self._last_slot + self._interval)
            self._last_slot = slot
        wait = slot - now
        if wait > 0:
            self._sleep(wait)


def parse_error_envelope(body: bytes | str, content_type: str | None) -> tuple[str | None, str | None]:
    """(errorCode, errorMessage) from any of the shapes Alma and its gateway answer with.

    Accepted: the XML `web_service_result` (matched by namespace URI, any prefix), the JSON API
    form (`errorList.error` a list), the JSON gateway form (wrapped in `web_service_result`,
    `error` a single object), and bare text such as "Invalid API Key" (code None, text
    truncated to 200 characters).  Several errors: the first code, messages joined by "; ".
    Nothing usable: (None, None).
    """
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    stripped = text.strip()
    if not stripped:
        return None, None
    ctype = (content_type or "").lower()
    parsers: list[Callable[[str], list[tuple[str | None, str | None]] | None]]
    if "json" in ctype or stripped.startswith(("{", "[")):
        parsers = [_errors_from_json, _errors_from_xml]
    else:
        parsers = [_errors_from_xml, _errors_from_json]
    for parser in parsers:
        errors = parser(stripped)
        if errors:
            codes = [c for c, _ in errors if c]
            messages = [m for _, m in errors if m]
            return (codes[0] if codes else None), ("; ".join(messages) if messages else None)
    if stripped.startswith("<"):  # markup that is not an Alma envelope (an HTML error page)
        return None, None
    return None, stripped[:_BARE_TEXT_LIMIT]


def _errors_from_xml(text: str) -> list[tuple[str | None, str | None]] | None:
    if not text.startswith("<"):
        return None
    try:
        root = ET.fromstring(text.encode("utf-8"))
    except ET.ParseError:
        return None
    errors = []
    for el in root.iter(f"{{{ALMA_ERROR_NS}}}error"):
        code = el.findtext(f"{{{ALMA_ERROR_NS}}}errorCode")
        message = el.findtext(f"{{{ALMA_ERROR_NS}}}errorMessage")
        errors.append(((code or "").strip() or None, (message or "").strip() or None))
    return errors or None


def _errors_from_json(text: str) -> list[tuple[str | None, str | None]] | None:
    try:
        doc = json.loads(text, parse_float=Decimal)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    wrapper = doc.get("web_service_result")
    if isinstance(wrapper, dict):
        doc = wrapper
    error_list = doc.get("errorList")
    if not isinstance(error_list, dict):
        return None
    raw = error_list.get("error")
    items = raw if isinstance(raw, list) else [raw]
    errors = []
    for item in items:
        if not isinstance(item, dict):
            continue
        code, message = item.get("errorCode"), item.get("errorMessage")
        errors.append((str(code).strip() or None if code is not None else None,
                       str(message).strip() or None if message is not None else None))
    return errors or None


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and what it wraps: requests -> urllib3 (args[0], .reason) -> the socket error."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        reason = getattr(current, "reason", None)
        first = current.args[0] if current.args else None
        todo += [c for c in (reason, first) if isinstance(c, BaseException)]
        todo += [current.__cause__, current.__context__]


def _describe_failure(exc: requests.RequestException) -> str:
    """A short, URL-free description of a transport failure (requests' own text has the URL)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "connection timed out"
    if isinstance(exc, requests.exceptions.Timeout):
        return "timed out waiting for Alma's answer"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS error"
    if isinstance(exc, requests.exceptions.ConnectionError):
        for cause in _causes(exc):
            if isinstance(cause, ConnectionRefusedError):
                return "connection refused"
            if isinstance(cause, socket.gaierror):
                return "host name not found"
            if isinstance(cause, ConnectionResetError):
                return "connection reset"
        return "connection failed or was dropped"
    return f"request failed ({type(exc).__name__})"


def _host(base_url: str) -> str:
    """host[:port] of the base URL, for messages (no credentials, no path)."""
    parts = urlsplit(base_url)
    if not parts.hostname:
        return base_url
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{parts.port}" if parts.port else host


def _wait(seconds: float) -> str:
    """Seconds for a message: "4", "0.75", "30"."""
    return f"{seconds:.0f}" if seconds >= 10 else f"{seconds:.2g}"


class AlmaHttp:
    """The one session every Alma call goes through (see module docstring for the rules)."""

    def __init__(self, base_url: str, api_key: str, *, calls_per_second: float = 10.0,
                 connect_timeout: float = 10.0, read_timeout: float = 120.0, max_retries: int = 6,
                 backoff_base: float = 0.5, backoff_max: float = 30.0,
                 sleep: Callable[[float], None] = time.sleep, limiter: RateLimiter | None = None,
                 daily_reserve: int = 0):
        self.base_url = base_url.rstrip("/")
        self.host = _host(self.base_url)
        self._api_key = api_key
        self._timeout = (connect_timeout, read_timeout)
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._sleep = sleep
        self.limiter = limiter if limiter is not None else RateLimiter(calls_per_second)
        # The daily quota is the institution's: every answer says how many calls are left today
        self.daily_reserve = daily_reserve
        self.calls = 0                      # requests sent by this client
        self.remaining: int | None = None   # X-Exl-Api-Remaining of the latest answer
        self._quota_lock = threading.Lock()
        self._session = requests.Session()
        # The header, never the `apikey` query parameter: URLs end up in logs and proxies.
        self._session.headers["Authorization"] = f"apikey {api_key}"

    # -- public calls -------------------------------------------------------------------------

    def get(self, path: str, params: Mapping[str, Any] | None = None, *,
            accept: str = "application/json", stream: bool = False) -> requests.Response:
        """GET with retries on 429 PER_SECOND_THRESHOLD, 5xx and transport errors.

        With stream=True a successful response is returned unread; the caller closes it.
        """
        attempt = 0
        while True:
            self.limiter.acquire()
            try:
                resp = self._send("GET", path, params, accept, stream)
            except requests.RequestException as exc:
                reason = f"Alma at {self.host} not reachable ({_describe_failure(exc)})"
                if attempt >= self.max_retries:
                    raise AlmaError(self._clean(
                        f"GET {self._bare(path)}: {reason}; gave up after {attempt + 1} "
                        f"attempt{'s' if attempt else ''} (check ALMA_API_URL and the network)")) from None
                self._backoff("GET", path, reason, attempt)
                attempt += 1
                continue
            if resp.status_code < 400:
                return resp
            code, message = self._read_error(resp)
            if resp.status_code == 429 and code == DAILY_THRESHOLD:
                raise self._daily_limit("GET", path)
            retryable = resp.status_code == 429 or (
                resp.status_code >= 500 and not (message or "").startswith("Path not found"))
            if retryable and attempt < self.max_retries:
                self._backoff("GET", path, f"Alma at {self.host} answered HTTP {resp.status_code} {code or ''}".strip(),
                              attempt)
                attempt += 1
                continue
            raise self._http_error("GET", path, resp.status_code, code, message)

    def post(self, path: str, params: Mapping[str, Any] | None = None, *,
             accept: str = "application/json") -> requests.Response:
        """POST without a body.  Only a 429 PER_SECOND_THRESHOLD is retried (Alma refused it
        without processing); anything whose outcome is unknown raises AlmaUncertain."""
        attempt = 0
        while True:
            self.limiter.acquire()
            try:
                resp = self._send("POST", path, params, accept, False)
            except requests.RequestException as exc:
                raise AlmaUncertain(self._clean(
                    f"POST {self._bare(path)}: Alma at {self.host}: {_describe_failure(exc)}; outcome unknown, "
                    "check Alma before trying again")) from None
            if resp.status_code < 400:
                return resp
            code, message = self._read_error(resp)
            if resp.status_code == 429 and code == DAILY_THRESHOLD:
                raise self._daily_limit("POST", path)
            if resp.status_code == 429 and attempt < self.max_retries:
                self._backoff("POST", path, f"Alma at {self.host} answered HTTP 429 {code or ''}".strip(), attempt)
                attempt += 1
                continue
            if resp.status_code >= 500:
                detail = " ".join(p for p in (code, message) if p)
                raise AlmaUncertain(self._clean(
                    f"POST {self._bare(path)}: HTTP {resp.status_code} {detail}".rstrip()
                    + "; outcome unknown, check Alma before trying again"),
                    status=resp.status_code, code=code)
            raise self._http_error("POST", path, resp.status_code, code, message)

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> AlmaHttp:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------------

    def quota_line(self, calls_before: int = 0) -> str:
        """For the summary: the calls made since `calls_before` and the calls left today."""
        left = "unknown" if self.remaining is None else f"{self.remaining:,}"
        return (f"Alma API calls: {self.calls - calls_before:,} made, {left} left today "
                f"(reserve {self.daily_reserve:,})")

    def _send(self, method: str, path: str, params: Mapping[str, Any] | None, accept: str,
              stream: bool) -> requests.Response:
        if params and any(str(k).lower() == "apikey" for k in params):
            raise ValueError("the API key must not be passed as a query parameter")
        with self._quota_lock:
            if self.remaining is not None and self.remaining - 1 < self.daily_reserve:
                raise AlmaDailyReserveError(
                    f"{method} {self._bare(path)}: not sent: Alma has {self.remaining:,} API calls left "
                    f"today and ALMA_DAILY_RESERVE keeps {self.daily_reserve:,} for the institution's "
                    "other integrations; the run stopped, try again tomorrow (or lower ALMA_DAILY_RESERVE)",
                    status=None, code="ALMA_DAILY_RESERVE")
            self.calls += 1
        resp = self._session.request(method, self.base_url + path, params=params,
                                     headers={"Accept": accept}, timeout=self._timeout,
                                     stream=stream)
        header = resp.headers.get(REMAINING_HEADER)
        if header is not None:
            try:
                left = int(header.strip())
            except ValueError:
                log.debug("unusable %s header %r", REMAINING_HEADER, header)
            else:
                with self._quota_lock:
                    # answers of parallel calls may arrive out of order: the lowest count is the latest
                    self.remaining = left if self.remaining is None else min(self.remaining, left)
        return resp

    def _read_error(self, resp: requests.Response) -> tuple[str | None, str | None]:
        """Parse the error envelope and release the connection."""
        try:
            body = resp.content
        except requests.RequestException:
            body = b""
        finally:
            resp.close()
        return parse_error_envelope(body, resp.headers.get("Content-Type"))

    def _backoff(self, method: str, path: str, reason: str, attempt: int) -> None:
        cap = min(self.backoff_max, self.backoff_base * (2 ** attempt))
        delay = random.uniform(cap / 2, cap)
        log.warning("%s; retry %d of %d in %s s (%s %s)", self._clean(reason), attempt + 1,
                    self.max_retries, _wait(delay), method, self._bare(path))
        self._sleep(delay)

    def _daily_limit(self, method: str, path: str) -> AlmaDailyLimitError:
        return AlmaDailyLimitError(
            f"{method} {self._bare(path)}: Alma's daily API limit is reached (DAILY_THRESHOLD); "
            "try again tomorrow", status=429, code=DAILY_THRESHOLD)

    def _http_error(self, method: str, path: str, status: int, code: str | None,
                    message: str | None) -> AlmaHttpError:
        detail = " ".join(p for p in (code, message) if p)
        text = f"{method} {self._bare(path)}: HTTP {status}" + (f" {detail}" if detail else "")
        return AlmaHttpError(self._clean(text), status=status, code=code,
                             error_message=self._clean(message) if message else None)

    def _clean(self, text: str) -> str:
        """Belt and braces: never let the key slip into a message, whatever Alma echoed."""
        return text.replace(self._api_key, "***") if self._api_key else text

    @staticmethod
    def _bare(path: str) -> str:
        return path.split("?", 1)[0]
