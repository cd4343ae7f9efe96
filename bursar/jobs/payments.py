"""importAlmaPayments: Direction 2.  Mark each payment the Bursar reports as paid in Alma, once.

The Bursar drops a cumulative CSV of payments on an SFTP server every day, over a date range it
resets once a year.  Instead of the original's "diff against the previous file", every row goes
into a payments ledger (`burs_payments`) under a stable key (Emplid, Reference Number, Date
Paid, Paid Amount, Charge Amount and its occurrence among identical rows).  A row already
`applied` or `skipped` is never sent again; a `failed` row is retried; a `pending` row (the pay
call's outcome is unknown) is first looked up in Alma by its deterministic
external_transaction_id, so a crash or a dropped connection can never pay twice.

Per row: Reference Number -> fine part -> Alma fee id and user; zero charge or payment ->
skipped; the fee from the patron's ACTIVE fee list (one GET per patron per run serves all of
the patron's rows; a fee not in it is looked for in the CLOSED list, read only then: closed ->
skipped, unless our own external id is on it); amount = min(paid, balance), the balance
reflecting this run's earlier payments on the fee; record `pending`; POST op=pay.  Where a
listed fee carries no `transaction` array, the fee is read on its own before its pay
(docs/alma.md).  Alma calls run on a few threads, all paced by the shared rate limiter; every
store write happens on this thread.
"""

from __future__ import annotations

import hashlib
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from bursar.clients.alma.fees import Fee, FeeClosed, find_transaction, get_fee, list_fees
from bursar.clients.alma.http import AlmaUncertain
from bursar.clients.sftp import RemoteFile, SftpSession, connect
from bursar.errors import AlmaDailyLimitError, AlmaError, SftpError
from bursar.jobs.context import JobContext, log, recorded, sftp_endpoint
from bursar.jobs.ledger_store import burs_lines
from bursar.rules import ledger
from bursar.rules import payment_rules as rules
from bursar.rules.money import ZERO
from bursar.rules.payments_csv import (
    PaymentFileError,
    PaymentRow,
    external_transaction_id,
    parse_payments,
    unterminated,
)
from bursar.runtime import crash
from bursar.runtime.leftovers import payment_leftovers
from bursar.runtime.progress import Progress
from bursar.runtime.summary import Summary

APPLIED, SKIPPED, PENDING, FAILED = "applied", "skipped", "pending", "failed"
DECIDED = (APPLIED, SKIPPED)


def run(ctx: JobContext) -> Summary:
    summary = ctx.effects.summary("importAlmaPayments")
    source = sftp_endpoint(ctx, "payments_sftp")
    prefix = ctx.settings.payments_file_prefix
    ctx.effects.remove_leftovers(payment_leftovers, ctx.settings.payments_dir, prefix)
    with recorded(ctx, "BursarPayments", summary):
        with connect(source) as session:
            files, why_none = _new_files(ctx, session, prefix)
            local = [(f, _fetch(ctx, session, f, summary)) for f in files]
        if not files:
            summary.note(why_none)
        handled: set[int] = set()
        by_original = _applied_by_original(ctx)
        for remote, path in local:
            if path is None or not _complete(ctx, remote, path, summary):
                continue  # taken whole on a later run
            try:
                _process_file(ctx, remote, path, summary, handled, by_original)
            except PaymentFileError as exc:
                # the whole file is unusable (e.g. a column renamed): report it on every run
                # until the Bursar's office fixes it; the other files still go through
                problem = str(exc).removeprefix(f"payments file {remote.name} ")  # named once, in the ref
                summary.flag(f"payment file {remote.name}", f"{problem}; no row of it was used")
        _retry_unsettled(ctx, summary, handled)
    _report_unapplied(ctx, summary)
    return summary


