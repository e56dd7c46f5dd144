"""The owner's operations: the inbox, Share and Deny, shares made ahead of time, revocation,
profiles, guardianships and hand-over, and trusted issuers. The CLI, the owner API and the app all
go through here.

Every decision is on disk (atomic file replace, fsynced audit entry) before the method returns, so
whatever the UI or CLI reports as done survives a crash.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from core import guardian, handover, jose
from core.agent import Agent
from core.config import ConfigError, check_public_url
from core.errors import OwnerError
from core.events import DECISION_MADE, SHARE_CHANGED
from core.fetch import FetchError
from core.model import Actor, Grantee, Permission, Share
from core.oauth import pat
from core.oauth.refresh import revoke_grant
from core.secrets_ import short_id
from core.state import OWNER_PROFILE
from core.uma.resources import resource_name


@dataclass(frozen=True)
class Lifetime:
    once: bool = False
    days: float | None = None
    until: int | None = None

    def expires_at(self, now: int) -> int | None:
        if sum(x is not None and x is not False for x in (self.once or None, self.days, self.until)) > 1:
            raise OwnerError("choose one of: once, days, until")
        if self.days is not None:
            if not 0 < self.days <= 36500:
                raise OwnerError("days must be a positive number")
            return now + int(self.days * 86400)
        if self.until is not None:
            if self.until <= now:
                raise OwnerError("that date is already past")
            return self.until
        return None


def parse_grantee(text: str) -> Grantee:
    """``email:ADDRESS``, ``sub:ISSUER#SUBJECT``, ``client:CLIENT_ID`` or ``class:ISSUER#CLAIM=VALUE``."""
    kind, _, rest = text.partition(":")
    if kind == "email" and re.fullmatch(r"[^@\s]+@[^@\s]+", rest):
        return Grantee("email", email=rest.lower())
    if kind == "sub" and "#" in rest:
        issuer, _, subject = rest.rpartition("#")
        if issuer and subject:
            return Grantee("person", issuer=issuer, subject=subject)
    if kind == "client" and rest:
        return Grantee("client", client_id=rest)
    if kind == "class" and "#" in rest and "=" in rest:
        issuer, _, cond = rest.rpartition("#")
        claim, _, value = cond.partition("=")
        if issuer and claim and value:
            return Grantee("class", issuer=issuer, claim=claim, value=value)
    raise OwnerError("grantee must be email:ADDRESS, sub:ISSUER#SUBJECT, client:CLIENT_ID "
                     "or class:ISSUER#CLAIM=VALUE")


