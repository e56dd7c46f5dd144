"""A TinyDB storage that never leaves a half-written file behind.

TinyDB's own ``JSONStorage`` rewrites the file in place, so a crash (or power cut) in the middle of a
write leaves truncated JSON and the whole database unloadable. Here every write goes to a fresh temp
file in the same directory, is fsynced, and is then renamed over the target with ``os.replace``
(atomic on POSIX and Windows); the directory is fsynced so the rename itself survives a power cut.
A reader therefore sees either the complete old state or the complete new state, never a mix, and
a write that returned is on disk.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from tinydb.storages import Storage

__all__ = ["AtomicJSONStorage", "StorageCorrupt", "fsync_directory"]

FILE_MODE = 0o600


class StorageCorrupt(Exception):
    """The file on disk is not valid JSON.

    With atomic replacement this should be impossible, so it signals outside interference (manual
    edits, disk faults). It is raised rather than treated as empty, because treating it as empty
    would let the next write silently destroy whatever is still recoverable by hand.
    """

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(f"storage file {path} is corrupt: {detail}")
        self.path = path


def fsync_directory(directory: Path) -> None:
    """Make a rename or file creation in ``directory`` durable.

    POSIX only records directory entries durably once the directory itself is fsynced. Windows
    cannot open directories for fsync (and NTFS journals renames), so this is a no-op there.
    """
    if os.name == "nt":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_prefix(path: Path) -> str:
    return f".{path.name}.tmp-"


class AtomicJSONStorage(Storage):
    """Crash-safe JSON file storage for TinyDB: ``TinyDB(path, storage=AtomicJSONStorage)``.

    Extra keyword arguments are passed to ``json.dumps`` (for example ``indent`` while debugging);
    the default output is compact. The file is created with mode 0o600 on the first write.

    The agent is the only writer of its files, so the parsed state is kept in memory after the
    first read and replaced on every successful write: lookups on the hot path (clients, resources,
    shares) no longer re-read and re-parse the file. The file's identity (mtime, size, inode) is
    checked on each read, so an outside change is still picked up. A failed write drops the cache,
    because TinyDB mutates the read state before writing it. Callers must treat what ``read``
    returns as read-only.
    """

    def __init__(self, path: str | Path, **kwargs: Any) -> None:
        super().__init__()
        self.path = Path(path)
        self._dumps_kwargs: dict[str, Any] = {"separators": (",", ":"), **kwargs}
        self._closed = False
        self._cached: dict[str, dict[str, Any]] | None = None
        self._stamp: tuple[int, int, int] | None = None
        self._remove_stale_temp_files()

    def _remove_stale_temp_files(self) -> None:
        """Delete temp files a crash left between creating them and renaming them into place."""
        directory = self.path.parent
        if not directory.is_dir():
            return
        for stale in directory.glob(_temp_prefix(self.path) + "*"):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()

    def read(self) -> dict[str, dict[str, Any]] | None:
        """Return the stored state, or ``None`` when nothing has been written yet."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if self._cached is not None and stamp == self._stamp:
            return self._cached
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        if not raw.strip():
            return None
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StorageCorrupt(self.path, str(exc)) from exc
        if not isinstance(data, dict):
            raise StorageCorrupt(self.path, f"top level is {type(data).__name__}, not an object")
        self._cached, self._stamp = data, stamp
        return data

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        """Replace the stored state; when this returns the new state is durable."""
        if self._closed:
            raise ValueError(f"storage {self.path} is closed")
        self._cached = self._stamp = None
        payload = json.dumps(data, **self._dumps_kwargs).encode("utf-8")
        directory = self.path.parent
        fd, temp_name = tempfile.mkstemp(prefix=_temp_prefix(self.path), dir=directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp_name, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp_name)
            raise
        fsync_directory(directory)
        st = os.stat(self.path)
        self._cached, self._stamp = json.loads(payload), (st.st_mtime_ns, st.st_size, st.st_ino)

    def close(self) -> None:
        """Refuse further writes; there is no handle to release because none is kept open."""
        self._closed = True
