"""What a resource server answers when it does not serve the request: framework-neutral refusals.

* No token, or a token without enough permission: 401 with ``WWW-Authenticate: UMA realm="…",
  as_uri="<issuer>", ticket="…"`` (UMA 2.0 Grant §3.2), so the client can take the ticket to the
  agent and come back with an RPT.
* No ticket could be had because the agent is down or unreachable: 403 with
  ``Warning: 199 - "UMA Authorization Server Unreachable"`` and no ticket (UMA 2.0 Grant §3.2).
* A token that is not valid here: 401 with an RFC 6750 §3 / RFC 9449 §7.1 challenge carrying
  ``error="invalid_token"`` (or ``invalid_dpop_proof``); a malformed request is 400 ``invalid_request``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

UNREACHABLE_WARNING = '199 - "UMA Authorization Server Unreachable"'
_QUOTABLE = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")
"""Characters that may stand inside a quoted-string without escaping (RFC 9110 §5.6.4)."""


@dataclass(frozen=True)
class Denial:
    """A refusal: status, headers and a small JSON body, for any web framework to send."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Mapping[str, Any] = field(default_factory=dict)
    reason: str = ""
    """For the server's log, never sent: why the request was refused."""


def printable(text: str) -> str:
    """``text`` with anything that cannot stand in a quoted-string replaced: descriptions may
    echo what a client sent."""
    return "".join(c if _QUOTABLE.fullmatch(c) else "?" for c in text)


def quoted(value: str, what: str) -> str:
    if not _QUOTABLE.fullmatch(value):
        raise ValueError(f"{what} {value!r} cannot be sent in a WWW-Authenticate header")
    return f'"{value}"'


def uma_challenge(realm: str, as_uri: str, ticket: str) -> Denial:
    """UMA 2.0 Grant §3.2: the permission ticket and where to redeem it."""
    header = f"UMA realm={quoted(realm, 'realm')}, as_uri={quoted(as_uri, 'as_uri')}, ticket={quoted(ticket, 'ticket')}"
    return Denial(401, {"WWW-Authenticate": header}, {}, "no token, or not enough permission: ticket issued")


def unreachable(reason: str) -> Denial:
    """UMA 2.0 Grant §3.2: no ticket because the authorization server cannot be reached."""
    return Denial(403, {"Warning": UNREACHABLE_WARNING}, {}, reason)


def forbidden(reason: str) -> Denial:
    """The agent is up but gave no ticket (the resource is not registered, the PAT was revoked, ...)."""
    return Denial(403, {}, {}, reason)


def token_error(scheme: str, error: str, description: str, *, realm: str,
                dpop_algs: Sequence[str] = ()) -> Denial:
    """RFC 6750 §3 (``Bearer``) or RFC 9449 §7.1 (``DPoP``, with ``algs``): 401, or 400 for
    ``invalid_request``."""
    description = printable(description)
    params = [("error", error), ("error_description", description)]
    if scheme == "DPoP":
        params.append(("algs", " ".join(dpop_algs)))
    else:
        params.insert(0, ("realm", realm))
    header = f"{scheme} " + ", ".join(f"{k}={quoted(v, k)}" for k, v in params if v)
    status = 400 if error == "invalid_request" else 401
    return Denial(status, {"WWW-Authenticate": header}, {"error": error, "error_description": description},
                  description)
