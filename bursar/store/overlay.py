"""OverlayStore: the dry-run store.  Reads see the real store plus the run's own pending writes;
writes stay in memory and vanish with the object.  So `--dry-run` runs the very same job code as
a real run, on either engine, and changes nothing anywhere.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime
from typing import Any

from bursar.store import validate
from bursar.store.base import Doc, Store, Where
from bursar.store.validate import FIXED_ID, NEW_ID


class EmptyStore:
    """No store at all, read as an empty one: under an OverlayStore it lets a dry run show what
    a first run would do without creating anything."""

    engine = "none"

    def find(self, coll: str, where: Where | None = None, **_: Any) -> Iterator[Doc]:
        return iter(())

    def get(self, coll: str, id: int) -> Doc | None:
        return None

    def last_id(self, coll: str) -> int:
        return 0

    def get_meta(self, key: str) -> Any:
        return None

    def close(self) -> None:
        return None


def _matches(doc: Doc, where: Where | None) -> bool:
    for key, want in (where or {}).items():
        have = doc.get(key)
        if isinstance(want, (list, tuple, set, frozenset)):
            if have not in want:
                return False
        elif have != want:
            return False
    return True


class OverlayStore(validate.CheckedStore):
    def __init__(self, base: Store):
        self.base = base
        self.engine = base.engine
        self._docs: dict[str, dict[int, Doc]] = {}  # changed or inserted documents
        self._deleted: dict[str, set[int]] = {}
        self._next: dict[str, int] = {}
        self._in_transaction = False

    def _coll(self, coll: str) -> dict[int, Doc]:
        return self._docs.setdefault(coll, {})

    def _new_id(self, coll: str) -> int:
        if coll not in self._next:
            self._next[coll] = self.base.last_id(coll) + 1  # the base's counter, not its largest id
        new_id = self._next[coll]
        self._next[coll] += 1
        return new_id

    def insert(self, coll: str, doc: Doc) -> int:
        fields = validate.checked(coll, doc, id_error=NEW_ID)
        new_id = self._new_id(coll)
        self._coll(coll)[new_id] = validate.complete(coll, new_id, copy.deepcopy(fields))
        doc["id"] = new_id
        return new_id

    def insert_many(self, coll: str, docs: Iterable[Doc]) -> list[int]:
        docs = list(docs)
        for doc in docs:  # all checked before any is written, as the engines do
            validate.checked(coll, doc, id_error=NEW_ID)
        return [self.insert(coll, d) for d in docs]

    def put(self, coll: str, doc: Doc) -> None:
        new_id = validate.put_id(coll, doc)
        if self.get(coll, new_id) is not None:
            raise validate.taken(coll, new_id)
        if coll not in self._next:
            self._new_id(coll)  # the base's next id, then step back
            self._next[coll] -= 1
        self._next[coll] = max(self._next[coll], new_id + 1)
        fields = validate.checked(coll, {k: v for k, v in doc.items() if k != "id"}, id_error=FIXED_ID)
        self._deleted.get(coll, set()).discard(new_id)
        self._coll(coll)[new_id] = validate.complete(coll, new_id, copy.deepcopy(fields))

    def last_id(self, coll: str) -> int:
        return max(self.base.last_id(coll), self._next.get(coll, 1) - 1)

    def get(self, coll: str, id: int) -> Doc | None:
        validate.fields(coll)
        if id in self._deleted.get(coll, ()):
            return None
        if id in self._coll(coll):
            return copy.deepcopy(self._coll(coll)[id])
        return self.base.get(coll, id)

    def find(self, coll: str, where: Where | None = None, *, order_by: str = "id",
             descending: bool = False, limit: int | None = None) -> Iterator[Doc]:
        where = validate.checked_where(coll, where)
        validate.checked_order(coll, order_by)
        validate.checked_limit(coll, limit)
        if order_by == "id":
            return self._id_batches(coll, where, descending, limit)
        out = self._matching(coll, where)
        # as the engines order: NULLs first ascending, ties by id in the same direction
        out.sort(key=lambda d: (d.get(order_by) is not None, d.get(order_by), d["id"]), reverse=descending)
        return iter(out[:limit] if limit is not None else out)

    def _matching(self, coll: str, where: Where) -> list[Doc]:
        mine = self._coll(coll)
        deleted = self._deleted.get(coll, set())
        out = [d for d in self.base.find(coll, where) if d["id"] not in mine and d["id"] not in deleted]
        out += [copy.deepcopy(d) for i, d in mine.items() if i not in deleted and _matches(d, where)]
        return out

    def _id_batches(self, coll: str, where: Where, descending: bool, limit: int | None) -> Iterator[Doc]:
        """By id in batches, each a fresh query after the last id seen, as the engines read: a
        caller may change what it iterates over, and sees rows inserted after its position."""

        def fetch(last: Doc | None, size: int) -> list[Doc]:
            rows = [d for d in self._matching(coll, where)
                    if last is None or (d["id"] < last["id"] if descending else d["id"] > last["id"])]
            rows.sort(key=lambda d: d["id"], reverse=descending)
            return rows[:size]

        return validate.keyset_batches(fetch, limit)

    def find_one(self, coll: str, where: Where, *, order_by: str = "id", descending: bool = False) -> Doc | None:
        return next(self.find(coll, where, order_by=order_by, descending=descending, limit=1), None)

    def count(self, coll: str, where: Where | None = None) -> int:
        return sum(1 for _ in self.find(coll, where))

    def _update_one(self, coll: str, id: int, fields: Doc) -> bool:
        fields = validate.checked(coll, fields, id_error=FIXED_ID)
        doc = self.get(coll, id)
        if doc is None:
            return False
        doc.update(copy.deepcopy(fields))
        self._coll(coll)[id] = doc
        return True

    def _update_many(self, coll: str, where: Where, fields: Doc) -> int:
        fields = validate.checked(coll, fields, id_error=FIXED_ID)
        ids = [d["id"] for d in self.find(coll, where)]
        for i in ids:
            self._update_one(coll, i, fields)
        return len(ids)

    def delete_where(self, coll: str, where: Where) -> int:
        ids = [d["id"] for d in self.find(coll, where)]
        self._deleted.setdefault(coll, set()).update(ids)
        return len(ids)

    def transaction(self) -> AbstractContextManager[None]:
        """Over SQLite, as SQLite: a block that raises leaves nothing behind.  Over MongoDB, as
        MongoDB: a documented no-op."""
        if self.engine == "mongodb" or self._in_transaction:
            return nullcontext()
        return self._rollback_on_error()

    @contextmanager
    def _rollback_on_error(self) -> Iterator[None]:
        saved = copy.deepcopy((self._docs, self._deleted, self._next))
        self._in_transaction = True
        try:
            yield
        except BaseException:
            self._docs, self._deleted, self._next = saved
            raise
        finally:
            self._in_transaction = False

    def raise_ids(self, coll: str, floor: int) -> None:
        self._new_id(coll)  # computes the base's next id, then steps back
        self._next[coll] = max(self._next[coll] - 1, floor + 1)

    def set_meta(self, key: str, value: Any, *, now: datetime | None = None) -> None:
        from bursar.store import utc_now

        stamp = now or utc_now()
        if not self.update_where("meta", {"key": key}, {"value": value, "updated": stamp}):
            self.insert("meta", {"key": key, "value": value, "updated": stamp})

    def close(self) -> None:
        self.base.close()
