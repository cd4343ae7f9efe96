"""reconcile: a read-only three-way check of Alma, our ledger and the Bursar, with a CSV and an
HTML report in REPORTS_DIR.

Why it streams: a site has 100,000 fines and more.  Every collection is read once in fine order
(store.find ordered by `fine`, merged on the fine id like a sorted join), each fine's facts are
summed and classified (bursar.rules.reconcile_rules) and its differences are written to the CSV at
once; nothing the size of the ledger is ever held in memory.  The HTML page is then rendered
from the CSV file, so the two cannot disagree.  What is kept: the payment rows that name no fine
(few), the lines of exports not yet uploaded (one export), the credits taken from separate credit
fees (few) and thirteen months of chart totals.

The Alma side is the view the latest importAlmaFines recorded; the summary says how old it is.
Payments we applied since that import are in Alma but not in the view: they are "in flight" and
explain the difference they make.  `--live` asks the fees API about every fine that differs and
drops the differences Alma no longer shows (the next import will catch up).

Run from `today` on the days RECONCILE_ON names (after the backup), the HTML report is put on
the summary's attachments for the e-mail, and the run is recorded as a "Reconcile" job (which
is how `monthly` knows the month's first run).
"""

from __future__ import annotations

import csv
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from bursar.errors import AlmaDailyLimitError, AlmaError
from bursar.jobs.context import JobContext, recorded
from bursar.jobs.export_files import Labels
from bursar.profile import BadLine
from bursar.rules import ledger
from bursar.rules import reconcile_rules as rules
from bursar.rules.money import ZERO
from bursar.runtime import fs
from bursar.runtime.report_html import ReportMeta, render_report
from bursar.runtime.summary import Summary
from bursar.settings import Settings
from bursar.store import Store, find_store, no_store

WATERMARK = "importAlmaFines.lastSuccess"  # bursar.jobs.import_fines.WATERMARK
JOB_TYPE = "Reconcile"
CSV_COLUMNS = ["class", "title", "fine_id", "reference", "patron", "amount", "alma_balance", "alma_status",
               "billed", "reversed", "pending", "paid_at_bursar", "applied_in_alma", "bursar_outstanding",
               "last_line", "last_payment", "live", "detail"]
FILE_MODE = 0o600
UNSENT_STATES = ("building", "written")
MONEY_ROWS_SKIPPED_FOR_GOOD = ("closed in Alma", "nothing owed")  # money the Bursar took, not applied


# -- entry points ----------------------------------------------------------------------------------

def run_command(settings: Settings, *, live: bool = False) -> Summary:
    """The read-only `reconcile` command: opens an existing store only (never creates one)."""
    store = find_store(settings.db, money=settings.get("BURSAR_MONGO_MONEY") or "auto")
    if store is None:
        raise no_store(settings.db)
    with JobContext(settings=settings, store=store, now=settings.now()) as ctx:
        summary = run(ctx, live=live)
    summary.stamp(host=socket.gethostname(), started=ctx.now)
    return summary


def due(ctx: JobContext) -> bool:
    """Does RECONCILE_ON ask `today` to reconcile today?  Weekday names, or `monthly`: the
    month's first run (no Reconcile job has succeeded yet this month)."""
    days = ctx.settings.reconcile_on
    if not days:
        return False
    if ctx.today.strftime("%a").lower() in days:
        return True
    if "monthly" in days:
        for job in ctx.store.find("jobs", {"type": JOB_TYPE, "status": "Success"}, order_by="id", descending=True,
                                  limit=1):
            started = job["started"]
            if started is not None:
                local = started.replace(tzinfo=UTC).astimezone(ctx.now.tzinfo)
                return (local.year, local.month) != (ctx.today.year, ctx.today.month)
        return True
    return False


def run_scheduled(ctx: JobContext) -> Summary:
    """`today`'s reconcile step: recorded as a job, its HTML report attached to the summary."""
    summary = ctx.effects.summary("reconcile")
    with recorded(ctx, JOB_TYPE, summary):
        run(ctx, summary=summary)
    return summary


