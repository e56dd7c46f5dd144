"""Access tokens (RPT and PAT) as JWTs per RFC 9068, plus sealed PCTs.

RPTs live five minutes by default and are remembered in memory only (``TokenRegistry``), as are
the refresh grants behind them: the registry ties each to the shares that back it, so revoking a
share makes the RPT inactive at introspection and its refresh token useless at once. After a
restart the registry is empty: older RPTs answer inactive and their refresh tokens are unknown, so
the client asks again with its PCT (fail closed; nothing that grows with traffic is written).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core import jose
from core.secrets_ import token as random_token

AT_JWT = "at+jwt"
UMA_PROTECTION = "uma_protection"


class Signer(Protocol):
    def sign_jwt(self, claims: dict[str, Any], *, typ: str, extra_headers: dict[str, Any] | None = None) -> str: ...
    def public_key(self, kid: str) -> Any: ...
    def secret(self, label: str) -> bytes: ...


def pairwise_sub(secret: bytes, *parts: str) -> str:
    """A subject stable per (party, resource server) that two resource servers cannot correlate."""
    mac = hmac.new(secret, "\x1f".join(parts).encode("utf-8"), hashlib.sha256).digest()
    return jose.b64url(mac[:18])


@dataclass(frozen=True)
class Issued:
    token: str
    jti: str
    iat: int
    exp: int


def mint_access_token(signer: Signer, *, issuer: str, now: float, ttl: int, sub: str, aud: str,
                      client_id: str, claims: Mapping[str, Any], jkt: str | None) -> Issued:
    """RFC 9068 §2.2: iss, exp, aud, sub, client_id, iat, jti (+ HEART's azp)."""
    iat = int(now)
    jti = random_token(18)
    body: dict[str, Any] = {"iss": issuer, "sub": sub, "aud": aud, "client_id": client_id, "azp": client_id,
                            "iat": iat, "exp": iat + ttl, "jti": jti, **claims}
    if jkt:
        body["cnf"] = {"jkt": jkt}
    return Issued(signer.sign_jwt(body, typ=AT_JWT), jti, iat, iat + ttl)


def verify_own_signature(signer: Signer, token: str, *, max_size: int) -> jose.Verified:
    """A JWS signed by one of our published keys; nothing else is checked (an upgrade may present an
    expired RPT, revocation may be handed anything)."""
    return jose.verify_jws(token, lambda h: signer.public_key(str(h.get("kid", ""))), ["ES256"],
                           max_size=max_size)


def verify_own_token(signer: Signer, token: str, *, issuer: str, now: float, max_size: int) -> dict[str, Any]:
    """Our own JWT access token: signature by a published key, ``typ``, ``iss`` and lifetime."""
    verified = verify_own_signature(signer, token, max_size=max_size)
    if verified.header.get("typ") != AT_JWT:
        raise jose.JoseError("not an access token")
    if verified.claims.get("iss") != issuer:
        raise jose.JoseError("issued by someone else")
    jose.check_times(verified.claims, now, leeway=0)
    return verified.claims


@dataclass
class RptRecord:
    jti: str
    client_id: str
    rs_client_id: str
    party: str
    """Who the RPT speaks for: the requesting party's issuer+subject, or ``client:ID``."""
    permissions: list[dict[str, Any]]
    share_ids: tuple[str, ...]
    exp: int
    grant_id: str | None = None
    revoked: bool = False


@dataclass
class RefreshGrant:
    """What an RPT refresh token stands for (UMA Grant §3.6: refreshing does not assess again)."""

    id: str
    client_id: str
    rs_client_id: str
    party: str
    permissions: tuple[dict[str, Any], ...]
    share_ids: tuple[str, ...]
    jkt: str | None
    refresh_hash: str
    expires_at: int
    act: dict[str, Any] | None = None
    old_hashes: list[str] = field(default_factory=list)
    revoked: bool = False


@dataclass
class TokenRegistry:
    """RPTs and RPT refresh grants issued since start; swept as they expire."""

    rpts: dict[str, RptRecord] = field(default_factory=dict)
    grants: dict[str, RefreshGrant] = field(default_factory=dict)
    max_live: int = 500_000
    """Beyond this many live entries the oldest are forgotten, which makes them inactive (fail closed)."""
    _by_refresh: dict[str, str] = field(default_factory=dict)
    _rpt_order: deque[tuple[int, str]] = field(default_factory=deque)
    _grant_order: deque[tuple[int, str]] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # Lifetimes are fixed per kind, so issue order is expiry order: sweeping from the front of a
    # deque costs O(1) per token, where scanning the whole registry made issuance O(n) under load.
    def add_grant(self, grant: RefreshGrant, now: float) -> None:
        with self._lock:
            while self._grant_order and (self._grant_order[0][0] < now or len(self._grant_order) >= self.max_live):
                self._drop(self._grant_order.popleft()[1])
            self.grants[grant.id] = grant
            self._by_refresh[grant.refresh_hash] = grant.id
            self._grant_order.append((grant.expires_at, grant.id))

    def _drop(self, gid: str) -> None:
        grant = self.grants.pop(gid, None)
        if grant is not None:
            for h in (grant.refresh_hash, *grant.old_hashes):
                self._by_refresh.pop(h, None)

    def grant_by_refresh(self, refresh_hash: str) -> tuple[RefreshGrant, bool] | None:
        """The grant a refresh token belongs to, and whether that token was already rotated away."""
        gid = self._by_refresh.get(refresh_hash)
        grant = self.grants.get(gid) if gid else None
        return None if grant is None else (grant, refresh_hash != grant.refresh_hash)

    def rotate(self, grant: RefreshGrant, new_hash: str) -> None:
        with self._lock:
            grant.old_hashes = [*grant.old_hashes[-31:], grant.refresh_hash]
            grant.refresh_hash = new_hash
            self._by_refresh[new_hash] = grant.id

    def revoke_grant(self, grant_id: str) -> int:
        grant = self.grants.get(grant_id)
        if grant is not None:
            grant.revoked = True
        return self.revoke_where(grant_id=grant_id)

    def grants_backed_by(self, share_id: str) -> list[str]:
        return [g.id for g in list(self.grants.values()) if share_id in g.share_ids and not g.revoked]

    def add(self, record: RptRecord, now: float) -> None:
        with self._lock:
            while self._rpt_order and (self._rpt_order[0][0] < now or len(self._rpt_order) >= self.max_live):
                self.rpts.pop(self._rpt_order.popleft()[1], None)
            self.rpts[record.jti] = record
            self._rpt_order.append((record.exp, record.jti))

    def get(self, jti: str) -> RptRecord | None:
        return self.rpts.get(jti)

    def revoke(self, jti: str) -> None:
        rec = self.rpts.get(jti)
        if rec:
            rec.revoked = True

    def revoke_where(self, *, share_id: str | None = None, grant_id: str | None = None) -> int:
        n = 0
        with self._lock:
            for rec in self.rpts.values():
                if (share_id and share_id in rec.share_ids) or (grant_id and rec.grant_id == grant_id):
                    rec.revoked = True
                    n += 1
        return n


class Sealer:
    """AES-256-GCM sealed JSON, readable only by this agent (PCTs: UMA Grant §3.3.5 says a PCT must
    not reveal claims)."""

    def __init__(self, key: bytes, purpose: str) -> None:
        self._aead = AESGCM(key)
        self._aad = purpose.encode("ascii")

    def seal(self, data: Mapping[str, Any]) -> str:
        nonce = os.urandom(12)
        ct = self._aead.encrypt(nonce, json.dumps(data, separators=(",", ":")).encode("utf-8"), self._aad)
        return jose.b64url(nonce + ct)

    def open(self, text: str, *, max_size: int = 8192) -> dict[str, Any] | None:
        if not isinstance(text, str) or len(text) > max_size:
            return None
        try:
            raw = jose.b64url_decode(text)
            if len(raw) < 29:
                return None
            data = json.loads(self._aead.decrypt(raw[:12], raw[12:], self._aad))
        except (jose.JoseError, InvalidTag, ValueError):
            return None
        return data if isinstance(data, dict) else None


def scopes_of(value: str | None) -> list[str]:
    """RFC 6749 §3.3: space-delimited, order-free, no duplicates."""
    if not value:
        return []
    out: list[str] = []
    for s in value.split(" "):
        if s and s not in out:
            out.append(s)
    return out


def join_scopes(scopes: Iterable[str]) -> str:
    return " ".join(dict.fromkeys(scopes))
