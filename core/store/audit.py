"""The activity log: what happened to the owner's data, in a form that shows tampering.

Append-only JSON lines in ``audit.jsonl``. Each entry carries ``prev`` (the previous entry's
hash) and ``hash = sha256(prev + canonical_json(entry without "hash"))``, so editing, deleting
or reordering any line breaks the chain from that point on and ``verify`` names the spot. When
the file grows past ``max_bytes`` it is renamed ``audit-<first seq>.jsonl`` and the chain simply
continues in a fresh ``audit.jsonl``.

Durability is chosen per entry. ``durable=True`` (owner decisions) writes and fsyncs before
returning. Otherwise the entry is buffered and a background thread writes and fsyncs the buffer
within ``flush_interval`` (group commit: thousands of token issuances per second share one fsync).
A crash loses at most the non-durable entries appended in that window, and because the buffer is
written in order a loss is always a suffix of the log: the chain on disk stays valid.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain, islice
from pathlib import Path
from typing import Any

from core.clock import Clock
from core.store.atomic import fsync_directory

__all__ = ["GENESIS", "AuditCheck", "AuditCorrupt", "AuditLog", "canonical_json", "entry_hash"]

GENESIS = "0" * 64
_CURRENT = "audit.jsonl"
_ROTATED = re.compile(r"audit-(\d+)\.jsonl")
_RESERVED = frozenset({"seq", "ts", "event", "prev", "hash"})
_OPEN_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0)
log = logging.getLogger(__name__)

Entry = dict[str, Any]


def canonical_json(obj: Any) -> str:
    """The one serialisation that hashes are computed over (and lines are written in)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def entry_hash(prev: str, body: str) -> str:
    return hashlib.sha256((prev + body).encode("utf-8")).hexdigest()


class AuditCorrupt(Exception):
    """The log cannot be resumed (its last complete entry is unreadable); it needs a human."""


@dataclass(frozen=True)
class AuditCheck:
    """Outcome of ``verify``; ``first_bad_seq`` is the first sequence number that did not check out."""

    ok: bool
    count: int
    first_bad_seq: int | None
    reason: str | None


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN/Infinity: never written by append, so tampering


def _parse(line: bytes) -> Entry | None:
    """A log line as an entry, or None if it is not one (torn, garbled)."""
    try:
        entry = json.loads(line, parse_constant=_no_constants)
    except ValueError:
        return None
    if isinstance(entry, dict) and isinstance(entry.get("seq"), int) and isinstance(entry.get("hash"), str):
        return entry
    return None


class _ChainBroken(Exception):
    """Why a line does not continue the chain (caught by ``verify``)."""


def _check(line: bytes, expected: int, prev: str) -> str:
    """The hash of the entry on ``line`` if it continues the chain after ``prev``."""
    entry = _parse(line)
    if entry is None:
        raise _ChainBroken("unreadable line")
    if entry["seq"] != expected:
        raise _ChainBroken(f"expected seq {expected}, found {entry['seq']} (entries missing or reordered)")
    if entry.get("prev") != prev:
        raise _ChainBroken("prev does not match the previous entry's hash")
    claimed: str = entry.pop("hash")
    if claimed != entry_hash(prev, canonical_json(entry)):
        raise _ChainBroken("hash mismatch (entry altered)")
    return claimed


def _entries(raw: bytes) -> list[Entry]:
    """Every readable entry in a file's bytes; bad lines are skipped here and reported by verify."""
    return [e for e in map(_parse, raw.split(b"\n")[:-1]) if e is not None]


