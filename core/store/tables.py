"""The agent's persistent tables: one small crash-safe JSON file per table.

Each table lives in its own file so that a write to a busy table (grants, clients) rewrites only
that table, not the whole database. Every write is one atomic file replace (see ``atomic.py``).

TinyDB is not thread-safe: a write is "read whole file, modify, write whole file", so two
concurrent writers lose one update, and ``insert`` hands out ids from an unguarded counter. The
agent writes from an asyncio loop and a UI thread, so every table from ``Tables`` serialises its
writes on ``Tables.lock``. Callers hold the same (re-entrant) lock around their own
read-modify-write sequences, and the helpers below hold it around theirs.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from tinydb import Query, TinyDB
from tinydb.queries import QueryInstance
from tinydb.storages import Storage
from tinydb.table import Table

from core.store.atomic import AtomicJSONStorage

__all__ = ["Tables", "get_one", "remove_by", "update_by", "upsert_by"]

_NAME = re.compile(r"[A-Za-z0-9_-]+")


class _LockedTable(Table):
    """A TinyDB table whose writes and id allocation happen under a shared lock.

    Overrides two TinyDB internals (stable across 4.x) because every public write funnels through
    them: ``_update_table`` is the read-modify-write of the file, ``_get_next_id`` the id counter.
    """

    def __init__(self, storage: Storage, name: str, *, lock: threading.RLock, cache_size: int) -> None:
        super().__init__(storage, name, cache_size=cache_size)
        self.lock = lock

    def _update_table(self, updater: Callable[[dict[int, Mapping[str, Any]]], None]) -> None:
        with self.lock:
            super()._update_table(updater)

    def _get_next_id(self) -> int:
        with self.lock:
            next_id: int = super()._get_next_id()  # type: ignore[no-untyped-call]  # untyped upstream
            return next_id


class _LockedTinyDB(TinyDB):
    table_class: type[Table] = _LockedTable


class Tables:
    """The set of named tables the agent persists, each in ``directory/<name>.json``.

    The query cache is disabled (``cache_size=0``): TinyDB's cache hands back the very document
    objects it cached, so a caller mutating a result would silently change later query answers,
    and it cannot see changes made through another instance of the same file. Reads are a small
    file parse, cheap enough not to need it.
    """

    def __init__(self, directory: Path, names: Iterable[str]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self._dbs: dict[str, TinyDB] = {}
        self._tables: dict[str, Table] = {}
        for name in names:
            if not _NAME.fullmatch(name):
                self.close()
                raise ValueError(f"table name {name!r} must match {_NAME.pattern}")
            if name in self._dbs:
                continue
            db = _LockedTinyDB(self.directory / f"{name}.json", storage=AtomicJSONStorage)
            self._dbs[name] = db
            self._tables[name] = db.table(db.default_table_name, lock=self.lock, cache_size=0)

    def table(self, name: str) -> Table:
        """The table called ``name``; ``KeyError`` if it was not declared when opening."""
        try:
            return self._tables[name]
        except KeyError:
            raise KeyError(f"unknown table {name!r}; known: {sorted(self._tables)}") from None

    def documents(self, name: str) -> Mapping[str, Mapping[str, Any]]:
        """The table's documents by TinyDB id, as stored: the storage's own cached state, so
        callers must not modify it. Its identity changes whenever the file is rewritten, which
        lets callers keep indexes keyed on it."""
        table = self.table(name)
        data = table.storage.read() or {}
        return data.get(table.name, {})

    @property
    def names(self) -> list[str]:
        return list(self._tables)

    def close(self) -> None:
        """Refuse further writes. Idempotent."""
        with self.lock:
            for db in self._dbs.values():
                db.close()

    def __enter__(self) -> Tables:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _lock_of(table: Table) -> AbstractContextManager[Any]:
    """The lock guarding ``table``: the ``Tables`` lock, or nothing for a bare TinyDB table."""
    if isinstance(table, _LockedTable):
        return table.lock
    return nullcontext()


def _field_is(key_field: str, key: Any) -> QueryInstance:
    cond: QueryInstance = Query()[key_field] == key
    return cond


def get_one(table: Table, **fields: Any) -> dict[str, Any] | None:
    """The first document whose fields equal all of ``fields``, as a plain dict copy, or None."""
    if not fields:
        raise ValueError("get_one needs at least one field to match on")
    doc = table.get(Query().fragment(fields))
    return dict(doc) if doc is not None else None


def upsert_by(table: Table, key_field: str, doc: Mapping[str, Any]) -> None:
    """Store ``doc`` as the document keyed by ``doc[key_field]``, replacing it wholesale.

    Replacement (not TinyDB's merge-style ``upsert``) so that fields dropped from ``doc`` are
    dropped on disk too.
    """
    if key_field not in doc:
        raise ValueError(f"document has no key field {key_field!r}")
    new = dict(doc)

    def replace(existing: MutableMapping[str, Any]) -> None:
        existing.clear()
        existing.update(new)

    with _lock_of(table):
        current = table.get(_field_is(key_field, new[key_field]))
        if current is None:
            table.insert(new)
        else:
            table.update(replace, doc_ids=[current.doc_id])


def update_by(table: Table, key_field: str, key: Any, changes: Mapping[str, Any]) -> bool:
    """Merge ``changes`` into the document keyed by ``key``; False (and no write) if absent."""
    with _lock_of(table):
        doc = table.get(_field_is(key_field, key))
        if doc is None:
            return False
        table.update(dict(changes), doc_ids=[doc.doc_id])
        return True


def remove_by(table: Table, key_field: str, key: Any) -> bool:
    """Delete the document(s) keyed by ``key``; False (and no write) if there were none."""
    with _lock_of(table):
        cond = _field_is(key_field, key)
        if table.get(cond) is None:
            return False
        table.remove(cond)
        return True
