"""sdk.rs.connect against a real in-process agent: discovery and the signed key set checked against
the agent id, dynamic registration with private_key_jwt, the PAT by device grant or by authorization
code + PKCE, refresh, persistence across restarts, and what happens when the owner says no."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import httpx
import pytest

from core.agent import Agent
from core.clock import FakeClock
from core.keys import open_keyring
from core.owner import Owner
from sdk.rs import AgentError, AgentKeysError, ConnectError, NotConnected, StateError, connect, description
from tests.kit import make_agent
from tests.sdk.rs_world import Network, approve_code, connect_kit, sleeper

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"

LAB_DESC = description("Lab results", ["read", "write"], type="https://lab.example/types/results")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def agent(tmp_path: Path, clock: FakeClock) -> Agent:
    a = make_agent(tmp_path / "agent", clock=clock)
    yield a
    a.close()


async def test_device_grant_connects_and_a_restart_keeps_the_connection(agent: Agent, clock: FakeClock,
                                                                        tmp_path: Path) -> None:
    state = tmp_path / "lab-state"
    shown = []
    kit = await connect(agent.issuer, client_name="City Lab", state_dir=state,
                        http=httpx.AsyncClient(transport=Network(agent)), clock=clock)
    assert kit.agent_id == agent.keys.agent_id and not kit.connected
    registered = agent.client(kit.client_id)
    assert registered is not None and registered.auth_method == "private_key_jwt" and registered.dpop_bound

    def show(device):
        shown.append(device.user_code)
        approve_code(agent, device.user_code)

    await kit.connect_device(show, sleep=sleeper(clock))
    assert kit.connected and shown
    [connection] = Owner(agent).connections()
    assert connection["client_id"] == kit.client_id and connection["status"] == "active"
    rid = await kit.resources.ensure("results", LAB_DESC)
    assert (await kit.resources.read(rid))["name"] == "Lab results"
    await kit.session.http.aclose()

    saved = json.loads((state / "registration.json").read_text())
    assert saved["client_id"] == kit.client_id and saved["agent_id"] == agent.keys.agent_id
    assert saved["resources"] == {"results": rid}
    for name in ("registration.json", "client.pem", "dpop.pem"):
        assert stat.S_IMODE((state / name).stat().st_mode) == 0o600, name

    again = await connect(agent.issuer, client_name="City Lab", state_dir=state,
                          http=httpx.AsyncClient(transport=Network(agent)), clock=clock)
    assert again.client_id == kit.client_id and again.connected
    assert await again.resources.ensure("results", LAB_DESC) == rid  # updated in place, not registered twice
    assert await again.resources.ids() == [rid]
    assert Owner(agent).inbox() == [] and len(Owner(agent).connections()) == 1
    await again.session.http.aclose()


async def test_polling_honours_interval_and_slow_down(agent: Agent, clock: FakeClock) -> None:
    kit = await connect(agent.issuer, client_name="City Lab", http=httpx.AsyncClient(transport=Network(agent)),
                        clock=clock)
    device = await kit.start_device()
    waits: list[float] = []

    async def impatient(seconds: float) -> None:  # sleeps 1 s whatever it is asked, the first twice
        waits.append(seconds)
        clock.advance(1 if len(waits) <= 2 else seconds)
        if len(waits) == 2:
            approve_code(agent, device.user_code)

    await kit.finish_device(device, sleep=impatient)
    assert kit.connected
    assert waits == [device.interval, device.interval, device.interval + 5]  # RFC 8628 §3.5
    await kit.session.http.aclose()


async def test_owner_denies_the_connection(agent: Agent, clock: FakeClock) -> None:
    kit = await connect(agent.issuer, client_name="Unknown Lab", http=httpx.AsyncClient(transport=Network(agent)),
                        clock=clock)

    def deny(device):
        owner = Owner(agent)
        [item] = [i for i in owner.inbox() if i.get("user_code") == device.user_code]
        owner.deny(item["id"])

    with pytest.raises(ConnectError) as caught:
        await kit.connect_device(deny, sleep=sleeper(clock))
    assert caught.value.error == "access_denied" and not kit.connected
    with pytest.raises(NotConnected):
        await kit.resources.register(LAB_DESC)
    await kit.session.http.aclose()


async def test_authorization_code_with_pkce(agent: Agent, clock: FakeClock) -> None:
    callback = "https://lab.example/uma/callback"
    kit = await connect(agent.issuer, client_name="City Lab", redirect_uris=[callback],
                        http=httpx.AsyncClient(transport=Network(agent)), clock=clock)
    request = kit.authorization_request(callback)
    assert "code_challenge_method=S256" in request.url and f"dpop_jkt={kit.session.dpop.jkt}" in request.url
    async with httpx.AsyncClient(transport=Network(agent)) as browser:
        page = await browser.get(request.url)
        assert page.status_code == 200 and "Match code" in page.text
        owner = Owner(agent)
        [item] = owner.inbox()
        assert item["kind"] == "connect" and item["match_code"] in page.text
        owner.approve(item["id"])
        back = await browser.get(request.url)
        assert back.status_code == 302
    location = back.headers["location"]
    assert location.startswith(callback + "?")
    with pytest.raises(ConnectError):  # a redirect that does not belong to this request
        await kit.finish_authorization(request, location.replace(f"state={request.state}", "state=forged"))
    await kit.finish_authorization(request, location)
    assert kit.connected
    assert await kit.resources.register(LAB_DESC)
    await kit.session.http.aclose()


async def test_pat_is_refreshed_before_it_expires_and_refresh_tokens_rotate(agent: Agent, clock: FakeClock) -> None:
    kit = await connect_kit(agent, clock, Network(agent))
    first_pat, first_refresh = kit.session.registration.pat, kit.session.registration.refresh_token
    rid = await kit.resources.register(LAB_DESC)
    clock.advance(agent.settings.pat_ttl - 30)  # inside the refresh margin
    assert await kit.resources.ids() == [rid]
    assert kit.session.registration.pat != first_pat
    assert kit.session.registration.refresh_token != first_refresh
    await kit.refresh()
    assert await kit.ticket([(rid, ["read"])])
    await kit.session.http.aclose()


async def test_register_update_delete_resources(agent: Agent, clock: FakeClock) -> None:
    kit = await connect_kit(agent, clock, Network(agent))
    rid = await kit.resources.ensure("results", LAB_DESC)
    await kit.resources.update(rid, description("Lab results (2024)", ["read"], security_labels=["HL7|R"]))
    held = await kit.resources.read(rid)
    assert held == {"_id": rid, "name": "Lab results (2024)", "resource_scopes": ["read"],
                    "security_labels": ["HL7|R"]}
    with pytest.raises(AgentError) as caught:  # the agent checks scopes against the registration
        await kit.ticket([(rid, ["write"])])
    assert caught.value.error == "invalid_scope"
    await kit.resources.delete(rid)
    assert await kit.resources.ids() == [] and kit.resources.id_of("results") is None
    with pytest.raises(AgentError) as caught:
        await kit.resources.read(rid)
    assert caught.value.status == 404
    again = await kit.resources.ensure("results", LAB_DESC)
    assert again != rid and await kit.resources.ids() == [again]
    await kit.session.http.aclose()


async def test_agent_requiring_dpop_nonces(tmp_path: Path, clock: FakeClock) -> None:
    agent = make_agent(tmp_path / "strict", clock=clock, dpop_nonce_required=True)
    try:
        kit = await connect_kit(agent, clock, Network(agent))  # token endpoint: 400 use_dpop_nonce, then retry
        clock.advance(301)  # the nonce the kit holds is stale now
        rid = await kit.resources.register(LAB_DESC)  # protection API: 401 use_dpop_nonce, then retry
        assert await kit.ticket([(rid, ["read"])])
        await kit.session.http.aclose()
    finally:
        agent.close()


async def test_owner_disconnecting_the_lab_ends_its_pat(agent: Agent, clock: FakeClock) -> None:
    kit = await connect_kit(agent, clock, Network(agent))
    rid = await kit.resources.register(LAB_DESC)
    owner = Owner(agent)
    [connection] = owner.connections()
    owner.disconnect(connection["id"])
    with pytest.raises(NotConnected):
        await kit.ticket([(rid, ["read"])])
    assert not kit.connected
    await kit.session.http.aclose()


async def test_relayed_issuer_names_the_agent_id(tmp_path: Path, clock: FakeClock) -> None:
    data = tmp_path / "relayed"
    data.mkdir()
    agent_id = open_keyring(data, clock=clock, use_os_keychain=False, plaintext_dev=True).agent_id
    agent = make_agent(data, clock=clock, public_url=f"https://relay.example/{agent_id}")
    try:
        kit = await connect_kit(agent, clock, Network(agent))
        assert kit.issuer == f"https://relay.example/{agent_id}" and kit.agent_id == agent_id
        assert await kit.resources.register(LAB_DESC)
        await kit.session.http.aclose()
        other_id = "A" * 43
        with pytest.raises(AgentKeysError):  # held to an id learnt out of band that is not this agent's
            await connect(agent.issuer, client_name="City Lab", agent_id=other_id,
                          http=httpx.AsyncClient(transport=Network(agent)), clock=clock)
    finally:
        agent.close()


async def test_a_different_agent_at_the_same_address_is_refused(tmp_path: Path, clock: FakeClock) -> None:
    state = tmp_path / "lab-state"
    first = make_agent(tmp_path / "first", clock=clock)
    kit = await connect(first.issuer, client_name="City Lab", state_dir=state,
                        http=httpx.AsyncClient(transport=Network(first)), clock=clock)
    await kit.session.http.aclose()
    first.close()
    impostor = make_agent(tmp_path / "impostor", clock=clock)  # same issuer URL, another identity key
    try:
        with pytest.raises(AgentKeysError, match=r"conflicting agent ids|says it is"):
            await connect(impostor.issuer, client_name="City Lab", state_dir=state,
                          http=httpx.AsyncClient(transport=Network(impostor)), clock=clock)
        with pytest.raises(StateError):
            await connect("https://other.example", client_name="City Lab", state_dir=state,
                          http=httpx.AsyncClient(transport=Network(impostor)), clock=clock)
    finally:
        impostor.close()


async def test_substituted_key_set_is_refused(agent: Agent, clock: FakeClock) -> None:
    network = Network(agent)
    stranger = make_agent(agent.settings.data_dir.parent / "stranger", clock=clock)
    stranger_app = Network(stranger)

    class Swapping(httpx.AsyncBaseTransport):
        """A path to the agent that serves someone else's signed key set."""

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            upstream = stranger_app if request.url.path.endswith("/jwks.jwt") else network
            return await upstream.handle_async_request(request)

    try:
        with pytest.raises(AgentKeysError, match="not the agent's"):
            await connect(agent.issuer, client_name="City Lab", http=httpx.AsyncClient(transport=Swapping()),
                          clock=clock)
    finally:
        stranger.close()


async def test_unreachable_agent_at_connect(clock: FakeClock) -> None:
    from sdk.rs import AgentUnreachable
    from tests.sdk.rs_world import closed_port

    with pytest.raises(AgentUnreachable):
        await connect(f"http://127.0.0.1:{closed_port()}", client_name="City Lab", clock=clock)
    with pytest.raises(ValueError, match="https"):
        await connect("http://agent.example", client_name="City Lab", clock=clock)
