"""The kit's HTTP to the agent: bounded answers, no redirects, and two kinds of failure.

:class:`AgentUnreachable` is the network or the agent failing (no connection, a timeout, a 5xx, an
answer that is not what the protocol says); a resource server answers its own clients with UMA
Grant §3.2's ``Warning: 199 - "UMA Authorization Server Unreachable"`` then. :class:`AgentError` is
the agent answering with an OAuth error (RFC 6749 §5.2, RFC 6750 §3.1): it is up, and said no.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

MAX_ANSWER = 64 * 1024
"""No answer the kit expects from the agent is larger; a bigger one is refused, not buffered."""
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


class AgentUnreachable(Exception):
    """The agent could not be reached, failed (5xx), or answered something that is not the protocol."""


class AgentError(Exception):
    """The agent answered with an OAuth error; ``error`` is its code (``invalid_grant``, ...)."""

    def __init__(self, status: int, error: str, description: str | None = None,
                 body: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{error} ({status})" + (f": {description}" if description else ""))
        self.status = status
        self.error = error
        self.description = description
        self.body: dict[str, Any] = dict(body or {})
        self.headers = httpx.Headers(dict(headers or {}))

    @property
    def moved_to(self) -> str | None:
        """The issuer of the agent that now answers for these records, when the owner handed them
        over (the agent names it in ``as_uri``, in the body or the ``WWW-Authenticate`` challenge)."""
        moved = self.body.get("as_uri") or challenge_param(self.headers.get("www-authenticate", ""), "as_uri")
        return moved if isinstance(moved, str) and moved.startswith(("https://", "http://")) else None


@dataclass(frozen=True)
class Answer:
    status: int
    headers: httpx.Headers
    body: bytes

    def json(self) -> Any:
        """The body as JSON; anything else means the agent is not speaking the protocol."""
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):
            raise AgentUnreachable(f"the agent answered {self.status} with a body that is not JSON") from None

    def json_object(self) -> dict[str, Any]:
        doc = self.json()
        if not isinstance(doc, dict):
            raise AgentUnreachable(f"the agent answered {self.status} with JSON that is not an object")
        return doc

    def error(self) -> AgentError:
        """The OAuth error this non-2xx answer carries (``error`` from the body, or from the
        ``WWW-Authenticate`` challenge of RFC 6750 §3 when the body has none)."""
        try:
            doc = json.loads(self.body) if self.body else {}
        except (ValueError, RecursionError):
            doc = {}
        doc = doc if isinstance(doc, dict) else {}
        code = doc.get("error")
        if not isinstance(code, str):
            code = challenge_param(self.headers.get("www-authenticate", ""), "error") or f"http_{self.status}"
        description = doc.get("error_description")
        return AgentError(self.status, code, description if isinstance(description, str) else None, doc,
                          self.headers)


def challenge_param(header: str, name: str) -> str | None:
    """A quoted parameter of a ``WWW-Authenticate`` challenge (enough for the agent's own challenges)."""
    marker = f'{name}="'
    start = header.find(marker)
    if start < 0:
        return None
    start += len(marker)
    end = header.find('"', start)
    return header[start:end] if end > start else None


async def send(http: httpx.AsyncClient, method: str, url: str, *, headers: Mapping[str, str] | None = None,
               data: Mapping[str, str] | None = None, json_body: Any = None, limit: int = MAX_ANSWER) -> Answer:
    """One request; a transport failure, a 5xx or an oversized answer is :class:`AgentUnreachable`."""
    try:
        async with http.stream(method, url, headers=headers, data=data, json=json_body,
                               follow_redirects=False) as response:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > limit:
                    raise AgentUnreachable(f"{method} {url} answered more than {limit} bytes")
    except httpx.HTTPError as exc:
        raise AgentUnreachable(f"{method} {url} failed: {exc.__class__.__name__}: {exc}") from None
    if response.status_code >= 500:
        raise AgentUnreachable(f"{method} {url} answered {response.status_code}")
    return Answer(response.status_code, response.headers, bytes(body))
