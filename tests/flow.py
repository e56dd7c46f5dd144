"""A small protocol driver: a resource server and a requesting client talking to an agent.

It works over any ``httpx.Client`` (a real socket, or Starlette's TestClient on the ASGI app), so
the same steps drive the black-box test against ``consent-agent serve`` and the in-process tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.kit import IdP, Key, client_assertion, dpop_proof

UMA_GRANT = "urn:ietf:params:oauth:grant-type:uma-ticket"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
ID_TOKEN = "http://openid.net/specs/openid-connect-core-1_0.html#IDToken"
JSON = {"Content-Type": "application/json"}


@dataclass
class Party:
    """A registered client with its own key; signs assertions and DPoP proofs."""

    http: httpx.Client
    issuer: str
    now: Any
    key: Key = field(default_factory=Key)
    dpop_key: Key = field(default_factory=Key)
    client_id: str = ""
    registration: dict[str, Any] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return self.issuer + path

    def register(self, name: str, grant_types: list[str], **extra: Any) -> dict[str, Any]:
        meta = {"client_name": name, "token_endpoint_auth_method": "private_key_jwt", "jwks": self.key.jwks,
                "grant_types": grant_types, "dpop_bound_access_tokens": True, **extra}
        r = self.http.post(self.url("/register"), json=meta)
        if r.status_code != 201:
            raise AssertionError(f"registration failed: {r.status_code} {r.text}")
        self.registration = r.json()
        self.client_id = self.registration["client_id"]
        return self.registration

    def auth(self) -> dict[str, str]:
        return {"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": client_assertion(self.key, self.client_id, self.url("/token"), self.now())}

    def proof(self, method: str, path: str, token: str | None = None) -> dict[str, str]:
        return {"DPoP": dpop_proof(self.dpop_key, method, self.url(path), self.now(), ath_of=token)}

    def token(self, form: dict[str, str], *, dpop: bool = True) -> httpx.Response:
        headers = self.proof("POST", "/token") if dpop else {}
        return self.http.post(self.url("/token"), data={**form, **self.auth()}, headers=headers)


@dataclass
class ResourceServer(Party):
    pat: str = ""

    def start_device_flow(self) -> dict[str, Any]:
        r = self.http.post(self.url("/device_authorization"), data={"scope": "uma_protection", **self.auth()})
        if r.status_code != 200:
            raise AssertionError(f"device authorization failed: {r.status_code} {r.text}")
        return dict(r.json())

    def poll_device(self, device_code: str) -> httpx.Response:
        r = self.token({"grant_type": DEVICE_GRANT, "device_code": device_code})
        if r.status_code == 200:
            self.pat = r.json()["access_token"]
        return r

    def protected(self, method: str, path: str) -> dict[str, str]:
        return {"Authorization": f"DPoP {self.pat}", **self.proof(method, path, self.pat)}

    def register_resource(self, description: dict[str, Any]) -> str:
        r = self.http.post(self.url("/resource_set"), json=description, headers=self.protected("POST", "/resource_set"))
        if r.status_code != 201:
            raise AssertionError(f"resource registration failed: {r.status_code} {r.text}")
        return str(r.json()["_id"])

    def ticket(self, permissions: Any) -> str:
        r = self.http.post(self.url("/permission"), json=permissions, headers=self.protected("POST", "/permission"))
        if r.status_code != 201:
            raise AssertionError(f"permission request failed: {r.status_code} {r.text}")
        return str(r.json()["ticket"])

    def introspect(self, token: str) -> dict[str, Any]:
        r = self.http.post(self.url("/introspect"), data={"token": token, "token_type_hint": "access_token"},
                           headers=self.protected("POST", "/introspect"))
        if r.status_code != 200:
            raise AssertionError(f"introspection failed: {r.status_code} {r.text}")
        return dict(r.json())


@dataclass
class RequestingClient(Party):
    def ask(self, ticket: str, *, id_token: str | None = None, **extra: str) -> httpx.Response:
        form = {"grant_type": UMA_GRANT, "ticket": ticket, **extra}
        if id_token:
            form.update(claim_token=id_token, claim_token_format=ID_TOKEN)
        return self.token(form)


def person_token(idp: IdP, client: RequestingClient, sub: str = "dr-bob", **claims: Any) -> str:
    """An ID token for a clinician (Dr. Bob Jones unless ``name``/``email`` say otherwise)."""
    person = {"name": "Dr. Bob Jones", "email": "bob@clinic.example", "email_verified": True, **claims}
    return idp.id_token(sub, client.client_id, client.now(), **person)