class AuditLog:
    """The hash-chained, rotated, group-committed activity log in ``directory``. Thread-safe."""

    def __init__(
        self, directory: Path, *, clock: Clock, max_bytes: int = 8 * 1024 * 1024, flush_interval: float = 0.05
    ) -> None:
        if max_bytes <= 0 or flush_interval <= 0:
            raise ValueError("max_bytes and flush_interval must be positive")
        self.directory = Path(directory)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = self.directory / _CURRENT
        self._clock = clock
        self._max_bytes = max_bytes
        self._flush_interval = flush_interval
        self._lock = threading.Lock()  # seq, prev, pending, closed
        self._io_lock = threading.Lock()  # the files; taken before _lock, never after
        self._pending: list[tuple[Entry, bytes]] = []
        self._closed = False
        self._seq, self._prev, self._first_seq = self._recover()
        self._fd = os.open(self.path, _OPEN_FLAGS, 0o600)
        self._size = os.fstat(self._fd).st_size
        fsync_directory(self.directory)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="audit-flush", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def _recover(self) -> tuple[int, str, int | None]:
        """Resume (last seq, last hash, first seq of current file), cutting off a torn last line."""
        raw = self.path.read_bytes() if self.path.exists() else b""
        keep = raw.rfind(b"\n") + 1  # bytes after the last newline were never acknowledged
        lines = raw[:keep].split(b"\n")[:-1]
        if lines and _parse(lines[-1]) is None:  # complete line, garbled content: torn too
            keep -= len(lines.pop()) + 1
        if keep < len(raw):
            log.warning("audit log %s: dropping %d torn trailing bytes", self.path, len(raw) - keep)
            with open(self.path, "r+b") as handle:
                handle.truncate(keep)
                os.fsync(handle.fileno())
        rotated = self._rotated_files()
        if not lines and not rotated:
            return 0, GENESIS, None
        # An empty current file (fresh, or a crash right after rotation) continues the last file's chain.
        last = _parse(lines[-1]) if lines else next(reversed(_entries(rotated[-1].read_bytes())), None)
        first = _parse(lines[0]) if lines else None  # None also sends the file name to the next write
        if last is None:
            raise AuditCorrupt(f"audit log in {self.directory}: the last entry is unreadable")
        return last["seq"], last["hash"], first["seq"] if first else None

    def append(self, event: str, *, durable: bool = False, **fields: Any) -> Entry:
        """Record ``event`` with ``fields``; returns the entry as chained (with seq and hash).

        If a durable write fails the error propagates, but the entry keeps its place in the chain
        and stays queued for the next flush (it may still reach disk).
        """
        if not isinstance(event, str):
            raise TypeError("audit event must be a string")
        if clash := _RESERVED & fields.keys():
            raise TypeError(f"reserved audit field(s): {sorted(clash)}")
        with self._lock:
            if self._closed:
                raise ValueError("audit log is closed")
            entry: Entry = {"seq": self._seq + 1, "ts": int(self._clock()), "event": event, **fields}
            entry["prev"] = self._prev
            try:
                entry["hash"] = entry_hash(self._prev, canonical_json(entry))
                line = (canonical_json(entry) + "\n").encode("utf-8")
            except (TypeError, ValueError) as exc:
                raise TypeError(f"audit fields must be JSON-serialisable: {exc}") from exc
            self._seq, self._prev = entry["seq"], entry["hash"]
            self._pending.append((entry, line))
        if durable:
            self.flush()
        else:
            self._wake.set()
        return dict(entry)

    def flush(self) -> None:
        """Write and fsync everything appended so far. On failure the entries stay buffered."""
        with self._io_lock:
            with self._lock:
                batch, self._pending = self._pending, []
            if not batch:
                return
            try:
                self._append_bytes(b"".join(line for _, line in batch))
            except BaseException:
                with self._lock:
                    self._pending[:0] = batch
                raise
            if self._first_seq is None:
                self._first_seq = batch[0][0]["seq"]
            if self._size > self._max_bytes:
                self._rotate()

    def _append_bytes(self, data: bytes) -> None:
        start = self._size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
            os.fsync(self._fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, start)  # no half line for the retry to append after
            raise
        self._size = start + len(data)

    def _rotate(self) -> None:
        target = self.directory / f"audit-{self._first_seq}.jsonl"
        if target.exists():
            raise AuditCorrupt(f"cannot rotate audit log: {target} already exists")
        os.close(self._fd)  # Windows cannot rename an open file
        try:
            os.rename(self.path, target)
        finally:
            self._fd = os.open(self.path, _OPEN_FLAGS, 0o600)
        self._size, self._first_seq = os.fstat(self._fd).st_size, None
        fsync_directory(self.directory)

    def _rotated_files(self) -> list[Path]:
        found = ((int(m[1]), p) for p in self.directory.iterdir() if (m := _ROTATED.fullmatch(p.name)))
        return [p for _, p in sorted(found)]

    def _run(self) -> None:
        # close() sets _stop before _wake, so a wake-up cleared below is always followed by the
        # loop test seeing _stop: no lost-wakeup hang, and no polling while idle.
        while not self._stop.is_set():
            self._wake.wait()
            self._stop.wait(self._flush_interval)  # gather a group; close() cuts the wait short
            self._wake.clear()
            try:
                self.flush()
            except Exception:
                log.exception("audit log flush failed; retrying")
                self._wake.set()

    def close(self) -> None:
        """Flush, stop the writer thread and release the file. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        atexit.unregister(self.close)
        self._stop.set()
        self._wake.set()
        self._thread.join()
        try:
            self.flush()
        finally:
            with self._io_lock:
                os.close(self._fd)

    def _snapshot(self) -> tuple[list[Path], bytes, list[Entry]]:
        """A consistent view: rotated files, current file bytes, and what is still buffered."""
        with self._io_lock:
            with self._lock:
                pending = [dict(entry) for entry, _ in self._pending]
            current = self.path.read_bytes() if self.path.exists() else b""
            return self._rotated_files(), current, pending

    def tail(self, limit: int = 50, *, event: str | None = None) -> list[Entry]:
        """The ``limit`` most recent entries (optionally of one event type), oldest first."""
        if limit <= 0:
            return []
        rotated, current, pending = self._snapshot()
        older = (reversed(_entries(path.read_bytes())) for path in reversed(rotated))  # read lazily
        newest_first = chain(reversed(pending), reversed(_entries(current)), chain.from_iterable(older))
        matching = (entry for entry in newest_first if event is None or entry.get("event") == event)
        return list(islice(matching, limit))[::-1]

    def iter_all(self) -> Iterator[Entry]:
        """Every entry from the first rotated file to the newest buffered one, in order."""
        rotated, current, pending = self._snapshot()
        for path in rotated:
            yield from _entries(path.read_bytes())
        yield from _entries(current)
        yield from pending

    def verify(self) -> AuditCheck:
        """Re-walk every file from seq 1 and check seq continuity, ``prev`` links and hashes."""
        self.flush()
        expected, prev = 1, GENESIS
        with self._io_lock:
            paths = [*self._rotated_files(), *([self.path] if self.path.exists() else [])]
            for path in paths:
                *lines, rest = path.read_bytes().split(b"\n")
                if rest:
                    lines.append(rest)
                for number, line in enumerate(lines, 1):
                    try:
                        prev = _check(line, expected, prev)
                    except _ChainBroken as exc:
                        return AuditCheck(False, expected - 1, expected, f"{path.name}:{number}: {exc}")
                    expected += 1
        return AuditCheck(True, expected - 1, None, None)
