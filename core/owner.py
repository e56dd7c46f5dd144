"""The owner's operations: the inbox, Share and Deny, shares made ahead of time, revocation,
profiles and trusted issuers. The CLI, the owner API and the app all go through here.

Every decision is on disk (atomic file replace, fsynced audit entry) before the method returns, so
whatever the UI or CLI reports as done survives a crash.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from core import jose
from core.agent import Agent
from core.config import ConfigError, check_public_url
from core.errors import OwnerError
from core.events import DECISION_MADE, SHARE_CHANGED
from core.fetch import FetchError
from core.model import Grantee, Permission, Share
from core.oauth import pat
from core.oauth.refresh import revoke_grant
from core.secrets_ import short_id
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
    agent: Agent
    actor: str = field(default="owner")

    # reading ---------------------------------------------------------------------------------
    def inbox(self) -> list[dict[str, Any]]:
        now = self.agent.now()
        items = [i for i in self.agent.state.find("inbox", status="pending")
                 if not (i["kind"] == "connect" and int(i.get("expires_at") or now + 1) <= now)]
        return [self._item_view(i) for i in sorted(items, key=lambda i: (i["created_at"], i["id"]))]

    def _item_view(self, i: dict[str, Any]) -> dict[str, Any]:
        client = i.get("client") or {}
        view: dict[str, Any] = {"id": i["id"], "kind": i["kind"], "profile": i["profile"],
                                "created_at": i["created_at"], "status": i["status"],
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
        else:
            view["flow"] = i.get("flow")
            view["scope"] = i.get("scope")
            view["user_code" if i.get("user_code") else "match_code"] = i.get("user_code") or i.get("match_code")
        return view

    def _pending(self, item_id: str) -> dict[str, Any]:
        item = self.agent.state.get("inbox", "id", item_id)
        if item is None:
            raise OwnerError(f"no request {item_id!r} in the inbox", status=404)
        if item["status"] != "pending":
            raise OwnerError(f"request {item_id} was already {item['status']}", status=409)
        return item

    # deciding --------------------------------------------------------------------------------
    def approve(self, item_id: str, *, scopes: list[str] | None = None, lifetime: Lifetime | None = None,
                profile: str | None = None) -> dict[str, Any]:
        agent, now = self.agent, self.agent.now()
        lifetime = lifetime or Lifetime()
        with agent.state.locked():
            item = self._pending(item_id)
            if item["kind"] == "connect":
                prof = self._profile(profile or item["profile"])
                agent.state.update("inbox", "id", item_id, {"status": "approved", "profile": prof["id"],
                                                            "decided_at": now})
                share = None
            else:
                if profile and self._profile(profile)["id"] != item["profile"]:
                    raise OwnerError("this request is for another profile's records")
                share = self._share_for(item, scopes, lifetime, now)
                agent.state.put("shares", "id", share.to_dict())
                agent.state.update("inbox", "id", item_id, {"status": "approved", "decided_at": now,
                                                            "share_id": share.id})
        agent.audit.append("request_approved", durable=True, inbox_id=item_id, actor=self.actor,
                           kind=item["kind"], share_id=share.id if share else None,
                           permissions=[p.to_dict() for p in share.permissions] if share else None,
                           expires_at=share.expires_at if share else None, purpose=item.get("purpose"))
        agent.events.publish(DECISION_MADE, {"id": item_id, "decision": "approved"})
        done = self.agent.state.get("inbox", "id", item_id) or item
        return {"item": self._item_view(done), "share": self._share_view(share) if share else None}

    def _share_for(self, item: dict[str, Any], scopes: list[str] | None, lifetime: Lifetime, now: int) -> Share:
        asked = {s for p in item["permissions"] for s in p["scopes"]}
        if scopes is not None:
            extra = sorted(set(scopes) - asked)
            if extra:
                raise OwnerError(f"scope {extra[0]!r} was not asked for; asked: {', '.join(sorted(asked))}")
        perms = tuple(Permission(p["resource_id"], tuple(s for s in p["scopes"] if scopes is None or s in scopes))
                      for p in item["permissions"])
        perms = tuple(p for p in perms if p.scopes or scopes is None)
        if not perms:
            raise OwnerError("nothing left to share with those scopes")
        r = item.get("requester")
        client_id = item["client"]["client_id"]
        grantee = Grantee("person", issuer=r["issuer"], subject=r["subject"]) if r else Grantee(
            "client", client_id=client_id)
        return Share(id=short_id("sh"), profile=item["profile"], permissions=perms, grantee=grantee,
                     created_at=now, expires_at=lifetime.expires_at(now), once=lifetime.once, origin="request",
                     purpose=item.get("purpose"), inbox_id=item["id"], client_id=client_id)

    def deny(self, item_id: str, *, remember: bool = False) -> dict[str, Any]:
        agent, now = self.agent, self.agent.now()
        with agent.state.locked():
            item = self._pending(item_id)
            rule = None
            if remember and item["kind"] == "access":
                r = item.get("requester")
                grantee = Grantee("person", issuer=r["issuer"], subject=r["subject"]) if r else Grantee(
                    "client", client_id=item["client"]["client_id"])
                rule = Share(id=short_id("dn"), profile=item["profile"], effect="deny", created_at=now,
                             permissions=tuple(Permission(p["resource_id"], tuple(p["scopes"]))
                                               for p in item["permissions"]),
                             grantee=grantee, origin="request", inbox_id=item_id)
                agent.state.put("shares", "id", rule.to_dict())
            agent.state.update("inbox", "id", item_id, {"status": "denied", "decided_at": now})
        agent.audit.append("request_denied_by_owner", durable=True, inbox_id=item_id, actor=self.actor,
                           kind=item["kind"], remembered=rule is not None)
        agent.events.publish(DECISION_MADE, {"id": item_id, "decision": "denied"})
        return {"item": self._item_view(agent.state.get("inbox", "id", item_id) or item),
                "rule": self._share_view(rule) if rule else None}

    # shares ----------------------------------------------------------------------------------
    def share(self, *, profile: str, resource_id: str, scopes: list[str], grantee: str,
              lifetime: Lifetime | None = None, purpose: str | None = None) -> dict[str, Any]:
        agent, now = self.agent, self.agent.now()
        prof = self._profile(profile)
        res = agent.state.get("resources", "_id", resource_id)
        if res is None or res["profile"] != prof["id"]:
            raise OwnerError(f"no resource {resource_id!r} in profile {prof['name']}", status=404)
        known = res["description"]["resource_scopes"]
        bad = [s for s in scopes if s not in known]
        if bad or not scopes:
            raise OwnerError(f"scopes must be some of: {', '.join(known)}")
        lifetime = lifetime or Lifetime()
        share = Share(id=short_id("sh"), profile=prof["id"], permissions=(Permission(resource_id, tuple(scopes)),),
                      grantee=parse_grantee(grantee), created_at=now, expires_at=lifetime.expires_at(now),
                      once=lifetime.once, origin="ahead", purpose=purpose)
        agent.state.put("shares", "id", share.to_dict())
        agent.audit.append("share_created", durable=True, share_id=share.id, actor=self.actor,
                           grantee=share.grantee.describe(), permissions=[p.to_dict() for p in share.permissions],
                           expires_at=share.expires_at, profile=prof["id"])
        agent.events.publish(SHARE_CHANGED, {"id": share.id, "change": "created"})
        return self._share_view(share)

    def shares(self, *, include_inactive: bool = False) -> list[dict[str, Any]]:
        now = self.agent.clock()
        out = [s for s in self.agent.state.shares() if include_inactive or s.active(now)]
        return [self._share_view(s) for s in sorted(out, key=lambda s: (s.created_at, s.id))]

    def _share_view(self, s: Share) -> dict[str, Any]:
        d = s.to_dict()
        d["grantee_text"] = s.grantee.describe()
        d["active"] = s.active(self.agent.clock())
        for p in d["permissions"]:
            p["resource_name"] = resource_name(self.agent, p["resource_id"])
        return d

    def revoke(self, share_id: str) -> dict[str, Any]:
        agent = self.agent
        share = agent.state.share(share_id)
        if share is None:
            raise OwnerError(f"no share {share_id!r}", status=404)
        if share.revoked_at is None:
            agent.state.update("shares", "id", share_id, {"revoked_at": agent.now()})
        tokens = agent.registry.revoke_where(share_id=share_id)
        for grant_id in agent.registry.grants_backed_by(share_id):
            revoke_grant(agent, grant_id, reason="share_revoked")
        agent.audit.append("share_revoked", durable=True, share_id=share_id, actor=self.actor, rpts=tokens)
        agent.events.publish(SHARE_CHANGED, {"id": share_id, "change": "revoked"})
        return self._share_view(agent.state.share(share_id) or share)

    # profiles, trust, records ------------------------------------------------------------------
    def _profile(self, ref: str) -> dict[str, Any]:
        prof = self.agent.state.profile(ref)
        if prof is None:
            raise OwnerError(f"no profile {ref!r}", status=404)
        return prof

    def profiles(self) -> list[dict[str, Any]]:
        return sorted(self.agent.state.all("profiles"), key=lambda p: (p["kind"] != "owner", p["created_at"]))

    def add_profile(self, name: str, *, dependent: bool = False, until: int | None = None,
                    exclude: list[str] | None = None) -> dict[str, Any]:
        name = name.strip()
        if not name or len(name) > 80:
            raise OwnerError("a profile needs a name of 1 to 80 characters")
        if self.agent.state.profile(name):
            raise OwnerError(f"a profile called {name!r} exists already", status=409)
        base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "profile"
        pid, n = base, 2
        while self.agent.state.get("profiles", "id", pid):
            pid, n = f"{base}-{n}", n + 1
        prof = {"id": pid, "name": name, "kind": "dependent" if dependent else "person",
                "created_at": self.agent.now(), "until": until, "exclude": list(exclude or [])}
        self.agent.state.put("profiles", "id", prof)
        self.agent.audit.append("profile_added", durable=True, profile=pid, actor=self.actor, dependent=dependent)
        return prof

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

    def audit(self, limit: int = 50) -> list[dict[str, Any]]:
        return self.agent.audit.tail(max(1, min(limit, 10_000)))

    def resources(self) -> list[dict[str, Any]]:
        out = []
        for r in self.agent.state.all("resources"):
            client = self.agent.client(r["client_id"])
            out.append({"_id": r["_id"], "profile": r["profile"], "client_id": r["client_id"],
                        "client_name": client.name if client else r["client_id"], **r["description"]})
        return out

    def connections(self) -> list[dict[str, Any]]:
        return [{k: c.get(k) for k in ("id", "client_id", "profile", "scope", "status", "created_at")}
                for c in self.agent.state.all("connections")]

    def disconnect(self, connection_id: str) -> dict[str, Any]:
        if self.agent.state.get("connections", "id", connection_id) is None:
            raise OwnerError(f"no connection {connection_id!r}", status=404)
        pat.disconnect(self.agent, connection_id)
        self.agent.audit.append("rs_disconnected", durable=True, connection_id=connection_id, actor=self.actor)
        return {"id": connection_id, "status": "revoked"}

    def status(self) -> dict[str, Any]:
        a = self.agent
        now = a.clock()
        protection = a.keys.protection
        check = a.audit.verify()
        warnings = ["private keys are stored in plaintext (development mode)"] if protection == "plaintext" else []
        if not check.ok:
            warnings.append(f"the activity log fails its hash check at entry {check.first_bad_seq}")
        return {"issuer": a.issuer, "agent_id": a.keys.agent_id, "key_protection": protection,
                "warnings": warnings, "pending": len(self.inbox()),
                "shares_active": sum(s.active(now) for s in a.state.shares()),
                "profiles": len(a.state.all("profiles")), "clients": len(a.state.all("clients")),
                "resources": len(a.state.all("resources")), "audit_ok": check.ok}
