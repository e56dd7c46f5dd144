"""Hand-over: a dependent's profile moves to the dependent's own agent.

**Export** (on the guardian's agent, :func:`export`) gathers everything of one profile: the profile
and its guardianship, its resources (registration metadata only: the agent never holds records),
the client registrations of the resource servers and requesting clients involved, its connections,
its shares, its requests and its part of the activity log. That content is signed by the source
agent's identity key (a JWS over its SHA-256, so the importer can tell which agent it came from)
and encrypted with AES-256-GCM under a key derived from a passphrase with scrypt (RFC 7914); the
cleartext header (source, destination, bundle id; never a name) is the GCM additional data.

The bundle is addressed to one agent (``to``, its issuer). The source agent then stops answering
for the profile: its PATs are revoked, its shares stop (their RPTs answer inactive at
introspection), and the protection API and token endpoint answer that profile's resource server
with ``as_uri`` naming the new agent (see ``docs/guardians.md``). Its data stays, inert, so a lost
bundle can be exported again.

**Import** (on the dependent's agent, :func:`install`) checks the bundle is for this agent, puts the
resources (same ids, so the resource server's ids keep working), client registrations and shares
into the owner's own profile, and keeps the requests and log as history. Each resource server must
connect again (a new PAT, after the dependent approves it); shares a guardian made await the
dependent's review.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from core import guardian
from core.config import ConfigError, check_public_url
from core.errors import OwnerError, ProtocolError
from core.jose import b64url
from core.keys import KeyStoreError, verify_identity_jws
from core.keystore import canonical_json, unb64url
from core.model import Share
from core.oauth import pat
from core.oauth.clients import Client
from core.oauth.refresh import revoke_grant
from core.secrets_ import short_id
from core.state import OWNER_PROFILE
from core.uma.resources import parse_description

if TYPE_CHECKING:
    from core.agent import Agent

FORMAT = 1
BUNDLE_TYPE = "consent-agent/profile-handover"
STATEMENT_TYP = "consent-handover+jwt"
MAX_BUNDLE = 32 * 1024 * 1024
MIN_PASSPHRASE = 8
SCRYPT_N, SCRYPT_R, SCRYPT_P, SALT_BYTES = 2**15, 8, 1, 16
_ID_FIELDS = ("inbox_id", "item_id", "share_id", "connection_id", "resource_id")
_ITEM_FIELDS = ("id", "kind", "profile", "status", "created_at", "decided_at", "client", "requester",
                "permissions", "purpose", "reasons", "share_id", "decided_by", "approvals", "withheld_reason",
                "flow", "scope")


@dataclass(frozen=True)
class Bundle:
    """An opened, verified bundle: its cleartext header and its content."""

    header: dict[str, Any]
    content: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.header["id"])


# --- export -----------------------------------------------------------------------------------------


def check_destination(agent: Agent, to: str) -> str:
    try:
        check_public_url(to)
    except ConfigError as exc:
        raise OwnerError(f"the dependent's agent must be an https URL (its issuer): {exc}") from None
    to = to.rstrip("/")
    if to == agent.issuer:
        raise OwnerError("that is this agent; give the issuer of the dependent's own agent")
    return to


def export(agent: Agent, profile: Mapping[str, Any], *, to: str, passphrase: str) -> tuple[bytes, dict[str, Any]]:
    """The encrypted bundle for ``profile``, addressed to the agent at ``to``, and a summary."""
    if len(passphrase) < MIN_PASSPHRASE:
        raise OwnerError(f"give the bundle a passphrase of at least {MIN_PASSPHRASE} characters")
    to = check_destination(agent, to)
    content = gather(agent, profile)
    blob, bundle_id = seal(agent, content, to=to, passphrase=passphrase)
    return blob, {"id": bundle_id, "profile": profile["id"], "name": profile.get("name"), "to": to,
                  "resources": len(content["resources"]), "shares": len(content["shares"]),
                  "connections": len(content["connections"]), "log": len(content["log"])}


def seal(agent: Agent, content: Mapping[str, Any], *, to: str, passphrase: str) -> tuple[bytes, str]:
    """Sign ``content`` with this agent's identity key and encrypt it for the agent at ``to``."""
    now = agent.now()
    bundle_id = short_id("ho")
    content = {**content, "bundle": bundle_id, "created_at": now, "to": to,
               "from": {"issuer": agent.issuer, "agent_id": agent.keys.agent_id,
                        "guardian": guardian.owner_name(agent)}}
    statement = agent.keys.sign_with_identity({
        "iss": agent.keys.agent_id, "issuer": agent.issuer, "to": to, "bundle": bundle_id, "iat": now,
        "content_sha256": _sha256(content)}, typ=STATEMENT_TYP)
    header = {"format": FORMAT, "type": BUNDLE_TYPE, "id": bundle_id, "from": agent.issuer,
              "from_agent_id": agent.keys.agent_id, "to": to, "created_at": now}
    return _seal(header, passphrase, {"statement": statement, "content": content}), bundle_id


