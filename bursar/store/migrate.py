"""`migrate --to URI`: copy the whole store into another, empty store (MongoDB -> SQLite and back).

Every collection of the schema is copied document by document with its id (`Store.put`), so
every relation survives; each collection's id counter is carried over too (`last_id` and
`raise_ids`), so ids handed out after the switch continue above every id the old store ever
gave (an export id, and so a file name, is never reused).  What an engine keeps about its own
database (MongoDB's `store_info`: how it stores money) is not part of the store and stays
behind: a new MongoDB target is one we create, so it stores money as Decimal128 (unless
BURSAR_MONGO_MONEY says otherwise).

The target must be empty: a store with any document is refused (exit 2) before anything is
written.  After the copy the target is read back and checked against the source, collection by
collection: the number of documents, and for every money field the number of values and their
total.  A difference fails the run (exit 1).  `--dry-run` reads the source, checks that the
target is empty (without creating it) and prints the same table; it writes nothing.

A copy that stops half way (a crash, a document the target refuses) leaves a partly filled
target, which the next run refuses: delete it and run again.  The source is only ever read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bursar.errors import SettingsError, StoreError, UsageError
from bursar.runtime.summary import Summary
from bursar.store import DbTarget, db_target, open_store, parse_db_uri, redact_uri
from bursar.store.base import Doc, Store
from bursar.store.schema import COLLECTIONS, MONEY

COMMAND = "migrate"
_BATCH = 1000  # documents per target transaction (SQLite; MongoDB has none)
MONEY_FIELDS: dict[str, list[str]] = {
    coll: [f for f, kind in fields.items() if kind == MONEY] for coll, fields in COLLECTIONS.items()
}


@dataclass
class Tally:
    """What one collection holds: documents, and per money field the values and their total."""

    documents: int = 0
    values: dict[str, int] = field(default_factory=dict)
    totals: dict[str, Decimal] = field(default_factory=dict)

    def add(self, coll: str, doc: Doc) -> None:
        self.documents += 1
        for name in MONEY_FIELDS[coll]:
            amount = doc.get(name)
            if amount is not None:
                self.values[name] = self.values.get(name, 0) + 1
                self.totals[name] = self.totals.get(name, Decimal("0.00")) + amount

    def differences(self, coll: str, other: Tally) -> list[str]:
        out = []
        if self.documents != other.documents:
            out.append(f"{coll}: {self.documents} documents in the source, {other.documents} in the target")
        for name in MONEY_FIELDS[coll]:
            mine = (self.values.get(name, 0), self.totals.get(name, Decimal("0.00")))
            theirs = (other.values.get(name, 0), other.totals.get(name, Decimal("0.00")))
            if mine != theirs:
                out.append(f"{coll}.{name}: {mine[0]} values totalling {mine[1]} in the source, "
                           f"{theirs[0]} totalling {theirs[1]} in the target")
        return out


def tally(store: Store, coll: str) -> Tally:
    t = Tally()
    for doc in store.find(coll):
        t.add(coll, doc)
    return t


def migrate(source: Store, target: Store | None, *, dry_run: bool, source_label: str = "the store",
            target_label: str = "the target") -> Summary:
    """Copy every collection of `source` into the empty `target` and verify the copy.
    `target` may be None in a dry run: a target that does not exist yet (it is empty)."""
    summary = Summary(COMMAND, dry_run=dry_run)
    if target is None and not dry_run:
        raise StoreError("migrate needs a target store")
    if target is not None:
        used = [f"{coll}: {n}" for coll in COLLECTIONS if (n := target.count(coll))]
        if used:
            raise UsageError(f"the target {target_label} is not empty ({', '.join(used)} documents); migrate "
                             "copies only into an empty store: name a new SQLite file or MongoDB database")
    expected: dict[str, Tally] = {}
    for coll in COLLECTIONS:
        try:
            expected[coll] = _copy(source, None if dry_run else target, coll)
        except StoreError as e:
            if dry_run:
                raise
            raise StoreError(f"migrate stopped while copying {coll} to {target_label}: {e}; the target is "
                             "partly filled: delete it before running migrate again") from None
    if target is not None and not dry_run:
        problems = []
        for coll, want in expected.items():
            problems += want.differences(coll, tally(target, coll))
            if target.last_id(coll) < source.last_id(coll):
                problems.append(f"{coll}: the target's next id is not above the source's")
        _report(summary, expected)
        if problems:
            more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
            err = StoreError(f"migrate copied {source_label} to {target_label} but the copy differs: "
                             + "; ".join(problems[:5]) + more)
            err.summary = summary  # type: ignore[attr-defined]
            raise err
        total = sum(t.documents for t in expected.values())
        summary.note(f"copied {total} documents from {source_label} to {target_label}")
        summary.note("verified: every collection's document count and money totals match the source; "
                     "new ids continue above the copied ones")
    else:
        _report(summary, expected)
        total = sum(t.documents for t in expected.values())
        summary.note(f"would copy {total} documents from {source_label} to {target_label} (empty); nothing was written")
    return summary


def _copy(source: Store, target: Store | None, coll: str) -> Tally:
    t = Tally()
    batch: list[Doc] = []

    def flush() -> None:
        if target is not None and batch:
            with target.transaction():
                for doc in batch:
                    target.put(coll, doc)
        batch.clear()

    for doc in source.find(coll):
        t.add(coll, doc)
        batch.append(doc)
        if len(batch) >= _BATCH:
            flush()
    flush()
    if target is not None:
        last = source.last_id(coll)
        if last > target.last_id(coll):  # the newest ids were deleted, or handed out and never used
            target.raise_ids(coll, last)
    return t


def _report(summary: Summary, tallies: dict[str, Tally]) -> None:
    """The per-collection table: documents, then each money field's values and total."""
    for coll, t in tallies.items():
        summary.count(coll, t.documents)
        for name in MONEY_FIELDS[coll]:
            summary.count(f"{coll}.{name} (money)", t.values.get(name, 0),
                          amount=t.totals.get(name, Decimal("0.00")))


def _open_target(target: DbTarget, *, money: str, dry_run: bool) -> Store | None:
    try:
        if dry_run:
            if target.path is not None and not target.path.is_file():
                return None  # does not exist yet: empty, and a dry run does not create it
            return open_store(target, money=money, create=False)
        return open_store(target, money=money)
    except SettingsError as e:
        if "BURSAR_DB_URI" not in str(e):  # what the engine found when it opened the store
            raise
        raise UsageError(str(e).replace("BURSAR_DB_URI", "--to")) from None


def run(source: DbTarget | str, target_uri: str, *, money: str = "auto", dry_run: bool = False) -> Summary:
    """The command: open both stores (the source only as it is), copy, verify, close.

    `source` is the configured store; `target_uri` (--to) is parsed as BURSAR_DB_URI is, and
    a problem with it is a usage error naming --to."""
    source = db_target(source)
    try:
        target = parse_db_uri(target_uri, setting="--to")
    except SettingsError as e:
        raise UsageError(str(e)) from None
    source_label, target_label = redact_uri(source.uri), redact_uri(target.uri)
    if source.uri == target.uri or (source.path is not None and target.path is not None
                                    and source.path.resolve() == target.path.resolve()):
        raise UsageError(f"--to names the configured store itself ({target_label}); name a new, empty store")
    opened = open_store(source, money=money, create=False)
    into: Any = None
    try:
        into = _open_target(target, money=money, dry_run=dry_run)
        return migrate(opened, into, dry_run=dry_run, source_label=source_label, target_label=target_label)
    finally:
        opened.close()
        if into is not None:
            into.close()
