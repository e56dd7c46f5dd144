"""Black-box: the resource-server kit against a real ``consent-agent serve`` process over loopback HTTP,
the owner deciding through the ``consent-agent`` CLI. Device-grant connect, the UMA challenge, a
DPoP-bound RPT opening the lab's API, revocation, and the agent going away."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from sdk.rs import UNREACHABLE_WARNING, DeviceAuthorization, connect, description
from sdk.rs.starlette import Protection
from tests.e2e.agentproc import AgentProcess
from tests.flow import UMA_GRANT, RequestingClient, person_token
from tests.kit import IdP, dpop_proof
from tests.sdk.rs_world import LAB, lab_app, uma_params

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_lab_protected_by_a_live_agent(tmp_path: Path) -> None:
    agent = AgentProcess(tmp_path / "agent")
    agent.start(timeout=60)
    http = httpx.Client(timeout=10)
    kit = None
    try:
        idp = IdP()
        (tmp_path / "idp.json").write_text(json.dumps(idp.key.jwks))
        agent.cli("trust", "add", idp.issuer, "--jwks-file", str(tmp_path / "idp.json"), "--name", "City Hospital")

        # cache_seconds=0: every request asks the agent, so a revocation counts at once
        kit = await connect(agent.issuer, client_name="City Lab", state_dir=tmp_path / "lab", cache_seconds=0)

        def owner_approves(device: DeviceAuthorization) -> None:
            [item] = [i for i in agent.cli_json("inbox") if i["kind"] == "connect"]
            assert item["user_code"] == device.user_code and item["client"]["client_name"] == "City Lab"
            agent.cli("approve", item["id"])

        await kit.connect_device(owner_approves)  # polls after `interval` seconds, as RFC 8628 asks
        rid = await kit.resources.ensure("results", description("Lab results", ["read", "write"]))
        lab = httpx.AsyncClient(transport=httpx.ASGITransport(app=lab_app(Protection(kit, public_url=LAB), kit)),
                                base_url=LAB)
        path = f"/results/{rid}"

        r = await lab.get(path)
        assert r.status_code == 401, r.text
        challenge = uma_params(r.headers["www-authenticate"])
        assert challenge["as_uri"] == agent.issuer

        client = RequestingClient(http, agent.issuer, time.time)
        client.register("Riverside Clinic EHR", [UMA_GRANT])
        r = client.ask(challenge["ticket"], id_token=person_token(idp, client))
        assert r.status_code == 403 and r.json()["error"] == "request_submitted", r.text
        [item] = [i for i in agent.cli_json("inbox") if i["kind"] == "access"]
        agent.cli("approve", item["id"], "--scopes", "read")
        r = client.ask(r.json()["ticket"])
        assert r.status_code == 200, r.text
        rpt = r.json()["access_token"]

        def presented(token: str) -> dict[str, str]:
            return {"Authorization": f"DPoP {token}",
                    "DPoP": dpop_proof(client.dpop_key, "GET", LAB + path, time.time(), ath_of=token)}

        r = await lab.get(path, headers=presented(rpt))
        assert r.status_code == 200 and r.json()["scopes"] == ["read"], r.text
        tampered = rpt[:-6] + ("AAAAAA" if not rpt.endswith("AAAAAA") else "BBBBBB")
        r = await lab.get(path, headers=presented(tampered))
        assert r.status_code == 401 and r.json()["error"] == "invalid_token"

        [share] = [s for s in agent.cli_json("shares") if s["inbox_id"] == item["id"]]
        agent.cli("revoke", share["id"])
        r = await lab.get(path, headers=presented(rpt))
        assert r.status_code == 401 and r.json()["error"] == "invalid_token", r.text

        agent.stop()
        r = await lab.get(path)
        assert r.status_code == 403 and r.headers["warning"] == UNREACHABLE_WARNING
        await lab.aclose()
    finally:
        http.close()
        agent.stop()
        if kit is not None:
            await kit.aclose()
