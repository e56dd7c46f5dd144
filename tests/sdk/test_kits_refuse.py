"""What the kits must refuse from the network, found by review: a metadata document whose endpoints
climb out of the agent's path on a relay (``..``), and JSON nested deeper than a parser can follow.
``httpx.MockTransport`` plays the agent (or whoever answers in its place)."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from sdk.client import DiscoveryError
from sdk.client.discovery import discover as client_discover
from sdk.jwks import AgentKeysError
from sdk.rs.discovery import ENDPOINTS, OPTIONAL_ENDPOINTS
from sdk.rs.discovery import discover as rs_discover

pytestmark = pytest.mark.anyio
AGENT = "A" * 43
OTHER = "B" * 43
RELAY = "https://relay.example"
ISSUER = f"{RELAY}/{AGENT}"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def agent_answering(body: Callable[[], bytes]) -> httpx.AsyncClient:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body(), headers={"content-type": "application/json"})
    return httpx.AsyncClient(transport=httpx.MockTransport(handle))


def metadata(**over: str) -> bytes:
    doc = {"issuer": ISSUER, "agent_id": AGENT,
           "grant_types_supported": ["urn:ietf:params:oauth:grant-type:uma-ticket"],
           **{name: f"{ISSUER}/{name}" for name in ENDPOINTS + OPTIONAL_ENDPOINTS}, **over}
    return json.dumps(doc).encode()


async def test_the_rs_kit_takes_a_well_formed_document() -> None:
    async with agent_answering(metadata) as http:
        found = await rs_discover(http, ISSUER)
    assert found.endpoint("introspection_endpoint") == f"{ISSUER}/introspection_endpoint"


@pytest.mark.parametrize("path", [f"/../{OTHER}/introspect", f"/%2e%2e/{OTHER}/introspect",
                                  f"/%2E%2E/{OTHER}/introspect", "/./introspect/../../x"])
async def test_the_rs_kit_refuses_an_endpoint_that_climbs_out_of_the_agents_path(path: str) -> None:
    """On a relay, ``{issuer}/../{other agent}/introspect`` starts with the issuer but is another
    agent's endpoint once the dots are resolved: the PAT and the tokens to check would go there."""
    async with agent_answering(lambda: metadata(introspection_endpoint=ISSUER + path)) as http:
        with pytest.raises(AgentKeysError, match="not under the issuer"):
            await rs_discover(http, ISSUER)


async def test_the_rs_kit_refuses_metadata_nested_too_deep() -> None:
    async with agent_answering(lambda: b"[" * 60_000) as http:  # under its 64 KiB bound on answers
        with pytest.raises(AgentKeysError):
            await rs_discover(http, ISSUER)


async def test_the_client_kit_refuses_metadata_nested_too_deep() -> None:
    async with agent_answering(lambda: b"[" * 100_000) as http:
        with pytest.raises(DiscoveryError):
            await client_discover(http, ISSUER)
