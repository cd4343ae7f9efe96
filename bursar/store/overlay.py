"""OverlayStore: the dry-run store.  Reads see the real store plus the run's own pending writes;
writes stay in memory and vanish with the object.  So `--dry-run` runs the very same job code as
a real run, on either engine, and changes nothing anywhere.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from ..errors import StoreError
from .base import Doc, Store, Where


def _matches(doc: Doc, where: Where | None) -> bool:
    for key, want in (where or {}).items():
        have = doc.get(key)
        if isinstance(want, (list, tuple, set, frozenset)):
            if have not in want:
                return False
        elif have != want:
            return False
    return True


class OverlayStore:
    def __init__(self, base: Store):
        self.base = base
        self.engine = base.engine
        self._docs: dict[str, dict[int, Doc]] = {}  # changed or inserted documents
        self._deleted: dict[str, set[int]] = {}
        self._next: dict[str, int] = {}
        self._meta: dict[str, Any] = {}

    def _coll(self, coll: str) -> dict[int, Doc]:
        return self._docs.setdefault(coll, {})

    def _new_id(self, coll: str) -> int:
        if coll not in self._next:
            last = next(self.base.find(coll, None, order_by="id", descending=True, limit=1), None)
            self._next[coll] = (last["id"] if last else 0) + 1
        new_id = self._next[coll]
        self._next[coll] += 1
        return new_id

    def insert(self, coll: str, doc: Doc) -> int:
        new_id = self._new_id(coll)
        self._coll(coll)[new_id] = {**copy.deepcopy(doc), "id": new_id}
        return new_id

    def insert_many(self, coll: str, docs: Iterable[Doc]) -> list[int]:
        return [self.insert(coll, d) for d in docs]

    def put(self, coll: str, doc: Doc) -> None:
        new_id = doc.get("id")
        if not isinstance(new_id, int) or isinstance(new_id, bool) or new_id < 1:
            raise StoreError(f"{coll}: put needs the document's id (a positive int), got {new_id!r}")
        if self.get(coll, new_id) is not None:
            raise StoreError(f"{coll} already has a document with id {new_id}")
        if coll not in self._next:
            self._new_id(coll)  # the base's next id, then step back
            self._next[coll] -= 1
        self._next[coll] = max(self._next[coll], new_id + 1)
        self._deleted.get(coll, set()).discard(new_id)
        self._coll(coll)[new_id] = copy.deepcopy(doc)

    def last_id(self, coll: str) -> int:
        return max(self.base.last_id(coll), self._next.get(coll, 1) - 1)

    def get(self, coll: str, id: int) -> Doc | None:
        if id in self._deleted.get(coll, ()):
            return None
        if id in self._coll(coll):
            return copy.deepcopy(self._coll(coll)[id])
        return self.base.get(coll, id)

    def find(self, coll: str, where: Where | None = None, *, order_by: str = "id",
             descending: bool = False, limit: int | None = None) -> Iterator[Doc]:
        mine = self._coll(coll)
        deleted = self._deleted.get(coll, set())
        out = [d for d in self.base.find(coll, where) if d["id"] not in mine and d["id"] not in deleted]
        out += [copy.deepcopy(d) for i, d in mine.items() if i not in deleted and _matches(d, where)]
        out.sort(key=lambda d: (d.get(order_by) is not None, d.get(order_by)), reverse=descending)
        return iter(out[:limit] if limit is not None else out)

    def find_one(self, coll: str, where: Where, *, order_by: str = "id", descending: bool = False) -> Doc | None:
        return next(self.find(coll, where, order_by=order_by, descending=descending, limit=1), None)

    def count(self, coll: str, where: Where | None = None) -> int:
        return sum(1 for _ in self.find(coll, where))

    def update(self, coll: str, id: int, fields: Doc) -> None:
        doc = self.get(coll, id)
        if doc is None:
            raise StoreError(f"{coll} {id} does not exist")
        doc.update(copy.deepcopy(fields))
        self._coll(coll)[id] = doc

    def update_where(self, coll: str, where: Where, fields: Doc) -> int:
        ids = [d["id"] for d in self.find(coll, where)]
        for i in ids:
            self.update(coll, i, fields)
        return len(ids)

    def delete_where(self, coll: str, where: Where) -> int:
        ids = [d["id"] for d in self.find(coll, where)]
        self._deleted.setdefault(coll, set()).update(ids)
        return len(ids)

    def transaction(self) -> AbstractContextManager[None]:
        return nullcontext()

    def raise_ids(self, coll: str, floor: int) -> None:
        self._new_id(coll)  # computes the base's next id, then steps back
        self._next[coll] = max(self._next[coll] - 1, floor + 1)

    def get_meta(self, key: str) -> Any:
        return copy.deepcopy(self._meta[key]) if key in self._meta else self.base.get_meta(key)

    def set_meta(self, key: str, value: Any) -> None:
        self._meta[key] = copy.deepcopy(value)

    def close(self) -> None:
        self.base.close()
