"""Guardianship: someone decides for a dependent, within limits, until an end date.

A dependent profile carries one guardianship (``profile["guardianship"]``, with the profile's
``until`` as its end and ``exclude`` as its excluded categories, the fields the profile always
had):

- **guardians**: ``me`` (the owner of this agent) and, optionally, a co-guardian deciding on their
  own agent, named by its agent id (``agent:<agent_id>``); ``require`` says whether one guardian's
  approval is enough or both must approve;
- **starts_at** and **until**: outside that window no guardian may act;
- **covers**: the kinds of decision the guardians may take (:data:`DECISIONS`);
- **exclude**: sensitivity codes (HL7 v3 ActCode sensitivity and v3 Confidentiality codes, bare
  like ``PSY`` or full like ``http://terminology.hl7.org/CodeSystem/v3-ActCode|PSY``). A resource
  whose ``security_labels`` match one is confidential to the dependent: requests for it never reach
  a guardian, and no guardian view lists it.

The first half of this module is pure (labels, who may act, when); the second half applies it
to an agent's state (which resources are excluded, noticing that a guardianship ended, the RPT's
``act`` claim).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, cast

from core import jose
from core.errors import OwnerError
from core.keys import KeyStoreError, verify_identity_jws
from core.model import Actor, Permission, Share
from core.secrets_ import token
from core.state import OWNER_PROFILE

if TYPE_CHECKING:
    from core.agent import Agent

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
CONFIDENTIALITY_ORDER = ("U", "L", "M", "N", "R", "V")
"""HL7 v3 Confidentiality codes, least to most confidential: excluding one excludes those above it."""

SENSITIVITY_WORDS = {
    "ADOL": "adolescent information", "BH": "behavioral health", "ETH": "substance use",
    "GDIS": "genetic disease", "HIV": "HIV/AIDS", "MH": "mental health", "PSY": "psychiatry",
    "SDV": "sexual assault, abuse or domestic violence", "SEX": "sexuality and reproductive health",
    "STD": "sexually transmitted disease", "SUD": "substance use disorder",
    "N": "normal confidentiality and above", "R": "restricted", "V": "very restricted",
}
"""Plain words for the codes a guardian is most likely to exclude; any other code works too."""

DECISIONS = ("approve", "deny", "share", "revoke", "connect")
DECISION_WORDS = {"approve": "approving requests", "deny": "denying requests", "share": "sharing ahead of time",
                  "revoke": "stopping shares", "connect": "connecting record sources"}
REVIEW_DAYS = 90
"""After a guardianship ends (or the profile is handed over), shares a guardian made keep working
this long for the dependent to keep or revoke them; unreviewed, they stop then."""

GUARDIANSHIP_ENDED = "guardianship_ended"
PROFILE_CHANGED = "profile_changed"
"""Event kinds published on ``agent.events`` (beside those of :mod:`core.events`)."""

Require = Literal["one", "both"]
_BARE_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_AGENT_ID = re.compile(r"[A-Za-z0-9_-]{43}")
LOCAL = OWNER_PROFILE
"""The guardian id of this agent's own owner."""


# --- sensitivity labels ---------------------------------------------------------------------------


def exclusion_rule(text: str) -> str:
    """A checked ``--exclude`` value: a bare code (upper-cased, as HL7 writes them) or ``system|code``."""
    raw = text.strip() if isinstance(text, str) else ""
    if "|" in raw:
        system, _, code = raw.rpartition("|")
        if system and _BARE_CODE.fullmatch(code) and len(raw) <= 300 and " " not in system:
            return f"{system}|{code}"
    elif _BARE_CODE.fullmatch(raw):
        return raw.upper()
    shown = text[:40] + "…" if isinstance(text, str) and len(text) > 64 else text
    raise OwnerError(f"{shown!r} is not a sensitivity code: give a bare code like PSY, or SYSTEM|CODE")


def _split(label: str) -> tuple[str, str]:
    system, _, code = label.rpartition("|")
    return system, code


