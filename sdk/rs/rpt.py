"""Checking an RPT: locally first, then with the agent, within a bound the resource server chooses.

Local checks (RFC 9068 §4, RFC 9449 §7): an ES256 JWS of type ``at+jwt`` signed by one of the
agent's keys (verified against its agent id, see :mod:`sdk.rs.discovery`), ``iss`` the agent,
``aud`` this resource server's client id, ``exp``/``iat`` against the clock with a small leeway, a
``permissions`` claim (UMA FedAuthz §5.1.1; a PAT has none), and for a token bound with
``cnf.jkt`` the ``DPoP`` scheme with a valid proof (:mod:`sdk.rs.dpop`).

Local checks cannot see revocation: the owner may end a share at any moment. So every token is also
introspected (RFC 7662, FedAuthz §5) and the answer cached for at most ``cache_seconds``. **A token
revoked at the agent is refused here at most ``cache_seconds`` later**; an inactive answer is kept
until the token expires, since an inactive token never becomes active again. When the agent cannot
be reached and the cached answer is too old, the token is not accepted (fail closed). When the
agent's keys cannot be had at all, introspection alone decides.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core import jose
from sdk.jwks import AgentKeysError
from sdk.rs.discovery import AgentKeys
from sdk.rs.dpop import DPOP_ALGS, ProofError, ReplayCache, check_proof
from sdk.rs.http import AgentUnreachable

log = logging.getLogger("consent_agent.sdk.rs")

MAX_TOKEN = 8 * 1024
DEFAULT_CACHE_SECONDS = 30.0

Introspect = Callable[[str], Awaitable[Mapping[str, Any]]]


class TokenRejected(Exception):
    """The token is not good here. ``error`` is the RFC 6750 §3.1 / RFC 9449 §7.1 code, ``scheme``
    the authentication scheme the challenge should name; the message is safe to send."""

    def __init__(self, description: str, *, error: str = "invalid_token", scheme: str = "DPoP") -> None:
        super().__init__(description)
        self.description = description
        self.error = error
        self.scheme = scheme


@dataclass(frozen=True)
class Permission:
    """One entry of the RPT's ``permissions`` (UMA FedAuthz §5.1.1)."""

    resource_id: str
    scopes: frozenset[str]
    exp: float | None = None


@dataclass(frozen=True)
class Access:
    """A verified, active RPT: what it lets its holder do, and who it speaks for."""

    permissions: tuple[Permission, ...]
    subject: str | None
    """Pairwise for (requesting party, this resource server): stable, but not correlatable elsewhere."""
    client_id: str | None
    expires_at: float | None
    jkt: str | None
    claims: Mapping[str, Any] = field(default_factory=dict)

    def scopes_for(self, resource_id: str, now: float) -> frozenset[str]:
        held: set[str] = set()
        for p in self.permissions:
            if p.resource_id == resource_id and (p.exp is None or now < p.exp):
                held |= p.scopes
        return frozenset(held)

    def allows(self, resource_id: str, scopes: Iterable[str], now: float) -> bool:
        """True when unexpired permissions for ``resource_id`` hold every one of ``scopes`` (and,
        for no scopes, when there is any unexpired permission for the resource at all)."""
        need = set(scopes)
        if not need:
            return any(p.resource_id == resource_id and (p.exp is None or now < p.exp) for p in self.permissions)
        return need <= self.scopes_for(resource_id, now)


