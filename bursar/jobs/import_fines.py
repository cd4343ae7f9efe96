"""importAlmaFines: Direction 1, step 1.  Pull the Analytics reports and merge them into the ledger.

All-or-nothing: every report is fetched completely and staged on disk (JSON lines, so memory
does not grow with the report) before anything is merged, in a private folder under STAGING_DIR
(0700, files 0600) that is removed afterwards, and by the next import when a killed run left it.
A failure (or Ctrl-C / SIGTERM) while fetching leaves the ledger exactly as it was.  On SQLite
the merge is one transaction; on MongoDB the writes are ordered so that re-running after a crash
repairs any partial merge (every rule below is "insert if absent, update if different").

The merge rules are the original's (docs/ledger.md §8-§10) with its defects fixed:
unknown transaction types, unmatched credits and similar problems are reported per row (exit 3)
and never stop the other rows; identical data writes nothing; item details are updated in
place instead of piling up.
"""

from __future__ import annotations

import json
import math
import os
import re
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from bursar.clients.alma.analytics import iter_report, window_filter
from bursar.errors import BursarError, ReportError, SettingsError
from bursar.jobs.context import JobContext, log, midnight, recorded
from bursar.jobs.ledger_store import alma_lines, burs_lines, trans_alma_doc, trans_burs_doc
from bursar.jobs.rollforward import settle_sent_lines
from bursar.profile import ProfileError, account_for
from bursar.rules import columns as c
from bursar.rules import ledger
from bursar.rules.bursar_file import charge_account
from bursar.rules.legacy import LegacyError, SierraNote, legacy_parts, load_xref, parse_sierra_note
from bursar.rules.rows import (
    NO_LOAN,
    FineRecord,
    RowError,
    TransRecord,
    load_ignore_list,
    parse_balance,
    parse_fine,
    parse_timestamp,
    parse_transaction,
)
from bursar.runtime import crash, fs
from bursar.runtime.progress import Progress
from bursar.runtime.summary import Summary

WATERMARK = "importAlmaFines.lastSuccess"
# fines whose last report row could not be used: {fine id: the date to re-read from}; the next
# import's window reaches back to the oldest, so each is re-read until a good row comes
FLAGGED = "importAlmaFines.flaggedFines"
_REPORT_SETTINGS = {"All Fines": "ALMA_REPORT_FINES", "All Transactions": "ALMA_REPORT_TRANSACTIONS",
                    "All User Balances": "ALMA_REPORT_BALANCES"}


@dataclass
class StagedReport:
    name: str
    path: Path
    rows: int
    windows: int = 1

    def __iter__(self) -> Iterator[dict]:
        with self.path.open(encoding="utf-8") as fh:
            for line in fh:
                yield json.loads(line)


def run(ctx: JobContext, *, full: bool = False) -> Summary:
    settings = ctx.settings
    fines_path = settings.require("ALMA_REPORT_FINES", "importAlmaFines")
    trans_path = settings.require("ALMA_REPORT_TRANSACTIONS", "importAlmaFines")
    balances_path = settings.get("ALMA_REPORT_BALANCES")
    ignore = _ignore_list(ctx)
    xref = _load_legacy_xref(ctx)  # checked before anything is fetched, not at the first Sierra fine
    since, incremental = _since(ctx, full)
    fines_required = list(c.FINES_REQUIRED)
    if settings.profile.select.by_user_group:
        fines_required.append(c.USER_GROUP)  # without it the selection cannot be made
    summary = ctx.effects.summary("importAlmaFines")
    summary.note(f"asked Alma for changes since {since:%Y-%m-%d %H:%M:%S}"
                 + (" (incremental)" if incremental else " (full)"))
    with recorded(ctx, "AlmaImport", summary):
        with staging(ctx) as tmp:
            jobs: list[tuple] = [("All Transactions", trans_path, Path(tmp) / "trans.jsonl",
                     _Windowing(c.TRANSACTIONS_FILTER_COLUMN, since, c.TRANS_ID),
                     c.TRANSACTIONS_COLUMNS, c.TRANSACTIONS_REQUIRED),
                    ("All Fines", fines_path, Path(tmp) / "fines.jsonl",
                     _Windowing(c.FINES_FILTER_COLUMN, since, c.FINE_ID), c.FINES_COLUMNS, fines_required)]
            if balances_path:
                jobs.append(("All User Balances", balances_path, Path(tmp) / "balances.jsonl",
                             None, c.BALANCES_COLUMNS, c.BALANCES_REQUIRED))
            staged = _stage_all(ctx, jobs)
            staged_trans, staged_fines = staged[0], staged[1]
            staged_balances = staged[2] if balances_path else None
            for report in (staged_fines, staged_trans, staged_balances):
                if report is not None:
                    summary.note(f"{report.name}: {report.rows} rows in {report.windows} "
                                 + ("window" if report.windows == 1 else "windows"))
            _check_plausible(ctx, staged_fines, incremental)
            crash.point("import.after_stage")
            with ctx.store.transaction():
                merger = _Merger(ctx, summary, ignore, xref, since=since)
                if staged_balances is not None:
                    merger.patrons(staged_balances)
                merger.fines(staged_fines)
                crash.point("import.mid_merge")
                merger.credits(staged_fines)
                merger.transactions(staged_trans)
                settle_sent_lines(ctx, summary)  # after a restore: what the Bursar has, before mirroring payments
                merger.alma_payments()
                merger.save_flagged()
                if _evidence(summary, staged_fines, staged_trans, incremental):
                    ctx.store.set_meta(WATERMARK, ctx.local_now.isoformat(), now=ctx.utc_now)
    return summary