def gather(agent: Agent, profile: Mapping[str, Any]) -> dict[str, Any]:
    """Everything of one profile that moves, as it was before the hand-over."""
    pid = str(profile["id"])
    resources = [_plain(r) for r in agent.state.find("resources", profile=pid)]
    shares = [_as_before(s) for s in agent.state.find("shares", profile=pid)]
    items = [{k: i.get(k) for k in _ITEM_FIELDS if k in i} | (
        {"status": "handed_over"} if i.get("status") == "pending" else {})  # the hand-over closes them
        for i in agent.state.find("inbox", profile=pid)]
    retired = set((profile.get("moved_to") or {}).get("connections") or ())
    connections = [{"client_id": c["client_id"], "created_at": c.get("created_at"),
                    "status": "active" if c["id"] in retired else c.get("status")}
                   for c in agent.state.find("connections", profile=pid)]
    named = [r["client_id"] for r in resources] + [c["client_id"] for c in connections] + [
        s.get("client_id") for s in shares] + [(i.get("client") or {}).get("client_id") for i in items]
    client_ids = sorted({str(c) for c in named if c})
    clients = [_plain(c) for cid in client_ids if (c := agent.state.get("clients", "client_id", cid))]
    record = {k: v for k, v in profile.items() if k not in ("status", "moved_to", "handed_over_at")}
    ids = ids_of(agent, pid)
    return {"profile": record, "resources": resources, "clients": clients, "connections": connections,
            "shares": shares, "requests": items,
            "log": [dict(e) for e in agent.audit.iter_all() if concerns(e, pid, ids)]}


def ids_of(agent: Agent, profile: str) -> set[str]:
    """The ids of everything one profile holds: resources, shares, requests, connections."""
    found = [*(r["_id"] for r in agent.state.find("resources", profile=profile)),
             *(s["id"] for s in agent.state.find("shares", profile=profile)),
             *(i["id"] for i in agent.state.find("inbox", profile=profile)),
             *(c["id"] for c in agent.state.find("connections", profile=profile))]
    return {str(x) for x in found}


def concerns(entry: Mapping[str, Any], profile: str, ids: set[str]) -> bool:
    """Whether an activity-log entry is about one profile: it names the profile or one of its things."""
    return (entry.get("profile") == profile or entry.get("on_behalf_of") == profile
            or any(isinstance(entry.get(f), str) and entry[f] in ids for f in _ID_FIELDS))


def _plain(doc: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(doc))  # type: ignore[no-any-return]


def _as_before(share: Mapping[str, Any]) -> dict[str, Any]:
    """A share as it stood before the hand-over stopped it here."""
    doc = _plain(share)
    if doc.get("revoked_reason") == "handed_over":
        doc["revoked_at"] = None
        doc.pop("revoked_reason")
    return doc


def retire(agent: Agent, profile: Mapping[str, Any], *, to: str, bundle_id: str) -> dict[str, Any]:
    """Stop answering for a handed-over profile here: PATs revoked, shares and their tokens ended,
    waiting requests closed; the profile remembers where it went (for ``as_uri``)."""
    pid, now = str(profile["id"]), agent.now()
    with agent.state.locked():
        connections = [c["id"] for c in agent.state.find("connections", profile=pid, status="active")]
        before = (profile.get("moved_to") or {}).get("connections") or []
        agent.state.update("profiles", "id", pid, {"status": "handed_over", "handed_over_at": now, "moved_to": {
            "issuer": to, "bundle": bundle_id, "connections": sorted(set(before) | set(connections))}})
        for cid in connections:
            pat.disconnect(agent, cid)
        stopped = []
        for share in agent.state.shares(pid):
            if share.revoked_at is None:
                agent.state.update("shares", "id", share.id, {"revoked_at": now, "revoked_reason": "handed_over"})
                stopped.append(share.id)
        closed = [i["id"] for i in agent.state.find("inbox", profile=pid, status="pending")]
        for item_id in closed:
            agent.state.update("inbox", "id", item_id, {"status": "handed_over", "decided_at": now})
    rpts = sum(agent.registry.revoke_where(share_id=s) for s in stopped)
    for sid in stopped:
        for grant_id in agent.registry.grants_backed_by(sid):
            revoke_grant(agent, grant_id, reason="handed_over")
    return {"connections": connections, "shares": stopped, "requests": closed, "rpts": rpts}


