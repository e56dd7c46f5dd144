"""Policy evaluation: which of the requested permissions the owner's shares allow, and why.

``evaluate`` is the authorization assessment of UMA 2.0 Grant §3.3.4: for each requested resource
the granted scopes are the requested scopes that some matching, usable share allows, never more.
It is a pure function (no I/O, no clock, no randomness) so that the token endpoint, the inbox UI
and tests can all ask "what would happen now?" and get the same answer.

Default deny (UMA Grant §5.6): a request that no share covers is refused; an empty policy never
passes. Remembered denials (``effect == "deny"``) win over shares for the resources they name.

Profiles are isolation boundaries: shares of another profile are not looked at at all, so a
refusal never mentions them and ``OTHER_PROFILE`` is never emitted (it exists for callers that
want to label such shares in the UI).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from core.model import AccessRequest, Permission, Requester, Share

SHARED = "shared"
NO_SHARE = "no_share"
EXPIRED = "expired"
REVOKED = "revoked"
USED = "used"
SCOPE_NOT_SHARED = "scope_not_shared"
REQUESTER_UNVERIFIED = "requester_unverified"
GRANTEE_MISMATCH = "grantee_mismatch"
CLIENT_MISMATCH = "client_mismatch"
DENIED_BEFORE = "denied_before"
OTHER_PROFILE = "other_profile"

_DETAILS = {
    SHARED: "The owner shared this.",
    NO_SHARE: "The owner has not shared this.",
    EXPIRED: "The share for this has expired.",
    REVOKED: "The owner revoked the share for this.",
    USED: "The one-time share for this was already used.",
    SCOPE_NOT_SHARED: "The owner shared this resource, but not this kind of access.",
    REQUESTER_UNVERIFIED: "This is shared with a person; they must prove who they are first.",
    GRANTEE_MISMATCH: "This is shared with someone else.",
    CLIENT_MISMATCH: "This is shared for use through another app.",
    DENIED_BEFORE: "The owner declined this request before.",
}
# Which explanation of a refusal is the most useful, best first: one that proving an identity
# could still turn into a grant, then a share that has ended, then a share too narrow, then
# shares meant for someone else.
_RANK = (REQUESTER_UNVERIFIED, REVOKED, USED, EXPIRED, SCOPE_NOT_SHARED, GRANTEE_MISMATCH, CLIENT_MISMATCH)


@dataclass(frozen=True)
class Reason:
    """One line of explanation; ``code`` is one of the module's reason constants."""

    code: str
    resource_id: str | None = None
    share_id: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class ClaimHint:
    """A claim that would let a share match: one UMA ``need_info`` ``required_claims`` entry (§3.3.6).

    ``issuer`` None means any issuer the owner trusts (e-mail shares).
    """

    issuer: str | None
    claim: str
    friendly_name: str


@dataclass(frozen=True)
class Decision:
    """The outcome for one request; ``granted`` and ``refused`` partition the requested scopes."""

    granted: tuple[Permission, ...]
    refused: tuple[Permission, ...]
    share_ids: tuple[str, ...]
    reasons: tuple[Reason, ...]
    need_claims: tuple[ClaimHint, ...]
    denied_before: bool

    @property
    def complete(self) -> bool:
        """Everything asked for is granted (an empty request is not "complete": §5.6)."""
        return bool(self.granted) and not self.refused

    @property
    def nothing_granted(self) -> bool:
        return not self.granted


def _class_claim_matches(requester: Requester, claim: str | None, value: str | None) -> bool:
    """Strings compare equal, lists by membership; other types never match (no coercion surprises)."""
    if claim is None or value is None:
        return False
    got = requester.claims.get(claim)
    if isinstance(got, str):
        return got == value
    if isinstance(got, list | tuple):
        return any(isinstance(v, str) and v == value for v in got)
    return False


def _match(share: Share, request: AccessRequest) -> str | None:
    """None when the share is for this client and requester, else the reason it is not."""
    if share.client_id is not None and share.client_id != request.client_id:
        return CLIENT_MISMATCH
    g, r = share.grantee, request.requester
    if g.kind == "client":
        return None if g.client_id == request.client_id else CLIENT_MISMATCH
    needed = {"person": (g.issuer, g.subject), "email": (g.email,), "class": (g.issuer, g.claim, g.value)}
    if None in needed.get(g.kind, (None,)):
        return GRANTEE_MISMATCH  # a malformed or unknown grantee matches nobody, so hints nothing
    if r is None:
        return REQUESTER_UNVERIFIED
    if g.kind == "person":
        return None if (r.issuer, r.subject) == (g.issuer, g.subject) else GRANTEE_MISMATCH
    if g.kind == "email":
        same = g.email is not None and r.email is not None and g.email.casefold() == r.email.casefold()
        if not same or (g.issuer is not None and g.issuer != r.issuer):
            return GRANTEE_MISMATCH
        return None if r.email_verified else REQUESTER_UNVERIFIED
    return None if r.issuer == g.issuer and _class_claim_matches(r, g.claim, g.value) else GRANTEE_MISMATCH


