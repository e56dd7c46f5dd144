"""After a hand-over the resource-server kit learns where the records went (``as_uri``)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from core.asgi import PublicApp
from core.clock import FakeClock
from core.owner import Owner
from core.routes import public_router
from sdk.rs import NotConnected, connect, description
from tests.kit import make_agent
from tests.sdk.rs_world import sleeper

pytestmark = pytest.mark.anyio
MIA = "https://mia.example"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_the_kit_names_the_new_agent_once_the_profile_was_handed_over(tmp_path: Path) -> None:
    clock = FakeClock()
    agent = make_agent(tmp_path / "anna", clock=clock)
    owner = Owner(agent)
    owner.add_profile("Mia", dependent=True)
    network = httpx.ASGITransport(app=PublicApp(agent, public_router()))
    kit = await connect(agent.issuer, client_name="City Lab", http=httpx.AsyncClient(transport=network), clock=clock)

    def approve_for_mia(device: object) -> None:
        code = getattr(device, "user_code")
        owner.approve(next(i["id"] for i in owner.inbox() if i.get("user_code") == code), profile="mia")

    try:
        await kit.connect_device(approve_for_mia, sleep=sleeper(clock))
        rid = await kit.resources.register(description("Lab results", ["read"]))
        assert await kit.resources.ids() == [rid]
        owner.handover_export("mia", to=MIA, passphrase="correct horse battery staple")
        with pytest.raises(NotConnected) as caught:
            await kit.resources.ids()
        assert caught.value.moved_to == MIA
        assert MIA in str(caught.value)
        assert not kit.connected
    finally:
        await kit.session.http.aclose()
        agent.close()
