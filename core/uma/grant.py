"""The UMA grant at the token endpoint (UMA 2.0 Grant §3.3.1–§3.3.6).

Steps: parse, redeem the ticket, settle the requested scopes, learn who asks (pushed ID token or
PCT), evaluate the owner's shares, then answer: an RPT, ``need_info``, ``request_submitted`` (the
request waits in the owner's inbox) or ``request_denied``.

For a dependent's records (:mod:`core.guardian`), what touches a category excluded from the
guardianship is withheld for the dependent and left out; a request left with nothing, or one that
would wait for a guardian whose guardianship has ended, is refused. An RPT backed by a share that
someone made for the profile's person carries that actor in ``act`` (RFC 8693 §4.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core import guardian
from core.agent import Agent
from core.errors import InvalidGrant, InvalidRequest, InvalidScope, NeedInfo, RequestDenied, RequestSubmitted
from core.http import HttpResponse, json_response
from core.model import AccessRequest, Permission, Requester
from core.oauth.clients import Client
from core.oauth.token import TokenContext
from core.policy import Decision, evaluate
from core.tokens import scopes_of
from core.uma import claims as claims_mod
from core.uma import inbox, tickets, upgrade
from core.uma.rpt import RptRequest, issue_rpt, party_of


@dataclass(frozen=True)
class GrantParams:
    ticket: str
    claim_token: str | None
    claim_token_format: str | None
    pct: str | None
    rpt: str | None
    scopes: tuple[str, ...]


def parse(form: dict[str, str] | Any) -> GrantParams:
    ticket = form.get("ticket")
    if not ticket:
        raise InvalidRequest("ticket is required")
    token, fmt = form.get("claim_token"), form.get("claim_token_format")
    if bool(token) != bool(fmt):
        raise InvalidRequest("claim_token and claim_token_format go together")
    return GrantParams(ticket, token or None, fmt or None, form.get("pct") or None, form.get("rpt") or None,
                       tuple(scopes_of(form.get("scope"))))


def requested_permissions(agent: Agent, client: Client, ticket: tickets.Ticket,
                          extra: tuple[str, ...]) -> tuple[Permission, ...]:
    """§3.3.4: ticket scopes, plus requested scopes the client pre-registered and the resource has."""
    out: list[Permission] = []
    matched: set[str] = set()
    for perm in ticket.permissions:
        rec = agent.state.get("resources", "_id", perm.resource_id)
        if rec is None:
            continue
        known = rec["description"]["resource_scopes"]
        matched.update(s for s in extra if s in known)
        added = [s for s in extra if s in known and s in client.registered_scopes and s not in perm.scopes]
        out.append(Permission(perm.resource_id, perm.scopes + tuple(added)))
    unmatched = [s for s in extra if s not in matched]
    if unmatched:
        raise InvalidScope(f"scope {unmatched[0]!r} matches no resource of this ticket")
    if not out:
        raise InvalidGrant("the ticket's resources are no longer registered")
    return tuple(out)


def who_asks(agent: Agent, ctx: TokenContext, p: GrantParams) -> tuple[Requester | None, str | None]:
    """The requesting party, and why pushed claims were refused (None when fine or none pushed)."""
    if p.claim_token:
        if p.claim_token_format not in claims_mod.ACCEPTED_FORMATS:
            return None, "unsupported claim_token_format"
        try:
            return claims_mod.verify_id_token(agent, p.claim_token, ctx.client), None
        except claims_mod.ClaimsRejected as exc:
            return None, str(exc)
    if p.pct:
        return claims_mod.open_pct(agent, p.pct, ctx.client), None
    return None, None


ONLY_THE_PERSON = "only the person these records are about can decide on this request"


def grant_uma_ticket(agent: Agent, ctx: TokenContext) -> HttpResponse:
    p = parse(ctx.form)
    ticket = tickets.redeem(agent, p.ticket)
    if ticket is None:
        raise InvalidGrant("the ticket is unknown, used or expired")
    moved = agent.state.moved_to(ticket.profile)
    if moved is not None:
        raise InvalidGrant("these records have moved to another authorization server; ask the resource server "
                           "again", extra={"as_uri": moved})
    permissions = requested_permissions(agent, ctx.client, ticket, p.scopes)
    requester, refused_claims = who_asks(agent, ctx, p)
    item = inbox.get(agent, ticket.inbox_id) if ticket.inbox_id else None
    if item is not None and (item.get("client") or {}).get("client_id") != ctx.client.client_id:
        # the waiting request holds what *its* client proved (§5.2): another client gets nothing of it
        raise InvalidGrant("the ticket was issued to another client")
    if item is not None and requester is None and item.get("requester"):
        requester = Requester.from_dict(item["requester"])
    purpose = claims_mod.purpose_of(requester) or (item or {}).get("purpose")
    care = guardian.of(agent, ticket.profile)
    if care is not None:
        guardian.notice_end(agent, care)
        if item is not None and item["status"] == "withheld":
            raise RequestDenied(ONLY_THE_PERSON)
        permissions, withheld = guardian.split(agent, care, permissions)
        if withheld and item is not None:  # a label that came after the request: out of the guardian's hands
            inbox.mark_withheld(agent, item, "excluded")
            raise RequestDenied(ONLY_THE_PERSON)
        if withheld:
            inbox.withhold(agent, ticket, AccessRequest(ticket.profile, ctx.client.client_id, withheld, requester,
                                                        purpose), ctx.client, "excluded")
        if not permissions:
            raise RequestDenied(ONLY_THE_PERSON)
    request = AccessRequest(ticket.profile, ctx.client.client_id, permissions, requester, purpose)
    decision = evaluate(agent.state.shares(ticket.profile), request, agent.clock())

    if decision.denied_before or (item is not None and item["status"] == "denied"):
        agent.audit.append("request_denied", client_id=ctx.client.client_id, inbox_id=ticket.inbox_id,
                           reasons=[r.code for r in decision.reasons])
        raise RequestDenied()
    if decision.granted:
        return _rpt(agent, ctx, p, ticket, request, decision)
    if item is not None and item["status"] == "approved":
        raise RequestDenied("the share made for this request has ended")
    if refused_claims or (decision.need_claims and requester is None):
        raise _need_info(agent, ticket, decision, refused_claims)
    if item is None and care is not None and care.ended(agent.clock()):
        inbox.withhold(agent, ticket, request, ctx.client, "guardianship_ended")
        raise RequestDenied(ONLY_THE_PERSON)
    if item is None:
        item = inbox.open_access_item(agent, ticket, request, ctx.client, decision)
    new_ticket = tickets.issue_pending(agent, item["id"])
    raise RequestSubmitted("the request waits for the owner", extra={
        "ticket": new_ticket, "interval": agent.settings.poll_interval})


def _need_info(agent: Agent, ticket: tickets.Ticket, decision: Decision, why: str | None) -> NeedInfo:
    hints = [{"claim_token_format": [claims_mod.ID_TOKEN_FORMAT], "claim_type": h.claim,
              "friendly_name": h.friendly_name, "name": h.claim,
              **({"issuer": [h.issuer]} if h.issuer else {})} for h in decision.need_claims]
    if not hints:
        issuers = [t["issuer"] for t in agent.state.all("trust")]
        hints = [{"claim_token_format": [claims_mod.ID_TOKEN_FORMAT], "claim_type": "sub",
                  "friendly_name": "Verified identity", "name": "sub", **({"issuer": issuers} if issuers else {})}]
    fresh = tickets.issue(agent, ticket)
    return NeedInfo(why, extra={"ticket": fresh, "required_claims": hints})


def _rpt(agent: Agent, ctx: TokenContext, p: GrantParams, ticket: tickets.Ticket, request: AccessRequest,
         decision: Decision) -> HttpResponse:
    party = party_of(request.requester, ctx.client.client_id)
    permissions, shares = decision.granted, decision.share_ids
    merged = upgrade.merge(agent, p.rpt, ctx.client.client_id, ticket.rs_client_id, party, permissions) if p.rpt \
        else None
    if merged is not None:
        permissions, shares = merged[0], tuple(sorted(set(merged[1]) | set(shares)))
    inbox.mark_once_shares_used(agent, decision.share_ids)
    act = guardian.act_claim(agent, decision.share_ids)
    body = issue_rpt(agent, RptRequest(ctx.client.client_id, ticket.rs_client_id, party, permissions, shares,
                                       ctx.proof.jkt if ctx.proof else None,
                                       "refresh_token" in ctx.client.grant_types, act))
    if merged is not None:
        body["upgraded"] = True
    if request.requester is not None and (p.claim_token or p.pct):
        body["pct"] = p.pct if p.pct and not p.claim_token else claims_mod.issue_pct(
            agent, ctx.client, request.requester)
    agent.audit.append("rpt_issued", client_id=ctx.client.client_id, rs_client_id=ticket.rs_client_id,
                       requester=party, permissions=[x.to_dict() for x in permissions],
                       share_ids=list(shares), purpose=request.purpose, inbox_id=ticket.inbox_id,
                       profile=ticket.profile, act=act)
    return json_response(body, no_store=True)
