"""Finding an agent's endpoints from its issuer (UMA 2.0 Grant §2, RFC 8414 §3).

The document at ``{as_uri}/.well-known/uma2-configuration`` must name ``as_uri`` as its issuer
(RFC 8414 §3.3) and keep the endpoints the kit uses under the issuer (same origin, below its path,
no dot segments), so a document from elsewhere, or another agent on the same relay, cannot send the
client's credentials and the requesting party's claims to another server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from sdk.client._util import is_secure, json_object, origin_of
from sdk.client.errors import DiscoveryError

__all__ = ["UMA_GRANT", "AgentMetadata", "discover"]

UMA_GRANT = "urn:ietf:params:oauth:grant-type:uma-ticket"
WELL_KNOWN = "/.well-known/uma2-configuration"


@dataclass(frozen=True)
class AgentMetadata:
    issuer: str
    token_endpoint: str
    registration_endpoint: str
    document: dict[str, Any]

    @property
    def agent_id(self) -> str | None:
        """The agent's identity-key thumbprint, which consent-agent publishes in its metadata."""
        value = self.document.get("agent_id")
        return value if isinstance(value, str) else None


async def discover(http: httpx.AsyncClient, as_uri: str) -> AgentMetadata:
    """GET the agent's UMA metadata and check that it holds together; :class:`DiscoveryError` if not."""
    issuer = as_uri.rstrip("/")
    if not is_secure(issuer):
        raise DiscoveryError(f"{issuer!r} is neither https nor loopback http")
    url = issuer + WELL_KNOWN
    try:
        response = await http.get(url, headers={"accept": "application/json"}, follow_redirects=False)
    except httpx.HTTPError as exc:
        raise DiscoveryError(f"GET {url} failed: {exc}") from exc
    doc = json_object(response)
    if response.status_code != 200 or doc is None:
        raise DiscoveryError(f"GET {url} answered {response.status_code} without a JSON object",
                             status=response.status_code)
    if doc.get("issuer") != issuer:
        raise DiscoveryError(f"the metadata names the issuer {doc.get('issuer')!r}, not {issuer!r}")
    grants = doc.get("grant_types_supported")
    if isinstance(grants, list) and UMA_GRANT not in grants:
        raise DiscoveryError(f"{issuer} does not support the UMA grant")
    return AgentMetadata(issuer, _endpoint(doc, "token_endpoint", issuer),
                         _endpoint(doc, "registration_endpoint", issuer), doc)


def _endpoint(doc: dict[str, Any], name: str, issuer: str) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or not value:
        raise DiscoveryError(f"the metadata of {issuer} has no {name}")
    try:
        same = origin_of(value) == origin_of(issuer)
    except (httpx.InvalidURL, TypeError):
        same = False
    if not same:
        raise DiscoveryError(f"{name} {value!r} is not on the origin of {issuer}")
    path = urlsplit(value).path
    if not value.startswith(issuer + "/") or any(unquote(seg) in (".", "..") for seg in path.split("/")):
        # on a relay every agent shares the origin: {issuer}/../{another agent}/token is another agent
        raise DiscoveryError(f"{name} {value!r} is not under the issuer {issuer}")
    return value
