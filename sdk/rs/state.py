"""What a resource server keeps between runs, so a restart is not a new client the owner must approve.

A state directory holds three files, all mode 0600:

* ``registration.json``: the agent (issuer and pinned agent id), the client id and registration
  access token from dynamic registration (RFC 7591 §3.2.1), the PAT and its refresh token, and the
  ids of the resources registered so far;
* ``client.pem``: the key behind ``private_key_jwt`` (RFC 7523), published in the registration's ``jwks``;
* ``dpop.pem``: the DPoP key (RFC 9449) the PAT is bound to.

Without a directory everything lives in memory and ends with the process.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from sdk.keys import SigningKey

STATE_FILE = "registration.json"
CLIENT_KEY = "client.pem"
DPOP_KEY = "dpop.pem"


class StateError(Exception):
    """The saved state is unreadable, or belongs to another agent."""


@dataclass
class Registration:
    issuer: str
    agent_id: str
    client_id: str = ""
    registration_access_token: str | None = None
    registration_client_uri: str | None = None
    grant_types: list[str] = field(default_factory=list)
    redirect_uris: list[str] = field(default_factory=list)
    pat: str | None = None
    pat_expires_at: float | None = None
    refresh_token: str | None = None
    resources: dict[str, str] = field(default_factory=dict)
    """The application's own names for its resources, mapped to the agent's resource ids."""

    def forget_pat(self) -> None:
        self.pat = self.pat_expires_at = self.refresh_token = None


class StateStore:
    """Loads and saves a :class:`Registration` and the two keys; in memory when ``directory`` is None."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory
        self._client_key: SigningKey | None = None
        self._dpop_key: SigningKey | None = None

    def client_key(self) -> SigningKey:
        if self._client_key is None:
            self._client_key = self._key(CLIENT_KEY)
        return self._client_key

    def dpop_key(self) -> SigningKey:
        if self._dpop_key is None:
            self._dpop_key = self._key(DPOP_KEY)
        return self._dpop_key

    def _key(self, name: str) -> SigningKey:
        if self.directory is None:
            return SigningKey()
        return SigningKey.load_or_create(self.directory / name)

    def load(self) -> Registration | None:
        if self.directory is None or not (self.directory / STATE_FILE).exists():
            return None
        path = self.directory / STATE_FILE
        try:
            doc = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise StateError(f"{path} is not readable JSON: {exc}") from None
        known = {f.name for f in fields(Registration)}
        if not isinstance(doc, dict) or not isinstance(doc.get("issuer"), str) \
                or not isinstance(doc.get("agent_id"), str):
            raise StateError(f"{path} does not hold a registration")
        return Registration(**{k: v for k, v in doc.items() if k in known})

    def save(self, registration: Registration) -> None:
        if self.directory is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / STATE_FILE
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(asdict(registration), f, indent=2, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
