"""Resource registration (UMA FedAuthz §3): tell the agent what this server holds and what can be done to it.

A description is ``{"name", "resource_scopes", "type"?, "description"?, "icon_uri"?,
"security_labels"?}`` (FedAuthz §3.1; ``security_labels`` are ``system|code`` strings the owner's
policy may exclude). The agent assigns the ``_id``; :meth:`Resources.ensure` keeps the application's
own name for each resource mapped to that id across restarts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sdk.rs.http import AgentError, AgentUnreachable
from sdk.rs.session import AgentSession

Description = Mapping[str, Any]


def description(name: str, scopes: Sequence[str], **extra: Any) -> dict[str, Any]:
    """A resource description (FedAuthz §3.1): ``name``, ``resource_scopes`` and any of ``type``,
    ``description``, ``icon_uri``, ``security_labels``."""
    return {"name": name, "resource_scopes": list(scopes), **extra}


class Resources:
    def __init__(self, session: AgentSession) -> None:
        self._session = session

    def _url(self, resource_id: str | None = None) -> str:
        base = self._session.metadata.endpoint("resource_registration_endpoint")
        return base if resource_id is None else f"{base}/{resource_id}"

    async def register(self, desc: Description) -> str:
        """FedAuthz §3.2.1: create; returns the agent's ``_id``."""
        answer = await self._session.protected("POST", self._url(), json_body=dict(desc))
        if answer.status != 201:
            raise answer.error()
        rid = answer.json_object().get("_id")
        if not isinstance(rid, str) or not rid:
            raise AgentUnreachable("the resource registration answer has no _id")
        return rid

    async def read(self, resource_id: str) -> dict[str, Any]:
        """FedAuthz §3.2.2: the description as the agent holds it, with ``_id``."""
        answer = await self._session.protected("GET", self._url(_checked(resource_id)))
        if answer.status != 200:
            raise answer.error()
        return answer.json_object()

    async def update(self, resource_id: str, desc: Description) -> None:
        """FedAuthz §3.2.3: complete replacement of the description."""
        answer = await self._session.protected("PUT", self._url(_checked(resource_id)), json_body=dict(desc))
        if answer.status != 200:
            raise answer.error()

    async def delete(self, resource_id: str) -> None:
        """FedAuthz §3.2.4: the resource is gone, and with it any share of it."""
        answer = await self._session.protected("DELETE", self._url(_checked(resource_id)))
        if answer.status != 204:
            raise answer.error()
        reg = self._session.registration
        reg.resources = {k: v for k, v in reg.resources.items() if v != resource_id}
        self._session.save()

    async def ids(self) -> list[str]:
        """FedAuthz §3.2.5: the ids of this server's resources."""
        answer = await self._session.protected("GET", self._url())
        if answer.status != 200:
            raise answer.error()
        ids = answer.json()
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise AgentUnreachable("the resource list is not an array of ids")
        return ids

    async def ensure(self, key: str, desc: Description) -> str:
        """The id of the application's resource ``key``: updated in place if it was registered
        before (by this or an earlier run), registered anew otherwise (or if the owner's agent no
        longer knows it)."""
        reg = self._session.registration
        known = reg.resources.get(key)
        if known is not None:
            try:
                await self.update(known, desc)
                return known
            except AgentError as err:
                if err.status != 404:
                    raise
        rid = await self.register(desc)
        reg.resources[key] = rid
        self._session.save()
        return rid

    def id_of(self, key: str) -> str | None:
        """The resource id :meth:`ensure` recorded for ``key``."""
        return self._session.registration.resources.get(key)


def _checked(resource_id: str) -> str:
    if not resource_id or not all(c.isascii() and (c.isalnum() or c in "-_") for c in resource_id):
        raise ValueError(f"{resource_id!r} is not a resource id")
    return resource_id