# ---- staging ---------------------------------------------------------------------------------
# Each run stages into its own folder STAGING_DIR/pybursar-import-<pid>-<random> (0700, files
# 0600: the reports hold patron data).  The folder is removed when the run ends, on an error or
# Ctrl-C/SIGTERM too; what a SIGKILL or a power cut leaves is removed by the next import (only
# folders of ours whose process is gone, and inside them only our file names).
STAGING_PREFIX = "pybursar-import-"
STAGED_FILE_MODE = 0o600
_STAGED_FILES = frozenset({"trans.jsonl", "fines.jsonl", "balances.jsonl", "trans.seen.sqlite3",
                           "fines.seen.sqlite3", "trans.seen.sqlite3-journal", "fines.seen.sqlite3-journal",
                           "balances.merged.sqlite3", "balances.merged.sqlite3-journal"})
_STAGING_RE = re.compile(rf"^{STAGING_PREFIX}(\d+)-[A-Za-z0-9_]+$")
_OLD_STAGING_RE = re.compile(r"^bursar-import-[A-Za-z0-9_]+$")  # earlier versions, in the system temp folder
_OLD_STAGING_AGE = 24 * 3600  # seconds: an earlier version's folder this old is not a running import


@contextmanager
def staging(ctx: JobContext) -> Iterator[Path]:
    """A private folder for this run's staged reports, removed afterwards.

    In STAGING_DIR (created 0700).  A dry run never creates it: when it does not exist yet, the
    dry run stages in a private folder in the system temp folder (same name pattern, same
    cleanup)."""
    system_tmp = Path(tempfile.gettempdir())
    root = ctx.effects.staging_root(ctx.settings.staging_dir, system_tmp)
    if root != system_tmp:
        fs.ensure_dir(root, "STAGING_DIR")
        fs.make_private(root)
    for folder in {root, system_tmp}:
        remove_staging_leftovers(folder)
    with fs.os_errors("STAGING_DIR", root):
        run_dir = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=root))
    try:
        yield run_dir
    finally:
        _remove_run_dir(run_dir)


def remove_staging_leftovers(folder: Path) -> list[Path]:
    """Remove the staging folders a killed import left in `folder`: only folders named like ours,
    owned by this account, whose process is gone (an earlier version's folders in the system
    temp folder: when older than a day), and inside them only our staged file names.  Returns
    the folders removed."""
    removed: list[Path] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        ours = _STAGING_RE.match(entry.name)
        old = _OLD_STAGING_RE.match(entry.name)
        if not (ours or old):
            continue
        try:
            info = entry.lstat()
            if not entry.is_dir() or entry.is_symlink() or info.st_uid != os.getuid():
                continue
            if ours and _process_alive(int(ours.group(1))):
                continue
            if old and time.time() - info.st_mtime < _OLD_STAGING_AGE:
                continue
        except OSError:
            continue
        if _remove_run_dir(entry):
            removed.append(entry)
            log.info("removed a staging folder a stopped import left behind: %s", entry)
    return removed


def _remove_run_dir(folder: Path) -> bool:
    """Delete our staged files in `folder`, then the folder when that leaves it empty."""
    try:
        for item in folder.iterdir():
            if item.name in _STAGED_FILES and item.is_file() and not item.is_symlink():
                item.unlink()
        folder.rmdir()
    except OSError:
        return False
    return True


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: alive, another account's
        return True
    return True


