"""Alma Analytics reports, fetched page by page and parsed as a stream.

Why streaming: the fines report can hold hundreds of thousands of rows; the import stages them
on disk (docs/ledger.md §7), so memory must not grow with the report.  Each page is parsed with an
incremental XML parser fed from the HTTP body, and every Row is dropped from the tree as soon
as it has been turned into a dict.

Paging follows Alma's documented protocol (docs/alma.md §2): the first call sends `path`,
`limit`, `col_names=true` and the optional `filter`; later calls send only `token` (captured
from the first page that carries one) and `limit`, until `IsFinished` is "true".  Token
presence never decides paging.  A "still loading" page (HTTP 200, not finished, no rows) is
waited for and asked again with the same request.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Generator, Iterator
from datetime import datetime
from typing import cast
from xml.sax.saxutils import escape, unescape

import requests

from bursar.clients.alma.http import AlmaHttp, AlmaHttpError
from bursar.errors import AlmaError, ReportError
from bursar.runtime import crash

REPORTS_PATH = "/almaws/v1/analytics/reports"
XSD_NS = "http://www.w3.org/2001/XMLSchema"
SAW_SQL_NS = "urn:saw-sql"
_ELEMENT = f"{{{XSD_NS}}}element"
_SCHEMA = f"{{{XSD_NS}}}schema"
_HEADING = f"{{{SAW_SQL_NS}}}columnHeading"
_CHUNK = 64 * 1024
NO_MORE_ROWS = "420033"  # "No more rows to fetch"; on a first page: the filter has no prompt
_FILTER_COLUMN = re.compile(r'xsi:type="sawx:sqlExpression">([^<]*)<')

Row = dict[str, "str | None"]


def date_filter(column_expression: str, since: datetime) -> str:
    """The sawx "column >= since" filter of the original tool (docs/alma.md §4), on one
    line.  The report must carry an "is prompted" filter on that column for Alma to apply it."""
    return (
        '<sawx:expr xsi:type="sawx:comparison" op="greaterOrEqual" '
        'xmlns:saw="com.siebel.analytics.web/report/v1.1" '
        'xmlns:sawx="com.siebel.analytics.web/expression/v1.1" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xmlns:xsd="http://www.w3.org/2001/XMLSchema">'
        f'<sawx:expr xsi:type="sawx:sqlExpression">{escape(column_expression)}</sawx:expr>'
        f'<sawx:expr xsi:type="xsd:dateTime">{since.strftime("%Y-%m-%dT%H:%M:%S")}</sawx:expr>'
        "</sawx:expr>"
    )


def window_filter(column_expression: str, start: datetime, end: datetime | None) -> str:
    """The sawx filter of one date window: "column >= start AND column < end", combined with
    `sawx:logical op="and"`, on one line.  `end` None: open-ended (just "column >= start"), so
    a row dated after the clock's today is never left out."""
    if end is None:
        return date_filter(column_expression, start)
    column = escape(column_expression)

    def comparison(op: str, when: datetime) -> str:
        return (f'<sawx:expr xsi:type="sawx:comparison" op="{op}">'
                f'<sawx:expr xsi:type="sawx:sqlExpression">{column}</sawx:expr>'
                f'<sawx:expr xsi:type="xsd:dateTime">{when.strftime("%Y-%m-%dT%H:%M:%S")}</sawx:expr>'
                "</sawx:expr>")

    return (
        '<sawx:expr xsi:type="sawx:logical" op="and" '
        'xmlns:saw="com.siebel.analytics.web/report/v1.1" '
        'xmlns:sawx="com.siebel.analytics.web/expression/v1.1" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xmlns:xsd="http://www.w3.org/2001/XMLSchema">'
        + comparison("greaterOrEqual", start) + comparison("less", end)
        + "</sawx:expr>"
    )


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


