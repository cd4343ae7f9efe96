"""The embedded engine: one SQLite file (stdlib sqlite3, WAL mode).

Why it looks the way it does:
- One table per collection, the schema's fields as real columns, `id INTEGER PRIMARY KEY
  AUTOINCREMENT`: ids start at 1 and are never reused, even after a delete.
- Money is INTEGER cents, datetimes ISO text (sorts in time order), bools 0/1, JSON as text.
  Reading gives the Python types back.
- The connection runs in autocommit mode; `transaction()` issues BEGIN IMMEDIATE itself, so
  a transaction takes the write lock up front and cannot deadlock on a read->write upgrade.
- The import job does hundreds of thousands of single-row lookups and inserts, so SQL strings
  are built once per (operation, collection, shape) and cached, and values are converted by
  per-field functions prepared at open time.
- `find` reads in keyset-paginated batches: each batch is a complete statement, so callers may
  update or delete the rows they are iterating over (SQLite leaves that undefined for a
  statement still in progress) and memory stays bounded.

A store object is one connection: use it from one thread at a time (it may move between
threads); give concurrent threads their own SqliteStore on the same file.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from bursar.errors import StoreError
from bursar.store import one_line, utc_now, validate
from bursar.store.base import Doc, Where
from bursar.store.schema import BOOL, COLLECTIONS, DATETIME, INDEXES, INT, JSON, MONEY, STR
from bursar.store.validate import FIXED_ID, NEW_ID, check_names

USER_VERSION = 1  # PRAGMA user_version of the layout this module writes
_UNIQUE = {("meta", "key")}  # indexes that are unique (meta keys are set by upsert)
_COLUMN_TYPE = {STR: "TEXT", INT: "INTEGER", BOOL: "INTEGER", MONEY: "INTEGER", DATETIME: "TEXT", JSON: "TEXT"}
_LISTS = (list, tuple, set, frozenset)
# Indexed fields whose values repeat a lot (flags, states, the "\\N" loan id).  Without
# ANALYZE statistics SQLite may pick their index over a selective one, e.g. almaLoanId over
# rootAlmaFineId: milliseconds instead of microseconds.  When a filter also names a selective
# indexed field, these are written as `+"field"`, which keeps them out of index choice.
_LOW_SELECTIVITY = {("fines", "almaLoanId"), ("burs_exports", "state"), ("jobs", "type")} | {
    (coll, f) for coll, fields in COLLECTIONS.items() for f, k in fields.items() if k == BOOL
}
# Two-field indexes, for a find filtered on the first field and ordered by the second: the keyset
# of each batch is then one range of the index, not a sort of every matching row per batch
# (quadratic in the rows).  An export's lines are read in the order of their Bursar lines.
_PAIR_INDEXES = {"burs_export_trans": [("bursExport", "transBurs")]}
_INDEXED = {(coll, f) for coll, fields in INDEXES.items() for f in fields} | {(c, "id") for c in COLLECTIONS}

Encoder = Callable[[Any], Any]


def _q(name: str) -> str:
    """A quoted SQL identifier (fields such as `type`, `key` and `value` are keywords)."""
    return '"' + name.replace('"', '""') + '"'


# ---- value conversion ---------------------------------------------------------------------


def _cents(v: Decimal) -> int:
    return int(v.scaleb(2))  # exact: a checked amount has two places; Decimal("12.34") -> 1234


def _encoder(coll: str, field: str, kind: str) -> Encoder:
    """Python value -> SQLite value for one field: checked by `validate`, then converted."""
    name = f"{coll}.{field}"
    converters: dict[str, Encoder] = {
        BOOL: int,  # 1 or 0 (sqlite3 would bind a bool too, but more slowly: it is not exactly an int)
        MONEY: _cents,
        DATETIME: datetime.isoformat,  # "YYYY-MM-DDTHH:MM:SS[.ffffff]": text order is time order
        JSON: lambda v: validate.json_text(v, name),
    }
    return validate.encoder(coll, field, converters.get(kind))


def _money_out(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)  # 1234 -> Decimal("12.34"), 100 -> Decimal("1.00")


_DECODERS: dict[str, Callable[[Any], Any] | None] = {
    STR: None,
    INT: None,
    BOOL: bool,
    MONEY: _money_out,
    DATETIME: datetime.fromisoformat,
    JSON: json.loads,
}


class _Table:
    """Everything prepared once per collection: column list, SELECT prefix, converters."""

    def __init__(self, name: str, fields: dict[str, str]):
        self.name = name
        self.q = _q(name)
        self.fields = fields
        self.columns: tuple[str, ...] = ("id", *fields)
        self.select = "SELECT " + ", ".join(_q(c) for c in self.columns) + " FROM " + self.q
        self.encoders: dict[str, Encoder] = {f: _encoder(name, f, k) for f, k in fields.items()}
        self.encoders["id"] = _encoder(name, "id", INT)
        self.field_encoders = [self.encoders[f] for f in fields]
        self.decoders = [(f, d) for f, k in fields.items() if (d := _DECODERS[k]) is not None]
        self.insert_all = (
            f"INSERT INTO {self.q} ({', '.join(_q(c) for c in self.columns)}) "
            f"VALUES ({', '.join('?' for _ in self.columns)})"
        )

    def decode(self, row: tuple[Any, ...]) -> Doc:
        doc = dict(zip(self.columns, row, strict=True))
        for field, dec in self.decoders:
            value = doc[field]
            if value is not None:
                doc[field] = dec(value)
        return doc


_TABLES = {name: _Table(name, fields) for name, fields in COLLECTIONS.items()}


# ---- the store ----------------------------------------------------------------------------


def read_layout(path: Path, *, integrity: bool = False) -> tuple[int, set[str], list[Any]]:
    """(user_version, table names, integrity_check rows or []) of a SQLite file, read-only:
    nothing about the file changes.  sqlite3.Error when it is not a SQLite database."""
    con = sqlite3.connect(path.absolute().as_uri() + "?mode=ro", uri=True)
    try:
        rows = con.execute("PRAGMA integrity_check").fetchall() if integrity else []
        version = con.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        con.close()
    return version, tables, rows


def refuse_foreign(path: Path) -> None:
    """Another program's SQLite file (tables that are not ours, or a layout we did not write) is
    refused before it is touched: opening it as a store would add our tables to it."""
    from bursar.errors import SettingsError

    try:
        version, tables, _ = read_layout(path)
    except sqlite3.Error as e:
        raise SettingsError(f"{path} is not a pyBursar database ({one_line(e)}); check BURSAR_DB_URI") from None
    foreign = sorted(t for t in tables - set(COLLECTIONS) if not t.startswith("sqlite_"))
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise SettingsError(f"{path} is not a pyBursar database (it has tables of another program: {shown}); "
                            "check BURSAR_DB_URI")
    if tables - {"sqlite_sequence"} and version < 1:  # user_version is our layout marker
        raise SettingsError(f"{path} is not a pyBursar database (no pyBursar layout marker); check BURSAR_DB_URI")


class SqliteStore(validate.CheckedStore):
    """The Store protocol on one SQLite file (see the module docstring)."""

    engine = "sqlite"

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path).absolute()
        self._depth = 0  # transaction nesting
        self._sql: dict[tuple[Any, ...], Any] = {}  # cached SQL per operation shape
        if self.path.is_file() and self.path.stat().st_size > 0:
            refuse_foreign(self.path)  # before anything could change a byte of it
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not self.path.exists():
                # patron data: readable by the owner only (SQLite copies this mode to -wal/-shm)
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as e:
            raise StoreError(f"cannot create the SQLite file {self.path}: {e.strerror or e}") from None
        try:
            self._conn = sqlite3.connect(
                str(self.path),
                timeout=30.0,
                isolation_level=None,  # autocommit; transaction() says BEGIN itself
                check_same_thread=False,
                cached_statements=512,
            )
        except sqlite3.Error as e:
            raise self._error(e) from None
        try:
            self._conn.execute("PRAGMA busy_timeout = 30000")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._prepare_schema()
        except sqlite3.Error as e:
            self._conn.close()
            raise self._error(e) from None
        except StoreError:
            self._conn.close()
            raise

    # -- opening --

    def _prepare_schema(self) -> None:
        """Create missing tables, columns and indexes; record the layout version.

        The check runs without a lock, so opening the store while another process holds a
        long write transaction does not wait; the write lock is taken only when something
        is missing.
        """
        if self._schema_is_current():
            return
        with self.transaction():
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            if version > USER_VERSION:
                raise StoreError(
                    f"the SQLite file {self.path} has layout version {version}, newer than this "
                    f"pyBursar understands ({USER_VERSION})"
                )
            for t in _TABLES.values():
                cols = ", ".join(f"{_q(f)} {_COLUMN_TYPE[k]}" for f, k in t.fields.items())
                self._conn.execute(f"CREATE TABLE IF NOT EXISTS {t.q} (id INTEGER PRIMARY KEY AUTOINCREMENT, {cols})")
                have = {row[1] for row in self._conn.execute(f"PRAGMA table_info({t.q})")}
                for f, k in t.fields.items():
                    if f not in have:  # a field added to the schema after the file was made
                        self._conn.execute(f"ALTER TABLE {t.q} ADD COLUMN {_q(f)} {_COLUMN_TYPE[k]}")
            for coll, fields in INDEXES.items():
                for f in fields:
                    unique = "UNIQUE " if (coll, f) in _UNIQUE else ""
                    self._conn.execute(
                        f"CREATE {unique}INDEX IF NOT EXISTS {_q(f'ix_{coll}_{f}')} ON {_q(coll)} ({_q(f)})"
                    )
            for coll, pairs in _PAIR_INDEXES.items():
                for first, second in pairs:
                    self._conn.execute(
                        f"CREATE INDEX IF NOT EXISTS {_q(f'ix_{coll}_{first}_{second}')} "
                        f"ON {_q(coll)} ({_q(first)}, {_q(second)})"
                    )
            if version != USER_VERSION:
                self._conn.execute(f"PRAGMA user_version = {USER_VERSION}")

    def _schema_is_current(self) -> bool:
        if self._conn.execute("PRAGMA user_version").fetchone()[0] != USER_VERSION:
            return False
        indexes = {row[0] for row in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        for coll, fields in INDEXES.items():
            if any(f"ix_{coll}_{f}" not in indexes for f in fields):
                return False
        for coll, pairs in _PAIR_INDEXES.items():
            if any(f"ix_{coll}_{first}_{second}" not in indexes for first, second in pairs):
                return False
        for t in _TABLES.values():
            have = {row[1] for row in self._conn.execute(f"PRAGMA table_info({t.q})")}
            if not have.issuperset(t.columns):
                return False
        return True

    # -- helpers --

    def _error(self, e: BaseException) -> StoreError:
        return StoreError(f"SQLite error on {self.path}: {one_line(e)}")

    @staticmethod
    def _table(coll: str) -> _Table:
        return validate.lookup(_TABLES, coll)

    def _where(self, t: _Table, where: Where | None) -> tuple[str, list[Any]]:
        """(SQL condition, parameters) for an equality filter; "1" when there is none.

        None -> IS NULL; a list/tuple/set -> IN, passed as one JSON array so every list
        length shares one cached statement (and SQLite's variable limit never applies).
        """
        if not where:
            return "1", []
        shape = tuple(
            (k, 0 if v is None else (3 if None in v else 2) if isinstance(v, _LISTS) else 1) for k, v in where.items()
        )
        key = ("where", t.name, shape)
        cached = self._sql.get(key)
        if cached is None:
            parts = []
            check_names(t.name, where)
            selective = any((t.name, f) in _INDEXED and (t.name, f) not in _LOW_SELECTIVITY for f, _ in shape)
            for field, kind in shape:
                c = _q(field)
                if selective and (t.name, field) in _LOW_SELECTIVITY:
                    c = "+" + c
                if kind == 0:
                    parts.append(f"{c} IS NULL")
                elif kind == 1:
                    parts.append(f"{c} = ?")
                elif kind == 2:
                    parts.append(f"{c} IN (SELECT value FROM json_each(?))")
                else:
                    parts.append(f"({c} IN (SELECT value FROM json_each(?)) OR {c} IS NULL)")
            cached = self._sql[key] = " AND ".join(parts)
        params: list[Any] = []
        encoders = t.encoders
        for field, value in where.items():
            if value is None:
                continue
            enc = encoders[field]
            if isinstance(value, _LISTS):
                params.append(json.dumps([enc(v) for v in value if v is not None]))
            else:
                params.append(enc(value))
        return cached, params

    @staticmethod
    def _order(t: _Table, order_by: str, descending: bool) -> str:
        validate.checked_order(t.name, order_by)
        d = " DESC" if descending else ""
        if order_by == "id":
            return f" ORDER BY id{d}"
        return f" ORDER BY {_q(order_by)}{d}, id{d}"  # id breaks ties, so the order is total

    def _exec(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        try:
            return self._conn.execute(sql, params)  # type: ignore[arg-type]
        except sqlite3.Error as e:
            raise self._error(e) from None

    def _set_clause(self, t: _Table, fields: Doc) -> tuple[str, list[Any]]:
        keys = tuple(fields)
        key = ("set", t.name, keys)
        cached = self._sql.get(key)
        if cached is None:
            check_names(t.name, keys, id_error=FIXED_ID)
            cached = self._sql[key] = ", ".join(f"{_q(f)} = ?" for f in keys)
        encoders = t.encoders
        return cached, [encoders[f](v) for f, v in fields.items()]

    # -- writes --

    def insert(self, coll: str, doc: Doc) -> int:
        t = self._table(coll)
        keys = tuple(doc)
        key = ("insert", coll, keys)
        cached = self._sql.get(key)
        if cached is None:
            check_names(coll, keys, id_error=NEW_ID)
            sql = (
                f"INSERT INTO {t.q} ({', '.join(_q(f) for f in keys)}) VALUES ({', '.join('?' for _ in keys)})"
                if keys
                else f"INSERT INTO {t.q} DEFAULT VALUES"
            )
            cached = self._sql[key] = (sql, [t.encoders[f] for f in keys])
        sql, encoders = cached
        values = [enc(v) for enc, v in zip(encoders, doc.values(), strict=True)]
        try:
            new_id: int = self._conn.execute(sql, values).lastrowid  # type: ignore[assignment]
        except sqlite3.Error as e:
            raise self._error(e) from None
        doc["id"] = new_id
        return new_id

    def insert_many(self, coll: str, docs: Iterable[Doc]) -> list[int]:
        t = self._table(coll)
        docs = list(docs)
        rows: list[list[Any]] = []
        fields, encoders = list(t.fields), t.field_encoders
        for doc in docs:
            check_names(coll, doc, id_error=NEW_ID)
            rows.append([enc(doc.get(f)) for f, enc in zip(fields, encoders, strict=True)])
        if not rows:
            return []
        with self.transaction():
            # The write lock is held, so the next ids are ours; explicit ids let executemany
            # insert the block in one call (AUTOINCREMENT moves its sequence past them).
            seq = self._exec("SELECT seq FROM sqlite_sequence WHERE name = ?", (coll,)).fetchone()
            top = self._exec(f"SELECT max(id) FROM {t.q}").fetchone()[0]
            first = max(seq[0] if seq else 0, top or 0) + 1
            ids = list(range(first, first + len(rows)))
            try:
                self._conn.executemany(t.insert_all, ([i, *row] for i, row in zip(ids, rows, strict=True)))
            except sqlite3.Error as e:
                raise self._error(e) from None
        for doc, i in zip(docs, ids, strict=True):
            doc["id"] = i
        return ids

    def put(self, coll: str, doc: Doc) -> None:
        """Insert a document with its own id, which must not be taken.  AUTOINCREMENT moves its
        sequence past an explicit id, so a later insert never hands it out again."""
        t = self._table(coll)
        new_id = validate.put_id(coll, doc)
        check_names(coll, doc)
        row = [new_id, *(enc(doc.get(f)) for f, enc in zip(t.fields, t.field_encoders, strict=True))]
        try:
            self._conn.execute(t.insert_all, row)
        except sqlite3.IntegrityError as e:
            if self.get(coll, new_id) is not None:
                raise validate.taken(coll, new_id) from None
            raise self._error(e) from None
        except sqlite3.Error as e:
            raise self._error(e) from None

    def last_id(self, coll: str) -> int:
        t = self._table(coll)
        seq = self._exec("SELECT seq FROM sqlite_sequence WHERE name = ?", (coll,)).fetchone()
        top = self._exec(f"SELECT max(id) FROM {t.q}").fetchone()[0]
        return max(seq[0] if seq else 0, top or 0)

    def _update_one(self, coll: str, id: int, fields: Doc) -> bool:
        t = self._table(coll)
        clause, params = self._set_clause(t, fields)
        params.append(t.encoders["id"](id))
        return self._exec(f"UPDATE {t.q} SET {clause} WHERE id = ?", params).rowcount > 0

    def _update_many(self, coll: str, where: Where, fields: Doc) -> int:
        t = self._table(coll)
        clause, params = self._set_clause(t, fields)
        cond, wparams = self._where(t, where)
        return self._exec(f"UPDATE {t.q} SET {clause} WHERE {cond}", params + wparams).rowcount

    def delete_where(self, coll: str, where: Where) -> int:
        t = self._table(coll)
        cond, params = self._where(t, where)
        return self._exec(f"DELETE FROM {t.q} WHERE {cond}", params).rowcount

    # -- reads --

    def get(self, coll: str, id: int) -> Doc | None:
        t = self._table(coll)
        try:
            row = self._conn.execute(t.select + " WHERE id = ?", (t.encoders["id"](id),)).fetchone()
        except sqlite3.Error as e:
            raise self._error(e) from None
        return None if row is None else t.decode(row)

    def find_one(self, coll: str, where: Where, *, order_by: str = "id", descending: bool = False) -> Doc | None:
        t = self._table(coll)
        cond, params = self._where(t, where)
        key = ("find_one", coll, cond, order_by, descending)
        sql = self._sql.get(key)
        if sql is None:
            sql = self._sql[key] = f"{t.select} WHERE {cond}{self._order(t, order_by, descending)} LIMIT 1"
        try:
            row = self._conn.execute(sql, params).fetchone()
        except sqlite3.Error as e:
            raise self._error(e) from None
        return None if row is None else t.decode(row)

    def find(
        self,
        coll: str,
        where: Where | None = None,
        *,
        order_by: str = "id",
        descending: bool = False,
        limit: int | None = None,
    ) -> Iterator[Doc]:
        # Everything is checked now, not at the first next(): a typo fails at the call.
        t = self._table(coll)
        cond, params = self._where(t, where)
        order = self._order(t, order_by, descending)
        validate.checked_limit(coll, limit)
        return self._batches(t, cond, params, order_by, descending, order, limit)

    def _batches(
        self,
        t: _Table,
        cond: str,
        params: list[Any],
        order_by: str,
        descending: bool,
        order: str,
        limit: int | None,
    ) -> Iterator[Doc]:
        """Keyset pagination on (order_by, id): each batch starts after the last row seen."""
        col = _q(order_by)
        pos = t.columns.index(order_by)
        after = " < " if descending else " > "

        def fetch(last: tuple[Any, ...] | None, size: int) -> list[tuple[Any, ...]]:
            if last is None:
                keyset, kparams = "", []
            elif order_by == "id":
                keyset, kparams = f" AND id{after}?", [last[0]]
            elif last[pos] is None:
                # NULLs come first in ascending order and last in descending order
                if descending:
                    keyset, kparams = f" AND ({col} IS NULL AND id < ?)", [last[0]]
                else:
                    keyset = f" AND (({col} IS NULL AND id > ?) OR {col} IS NOT NULL)"
                    kparams = [last[0]]
            else:
                # A row value, not `col > ? OR (col = ? AND id > ?)`: SQLite turns it into a
                # range on the column's index (whose entries end in the rowid), so each batch
                # starts where the last one ended instead of scanning from the first row.
                keyset = f" AND (({col}, id){after}(?, ?)"
                keyset += f" OR {col} IS NULL)" if descending else ")"
                kparams = [last[pos], last[0]]
            sql = f"{t.select} WHERE ({cond}){keyset}{order} LIMIT ?"
            return self._exec(sql, [*params, *kparams, size]).fetchall()

        return map(t.decode, validate.keyset_batches(fetch, limit))

    def count(self, coll: str, where: Where | None = None) -> int:
        t = self._table(coll)
        cond, params = self._where(t, where)
        return int(self._exec(f"SELECT count(*) FROM {t.q} WHERE {cond}", params).fetchone()[0])

    # -- transactions, meta, close --

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One real transaction; nested use joins the outer one (only the outermost commits
        or rolls back, so an exception caught inside an outer block does not undo anything
        by itself)."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._exec("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            if self._conn.in_transaction:
                try:
                    self._conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # the original exception is the one worth reporting
            raise
        self._depth = 0
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error as e:
            if self._conn.in_transaction:
                try:
                    self._conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            raise self._error(e) from None

    def raise_ids(self, coll: str, floor: int) -> None:
        t = self._table(coll)
        with self.transaction():
            # AUTOINCREMENT's next id is max(sqlite_sequence.seq, max(id)) + 1
            if self._exec("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?", (floor, coll)).rowcount:
                return
            top = self._exec(f"SELECT max(id) FROM {t.q}").fetchone()[0] or 0
            self._exec("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (coll, max(floor, top)))

    def set_meta(self, key: str, value: Any, *, now: datetime | None = None) -> None:
        with self.transaction():
            now = now or utc_now()
            if not self.update_where("meta", {"key": key}, {"value": value, "updated": now}):
                self.insert("meta", {"key": key, "value": value, "updated": now})

    def close(self) -> None:
        try:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # closing must not fail because of housekeeping
        finally:
            self._conn.close()

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"
