"""Events a UI can subscribe to: "request arrived" and "decision made".

Subscribers are plain callables; the bus never lets a failing subscriber break the publisher.
It is thread-safe because the Flet UI may subscribe from its own thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger(__name__)

REQUEST_ARRIVED = "request_arrived"
DECISION_MADE = "decision_made"
SHARE_CHANGED = "share_changed"

Subscriber = Callable[[str, Mapping[str, Any]], None]


class EventBus:
    def __init__(self) -> None:
        self._subs: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Register ``callback(kind, payload)``; returns a function that unsubscribes."""
        with self._lock:
            self._subs.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subs:
                    self._subs.remove(callback)

        return unsubscribe

    def publish(self, kind: str, payload: Mapping[str, Any]) -> None:
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            try:
                sub(kind, payload)
            except Exception:
                log.exception("event subscriber failed on %s", kind)
