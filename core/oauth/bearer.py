"""PAT authentication on the protection API (UMA FedAuthz §1.3; RFC 6750 §2.1, §3; RFC 9449 §7).

Steps: refuse tokens in the query, take exactly one ``Authorization`` header, verify the JWT, check
the ``uma_protection`` scope, check the connection behind it is still active, and for a DPoP-bound
PAT check the proof (``ath`` and key). Every refusal carries the ``WWW-Authenticate`` challenge the
RFCs ask for.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from core import jose
from core.agent import Agent
from core.errors import InsufficientScope, InvalidDPoPProof, InvalidRequest, InvalidToken, UseDPoPNonce
from core.http import HttpRequest
from core.oauth.dpop import check_proof
from core.oauth.pat import active_connection
from core.tokens import UMA_PROTECTION, scopes_of, verify_own_token

REALM = "consent-agent"
_TOKEN68 = re.compile(r"[A-Za-z0-9._~+/-]+=*")


@dataclass(frozen=True)
class Pat:
    """An authenticated PAT: which connection (resource server + profile) is calling."""

    connection_id: str
    client_id: str
    profile: str
    jkt: str | None
    claims: Mapping[str, Any]


class NoCredentials(InvalidToken):
    """RFC 6750 §3.1: a request without any credentials gets the challenge and no error code."""

    def body(self) -> dict[str, Any]:
        return {}


class PatProofError(InvalidDPoPProof):
    """RFC 9449 §7.1: at a protected resource a bad proof is a 401."""

    status = 401


def authenticate_pat(agent: Agent, request: HttpRequest) -> Pat:
    check_no_query_token(request)
    scheme, token = credentials(agent, request)
    claims = verify(agent, token, scheme)
    check_scope(agent, claims, scheme)
    jkt = check_binding(agent, request, token, scheme, claims)
    connection = active_connection(agent, claims.get("gid"))
    if (connection is None or connection.get("client_id") != claims.get("client_id")
            or agent.client(str(connection["client_id"])) is None):  # RFC 7592 §2.3: a deleted client's tokens die
        raise revoked(agent, scheme, claims.get("gid"))
    return Pat(connection["id"], connection["client_id"], connection["profile"], jkt, claims)


def revoked(agent: Agent, scheme: str, gid: object) -> InvalidToken:
    """The refusal of a PAT whose connection ended. When its profile was handed over to another
    agent, it names that agent in ``as_uri`` (the member UMA Grant §3.2 uses to point at an
    authorization server), in the body and the challenge: only the holder of that PAT learns it."""
    record = agent.state.get("connections", "id", gid) if isinstance(gid, str) else None
    moved = agent.state.moved_to(str(record["profile"])) if record else None
    if moved:
        return InvalidToken("these records moved to another authorization server; connect to it",
                            headers=challenge(agent, scheme, "invalid_token", as_uri=moved), extra={"as_uri": moved})
    return InvalidToken("this PAT's connection was revoked", headers=challenge(agent, scheme, "invalid_token"))


def challenge(agent: Agent, scheme: str, error: str | None = None, **params: str) -> dict[str, str]:
    """``WWW-Authenticate`` for RFC 6750 §3 (Bearer) or RFC 9449 §7.1 (DPoP)."""
    pairs = [("error", error)] if error else []
    pairs += list(params.items())
    if scheme == "DPoP":
        pairs.append(("algs", " ".join(agent.settings.dpop_algs)))
    else:
        pairs.insert(0, ("realm", REALM))
    rendered = ", ".join(f'{k}="{v}"' for k, v in pairs)
    return {"www-authenticate": f"{scheme} {rendered}" if rendered else scheme}


def check_no_query_token(request: HttpRequest) -> None:
    """RFC 9700 §4.3.2: tokens in URLs leak into logs and referrers (P-07)."""
    if any(k == "access_token" for k, _ in parse_qsl(request.query_string, keep_blank_values=True)):
        raise InvalidRequest("access tokens are not accepted in the query string", status=401,
                             headers={"www-authenticate": f'Bearer realm="{REALM}", error="invalid_request"'})


def credentials(agent: Agent, request: HttpRequest) -> tuple[str, str]:
    """Exactly one ``Authorization: Bearer|DPoP <token>``; none answers a bare challenge (§3.1)."""
    values = request.header_all("authorization")
    if len(values) > 1:
        raise InvalidRequest("exactly one Authorization header is allowed",
                             headers=challenge(agent, "Bearer", "invalid_request"))
    scheme, _, token = (values[0] if values else "").strip().partition(" ")
    scheme = {"bearer": "Bearer", "dpop": "DPoP"}.get(scheme.lower(), "")
    if not scheme:
        raise NoCredentials("a PAT is required",
                            headers=challenge(agent, "DPoP" if request.header("dpop") else "Bearer"))
    token = token.strip()
    if not _TOKEN68.fullmatch(token):
        raise InvalidToken("the token is malformed", headers=challenge(agent, scheme, "invalid_token"))
    return scheme, token


def verify(agent: Agent, token: str, scheme: str) -> dict[str, Any]:
    try:
        return verify_own_token(agent.keys, token, issuer=agent.issuer, now=agent.clock(),
                                max_size=agent.settings.max_token)
    except jose.JoseError as exc:
        raise InvalidToken("the token is invalid or expired",
                           headers=challenge(agent, scheme, "invalid_token")) from exc


def check_scope(agent: Agent, claims: Mapping[str, Any], scheme: str) -> None:
    """UMA FedAuthz §1.1: only a PAT (scope ``uma_protection``) may call the protection API (P-03)."""
    scope = claims.get("scope")
    if UMA_PROTECTION not in scopes_of(scope if isinstance(scope, str) else None):
        raise InsufficientScope("a PAT with scope uma_protection is required",
                                headers=challenge(agent, scheme, "insufficient_scope", scope=UMA_PROTECTION))


def check_binding(agent: Agent, request: HttpRequest, token: str, scheme: str,
                  claims: Mapping[str, Any]) -> str | None:
    """RFC 9449 §7: a bound PAT only with ``DPoP`` and a proof by its key (DP-09, DP-10); an unbound
    one only as ``Bearer``."""
    cnf = claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    if not isinstance(jkt, str):
        if scheme == "DPoP":
            raise InvalidToken("this token is not DPoP-bound",
                               headers=challenge(agent, "Bearer", "invalid_token"))
        return None
    if scheme != "DPoP":
        raise InvalidToken("this token is DPoP-bound; use the DPoP scheme with a proof",
                           headers=challenge(agent, "DPoP", "invalid_token"))
    try:
        proof = check_proof(agent, request, access_token=token, error=PatProofError,
                            require_nonce=agent.settings.dpop_nonce_required)
    except UseDPoPNonce as err:
        raise UseDPoPNonce(err.description, status=401,
                           headers={**err.headers, **challenge(agent, "DPoP", "use_dpop_nonce")}) from err
    except PatProofError as err:
        raise PatProofError(err.description, headers=challenge(agent, "DPoP", "invalid_dpop_proof")) from err
    if proof is None:
        raise PatProofError("a DPoP proof is required",
                            headers=challenge(agent, "DPoP", "invalid_dpop_proof"))
    if proof.jkt != jkt:
        raise PatProofError("the proof's key is not the one this token is bound to",
                            headers=challenge(agent, "DPoP", "invalid_dpop_proof"))
    return jkt
