"""The store interface.  Domain code only ever talks to this; it never knows which engine runs.

A document is a plain dict of the fields declared in `schema.COLLECTIONS` plus its `id`.
Fields absent from a stored document read back as None.  Values have the Python types the
schema names (Decimal money, naive datetimes, bool, int, str, JSON values).

`where` filters are equality only: {"field": value, ...} all of which must hold.  A value of
None matches a missing/NULL field; a list/tuple/set value means "field IN values".
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

Doc = dict[str, Any]
Where = dict[str, Any]


class Store(Protocol):
    engine: str  # "sqlite" | "mongodb"

    def insert(self, coll: str, doc: Doc) -> int:
        """Insert one document; assign doc["id"] from an atomic counter and return it."""

    def insert_many(self, coll: str, docs: Iterable[Doc]) -> list[int]:
        """Insert documents in order (ids ascending in that order); return their ids."""

    def put(self, coll: str, doc: Doc) -> None:
        """Insert one document WITH its id (`migrate` copies stores this way, relations intact).
        The id must not exist yet (a StoreError otherwise); the id counter is raised, so later
        `insert` calls return ids above it."""

    def last_id(self, coll: str) -> int:
        """The highest id coll holds or has handed out (0 for none): the next insert is above."""

    def get(self, coll: str, id: int) -> Doc | None:
        """The document with this id, or None."""

    def find(
        self,
        coll: str,
        where: Where | None = None,
        *,
        order_by: str = "id",
        descending: bool = False,
        limit: int | None = None,
    ) -> Iterator[Doc]:
        """Matching documents, streamed (never the whole collection in memory)."""

    def find_one(self, coll: str, where: Where, *, order_by: str = "id", descending: bool = False) -> Doc | None:
        """The first matching document in that order, or None."""

    def count(self, coll: str, where: Where | None = None) -> int: ...

    def update(self, coll: str, id: int, fields: Doc) -> None:
        """Set these fields on the document with this id (a missing id is a StoreError)."""

    def update_where(self, coll: str, where: Where, fields: Doc) -> int:
        """Set these fields on every matching document; return how many matched."""

    def delete_where(self, coll: str, where: Where) -> int:
        """Delete every matching document; return how many."""

    def transaction(self) -> AbstractContextManager[None]:
        """Group writes.  SQLite: one real transaction (rolled back on an exception).
        MongoDB: no multi-document transaction (a standalone mongod has none), so callers
        order their writes so that a crash between any two is repaired by re-running."""

    def raise_ids(self, coll: str, floor: int) -> None:
        """From now on `insert` hands out ids above `floor` in coll (never lowers the counter).
        Ids known outside the store (file names on the Bursar's server, say) are never reused."""

    def get_meta(self, key: str) -> Any:
        """A small JSON value kept under `key` in the `meta` collection, or None."""

    def set_meta(self, key: str, value: Any, *, now: datetime | None = None) -> None:
        """Keep `value` under `key`; `now` (naive UTC, the command's clock) stamps `updated`."""

    def close(self) -> None: ...
