"""The owner's state as frozen values: profiles, shares, requests.

Records are stored as plain dicts; ``to_dict``/``from_dict`` are the only translation.
Times are integer epoch seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, cast

GranteeKind = Literal["person", "email", "class", "client"]


@dataclass(frozen=True)
class Permission:
    resource_id: str
    scopes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"resource_id": self.resource_id, "scopes": list(self.scopes)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Permission:
        return cls(str(d["resource_id"]), tuple(str(s) for s in d.get("scopes", ())))


@dataclass(frozen=True)
class Grantee:
    """Who a share is for.

    - ``person``: a verified person, ``issuer`` + ``subject``;
    - ``email``: a verified e-mail address (from a trusted issuer, ``email_verified``);
    - ``class``: anyone verified by ``issuer`` whose claim ``claim`` equals ``value``;
    - ``client``: a client, whoever uses it (``client_id``).
    """

    kind: GranteeKind
    issuer: str | None = None
    subject: str | None = None
    email: str | None = None
    claim: str | None = None
    value: str | None = None
    client_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Grantee:
        kind = d.get("kind")
        if kind not in ("person", "email", "class", "client"):
            raise ValueError(f"unknown grantee kind {kind!r}")
        return cls(cast(GranteeKind, kind), d.get("issuer"), d.get("subject"), d.get("email"), d.get("claim"),
                   d.get("value"), d.get("client_id"))

    def describe(self) -> str:
        if self.kind == "person":
            return f"sub:{self.issuer}#{self.subject}"
        if self.kind == "email":
            return f"email:{self.email}"
        if self.kind == "class":
            return f"class:{self.issuer}#{self.claim}={self.value}"
        return f"client:{self.client_id}"


@dataclass(frozen=True)
class Requester:
    """A requesting party as proved by verified claims (an ID token from a trusted issuer)."""

    issuer: str
    subject: str
    email: str | None = None
    email_verified: bool = False
    name: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"issuer": self.issuer, "subject": self.subject, "email": self.email,
                "email_verified": self.email_verified, "name": self.name, "claims": dict(self.claims)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Requester:
        return cls(str(d["issuer"]), str(d["subject"]), d.get("email"), bool(d.get("email_verified")),
                   d.get("name"), dict(d.get("claims") or {}))


@dataclass(frozen=True)
class Share:
    """A standing decision of the owner: ``effect`` allow (a share) or deny (a remembered denial)."""

    id: str
    profile: str
    permissions: tuple[Permission, ...]
    grantee: Grantee
    created_at: int
    expires_at: int | None = None
    once: bool = False
    used_at: int | None = None
    revoked_at: int | None = None
    effect: Literal["allow", "deny"] = "allow"
    origin: Literal["request", "ahead"] = "ahead"
    purpose: str | None = None
    inbox_id: str | None = None
    client_id: str | None = None
    """When set, the share holds only for requests through this client as well."""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["permissions"] = [p.to_dict() for p in self.permissions]
        d["grantee"] = self.grantee.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Share:
        return cls(
            id=str(d["id"]), profile=str(d["profile"]),
            permissions=tuple(Permission.from_dict(p) for p in d.get("permissions", ())),
            grantee=Grantee.from_dict(d["grantee"]), created_at=int(d["created_at"]),
            expires_at=d.get("expires_at"), once=bool(d.get("once")), used_at=d.get("used_at"),
            revoked_at=d.get("revoked_at"), effect=d.get("effect", "allow"), origin=d.get("origin", "ahead"),
            purpose=d.get("purpose"), inbox_id=d.get("inbox_id"), client_id=d.get("client_id"),
        )

    def active(self, now: float) -> bool:
        if self.revoked_at is not None:
            return False
        if self.expires_at is not None and now >= self.expires_at:
            return False
        return not (self.once and self.used_at is not None)


@dataclass(frozen=True)
class AccessRequest:
    """What a client asks for, for whom, and who the requesting party proved to be."""

    profile: str
    client_id: str
    permissions: tuple[Permission, ...]
    requester: Requester | None = None
    purpose: str | None = None