def _ignore_list(ctx: JobContext) -> frozenset[str]:
    path = ctx.settings.ignore_file
    if path is None:
        return frozenset()
    try:
        return load_ignore_list(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BursarError(f"BURSAR_IGNORE_FILE {path} cannot be read: {exc.strerror}") from None


def _load_legacy_xref(ctx: JobContext) -> dict | None:
    """The legacy cross-reference file, read and parsed at the start: a missing or broken file
    stops the import before anything is fetched.  Unset: None (a Sierra fine is then reported)."""
    path = ctx.settings.legacy_xref_file
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SettingsError(f"BURSAR_LEGACY_XREF_FILE {path} does not exist") from None
    except IsADirectoryError:
        raise SettingsError(f"BURSAR_LEGACY_XREF_FILE {path} is a folder, not a file") from None
    except UnicodeDecodeError as exc:
        line = _line_of(path, exc.start)
        raise SettingsError(f"BURSAR_LEGACY_XREF_FILE {path} is not UTF-8 text (line {line})") from None
    except OSError as exc:
        raise SettingsError(f"BURSAR_LEGACY_XREF_FILE {path} cannot be read: {exc.strerror}") from None
    try:
        return load_xref(text)
    except LegacyError as exc:
        raise SettingsError(f"BURSAR_LEGACY_XREF_FILE {path}: {exc}") from None


def _line_of(path: Path, offset: int) -> int:
    """The 1-based line of a byte offset in a file."""
    try:
        return path.read_bytes()[:offset].count(b"\n") + 1
    except OSError:
        return 1


def _since(ctx: JobContext, full: bool) -> tuple[datetime, bool]:
    """Full history on the first run and with --full; afterwards, changes since the last
    successful import minus the overlap window (Analytics is refreshed nightly, so a window of
    days makes sure nothing that landed late is missed)."""
    floor = ctx.settings.import_since
    last = None if full else ctx.store.get_meta(WATERMARK)
    if not last:
        return floor, False
    since = datetime.fromisoformat(last) - timedelta(days=ctx.settings.import_overlap_days)
    flagged = ctx.store.get_meta(FLAGGED) or {}
    if flagged:  # a fine whose row was unusable is re-read, however long ago that was
        since = min(since, *(datetime.fromisoformat(d) for d in flagged.values()))
    return max(since.replace(hour=0, minute=0, second=0), floor), True


@dataclass(frozen=True)
class _Windowing:
    """How a report is fetched in windows of its prompted date column: the column's sawx
    expression, the oldest date asked for, and the heading of the row's id (for rows served
    twice at a window edge)."""
    column: str
    since: datetime
    key: str


_PAGE_SIZE = 1000   # rows per Analytics page (limit=)
_PAGE_MARGIN = 5    # pages allowed past what a run of ALMA_ANALYTICS_ROW_LIMIT rows needs
_DAY = timedelta(days=1)


class _SeenIds:
    """The ids of the rows staged from the windows kept so far, on disk (memory stays flat):
    a row whose date moved across a window edge between two runs is served by both."""

    def __init__(self, path: Path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), STAGED_FILE_MODE)
        os.close(fd)
        self._db = sqlite3.connect(path)
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("CREATE TABLE seen (id TEXT PRIMARY KEY, window INTEGER NOT NULL)")

    def add(self, row_id: str, window: int) -> bool:
        """Record the id; False when an earlier window already had it."""
        try:
            self._db.execute("INSERT INTO seen VALUES (?, ?)", (row_id, window))
        except sqlite3.IntegrityError:
            return False
        return True

    def forget(self, window: int) -> None:
        self._db.execute("DELETE FROM seen WHERE window = ?", (window,))

    def close(self) -> None:
        self._db.close()


class _Stopped(Exception):
    """Another report failed: this one stops fetching (its error is not the one to tell)."""


def _stage_all(ctx: JobContext, jobs: list[tuple]) -> list[StagedReport]:
    """Fetch the reports in parallel, one thread each, sharing the one Alma client and its rate
    limiter (Analytics pages are slow: seconds each).  Each is staged to its own file.  When one
    fails, the others stop at their next row and the first failure is raised: nothing is merged,
    and the message is the same as when the reports were fetched one after the other."""
    ctx.alma()  # built once, here: the threads share it
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=len(jobs), thread_name_prefix="report") as pool:
        futures = [pool.submit(_stage, ctx, *job, stop=stop) for job in jobs]
        try:
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        finally:
            if not all(f.done() and f.exception() is None for f in futures):
                stop.set()  # a failure, or Ctrl-C / SIGTERM in this thread: the others stop too
            wait(futures)
    failures = [f.exception() for f in futures if f.exception() is not None]
    first = next((e for e in failures if not isinstance(e, _Stopped)), None)
    if first is not None:
        raise first
    return [f.result() for f in futures]