# --- import -----------------------------------------------------------------------------------------


def install(agent: Agent, bundle: Bundle) -> dict[str, Any]:
    """Put an opened bundle into this agent's own profile; refuses one meant for another agent or
    one already imported, and never overwrites a resource or share this agent has."""
    header, content = bundle.header, bundle.content
    if str(header.get("to", "")).rstrip("/") != agent.issuer:
        raise OwnerError(f"this bundle is for the agent at {header.get('to')}; this agent is {agent.issuer}")
    if header.get("from_agent_id") == agent.keys.agent_id:
        raise OwnerError("this bundle was made by this agent; import it on the dependent's own agent")
    if agent.state.get("handovers", "id", bundle.id) is not None:
        raise OwnerError("this bundle was imported already", status=409)
    now = agent.now()
    try:
        resources, shares = _listed(content["resources"]), _listed(content["shares"])
        clients, requests = _listed(content["clients"]), _listed(content["requests"])
        connections, log, profile = _listed(content["connections"]), _listed(content["log"]), dict(content["profile"])
        _check_shapes(resources, shares, clients, connections)
    except (KeyError, TypeError, ValueError, AttributeError, ProtocolError):
        # signed, but by whichever agent made it: checked whole before anything is written
        raise OwnerError("the bundle is damaged: its content is incomplete or malformed") from None
    carried = {r["_id"] for r in resources}
    stray = [s["id"] for s in shares if any(p["resource_id"] not in carried for p in s.get("permissions") or ())]
    if stray:  # a share may only speak of the bundle's own resources, never of this agent's others
        raise OwnerError(f"the bundle is damaged: share {stray[0]} names a resource it does not carry")

    def held(table: str, key: str, value: str) -> bool:
        """Held already, and not from an earlier try of this same import that a crash cut short."""
        doc = agent.state.get(table, key, value)
        return doc is not None and doc.get("imported_from") != bundle.id

    with agent.state.locked():
        clash = ([r["_id"] for r in resources if held("resources", "_id", r["_id"])]
                 + [s["id"] for s in shares if held("shares", "id", s["id"])])
        if clash:
            raise OwnerError(f"this agent already holds {clash[0]}; was the profile imported before?", status=409)
        added_clients = []
        for c in clients:
            if agent.state.get("clients", "client_id", c["client_id"]) is None:
                agent.state.put("clients", "client_id", c)
                added_clients.append(c["client_id"])
        for r in resources:
            agent.state.put("resources", "_id", {**r, "profile": OWNER_PROFILE, "imported_from": bundle.id})
        review_due = now + guardian.REVIEW_DAYS * 86400
        to_review = []
        for s in shares:
            doc = {**s, "profile": OWNER_PROFILE, "imported_from": bundle.id}
            by = s.get("decided_by") or {}
            if (s.get("effect") == "allow" and s.get("revoked_at") is None and by.get("role") in ("guardian", "proxy")
                    and s.get("reviewed_at") is None and (s.get("expires_at") is None or s["expires_at"] > now)):
                doc["review_due"] = min(s.get("review_due") or review_due, review_due)
                to_review.append(s["id"])
            agent.state.put("shares", "id", doc)
        reconnect = sorted({c["client_id"] for c in connections if c.get("status") == "active"})
        agent.state.put("handovers", "id", {
            "id": bundle.id, "direction": "in", "imported_at": now, "created_at": header.get("created_at"),
            "from": content.get("from"), "profile": profile, "reconnect": reconnect, "requests": requests,
            "log": log, "connections": connections})
    agent.audit.append("profile_imported", durable=True, profile=OWNER_PROFILE, bundle=bundle.id,
                       from_issuer=header.get("from"), from_agent_id=header.get("from_agent_id"),
                       name=profile.get("name"), resources=[r["_id"] for r in resources],
                       shares=[s["id"] for s in shares], shares_to_review=to_review, clients_added=added_clients,
                       log_entries=len(log), log_sha256=_sha256(log))
    agent.events.publish(guardian.PROFILE_CHANGED, {"profile": OWNER_PROFILE, "change": "imported"})
    return {"id": bundle.id, "profile": OWNER_PROFILE, "name": profile.get("name"), "from": content.get("from"),
            "resources": len(resources), "shares": len(shares), "shares_to_review": to_review,
            "reconnect": reconnect, "history": {"requests": len(requests), "log": len(log)}}


