"""The conformance suite's world: the agent behind its ASGI app, a trusted IdP, resource server RS-A
(``world.rs``, DPoP-bound PAT) with resource RES1 (``world.resource``, scopes read/write), requesting
client C1 (``world.client``, private_key_jwt + DPoP), and on demand a second resource server RS-B, a
second confidential client and a public client C2 (CONFORMANCE.md "Fixtures").

Settings can be changed per test with ``@pytest.mark.settings(dpop_nonce_required=True)``; when
nonces are required the parties learn one from the agent (RFC 9449 §8) and put it in every proof.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from core.agent import Agent
from core.clock import FakeClock
from core.owner import Lifetime, Owner
from tests.flow import DEVICE_GRANT, UMA_GRANT, RequestingClient, ResourceServer, person_token
from tests.kit import IdP, Key, dpop_proof, http, make_agent

REFRESH = "refresh_token"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


# keys and hand-made tokens ----------------------------------------------------------------------------
@dataclass
class RsaKey(Key):
    """An RS256 key (HEART-O requires RS256 support for client assertions)."""

    kind: str = "RS256"

    def __post_init__(self) -> None:
        if self.private is None:
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    @property
    def public_jwk(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        jwk.update({"kid": self.kid, "alg": self.kind, "use": "sig"})
        return dict(jwk)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def segment(obj: Any) -> str:
    return b64(json.dumps(obj).encode("utf-8"))


def unsigned(claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
    """An ``alg: none`` JWT (RFC 7519 §6)."""
    return f"{segment({**(header or {}), 'alg': 'none'})}.{segment(claims)}."


def hs256(claims: dict[str, Any], secret: bytes, header: dict[str, Any] | None = None) -> str:
    """An HMAC-signed JWT, for the "public key used as an HMAC secret" attack (RFC 8725 §2.1)."""
    signing_input = f"{segment({**(header or {}), 'alg': 'HS256'})}.{segment(claims)}"
    mac = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def sign_text(key: Key, header: dict[str, Any], payload_text: str) -> str:
    """A JWS over an exact payload text (for numbers JSON cannot hold, such as ``NaN`` or ``1e400``)."""
    signing_input = f"{segment({'alg': key.kind, **header})}.{b64(payload_text.encode('utf-8'))}"
    if key.kind in ("EdDSA", "Ed25519"):
        signature = key.private.sign(signing_input.encode("ascii"))
    else:
        signature = jwt.algorithms.ECAlgorithm(jwt.algorithms.ECAlgorithm.SHA256).sign(
            signing_input.encode("ascii"), key.private)
    return f"{signing_input}.{b64(signature)}"


def proof_jwk(key: Key) -> dict[str, Any]:
    """The public JWK as a DPoP proof header carries it."""
    return {k: v for k, v in key.public_jwk.items() if k not in ("kid", "use", "alg")}


def payload(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def header(token: str) -> dict[str, Any]:
    return dict(jwt.get_unverified_header(token))


def agent_public_pem(web: httpx.Client) -> bytes:
    """The agent's token-signing public key as PEM, fetched from its published JWKS."""
    jwk = web.get("/jwks.json").json()["keys"][0]
    key = jwt.algorithms.ECAlgorithm.from_jwk(json.dumps(jwk))
    return bytes(key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


# parties that put a server nonce in their proofs --------------------------------------------------------
@dataclass
class RS(ResourceServer):
    nonce: str | None = None
    refresh: str = ""

    def proof(self, method: str, path: str, token: str | None = None) -> dict[str, str]:
        return {"DPoP": dpop_proof(self.dpop_key, method, self.url(path), self.now(), ath_of=token,
                                   nonce=self.nonce)}


@dataclass
class Client(RequestingClient):
    nonce: str | None = None

    def proof(self, method: str, path: str, token: str | None = None) -> dict[str, str]:
        return {"DPoP": dpop_proof(self.dpop_key, method, self.url(path), self.now(), ath_of=token,
                                   nonce=self.nonce)}


@dataclass
class PublicClient(Client):
    """C2: ``token_endpoint_auth_method: none``, identified by ``client_id`` only."""

    def auth(self) -> dict[str, str]:
        return {"client_id": self.client_id}

    def register(self, name: str, grant_types: list[str], **extra: Any) -> dict[str, Any]:
        r = self.http.post(self.url("/register"), json={
            "client_name": name, "token_endpoint_auth_method": "none", "grant_types": grant_types,
            "dpop_bound_access_tokens": True, **extra})
        if r.status_code != 201:
            raise AssertionError(f"registration failed: {r.status_code} {r.text}")
        self.registration = r.json()
        self.client_id = self.registration["client_id"]
        return self.registration


# the world ---------------------------------------------------------------------------------------
@dataclass
class World:
    agent: Agent
    clock: FakeClock
    owner: Owner
    idp: IdP
    web: httpx.Client
    rs: RS
    client: Client
    resource: str
    parties: list[Any] = field(default_factory=list)

    @property
    def issuer(self) -> str:
        return self.agent.issuer

    def url(self, path: str) -> str:
        return self.issuer + path

    # tickets and decisions
    def ticket(self, scopes: list[str] | None = None, rs: RS | None = None, resource: str | None = None) -> str:
        return (rs or self.rs).ticket({"resource_id": resource or self.resource,
                                        "resource_scopes": ["read"] if scopes is None else scopes})

    def share_with_client(self, scopes: list[str], client: Client | None = None, *,
                          resource: str | None = None, lifetime: Lifetime | None = None) -> str:
        """The owner shares ``scopes`` of RES1 with whoever uses the client (``client:ID``)."""
        cid = (client or self.client).client_id
        return str(self.owner.share(profile="me", resource_id=resource or self.resource, scopes=scopes,
                                    grantee=f"client:{cid}", lifetime=lifetime)["id"])

    def share_with_person(self, scopes: list[str], sub: str = "dr-bob") -> str:
        return str(self.owner.share(profile="me", resource_id=self.resource, scopes=scopes,
                                    grantee=f"sub:{self.idp.issuer}#{sub}")["id"])

    def id_token(self, client: Client | None = None, sub: str = "dr-bob", **claims: Any) -> str:
        return person_token(self.idp, client or self.client, sub, **claims)

    def rpt(self, scopes: list[str] | None = None, client: Client | None = None, **extra: str) -> dict[str, Any]:
        """An RPT for ``scopes`` of RES1 through a share with the client: the token response."""
        scopes = scopes or ["read"]
        client = client or self.client
        self.share_with_client(scopes, client)
        r = client.ask(self.ticket(scopes), **extra)
        assert r.status_code == 200, r.text
        return dict(r.json())

    def introspect(self, token: str, rs: RS | None = None, **form: str) -> httpx.Response:
        rs = rs or self.rs
        return self.web.post(self.url("/introspect"), data={"token": token, **form},
                             headers=rs.protected("POST", "/introspect"))

    def renew_pat(self, rs: RS | None = None) -> None:
        """The resource server refreshes its PAT (after the test clock ran past its lifetime)."""
        rs = rs or self.rs
        r = rs.token({"grant_type": REFRESH, "refresh_token": rs.refresh})
        assert r.status_code == 200, r.text
        rs.pat, rs.refresh = r.json()["access_token"], r.json()["refresh_token"]

    # more parties
    def new_rs(self, name: str = "Imaging") -> RS:
        rs = RS(self.web, self.issuer, self.clock, nonce=self.rs.nonce)
        connect(self, rs, name)
        return rs

    def new_client(self, name: str = "Second EHR", **extra: Any) -> Client:
        c = Client(self.web, self.issuer, self.clock, nonce=self.rs.nonce)
        c.register(name, [UMA_GRANT, REFRESH], **extra)
        self.parties.append(c)
        return c

    def public_client(self, name: str = "Patient app") -> PublicClient:
        c = PublicClient(self.web, self.issuer, self.clock, nonce=self.rs.nonce)
        c.register(name, [UMA_GRANT, REFRESH])
        self.parties.append(c)
        return c

    def learn_nonce(self) -> str:
        """Ask the token endpoint once without a nonce; RFC 9449 §8 answers with one."""
        r = self.client.token({"grant_type": REFRESH, "refresh_token": "x"})
        nonce = r.headers.get("dpop-nonce")
        assert nonce, r.text
        for p in (self.rs, self.client, *self.parties):
            p.nonce = nonce
        return nonce


REDIRECT = "https://lab.example/cb"
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"  # RFC 7636 Appendix B
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def code_party(world: World, name: str = "Code lab") -> RS:
    """A resource server that gets its PAT by the authorization code grant (P-06)."""
    rs = RS(world.web, world.issuer, world.clock, nonce=world.rs.nonce)
    rs.register(name, ["authorization_code", REFRESH], redirect_uris=[REDIRECT])
    world.parties.append(rs)
    return rs


def authorization_code(world: World, rs: RS, **over: str) -> str:
    """Visit /authorize with PKCE S256, let the owner approve, reload: the code from the redirect."""
    query = {"response_type": "code", "client_id": rs.client_id, "redirect_uri": REDIRECT,
             "scope": "uma_protection", "state": "s1", "code_challenge": CHALLENGE,
             "code_challenge_method": "S256", **over}
    r = world.web.get("/authorize", params=query, follow_redirects=False)
    assert r.status_code == 200, r.text
    item = [i for i in world.owner.inbox() if i["kind"] == "connect" and i["client"]["client_id"] == rs.client_id]
    world.owner.approve(item[-1]["id"])
    r = world.web.get("/authorize", params=query, follow_redirects=False)
    assert r.status_code == 302, r.text
    return parse_qs(urlsplit(r.headers["location"]).query)["code"][0]


def connect(world: World, rs: RS, name: str) -> None:
    rs.register(name, [DEVICE_GRANT, REFRESH])
    dev = rs.start_device_flow()
    item = next(i for i in world.owner.inbox() if i.get("user_code") == dev["user_code"])
    world.owner.approve(item["id"])
    r = rs.poll_device(dev["device_code"])
    assert r.status_code == 200, r.text
    rs.refresh = r.json()["refresh_token"]
    world.parties.append(rs)


def build_world(tmp_path: Path, **settings: Any) -> World:
    clock = FakeClock()
    agent = make_agent(tmp_path, clock=clock, **settings)
    web = http(agent)
    owner = Owner(agent)
    idp = IdP()
    owner.trust_add(idp.issuer, jwks=idp.key.jwks, name="Test IdP")
    rs = RS(web, agent.issuer, clock)
    client = Client(web, agent.issuer, clock)
    world = World(agent, clock, owner, idp, web, rs, client, "")
    rs.register("Lab records", [DEVICE_GRANT, REFRESH])
    client.register("Clinic EHR", [UMA_GRANT, REFRESH])
    if settings.get("dpop_nonce_required"):
        world.learn_nonce()
    dev = rs.start_device_flow()
    item = next(i for i in owner.inbox() if i.get("user_code") == dev["user_code"])
    owner.approve(item["id"])
    r = rs.poll_device(dev["device_code"])
    assert r.status_code == 200, r.text
    rs.refresh = r.json()["refresh_token"]
    world.resource = rs.register_resource({"name": "Lab results", "resource_scopes": ["read", "write"]})
    return world


def error_of(r: httpx.Response) -> str | None:
    """The ``error`` member of a JSON error answer (and proof it is JSON, not a traceback)."""
    assert r.headers.get("content-type", "").startswith("application/json"), (r.status_code, r.text)
    body = r.json()
    assert isinstance(body, dict), body
    assert "Traceback" not in r.text
    return body.get("error")
