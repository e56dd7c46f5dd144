"""Test kit: keys, client assertions, DPoP proofs, ID tokens, and an agent behind its ASGI app."""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from core.agent import Agent
from core.asgi import PublicApp
from core.clock import FakeClock
from core.config import Settings
from core.jose import b64url, jwk_thumbprint, sha256_b64url
from core.keys import open_keyring
from core.routes import public_router
from core.state import State
from core.store.audit import AuditLog

ISSUER = "https://agent.example"


def make_agent(data_dir: Path, *, clock: FakeClock | None = None, fetch: Any = None, **settings: Any) -> Agent:
    clock = clock or FakeClock()
    s = Settings(data_dir=data_dir, public_url=settings.pop("public_url", ISSUER), **settings)
    keys = open_keyring(data_dir, clock=clock, use_os_keychain=False, plaintext_dev=True)
    agent = Agent(settings=s, keys=keys, state=State(data_dir / "state"),
                  audit=AuditLog(data_dir / "audit", clock=clock), clock=clock)
    if fetch is not None:
        agent.fetch = fetch
    return agent


def http(agent: Agent) -> Any:
    """Starlette's TestClient (an ``httpx.Client``) on the agent's public ASGI app."""
    from starlette.testclient import TestClient

    return TestClient(PublicApp(agent, public_router()), base_url=agent.issuer)


@dataclass
class Key:
    """A client's or a person's signing key, ES256 by default, Ed25519 on request."""

    kind: str = "ES256"
    private: Any = None
    kid: str = field(default_factory=lambda: secrets.token_hex(4))

    def __post_init__(self) -> None:
        if self.private is None:
            self.private = (ed25519.Ed25519PrivateKey.generate() if self.kind in ("EdDSA", "Ed25519")
                            else ec.generate_private_key(ec.SECP256R1()))

    @property
    def public_jwk(self) -> dict[str, Any]:
        if isinstance(self.private, ed25519.Ed25519PrivateKey):
            jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(self.private.public_key()))
        else:
            jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.private.public_key()))
        jwk.update({"kid": self.kid, "alg": self.kind, "use": "sig"})
        return jwk

    @property
    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk]}

    @property
    def thumbprint(self) -> str:
        return jwk_thumbprint(self.public_jwk)

    def sign(self, claims: dict[str, Any], headers: dict[str, Any] | None = None) -> str:
        hdr = {"alg": self.kind, **(headers or {})}
        if self.kind == "Ed25519":  # PyJWT only knows EdDSA: sign by hand, as some clients do
            signing_input = (b64url(json.dumps(hdr).encode()) + "." + b64url(json.dumps(claims).encode()))
            return signing_input + "." + b64url(self.private.sign(signing_input.encode()))
        return jwt.encode(claims, self.private, algorithm=self.kind, headers=hdr)


def client_assertion(key: Key, client_id: str, aud: str, now: float, **over: Any) -> str:
    claims = {"iss": client_id, "sub": client_id, "aud": aud, "iat": int(now), "exp": int(now) + 60,
              "jti": secrets.token_urlsafe(24)}
    claims.update(over)
    return key.sign({k: v for k, v in claims.items() if v is not None}, {"kid": key.kid})


def dpop_proof(key: Key, method: str, url: str, now: float, *, ath_of: str | None = None,
               nonce: str | None = None, **over: Any) -> str:
    claims: dict[str, Any] = {"jti": secrets.token_urlsafe(16), "htm": method, "htu": url, "iat": int(now)}
    if ath_of is not None:
        claims["ath"] = sha256_b64url(ath_of)
    if nonce is not None:
        claims["nonce"] = nonce
    claims.update(over)
    headers = {"typ": "dpop+jwt", "jwk": {k: v for k, v in key.public_jwk.items() if k not in ("kid", "use", "alg")}}
    headers.update(over.pop("_headers", {}) if "_headers" in over else {})
    return key.sign({k: v for k, v in claims.items() if v is not None and k != "_headers"}, headers)


@dataclass
class IdP:
    """A trusted OpenID provider for tests: issues ID tokens signed with its own key."""

    issuer: str = "https://idp.example"
    key: Key = field(default_factory=Key)

    def id_token(self, sub: str, aud: str | list[str], now: float, **claims: Any) -> str:
        body = {"iss": self.issuer, "sub": sub, "aud": aud, "iat": int(now), "exp": int(now) + 600, **claims}
        return self.key.sign(body, {"kid": self.key.kid, "typ": "JWT"})


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}
