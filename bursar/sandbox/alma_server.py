"""A local Alma: Analytics reports and users' fees over real HTTP, in Alma's own formats.

Why a real server: the client's rules (auth header, paging, retries, uncertain POSTs) are only
worth anything if they are exercised against real sockets.  The sandbox speaks what docs/alma.md
describes: report pages with a ResumptionToken and schema on page 1 only, `Column0` always "0",
null cells omitted, 420033 after the last page, error envelopes in XML, JSON API and JSON
gateway forms, 429 thresholds, and the fee API's closed-fee answer.  Faults can be injected
(5xx, 429, slow, dropped sockets, still-loading pages, a pay applied then dropped).

Rows are stored compactly: one pre-escaped string per row, cells joined by \\x1f, a null cell
written as \\x1e, so a 400k-row fines report fits in a few hundred MB at most.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import threading
import time
import xml.etree.ElementTree as ET
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape, quoteattr

from bursar.rules.columns import FILTER_COLUMN_HEADINGS

REPORTS_PATH = "/almaws/v1/analytics/reports"
KEY_TEST_PATH = "/almaws/v1/users/operation/test"  # answers 200 to a key with Users access
ROWSET_NS = "urn:schemas-microsoft-com:xml-analysis:rowset"
SAWX_NS = "com.siebel.analytics.web/expression/v1.1"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
CLOSED_FEE_MESSAGE = "Request failed: API does not support closed fees."
PAY_METHODS = {"CREDIT_CARD": "Credit card", "ONLINE": "Online", "CASH": "Cash"}
FAULT_KINDS = ("error", "rate_limit", "daily_limit", "slow", "drop", "still_loading",
               "apply_then_drop", "repeat_page")

_SEP = "\x1f"   # between cells of a stored row
_NULL = "\x1e"  # a null cell (omitted from the Row element)
_FEE_RE = re.compile(r"/almaws/v1/users/([^/]+)/fees/([^/]+)")
_FEES_RE = re.compile(r"/almaws/v1/users/([^/]+)/fees")
_AMOUNT_RE = re.compile(r"\d+\.\d{2}")
_XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_JSON = "application/json;charset=UTF-8"
_XML = "application/xml;charset=UTF-8"


# -- error envelopes ---------------------------------------------------------------------------

def _tracking_id() -> str:
    return "E01-" + secrets.token_hex(8).upper()


def xml_error(code: str, message: str) -> bytes:
    """Alma's XML web_service_result envelope."""
    return (_XML_DECL + '<web_service_result xmlns="http://com/exlibris/urm/general/xmlbeans">'
            "<errorsExist>true</errorsExist><errorList><error>"
            f"<errorCode>{escape(code)}</errorCode><errorMessage>{escape(message)}</errorMessage>"
            f"<trackingId>{_tracking_id()}</trackingId></error></errorList>"
            "</web_service_result>").encode("utf-8")


def json_api_error(code: str, message: str) -> bytes:
    """The JSON API form: errorList.error is a list, result null."""
    return json.dumps({"errorsExist": True, "errorList": {"error": [
        {"errorCode": code, "errorMessage": message, "trackingId": _tracking_id()}]},
        "result": None}).encode("utf-8")


def json_gateway_error(code: str, message: str) -> bytes:
    """The gateway form: wrapped in web_service_result, error a single object."""
    return json.dumps({"web_service_result": {"errorsExist": True, "errorList": {"error": {
        "errorCode": code, "errorMessage": message, "trackingId": "unknown"}}}}).encode("utf-8")


# -- JSON with exact money (no float anywhere) -------------------------------------------------

def _number(d: Decimal) -> str:
    """Render an amount the way Alma's doubles look: 750, 4.5, 0.25."""
    if d == d.to_integral_value():
        return str(int(d))
    return format(d.normalize(), "f")


