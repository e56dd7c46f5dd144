"""Client logos for the app, fetched by the agent and kept on the device.

The browser never loads a ``logo_uri`` itself (that would tell the client's server when the owner
opens the app, from where, with which browser). The agent fetches a logo only when the app is about
to show a card for that client, at most once per address, with :func:`core.fetch.fetch_image`'s
limits (https, public host, no redirects, 128 KiB, a real raster picture). Pictures are stored as
``DIR/logos/<sha256 of the address>``; a failure is remembered for a day so a dead address is not
asked again on every refresh.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from core.fetch import FetchError, fetch_image, image_type

log = logging.getLogger(__name__)

LOGO_READY = "logo_ready"
"""The event published when a logo lands, so open pages redraw their cards."""
RETRY_AFTER = 86400
MAX_PENDING = 8

FetchImage = Callable[[str], bytes]


class LogoCache:
    def __init__(self, folder: Path, *, fetch: FetchImage | None = None, allow_loopback: bool = False,
                 on_ready: Callable[[str], None] | None = None, clock: Callable[[], float] = time.time) -> None:
        self.folder = folder
        self._fetch = fetch or (lambda url: fetch_image(url, allow_loopback=allow_loopback))
        self._on_ready = on_ready
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: set[str] = set()
        self._memory: dict[str, bytes] = {}

    def _path(self, uri: str) -> Path:
        return self.folder / hashlib.sha256(uri.encode()).hexdigest()

    def get(self, uri: str | None) -> bytes | None:
        """The picture for ``uri`` when it is on the device; otherwise None, and a fetch is started
        in the background (``on_ready(uri)`` is called when it lands)."""
        if not uri:
            return None
        with self._lock:
            if uri in self._memory:
                return self._memory[uri]
        path = self._path(uri)
        try:
            data = path.read_bytes()
        except OSError:
            data = None
        if data and image_type(data):
            with self._lock:
                self._memory[uri] = data
            return data
        self._start(uri, path)
        return None

    def _start(self, uri: str, path: Path) -> None:
        try:
            failed_lately = self._clock() - path.with_suffix(".failed").stat().st_mtime < RETRY_AFTER
        except OSError:  # no failure remembered for this address
            failed_lately = False
        if failed_lately:
            return
        with self._lock:
            if uri in self._pending or len(self._pending) >= MAX_PENDING:
                return
            self._pending.add(uri)
        threading.Thread(target=self._load, args=(uri, path), name="logo-fetch", daemon=True).start()

    def _load(self, uri: str, path: Path) -> None:
        try:
            data = self._fetch(uri)
            if image_type(data) is None:
                raise FetchError("not a picture")
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
            with self._lock:
                self._memory[uri] = data
        except (FetchError, OSError) as exc:
            log.info("no logo from %s: %s", uri, exc)
            with contextlib.suppress(OSError):  # remembering the failure is only a courtesy to the server
                self.folder.mkdir(parents=True, exist_ok=True)
                path.with_suffix(".failed").write_text(str(exc)[:200])
            return
        finally:
            with self._lock:
                self._pending.discard(uri)
        if self._on_ready is not None:
            self._on_ready(uri)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """For tests: True once no fetch is under way."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._pending:
                    return True
            time.sleep(0.02)
        return False