def _stage(ctx: JobContext, name: str, path: str, out: Path, windowing: _Windowing | None,
           fallback: list[str], required: list[str], *, stop: threading.Event | None = None) -> StagedReport:
    """Fetch the report to `out`, one JSON line per row.

    Analytics stops a report run at a row cap without saying so, so a run that returns
    ALMA_ANALYTICS_ROW_LIMIT rows or more is never taken: with a date column the window is
    split in half and fetched again, down to one day; a one-day window still at the limit, or a
    capped report without a date column, stops the import (nothing is merged).  Windows are
    `column >= start AND column < end`; the last is open-ended."""
    limit = ctx.settings.analytics_row_limit
    max_pages = math.ceil(limit / _PAGE_SIZE) + _PAGE_MARGIN
    setting = _REPORT_SETTINGS.get(name)
    which = f"the {name} report" + (f" ({setting})" if setting else "")
    log.info("fetching Analytics report %r", name)
    today_end = midnight(ctx.local_now.date()) + _DAY
    # windows still to fetch, the next one last; None end: open-ended
    pending: list[tuple[datetime | None, datetime | None]] = [
        (windowing.since, None) if windowing else (None, None)]
    seen: _SeenIds | None = None
    count = windows = 0
    progress = Progress(f"{name} rows fetched")
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), STAGED_FILE_MODE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            while pending:
                start, end = pending.pop()
                filter_xml = window_filter(windowing.column, start, end) if windowing and start else None
                report = iter_report(ctx.alma(), path, filter_xml=filter_xml, fallback_columns=fallback,
                                     setting=setting, limit=_PAGE_SIZE, max_pages=max_pages)
                mark = fh.tell()
                served = written = 0
                try:
                    for row in report:
                        if stop is not None and stop.is_set():
                            raise _Stopped(name)
                        if served == 0:
                            _check_columns(name, report.columns, required)
                        served += 1
                        if served >= limit:
                            break
                        if seen is not None and windowing is not None:
                            row_id = row.get(windowing.key)
                            if row_id and not seen.add(row_id, windows):
                                continue  # staged from an earlier window already
                        fh.write(json.dumps(row, separators=(",", ":")))
                        fh.write("\n")
                        written += 1
                        progress.step()
                finally:
                    report.close()
                if served < limit:
                    _check_columns(name, report.columns, required)
                    windows += 1
                    count += written
                    continue
                # capped: throw this window's rows away and fetch it again in halves
                fh.seek(mark)
                fh.truncate()
                if windowing is None or start is None:
                    raise ReportError(f"{which} returned {limit} rows or more, the row limit of one "
                                      "Analytics run (ALMA_ANALYTICS_ROW_LIMIT), so it may be cut short; "
                                      "it has no date filter to fetch it in smaller parts; nothing was changed")
                top = end or max(today_end, start + _DAY)
                if top - start <= _DAY:
                    raise ReportError(f"{which} returned {limit} rows or more for the one day "
                                      f"{start:%Y-%m-%d}, the row limit of one Analytics run "
                                      "(ALMA_ANALYTICS_ROW_LIMIT); it cannot be fetched in smaller "
                                      "windows; nothing was changed")
                half_days = max(1, math.floor((top - start) / _DAY / 2))
                middle = start + timedelta(days=half_days)
                log.info("report %r: %d rows or more from %s; fetching it in two halves from %s",
                         name, limit, f"{start:%Y-%m-%d}", f"{middle:%Y-%m-%d}")
                if seen is None:
                    seen = _SeenIds(out.with_suffix(".seen.sqlite3"))
                else:
                    seen.forget(windows)
                pending.append((middle, end))
                pending.append((start, middle))
    finally:
        if seen is not None:
            seen.close()
    progress.done()
    log.info("report %r: %d rows staged from %d window(s)", name, count, windows)
    return StagedReport(name, out, count, windows)


def _check_columns(name: str, columns: list[str], required: list[str]) -> None:
    missing = [heading for heading in required if heading not in columns]
    if missing == [c.USER_GROUP]:  # required only by a profile that selects by user group
        raise ProfileError(f"the {name} report has no column {c.USER_GROUP!r}, but BURSAR_PROFILE selects "
                           "fines by user group (select.user_groups_include/user_groups_exclude); add the "
                           "column to the report in Alma Analytics, or remove those keys (nothing was imported)")
    if missing:
        raise ReportError(f"the {name} report has no column {missing[0]!r}"
                          + (f" (nor {', '.join(repr(m) for m in missing[1:])})" if len(missing) > 1 else "")
                          + "; check the report's columns in Alma Analytics")