# -- files ---------------------------------------------------------------------------------
def _new_files(ctx: JobContext, session: SftpSession, prefix: str) -> tuple[list[RemoteFile], str]:
    """Files not yet fully processed, oldest first (by modification time, then name), and the
    note for the summary when there is none: it says whether the folder is empty, its files
    were all processed, or files are there but none has PAYMENTS_FILE_PREFIX (a wrong prefix)."""
    listing = session.listdir()
    matching = [remote for remote in listing if remote.name.startswith(prefix)]
    out = []
    for remote in matching:
        done = ctx.store.find_one("burs_payment_files", {"name": remote.name, "size": remote.size,
                                                          "mtime": remote.mtime, "state": "processed"})
        if done is None:
            out.append(remote)
    folder = session.endpoint.directory
    if not listing:
        why_none = f"no new payment file in {folder} (the folder is empty)"
    elif not matching:
        n = len(listing)
        why_none = (f"no new payment file in {folder}: {n} file{'s' if n != 1 else ''} there, but none "
                    f"starts with PAYMENTS_FILE_PREFIX {prefix!r} (check the setting against the names: "
                    f"{', '.join(f.name for f in listing[:3])}{', ...' if n > 3 else ''})")
    else:
        n = len(matching)
        why_none = f"no new payment file in {folder} ({n} matching file{'s' if n != 1 else ''}, all processed before)"
    return sorted(out, key=lambda f: (f.mtime, f.name)), why_none


def _fetch(ctx: JobContext, session: SftpSession, remote: RemoteFile, summary: Summary) -> Path | None:
    """Download into PAYMENTS_DIR; the Bursar's copy is never touched (the account may be
    read-only).  None when the file changed on the server between the listing and the end of
    the download: it is being written, so it is taken whole on the next run."""
    path: Path | None = None
    failure: SftpError | None = None
    try:
        path = ctx.effects.download(session, remote.name, ctx.settings.payments_dir, "PAYMENTS_DIR")
    except SftpError as exc:  # a short or long read: the file changed under us, or a real failure
        failure = exc
    now = session.stat(remote.name)
    if now is None or (now.size, now.mtime) != (remote.size, remote.mtime):
        summary.note(f"payment file {remote.name} changed on the server while it was read "
                     "(the Bursar may still be writing it): left for the next run")
        return None
    if failure is not None:
        raise failure
    return path


def _complete(ctx: JobContext, remote: RemoteFile, path: Path, summary: Summary) -> bool:
    """A file whose last line has no line end (while its other lines have one) may be a partial
    upload: its last row could be cut inside a value.  It is taken once it ends with a line end,
    or once it has stayed unchanged for PAYMENTS_SETTLE_MINUTES."""
    if not unterminated(path.read_bytes()):
        return True
    settle = ctx.settings.payments_settle_minutes
    age_minutes = (ctx.now.timestamp() - remote.mtime) / 60
    if age_minutes >= settle:
        summary.note(f"payment file {remote.name}: its last line has no line end, but the file has not changed "
                     f"for {settle} minutes (PAYMENTS_SETTLE_MINUTES), so its last row is used")
        return True
    summary.flag(f"payment file {remote.name}", "its last line has no line end: the file may still be being "
                 f"written, so no row of it was used this run; it is taken once it ends with a line end or has "
                 f"not changed for {settle} minutes (PAYMENTS_SETTLE_MINUTES)")
    return False


def _applied_by_original(ctx: JobContext) -> Counter[rules.OriginalKey]:
    """Payments the original pyBursar applied before a switch-over, from its `burs_imports`
    records.  It sent no external id, so Alma cannot tell us; its own record can."""
    applied: Counter[rules.OriginalKey] = Counter()
    for doc in ctx.store.find("burs_imports"):
        results = doc["results"] if isinstance(doc["results"], dict) else {}
        for payment in results.get("succesful_alma_transfers") or []:  # sic: the original's key
            key = rules.original_key(payment) if isinstance(payment, dict) else None
            if key is not None:
                applied[key] += 1
    return applied


