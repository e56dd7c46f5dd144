"""The owner's durable state: one TinyDB file per table, written atomically.

Only things that change at human speed live here (profiles, clients, resources, shares, inbox,
trust, PAT connections); anything that grows with traffic (RPTs, their refresh grants, tickets)
stays in memory.
Every method that changes state returns only after the new file is on disk.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tinydb import Query
from tinydb.table import Table

from core.model import Share
from core.store.tables import Tables, remove_by, update_by, upsert_by

TABLES = ("profiles", "clients", "resources", "shares", "inbox", "trust", "connections", "revoked", "handovers")
OWNER_PROFILE = "me"


class State:
    def __init__(self, directory: Path) -> None:
        self.tables = Tables(directory, TABLES)
        self._indexes: dict[tuple[str, str], tuple[Mapping[str, Any], dict[Any, Mapping[str, Any]]]] = {}

    def close(self) -> None:
        self.tables.close()

    @contextmanager
    def locked(self) -> Iterator[None]:
        with self.tables.lock:
            yield

    def _t(self, name: str) -> Table:
        return self.tables.table(name)

    # generic helpers -------------------------------------------------------------------------
    def get(self, table: str, key: str, value: Any) -> dict[str, Any] | None:
        """One document by a unique key, through an index rebuilt only when the table changes
        (lookups of clients, resources and trusted issuers sit on every grant's path)."""
        docs = self.tables.documents(table)
        cached = self._indexes.get((table, key))
        if cached is None or cached[0] is not docs:
            cached = (docs, {d[key]: d for d in docs.values() if isinstance(d.get(key), str | int)})
            self._indexes[(table, key)] = cached
        found = cached[1].get(value) if isinstance(value, str | int) else None
        return dict(found) if found is not None else None

    def put(self, table: str, key: str, doc: Mapping[str, Any]) -> None:
        with self.tables.lock:
            upsert_by(self._t(table), key, dict(doc))

    def update(self, table: str, key: str, value: Any, changes: Mapping[str, Any]) -> bool:
        with self.tables.lock:
            return update_by(self._t(table), key, value, dict(changes))

    def remove(self, table: str, key: str, value: Any) -> bool:
        with self.tables.lock:
            return remove_by(self._t(table), key, value)

    def all(self, table: str) -> list[dict[str, Any]]:
        return [dict(d) for d in self._t(table).all()]

    def find(self, table: str, **fields: Any) -> list[dict[str, Any]]:
        q = Query()
        cond = None
        for k, v in fields.items():
            c = q[k] == v
            cond = c if cond is None else cond & c
        if cond is None:
            return self.all(table)
        return [dict(d) for d in self._t(table).search(cond)]

    # profiles -------------------------------------------------------------------------------
    def ensure_owner_profile(self, now: int) -> None:
        if self.get("profiles", "id", OWNER_PROFILE) is None:
            self.put("profiles", "id", {"id": OWNER_PROFILE, "name": "Me", "kind": "owner",
                                        "created_at": now, "until": None, "exclude": []})

    def profile(self, ref: str) -> dict[str, Any] | None:
        """Look a profile up by id or by name (case-insensitive)."""
        found = self.get("profiles", "id", ref)
        if found:
            return found
        for p in self.all("profiles"):
            if str(p.get("name", "")).lower() == ref.lower():
                return p
        return None

    # shares ----------------------------------------------------------------------------------
    def shares(self, profile: str | None = None) -> list[Share]:
        docs = self.find("shares", profile=profile) if profile else self.all("shares")
        return [Share.from_dict(d) for d in docs]

    def share(self, share_id: str) -> Share | None:
        doc = self.get("shares", "id", share_id)
        return Share.from_dict(doc) if doc else None

    def share_backs_tokens(self, share_id: str, now: float) -> bool:
        """Tokens backed by a share die with it: revoked, deleted or past its end."""
        share = self.share(share_id)
        if share is None or share.revoked_at is not None:
            return False
        end = share.ends_at()
        return end is None or now < end

    def moved_to(self, profile: str) -> str | None:
        """The issuer of the agent a handed-over profile now lives on (None: it lives here)."""
        prof = self.get("profiles", "id", profile)
        if prof is None or prof.get("status") != "handed_over":
            return None
        return str((prof.get("moved_to") or {}).get("issuer") or "") or None