def label_matches(label: str, rule: str) -> bool:
    """Whether a resource's ``system|code`` label falls under an exclusion rule.

    A bare rule compares with the code part only; a full rule needs the same system too. Codes
    compare case-insensitively. For the Confidentiality system, excluding a level excludes the more
    confidential levels too (excluding ``R`` excludes ``V``).
    """
    system, code = _split(label)
    rule_system, rule_code = _split(rule)
    if rule_system and rule_system != system:
        return False
    code, rule_code = code.upper(), rule_code.upper()
    if system == CONFIDENTIALITY and code in CONFIDENTIALITY_ORDER and rule_code in CONFIDENTIALITY_ORDER:
        return CONFIDENTIALITY_ORDER.index(code) >= CONFIDENTIALITY_ORDER.index(rule_code)
    return code == rule_code


def excluded_by(labels: Iterable[str], exclude: Iterable[str]) -> list[str]:
    """The labels that some exclusion rule matches (empty: nothing to hide)."""
    rules = list(exclude)
    return [label for label in labels if isinstance(label, str) and any(label_matches(label, r) for r in rules)]


def code_words(rule: str) -> str:
    code = _split(rule)[1].upper()
    words = SENSITIVITY_WORDS.get(code)
    return f"{rule} ({words})" if words else rule


def day(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


# --- the guardianship ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Guardian:
    """One guardian: this agent's owner (``id == "me"``) or a co-guardian on their own agent."""

    id: str
    name: str
    added_at: int
    agent_id: str | None = None
    issuer: str | None = None
    status: Literal["active", "removed"] = "active"

    @property
    def local(self) -> bool:
        return self.id == LOCAL

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "added_at": self.added_at, "agent_id": self.agent_id,
                "issuer": self.issuer, "status": self.status}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Guardian:
        return cls(str(d["id"]), str(d.get("name") or d["id"]), int(d.get("added_at") or 0), d.get("agent_id"),
                   d.get("issuer"), "removed" if d.get("status") == "removed" else "active")


@dataclass(frozen=True)
class Guardianship:
    """The guardianship over one dependent profile, as stored on that profile."""

    profile: str
    name: str
    starts_at: int
    until: int | None
    covers: tuple[str, ...] = DECISIONS
    exclude: tuple[str, ...] = ()
    require: Require = "one"
    guardians: tuple[Guardian, ...] = ()
    ended_at: int | None = None
    """Set when a guardian ended it early."""
    end_noticed_at: int | None = None
    """When the agent acted on the end (told the guardian, opened the review of their shares)."""

    @classmethod
    def of(cls, profile: Mapping[str, Any]) -> Guardianship | None:
        """The guardianship of a dependent profile still held here; None for anyone else."""
        if profile.get("kind") != "dependent" or profile.get("status") == "handed_over":
            return None
        g = profile.get("guardianship") or {}
        created = int(profile.get("created_at") or 0)
        guardians = tuple(Guardian.from_dict(x) for x in g.get("guardians") or ()) or (
            Guardian(LOCAL, "Me", created),)
        require = "both" if g.get("require") == "both" else "one"
        return cls(profile=str(profile["id"]), name=str(profile.get("name") or profile["id"]),
                   starts_at=int(g.get("starts_at") or created), until=profile.get("until"),
                   covers=tuple(g.get("covers") or DECISIONS), exclude=tuple(profile.get("exclude") or ()),
                   require=cast(Require, require), guardians=guardians, ended_at=g.get("ended_at"),
                   end_noticed_at=g.get("end_noticed_at"))

    def stored(self) -> dict[str, Any]:
        """The profile members that hold this guardianship."""
        return {"until": self.until, "exclude": list(self.exclude), "guardianship": {
            "starts_at": self.starts_at, "covers": list(self.covers), "require": self.require,
            "guardians": [x.to_dict() for x in self.guardians], "ended_at": self.ended_at,
            "end_noticed_at": self.end_noticed_at}}

    def ends_at(self) -> int | None:
        """The end: the ``until`` date or an earlier manual end, whichever comes first."""
        ends = [t for t in (self.until, self.ended_at) if t is not None]
        return min(ends) if ends else None

    def ended(self, now: float) -> bool:
        end = self.ends_at()
        return end is not None and now >= end

    def active_guardians(self) -> tuple[Guardian, ...]:
        return tuple(x for x in self.guardians if x.status == "active")

    def guardian(self, guardian_id: str) -> Guardian | None:
        return next((x for x in self.active_guardians() if x.id == guardian_id), None)

    def required(self) -> tuple[str, ...]:
        """Whose approvals complete a request: any one guardian, or every active one."""
        ids = tuple(x.id for x in self.active_guardians())
        return ids if self.require == "both" else ()

    def refusal(self, now: float, kind: str, guardian_id: str = LOCAL) -> str | None:
        """Why ``guardian_id`` may not take a decision of ``kind`` now, in words for them; None: they may."""
        if self.guardian(guardian_id) is None:
            return f"You are not a guardian of {self.name}."
        end = self.ends_at()
        if end is not None and now >= end:
            return f"Your guardianship for {self.name} ended on {day(end)}; {self.name} decides now."
        if now < self.starts_at:
            return f"Your guardianship for {self.name} starts on {day(self.starts_at)}."
        if kind not in self.covers:
            return f"Your guardianship for {self.name} does not cover {DECISION_WORDS.get(kind, kind)}."
        return None

    def status(self, now: float) -> str:
        if self.ended(now):
            return "ended"
        return "not_started" if now < self.starts_at else "active"

    def view(self, now: float) -> dict[str, Any]:
        """What the owner (and the app) is shown about it."""
        end = self.ends_at()
        status = self.status(now)
        message = {
            "active": f"You act for {self.name} as guardian" + (f" until {day(end)}." if end else "."),
            "not_started": f"Your guardianship for {self.name} starts on {day(self.starts_at)}.",
            "ended": f"Your guardianship for {self.name} ended on {day(end or 0)}; {self.name} decides now. "
                     f"Hand the profile over to {self.name}'s own agent.",
        }[status]
        return {"status": status, "message": message, "starts_at": self.starts_at, "ends_at": end,
                "until": self.until, "ended_at": self.ended_at, "covers": list(self.covers),
                "exclude": [{"code": c, "words": SENSITIVITY_WORDS.get(_split(c)[1].upper())} for c in self.exclude],
                "require": self.require, "guardians": [x.to_dict() for x in self.active_guardians()]}


