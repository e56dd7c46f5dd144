"""Dynamic client registration (RFC 7591 §3) and client configuration (RFC 7592 §2).

``register`` reads as: check registration is open, parse, validate (:mod:`core.oauth.client_metadata`),
store, respond. ``read``, ``update`` and ``delete`` first authenticate the registration access token.
The client record keeps hashes of the client secret and of that token, never the values: each is
shown once, in the response that issued it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.agent import Agent
from core.errors import InvalidClientMetadata, InvalidRequest, InvalidToken
from core.http import HttpRequest, HttpResponse, check_size, empty, json_response
from core.oauth.client_metadata import validate
from core.secrets_ import digest, same, token

TABLE = "clients"
SERVER_MEMBERS = ("registration_access_token", "registration_client_uri", "client_id_issued_at",
                  "client_secret_expires_at")
"""RFC 7592 §2.2: members the server sets, which an update must not carry."""
REALM = 'Bearer realm="consent-agent"'


def register(agent: Agent, request: HttpRequest, params: Mapping[str, str]) -> HttpResponse:
    """RFC 7591 §3.1, §3.2.1: validate the metadata, assign ``client_id`` ourselves (RFC 9700 §4.15)."""
    if not agent.settings.open_registration:
        raise InvalidToken("registration needs an initial access token", headers={"www-authenticate": REALM})
    body = parse_object(agent, request)
    reg = validate(agent, body)
    client_id = "c_" + token(16)
    secret = token() if reg.needs_secret else None
    rat = token()
    record = {"client_id": client_id, "metadata": reg.metadata, "registration": reg.registration,
              "secret_hash": digest(secret) if secret else None, "rat_hash": digest(rat),
              "created_at": agent.now(), "jwks_cache": reg.jwks_cache}
    agent.state.put(TABLE, "client_id", record)
    _audit(agent, "client_registered", record)
    return json_response(client_response(agent, record, rat, secret), 201, no_store=True)


def read(agent: Agent, request: HttpRequest, params: Mapping[str, str]) -> HttpResponse:
    """RFC 7592 §2.1: the current configuration, in the shape of the registration response (§3)."""
    record, rat = authenticate(agent, request, params["client_id"])
    return json_response(client_response(agent, record, rat), no_store=True)


def update(agent: Agent, request: HttpRequest, params: Mapping[str, str]) -> HttpResponse:
    """RFC 7592 §2.2: full replacement; omitted members are deleted, the rest validated afresh.

    The access token and the secret stay the same; a client that newly needs a secret gets one.
    """
    record, rat = authenticate(agent, request, params["client_id"])
    body = parse_object(agent, request)
    check_update_body(body, record)
    reg = validate(agent, body)
    secret_hash = record.get("secret_hash") if reg.needs_secret else None
    secret = token() if reg.needs_secret and not secret_hash else None
    if secret is not None:
        secret_hash = digest(secret)
    changes = {"metadata": reg.metadata, "registration": reg.registration, "secret_hash": secret_hash,
               "jwks_cache": reg.jwks_cache}
    agent.state.update(TABLE, "client_id", record["client_id"], changes)
    updated = {**record, **changes}
    _audit(agent, "client_updated", updated)
    return json_response(client_response(agent, updated, rat, secret), no_store=True)


def delete(agent: Agent, request: HttpRequest, params: Mapping[str, str]) -> HttpResponse:
    """RFC 7592 §2.3: 204; the client_id, its secret and the access token stop working at once."""
    record, _ = authenticate(agent, request, params["client_id"])
    agent.state.remove(TABLE, "client_id", record["client_id"])
    _audit(agent, "client_deleted", record)
    return empty(204, headers=(("cache-control", "no-store"),))


def parse_object(agent: Agent, request: HttpRequest) -> dict[str, Any]:
    """RFC 7591 §3.1: the body is one JSON object."""
    check_size(request.body, agent.settings.max_body)
    body = request.json()
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    return body


def authenticate(agent: Agent, request: HttpRequest, client_id: str) -> tuple[dict[str, Any], str]:
    """RFC 7592 §2 (RFC 6750 §2.1): the registration access token of exactly this client.

    An unknown client answers 401 like a wrong token (RFC 7592 §2.1), so a deleted client's token
    is dead. A request without credentials gets a challenge without an error code (RFC 6750 §3.1).
    """
    values = request.header_all("authorization")
    if not values:
        raise InvalidToken("the registration access token is missing", headers={"www-authenticate": REALM})
    scheme, _, rat = values[0].partition(" ")
    rat = rat.strip()
    record = agent.state.get(TABLE, "client_id", client_id)
    ok = (len(values) == 1 and scheme.lower() == "bearer" and bool(rat) and record is not None
          and same(digest(rat), str(record.get("rat_hash", ""))))
    if not ok or record is None:
        raise InvalidToken("the registration access token is not valid",
                           headers={"www-authenticate": REALM + ', error="invalid_token"'})
    return record, rat


def check_update_body(body: Mapping[str, Any], record: Mapping[str, Any]) -> None:
    """RFC 7592 §2.2: matching ``client_id``, no server-set members, the current secret if one is sent."""
    if body.get("client_id") != record["client_id"]:
        raise InvalidClientMetadata("client_id must be present and match this client")
    present = [m for m in SERVER_MEMBERS if m in body]
    if present:
        raise InvalidClientMetadata(f"{present[0]} is set by the server and must not be sent")
    if "client_secret" in body:
        sent, stored = body["client_secret"], record.get("secret_hash")
        if not isinstance(sent, str) or not stored or not same(digest(sent), str(stored)):
            raise InvalidClientMetadata("client_secret does not match")


def client_response(agent: Agent, record: Mapping[str, Any], rat: str,
                    secret: str | None = None) -> dict[str, Any]:
    """RFC 7591 §3.2.1, RFC 7592 §3: metadata and identifiers; the secret only when just issued.

    ``client_secret_expires_at`` (0: never) is present whenever the client has a secret.
    """
    client_id = record["client_id"]
    out: dict[str, Any] = {"client_id": client_id, **record["metadata"],
                           "client_id_issued_at": record["created_at"], "registration_access_token": rat,
                           "registration_client_uri": agent.settings.endpoint(f"/register/{client_id}")}
    if secret is not None:
        out["client_secret"] = secret
    if record.get("secret_hash"):
        out["client_secret_expires_at"] = 0
    return out


def _audit(agent: Agent, event: str, record: Mapping[str, Any]) -> None:
    agent.audit.append(event, client_id=record["client_id"], registration=record.get("registration"),
                       client_name=record["metadata"].get("client_name"))
