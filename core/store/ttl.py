"""Short-lived in-memory state: permission tickets, authorization codes, nonces, seen ``jti``s.

These live for seconds to minutes and losing them on restart only forces a client to retry, so
they are kept out of the on-disk tables. Memory must stay bounded even under a flood of requests:
expired entries are swept from a heap of expiry times on every write (amortised O(log n)), and at
``max_items`` the entries closest to expiry are dropped first.

For replay detection (``add_once``) that bound is a trade-off: evicting a ``jti`` before its
token expires would let it be replayed, so size ``max_items`` above the peak rate times the ttl.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from typing import Generic, NamedTuple, TypeVar

from core.clock import Clock

__all__ = ["TTLCache"]

V = TypeVar("V")


class _Slot(NamedTuple, Generic[V]):
    expires: float
    token: int  # matches the heap entry that owns this slot; older heap entries are stale
    value: V | None


class TTLCache(Generic[V]):
    """A bounded map whose entries vanish ``ttl`` seconds after they were put. Thread-safe.

    An entry counts as expired from the instant ``clock() >= put time + ttl``.
    """

    def __init__(self, clock: Clock, *, max_items: int = 100_000) -> None:
        if max_items < 1:
            raise ValueError("max_items must be at least 1")
        self._clock = clock
        self._max_items = max_items
        self._slots: dict[str, _Slot[V]] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._tokens = itertools.count()
        self._lock = threading.Lock()

    def put(self, key: str, value: V, ttl: float) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds, replacing any previous value."""
        with self._lock:
            self._put(key, value, ttl)

    def get(self, key: str) -> V | None:
        """The live value under ``key``, or None if absent or expired."""
        with self._lock:
            slot = self._live(key)
            return slot.value if slot else None

    def pop(self, key: str) -> V | None:
        """Remove and return the live value under ``key``: the single-use read for codes and tickets."""
        with self._lock:
            slot = self._live(key)
            if slot is None:
                return None
            del self._slots[key]
            return slot.value

    def add_once(self, key: str, ttl: float) -> bool:
        """Remember ``key`` for ``ttl`` seconds; True the first time, False while it is remembered."""
        with self._lock:
            if self._live(key) is not None:
                return False
            self._put(key, None, ttl)
            return True

    def discard(self, key: str) -> None:
        with self._lock:
            self._slots.pop(key, None)

    def __len__(self) -> int:
        """The number of live entries."""
        with self._lock:
            self._sweep(self._clock())
            return len(self._slots)

    def _live(self, key: str) -> _Slot[V] | None:
        slot = self._slots.get(key)
        if slot is None:
            return None
        if slot.expires <= self._clock():
            del self._slots[key]
            return None
        return slot

    def _put(self, key: str, value: V | None, ttl: float) -> None:
        if not ttl > 0:
            raise ValueError(f"ttl must be positive, got {ttl!r}")
        now = self._clock()
        self._sweep(now)
        if key not in self._slots:
            while len(self._slots) >= self._max_items:
                self._evict_soonest()
        token = next(self._tokens)
        self._slots[key] = _Slot(now + ttl, token, value)
        heapq.heappush(self._heap, (now + ttl, token, key))
        if len(self._heap) > 2 * len(self._slots) + 64:
            self._compact()

    def _sweep(self, now: float) -> None:
        """Drop every entry that has expired by ``now``."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, token, key = heapq.heappop(heap)
            slot = self._slots.get(key)
            if slot is not None and slot.token == token:
                del self._slots[key]

    def _evict_soonest(self) -> None:
        while self._heap:
            _, token, key = heapq.heappop(self._heap)
            slot = self._slots.get(key)
            if slot is not None and slot.token == token:
                del self._slots[key]
                return

    def _compact(self) -> None:
        """Rebuild the heap without stale entries left by overwrites, pops and discards."""
        self._heap = [(slot.expires, slot.token, key) for key, slot in self._slots.items()]
        heapq.heapify(self._heap)
