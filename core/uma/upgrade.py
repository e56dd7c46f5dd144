"""RPT upgrade (UMA Grant §3.3.5.1): fold a previous RPT's permissions into the new one.

Only an RPT of the same client, resource server and requesting party counts (§1.3, G-21), only
while the shares behind it still hold, and the old RPT is revoked once upgraded (G-20).
"""

from __future__ import annotations

from core import jose
from core.agent import Agent
from core.model import Permission
from core.tokens import AT_JWT, pairwise_sub, verify_own_signature


def merge(agent: Agent, rpt: str, client_id: str, rs_client_id: str, party: str,
          new: tuple[Permission, ...]) -> tuple[tuple[Permission, ...], tuple[str, ...]] | None:
    """The merged permissions and the shares behind the old RPT, or None when it cannot be upgraded."""
    try:
        verified = verify_own_signature(agent.keys, rpt, max_size=agent.settings.max_token)
    except jose.JoseError:
        return None
    claims = verified.claims
    record = agent.registry.get(str(claims.get("jti")))
    same = (verified.header.get("typ") == AT_JWT and claims.get("iss") == agent.issuer
            and claims.get("client_id") == client_id and claims.get("aud") == rs_client_id
            and claims.get("sub") == pairwise_sub(agent.keys.secret("sub"), "party", party, rs_client_id)
            and record is not None and not record.revoked and record.party == party
            and all(agent.state.share_backs_tokens(s, agent.clock()) for s in record.share_ids))
    if not same or record is None:
        return None
    merged: dict[str, list[str]] = {}
    for perm in [*(Permission(p["resource_id"], tuple(p["resource_scopes"])) for p in record.permissions), *new]:
        scopes = merged.setdefault(perm.resource_id, [])
        scopes.extend(s for s in perm.scopes if s not in scopes)
    agent.registry.revoke(record.jti)
    return tuple(Permission(rid, tuple(sc)) for rid, sc in merged.items()), record.share_ids