def _process_file(ctx: JobContext, remote: RemoteFile, path: Path, summary: Summary, handled: set[int],
                  by_original: Counter[rules.OriginalKey]) -> None:
    store = ctx.store
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    record = store.find_one("burs_payment_files", {"name": remote.name, "size": remote.size, "mtime": remote.mtime})
    parsed = parse_payments(data, name=remote.name)
    stamp = ctx.utc_now
    if record is None:
        file_id = store.insert("burs_payment_files", {
            "name": remote.name, "size": remote.size, "mtime": remote.mtime, "sha256": digest, "state": "fetched",
            "rows": len(parsed.rows) + len(parsed.bad), "created": stamp, "updated": stamp})
    else:
        file_id = record["id"]
    summary.note(f"payment file {remote.name}: {len(parsed.rows)} rows, {len(parsed.bad)} malformed "
                 f"(sha256 {digest[:12]})")
    for bad in parsed.bad:
        if store.find_one("burs_payments", {"rowKey": bad.key}) is None:
            store.insert("burs_payments", {
                "rowKey": bad.key, "fileName": remote.name, "lineNumber": bad.line, "state": SKIPPED,
                "reason": f"malformed: {bad.message}", "attempts": 0, "created": stamp, "updated": stamp})
            summary.count("skipped: malformed")
            summary.flag(f"payment file {remote.name}", bad.message)  # the message starts "line N: "
    work = []
    for row in parsed.rows:
        existing = store.find_one("burs_payments", {"rowKey": row.key})
        if existing is not None and existing["state"] in DECIDED:
            summary.count("rows settled earlier (not sent again)")
            continue
        if existing is None:
            existing = _record_new_row(ctx, row, remote.name)
            original = rules.row_original_key(row.emplid, row.reference, row.date_paid, row.paid, row.charge)
            if by_original[original] >= row.occurrence:
                _set(ctx, _Item(existing), APPLIED, "applied by the original pyBursar before the switch-over "
                     "(its burs_imports record)", amountApplied=row.paid)
                summary.count("applied by the original pyBursar (not paid again)", amount=row.paid)
                continue
        work.append(existing)
    _settle(ctx, work, summary, handled)
    store.update("burs_payment_files", file_id, {"state": "processed", "sha256": digest, "updated": ctx.utc_now})


def _record_new_row(ctx: JobContext, row: PaymentRow, file_name: str) -> dict:
    stamp = ctx.utc_now
    doc = {
        "rowKey": row.key, "fileName": file_name, "lineNumber": row.line, "emplid": row.emplid,
        "referenceNumber": row.reference, "datePaid": row.date_paid, "paidAmount": row.paid,
        "chargeAmount": row.charge, "occurrence": row.occurrence, "itemType": row.item_type,
        "chargeDescription": row.description, "state": FAILED, "reason": "not yet tried",
        "externalTransactionId": external_transaction_id(row.key), "attempts": 0,
        "created": stamp, "updated": stamp,
    }
    doc["id"] = ctx.store.insert("burs_payments", dict(doc))
    return doc


def _retry_unsettled(ctx: JobContext, summary: Summary, handled: set[int]) -> None:
    """Rows an earlier run left failed or pending are retried even when no new file carries
    them (a range reset, a file already processed), so nothing is silently dropped."""
    rows = [r for r in ctx.store.find("burs_payments", {"state": [FAILED, PENDING]}) if r["id"] not in handled]
    _settle(ctx, rows, summary, handled)


# -- settling rows -------------------------------------------------------------------------
@dataclass
class _Item:
    """One row moving through lookup -> its patron's fee list -> (pending) -> POST pay."""

    row: dict
    fine: dict | None = None
    fee_id: str = ""
    user_id: str = ""
    amount: Decimal = ZERO
    fee: Fee | None = None  # the fee as it was when the pay was decided
    stage: str = "start"  # start -> fee -> pay
    alone: bool = False  # its fee is in neither list: read on its own (GET of the fee)


@dataclass
class _Patron:
    """One patron's fees as this run knows them.  One GET of the ACTIVE list serves all the
    patron's rows; the CLOSED list is read only for a row whose fee is not in it.  Only one call
    per fee is in flight at a time, so a second row on a fee sees the balance the first left."""

    user_id: str
    active: dict[str, Fee] | None = None
    closed: dict[str, Fee] | None = None
    closed_here: dict[str, Fee] = field(default_factory=dict)  # closed by a pay of this run
    loading: bool = False
    waiting: list[_Item] = field(default_factory=list)  # rows waiting for a list
    busy: set[str] = field(default_factory=set)  # fees with a call in flight
    parked: dict[str, list[_Item]] = field(default_factory=dict)  # rows waiting for a busy fee
    active_failed: str | None = None
    closed_failed: str | None = None