def new_guardianship(profile: str, name: str, now: int, *, owner_name: str, until: int | None,
                     exclude: Sequence[str], covers: Sequence[str] | None = None) -> Guardianship:
    """A fresh guardianship with this agent's owner as the guardian, checked."""
    if until is not None and until <= now:
        raise OwnerError("the guardianship's end date is already past")
    return Guardianship(profile, name, now, until, check_covers(covers), tuple(dict.fromkeys(
        exclusion_rule(c) for c in exclude)), "one", (Guardian(LOCAL, owner_name, now),))


def check_covers(covers: Sequence[str] | None) -> tuple[str, ...]:
    if covers is None:
        return DECISIONS
    unknown = [c for c in covers if c not in DECISIONS]
    if unknown or not covers:
        raise OwnerError(f"a guardianship covers some of: {', '.join(DECISIONS)}")
    return tuple(c for c in DECISIONS if c in covers)


def check_agent_id(agent_id: str) -> str:
    if not isinstance(agent_id, str) or not _AGENT_ID.fullmatch(agent_id):
        raise OwnerError("an agent id is the 43-character thumbprint `consent-agent status` shows")
    return agent_id


# --- approvals under "one" or "both" ----------------------------------------------------------------


@dataclass(frozen=True)
class Approval:
    """One guardian's yes to a request, with what they would share and for how long."""

    by: Actor
    scopes: tuple[str, ...] | None
    expires_at: int | None
    once: bool
    at: int
    via: str = "owner"
    """``owner``: decided on this agent; ``signed``: a signed decision from the guardian's agent."""

    def to_dict(self) -> dict[str, Any]:
        return {"by": self.by.to_dict(), "scopes": None if self.scopes is None else list(self.scopes),
                "expires_at": self.expires_at, "once": self.once, "at": self.at, "via": self.via}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Approval:
        scopes = d.get("scopes")
        return cls(Actor.from_dict(d["by"]), None if scopes is None else tuple(scopes), d.get("expires_at"),
                   bool(d.get("once")), int(d["at"]), str(d.get("via") or "owner"))


def missing_approvals(required: Sequence[str], approvals: Sequence[Approval]) -> list[str]:
    given = {a.by.id for a in approvals}
    return [r for r in required if r not in given]


