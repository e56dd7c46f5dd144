"""The owner's state as frozen values: profiles, shares, requests, and who decided them.

Records are stored as plain dicts; ``to_dict``/``from_dict`` are the only translation.
Times are integer epoch seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, cast

GranteeKind = Literal["person", "email", "class", "client"]
ActorRole = Literal["self", "guardian", "proxy"]


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
    name: str | None = None
    """How the owner knows them ("Dr. Carol White"), for display only: policy never reads it."""

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Grantee:
        kind = d.get("kind")
        if kind not in ("person", "email", "class", "client"):
            raise ValueError(f"unknown grantee kind {kind!r}")
        name = d.get("name")
        return cls(cast(GranteeKind, kind), d.get("issuer"), d.get("subject"), d.get("email"), d.get("claim"),
                   d.get("value"), d.get("client_id"), name if isinstance(name, str) else None)

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
class Actor:
    """Who made a decision for a profile.

    ``self``: the person the profile is about (the owner of this agent deciding on their own
    records); ``guardian``: a guardian deciding for a dependent; ``proxy``: the owner deciding for
    another person's profile. ``id`` is ``me`` for this agent's owner or ``agent:<agent_id>`` for a
    guardian deciding on their own agent; ``agent_id`` and ``issuer`` name the agent the decision was
    made on, so the record stays meaningful after a hand-over to another agent.
    """

    role: ActorRole
    id: str
    name: str | None = None
    agent_id: str | None = None
    issuer: str | None = None
    on_behalf_of: str | None = None
    """The profile decided for, when ``role`` is not ``self``."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Actor:
        role = d.get("role")
        if role not in ("self", "guardian", "proxy"):
            raise ValueError(f"unknown actor role {role!r}")
        return cls(cast(ActorRole, role), str(d["id"]), d.get("name"), d.get("agent_id"), d.get("issuer"),
                   d.get("on_behalf_of"))

    def act_claim(self) -> dict[str, Any] | None:
        """The RFC 8693 §4.1 ``act`` claim naming this actor, or None when the person decided
        for themselves. The actor is identified by the agent it decided on (``sub`` its agent id,
        ``iss`` its issuer): stable, and no personal name goes into a token."""
        if self.role == "self" or not self.agent_id:
            return None
        return {"sub": self.agent_id, **({"iss": self.issuer} if self.issuer else {})}


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
    decided_by: Actor | None = None
    """Who made it (None on shares made before this was recorded)."""
    review_due: int | None = None
    """Set when the person it is about must keep or revoke it (a guardian made it and the
    guardianship ended or the profile was handed over): unreviewed, it stops at this time."""
    reviewed_at: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["permissions"] = [p.to_dict() for p in self.permissions]
        d["grantee"] = self.grantee.to_dict()
        d["decided_by"] = self.decided_by.to_dict() if self.decided_by else None
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
            decided_by=Actor.from_dict(d["decided_by"]) if d.get("decided_by") else None,
            review_due=d.get("review_due"), reviewed_at=d.get("reviewed_at"),
        )

    def ends_at(self) -> int | None:
        """When it stops on its own: its expiry, or an earlier review deadline."""
        ends = [t for t in (self.expires_at, self.review_due) if t is not None]
        return min(ends) if ends else None

    def active(self, now: float) -> bool:
        if self.revoked_at is not None:
            return False
        end = self.ends_at()
        if end is not None and now >= end:
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