@dataclass
class Owner:
    """Everything the owner of this agent decides and sees, for each profile they hold.

    The owner acts on their own profile as themselves, on a dependent's profile as its guardian
    (within the guardianship: :mod:`core.guardian`) and on another person's profile as their proxy.
    Every decision records who made it and for whom (``decided_by``, an :class:`~core.model.Actor`)
    on the inbox item, the share and the activity-log entry. Views take an optional ``profile`` (id
    or name) and never list what a guardian may not see: requests and resources in a category
    excluded from a guardianship, or profiles handed over to another agent.
    """

    agent: Agent
    actor: str = field(default="owner")

    # reading ---------------------------------------------------------------------------------
    def inbox(self, profile: str | None = None) -> list[dict[str, Any]]:
        """Requests waiting for a decision, oldest first. Connect requests are listed under the
        owner's own profile; approving one may put the connection in another profile."""
        self._notice()
        now = self.agent.now()
        only = self._profile(profile)["id"] if profile else None
        hidden, away = guardian.hidden_resources(self.agent), self._handed_over()
        items = [i for i in self.agent.state.find("inbox", status="pending")
                 if not (i["kind"] == "connect" and int(i.get("expires_at") or now + 1) <= now)
                 and (only is None or i["profile"] == only) and i["profile"] not in away
                 and not any(p["resource_id"] in hidden for p in i.get("permissions") or ())]
        names = self._names()
        return [self._item_view(i, names) for i in sorted(items, key=lambda i: (i["created_at"], i["id"]))]

    def _item_view(self, i: dict[str, Any], names: dict[str, str] | None = None) -> dict[str, Any]:
        names = names if names is not None else self._names()
        client = i.get("client") or {}
        view: dict[str, Any] = {"id": i["id"], "kind": i["kind"], "profile": i["profile"],
                                "profile_name": names.get(i["profile"], i["profile"]),
                                "acting_as": self._role(i["profile"]),
                                "created_at": i["created_at"], "status": i["status"],
                                "decided_by": i.get("decided_by"),
                                "client": {"client_id": client.get("client_id"),
                                           "client_name": client.get("client_name"),
                                           "logo_uri": client.get("logo_uri"),
                                           "registration": client.get("registration")}}
        if i["kind"] == "access":
            r = i.get("requester")
            view["requester"] = None if not r else {
                "issuer": r["issuer"], "subject": r["subject"], "email": r.get("email"),
                "name": r.get("name"), "verified": bool(r.get("verified", True))}
            view["permissions"] = i["permissions"]
            view["purpose"] = i.get("purpose")
            approvals = [guardian.Approval.from_dict(a) for a in i.get("approvals") or ()]
            view["approvals"] = [{"by": a.by.to_dict(), "scopes": a.scopes and list(a.scopes),
                                  "expires_at": a.expires_at, "once": a.once, "at": a.at} for a in approvals]
            g = self._guardianship(i["profile"])
            waiting = guardian.missing_approvals(g.required(), approvals) if g else []
            view["waiting_for"] = [x.name for x in g.active_guardians() if x.id in waiting] if g else []
        else:
            view["flow"] = i.get("flow")
            view["scope"] = i.get("scope")
            view["user_code" if i.get("user_code") else "match_code"] = i.get("user_code") or i.get("match_code")
            view["reconnect"] = self._reconnect(client.get("client_id"))
        return view

    def _pending(self, item_id: str) -> dict[str, Any]:
        item = self.agent.state.get("inbox", "id", item_id)
        hidden = guardian.hidden_resources(self.agent) if item else set()
        if item is not None and item.get("withheld_reason") == "guardianship_ended":
            # the guardian saw this one in their inbox: tell them why it is out of their hands
            g = self._guardianship(item["profile"])
            raise OwnerError((g.refusal(self.agent.now(), "approve") if g else None)
                             or f"request {item_id} waits for the person it is about", status=403)
        if item is None or item["status"] == "withheld" or any(
                p["resource_id"] in hidden for p in item.get("permissions") or ()):
            raise OwnerError(f"no request {item_id!r} in the inbox", status=404)
        if item["status"] != "pending":
            raise OwnerError(f"request {item_id} was already {item['status']}", status=409)
        return item

    # deciding --------------------------------------------------------------------------------
    def approve(self, item_id: str, *, scopes: list[str] | None = None, lifetime: Lifetime | None = None,
                profile: str | None = None) -> dict[str, Any]:
        """Approve a request. An access request becomes a share (for a dependent whose guardianship
        needs both guardians, the first approval waits for the other: ``share`` is None and the
        item's ``waiting_for`` names them); a connect request lets the resource server connect to
        ``profile`` (default: the owner's own)."""
        agent, now = self.agent, self.agent.now()
        lifetime = lifetime or Lifetime()
        self._notice()
        with agent.state.locked():
            item = self._pending(item_id)
            if item["kind"] == "connect":
                prof = self._profile(profile or item["profile"])
                by = self._may(prof, "connect")
                agent.state.update("inbox", "id", item_id, {"status": "approved", "profile": prof["id"],
                                                            "decided_at": now, "decided_by": by.to_dict()})
                share = None
            else:
                if profile and self._profile(profile)["id"] != item["profile"]:
                    raise OwnerError("this request is for another profile's records")
                prof = self._profile(item["profile"])
                by = self._may(prof, "approve")
                self._check_scopes(item, scopes)
                approval = guardian.Approval(by, None if scopes is None else tuple(scopes),
                                             lifetime.expires_at(now), lifetime.once, now)
                share = self._add_approval(item, prof, approval)
        return self._approved(item, prof, by, share)

    def _approved(self, item: dict[str, Any], prof: dict[str, Any], by: Actor, share: Share | None) -> dict[str, Any]:
        agent = self.agent
        done = agent.state.get("inbox", "id", item["id"]) or item
        decided = done["status"] == "approved"
        self._log("request_approved" if decided else "request_approved_waiting", by, prof["id"],
                  inbox_id=item["id"], kind=item["kind"], share_id=share.id if share else None,
                  permissions=[p.to_dict() for p in share.permissions] if share else None,
                  expires_at=share.expires_at if share else None, purpose=item.get("purpose"))
        agent.events.publish(DECISION_MADE, {"id": item["id"], "decision": "approved" if decided else "waiting"})
        return {"item": self._item_view(done), "share": self._share_view(share) if share else None}

    def _add_approval(self, item: dict[str, Any], prof: dict[str, Any], approval: guardian.Approval) -> Share | None:
        """Record one guardian's (or the owner's) yes; make the share once every needed yes is in."""
        now = self.agent.now()
        g = guardian.Guardianship.of(prof)
        approvals = [a for a in (guardian.Approval.from_dict(d) for d in item.get("approvals") or ())
                     if a.by.id != approval.by.id] + [approval]
        stored = [a.to_dict() for a in approvals]
        if g is not None and guardian.missing_approvals(g.required(), approvals):
            self.agent.state.update("inbox", "id", item["id"], {"approvals": stored})
            return None
        scopes, expires_at, once = guardian.narrowest(approvals)
        if expires_at is not None and expires_at <= now:
            raise OwnerError("an approval's end date has passed; approve again with a later one")
        if scopes is not None and not scopes:
            raise OwnerError("the guardians approved no scope in common; one of them must approve again")
        share = self._share_for(item, scopes, expires_at, approval.once or once, now, approval.by)
        self.agent.state.put("shares", "id", share.to_dict())
        self.agent.state.update("inbox", "id", item["id"], {
            "status": "approved", "decided_at": now, "share_id": share.id, "decided_by": approval.by.to_dict(),
            "approvals": stored})
        return share

    def _check_scopes(self, item: dict[str, Any], scopes: list[str] | None) -> None:
        asked = {s for p in item["permissions"] for s in p["scopes"]}
        extra = sorted(set(scopes or ()) - asked)
        if extra:
            raise OwnerError(f"scope {extra[0]!r} was not asked for; asked: {', '.join(sorted(asked))}")

    def _share_for(self, item: dict[str, Any], scopes: list[str] | None, expires_at: int | None, once: bool,
                   now: int, by: Actor) -> Share:
        self._check_scopes(item, scopes)
        perms = tuple(Permission(p["resource_id"], tuple(s for s in p["scopes"] if scopes is None or s in scopes))
                      for p in item["permissions"])
        perms = tuple(p for p in perms if p.scopes or scopes is None)
        if not perms:
            raise OwnerError("nothing left to share with those scopes")
        r = item.get("requester")
        client_id = item["client"]["client_id"]
        grantee = Grantee("person", issuer=r["issuer"], subject=r["subject"], name=r.get("name")) if r else Grantee(
            "client", client_id=client_id)
        return Share(id=short_id("sh"), profile=item["profile"], permissions=perms, grantee=grantee,
                     created_at=now, expires_at=expires_at, once=once, origin="request",
                     purpose=item.get("purpose"), inbox_id=item["id"], client_id=client_id, decided_by=by)

    def deny(self, item_id: str, *, remember: bool = False) -> dict[str, Any]:
        """Deny a request (for a dependent, one guardian's no is final)."""
        self._notice()
        with self.agent.state.locked():
            item = self._pending(item_id)
            prof = self._profile(item["profile"])
            by = self._may(prof, "deny" if item["kind"] == "access" else "connect")
            rule = self._deny(item, by, remember)
        return self._denied(item, prof, by, rule)

    def _deny(self, item: dict[str, Any], by: Actor, remember: bool) -> Share | None:
        agent, now = self.agent, self.agent.now()
        rule = None
        if remember and item["kind"] == "access":
            r = item.get("requester")
            grantee = Grantee("person", issuer=r["issuer"], subject=r["subject"], name=r.get("name")) if r else Grantee(
                "client", client_id=item["client"]["client_id"])
            rule = Share(id=short_id("dn"), profile=item["profile"], effect="deny", created_at=now,
                         permissions=tuple(Permission(p["resource_id"], tuple(p["scopes"]))
                                           for p in item["permissions"]),
                         grantee=grantee, origin="request", inbox_id=item["id"], decided_by=by)
            agent.state.put("shares", "id", rule.to_dict())
        agent.state.update("inbox", "id", item["id"], {"status": "denied", "decided_at": now,
                                                       "decided_by": by.to_dict()})
        return rule

    def _denied(self, item: dict[str, Any], prof: dict[str, Any], by: Actor, rule: Share | None) -> dict[str, Any]:
        self._log("request_denied_by_owner", by, prof["id"], inbox_id=item["id"], kind=item["kind"],
                  remembered=rule is not None)
        self.agent.events.publish(DECISION_MADE, {"id": item["id"], "decision": "denied"})
        return {"item": self._item_view(self.agent.state.get("inbox", "id", item["id"]) or item),
                "rule": self._share_view(rule) if rule else None}

    # shares ----------------------------------------------------------------------------------
    def share(self, *, profile: str, resource_id: str, scopes: list[str], grantee: str,
              lifetime: Lifetime | None = None, purpose: str | None = None, name: str | None = None) -> dict[str, Any]:
        """Share ahead of time; ``name`` is how the owner knows the grantee, shown in the app and CLI."""
        agent, now = self.agent, self.agent.now()
        if name is not None:
            name = " ".join(name.split())
            if not name or len(name) > 80:
                raise OwnerError("a name needs 1 to 80 characters")
        self._notice()
        with agent.state.locked():  # the checks hold until the share is written (no end or hand-over between)
            prof = self._profile(profile)
            by = self._may(prof, "share")
            res = agent.state.get("resources", "_id", resource_id)
            if res is None or res["profile"] != prof["id"] or resource_id in guardian.hidden_resources(agent):
                raise OwnerError(f"no resource {resource_id!r} in profile {prof['name']}", status=404)
            known = res["description"]["resource_scopes"]
            bad = [s for s in scopes if s not in known]
            if bad or not scopes:
                raise OwnerError(f"scopes must be some of: {', '.join(known)}")
            lifetime = lifetime or Lifetime()
            share = Share(id=short_id("sh"), profile=prof["id"],
                          permissions=(Permission(resource_id, tuple(scopes)),),
                          grantee=replace(parse_grantee(grantee), name=name), created_at=now,
                          expires_at=lifetime.expires_at(now), once=lifetime.once, origin="ahead", purpose=purpose,
                          decided_by=by)
            agent.state.put("shares", "id", share.to_dict())
        self._log("share_created", by, prof["id"], share_id=share.id, grantee=share.grantee.describe(),
                  permissions=[p.to_dict() for p in share.permissions], expires_at=share.expires_at)
        agent.events.publish(SHARE_CHANGED, {"id": share.id, "change": "created", "profile": prof["id"]})
        return self._share_view(share)

    def shares(self, *, include_inactive: bool = False, profile: str | None = None) -> list[dict[str, Any]]:
        """Shares (and remembered denials), oldest first; ``include_inactive`` adds ended ones."""
        self._notice()
        now = self.agent.clock()
        only = self._profile(profile)["id"] if profile else None
        hidden, away = guardian.hidden_resources(self.agent), self._handed_over()
        out = [s for s in self.agent.state.shares(only) if (include_inactive or s.active(now))
               and s.profile not in away and not any(p.resource_id in hidden for p in s.permissions)]
        names = self._names()
        return [self._share_view(s, names) for s in sorted(out, key=lambda s: (s.created_at, s.id))]

    def _share_view(self, s: Share, names: dict[str, str] | None = None) -> dict[str, Any]:
        d = s.to_dict()
        d["profile_name"] = (names if names is not None else self._names()).get(s.profile, s.profile)
        d["grantee_text"] = s.grantee.describe()
        d["active"] = s.active(self.agent.clock())
        d["ends_at"] = s.ends_at()
        d["made_by_guardian"] = s.decided_by is not None and s.decided_by.role == "guardian"
        d["needs_review"] = guardian.needs_review(s)
        for p in d["permissions"]:
            p["resource_name"] = resource_name(self.agent, p["resource_id"])
        return d

    def revoke(self, share_id: str) -> dict[str, Any]:
        agent = self.agent
        self._notice()
        with agent.state.locked():
            share = agent.state.share(share_id)
            if share is None or any(p.resource_id in guardian.hidden_resources(agent) for p in share.permissions):
                raise OwnerError(f"no share {share_id!r}", status=404)
            prof = self._profile(share.profile)
            by = self._may(prof, "revoke")
            if share.revoked_at is None:
                agent.state.update("shares", "id", share_id, {"revoked_at": agent.now()})
        tokens = agent.registry.revoke_where(share_id=share_id)
        for grant_id in agent.registry.grants_backed_by(share_id):
            revoke_grant(agent, grant_id, reason="share_revoked")
        self._log("share_revoked", by, prof["id"], share_id=share_id, rpts=tokens,
                  reviewed=guardian.needs_review(share))
        agent.events.publish(SHARE_CHANGED, {"id": share_id, "change": "revoked", "profile": prof["id"]})
        return self._share_view(agent.state.share(share_id) or share)

    def shares_to_review(self, profile: str | None = None) -> list[dict[str, Any]]:
        """Shares someone made for a person who decides for themselves now (a guardianship ended,
        or the profile was handed over to them): each one is to be kept (:meth:`keep_share`) or
        revoked (:meth:`revoke`). Unreviewed, a share stops at its ``review_due``."""
        return [s for s in self.shares(profile=profile) if s["needs_review"]]

    def keep_share(self, share_id: str) -> dict[str, Any]:
        """Keep a share under review: it holds on as it was made, without the review deadline."""
        agent = self.agent
        with agent.state.locked():
            share = agent.state.share(share_id)
            if share is None or any(p.resource_id in guardian.hidden_resources(agent) for p in share.permissions):
                raise OwnerError(f"no share {share_id!r}", status=404)
            prof = self._profile(share.profile)
            by = self._may(prof, "revoke")
            if not guardian.needs_review(share):
                raise OwnerError(f"share {share_id} is not waiting for a review", status=409)
            if not share.active(agent.clock()):
                raise OwnerError(f"share {share_id} has ended already; share again instead", status=409)
            agent.state.update("shares", "id", share_id, {"review_due": None, "reviewed_at": agent.now()})
        self._log("share_kept", by, prof["id"], share_id=share_id)
        agent.events.publish(SHARE_CHANGED, {"id": share_id, "change": "kept", "profile": prof["id"]})
        return self._share_view(agent.state.share(share_id) or share)

    # profiles --------------------------------------------------------------------------------------
    def _profile(self, ref: str) -> dict[str, Any]:
        prof = self.agent.state.profile(ref)
        if prof is None:
            raise OwnerError(f"no profile {ref!r}", status=404)
        return prof

    def profiles(self) -> list[dict[str, Any]]:
        """Every profile with who the owner is for it (``acting_as``), its guardianship (for a
        dependent) and its status (``active``, or ``handed_over`` with ``moved_to``)."""
        self._notice()
        profiles = self.agent.state.all("profiles")
        return [self._profile_view(p) for p in sorted(profiles, key=lambda p: (p["kind"] != "owner",
                                                                                p["created_at"]))]

    def _profile_view(self, p: dict[str, Any]) -> dict[str, Any]:
        now = self.agent.now()
        view = {k: p.get(k) for k in ("id", "name", "kind", "created_at", "until", "exclude")}
        view["status"] = p.get("status") or "active"
        view["acting_as"] = self._role(p["id"], p)
        g = guardian.Guardianship.of(p)
        view["guardianship"] = g.view(now) if g else None
        if view["guardianship"]:
            me = {"name": guardian.owner_name(self.agent), "agent_id": self.agent.keys.agent_id,
                  "issuer": self.agent.issuer}
            view["guardianship"]["guardians"] = [x | me if x["id"] == guardian.LOCAL else x
                                                 for x in view["guardianship"]["guardians"]]
        if view["status"] == "handed_over":
            view["moved_to"] = (p.get("moved_to") or {}).get("issuer")
            view["handed_over_at"] = p.get("handed_over_at")
        return view

    def profile(self, ref: str) -> dict[str, Any]:
        """One profile in full: the list view plus what it holds and what waits for review."""
        self._notice()
        p = self._profile(ref)
        view = self._profile_view(p)
        if view["status"] != "handed_over":
            view["resources"] = len(self.resources(p["id"]))
            view["shares_active"] = len(self.shares(profile=p["id"]))
            view["pending"] = len(self.inbox(p["id"]))
            view["shares_to_review"] = self.shares_to_review(p["id"])
        view["acting"] = self.acting_for(p["id"])
        return view

    def acting_for(self, ref: str) -> dict[str, Any]:
        """What the app's banner says while the owner works in ``ref``: whom they act for, as what,
        and whether they may decide now (``reason`` says why not)."""
        p = self._profile(ref)
        role = self._role(p["id"], p)
        reason = None
        if p.get("status") == "handed_over":
            reason = f"{p['name']}'s profile was handed over to {(p.get('moved_to') or {}).get('issuer')}."
        elif (g := guardian.Guardianship.of(p)) is not None:
            reason = g.refusal(self.agent.now(), "approve")
        banner = None if role == "self" else f"Acting for {p['name']}" + (" as guardian" if role == "guardian" else "")
        return {"profile": p["id"], "name": p["name"], "role": role, "banner": banner,
                "can_decide": reason is None, "reason": reason}

    def add_profile(self, name: str, *, dependent: bool = False, until: int | None = None,
                    exclude: list[str] | None = None, covers: list[str] | None = None) -> dict[str, Any]:
        """Add a profile: a dependent (this agent's owner is their guardian until ``until``, kept out
        of ``exclude`` categories, for the ``covers`` kinds of decision) or another person."""
        agent, now = self.agent, self.agent.now()
        name = name.strip()
        if not name or len(name) > 80:
            raise OwnerError("a profile needs a name of 1 to 80 characters")
        if not dependent and (until is not None or exclude or covers):
            raise OwnerError("an end date, exclusions and covered decisions belong to a dependent's profile")
        if agent.state.profile(name):
            raise OwnerError(f"a profile called {name!r} exists already", status=409)
        base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "profile"
        if base in ("import", "history"):  # owner API paths beside /v1/profiles/{id}
            base += "-profile"
        pid, n = base, 2
        while agent.state.get("profiles", "id", pid):
            pid, n = f"{base}-{n}", n + 1
        prof: dict[str, Any] = {"id": pid, "name": name, "kind": "dependent" if dependent else "person",
                                "created_at": now, "until": None, "exclude": [], "status": "active"}
        g = None
        if dependent:
            g = guardian.new_guardianship(pid, name, now, owner_name=guardian.owner_name(agent), until=until,
                                          exclude=exclude or (), covers=covers)
            prof.update(g.stored())
        agent.state.put("profiles", "id", prof)
        agent.audit.append("profile_added", durable=True, profile=pid, actor=self.actor, dependent=dependent,
                           **({"until": g.until, "exclude": list(g.exclude), "covers": list(g.covers)} if g else {}))
        return self._profile_view(prof)

    def rename_profile(self, profile: str, name: str) -> dict[str, Any]:
        """Give a profile another name (the owner's own name is what guardians' decisions show)."""
        name = name.strip()
        if not name or len(name) > 80:
            raise OwnerError("a profile needs a name of 1 to 80 characters")
        with self.agent.state.locked():
            prof = self._profile(profile)
            other = self.agent.state.profile(name)
            if other is not None and other["id"] != prof["id"]:
                raise OwnerError(f"a profile called {name!r} exists already", status=409)
            self.agent.state.update("profiles", "id", prof["id"], {"name": name})
        self.agent.audit.append("profile_renamed", durable=True, actor=self.actor, profile=prof["id"], name=name)
        return self._profile_view(self._profile(prof["id"]))

    def update_guardianship(self, profile: str, *, until: int | None = None, exclude: list[str] | None = None,
                            covers: list[str] | None = None, require: str | None = None) -> dict[str, Any]:
        """Narrow a guardianship: an earlier end, more excluded categories, fewer kinds of decision,
        and whether one guardian's approval is enough or both are needed. Nothing here widens a
        guardian's reach over the dependent (a later end, fewer exclusions, more kinds): the agent
        cannot check the dependent agreed to that."""
        agent, now = self.agent, self.agent.now()
        with agent.state.locked():
            prof = self._profile(profile)
            g = self._guardianship_to_change(prof)
            changes: dict[str, Any] = {}
            if until is not None:
                end = g.ends_at()
                if until <= now:
                    raise OwnerError("that date is already past; to end the guardianship now, end it")
                if end is not None and until > end:
                    raise OwnerError(f"a guardianship can end earlier, never later (it ends on {guardian.day(end)})")
                changes["until"] = until
            if exclude:
                changes["exclude"] = tuple(dict.fromkeys([*g.exclude, *(guardian.exclusion_rule(c) for c in exclude)]))
            if covers is not None:
                narrower = guardian.check_covers(covers)
                if set(narrower) - set(g.covers):
                    raise OwnerError(f"a guardianship can cover fewer kinds of decision, never more "
                                     f"(it covers: {', '.join(g.covers)})")
                changes["covers"] = narrower
            if require is not None:
                if require not in ("one", "both"):
                    raise OwnerError("require is one or both")
                if require == "both" and len(g.active_guardians()) < 2:
                    raise OwnerError("add the other guardian first; both needs two guardians")
                changes["require"] = require
            if not changes:
                raise OwnerError("nothing to change")
            g = replace(g, **changes)
            guardian.save(agent, g)
        self._log("guardianship_changed", guardian.actor(agent, prof), prof["id"],
                  **{k: list(v) if isinstance(v, tuple) else v for k, v in changes.items()})
        agent.events.publish(guardian.PROFILE_CHANGED, {"profile": prof["id"], "change": "guardianship"})
        return self._profile_view(self._profile(prof["id"]))

    def end_guardianship(self, profile: str) -> dict[str, Any]:
        """End a guardianship now: no guardian may act for the dependent any more, requests waiting
        for a guardian are withheld for the dependent, and the guardians' shares await the
        dependent's review (they keep working until then, at most :data:`~core.guardian.REVIEW_DAYS`)."""
        agent, now = self.agent, self.agent.now()
        with agent.state.locked():
            prof = self._profile(profile)
            g = self._guardianship_to_change(prof)
            guardian.save(agent, replace(g, ended_at=now))
        self._log("guardianship_ended_by_guardian", guardian.actor(agent, prof), prof["id"], ended_at=now)
        ended = guardian.notice_end(agent, replace(g, ended_at=now))
        view = self.profile(prof["id"])
        view["shares_to_review"] = [s for s in view.get("shares_to_review") or ()
                                    if ended and s["id"] in ended.shares_to_review]
        return view

    def _guardianship_to_change(self, prof: dict[str, Any]) -> guardian.Guardianship:
        g = guardian.Guardianship.of(prof)
        if g is None:
            raise OwnerError(f"{prof['name']} is not a dependent in your care on this agent")
        reason = g.refusal(self.agent.now(), "share") if g.ended(self.agent.now()) or g.guardian(
            guardian.LOCAL) is None else None
        if reason:
            raise OwnerError(reason, status=403)
        return g

    def add_guardian(self, profile: str, *, name: str, agent_id: str, issuer: str | None = None) -> dict[str, Any]:
        """Add the other guardian, who decides on their own agent (named by its agent id): their
        decisions arrive signed by that agent (:meth:`accept_decision`)."""
        agent, now = self.agent, self.agent.now()
        name = name.strip()
        if not name or len(name) > 80:
            raise OwnerError("the guardian needs a name of 1 to 80 characters")
        agent_id = guardian.check_agent_id(agent_id)
        if agent_id == agent.keys.agent_id:
            raise OwnerError("that is this agent; give the other guardian's agent id")
        if issuer is not None:
            try:
                check_public_url(issuer)
            except ConfigError as exc:
                raise OwnerError(f"the guardian's agent must be an https URL: {exc}") from None
        with agent.state.locked():
            prof = self._profile(profile)
            g = self._guardianship_to_change(prof)
            gid = f"agent:{agent_id}"
            if g.guardian(gid) is not None:
                raise OwnerError(f"{name} is a guardian of {g.name} already", status=409)
            others = tuple(x for x in g.guardians if x.id != gid)
            guardian.save(agent, replace(g, guardians=(*others, guardian.Guardian(gid, name, now, agent_id,
                                                                                   issuer and issuer.rstrip("/")))))
        self._log("guardian_added", guardian.actor(agent, prof), prof["id"], guardian=gid, name=name, issuer=issuer)
        agent.events.publish(guardian.PROFILE_CHANGED, {"profile": prof["id"], "change": "guardian_added"})
        return self._profile_view(self._profile(prof["id"]))

    def remove_guardian(self, profile: str, guardian_id: str) -> dict[str, Any]:
        """Remove the other guardian (the guardianship falls back to one guardian's approval)."""
        agent = self.agent
        with agent.state.locked():
            prof = self._profile(profile)
            g = self._guardianship_to_change(prof)
            if guardian_id == guardian.LOCAL or g.guardian(guardian_id) is None:
                raise OwnerError(f"{guardian_id!r} is not another guardian of {g.name}", status=404)
            kept = tuple(replace(x, status="removed") if x.id == guardian_id else x for x in g.guardians)
            guardian.save(agent, replace(g, guardians=kept, require="one"))
        self._log("guardian_removed", guardian.actor(agent, prof), prof["id"], guardian=guardian_id)
        return self._profile_view(self._profile(prof["id"]))

    # a co-guardian's decisions ----------------------------------------------------------------------
    def decision_request(self, item_id: str) -> dict[str, Any]:
        """A request in a dependent's inbox, signed by this agent, for the other guardian to decide
        on their own agent (:meth:`sign_decision` there, then :meth:`accept_decision` here)."""
        item = self._pending(item_id)
        prof = self._profile(item["profile"])
        g = guardian.Guardianship.of(prof)
        if item["kind"] != "access" or g is None or len(g.active_guardians()) < 2:
            raise OwnerError("only a request for a dependent with two guardians goes to the other guardian")
        self._may(prof, "approve")
        others = [x.name for x in g.active_guardians() if not x.local]
        return {"request": guardian.decision_request(self.agent, item, g), "item": self._item_view(item),
                "for": others}

    def sign_decision(self, request: str, *, approve: bool, scopes: list[str] | None = None,
                      lifetime: Lifetime | None = None) -> dict[str, Any]:
        """On the other guardian's agent: answer a decision request with a decision signed by this
        agent's identity key. It only counts on the agent that asked, and only if that agent lists
        this one as a guardian of the profile."""
        now = self.agent.now()
        payload = guardian.read_decision_request(request, now)
        lifetime = lifetime or Lifetime()
        decision = guardian.sign_decision(self.agent, payload, approve=approve, scopes=scopes,
                                          expires_at=lifetime.expires_at(now) if approve else None,
                                          once=lifetime.once)
        self.agent.audit.append("guardian_decision_signed", durable=True, actor=self.actor,
                                for_agent=payload["issuer"], inbox_id=payload["item"],
                                decision="approve" if approve else "deny", scopes=scopes)
        shown = {k: payload.get(k) for k in ("issuer", "iss", "item", "profile_name", "client", "requester",
                                             "permissions", "purpose", "approvals")}
        return {"decision": decision, "request": shown, "approve": approve}

    def accept_decision(self, decision: str) -> dict[str, Any]:
        """Apply the other guardian's signed decision to the request it names: a yes counts as
        their approval (with "both", the share is made once both said yes), a no denies it."""
        agent, now = self.agent, self.agent.now()
        self._notice()
        with agent.state.locked():
            prof, g, who, payload = guardian.read_decision(agent, decision)
            item = self._pending(str(payload["item"]))
            kind = "approve" if payload["decision"] == "approve" else "deny"
            reason = g.refusal(now, kind, who.id)
            if reason:
                raise OwnerError(reason.replace("Your guardianship", f"{who.name}'s guardianship"), status=403)
            by = guardian.actor(agent, prof, who)
            if kind == "deny":
                rule = self._deny(item, by, False)
            else:
                scopes = payload.get("scopes")
                self._check_scopes(item, scopes)
                expires_at = payload.get("expires_at")
                share = self._add_approval(item, prof, guardian.Approval(
                    by, None if scopes is None else tuple(scopes),
                    expires_at if isinstance(expires_at, int) else None, bool(payload.get("once")), now, "signed"))
        if kind == "deny":
            return self._denied(item, prof, by, rule)
        return self._approved(item, prof, by, share)

    # hand-over --------------------------------------------------------------------------------------
    def handover_export(self, profile: str, *, to: str, passphrase: str) -> dict[str, Any]:
        """Hand a profile over to the person's own agent (its issuer ``to``): returns the encrypted
        bundle (``bundle``, JSON text) to give them with its passphrase. From now on this agent no
        longer answers for the profile (resource servers are sent to ``to``). Exporting again (a
        lost bundle) gives a new bundle of the same data."""
        agent = self.agent
        with agent.state.locked():  # nothing decided between gathering and retiring may be left behind
            prof = self._profile(profile)
            if prof["kind"] == "owner":
                raise OwnerError("your own profile moves with a key backup (consent-agent restore), not a hand-over")
            g = guardian.Guardianship.of(prof)
            if g is not None and g.guardian(guardian.LOCAL) is None:
                raise OwnerError(f"You are not a guardian of {prof['name']}.", status=403)
            hidden = guardian.excluded_resources(agent, g) if g else set()
            blob, summary = handover.export(agent, prof, to=to, passphrase=passphrase)
            retired = handover.retire(agent, prof, to=summary["to"], bundle_id=summary["id"])
        # the bundle carries the excluded records too; the guardian's summary counts only what they may see
        summary["resources"] -= len(hidden)
        summary["shares"] -= sum(any(p.resource_id in hidden for p in s.permissions)
                                 for s in agent.state.shares(prof["id"]))
        by = guardian.actor(agent, prof)
        self._log("profile_handed_over", by, prof["id"], to=summary["to"], bundle=summary["id"],
                  connections=retired["connections"], shares=retired["shares"], requests=retired["requests"])
        agent.events.publish(guardian.PROFILE_CHANGED, {"profile": prof["id"], "change": "handed_over"})
        steps = (f"Give {prof['name']} the bundle and its passphrase (separately). On their agent: "
                 f"consent-agent profiles import FILE. Then approve each record source that reconnects there.")
        return {**summary, "bundle": blob.decode("utf-8"), "next": steps}

    def handover_import(self, bundle: str | bytes, *, passphrase: str) -> dict[str, Any]:
        """Take over a profile handed over by a guardian: its resources, client registrations and
        shares join this agent's own profile; each record source must reconnect (approve it in the
        inbox, marked ``reconnect``) and the guardian's shares await review."""
        opened = handover.open_bundle(bundle, passphrase)
        summary = handover.install(self.agent, opened)
        summary["shares_to_review"] = [self._share_view(s) for s in self.agent.state.shares(OWNER_PROFILE)
                                       if s.id in summary["shares_to_review"]]
        return summary

    def history(self) -> list[dict[str, Any]]:
        """Profiles imported from a guardian's agent: where from, and their requests and log there."""
        return [{k: h.get(k) for k in ("id", "imported_at", "from", "profile", "reconnect", "requests", "log")}
                for h in self.agent.state.all("handovers") if h.get("direction") == "in"]

    # trust, records, connections ------------------------------------------------------------------
    def trust_add(self, issuer: str, *, jwks: dict[str, Any] | None = None, jwks_uri: str | None = None,
                  name: str | None = None) -> dict[str, Any]:
        try:
            check_public_url(issuer)
        except ConfigError as exc:
            raise OwnerError(f"issuer must be an https URL: {exc}") from exc
        if (jwks is None) == (jwks_uri is None):
            raise OwnerError("give the issuer's keys as a JWKS file or a jwks_uri")
        if jwks_uri is not None:
            try:
                jwks = self.agent.fetch(jwks_uri)
            except FetchError as exc:
                raise OwnerError(str(exc)) from exc
        keys = jwks.get("keys") if isinstance(jwks, dict) else None
        if not isinstance(keys, list) or not keys or any(not isinstance(k, dict) for k in keys):
            raise OwnerError("that is not a JWK Set with keys")
        if any(jose.PRIVATE_JWK_MEMBERS & set(k) for k in keys):
            raise OwnerError("the JWK Set holds private keys; give the public keys only")
        rec = {"issuer": issuer, "name": name or issuer, "jwks": {"keys": keys}, "jwks_uri": jwks_uri,
               "added_at": self.agent.now()}
        self.agent.state.put("trust", "issuer", rec)
        self.agent.audit.append("issuer_trusted", durable=True, issuer=issuer, actor=self.actor)
        return {k: rec[k] for k in ("issuer", "name", "jwks_uri", "added_at")} | {"keys": len(keys)}

    def trust_list(self) -> list[dict[str, Any]]:
        return [{"issuer": t["issuer"], "name": t["name"], "jwks_uri": t.get("jwks_uri"),
                 "keys": len(t["jwks"]["keys"]), "added_at": t["added_at"]} for t in self.agent.state.all("trust")]

    def audit(self, limit: int = 50, profile: str | None = None) -> list[dict[str, Any]]:
        """The newest ``limit`` activity entries, oldest first (with ``profile``: those naming it or
        one of its resources, shares, requests or connections); never an entry about something a
        guardian may not see (it is kept, and moves with the profile at hand-over)."""
        limit = max(1, min(limit, 10_000))
        hidden = guardian.hidden_resources(self.agent)
        confidential = {p["id"] for p in self.agent.state.all("profiles") if guardian.Guardianship.of(p)}
        only = self._profile(profile)["id"] if profile else None
        if not hidden and not confidential and only is None:
            return self.agent.audit.tail(limit)
        ids = handover.ids_of(self.agent, only) if only else set()

        def shown(e: dict[str, Any]) -> bool:
            if e.get("confidential_to") in confidential or e.get("resource_id") in hidden:
                return False
            named = [p.get("resource_id") for p in e.get("permissions") or () if isinstance(p, dict)]
            if any(r in hidden for r in named):
                return False
            return only is None or handover.concerns(e, only, ids)

        window = limit
        while True:  # read further back only as far as filtering makes necessary
            entries = self.agent.audit.tail(window)
            kept = [e for e in entries if shown(e)]
            if len(kept) >= limit or len(entries) < window or window >= 10_000:
                return kept[-limit:]
            window = min(window * 4, 10_000)

    def resources(self, profile: str | None = None) -> list[dict[str, Any]]:
        only = self._profile(profile)["id"] if profile else None
        hidden, away, names = guardian.hidden_resources(self.agent), self._handed_over(), self._names()
        out = []
        for r in self.agent.state.all("resources"):
            if r["_id"] in hidden or r["profile"] in away or (only is not None and r["profile"] != only):
                continue
            client = self.agent.client(r["client_id"])
            out.append({"_id": r["_id"], "profile": r["profile"], "profile_name": names.get(r["profile"]),
                        "client_id": r["client_id"], "client_name": client.name if client else r["client_id"],
                        **r["description"]})
        return out

    def connections(self, profile: str | None = None) -> list[dict[str, Any]]:
        only = self._profile(profile)["id"] if profile else None
        return [{k: c.get(k) for k in ("id", "client_id", "profile", "scope", "status", "created_at")}
                for c in self.agent.state.all("connections") if only is None or c["profile"] == only]

    def disconnect(self, connection_id: str) -> dict[str, Any]:
        with self.agent.state.locked():  # the guardianship check and the write, as one
            connection = self.agent.state.get("connections", "id", connection_id)
            if connection is None:
                raise OwnerError(f"no connection {connection_id!r}", status=404)
            prof = self._profile(connection["profile"])
            by = self._may(prof, "connect")
            pat.disconnect(self.agent, connection_id)
        self._log("rs_disconnected", by, prof["id"], connection_id=connection_id)
        return {"id": connection_id, "status": "revoked"}

    def notices(self) -> list[dict[str, Any]]:
        """What the owner should be told: guardianships that ended, shares waiting for review."""
        self._notice()
        now, out = self.agent.now(), []
        for p in self.agent.state.all("profiles"):
            g = guardian.Guardianship.of(p)
            if g is not None and g.ended(now):
                out.append({"kind": guardian.GUARDIANSHIP_ENDED, "profile": p["id"], "name": p["name"],
                            "message": g.view(now)["message"]})
        mine = [s for s in self.agent.state.shares(OWNER_PROFILE) if guardian.needs_review(s)]
        if mine:
            out.append({"kind": "shares_to_review", "profile": OWNER_PROFILE, "count": len(mine),
                        "message": f"{len(mine)} share{'s' if len(mine) != 1 else ''} made for you by a guardian "
                                   "wait for you to keep or stop them."})
        return out

    def status(self) -> dict[str, Any]:
        a = self.agent
        protection = a.keys.protection
        check = a.audit.verify()
        warnings = ["private keys are stored in plaintext (development mode)"] if protection == "plaintext" else []
        if not check.ok:
            warnings.append(f"the activity log fails its hash check at entry {check.first_bad_seq}")
        return {"issuer": a.issuer, "agent_id": a.keys.agent_id, "key_protection": protection,
                "warnings": warnings, "pending": len(self.inbox()),
                "shares_active": len(self.shares()),  # counts as the views list: never what a guardian may not see
                "profiles": len(a.state.all("profiles")), "clients": len(a.state.all("clients")),
                "resources": len(self.resources()), "audit_ok": check.ok, "notices": self.notices()}

    # who acts, and the log -----------------------------------------------------------------------
    def _may(self, prof: dict[str, Any], kind: str) -> Actor:
        """Who the owner is for ``prof`` when deciding ``kind``; OwnerError (403) when they may not."""
        if prof.get("status") == "handed_over":
            raise OwnerError(f"{prof['name']}'s profile was handed over to "
                             f"{(prof.get('moved_to') or {}).get('issuer')}; it is decided there now", status=409)
        g = guardian.Guardianship.of(prof)
        if g is not None:
            reason = g.refusal(self.agent.now(), kind)
            if reason:
                raise OwnerError(reason, status=403)
        return guardian.actor(self.agent, prof)

    def _role(self, profile_id: str, prof: dict[str, Any] | None = None) -> str:
        prof = prof or self.agent.state.get("profiles", "id", profile_id) or {"id": profile_id, "kind": "person"}
        return guardian.actor(self.agent, prof).role

    def _guardianship(self, profile_id: str) -> guardian.Guardianship | None:
        return guardian.of(self.agent, profile_id)

    def _names(self) -> dict[str, str]:
        return {p["id"]: str(p.get("name") or p["id"]) for p in self.agent.state.all("profiles")}

    def _handed_over(self) -> set[str]:
        return {p["id"] for p in self.agent.state.all("profiles") if p.get("status") == "handed_over"}

    def _reconnect(self, client_id: str | None) -> dict[str, Any] | None:
        """For a connect request: the hand-over that brought this client's records here, if any."""
        for h in self.agent.state.all("handovers"):
            if h.get("direction") == "in" and client_id in (h.get("reconnect") or ()):
                return {"bundle": h["id"], "from": (h.get("from") or {}).get("issuer"),
                        "name": (h.get("profile") or {}).get("name")}
        return None

    def _notice(self) -> None:
        """Act on guardianships that ended since the last look (tells the guardian: an event)."""
        guardian.notice_ends(self.agent)

    def _log(self, event: str, by: Actor, profile: str, **fields: Any) -> None:
        """An owner decision in the activity log: for which profile, who decided, for whom."""
        self.agent.audit.append(event, durable=True, actor=self.actor, profile=profile,
                                decided_by={k: v for k, v in by.to_dict().items() if v is not None},
                                on_behalf_of=by.on_behalf_of, **fields)