def narrowest(approvals: Sequence[Approval]) -> tuple[list[str] | None, int | None, bool]:
    """What every approving guardian agreed to: the common scopes, the earliest end, once if any said once."""
    scopes: set[str] | None = None
    for a in approvals:
        if a.scopes is not None:
            scopes = set(a.scopes) if scopes is None else scopes & set(a.scopes)
    ends = [a.expires_at for a in approvals if a.expires_at is not None]
    return (None if scopes is None else sorted(scopes)), (min(ends) if ends else None), any(a.once for a in approvals)


def item_digest(item: Mapping[str, Any]) -> str:
    """A fingerprint of what an access request asks, so a signed decision cannot be moved to another."""
    requester = item.get("requester") or {}
    facts = {"id": item["id"], "profile": item["profile"], "client": (item.get("client") or {}).get("client_id"),
             "requester": [requester.get("issuer"), requester.get("subject")],
             "permissions": [[p["resource_id"], sorted(p.get("scopes") or ())] for p in item.get("permissions", ())]}
    return hashlib.sha256(json.dumps(facts, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# --- applied to an agent ----------------------------------------------------------------------------


def of(agent: Agent, profile_id: str) -> Guardianship | None:
    """The guardianship over ``profile_id`` on this agent, if it is a dependent's."""
    prof = agent.state.get("profiles", "id", profile_id)
    return Guardianship.of(prof) if prof else None


def save(agent: Agent, g: Guardianship) -> None:
    agent.state.update("profiles", "id", g.profile, g.stored())


def excluded_resources(agent: Agent, g: Guardianship) -> set[str]:
    """Ids of the dependent's resources that carry an excluded label."""
    if not g.exclude:
        return set()
    return {r["_id"] for r in agent.state.find("resources", profile=g.profile)
            if excluded_by(r["description"].get("security_labels") or (), g.exclude)}


def hidden_resources(agent: Agent) -> set[str]:
    """Every resource no guardian view may list: the excluded ones of all dependents held here."""
    out: set[str] = set()
    for prof in agent.state.all("profiles"):
        g = Guardianship.of(prof)
        if g is not None:
            out |= excluded_resources(agent, g)
    return out


def split(agent: Agent, g: Guardianship, permissions: Sequence[Permission]
          ) -> tuple[tuple[Permission, ...], tuple[Permission, ...]]:
    """(what a guardian may decide on, what only the dependent may)."""
    excluded = excluded_resources(agent, g)
    return (tuple(p for p in permissions if p.resource_id not in excluded),
            tuple(p for p in permissions if p.resource_id in excluded))


def owner_name(agent: Agent) -> str:
    me = agent.state.get("profiles", "id", OWNER_PROFILE) or {}
    return str(me.get("name") or "Me")


def actor(agent: Agent, profile: Mapping[str, Any], guardian: Guardian | None = None) -> Actor:
    """Who decides when this agent's owner (or ``guardian``) acts on ``profile``."""
    if guardian is not None and not guardian.local:
        return Actor("guardian", guardian.id, guardian.name, guardian.agent_id, guardian.issuer, str(profile["id"]))
    base = Actor("self", LOCAL, owner_name(agent), agent.keys.agent_id, agent.issuer)
    if profile.get("kind") == "owner":
        return base
    role: Literal["guardian", "proxy"] = "guardian" if profile.get("kind") == "dependent" else "proxy"
    return replace(base, role=role, on_behalf_of=str(profile["id"]))


def act_claim(agent: Agent, share_ids: Iterable[str]) -> dict[str, Any] | None:
    """The ``act`` claim for an RPT backed by ``share_ids``: the first (by id) share made by someone
    acting for the profile's person. None when every share was that person's own decision."""
    for sid in sorted(share_ids):
        share = agent.state.share(sid)
        claim = share.decided_by.act_claim() if share and share.decided_by else None
        if claim:
            return claim
    return None


@dataclass
class Ended:
    """What noticing the end of a guardianship did."""

    profile: str
    ends_at: int
    shares_to_review: list[str] = field(default_factory=list)
    requests_withheld: list[str] = field(default_factory=list)


def notice_end(agent: Agent, g: Guardianship) -> Ended | None:
    """Act once on a guardianship that has ended: requests still waiting for the guardian are
    withheld (only the dependent may decide them now), the guardian's shares get their review
    deadline, the log records it and the guardian is told (event ``guardianship_ended``)."""
    now = agent.now()
    end = g.ends_at()
    if end is None or now < end or g.end_noticed_at is not None:
        return None
    done = Ended(g.profile, end)
    with agent.state.locked():
        current = of(agent, g.profile)
        if current is None or current.end_noticed_at is not None:
            return None
        save(agent, replace(current, end_noticed_at=now))
        for item in agent.state.find("inbox", profile=g.profile, status="pending", kind="access"):
            agent.state.update("inbox", "id", item["id"], {"status": "withheld",
                                                            "withheld_reason": "guardianship_ended"})
            done.requests_withheld.append(item["id"])
        done.shares_to_review = open_review(agent, g.profile, end + REVIEW_DAYS * 86400)
    agent.audit.append(GUARDIANSHIP_ENDED, durable=True, profile=g.profile, ends_at=end,
                       guardians=[x.id for x in g.active_guardians()], shares_to_review=done.shares_to_review,
                       requests_withheld=done.requests_withheld)
    agent.events.publish(GUARDIANSHIP_ENDED, {"profile": g.profile, "name": g.name, "ends_at": end,
                                              "shares_to_review": len(done.shares_to_review)})
    return done


def notice_ends(agent: Agent) -> list[Ended]:
    out = []
    for prof in agent.state.all("profiles"):
        g = Guardianship.of(prof)
        if g is not None and g.end_noticed_at is None and g.ended(agent.now()):
            done = notice_end(agent, g)
            if done is not None:
                out.append(done)
    return out


def needs_review(share: Share) -> bool:
    return share.review_due is not None and share.reviewed_at is None and share.revoked_at is None


def open_review(agent: Agent, profile: str, deadline: int) -> list[str]:
    """Give every active share a guardian (or proxy) made for ``profile`` a review deadline."""
    now = agent.now()
    opened = []
    for share in agent.state.shares(profile):
        by = share.decided_by
        if (share.effect == "allow" and share.active(now) and by is not None and by.role != "self"
                and share.review_due is None and share.reviewed_at is None):
            agent.state.update("shares", "id", share.id, {"review_due": deadline})
            opened.append(share.id)
    return opened


# --- a co-guardian's decision, signed by their agent ------------------------------------------------

REQUEST_TYP = "consent-decision-request+jwt"
DECISION_TYP = "consent-decision+jwt"
DECISION_TTL = 7 * 86400
MAX_DECISION = 32 * 1024


def decision_request(agent: Agent, item: Mapping[str, Any], g: Guardianship) -> str:
    """What the co-guardian is asked, signed by this agent's identity key so their agent can show
    where it came from. It carries the request as the guardian's inbox shows it, never anything
    excluded (such requests never reach a guardian)."""
    now = agent.now()
    requester = item.get("requester") or {}
    return agent.keys.sign_with_identity({
        "iss": agent.keys.agent_id, "issuer": agent.issuer, "iat": now, "exp": now + DECISION_TTL,
        "item": item["id"], "digest": item_digest(item), "profile_name": g.name, "require": g.require,
        "client": {"client_id": (item.get("client") or {}).get("client_id"),
                   "client_name": (item.get("client") or {}).get("client_name")},
        "requester": {k: requester.get(k) for k in ("issuer", "subject", "name", "email")} if requester else None,
        "permissions": [{"resource_id": p["resource_id"], "resource_name": p.get("resource_name"),
                         "scopes": list(p.get("scopes") or ())} for p in item.get("permissions", ())],
        "purpose": item.get("purpose"),
        "approvals": [{"name": a["by"].get("name"), "scopes": a.get("scopes"), "expires_at": a.get("expires_at")}
                      for a in item.get("approvals") or ()]}, typ=REQUEST_TYP)


def _verified(signed: str, typ: str, agent_id: str | None = None) -> dict[str, Any]:
    if not isinstance(signed, str) or len(signed) > MAX_DECISION:
        raise OwnerError("that is not a signed decision")
    try:
        claimed = agent_id or str(jose.unverified_claims(signed.strip(), max_size=MAX_DECISION).get("iss"))
        return verify_identity_jws(signed.strip(), claimed, typ=typ)
    except (jose.JoseError, KeyStoreError) as exc:
        raise OwnerError(f"the signed document does not check out: {exc}") from None


def read_decision_request(signed: str, now: float) -> dict[str, Any]:
    """A decision request as the co-guardian's agent sees it: signed by the agent it names (``iss``)."""
    payload = _verified(signed, REQUEST_TYP)
    if not isinstance(payload.get("exp"), int) or payload["exp"] <= now:
        raise OwnerError("this decision request has expired; ask for a new one")
    permissions = payload.get("permissions")
    if not all(isinstance(payload.get(k), str) for k in ("issuer", "item", "digest")) or not (
            isinstance(permissions, list) and all(isinstance(p, dict) and isinstance(p.get("scopes"), list)
                                                  for p in permissions)):
        raise OwnerError("this decision request is incomplete")
    return payload


def sign_decision(agent: Agent, request: Mapping[str, Any], *, approve: bool, scopes: Sequence[str] | None,
                  expires_at: int | None, once: bool) -> str:
    """The co-guardian's answer, signed by their agent's identity key, for the agent that asked."""
    asked = {s for p in request.get("permissions") or () for s in p.get("scopes") or ()}
    if scopes is not None and not set(scopes) <= asked:
        raise OwnerError(f"scope {sorted(set(scopes) - asked)[0]!r} was not asked for")
    now = agent.now()
    return agent.keys.sign_with_identity({
        "iss": agent.keys.agent_id, "issuer": agent.issuer, "aud": request["issuer"], "iat": now,
        "exp": now + DECISION_TTL, "jti": token(16), "item": request["item"], "digest": request["digest"],
        "request_iss": request["iss"],
        "decision": "approve" if approve else "deny", "scopes": None if scopes is None else list(scopes),
        "expires_at": expires_at, "once": once}, typ=DECISION_TYP)


def read_decision(agent: Agent, signed: str) -> tuple[dict[str, Any], Guardianship, Guardian, dict[str, Any]]:
    """A co-guardian's signed decision on this agent: (profile, guardianship, guardian, payload).

    It counts only if its signer is a co-guardian registered for the request's profile, it is
    addressed to this agent, it has not expired, and it names the request as it still stands.
    """
    try:
        claimed = jose.unverified_claims(signed.strip(), max_size=MAX_DECISION)
    except (jose.JoseError, AttributeError):
        raise OwnerError("that is not a signed decision") from None
    item = agent.state.get("inbox", "id", claimed.get("item")) if isinstance(claimed.get("item"), str) else None
    profile = agent.state.get("profiles", "id", item["profile"]) if item else None
    g = Guardianship.of(profile) if profile else None
    found = g.guardian(f"agent:{claimed.get('iss')}") if g else None
    if item is None or profile is None or g is None or found is None or found.agent_id is None:
        raise OwnerError("this decision is not from a co-guardian of the profile it names", status=403)
    payload = _verified(signed, DECISION_TYP, found.agent_id)
    now = agent.now()
    if payload.get("aud") != agent.issuer:
        raise OwnerError(f"this decision is for the agent at {payload.get('aud')}, not this one", status=403)
    if not isinstance(payload.get("exp"), int) or payload["exp"] <= now:
        raise OwnerError("this decision has expired")
    if payload.get("digest") != item_digest(item):
        raise OwnerError("this decision was made on another version of the request", status=409)
    if payload.get("request_iss") != agent.keys.agent_id:
        # the co-guardian decided on what a request showed them: only one this agent signed shows the truth
        raise OwnerError("this decision answers a decision request this agent did not make", status=403)
    if payload.get("decision") not in ("approve", "deny"):
        raise OwnerError("this decision neither approves nor denies")
    scopes, expires_at = payload.get("scopes"), payload.get("expires_at")
    scopes_ok = scopes is None or (isinstance(scopes, list) and all(isinstance(x, str) for x in scopes))
    end_ok = expires_at is None or (isinstance(expires_at, int) and not isinstance(expires_at, bool))
    if not (scopes_ok and end_ok and isinstance(payload.get("once", False), bool)):
        raise OwnerError("this decision is malformed: scopes, expires_at or once")
    return profile, g, found, payload