def _to_json(obj: Any) -> str:
    if isinstance(obj, Decimal):
        return _number(obj)
    if isinstance(obj, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{_to_json(v)}" for k, v in obj.items()) + "}"
    if isinstance(obj, (list, tuple)):
        return "[" + ",".join(_to_json(v) for v in obj) + "]"
    return json.dumps(obj)


def _now_iso() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


# -- reports -----------------------------------------------------------------------------------

class _Report:
    """Columns plus compactly stored rows, and the pre-built XML pieces to render pages fast."""

    def __init__(self, path: str, columns: list[str], rows: list[str], headings: bool = True,
                 prompted: bool = True):
        self.path = path
        self.columns = columns
        self.rows = rows
        self.prompted = prompted  # False: saved without an "is prompted" filter (any filter -> 420033)
        self._sorted: dict[int, tuple[list[str], list[int]]] = {}  # column -> (values, row positions)
        n = range(1, len(columns) + 1)
        self.opens = [f"<Column{i}>" for i in n]
        self.closes = [f"</Column{i}>" for i in n]
        self.empties = [f"<Column{i}/>" for i in n]
        # col_names=true gets headings unless the report was set up without any
        self.schemas = {True: self._schema(headings), False: self._schema(False)}

    def in_range(self, index: int, low: tuple[str, bool] | None, high: tuple[str, bool] | None) -> list[str]:
        """The rows (in report order) whose cell `index` is not empty and lies between low and
        high ((value, inclusive) or None: unbounded), found by bisection in a sorted index of
        the column built on first use.  A scan of the whole report per window makes a windowed
        import of N rows cost N x windows, i.e. grow with N squared."""
        if index not in self._sorted:
            pairs = sorted((cells[index], pos) for pos, row in enumerate(self.rows)
                           if (cells := row.split(_SEP))[index] != _NULL)
            self._sorted[index] = ([v for v, _ in pairs], [p for _, p in pairs])
        values, positions = self._sorted[index]
        lo = 0 if low is None else (bisect_left if low[1] else bisect_right)(values, low[0])
        hi = len(values) if high is None else (bisect_right if high[1] else bisect_left)(values, high[0])
        return [self.rows[p] for p in sorted(positions[lo:hi])]

    def _schema(self, col_names: bool) -> str:
        elements = ['<xsd:element maxOccurs="1" minOccurs="1" name="Column0" '
                    + ('saw-sql:columnHeading="0" ' if col_names else "")
                    + 'saw-sql:displayFormula="0" saw-sql:tableHeading="" saw-sql:type="integer" '
                      'type="xsd:int"/>']
        for i, heading in enumerate(self.columns, start=1):
            elements.append(
                f'<xsd:element maxOccurs="1" minOccurs="0" name="Column{i}" '
                + (f"saw-sql:columnHeading={quoteattr(heading)} " if col_names else "")
                + f'saw-sql:displayFormula="s_{i}" saw-sql:tableHeading="Fines and Fees" '
                  'saw-sql:type="varchar" type="xsd:string"/>')
        return ('<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
                f'xmlns:saw-sql="urn:saw-sql" targetNamespace="{ROWSET_NS}">'
                '<xsd:complexType name="Row"><xsd:sequence>' + "".join(elements)
                + "</xsd:sequence></xsd:complexType></xsd:schema>")

    def render(self, rows: list[str], *, token: str | None, finished: bool, schema: bool,
               col_names: bool) -> bytes:
        parts = [_XML_DECL, "<report><QueryResult>"]
        if token:
            parts.append(f"<ResumptionToken>{token}</ResumptionToken>")
        parts.append(f"<IsFinished>{'true' if finished else 'false'}</IsFinished>")
        parts.append(f'<ResultXml><rowset xmlns="{ROWSET_NS}">')
        if schema:
            parts.append(self.schemas[col_names])
        append = parts.append
        opens, closes, empties = self.opens, self.closes, self.empties
        for row in rows:
            append("<Row><Column0>0</Column0>")
            for i, value in enumerate(row.split(_SEP)):
                if value == _NULL:
                    continue
                if value:
                    append(opens[i] + value + closes[i])
                else:
                    append(empties[i])
            append("</Row>")
        parts.append("</rowset></ResultXml></QueryResult></report>")
        return "".join(parts).encode("utf-8")