def _listed(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError("not a list")
    return value


def _check_shapes(resources: list[Any], shares: list[Any], clients: list[Any], connections: list[Any]) -> None:
    """Raise unless every record is one this agent can store and show (views read them all)."""
    for r in resources:
        if not isinstance(r["_id"], str) or not isinstance(r["client_id"], str):
            raise TypeError("resource")
        parse_description(r["description"])
    for s in shares:
        share = Share.from_dict(s)
        if not isinstance(s["id"], str) or not all(isinstance(p.resource_id, str) for p in share.permissions):
            raise TypeError("share")
        for member in ("expires_at", "review_due"):
            if s.get(member) is not None and (isinstance(s[member], bool) or not isinstance(s[member], int | float)):
                raise TypeError(member)
    for c in clients:
        if not isinstance(c["client_id"], str):
            raise TypeError("client")
        Client.from_record(c)
    for c in connections:
        if not isinstance(c["client_id"], str):
            raise TypeError("connection")


# --- the sealed file --------------------------------------------------------------------------------


def open_bundle(blob: bytes | str, passphrase: str) -> Bundle:
    """Decrypt and verify a bundle; every failure is a one-line ``OwnerError``."""
    raw = blob.encode("utf-8") if isinstance(blob, str) else blob
    if len(raw) > MAX_BUNDLE:
        raise OwnerError("the bundle is too large")
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise OwnerError("this is not a consent-agent hand-over bundle") from None
    if not isinstance(doc, dict) or doc.get("type") != BUNDLE_TYPE or doc.get("format") != FORMAT:
        raise OwnerError("this is not a consent-agent hand-over bundle")
    try:
        aad = canonical_json({k: v for k, v in doc.items() if k != "ciphertext"})
        if doc.get("enc") != "A256GCM":
            raise ValueError("unknown encryption")
        key = _derive(passphrase, doc.get("kdf"))
        plain = json.loads(AESGCM(key).decrypt(unb64url(doc["nonce"]), unb64url(doc["ciphertext"]), aad))
        header = {k: v for k, v in doc.items() if k not in ("kdf", "enc", "nonce", "ciphertext")}
        statement = verify_identity_jws(plain["statement"], str(header["from_agent_id"]), typ=STATEMENT_TYP)
        content = plain["content"]
    except InvalidTag:
        raise OwnerError("wrong passphrase for this bundle (or the bundle was altered)") from None
    except KeyStoreError as exc:
        raise OwnerError(f"the bundle's signature does not check out: {exc}") from None
    except (KeyError, TypeError, ValueError, RecursionError) as exc:
        raise OwnerError(f"the bundle is damaged: {exc}") from None
    if not isinstance(content, dict) or statement.get("content_sha256") != _sha256(content) or any(
            statement.get(a) != header.get(b) for a, b in (("iss", "from_agent_id"), ("to", "to"), ("bundle", "id"))):
        raise OwnerError("the bundle's signature does not match its content")
    return Bundle(header, content)


def _seal(header: dict[str, Any], passphrase: str, plaintext: Mapping[str, Any]) -> bytes:
    kdf = {"name": "scrypt", "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P,
           "salt": b64url(secrets.token_bytes(SALT_BYTES))}
    doc = {**header, "kdf": kdf, "enc": "A256GCM", "nonce": b64url(secrets.token_bytes(12))}
    ciphertext = AESGCM(_derive(passphrase, kdf)).encrypt(unb64url(doc["nonce"]), canonical_json(plaintext),
                                                          canonical_json(doc))
    return json.dumps({**doc, "ciphertext": b64url(ciphertext)}).encode("utf-8") + b"\n"


def _derive(passphrase: str, kdf: Any) -> bytes:
    """scrypt with the bundle's parameters, bounded so a forged bundle cannot ask for gigabytes of
    memory nor for parameters weaker than ours."""
    if not passphrase:
        raise OwnerError("give the bundle's passphrase")
    if not isinstance(kdf, dict) or kdf.get("name") != "scrypt":
        raise ValueError("unknown key derivation")
    n, r, p = kdf.get("n"), kdf.get("r"), kdf.get("p")
    if not (isinstance(n, int) and isinstance(r, int) and isinstance(p, int)
            and 2**14 <= n <= 2**20 and n & (n - 1) == 0 and 8 <= r <= 32 and 1 <= p <= 16):
        raise ValueError("scrypt parameters out of range")
    salt = unb64url(kdf["salt"])
    if len(salt) < SALT_BYTES:
        raise ValueError("scrypt salt too short")
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode("utf-8"))


def _sha256(value: Any) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()
