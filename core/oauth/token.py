"""The token endpoint (RFC 6749 §3.2) as named steps: parse, authenticate the client, check the
grant type, check the DPoP proof, then hand over to the grant's own module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from core.agent import Agent
from core.errors import InvalidDPoPProof, InvalidRequest, UnauthorizedClient, UnsupportedGrantType
from core.http import HttpRequest, HttpResponse
from core.oauth.client_auth import authenticate_client
from core.oauth.clients import Client
from core.oauth.dpop import Proof, check_proof

AUTHORIZATION_CODE = "authorization_code"
REFRESH_TOKEN = "refresh_token"
DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
UMA_TICKET = "urn:ietf:params:oauth:grant-type:uma-ticket"


@dataclass(frozen=True)
class TokenContext:
    """What every grant handler receives: the parsed form, the authenticated client, the DPoP key."""

    request: HttpRequest
    form: Mapping[str, str]
    client: Client
    proof: Proof | None


GrantHandler = Callable[[Agent, TokenContext], HttpResponse]


def _grants() -> dict[str, GrantHandler]:
    from core.oauth import code_grant, device, refresh
    from core.uma import grant

    return {
        AUTHORIZATION_CODE: code_grant.grant_authorization_code,
        DEVICE_CODE: device.grant_device_code,
        REFRESH_TOKEN: refresh.grant_refresh_token,
        UMA_TICKET: grant.grant_uma_ticket,
    }


def token(agent: Agent, request: HttpRequest, params: Mapping[str, str]) -> HttpResponse:
    form = request.form()
    grant_type = form.get("grant_type")
    if not grant_type:
        raise InvalidRequest("grant_type is required")
    handler = _grants().get(grant_type)
    client = authenticate_client(agent, request, form, endpoint=agent.settings.endpoint("/token"))
    if handler is None:
        raise UnsupportedGrantType(f"grant_type {grant_type!r} is not supported")
    if grant_type not in client.grant_types:
        raise UnauthorizedClient(f"this client is not registered for {grant_type}")
    proof = check_proof(agent, request, require_nonce=agent.settings.dpop_nonce_required)
    if proof is None and (client.dpop_bound or client.is_public):
        # RFC 9449 §5.2; public clients always bind their tokens (DESIGN: client authentication)
        raise InvalidDPoPProof("this client must send a DPoP proof")
    return handler(agent, TokenContext(request, form, client, proof))


def token_type(proof: Proof | None) -> str:
    return "DPoP" if proof else "Bearer"