@dataclass
class _Session:
    report: _Report
    rows: list[str] | None
    limit: int
    col_names: bool
    pos: int = 0
    page: int = 0           # pages served so far
    finished: bool = False
    last: tuple[int, int] = (0, 0)  # the slice of rows the last page served


class _FilterError(Exception):
    pass


class _NotPrompted(Exception):
    """The filter names a column the report has no prompt for: Alma's "No more rows to fetch"."""


_OPS: dict[str, Callable[[str, str], bool]] = {
    "equal": lambda a, b: a == b, "notEqual": lambda a, b: a != b,
    "greater": lambda a, b: a > b, "greaterOrEqual": lambda a, b: a >= b,
    "less": lambda a, b: a < b, "lessOrEqual": lambda a, b: a <= b,
}


def _compile_filter(text: str, columns: list[str]) -> Callable[[list[str]], bool]:
    """A predicate over a stored row's cells from the sawx XML (comparison and and/or)."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise _FilterError(f"filter is not well-formed XML: {exc}") from None
    return _compile_expr(root, columns)


def _compile_expr(el: ET.Element, columns: list[str]) -> Callable[[list[str]], bool]:
    if el.tag != f"{{{SAWX_NS}}}expr":
        raise _FilterError(f"unexpected filter element {el.tag}")
    kind, op = el.get(XSI_TYPE, ""), el.get("op", "")
    children = list(el)
    if kind == "sawx:logical" and op in ("and", "or") and children:
        preds = [_compile_expr(c, columns) for c in children]
        if op == "and":
            return lambda cells: all(p(cells) for p in preds)
        return lambda cells: any(p(cells) for p in preds)
    if kind == "sawx:comparison" and op == "between" and len(children) == 3:
        low = _compile_expr(_comparison(el, children[0], children[1], "greaterOrEqual"), columns)
        high = _compile_expr(_comparison(el, children[0], children[2], "lessOrEqual"), columns)
        return lambda cells: low(cells) and high(cells)
    if kind == "sawx:comparison" and op in _OPS and len(children) == 2:
        left, right = children
        if left.get(XSI_TYPE) != "sawx:sqlExpression":
            raise _FilterError("the left side of a comparison must be a sqlExpression")
        if right.get(XSI_TYPE) not in ("xsd:dateTime", "xsd:string", "xsd:date"):
            raise _FilterError(f"unsupported value type {right.get(XSI_TYPE)}")
        heading = FILTER_COLUMN_HEADINGS.get((left.text or "").strip())
        if heading is None or heading not in columns:
            raise _NotPrompted()
        index, value, compare = columns.index(heading), escape((right.text or "").strip()), _OPS[op]
        return lambda cells: cells[index] != _NULL and compare(cells[index], value)
    raise _FilterError(f"unsupported filter expression {kind} {op}")


_LOWER = {"greaterOrEqual": True, "greater": False}
_UPPER = {"lessOrEqual": True, "less": False}


def _date_range(text: str, columns: list[str]) -> tuple[int, tuple[str, bool] | None, tuple[str, bool] | None] | None:
    """(column index, low, high) when the filter (already compiled, so well-formed) is one
    lower and/or upper bound on one column, alone or under `and`: the shape of the import's
    windows.  None for anything else, which is then evaluated row by row."""
    root = ET.fromstring(text)
    parts = list(root) if root.get(XSI_TYPE) == "sawx:logical" and root.get("op") == "and" else [root]
    index: int | None = None
    low: tuple[str, bool] | None = None
    high: tuple[str, bool] | None = None
    for part in parts:
        op, children = part.get("op", ""), list(part)
        if part.get(XSI_TYPE) != "sawx:comparison" or op not in {**_LOWER, **_UPPER} or len(children) != 2:
            return None
        heading = FILTER_COLUMN_HEADINGS.get((children[0].text or "").strip())
        if heading is None or heading not in columns or (index is not None and columns.index(heading) != index):
            return None
        index, value = columns.index(heading), escape((children[1].text or "").strip())
        if op in _LOWER:
            if low is not None:
                return None
            low = (value, _LOWER[op])
        else:
            if high is not None:
                return None
            high = (value, _UPPER[op])
    return None if index is None else (index, low, high)


def _comparison(parent: ET.Element, left: ET.Element, right: ET.Element, op: str) -> ET.Element:
    """A two-sided comparison built from the parts of a `between`."""
    el = ET.Element(parent.tag, {XSI_TYPE: "sawx:comparison", "op": op})
    el.extend([left, right])
    return el


# -- faults ------------------------------------------------------------------------------------

@dataclass
class _Fault:
    kind: str
    method: str | None
    path_contains: str | None
    page: int | None
    times: int
    status: int
    delay: float
    code: str | None = None
    message: str | None = None

    def matches(self, method: str, path: str, page: int | None) -> bool:
        return ((self.method is None or self.method.upper() == method)
                and (self.path_contains is None or self.path_contains in path)
                and (self.page is None or self.page == page))


@dataclass
class _Outcome:
    """What a route decided: status, body, content type."""
    status: int
    body: bytes
    content_type: str = _JSON


# -- the server --------------------------------------------------------------------------------

class SandboxAlma:
    """A local Alma on 127.0.0.1 (ephemeral port).  Use as a context manager or start()/stop()."""

    def __init__(self, api_key: str = "sandbox-api-key"):
        self.api_key = api_key
        self.url: str | None = None
        self.latency: float = 0.0
        self.key_in_url_seen = False
        self.fees: dict[tuple[str, str], dict[str, Any]] = {}
        self.pay_calls: list[dict[str, Any]] = []
        self.api_remaining = 100_000
        # whether the user fee list carries each fee's `transaction` array (Alma's reference does
        # not say; False serves the list without it, as the single-fee GET still has it;
        # "omit_empty" leaves the key out only where the fee has no transactions)
        self.list_transactions: bool | str = True
        # Oracle BI's row cap: a report run stops after this many rows, finished, without a word
        # (None: no cap, the default)
        self.row_cap: int | None = None
        # seconds added to every Analytics page / every fee call (bench/daily.py: 1.5 s, 150 ms)
        self.analytics_latency = 0.0
        self.fee_latency = 0.0
        self._reports: dict[str, _Report] = {}
        self._sessions: dict[str, _Session] = {}
        self._faults: list[_Fault] = []
        self._calls: list[dict[str, Any]] = []
        self._lock = threading.RLock()
        self._txn_ids = count(9_911_223_344_000_001)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.sandbox = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="sandbox-alma",
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        return self.url

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:  # end idle keep-alive handlers now, not at their timeout
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> SandboxAlma:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- state ----------------------------------------------------------------------------------

    def set_report(self, path: str, columns: list[str], rows: Iterable[dict[str, str | None]],
                   *, headings: bool = True, prompted: bool = True) -> None:
        """Serve this report at `path` (replacing any previous one).  headings=False serves a
        schema without saw-sql:columnHeading even for col_names=true (the fallback case);
        prompted=False a report saved without its "is prompted" filter, which answers any
        filter with Alma's 420033 "No more rows to fetch"."""
        columns = list(columns)
        known = set(columns)
        stored: list[str] = []
        for n, row in enumerate(rows, start=1):
            extra = row.keys() - known
            if extra:
                raise ValueError(f"row {n} has columns the report does not declare: {sorted(extra)}")
            cells = []
            for column in columns:
                value = row.get(column)
                if value is None:
                    cells.append(_NULL)
                    continue
                value = str(value)
                if _SEP in value or _NULL in value:
                    raise ValueError(f"row {n}, column {column!r}: control characters are not "
                                     "allowed in XML")
                cells.append(escape(value))
            stored.append(_SEP.join(cells))
        with self._lock:
            self._reports[path] = _Report(path, columns, stored, headings, prompted)

    def set_fee(self, user_id: str, fee_id: str, *, balance: Decimal, original_amount: Decimal,
                status: str = "ACTIVE", type_code: str = "OVERDUEFINE",
                type_desc: str = "Overdue fine") -> None:
        now = _now_iso()
        with self._lock:
            self.fees[(user_id, fee_id)] = {
                "id": fee_id, "user_id": user_id, "status": status,
                "balance": Decimal(balance).quantize(Decimal("0.01")),
                "original_amount": Decimal(original_amount).quantize(Decimal("0.01")),
                "type_code": type_code, "type_desc": type_desc, "transactions": [],
                "creation_time": now, "status_time": now,
            }

    def add_fault(self, kind: str, *, method: str | None = None, path_contains: str | None = None,
                  page: int | None = None, times: int = 1, status: int = 500, delay: float = 0.0,
                  code: str | None = None, message: str | None = None) -> None:
        """Make the next `times` matching requests misbehave (see FAULT_KINDS)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(FAULT_KINDS)}")
        with self._lock:
            self._faults.append(_Fault(kind, method, path_contains, page, times, status, delay,
                                       code, message))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def calls(self) -> list[dict[str, Any]]:
        """Every request so far: method, path, params (never a key), status (None if dropped)."""
        with self._lock:
            return list(self._calls)

    def clear_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    # -- internals used by the handler ----------------------------------------------------------

    def _record(self, method: str, path: str, params: dict[str, str], status: int | None) -> None:
        with self._lock:
            self._calls.append({"method": method, "path": path, "params": params,
                                "status": status})

    def _take_fault(self, method: str, path: str, page: int | None) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path, page):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _page_of(self, path: str, params: dict[str, str]) -> int | None:
        """The Analytics page (1-based) this request would get, for fault matching."""
        if path != REPORTS_PATH:
            return None
        token = params.get("token")
        if not token:
            return 1
        with self._lock:
            session = self._sessions.get(token)
            return session.page + 1 if session else None

    # -- Analytics ------------------------------------------------------------------------------

    def _analytics(self, params: dict[str, str], accept: str) -> _Outcome:
        err = _error_for(accept)
        limit: int | None = None
        if params.get("limit"):
            try:
                limit = int(params["limit"])
            except ValueError:
                limit = -1
            if not 25 <= limit <= 1000:
                return err(400, "INVALID_REQUEST", "limit must be between 25 and 1000")
        token = params.get("token")
        if token:
            with self._lock:
                session = self._sessions.get(token)
                if session is None or session.finished or session.rows is None:
                    return err(400, "420033", "No more rows to fetch")
                page_rows, finished = self._advance(session, limit)
            body = session.report.render(page_rows, token=None, finished=finished, schema=False,
                                         col_names=session.col_names)
            return _Outcome(200, body, _XML)
        path = params.get("path")
        if not path:
            return err(400, "INVALID_REQUEST", "Either path or token must be given")
        with self._lock:
            report = self._reports.get(path)
        if report is None:
            return err(500, "INTERNAL_SERVER_ERROR", f"Path not found ({path})")
        rows = report.rows
        if params.get("filter") and not report.prompted:
            return err(400, "420033", "No more rows to fetch")
        if params.get("filter"):
            try:
                predicate = _compile_filter(params["filter"], report.columns)
            except _FilterError as exc:
                return err(400, "INVALID_REQUEST", str(exc))
            except _NotPrompted:
                return err(400, "420033", "No more rows to fetch")
            span = _date_range(params["filter"], report.columns)
            if span is not None:  # the import's windows: one look-up in a sorted index
                rows = report.in_range(*span)
            else:
                rows = [r for r in rows if predicate(r.split(_SEP))]
        if self.row_cap is not None:
            rows = rows[: self.row_cap]
        col_names = params.get("col_names", "true").lower() != "false"
        token = secrets.token_hex(64).upper()
        session = _Session(report, rows, limit or 25, col_names)
        with self._lock:
            self._sessions[token] = session
            page_rows, finished = self._advance(session, limit)
        body = report.render(page_rows, token=token, finished=finished, schema=True,
                             col_names=col_names)
        return _Outcome(200, body, _XML)

    @staticmethod
    def _advance(session: _Session, limit: int | None) -> tuple[list[str], bool]:
        """Next page of a session (caller holds the lock).  OBI serves blocks of 25 rows."""
        assert session.rows is not None
        size = -(-(limit or session.limit) // 25) * 25
        start = session.pos
        end = min(start + size, len(session.rows))
        page_rows = session.rows[start:end]
        session.last = (start, end)
        session.pos = end
        session.page += 1
        if end >= len(session.rows):
            session.finished = True
            session.rows = None  # free the filtered copy; the token now answers 420033
        return page_rows, session.finished

    def _repeat_page(self, params: dict[str, str]) -> _Outcome | None:
        """The "repeat_page" fault: a token request gets the session's previous page again, not
        finished (a report run that never ends).  None: not a token request, answer normally."""
        with self._lock:
            session = self._sessions.get(params.get("token", ""))
            if session is None or session.rows is None:
                return None
            session.page += 1
            start, end = session.last
            page_rows = session.rows[start:end]
        body = session.report.render(page_rows, token=None, finished=False, schema=False,
                                     col_names=session.col_names)
        return _Outcome(200, body, _XML)

    @staticmethod
    def _still_loading() -> _Outcome:
        body = (_XML_DECL + "<report><QueryResult><IsFinished>false</IsFinished><ResultXml/>"
                "</QueryResult></report>").encode("utf-8")
        return _Outcome(200, body, _XML)

    # -- fees -----------------------------------------------------------------------------------

    def _fee_json(self, fee: dict[str, Any]) -> dict[str, Any]:
        link = f"{self.url}/almaws/v1/users/{fee['user_id']}"
        return {
            "id": fee["id"],
            "type": {"value": fee["type_code"], "desc": fee["type_desc"]},
            "status": {"value": fee["status"], "desc": fee["status"].capitalize()},
            "user_primary_id": {"value": fee["user_id"], "link": link},
            "balance": fee["balance"], "remaining_vat_amount": Decimal(0),
            "original_amount": fee["original_amount"], "original_vat_amount": Decimal(0),
            "creation_time": fee["creation_time"], "status_time": fee["status_time"],
            "comment": None, "owner": {"value": "MAIN", "desc": "Main Library"},
            "title": None, "barcode": None, "bursar_transaction_id": None,
            "transaction": [dict(t) for t in fee["transactions"]],
            "link": f"{link}/fees/{fee['id']}",
        }

    def _find_fee(self, user_id: str, fee_id: str, err: Callable[..., _Outcome]
                  ) -> tuple[dict[str, Any] | None, _Outcome | None]:
        fee = self.fees.get((user_id, fee_id))
        if fee is not None:
            if fee["status"] != "ACTIVE":
                return None, err(400, "402119", CLOSED_FEE_MESSAGE)
            return fee, None
        if not any(uid == user_id for uid, _ in self.fees):
            return None, err(400, "401651", "Identifier not found.")
        return None, err(400, "401665", "Fine not found.")

    def _get_fee(self, user_id: str, fee_id: str, accept: str) -> _Outcome:
        with self._lock:
            fee, failure = self._find_fee(user_id, fee_id, _error_for(accept))
            if failure:
                return failure
            assert fee is not None
            return _Outcome(200, _to_json(self._fee_json(fee)).encode("utf-8"))

    def _list_fees(self, user_id: str, params: dict[str, str], accept: str) -> _Outcome:
        status = params.get("status", "ACTIVE").upper()
        with self._lock:
            mine = [f for (uid, _), f in self.fees.items() if uid == user_id]
            if not mine:
                return _error_for(accept)(400, "401651", "Identifier not found.")
            chosen = [self._fee_json(f) for f in mine if f["status"] == status]
            for listed in chosen:
                # "omit_empty": the key is left out only where the array would be empty
                if not self.list_transactions or (self.list_transactions == "omit_empty"
                                                  and not listed["transaction"]):
                    del listed["transaction"]
        doc: dict[str, Any] = {"total_record_count": len(chosen),
                               "total_sum": sum((f["balance"] for f in chosen), Decimal(0))}
        if chosen:
            doc = {"fee": chosen, **doc, "currency": "USD"}
        else:
            doc["currency"] = None
        return _Outcome(200, _to_json(doc).encode("utf-8"))

    def _pay_fee(self, user_id: str, fee_id: str, params: dict[str, str], accept: str) -> _Outcome:
        err = _error_for(accept)
        invalid = err(400, "401666", "Parameter is not valid.")
        if params.get("op") != "pay" or params.get("method") not in PAY_METHODS:
            return invalid
        text = params.get("amount", "")
        if not _AMOUNT_RE.fullmatch(text):
            return invalid
        try:
            amount = Decimal(text)
        except InvalidOperation:
            return invalid
        with self._lock:
            fee, failure = self._find_fee(user_id, fee_id, err)
            if failure:
                return failure
            assert fee is not None
            if amount <= 0 or amount > fee["balance"]:
                return invalid
            now = _now_iso()
            method = params["method"]
            fee["transactions"].append({
                "transaction_id": str(next(self._txn_ids)),
                "type": {"value": "PAYMENT", "desc": "Payment"},
                "amount": amount, "vat_amount": Decimal(0), "reason": None,
                "comment": params.get("comment"), "created_by": "API",
                "external_transaction_id": params.get("external_transaction_id"),
                "transaction_time": now, "received_by": {"value": "", "desc": "Not at desk"},
                "payment_method": {"value": method, "desc": PAY_METHODS[method]},
            })
            fee["balance"] -= amount
            fee["status_time"] = now
            if fee["balance"] == 0:
                fee["status"] = "CLOSED"
            self.pay_calls.append({
                "user_id": user_id, "fee_id": fee_id, "amount": amount, "method": method,
                "external_transaction_id": params.get("external_transaction_id"),
                "comment": params.get("comment"),
            })
            return _Outcome(200, _to_json(self._fee_json(fee)).encode("utf-8"))

    # -- routing --------------------------------------------------------------------------------

    def _route(self, method: str, path: str, params: dict[str, str], accept: str) -> _Outcome:
        if path == REPORTS_PATH and method == "GET":
            return self._analytics(params, accept)
        if path == KEY_TEST_PATH:  # the key test: the auth header was already checked
            return _Outcome(200, b"")
        m = _FEE_RE.fullmatch(path)
        if m:
            user_id, fee_id = unquote(m.group(1)), unquote(m.group(2))
            if method == "GET":
                return self._get_fee(user_id, fee_id, accept)
            return self._pay_fee(user_id, fee_id, params, accept)
        m = _FEES_RE.fullmatch(path)
        if m and method == "GET":
            return self._list_fees(unquote(m.group(1)), params, accept)
        return _Outcome(404, json_gateway_error("NOT_FOUND", f"No API at {method} {path}"))

    def _fault_outcome(self, fault: _Fault, accept: str) -> _Outcome | None:
        """The answer a fault replaces the real one with (None: answer normally / drop)."""
        if fault.kind == "error":
            code = fault.code or ("INTERNAL_SERVER_ERROR" if fault.status >= 500 else "402119")
            message = fault.message or ("Internal server error." if fault.status >= 500
                                        else "General error.")
            return _error_for(accept)(fault.status, code, message)
        if fault.kind == "rate_limit":
            return _Outcome(429, json_api_error(
                "PER_SECOND_THRESHOLD",
                "HTTP requests are more than allowed per second. See https://goo.gl/2x1c1M "))
        if fault.kind == "daily_limit":
            return _Outcome(429, json_gateway_error(
                "DAILY_THRESHOLD", "Daily API Request Threshold has been reached."))
        if fault.kind == "still_loading":
            return self._still_loading()
        return None


def _error_for(accept: str) -> Callable[[int, str, str], _Outcome]:
    """An error-answer builder in the format the client asked for (JSON API form or XML)."""
    if "json" in accept.lower():
        return lambda status, code, message: _Outcome(status, json_api_error(code, message), _JSON)
    return lambda status, code, message: _Outcome(status, xml_error(code, message), _XML)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real gateway
    server_version = "SandboxAlma/1.0"
    timeout = 30  # idle keep-alive connections end eventually
    # headers and body go out as two writes: without this, Nagle + delayed ACKs add ~40 ms a call
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        with self.sandbox._lock:
            self.sandbox._connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.sandbox._lock:
                self.sandbox._connections.discard(self.connection)

    @property
    def sandbox(self) -> SandboxAlma:
        return self.server.sandbox  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read .calls instead
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        sb = self.sandbox
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)  # fee operations take no body; drain it anyway
        split = urlsplit(self.path)
        path = split.path
        params = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        if any(k.lower() == "apikey" for k in params):
            sb.key_in_url_seen = True
            params = {k: v for k, v in params.items() if k.lower() != "apikey"}
        if sb.latency > 0:
            time.sleep(sb.latency)
        extra = sb.analytics_latency if path == REPORTS_PATH else sb.fee_latency if "/fees" in path else 0.0
        if extra > 0:
            time.sleep(extra)
        accept = self.headers.get("Accept", "")
        if self.headers.get("Authorization", "") != f"apikey {sb.api_key}":
            self._answer(method, path, params, _Outcome(400, json_gateway_error(
                "GENERAL_ERROR", "A Gateway error has occurred - Make sure you add an appropriate "
                "apikey as a parameter or a header.")))
            return
        fault = sb._take_fault(method, path, sb._page_of(path, params))
        if fault is not None:
            if fault.kind == "slow":
                time.sleep(fault.delay)
            elif fault.kind == "drop":
                self._drop(method, path, params)
                return
            elif fault.kind == "repeat_page":
                repeated = sb._repeat_page(params)
                if repeated is not None:
                    self._answer(method, path, params, repeated)
                    return
            elif fault.kind == "apply_then_drop":
                sb._route(method, path, params, accept)
                self._drop(method, path, params)
                return
            else:
                outcome = sb._fault_outcome(fault, accept)
                if outcome is not None:
                    self._answer(method, path, params, outcome)
                    return
        self._answer(method, path, params, sb._route(method, path, params, accept))

    def _drop(self, method: str, path: str, params: dict[str, str]) -> None:
        """Close the socket without a byte of answer."""
        self.sandbox._record(method, path, params, None)
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _answer(self, method: str, path: str, params: dict[str, str], outcome: _Outcome) -> None:
        sb = self.sandbox
        with sb._lock:
            sb.api_remaining = max(0, sb.api_remaining - 1)
            remaining = sb.api_remaining
        sb._record(method, path, params, outcome.status)
        self.send_response(outcome.status)
        self.send_header("Content-Type", outcome.content_type)
        self.send_header("Content-Length", str(len(outcome.body)))
        self.send_header("X-Exl-Api-Remaining", str(remaining))
        self.end_headers()
        try:
            self.wfile.write(outcome.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