class _PageInfo:
    """What one page said about the session, known once the page has been read to its end."""

    def __init__(self) -> None:
        self.is_report = False      # an element of Alma's report vocabulary was seen
        self.query_result = False   # a QueryResult element was seen
        self.finished = False
        self.token: str | None = None
        self.rows = 0
        self.schema: list[tuple[str, str | None]] | None = None  # (ColumnN, heading)
        self.digest = 0             # of the page's rows, to notice a page served again


_COLUMNS_KNOWN = object()  # internal event: `.columns` has just been filled
_SKIP = "\x00skip"          # cell tag that maps to no column (Column0)


class ReportStream:
    """Iterate to get rows: dict keyed by column heading (Column0 dropped, absent cell None,
    empty cell "").  `.columns` is filled as soon as page 1's schema has been parsed;
    `read_columns()` fetches just far enough to know them.  Pages are fetched lazily."""

    def __init__(self, http: AlmaHttp, path: str, *, filter_xml: str | None,
                 fallback_columns: list[str] | None, limit: int, still_loading_retries: int,
                 still_loading_wait: float, sleep: Callable[[float], None], setting: str | None = None,
                 max_pages: int | None = None):
        self.path = path
        self.setting = setting  # the setting naming the report (ALMA_REPORT_FINES ...), for messages
        self.name = path.rstrip("/").rsplit("/", 1)[-1]
        self.columns: list[str] = []
        self.pages = 0          # HTTP pages read (still-loading answers included)
        self.rows = 0           # rows yielded so far
        self._http = http
        self._filter = filter_xml
        self._fallback = list(fallback_columns) if fallback_columns else None
        self._limit = limit
        self._loading_retries = still_loading_retries
        self._loading_wait = still_loading_wait
        self._sleep = sleep
        self._max_pages = max_pages  # a run past this many pages is not a report that ends
        self._digests: set[int] = set()
        self._tag_to_column: dict[str, str] | None = None
        self._template: Row = {}
        self._kinds: dict[str, str] = {}
        self._cell_columns: dict[str, str] = {}
        self._events = self._run()
        self._buffered: list[Row] = []

    def __iter__(self) -> ReportStream:
        return self

    def __next__(self) -> Row:
        if self._buffered:
            return self._buffered.pop(0)
        for event in self._events:
            if event is not _COLUMNS_KNOWN:
                return event  # type: ignore[return-value]
        raise StopIteration

    def read_columns(self) -> list[str]:
        """Fetch until the column headings are known (page 1's schema) and return them; any row
        read on the way is kept for iteration."""
        while self._tag_to_column is None:
            try:
                event = next(self._events)
            except StopIteration:
                break
            if event is not _COLUMNS_KNOWN:
                self._buffered.append(event)  # type: ignore[arg-type]
        return self.columns

    def close(self) -> None:
        """Stop early and release the connection."""
        self._events.close()

    # -- paging -----------------------------------------------------------------------------

    def _run(self) -> Generator[object, None, None]:
        token: str | None = None
        page_no = 0
        while True:
            page_no += 1
            loading_tries = 0
            while True:
                if page_no == 1:
                    params: dict[str, str | int] = {"path": self.path, "limit": self._limit,
                                                    "col_names": "true"}
                    if self._filter:
                        params["filter"] = self._filter
                else:
                    assert token is not None
                    params = {"token": token, "limit": self._limit}
                info = _PageInfo()
                yield from self._read_page(params, page_no, info)
                crash.point("analytics.after_page")
                if not info.finished and info.rows == 0:
                    if loading_tries >= self._loading_retries:
                        raise AlmaError(
                            f"Analytics report '{self.name}' was still loading (page {page_no}) "
                            f"after {loading_tries} retries; try again later")
                    loading_tries += 1
                    self._sleep(self._loading_wait)
                    continue
                break
            if self._tag_to_column is None:
                self._decide_columns(info.schema)
                yield _COLUMNS_KNOWN
            if info.rows:
                if info.digest in self._digests:
                    raise AlmaError(f"Analytics report {self._which()} served page {page_no} with rows "
                                    "it had already served: the report run does not end; nothing was "
                                    "changed, try again later")
                self._digests.add(info.digest)
            if token is None and info.token:
                token = info.token
            if info.finished:
                return
            if self._max_pages is not None and page_no >= self._max_pages:
                raise AlmaError(f"Analytics report {self._which()} is not finished after {page_no} pages, "
                                f"more than a run of its row limit can have; nothing was changed, "
                                "try again later")
            if token is None:
                raise AlmaError(f"Analytics report '{self.name}': page {page_no} is not the last "
                                "but Alma gave no resumption token")

    def _read_page(self, params: dict[str, str | int], page_no: int,
                   info: _PageInfo) -> Iterator[object]:
        try:
            resp = self._http.get(REPORTS_PATH, params, accept="application/xml", stream=True)
        except AlmaHttpError as exc:
            if exc.code == NO_MORE_ROWS and page_no == 1:
                raise self._not_prompted(exc) from None
            raise
        self.pages += 1
        try:
            # "end" events only: a start event per cell would cost a third more time per page.
            parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("end",))
            for chunk in resp.iter_content(_CHUNK):
                parser.feed(chunk)
                yield from self._handle_events(parser, page_no, info)
            parser.close()
            yield from self._handle_events(parser, page_no, info)
        except requests.RequestException:
            raise AlmaError(f"Analytics report '{self.name}': the connection was lost while "
                            f"reading page {page_no}; try again later") from None
        except (ET.ParseError, LookupError):  # LookupError: an XML declaration naming an unknown encoding
            if not info.is_report:
                raise self._no_report() from None
            raise AlmaError(f"Analytics report '{self.name}': page {page_no} is not "
                            "well-formed XML") from None
        finally:
            resp.close()
        if not info.query_result:
            raise self._no_report()

    def _which(self) -> str:
        return f"{self.setting} ({self.path})" if self.setting else f"'{self.name}'"

    def _not_prompted(self, exc: AlmaHttpError) -> ReportError:
        """420033 on the very first page: Alma ignores a filter on a column the report does not
        prompt for, and answers as if the session had already ended."""
        which = f"{self.setting} ({self.path})" if self.setting else f"'{self.path}'"
        if not self._filter:
            return ReportError(f"Analytics report {which} answered {NO_MORE_ROWS} 'No more rows to fetch' "
                               "on its first page; check the report in Alma Analytics")
        found = _FILTER_COLUMN.search(self._filter)
        column = f" ({unescape(found.group(1))})" if found else ""
        return ReportError(
            f"Analytics report {which} answered {NO_MORE_ROWS} 'No more rows to fetch' on its first "
            f"page: the report needs an \"is prompted\" filter on its date column{column}; add one "
            "in Alma Analytics and save the report")

    def _no_report(self) -> AlmaError:
        return AlmaError(f"Analytics returned no report for '{self.name}' "
                         "(Analytics may be down; try again later)")

    def _kind(self, tag: str) -> str:
        """What an element is, by namespace URI and local name (cached: tags repeat a lot)."""
        kind = self._kinds.get(tag)
        if kind is None:
            name = _local(tag)
            if tag == _ELEMENT or tag == _SCHEMA:
                kind = tag
            elif name in ("Row", "ResumptionToken", "IsFinished", "QueryResult"):
                kind = name
            else:
                kind = ""
            self._kinds[tag] = kind
        return kind

    def _handle_events(self, parser: ET.XMLPullParser[ET.Element], page_no: int,
                       info: _PageInfo) -> Iterator[object]:
        # The parser reports "end" events only (see _read_page), and every one carries an Element;
        # the stubs' wider union also covers the namespace and comment events we never ask for.
        events = cast("Iterator[tuple[str, ET.Element]]", parser.read_events())
        for _event, elem in events:
            kind = self._kind(elem.tag)
            if not kind:
                continue
            info.is_report = True
            if kind == "Row":
                if self._tag_to_column is None:
                    self._decide_columns(info.schema)
                    yield _COLUMNS_KNOWN
                row = self._row(elem)
                elem.clear()  # the emptied shell stays until the page ends: memory per page only
                info.digest = hash((info.digest, tuple(row.values())))
                info.rows += 1
                self.rows += 1
                yield row
            elif kind == _ELEMENT:
                if info.schema is None:
                    info.schema = []
                info.schema.append((elem.get("name", ""), elem.get(_HEADING)))
            elif kind == _SCHEMA:
                if page_no == 1 and self._tag_to_column is None and info.schema is not None:
                    self._decide_columns(info.schema)
                    yield _COLUMNS_KNOWN
                elem.clear()
            elif kind == "ResumptionToken":
                info.token = (elem.text or "").strip() or None
            elif kind == "IsFinished":
                info.finished = (elem.text or "").strip().lower() == "true"
            elif kind == "QueryResult":
                info.query_result = True

    # -- columns and rows -------------------------------------------------------------------

    def _decide_columns(self, schema: list[tuple[str, str | None]] | None) -> None:
        """Headings from page 1's schema; else the fallback order (Column1 -> fallback[0])."""
        if schema is not None:
            elements = [(tag, heading) for tag, heading in schema if tag != "Column0"]
            tags = [tag for tag, _ in elements]
            if all(heading is not None for _, heading in elements):
                headings = [heading or "" for _, heading in elements]
            elif self._fallback is not None:
                if len(tags) > len(self._fallback):
                    raise ReportError(
                        f"Analytics report '{self.name}' has {len(tags)} columns but no headings, "
                        f"and the known column order has only {len(self._fallback)}")
                headings = self._fallback[: len(tags)]
            else:
                raise ReportError(f"Analytics report '{self.name}' declares no column headings "
                                  "and no column order is known for it")
        elif self._fallback is not None:
            tags = [f"Column{i}" for i in range(1, len(self._fallback) + 1)]
            headings = list(self._fallback)
        else:
            raise ReportError(f"Analytics report '{self.name}' returned no column schema and no "
                              "column order is known for it")
        dupes = sorted({h for h in headings if headings.count(h) > 1})
        if dupes:
            raise ReportError(f"Analytics report '{self.name}' has duplicate column headings: "
                              + ", ".join(repr(h) for h in dupes))
        self._tag_to_column = dict(zip(tags, headings))
        self.columns = headings
        self._template = dict.fromkeys(headings)

    def _row(self, elem: ET.Element) -> Row:
        row = self._template.copy()
        cells = self._cell_columns
        for cell in elem:
            column = cells.get(cell.tag)
            if column is None:
                column = self._cell_column(cell.tag)
            if column is not _SKIP:
                row[column] = cell.text if cell.text is not None else ""
        return row

    def _cell_column(self, tag: str) -> str:
        """Heading for a cell tag seen for the first time (Column0 is skipped)."""
        assert self._tag_to_column is not None
        name = _local(tag)
        column = self._tag_to_column.get(name)
        if column is None:
            if name != "Column0":
                raise ReportError(f"Analytics report '{self.name}': a row has {name}, which the "
                                  "report's columns do not include")
            column = _SKIP
        self._cell_columns[tag] = column
        return column


def iter_report(http: AlmaHttp, path: str, *, filter_xml: str | None = None,
                fallback_columns: list[str] | None = None, limit: int = 1000,
                still_loading_retries: int = 5, still_loading_wait: float = 3.0,
                sleep: Callable[[float], None] = time.sleep, setting: str | None = None,
                max_pages: int | None = None) -> ReportStream:
    """Stream the rows of the Analytics report at `path` (nothing is fetched until iterated).
    `setting` is the setting that names the report, used in messages; `max_pages` bounds a run
    (past it, and on a page of rows served before, the run stops with an AlmaError)."""
    return ReportStream(http, path, filter_xml=filter_xml, fallback_columns=fallback_columns,
                        limit=limit, still_loading_retries=still_loading_retries,
                        still_loading_wait=still_loading_wait, sleep=sleep, setting=setting,
                        max_pages=max_pages)