def run(ctx: JobContext, *, live: bool = False, summary: Summary | None = None) -> Summary:
    summary = summary if summary is not None else ctx.effects.summary("reconcile")
    store = ctx.store
    report = _Report(ctx, live)
    folder = ctx.effects.ensure_dir(ctx.settings.reports_dir, "REPORTS_DIR")
    fs.make_private(folder)
    scratch = Path(tempfile.mkdtemp(prefix="pybursar-reconcile-"))
    try:
        work = ctx.effects.staging_root(folder, scratch)
        stem = f"reconcile-{ctx.today:%Y%m%d}"
        tmp_csv = work / f".{stem}.csv.{os.getpid()}.tmp"
        tmp_html = work / f".{stem}.html.{os.getpid()}.tmp"
        try:
            with fs.os_errors("REPORTS_DIR", folder), _private_file(tmp_csv) as fh:
                writer = csv.writer(fh, lineterminator="\n")
                writer.writerow(CSV_COLUMNS)
                report.sweep(store, writer)
                fh.flush()
                os.fsync(fh.fileno())
            meta = report.meta(csv_name=f"{stem}.csv")
            with fs.os_errors("REPORTS_DIR", folder), _private_file(tmp_html) as out, \
                    tmp_csv.open(encoding="utf-8", newline="") as rows_in:
                render_report(meta, csv.DictReader(rows_in), out)
                out.flush()
                os.fsync(out.fileno())
            final_csv, final_html = folder / f"{stem}.csv", folder / f"{stem}.html"
            with fs.os_errors("REPORTS_DIR", folder):
                ctx.effects.move(tmp_csv, final_csv)
                ctx.effects.move(tmp_html, final_html)
        finally:
            for leftover in (tmp_csv, tmp_html):  # a dry run moves nothing; a failure leaves no temp file
                leftover.unlink(missing_ok=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report.fill(summary)
    ctx.effects.done(summary, f"reports: {final_csv} and {final_html}")
    html = ctx.effects.locate(final_html)
    if html is not None:
        summary.attachments.append(html)
    return summary


# -- the sweep -------------------------------------------------------------------------------------

class _Report:
    """Everything the sweep adds up; the rows themselves go straight to the CSV."""

    def __init__(self, ctx: JobContext, live: bool):
        self.ctx = ctx
        self.live = live
        self.today = ctx.today
        self.tz = ctx.now.tzinfo
        self.totals = rules.Totals()
        self.classes = rules.ClassTotals()
        self.months = rules.last_months(self.today)
        self.chart: dict[str, list[Decimal]] = {m: [ZERO, ZERO, ZERO] for m in self.months}
        self.resolved: list[str] = []
        self.live_checked = 0
        self.alma_as_of: datetime | None = None
        self.seen_before: datetime | None = None  # UTC: applied before this, the import saw it
        self.unsent: set[int] = set()
        self.labels: Labels | None = None

    # the store, once over ------------------------------------------------------------------------
    def sweep(self, store: Store, writer: Any) -> None:
        self._alma_view(store)
        self._unsent_lines(store)
        extra, row_diffs = self._unmatched_rows(store)
        credited: dict[int, Decimal] = {}
        fines = store.find("fines", order_by="id")
        alma = _Groups(store.find("trans_alma", order_by="fine"))
        burs = _Groups(store.find("trans_burs", order_by="fine"))
        parts = _Groups(store.find("fine_mds", order_by="fine"))
        pays = _Groups(store.find("burs_payments", order_by="fine"))
        for fine in fines:
            fid = fine["id"]
            facts, extra_info = self._facts(fine, alma.take(fid), burs.take(fid), parts.take(fid),
                                            pays.take(fid) + extra.pop(fid, []), writer)
            if facts.separate_credits:
                credited[fid] = facts.separate_credits
            self.totals.add_fine(facts, extra_info["billed_on"], self.today)
            diffs = [(d, "") for d in rules.classify_fine(facts)]
            if diffs and self.live:
                diffs = self._confirm_live(fine, facts, [d for d, _ in diffs], extra_info["unapplied_ids"])
            for d, live in diffs:
                self._write(writer, d, fine=fine["rootAlmaFineId"], patron=fine["almaPatronId"], facts=facts,
                            last_line=extra_info["last_line"], last_payment=extra_info["last_payment"], live=live)
        for d, row in row_diffs:
            self._write(writer, d, fine=row.get("fineId") or "", patron=row["emplid"] or "", reference=row["ref"],
                        paid=row["paid"], last_payment=row["date"])
        self._patrons(store, credited, writer)
        self._exports(store)

    def _alma_view(self, store: Store) -> None:
        mark = store.get_meta(WATERMARK)
        if mark:
            local = datetime.fromisoformat(str(mark))
            self.alma_as_of = local.replace(tzinfo=None)
            aware = local.replace(tzinfo=self.tz) if local.tzinfo is None else local
            self.seen_before = aware.astimezone(UTC).replace(tzinfo=None)

    def _unsent_lines(self, store: Store) -> None:
        """Lines in an export not yet uploaded (one export, usually none) are still pending."""
        for export in store.find("burs_exports", {"state": list(UNSENT_STATES)}):
            self.unsent.update(t["transBurs"] for t in store.find("burs_export_trans", {"bursExport": export["id"]}))

    def _unmatched_rows(self, store: Store) -> tuple[dict[int, list[dict]], list[tuple[rules.Difference, dict]]]:
        """Payment rows the payments job never tied to a fine: a reference that is no fine of
        ours, another patron's fine, or a row never tried.  The ones that belong to a fine join
        its facts; the others are differences of their own."""
        extra: dict[int, list[dict]] = {}
        diffs: list[tuple[rules.Difference, dict]] = []
        for row in store.find("burs_payments", {"fine": None}):
            if not rules.carries_money(row["paidAmount"]):
                continue
            ref = row["referenceNumber"] or ""
            md = store.find_one("fine_mds", {"bursFineId": ref}) if ref else None
            fine = store.get("fines", md["fine"]) if md else None
            facts = rules.RowFacts(ref, row["emplid"] or "", row["paidAmount"], fine is not None,
                                   fine["almaPatronId"] if fine else None)
            d = rules.classify_row(facts)
            if d is not None:
                diffs.append((d, {"emplid": row["emplid"], "ref": ref, "paid": row["paidAmount"],
                                  "date": _date_paid(row["datePaid"]),
                                  "fineId": fine["rootAlmaFineId"] if fine else ""}))
            elif fine is not None:
                extra.setdefault(fine["id"], []).append(row)
        return extra, diffs

    def _facts(self, fine: dict, alma: list[dict], burs: list[dict], parts: list[dict], pays: list[dict],
               writer: Any) -> tuple[rules.FineFacts, dict]:
        root = fine["rootAlmaFineId"]
        separate = -sum((t["amt"] for t in alma if t["type"] == "Credit" and t["almaTransId"] is None
                         and t["almaFineId"] != root), ZERO)
        charged = reversed_ = pending = mirrored = ZERO
        last_line: datetime | None = None
        for t in burs:
            amt: Decimal = t["amt"]
            stamp = t["created"]
            if stamp is not None and (last_line is None or stamp > last_line):
                last_line = stamp
            if t["type"] == "Payment":
                mirrored -= amt
            elif t["newBursExp"] or t["id"] in self.unsent:
                pending += amt
            elif amt > 0:
                charged += amt
            else:
                reversed_ -= amt
        if any(t["newAlmaImp"] for t in alma):
            # Alma activity the export has not turned into lines yet: what it will send is pending
            decision = ledger.decide(ledger.FineState(
                fine_id=fine["id"], orig_amt=fine["origAmtAlma"], is_sierra=bool(fine["isSierraFine"]),
                alma=[ledger.AlmaLine(t["type"], t["amt"]) for t in alma],
                burs=[ledger.BursLine(t["type"], t["amt"], t["bursFineId"]) for t in burs],
                parts=[md["bursFineId"] for md in parts]))
            pending += sum((line.amt for line in decision.lines), ZERO)
        paid = applied = seen = unapplied = ZERO
        last_payment: date | None = None
        unapplied_ids: list[str] = []
        for row in pays:
            if not rules.carries_money(row["paidAmount"]):
                continue
            d = rules.classify_row(rules.RowFacts(row["referenceNumber"] or "", row["emplid"] or "",
                                                  row["paidAmount"], True, fine["almaPatronId"]))
            if d is not None:  # another patron's Emplid on our fine: its own difference
                self._write(writer, d, fine=root, patron=row["emplid"] or "", reference=row["referenceNumber"],
                            paid=row["paidAmount"], last_payment=_date_paid(row["datePaid"]))
                continue
            amount: Decimal = row["paidAmount"]
            paid += amount
            self._chart_payment(row)
            when = _date_paid(row["datePaid"])
            if when is not None and (last_payment is None or when > last_payment):
                last_payment = when
            done = ZERO
            if row["state"] == "applied":
                done = row["amountApplied"] if row["amountApplied"] is not None else amount
                applied += done
                at = row["appliedAt"]
                if at is None or self.seen_before is None or at < self.seen_before:
                    seen += done
            if done < amount:
                unapplied += amount - done
                if row["state"] in ("pending", "failed") and row["externalTransactionId"]:
                    unapplied_ids.append(row["externalTransactionId"])
        billing = [md["billingDate"] for md in parts if md["billingDate"] is not None]
        billed_on = max(billing).date() if billing else (self._local(last_line) if last_line else None)
        facts = rules.FineFacts(
            fine=root, patron=fine["almaPatronId"] or "", alma_remaining=fine["remAmtAlma"],
            alma_closed=bool(fine["isClosedInAlma"]), separate_credits=separate, charged=charged,
            reversed=reversed_, pending=pending, mirrored=mirrored, paid=paid, applied=applied,
            applied_seen=seen, unapplied=unapplied)
        return facts, {"billed_on": billed_on, "last_line": self._local(last_line) if last_line else None,
                       "last_payment": last_payment, "unapplied_ids": unapplied_ids}

    def _patrons(self, store: Store, credited: dict[int, Decimal], writer: Any) -> None:
        """The All User Balances figure against the patron's fees: patrons and fines both read
        in patron order and merged."""
        fines = _Groups(store.find("fines", order_by="patron"), key="patron")
        for patron in store.find("patrons", order_by="id"):
            mine = fines.take(patron["id"])
            if patron["balance"] is None:
                continue
            fees = sum(((f["remAmtAlma"] or ZERO) - credited.get(f["id"], ZERO) for f in mine), ZERO)
            d = rules.classify_patron(patron["balance"], fees)
            if d is not None:
                self._write(writer, d, patron=patron["almaPatronId"] or "", alma_balance=patron["balance"])

    def _exports(self, store: Store) -> None:
        """Charges and reversals sent, by the month of their export (the export's control
        totals; an export the original pyBursar made has none: its lines are summed)."""
        for export in store.find("burs_exports"):
            if export["state"] in UNSENT_STATES or (export["state"] is None and export["sent_to_bursar"] is None):
                continue
            month = _export_month(export, self._local)
            if month not in self.chart:
                continue
            charges, reversals = export["chargesTotal"], export["reversalsTotal"]
            if charges is None or reversals is None:
                charges = reversals = ZERO
                for t in store.find("burs_export_trans", {"bursExport": export["id"]}):
                    amount = self._line_amount(t)
                    if amount > 0:
                        charges += amount
                    else:
                        reversals -= amount
            self.chart[month][0] += charges
            self.chart[month][1] += reversals

    def _line_amount(self, row: dict) -> Decimal:
        """A stored line's signed amount, read back with the profile that wrote it (an
        unreadable line counts nothing; the export's own totals are there for every export
        but the original's).  A patron's line (aggregate = "patron") holds several ledger lines
        and names none of them: each member counts its own ledger line's amount."""
        if row.get("lineGroup"):
            tb = self.ctx.store.get("trans_burs", row["transBurs"])
            return tb["amt"] if tb is not None else ZERO
        if not row["line"]:
            return ZERO
        if self.labels is None:
            self.labels = Labels(self.ctx)
        try:
            return self.labels.parse(row["line"], row.get("profile"))[1].amount
        except BadLine:
            return ZERO

    def _chart_payment(self, row: dict) -> None:
        """Payments for our fines (the rows naming no fine of ours are differences, not payments)."""
        when = _date_paid(row["datePaid"])
        if when is not None:
            month = f"{when:%Y-%m}"
            if month in self.chart:
                self.chart[month][2] += row["paidAmount"]

    # one difference --------------------------------------------------------------------------------
    def _write(self, writer: Any, d: rules.Difference, *, fine: str = "", patron: str = "",
               reference: str | None = None, facts: rules.FineFacts | None = None, paid: Decimal | None = None,
               alma_balance: Decimal | None = None, last_line: date | None = None,
               last_payment: date | None = None, live: str = "") -> None:
        self.classes.add(d)
        cls = d.cls
        if facts is not None:
            cells = [_m(facts.alma_remaining), "closed" if facts.alma_closed else "open", _m(facts.charged),
                     _m(facts.reversed), _m(facts.pending), _m(facts.paid), _m(facts.applied), _m(facts.outstanding)]
        else:
            cells = [_m(alma_balance), "", "", "", "", _m(paid), "", ""]
        writer.writerow([d.code, cls.title, fine, reference if reference is not None else (fine or ""), patron,
                         _m(d.amount), *cells, last_line.isoformat() if last_line else "",
                         last_payment.isoformat() if last_payment else "", live, d.detail])

    def _confirm_live(self, fine: dict, facts: rules.FineFacts, diffs: list[rules.Difference],
                      unapplied_ids: list[str]) -> list[tuple[rules.Difference, str]]:
        """Ask the fees API about a fine that differs: keep what live Alma confirms, each with
        a note of what Alma said."""
        from bursar.clients.alma.fees import FeeClosed, get_fee, list_fees

        http = self.ctx.alma()
        user, fee_id = fine["almaPatronId"], fine["rootAlmaFineId"]
        self.live_checked += 1
        try:
            try:
                fee = get_fee(http, user, fee_id)
                balance, status, txns = fee.balance, fee.status or "ACTIVE", fee.transactions
            except FeeClosed:
                balance, status, txns = ZERO, "CLOSED", []
                for closed in list_fees(http, user, status="CLOSED"):
                    if closed.id == fee_id:
                        txns = closed.transactions
        except AlmaDailyLimitError:
            raise
        except AlmaError as exc:
            return [(d, f"not confirmed: {exc}") for d in diffs]
        expected_now = facts.alma_expected - facts.in_flight
        found = {str(t.get("external_transaction_id") or "") for t in txns}
        keep: list[tuple[rules.Difference, str]] = []
        for d in diffs:
            gone = ((d.code in (rules.BALANCE_DIFFERS, rules.REVERSAL_MISSING) and balance == expected_now)
                    or (d.code == rules.PAID_NOT_APPLIED and any(i in found for i in unapplied_ids)))
            if gone:
                self.resolved.append(f"{fee_id} ({d.code})")
                continue
            keep.append((d, f"confirmed: Alma now {balance} {status}"))
        return keep

    # results ---------------------------------------------------------------------------------------
    def meta(self, *, csv_name: str) -> ReportMeta:
        return ReportMeta(
            today=self.today, generated=self.ctx.local_now, alma_as_of=self.alma_as_of, live=self.live,
            totals=self.totals, classes=self.classes, months=self.months,
            chart=[tuple(self.chart[m]) for m in self.months], csv_name=csv_name)  # type: ignore[misc]

    def fill(self, summary: Summary) -> None:
        t = self.totals
        summary.count("fines checked", t.fines)
        for label, n, amount in (("billed (charges sent)", t.billed_fines, t.billed),
                                 ("reversed (reversals sent)", t.reversed_fines, t.reversed),
                                 ("paid at the Bursar", t.paid_fines, t.paid),
                                 ("applied in Alma", t.applied_fines, t.applied),
                                 ("outstanding at the Bursar", sum(t.ageing_counts), t.outstanding)):
            summary.count(label, n, amount)
        for code in rules.ORDER:
            n = self.classes.counts[code]
            if n:
                summary.count(f"difference: {rules.CLASSES[code].title}", n, self.classes.sums[code])
        if self.alma_as_of is None:
            summary.note("Alma: no importAlmaFines has succeeded yet, so the Alma side is empty")
        else:
            age = (self.today - self.alma_as_of.date()).days
            summary.note(f"Alma as the import of {self.alma_as_of:%Y-%m-%d %H:%M} recorded it "
                         f"({age} day{'s' if age != 1 else ''} old)")
        if self.live:
            summary.note(f"live: {self.live_checked} fine(s) checked through the fees API, "
                         f"{len(self.resolved)} difference(s) no longer in Alma (the next import catches up)"
                         + (": " + ", ".join(self.resolved[:20]) if self.resolved else ""))
        if not self.classes.total:
            summary.note("all three sides agree")
        for code in self.classes.needing_a_person():
            cls = rules.CLASSES[code]
            summary.flag(f"reconcile: {cls.title}",
                         f"{self.classes.counts[code]} difference(s), {self.classes.sums[code]}; {cls.action}")

    def _local(self, utc_naive: datetime) -> date:
        return utc_naive.replace(tzinfo=UTC).astimezone(self.tz).date()


class _Groups:
    """A stream of documents sorted by `key`, taken one key at a time in ascending order
    (documents whose key is None are skipped: the callers read those separately)."""

    def __init__(self, docs: Iterator[dict], key: str = "fine"):
        self._docs = docs
        self._key = key
        self._head: dict | None = None
        self._done = False

    def take(self, value: int) -> list[dict]:
        out: list[dict] = []
        while not self._done:
            if self._head is None:
                try:
                    self._head = next(self._docs)
                except StopIteration:
                    self._done = True
                    break
            k = self._head[self._key]
            if k is None or k < value:
                self._head = None  # an orphan (or no key): nothing of ours refers to it
                continue
            if k > value:
                break
            out.append(self._head)
            self._head = None
        return out


# -- helpers ---------------------------------------------------------------------------------------

def _m(amount: Decimal | None) -> str:
    return "" if amount is None else f"{amount:.2f}"


def _date_paid(text: str | None) -> date | None:
    """The Bursar's Date Paid (MM/DD/YYYY; ISO accepted too), or None."""
    if not text:
        return None
    for fmt in ("%m/%d/%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(text.strip(), fmt).date()
        except ValueError:
            continue
    return None


def _export_month(export: dict, local: Any) -> str:
    text = export["exportDate"]
    if text and len(text) == 8 and text.isdigit():
        return f"{text[:4]}-{text[4:6]}"
    stamp = export["sent_to_bursar"] or export["created"]
    return f"{local(stamp):%Y-%m}" if stamp is not None else ""


class _private_file:
    """A new file, mode 0600 from its creation, opened for text writing."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self) -> Any:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
        self.fh = os.fdopen(fd, "w", encoding="utf-8", newline="")
        return self.fh

    def __exit__(self, *exc: object) -> None:
        self.fh.close()


__all__ = ["run", "run_command", "run_scheduled", "due", "CSV_COLUMNS"]