class IntrospectionCache:
    """Introspection answers by token, bounded in number; active ones are fresh for ``bound`` seconds."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._answers: OrderedDict[str, tuple[float, Mapping[str, Any]]] = OrderedDict()

    def get(self, key: str, now: float, bound: float) -> Mapping[str, Any] | None:
        entry = self._answers.get(key)
        if entry is None:
            return None
        at, answer = entry
        if answer.get("active") is not True:
            return answer
        return answer if 0 <= now - at < bound else None

    def put(self, key: str, now: float, answer: Mapping[str, Any]) -> None:
        self._answers.pop(key, None)
        while len(self._answers) >= self.max_entries:
            self._answers.popitem(last=False)
        self._answers[key] = (now, answer)


class RptVerifier:
    def __init__(self, *, issuer: str, client_id: str, keys: AgentKeys | None, introspect: Introspect,
                 clock: Callable[[], float], cache_seconds: float = DEFAULT_CACHE_SECONDS, leeway: int = 5,
                 dpop_window: float = 60.0, require_dpop: bool = False, max_token: int = MAX_TOKEN) -> None:
        if cache_seconds < 0:
            raise ValueError("cache_seconds must not be negative")
        self.issuer = issuer
        self.client_id = client_id
        self.keys = keys
        self._introspect = introspect
        self.clock = clock
        self.cache_seconds = cache_seconds
        self.leeway = leeway
        self.dpop_window = dpop_window
        self.require_dpop = require_dpop
        self.max_token = max_token
        self.cache = IntrospectionCache()
        self.replay = ReplayCache()

    async def verify(self, token: str, *, scheme: str, dpop: Sequence[str], method: str, url: str) -> Access:
        """Raise :class:`TokenRejected` unless ``token``, presented with ``scheme`` (``Bearer`` or
        ``DPoP``) and the request's ``DPoP`` header values, is an active RPT for this server.
        :class:`~sdk.rs.http.AgentUnreachable` and :class:`~sdk.rs.http.AgentError` come through
        when the agent is needed and cannot answer."""
        if len(token) > self.max_token:
            raise TokenRejected("the token is too large", scheme=scheme)
        claims = await self._local(token, scheme)
        info: Mapping[str, Any] | None = None
        if claims is None:  # no keys to check with: the agent's word alone
            info = await self._status(token)
            claims = self._from_introspection(info, scheme)
        jkt = self._check_binding(claims, token, scheme, dpop, method, url)
        if info is None:
            info = await self._status(token)
        if info.get("active") is not True:
            raise TokenRejected("the token is not active: revoked, expired or unknown", scheme=scheme)
        if "aud" in info and not jose.audience_contains(info, [self.client_id]):
            raise TokenRejected("the token is for another resource server", scheme=scheme)
        return Access(_permissions(info.get("permissions")), _str(claims.get("sub")), _str(claims.get("client_id")),
                      _num(claims.get("exp")), jkt, dict(claims))

    async def _local(self, token: str, scheme: str) -> dict[str, Any] | None:
        try:
            header = jose.unverified_header(token, max_size=self.max_token)
        except jose.JoseError as exc:
            raise TokenRejected(f"the token is malformed: {exc}", scheme=scheme) from None
        if header.get("alg") != "ES256":
            raise TokenRejected("the token is not signed with ES256", scheme=scheme)
        if str(header.get("typ", "")).lower().removeprefix("application/") != "at+jwt":
            raise TokenRejected("the token is not a JWT access token (typ at+jwt)", scheme=scheme)
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenRejected("the token names no key", scheme=scheme)
        if self.keys is None:
            return None
        try:
            key = await self.keys.key(kid)
        except (AgentKeysError, AgentUnreachable) as exc:
            log.warning("the agent's keys cannot be had (%s); introspection decides", exc)
            return None
        if key is None:
            raise TokenRejected("the token is not signed by a key of this agent", scheme=scheme)
        try:
            claims = jose.verify_jws(token, lambda _h: key, ["ES256"], max_size=self.max_token).claims
            jose.check_times(claims, self.clock(), leeway=self.leeway)
        except jose.JoseError as exc:
            raise TokenRejected(f"the token is not valid: {exc}", scheme=scheme) from None
        if claims.get("iss") != self.issuer:
            raise TokenRejected("the token was issued by another authorization server", scheme=scheme)
        if not jose.audience_contains(claims, [self.client_id]):
            raise TokenRejected("the token is for another resource server", scheme=scheme)
        if not isinstance(claims.get("iat"), int | float):
            raise TokenRejected("the token has no iat", scheme=scheme)
        if not isinstance(claims.get("permissions"), list):
            raise TokenRejected("the token is not an RPT", scheme=scheme)
        return claims

    def _from_introspection(self, info: Mapping[str, Any], scheme: str) -> dict[str, Any]:
        if info.get("active") is not True:
            raise TokenRejected("the token is not active: revoked, expired or unknown", scheme=scheme)
        claims = dict(info)
        try:
            jose.check_times(claims, self.clock(), leeway=self.leeway)
        except jose.JoseError as exc:
            raise TokenRejected(f"the token is not valid: {exc}", scheme=scheme) from None
        if not jose.audience_contains(claims, [self.client_id]):
            raise TokenRejected("the token is for another resource server", scheme=scheme)
        if not isinstance(claims.get("permissions"), list):
            raise TokenRejected("the token is not an RPT", scheme=scheme)
        return claims

    def _check_binding(self, claims: Mapping[str, Any], token: str, scheme: str, dpop: Sequence[str],
                       method: str, url: str) -> str | None:
        """RFC 9449 §7.1: a bound token only as ``DPoP`` with a proof; an unbound one only as ``Bearer``."""
        cnf = claims.get("cnf")
        jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
        if not isinstance(jkt, str):
            if scheme == "DPoP":
                raise TokenRejected("this token is not DPoP-bound", scheme="Bearer")
            if self.require_dpop:
                raise TokenRejected("this resource server accepts DPoP-bound tokens only", scheme="DPoP")
            return None
        if scheme != "DPoP":
            raise TokenRejected("this token is DPoP-bound: use the DPoP scheme with a proof", scheme="DPoP")
        try:
            check_proof(dpop, method=method, url=url, access_token=token, jkt=jkt, now=self.clock(),
                        window=self.dpop_window, replay=self.replay, algs=DPOP_ALGS)
        except ProofError as exc:
            raise TokenRejected(str(exc), error="invalid_dpop_proof", scheme="DPoP") from None
        return jkt

    async def _status(self, token: str) -> Mapping[str, Any]:
        """The introspection answer, from the cache while it is younger than ``cache_seconds``."""
        key = jose.sha256_b64url(token)
        now = self.clock()
        cached = self.cache.get(key, now, self.cache_seconds)
        if cached is not None:
            return cached
        answer = await self._introspect(token)
        if self.cache_seconds > 0 or answer.get("active") is not True:
            self.cache.put(key, now, answer)
        return answer


def _permissions(value: object) -> tuple[Permission, ...]:
    out: list[Permission] = []
    for p in value if isinstance(value, list) else []:
        if not isinstance(p, dict) or not isinstance(p.get("resource_id"), str):
            continue
        scopes = p.get("resource_scopes")
        out.append(Permission(p["resource_id"],
                              frozenset(s for s in scopes if isinstance(s, str)) if isinstance(scopes, list)
                              else frozenset(), _num(p.get("exp"))))
    return tuple(out)


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _num(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
