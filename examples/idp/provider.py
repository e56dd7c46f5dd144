"""A test identity provider: the hospital's sign-in service that vouches for the demo's clinicians.

In real life a clinician signs in at their hospital's OpenID provider, and the clinic's app pushes the
ID token it got to the patient's agent as a claim token (UMA Grant §3.3.1). Here the provider is a key
and a list of people: :meth:`DemoIdP.id_token` signs what the real provider would send after a
sign-in. The patient's agent trusts it with ``consent-agent trust add ISSUER --jwks-file FILE``.

On the command line (``python -m examples.idp``, see ``__main__.py``) it prints ID tokens (``token``) and its
public keys (``jwks``), or runs as a tiny server (``serve``) that publishes its keys and discovery
document, so the agent could fetch them with ``--jwks-uri`` instead.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdk.keys import SigningKey

ISSUER = "https://sign-in.riverside-hospital.example"


@dataclass(frozen=True)
class Clinician:
    sub: str
    name: str
    email: str
    role: str
    """A claim a share for "any clinician of this hospital" can match (``class:ISSUER#role=physician``)."""


CLINICIANS = {
    "carol": Clinician("dr-carol-white", "Dr. Carol White", "carol.white@riverside-hospital.example", "physician"),
    "bob": Clinician("dr-bob-jones", "Dr. Bob Jones", "bob.jones@riverside-hospital.example", "physician"),
}


@dataclass
class DemoIdP:
    issuer: str = ISSUER
    key: SigningKey = field(default_factory=SigningKey)
    lifetime: int = 600

    @classmethod
    def load_or_create(cls, folder: Path, issuer: str = ISSUER) -> DemoIdP:
        """The provider whose key is kept in ``folder`` (made on first use)."""
        return cls(issuer, SigningKey.load_or_create(folder / "idp-key.pem"))

    @property
    def jwks(self) -> dict[str, Any]:
        return self.key.jwks

    def write_jwks(self, path: Path) -> Path:
        """The public keys as a file for ``consent-agent trust add ISSUER --jwks-file``."""
        path.write_text(json.dumps(self.jwks, indent=2))
        return path

    def id_token(self, who: str | Clinician, audience: str | list[str], *, now: float | None = None,
                 **extra: Any) -> str:
        """An OpenID Connect ID token (Core §2) for ``who`` (a key of CLINICIANS, or a Clinician),
        for the client ``audience`` (its client_id at the patient's agent). ``extra`` claims are added,
        such as ``purpose_of_use="TREAT"``, which the patient's agent shows with the request."""
        person = CLINICIANS[who] if isinstance(who, str) else who
        t = int(time.time() if now is None else now)
        claims = {"iss": self.issuer, "sub": person.sub, "aud": audience, "iat": t, "exp": t + self.lifetime,
                  "auth_time": t, "nonce": secrets.token_urlsafe(8), "name": person.name, "email": person.email,
                  "email_verified": True, "role": person.role, **extra}
        return self.key.sign(claims, {"kid": self.key.kid, "typ": "JWT"})

    def discovery(self) -> dict[str, Any]:
        return {"issuer": self.issuer, "jwks_uri": f"{self.issuer}/jwks.json",
                "id_token_signing_alg_values_supported": ["ES256"], "subject_types_supported": ["public"],
                "response_types_supported": ["id_token"]}


def asgi_app(idp: DemoIdP) -> Any:
    """Starlette app publishing the discovery document and the keys."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def discovery(_: Request) -> JSONResponse:
        return JSONResponse(idp.discovery())

    async def jwks(_: Request) -> JSONResponse:
        return JSONResponse(idp.jwks, headers={"Cache-Control": "public, max-age=300"})

    return Starlette(routes=[Route("/.well-known/openid-configuration", discovery), Route("/jwks.json", jwks)])
