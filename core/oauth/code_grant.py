"""The authorization code grant at the token endpoint (RFC 6749 §4.1.3), for PATs.

Steps: take the code (single use), check it was issued to this client for this ``redirect_uri``,
check the PKCE verifier (RFC 7636 §4.6) and the DPoP key named at the authorization endpoint
(RFC 9449 §10), then issue the PAT. A code that comes back after it was redeemed revokes what it
bought (RFC 6749 §4.1.2, RFC 9700 §4.2.4).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.agent import Agent
from core.errors import InvalidDPoPProof, InvalidGrant, InvalidRequest
from core.http import HttpResponse
from core.oauth import pkce
from core.oauth.dpop import Proof
from core.oauth.pat import issue_pat, revoke_from_item
from core.oauth.token import TokenContext
from core.secrets_ import digest

CODE_PREFIX = "code:"
USED_PREFIX = "used:"


def code_key(code: str) -> str:
    """Where the authorization endpoint stores a code in ``agent.caches.codes``."""
    return CODE_PREFIX + digest(code)


def grant_authorization_code(agent: Agent, ctx: TokenContext) -> HttpResponse:
    code = ctx.form.get("code")
    if not code:
        raise InvalidRequest("code is required")
    record = redeem(agent, code)
    check_client(record, ctx.client.client_id)
    check_redirect_uri(record, ctx.form.get("redirect_uri"))
    pkce.verify(ctx.form.get("code_verifier"), record.get("code_challenge"))
    check_dpop_key(record, ctx.proof)
    return issue_pat(agent, client=ctx.client, profile=record["profile"], scope=record["scope"],
                     proof=ctx.proof, item_id=record["item_id"])


def redeem(agent: Agent, code: str) -> Mapping[str, Any]:
    """Take the code out of the cache; a second attempt finds only the ``used:`` marker, which
    revokes the connection the first redemption created (T-12)."""
    used = USED_PREFIX + digest(code)
    record = agent.caches.codes.pop(code_key(code))
    if record is None:
        marker = agent.caches.codes.get(used)
        if marker is not None:
            revoked = revoke_from_item(agent, str(marker["item_id"]), reason="authorization_code_reused")
            agent.audit.append("code_reused", durable=True, item_id=marker["item_id"], revoked=revoked)
        raise InvalidGrant("the authorization code is unknown, expired or already used")
    # remembered as long as a PAT bought with it lives, so a late replay still revokes it
    agent.caches.codes.put(used, {"item_id": record["item_id"]}, max(agent.settings.pat_ttl, 1))
    return record


def check_client(record: Mapping[str, Any], client_id: str) -> None:
    if record.get("client_id") != client_id:
        raise InvalidGrant("the authorization code was issued to another client")


def check_redirect_uri(record: Mapping[str, Any], redirect_uri: str | None) -> None:
    """RFC 6749 §4.1.3: present and identical when it was part of the authorization request."""
    if redirect_uri is None or redirect_uri != record.get("redirect_uri"):
        raise InvalidGrant("redirect_uri does not match the authorization request")


def check_dpop_key(record: Mapping[str, Any], proof: Proof | None) -> None:
    """RFC 9449 §10: a code bound with ``dpop_jkt`` is redeemed only with a proof by that key."""
    jkt = record.get("dpop_jkt")
    if jkt and (proof is None or proof.jkt != jkt):
        raise InvalidDPoPProof("the DPoP key is not the one named by dpop_jkt at the authorization endpoint")
