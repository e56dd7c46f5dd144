"""The app lock: a PIN or passphrase asked before the app shows anything, and the sessions it opens.

The secret is kept as an scrypt hash in ``DIR/ui-lock.json`` (mode 0600, written atomically). Wrong
answers slow down exponentially so a PIN cannot be guessed quickly. Sessions are random 256-bit
tokens held in memory only: restarting the agent locks the app again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from core.keystore import write_atomic

SCRYPT = {"n": 2**14, "r": 8, "p": 1}
SESSION_IDLE = 12 * 3600
MIN_PIN_DIGITS = 4
MIN_PASSPHRASE = 8


class LockError(Exception):
    """A refused lock operation; the message is shown to the person as is."""


def check_strength(secret: str) -> None:
    if secret.isdigit():
        if len(secret) < MIN_PIN_DIGITS:
            raise LockError(f"A PIN needs at least {MIN_PIN_DIGITS} digits.")
    elif len(secret) < MIN_PASSPHRASE:
        raise LockError(f"A passphrase needs at least {MIN_PASSPHRASE} characters (or use a PIN of digits).")
    if len(secret) > 1024:
        raise LockError("That is too long.")


def _hash(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(secret.encode("utf-8"), salt=salt, maxmem=64 * 1024 * 1024, dklen=32, **SCRYPT)


@dataclass
class AppLock:
    path: Path
    clock: Callable[[], float] = time.monotonic
    _failures: int = 0
    _blocked_until: float = 0.0
    _sessions: dict[str, float] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    @property
    def is_set(self) -> bool:
        return self.path.exists()

    def set(self, secret: str, *, current: str | None = None) -> None:
        """Choose the lock (first run) or change it (the current secret is needed then)."""
        if self.is_set and (current is None or not self._matches(current)):
            raise LockError("The current PIN or passphrase is not right.")
        check_strength(secret)
        salt = secrets.token_bytes(16)
        record = {"format": 1, "kdf": "scrypt", **SCRYPT, "salt": salt.hex(), "hash": _hash(secret, salt).hex()}
        write_atomic(self.path, json.dumps(record).encode("utf-8"))

    def _matches(self, secret: str) -> bool:
        try:
            record = json.loads(self.path.read_text())
            salt, want = bytes.fromhex(record["salt"]), bytes.fromhex(record["hash"])
        except (OSError, ValueError, KeyError) as exc:
            raise LockError("The app lock file is damaged; remove ui-lock.json to choose a new lock.") from exc
        return hmac.compare_digest(_hash(secret[:1024], salt), want)

    def unlock(self, secret: str) -> str:
        """A new session for the right secret; wrong answers wait longer each time (1, 2, 4 ... 60 s)."""
        with self._guard:
            now = self.clock()
            if now < self._blocked_until:
                raise LockError(f"Too many tries. Wait {int(self._blocked_until - now) + 1} seconds.")
            if not self._matches(secret):
                self._failures += 1
                if self._failures >= 3:
                    self._blocked_until = now + min(60.0, 2.0 ** (self._failures - 3))
                raise LockError("That is not right.")
            self._failures = 0
            return self.open_session()

    def open_session(self) -> str:
        token = secrets.token_urlsafe(32)
        self._sessions[token] = self.clock()
        return token

    def session_valid(self, token: str | None) -> bool:
        if not token:
            return False
        seen = self._sessions.get(token)
        now = self.clock()
        if seen is None or now - seen > SESSION_IDLE:
            self._sessions.pop(token, None)
            return False
        self._sessions[token] = now
        return True

    def end_session(self, token: str | None) -> None:
        if token:
            self._sessions.pop(token, None)
