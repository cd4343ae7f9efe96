"""The checks every store applies, in one place: collections, fields, ids, limits and values.

The engines encode values their own way (integer cents, Decimal128, ISO text); what a value
may be is decided here, so a document that one store accepts every store accepts, the dry-run
overlay included: a dry run can never pass where the real run would fail.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from bursar.errors import StoreError
from bursar.store import checked_plain, datetime_value, json_text, money_value, unknown_field
from bursar.store.base import Doc, Where
from bursar.store.schema import BOOL, COLLECTIONS, DATETIME, JSON, MONEY

_LISTS = (list, tuple, set, frozenset)


def fields(coll: str) -> dict[str, str]:
    """The collection's fields and kinds; an unknown collection is a StoreError."""
    found = COLLECTIONS.get(coll)
    if found is None:
        raise StoreError(f"unknown collection '{coll}'")
    return found


def _check_bool(name: str) -> Callable[[Any], Any]:
    def check(v: Any) -> Any:
        if v is None or isinstance(v, bool):
            return v
        raise StoreError(f"{name}: expected bool, got {type(v).__name__}")

    return check


def value_check(coll: str, field: str, kind: str) -> Callable[[Any], Any]:
    """The value as stored (money with two places), or a StoreError naming the field."""
    name = f"{coll}.{field}"
    plain = checked_plain(name, kind)
    if plain is not None:
        return plain
    if kind == BOOL:
        return _check_bool(name)
    if kind == MONEY:
        return lambda v: None if v is None else money_value(v, name)
    if kind == DATETIME:
        return lambda v: None if v is None else datetime_value(v, name)
    if kind == JSON:
        def check_json(v: Any) -> Any:
            # through JSON text, as the engines store it: a Decimal reads back as its string
            return None if v is None else json.loads(json_text(v, name))

        return check_json
    raise StoreError(f"{name}: unknown field type {kind!r}")  # pragma: no cover - schema uses the above


_CHECKS: dict[tuple[str, str], Callable[[Any], Any]] = {
    (coll, f): value_check(coll, f, kind) for coll, fs in COLLECTIONS.items() for f, kind in fs.items()
}


def checked(coll: str, doc: Doc, *, id_error: str) -> Doc:
    """The document's fields, checked and normalised; `id` is refused (`id_error` says why)."""
    known = fields(coll)
    out: Doc = {}
    for f, v in doc.items():
        if f == "id":
            raise StoreError(f"{coll}: {id_error}")
        if f not in known:
            raise unknown_field(coll, f)
        out[f] = _CHECKS[(coll, f)](v)
    return out


def complete(coll: str, id: int, doc: Doc) -> Doc:
    """A stored document as every engine returns it: every schema field, None when unset."""
    return {"id": id, **{f: doc.get(f) for f in fields(coll)}}


def checked_where(coll: str, where: Where | None) -> Where:
    known = fields(coll)
    out: Where = {}
    for f, v in (where or {}).items():
        if f != "id" and f not in known:
            raise unknown_field(coll, f)
        check = _CHECKS.get((coll, f), lambda x: x)
        out[f] = type(v)(check(x) for x in v) if isinstance(v, _LISTS) else check(v)
    return out


def checked_order(coll: str, order_by: str) -> None:
    if order_by != "id" and order_by not in fields(coll):
        raise unknown_field(coll, order_by)


def checked_limit(coll: str, limit: int | None) -> None:
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise StoreError(f"find on {coll}: limit must be a non-negative int, got {limit!r}")

