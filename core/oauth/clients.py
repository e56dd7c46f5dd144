"""A registered client as the endpoints see it (RFC 7591 metadata plus what we keep beside it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Client:
    client_id: str
    metadata: Mapping[str, Any]
    secret_hash: str | None
    registration: str
    """How it registered: ``dynamic`` or ``software_statement:<issuer>``."""

    @property
    def auth_method(self) -> str:
        return str(self.metadata.get("token_endpoint_auth_method", "client_secret_basic"))

    @property
    def is_public(self) -> bool:
        return self.auth_method == "none"

    @property
    def name(self) -> str:
        return str(self.metadata.get("client_name") or self.client_id)

    @property
    def grant_types(self) -> tuple[str, ...]:
        return tuple(self.metadata.get("grant_types") or ("authorization_code",))

    @property
    def redirect_uris(self) -> tuple[str, ...]:
        return tuple(self.metadata.get("redirect_uris") or ())

    @property
    def registered_scopes(self) -> tuple[str, ...]:
        scope = self.metadata.get("scope")
        return tuple(scope.split()) if isinstance(scope, str) else ()

    @property
    def dpop_bound(self) -> bool:
        return bool(self.metadata.get("dpop_bound_access_tokens"))

    def summary(self) -> dict[str, Any]:
        """What the owner is shown about the client."""
        return {"client_id": self.client_id, "client_name": self.metadata.get("client_name"),
                "logo_uri": self.metadata.get("logo_uri"), "client_uri": self.metadata.get("client_uri"),
                "registration": self.registration}

    @classmethod
    def from_record(cls, rec: Mapping[str, Any]) -> Client:
        return cls(str(rec["client_id"]), dict(rec.get("metadata") or {}), rec.get("secret_hash"),
                   str(rec.get("registration") or "dynamic"))
