"""Registering with an agent (RFC 7591) and remembering the registration, so that a client that
restarts is the same client: the same ``client_id`` and keys, and the shares made for it still hold.

The client registers once per agent, with a key pair of its own for that agent (agents cannot
link the client's registrations through a shared key) and a second key for DPoP (RFC 9449)::

    {"client_name": ..., "token_endpoint_auth_method": "private_key_jwt", "jwks": {...},
     "grant_types": ["urn:ietf:params:oauth:grant-type:uma-ticket"], "dpop_bound_access_tokens": true}

:class:`FileRegistrationStore` keeps each registration in its own directory, keys as PEM files
and the rest as JSON, all readable by the owner only; the registration access token (RFC 7592)
is kept too, for managing the registration later.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from sdk.client._util import json_object
from sdk.client.discovery import UMA_GRANT, AgentMetadata
from sdk.client.errors import RegistrationError
from sdk.keys import SigningKey

__all__ = ["FileRegistrationStore", "MemoryRegistrationStore", "Registration", "RegistrationStore", "register"]

PROTECTED = ("token_endpoint_auth_method", "token_endpoint_auth_signing_alg", "jwks", "jwks_uri",
             "grant_types", "dpop_bound_access_tokens")
"""Members the kit sets itself; ``client_metadata`` given by the app cannot override them."""


@dataclass
class Registration:
    """This client at one agent: its ``client_id``, its assertion key and its DPoP key."""

    as_uri: str
    client_id: str
    key: SigningKey = field(repr=False)
    dpop_key: SigningKey = field(repr=False)
    registration_access_token: str | None = field(default=None, repr=False)
    registration_client_uri: str | None = None


class RegistrationStore(Protocol):
    def load(self, as_uri: str) -> Registration | None: ...

    def save(self, registration: Registration) -> None: ...


class MemoryRegistrationStore:
    """Registrations for the life of the process: a restarted client registers anew."""

    def __init__(self) -> None:
        self._items: dict[str, Registration] = {}

    def load(self, as_uri: str) -> Registration | None:
        return self._items.get(as_uri)

    def save(self, registration: Registration) -> None:
        self._items[registration.as_uri] = registration


class FileRegistrationStore:
    """One directory per agent under ``directory``: ``registration.json``, ``client.pem``, ``dpop.pem``."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    def path_for(self, as_uri: str) -> Path:
        return self.directory / hashlib.sha256(as_uri.encode()).hexdigest()[:32]

    def load(self, as_uri: str) -> Registration | None:
        folder = self.path_for(as_uri)
        try:
            data = json.loads((folder / "registration.json").read_text("utf-8"))
        except FileNotFoundError:
            return None
        except ValueError as exc:
            raise RegistrationError(f"{folder}/registration.json is not JSON: {exc}") from exc
        if not isinstance(data, dict) or data.get("as_uri") != as_uri or not isinstance(data.get("client_id"), str):
            raise RegistrationError(f"{folder}/registration.json is not a registration at {as_uri}")
        return Registration(as_uri, data["client_id"], SigningKey.load(folder / "client.pem"),
                            SigningKey.load(folder / "dpop.pem"), data.get("registration_access_token"),
                            data.get("registration_client_uri"))

    def save(self, registration: Registration) -> None:
        folder = self.path_for(registration.as_uri)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        registration.key.save(folder / "client.pem")
        registration.dpop_key.save(folder / "dpop.pem")
        data = {"as_uri": registration.as_uri, "client_id": registration.client_id,
                "registration_access_token": registration.registration_access_token,
                "registration_client_uri": registration.registration_client_uri}
        tmp = folder / "registration.json.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)
        tmp.replace(folder / "registration.json")  # written last: a registration is whole or absent


async def register(http: httpx.AsyncClient, metadata: AgentMetadata, *, client_name: str,
                   client_metadata: Mapping[str, Any] | None = None) -> Registration:
    """RFC 7591 §3.1: register a ``private_key_jwt`` client for the UMA grant, DPoP-bound, with fresh keys."""
    clash = sorted(set(client_metadata or {}) & set(PROTECTED))
    if clash:
        raise ValueError(f"client_metadata must not set {clash[0]}: the kit sets it")
    key, dpop_key = SigningKey(), SigningKey()
    body = {**(client_metadata or {}), "client_name": client_name,
            "token_endpoint_auth_method": "private_key_jwt", "token_endpoint_auth_signing_alg": "ES256",
            "jwks": key.jwks, "grant_types": [UMA_GRANT], "dpop_bound_access_tokens": True}
    try:
        response = await http.post(metadata.registration_endpoint, json=body, follow_redirects=False)
    except httpx.HTTPError as exc:
        raise RegistrationError(f"POST {metadata.registration_endpoint} failed: {exc}") from exc
    answer = json_object(response) or {}
    if response.status_code != 201:
        error = answer.get("error")
        text = answer.get("error_description")
        raise RegistrationError(text if isinstance(text, str) else f"registration answered {response.status_code}",
                                error=error if isinstance(error, str) else None, status=response.status_code,
                                body=answer)
    client_id = answer.get("client_id")
    if not isinstance(client_id, str) or not client_id:
        raise RegistrationError("the registration response has no client_id", status=201, body=answer)
    changed = [m for m in ("token_endpoint_auth_method", "grant_types") if answer.get(m) != body[m]]
    if changed:
        raise RegistrationError(f"the agent registered the client with another {changed[0]}", status=201, body=answer)
    rat, uri = answer.get("registration_access_token"), answer.get("registration_client_uri")
    return Registration(metadata.issuer, client_id, key, dpop_key, rat if isinstance(rat, str) else None,
                        uri if isinstance(uri, str) else None)