_Call = tuple[str, Any]  # ("list", (patron, status)) | ("get", item) | ("pay", item)
_PARKED = object()


def _settle(ctx: JobContext, rows: list[dict], summary: Summary, handled: set[int]) -> None:
    handled.update(row["id"] for row in rows)
    if not rows:
        return
    _Settler(ctx, summary).run(rows)


class _Settler:
    """Schedules every row's Alma calls on a few worker threads (all paced by the rate limiter);
    decisions and store writes happen on this thread."""

    def __init__(self, ctx: JobContext, summary: Summary):
        self.ctx = ctx
        self.summary = summary
        self.patrons: dict[str, _Patron] = {}
        # set once a listed fee carries a `transaction` array: the list does carry transactions,
        # so a listed fee without one has none (reference: docs/alma.md §8)
        self.list_has_transactions = False
        self.progress = Progress("payment rows settled")

    def run(self, rows: list[dict]) -> None:
        http = self.ctx.alma()
        workers = max(1, min(16, self.ctx.settings.alma_calls_per_second // 2))
        queue: deque[_Item] = deque(_Item(row) for row in rows)
        in_flight: dict[Future, _Call] = {}
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="alma") as pool:
            try:
                while queue or in_flight:
                    while queue and len(in_flight) < workers:
                        item = queue.popleft()
                        step = self._next(item)
                        if step is None:
                            self.progress.step()
                        elif step is not _PARKED:
                            call, tag = step
                            in_flight[pool.submit(call, http)] = tag
                    if not in_flight:
                        continue
                    done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                    for future in done:
                        ready = self._handle(in_flight.pop(future), future)
                        queue.extendleft(reversed(ready))
                self.progress.done()
            except AlmaDailyLimitError:
                for future in in_flight:
                    future.cancel()
                raise

    # -- deciding, on this thread ------------------------------------------------------------
    def _next(self, item: _Item) -> Any:
        """None when the row is settled, _PARKED when it waits for another call, or the
        (Alma call, tag) to run on a worker."""
        if item.stage == "start":
            if not _start(self.ctx, item, self.summary):
                return None
            item.stage = "fee"
        if item.stage == "fee":
            return self._decide(item)
        return None

    def _decide(self, item: _Item) -> Any:
        ctx, summary, row = self.ctx, self.summary, item.row
        patron = self.patrons.setdefault(item.user_id, _Patron(item.user_id))
        if patron.active_failed is not None:
            _fail(ctx, item, patron.active_failed, summary)
            return None
        if item.fee_id in patron.busy:
            patron.parked.setdefault(item.fee_id, []).append(item)
            return _PARKED
        if patron.active is None:
            return self._wait_for_list(patron, item, "ACTIVE")
        fee = patron.active.get(item.fee_id)
        if fee is None:
            return self._not_active(patron, item)
        if not fee.transactions_listed and not self.list_has_transactions and not item.alone:
            # the list does not show whether an earlier pay of ours is on the fee: read the fee
            item.alone = True
            patron.busy.add(item.fee_id)
            return (lambda http: get_fee(http, item.user_id, item.fee_id)), ("get", item)
        # Look before every pay, not only for rows tried before: after a restore, or with a
        # lost ledger, no row looks tried, yet Alma may already carry this row's external id.
        found = find_transaction(fee, row["externalTransactionId"])
        if found is not None:
            _applied(ctx, item, _transaction_amount(found, row), summary, recovered=True)
            return None
        payment = rules.amount_to_pay(row["paidAmount"], fee.balance)
        if payment.skip_reason is not None:
            _skip(ctx, item, payment.skip_reason, summary)
            return None
        item.amount = payment.amount
        item.fee = fee
        if payment.overpaid:
            summary.flag(f"payment for {row['referenceNumber']}",
                         f"overpayment: paid {row['paidAmount']} at the Bursar but Alma's balance was "
                         f"{fee.balance}; applied {item.amount}, the rest ({payment.overpaid}) needs a refund")
        item.stage = "pay"
        patron.busy.add(item.fee_id)
        return _pay_call(ctx, item), ("pay", item)

    def _wait_for_list(self, patron: _Patron, item: _Item, status: str) -> Any:
        patron.waiting.append(item)
        if patron.loading:
            return _PARKED
        patron.loading = True
        user = patron.user_id
        return (lambda http: list_fees(http, user, status=status)), ("list", (patron, status))

    def _not_active(self, patron: _Patron, item: _Item) -> Any:
        """The row's fee is not in the ACTIVE list: closed (perhaps by a pay of ours: only the
        CLOSED list shows a closed fee's transactions), or unknown to this run."""
        row = item.row
        closed = patron.closed_here.get(item.fee_id)
        if closed is None:
            if patron.closed_failed is not None:
                _set(self.ctx, item, PENDING, f"outcome unknown; lookup failed: {patron.closed_failed}")
                self.summary.flag(f"payment for {row['referenceNumber']}",
                                  "outcome still unknown; checked again next run")
                return None
            if patron.closed is None:
                return self._wait_for_list(patron, item, "CLOSED")
            closed = patron.closed.get(item.fee_id)
        if closed is None and not item.alone:
            # in neither list (another status, or not this patron's): read it on its own, which
            # answers as before (closed, not found, or the fee)
            item.alone = True
            patron.busy.add(item.fee_id)
            return (lambda http: get_fee(http, item.user_id, item.fee_id)), ("get", item)
        if closed is not None:
            found = find_transaction(closed, row["externalTransactionId"])
            if found is not None:
                _applied(self.ctx, item, _transaction_amount(found, row), self.summary, recovered=True)
                return None
        _skip(self.ctx, item, "closed in Alma", self.summary)
        return None

    # -- outcomes, on this thread ------------------------------------------------------------
    def _handle(self, tag: _Call, future: Future) -> list[_Item]:
        """Record an Alma call's outcome; the rows to decide again."""
        kind, what = tag
        if kind == "list":
            return self._listed(what[0], what[1], future)
        item: _Item = what
        patron = self.patrons[item.user_id]
        patron.busy.discard(item.fee_id)
        ready = patron.parked.pop(item.fee_id, [])
        again = self._fetched(patron, item, future) if kind == "get" else self._paid(patron, item, future)
        if not again:
            self.progress.step()
        return ([item] if again else []) + ready

    def _listed(self, patron: _Patron, status: str, future: Future) -> list[_Item]:
        patron.loading = False
        ready, patron.waiting = patron.waiting, []
        try:
            fees = future.result()
        except AlmaDailyLimitError:
            raise
        except AlmaError as exc:
            if status == "ACTIVE":
                patron.active_failed = f"reading the patron's fees failed: {exc}"
            else:
                patron.closed_failed = str(exc)
            return ready
        if any(fee.transactions for fee in fees):
            self.list_has_transactions = True
        by_id = {fee.id: fee for fee in fees}
        if status == "ACTIVE":
            patron.active = by_id
        else:
            patron.closed = by_id
        return ready

    def _fetched(self, patron: _Patron, item: _Item, future: Future) -> bool:
        """The fee read on its own: True when the row goes on to its pay decision."""
        try:
            fee: Fee = future.result()
        except FeeClosed:
            if patron.active is not None:
                patron.active.pop(item.fee_id, None)
            if patron.closed is not None and item.fee_id not in patron.closed:
                _skip(self.ctx, item, "closed in Alma", self.summary)  # its list was read already
                return False
            patron.closed = None  # read the CLOSED list (again): it shows the fee now
            return True
        except AlmaDailyLimitError:
            raise
        except AlmaError as exc:
            _fail(self.ctx, item, str(exc), self.summary)
            return False
        fee.transactions_listed = True  # the single-fee GET is what we rely on (docs/alma.md §6)
        if patron.active is not None:
            patron.active[item.fee_id] = fee
        return True

    def _paid(self, patron: _Patron, item: _Item, future: Future) -> bool:
        ctx, summary, row = self.ctx, self.summary, item.row
        active = patron.active if patron.active is not None else {}
        try:
            after = future.result()
        except FeeClosed:
            # Our own earlier pay may have closed it (a crash, a lost ledger, a restored backup):
            # only a fresh CLOSED fee list shows a closed fee's transactions.
            active.pop(item.fee_id, None)
            patron.closed = None
            item.stage = "fee"
            return True
        except AlmaUncertain as exc:
            active.pop(item.fee_id, None)  # its balance is unknown now: a later row reads it again
            if exc.status is not None and exc.status >= 500:
                _fail(ctx, item, str(exc), summary)  # the next run checks Alma before paying again
            else:
                _set(ctx, item, PENDING, "outcome unknown: " + str(exc))
                summary.count("outcome unknown (checked next run)", amount=item.amount)
                summary.flag(f"payment for {row['referenceNumber']}",
                             f"{exc}; the next run checks Alma for it before paying again")
            return False
        except AlmaDailyLimitError:
            raise
        except AlmaError as exc:
            active.pop(item.fee_id, None)
            _fail(ctx, item, str(exc), summary)
            return False
        crash.point("payments.after_pay_post")  # Alma has the payment; our ledger does not yet
        # the fee as it is now, for the patron's next row on it: Alma's answer, or (a dry run
        # pays nothing and answers nothing) the balance less this payment
        if not isinstance(after, Fee):
            assert item.fee is not None
            left = item.fee.balance - item.amount
            after = replace(item.fee, balance=left, status="ACTIVE" if left > ZERO else "CLOSED")
        if after.status == "ACTIVE" and after.balance > ZERO:
            active[item.fee_id] = after
        else:
            active.pop(item.fee_id, None)
            patron.closed_here[item.fee_id] = after
        _applied(ctx, item, item.amount, summary)
        return False


def _start(ctx: JobContext, item: _Item, summary: Summary) -> bool:
    """The checks that need only our store; False when the row is settled by them."""
    row = item.row
    reason = rules.before_alma(row["paidAmount"], row["chargeAmount"])
    if reason is not None:
        _skip(ctx, item, reason, summary)
        return False
    md = ctx.store.find_one("fine_mds", {"bursFineId": row["referenceNumber"]})
    item.fine = ctx.store.get("fines", md["fine"]) if md else None
    if md is None or item.fine is None:
        _skip(ctx, item, "not found", summary)
        return False
    if rules.identity_problem(row["emplid"], item.fine["almaPatronId"]) is not None:
        _skip(ctx, item, rules.EMPLID_MISMATCH, summary)
        return False
    billed = ledger.part_original(burs_lines(ctx.store, item.fine["id"]), row["referenceNumber"])
    if rules.charge_differs(row["chargeAmount"], billed):
        # The Emplid and reference agree, so the money is this patron's payment for this fee:
        # it is applied, and the difference is reported for a person to look at.
        summary.flag(f"payment for {row['referenceNumber']}",
                     f"the Bursar's charge amount {row['chargeAmount']} ({row['fileName']} line "
                     f"{row['lineNumber']}) is not what was billed for this reference ({billed}); "
                     "the payment is applied, check the charge with the Bursar's office")
    item.fee_id = md["alma_fine_id"] or item.fine["rootAlmaFineId"]
    item.user_id = item.fine["almaPatronId"]
    _set(ctx, item, row["state"], row["reason"], fine=item.fine["id"], almaFeeId=item.fee_id,
         almaUserId=item.user_id)
    return True


def _pay_call(ctx: JobContext, item: _Item) -> Callable[[Any], Any]:
    """Record the row `pending`, then the POST op=pay to run on a worker."""
    row = item.row
    _set(ctx, item, PENDING, "pay call sent; outcome not yet known", amountApplied=item.amount,
         attempts=(row["attempts"] or 0) + 1)
    crash.point("payments.after_pending")
    comment = _comment(ctx, row)
    method = ctx.settings.payment_method
    about = (f"reference {row['referenceNumber']}, {row['fileName']} line {row['lineNumber']}, "
             f"paid {row['paidAmount']}")
    return lambda http: ctx.effects.pay(http, item.user_id, item.fee_id, about=about, amount=item.amount,
                                        method=method, external_transaction_id=row["externalTransactionId"],
                                        comment=comment)


def _set(ctx: JobContext, item: _Item, state: str, reason: str | None, **fields: Any) -> None:
    changes = {"state": state, "reason": reason, "updated": ctx.utc_now, **fields}
    ctx.store.update("burs_payments", item.row["id"], changes)
    item.row.update(changes)


_SKIP_REASONS = {
    rules.ZERO_CHARGE: "zero charge",
    rules.ZERO_PAYMENT: "zero payment",
    rules.NEGATIVE_PAYMENT: "negative payment amount",
    "not found": "not found: no fine in the ledger has this reference number",
    "closed in Alma": "closed in Alma: already paid, waived or transferred",
    rules.NOTHING_OWED: "nothing owed in Alma: the fee's balance is 0",
    rules.EMPLID_MISMATCH: "Emplid mismatch: the row's Emplid is not the patron of the fine its reference names; "
                           "not paid",
}
_NEED_ATTENTION = {rules.NEGATIVE_PAYMENT, "not found", rules.EMPLID_MISMATCH}


def _skip(ctx: JobContext, item: _Item, reason: str, summary: Summary) -> None:
    """Skip the row for good; `reason` is a key of _SKIP_REASONS (short for the summary)."""
    row = item.row
    _set(ctx, item, SKIPPED, _SKIP_REASONS[reason])
    summary.count(f"skipped: {reason}", amount=row["paidAmount"])
    summary.note(f"skipped {row['referenceNumber']} "
                 f"({row['fileName']} line {row['lineNumber']}, paid {row['paidAmount']}): {_SKIP_REASONS[reason]}")
    if reason in _NEED_ATTENTION:
        summary.flag(f"payment for {row['referenceNumber']}", _SKIP_REASONS[reason])


def _fail(ctx: JobContext, item: _Item, reason: str, summary: Summary) -> None:
    _set(ctx, item, FAILED, reason)
    summary.count("failed (retried next run)", amount=item.row["paidAmount"])
    summary.flag(f"payment for {item.row['referenceNumber']}", f"{reason}; it will be retried on the next run")


def _comment(ctx: JobContext, row: dict) -> str:
    return (f"Paid to the Bursar on {row['datePaid']}, imported into Alma by pyBursar on {ctx.today.isoformat()}"
            f" (Bursar reference {row['referenceNumber']}).")


def _transaction_amount(transaction: dict, row: dict) -> Decimal:
    amount = transaction.get("amount")
    return Decimal(str(amount)).quantize(Decimal("0.01")) if amount is not None else row["amountApplied"]


def _applied(ctx: JobContext, item: _Item, amount: Decimal, summary: Summary, *, recovered: bool = False) -> bool:
    _set(ctx, item, APPLIED, "already in Alma: its external id was found on the fee" if recovered else None,
         amountApplied=amount, appliedAt=ctx.utc_now)
    summary.count("found already applied in Alma (not paid again)" if recovered else "applied in Alma",
                  amount=amount)
    log.info("payment applied: reference %s, %s", item.row["referenceNumber"], amount)
    return False


def _report_unapplied(ctx: JobContext, summary: Summary) -> None:
    """Every row of this run that was not applied is named in the summary (by reference)."""
    for state in (FAILED, PENDING):
        refs = sorted({r["referenceNumber"] or r["rowKey"] for r in ctx.store.find("burs_payments", {"state": state})})
        if refs:
            more = f" and {len(refs) - 50} more" if len(refs) > 50 else ""
            summary.note(f"{state}: " + ", ".join(refs[:50]) + more)