def _check_plausible(ctx: JobContext, fines: StagedReport, incremental: bool) -> None:
    """An empty fines report is normal for a quiet incremental window, but a full read that
    returns nothing while the ledger has fines means Analytics is broken, not the library."""
    if fines.rows == 0 and not incremental:
        known = ctx.store.count("fines")
        if known:
            raise ReportError(f"the All Fines report returned no rows, but the ledger holds {known} fines; "
                              "Analytics is probably unavailable, nothing was changed")


def _evidence(summary: Summary, fines: StagedReport, trans: StagedReport, incremental: bool) -> bool:
    """Whether this import may move the watermark.  Every report was read to its end (a capped or
    endless run stops the import before this point), so an incremental window is complete.  A
    first or --full import that got no rows at all proves nothing: an empty answer must not
    make later runs look back only a few days, past the fines it hid."""
    if incremental or fines.rows or trans.rows:
        return True
    summary.flag("watermark", "the All Fines and All Transactions reports returned no rows on a "
                 "full import; the incremental watermark was not set, so the next import reads the "
                 "full history again")
    return False


_PATRON_BATCH = 500  # balances rows merged per look-up of the store


class _Merger:
    def __init__(self, ctx: JobContext, summary: Summary, ignore: frozenset[str], xref: dict | None = None,
                 *, since: datetime | None = None):
        self.ctx = ctx
        self.store = ctx.store
        self.summary = summary
        self.ignore = ignore
        self.stamp = ctx.utc_now
        self.credit_ids: set[str] = set()
        self._xref: dict | None = xref
        self.since = since
        self.flagged: dict[str, str] = dict(self.store.get_meta(FLAGGED) or {})
        self._flagged_before = dict(self.flagged)

    # -- patrons ------------------------------------------------------------------------
    def patrons(self, rows: StagedReport) -> None:
        # the patrons read so far, on disk beside the staged report: memory stays flat in the
        # number of patrons
        seen = _SeenIds(rows.path.with_suffix(".merged.sqlite3"))
        try:
            batch: list[tuple[str, Decimal]] = []
            for row in rows:
                try:
                    patron_id, balance = parse_balance(row)
                except RowError as exc:
                    self.summary.flag("balances report row", str(exc))
                    continue
                if not seen.add(patron_id, 0):  # first occurrence wins, as in the original
                    continue
                batch.append((patron_id, balance))
                if len(batch) == _PATRON_BATCH:
                    self._merge_patrons(batch)
                    batch = []
            self._merge_patrons(batch)
        finally:
            seen.close()

    def _merge_patrons(self, batch: list[tuple[str, Decimal]]) -> None:
        """One look-up of a batch of the report's patrons: the report lists every patron with
        a balance, every day, so one round trip per row would cost more than the rest of a
        daily merge."""
        if not batch:
            return
        known: dict[str, dict] = {}
        for found in self.store.find("patrons", {"almaPatronId": [patron_id for patron_id, _ in batch]}):
            known.setdefault(found["almaPatronId"], found)  # the oldest, as a look-up of one would find
        for patron_id, balance in batch:
            doc = known.get(patron_id)
            if doc is None:
                self.store.insert("patrons", {"almaPatronId": patron_id, "balance": balance,
                                              "created": self.stamp, "updated": self.stamp})
                self.summary.count("patrons new")
            elif doc["balance"] != balance:
                self.store.update("patrons", doc["id"], {"balance": balance, "updated": self.stamp})
                self.summary.count("patrons updated")

    def _patron_id(self, alma_patron_id: str) -> int:
        doc = self.store.find_one("patrons", {"almaPatronId": alma_patron_id})
        if doc is not None:
            return doc["id"]
        # A fine's patron may be missing from the balances report (or it is not configured):
        # create the patron instead of crashing (docs/original-defects.md §27).
        return self.store.insert("patrons", {"almaPatronId": alma_patron_id, "balance": None,
                                             "created": self.stamp, "updated": self.stamp})

    # -- debit fines --------------------------------------------------------------------
    def fines(self, rows: StagedReport) -> None:
        for row in rows:
            fine_id = row.get(c.FINE_ID)
            if fine_id in self.ignore:
                self.summary.count("rows ignored (ignore list)")
                continue
            try:
                record = parse_fine(row)
            except RowError as exc:
                self._flag(fine_id, row, exc)
                continue
            if self.flagged.pop(record.rootAlmaFineId, None) is not None:
                self.summary.note(f"fine {record.rootAlmaFineId}: a usable row came after an unusable one; "
                                  "merged now")
            if record.is_credit:
                self.credit_ids.add(record.rootAlmaFineId)
                continue
            existing = self.store.find_one("fines", {"rootAlmaFineId": record.rootAlmaFineId})
            note = parse_sierra_note(record.almaNote)
            if existing is None and note is not None:
                self._insert_sierra_fine(record, note)
            elif existing is None:
                self._insert_fine(record)
                self.summary.count("fines new", amount=record.origAmtAlma)
            else:
                if existing["isSierraFine"] and note is not None:
                    record = replace(record, almaNote=note.fine_comment)  # stored as the note's comment
                self._update_fine(existing, record)

    def _flag(self, fine_id: str | None, row: dict, exc: RowError) -> None:
        """An unusable row: reported, never merged, and its fine re-read by the next imports
        (the window reaches back to the date kept here) until a usable row comes."""
        if not fine_id or not fine_id.strip():
            self.summary.flag("fine (no id)", str(exc))
            return
        fine_id = fine_id.strip()
        if fine_id not in self.flagged:
            try:
                status = parse_timestamp((row.get(c.STATUS_DATE) or "").strip() or None, c.STATUS_DATE)
            except RowError:
                status = None
            since = self.since or self.ctx.settings.import_since
            start = status if status is not None and status >= since else since
            self.flagged[fine_id] = start.isoformat()
        self.summary.flag(f"fine {fine_id}", f"{exc}; this row was not used (what we know of the fine is "
                          f"unchanged) and the fine is read again from {self.flagged[fine_id][:10]} "
                          "until a usable row comes")

    def save_flagged(self) -> None:
        if self.flagged != self._flagged_before:
            self.store.set_meta(FLAGGED, self.flagged, now=self.stamp)

    def _fine_fields(self, record: FineRecord) -> dict:
        return {
            "patron": self._patron_id(record.almaPatronId),
            "almaPatronId": record.almaPatronId,
            "rootAlmaFineId": record.rootAlmaFineId,
            "almaLoanId": record.almaLoanId,
            "isSierraFine": False,
            "almaCreated": record.almaCreated,
            "almaUpdated": record.almaUpdated,
            "type": record.type,
            "origAmtAlma": record.origAmtAlma,
            "remAmtAlma": record.remAmtAlma,
            "isClosedInAlma": record.isClosedInAlma,
            "almaNote": record.almaNote,
            "created": self.stamp,
            "updated": self.stamp,
        }

    def _insert_root_line(self, fine_id: int, record: FineRecord, *, new: bool) -> None:
        """The fine's original amount as its first Alma line (a Credit when negative); `new`
        marks it for export (never for legacy fines, which the Bursar already has)."""
        root = ledger.AlmaLine("Fine" if record.origAmtAlma >= 0 else "Credit", record.origAmtAlma)
        self.store.insert("trans_alma", trans_alma_doc(fine_id, record.rootAlmaFineId, root, self.stamp,
                                                       new=new and root.type == "Fine", created=record.almaCreated))

    def _insert_fine(self, record: FineRecord) -> None:
        s = self.ctx.settings
        fine_id = self.store.insert("fines", self._fine_fields(record))
        self.store.insert("item_details", {"fine": fine_id, **record.item,
                                           "created": self.stamp, "updated": self.stamp})
        self._insert_root_line(fine_id, record, new=True)
        self.store.insert("fine_mds", {
            "fine": fine_id, "bursFineId": record.rootAlmaFineId, "alma_fine_id": record.rootAlmaFineId,
            "isReplFee": record.type == "Lost item replacement fee",
            "chargeAcc": account_for(s.profile, record.type, record.locationCode, settings_rule=lambda loc, fee: (
                charge_account(loc, fee, law_pattern=s.law_pattern, law=s.account_law,
                               replacement=s.account_replacement, default=s.account_default))),
            "billingDate": None, "fineDueDate": None, "termCode": None,
            "created": self.stamp, "updated": self.stamp,
        })

    # -- legacy Sierra fines (docs/ledger.md §9) ----------------------------------------------
    def _legacy_xref(self) -> dict:
        if self._xref is None:  # read at the start of the run when set (_load_legacy_xref)
            raise LegacyError("BURSAR_LEGACY_XREF_FILE is not set")
        return self._xref

    def _insert_sierra_fine(self, record: FineRecord, note: SierraNote) -> None:
        """A fine migrated from Sierra was billed under its Sierra references: its parts come
        from the cross-reference file and its Bursar lines are recorded as already sent."""
        try:
            parts = legacy_parts(note, self._legacy_xref(), record.origAmtAlma)
        except LegacyError as exc:
            self.summary.flag(f"fine {record.rootAlmaFineId}", f"legacy Sierra fine: {exc}; not imported")
            return
        fine_id = self.store.insert("fines", {
            **self._fine_fields(record), "isSierraFine": True, "almaNote": note.fine_comment})
        self.store.insert("item_details", {
            "fine": fine_id, "title": note.title, "author": None, "callNumber": None, "barcode": note.barcode,
            "loanDate": note.out_date, "dueDate": note.due_date, "returnedDate": note.returned_date,
            "locationCode": None, "created": self.stamp, "updated": self.stamp})
        self._insert_root_line(fine_id, record, new=False)
        for part, billed in parts:
            self.store.insert("fine_mds", {
                "fine": fine_id, "bursFineId": part.bursar_ref_id, "alma_fine_id": record.rootAlmaFineId,
                "isReplFee": part.is_replacement, "chargeAcc": part.account,
                "billingDate": midnight(part.billing_date), "fineDueDate": midnight(part.due_date),
                "termCode": part.term_code, "created": self.stamp, "updated": self.stamp})
            self.store.insert("trans_burs", trans_burs_doc(
                fine_id, ledger.BursLine("Fine", billed, part.bursar_ref_id), self.stamp, export=False))
        self.summary.count("legacy Sierra fines new", amount=record.origAmtAlma)

    _COMPARED = ("almaUpdated", "isClosedInAlma", "remAmtAlma", "almaNote")

    def _update_fine(self, existing: dict, record: FineRecord) -> None:
        changes = {f: getattr(record, f) for f in self._COMPARED if existing[f] != getattr(record, f)}
        if existing["origAmtAlma"] != record.origAmtAlma:
            self.summary.flag(f"fine {record.rootAlmaFineId}",
                              f"original amount changed in Alma from {existing['origAmtAlma']} to "
                              f"{record.origAmtAlma}; the ledger keeps the first amount")
        item = None
        if changes or "userGroup" in record.item:  # no extra read per unchanged fine otherwise
            item = self.store.find_one("item_details", {"fine": existing["id"]}, order_by="id", descending=True)
        if not changes:
            group = record.item.get("userGroup")
            if item is not None and "userGroup" in record.item and item.get("userGroup") != group:
                # the optional column, first seen (or changed) for an unchanged fine: a profile
                # that selects by user group needs it (a full import fills it in)
                self.store.update("item_details", item["id"], {"userGroup": group, "updated": self.stamp})
                self.summary.count("fines: user group recorded")
                return
            self.summary.count("fines unchanged")
            return
        self.store.update("fines", existing["id"], {**changes, "updated": self.stamp})
        if item is None:
            self.store.insert("item_details", {"fine": existing["id"], **record.item,
                                               "created": self.stamp, "updated": self.stamp})
        else:
            item_changes = {k: v for k, v in record.item.items() if item.get(k) != v}
            if item_changes:
                self.store.update("item_details", item["id"], {**item_changes, "updated": self.stamp})
        self.summary.count("fines updated")

    # -- credit fines -------------------------------------------------------------------
    def credits(self, rows: StagedReport) -> None:
        for row in rows:
            if row.get(c.FINE_ID) in self.ignore or row.get(c.FINE_TYPE) != "Credit":
                continue
            try:
                record = parse_fine(row)
            except RowError:
                continue  # already reported by fines()
            self._credit(record)

    def _credit(self, cf: FineRecord) -> None:
        ref = f"credit {cf.rootAlmaFineId}"
        if self.store.find_one("fines", {"rootAlmaFineId": cf.rootAlmaFineId}) is not None:
            return  # stored on its own earlier
        if self.store.find_one("trans_alma", {"almaFineId": cf.rootAlmaFineId}) is not None:
            return  # already distributed
        credit = abs(cf.origAmtAlma)
        on_loan = [] if cf.almaLoanId == NO_LOAN else [
            ledger.LoanFine(f["id"], f["almaPatronId"], f["type"], alma_lines(self.store, f["id"]))
            for f in list(self.store.find("fines", {"almaLoanId": cf.almaLoanId}))]
        match = ledger.match_credit(credit, cf.almaLoanId, cf.almaPatronId, on_loan)
        if match.unmatched:
            self._store_standalone_credit(cf)
            self.summary.flag(ref, f"credit of {credit} could not be matched to a fine ({match.unmatched}); "
                                   "kept on its own, settle it with the Bursar by hand")
            return
        for fine_id, amount in match.shares:
            self.store.insert("trans_alma", trans_alma_doc(fine_id, cf.rootAlmaFineId,
                                                           ledger.AlmaLine("Credit", -amount), self.stamp, new=True))
        self.summary.count("credits distributed", amount=credit - match.remainder)
        if match.remainder:
            self.summary.flag(ref, f"credit of {credit} exceeds what loan {cf.almaLoanId} was charged "
                                   f"by {match.remainder}; the excess was not applied")

    def _store_standalone_credit(self, cf: FineRecord) -> None:
        fine_id = self.store.insert("fines", self._fine_fields(cf))
        self._insert_root_line(fine_id, cf, new=False)

    # -- transactions -------------------------------------------------------------------
    def transactions(self, rows: StagedReport) -> None:
        for row in rows:
            fine_ref = row.get(c.FINE_ID)
            if fine_ref in self.ignore:
                self.summary.count("rows ignored (ignore list)")
                continue
            try:
                record = parse_transaction(row)
            except RowError as exc:
                self.summary.flag(f"transaction {row.get(c.TRANS_ID) or '(no id)'} of fine {fine_ref}", str(exc))
                continue
            self._transaction(record)

    def _transaction(self, t: TransRecord) -> None:
        existing = self.store.find_one("trans_alma", {"almaTransId": t.almaTransId})
        fine = self.store.find_one("fines", {"rootAlmaFineId": t.almaFineId})
        if existing is None:
            if fine is None or fine["type"] == "Credit":
                if t.almaFineId in self.credit_ids or fine is not None or \
                        self.store.find_one("trans_alma", {"almaFineId": t.almaFineId}) is not None:
                    self.summary.count("transactions on credit fines (not needed)")
                else:
                    self.summary.flag(f"transaction {t.almaTransId}",
                                      f"its fine {t.almaFineId} is not in the ledger; it will be retried")
                return
            self.store.insert("trans_alma", trans_alma_doc(
                fine["id"], t.almaFineId, ledger.AlmaLine(t.type, t.amt), self.stamp, new=True,
                trans_id=t.almaTransId, created=t.almaCreated, note=t.almaNote))
            self.summary.count(f"transactions new ({t.type})", amount=abs(t.amt))
            return
        if existing["amt"] != t.amt or existing["type"] != t.type:
            self.summary.flag(f"transaction {t.almaTransId}",
                              f"changed in Alma from {existing['type']} {existing['amt']} to {t.type} {t.amt}; "
                              "the ledger keeps the first version")
        changes: dict = {}
        if existing["almaNote"] != t.almaNote:
            changes["almaNote"] = t.almaNote
        if existing["almaFineId"] != t.almaFineId:
            changes["almaFineId"] = t.almaFineId
            if fine is not None:
                changes["fine"] = fine["id"]  # keep the relation true (docs/original-defects.md §28)
        if changes:
            self.store.update("trans_alma", existing["id"], {**changes, "updated": self.stamp})
            self.summary.count("transactions updated")

    # -- Alma payments mirrored into the Bursar ledger (docs/ledger.md §10) -----------------
    def alma_payments(self) -> None:
        """A payment recorded in Alma is assumed to have come from the Bursar (Direction 2), so
        the Bursar already knows: record it on the Bursar side without exporting it."""
        # Streamed (memory must not grow with the report): only the payment read is changed
        # below, so each streamed document is current.
        for payment in self.store.find("trans_alma", {"newAlmaImp": True, "type": "Payment"}):
            parts = [md["bursFineId"] for md in self.store.find("fine_mds", {"fine": payment["fine"]})]
            lines, excess = ledger.mirror_alma_payment(abs(payment["amt"]), parts,
                                                       burs_lines(self.store, payment["fine"]))
            for line in lines:
                self.store.insert("trans_burs", trans_burs_doc(payment["fine"], line, self.stamp, export=False))
            if lines:
                self.store.update("trans_alma", payment["id"], {"newAlmaImp": False, "updated": self.stamp})
                self.summary.count("Alma payments mirrored", amount=sum((-ln.amt for ln in lines), Decimal("0.00")))
            if excess and lines:
                self.summary.note(f"Alma payment {payment['almaTransId']}: {excess} more than the Bursar "
                                  "was owed; the export step settles the difference")