def _status(share: Share, request: AccessRequest, now: float) -> str:
    """``SHARED`` for a usable matching share; otherwise the most specific reason it does not apply.

    Lifetime reasons are only given for shares that would (or, with claims, could) match.
    """
    mismatch = _match(share, request)
    if mismatch in (CLIENT_MISMATCH, GRANTEE_MISMATCH):
        return mismatch
    if share.revoked_at is not None:
        return REVOKED
    if share.once and share.used_at is not None:
        return USED
    if not share.active(now):
        return EXPIRED
    return mismatch or SHARED


def _coverage(share: Share) -> dict[str, set[str]]:
    """Resource id -> scopes the share names for it (a key with no scopes still covers the resource)."""
    out: dict[str, set[str]] = {}
    for p in share.permissions:
        out.setdefault(p.resource_id, set()).update(p.scopes)
    return out


def _hint(share: Share) -> ClaimHint:
    g = share.grantee
    if g.kind == "person":
        return ClaimHint(g.issuer, "sub", "Subject identifier")
    if g.kind == "email":
        return ClaimHint(g.issuer, "email", "Verified e-mail address")
    claim = g.claim or ""  # never empty here: _match refuses class grantees without a claim
    return ClaimHint(g.issuer, claim, claim)


def evaluate(shares: Iterable[Share], request: AccessRequest, now: float) -> Decision:
    """Assess ``request`` against the owner's ``shares`` at time ``now`` (UMA Grant §3.3.4).

    Output does not depend on the order of ``shares``: they are considered sorted by id.
    """
    wanted: dict[str, list[str]] = {}
    for p in request.permissions:
        scopes = wanted.setdefault(p.resource_id, [])
        scopes.extend(s for s in p.scopes if s not in scopes)
    rows = [(s, _status(s, request, now), _coverage(s))
            for s in sorted((s for s in shares if s.profile == request.profile), key=lambda s: s.id)]
    allows = [row for row in rows if row[0].effect == "allow"]
    denials = [(s, cov) for s, st, cov in rows if s.effect == "deny" and st == SHARED]

    granted: list[Permission] = []
    refused: list[Permission] = []
    contributors: set[str] = set()
    refusals: list[Reason] = []
    hints: dict[ClaimHint, None] = {}
    for rid, asked in wanted.items():
        denial = next((s for s, cov in denials if rid in cov), None)
        if denial is not None:
            refused.append(Permission(rid, tuple(asked)))
            refusals.append(Reason(DENIED_BEFORE, rid, denial.id, _DETAILS[DENIED_BEFORE]))
            continue
        got: set[str] = set()
        covered = False
        for s, st, cov in allows:
            if st == SHARED and rid in cov and (not asked or cov[rid] & set(asked)):
                got |= cov[rid]
                covered = True
                contributors.add(s.id)
        if covered:
            granted.append(Permission(rid, tuple(x for x in asked if x in got)))
        left = [x for x in asked if x not in got]
        if covered and not left:
            continue
        refused.append(Permission(rid, tuple(left)))
        best: tuple[int, str, str | None] = (len(_RANK), NO_SHARE, None)
        for s, st, cov in allows:
            if rid not in cov:
                continue
            relevant = not asked or bool(cov[rid] & set(left))
            code = SCOPE_NOT_SHARED if st == SHARED else st if relevant else None
            if code is not None and _RANK.index(code) < best[0]:
                best = (_RANK.index(code), code, s.id)
            if relevant and st == REQUESTER_UNVERIFIED and request.requester is None:
                hints.setdefault(_hint(s))
        refusals.append(Reason(best[1], rid, best[2], _DETAILS[best[1]]))

    ids = tuple(sorted(contributors))
    shared = tuple(Reason(SHARED, share_id=i, detail=_DETAILS[SHARED]) for i in ids)
    return Decision(
        granted=tuple(granted), refused=tuple(refused), share_ids=ids,
        reasons=shared + tuple(refusals), need_claims=tuple(hints),
        denied_before=any(r.code == DENIED_BEFORE for r in refusals),
    )
