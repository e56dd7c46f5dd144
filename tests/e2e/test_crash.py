"""Crash safety: SIGKILL the agent again and again while the owner approves through the CLI.

After every restart the store must load, and every approval the CLI reported as done must be there.
A client that was waiting before a crash still gets its RPT on its next poll afterwards.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from pathlib import Path

import httpx

from tests.e2e.agentproc import AgentProcess
from tests.flow import DEVICE_GRANT, UMA_GRANT, RequestingClient, ResourceServer, person_token
from tests.kit import IdP

KILLS = 6
REQUESTS = 30


def setup(agent: AgentProcess, http: httpx.Client, data: Path) -> tuple[ResourceServer, RequestingClient, dict]:
    idp = IdP()
    (data.parent / "jwks.json").write_text(__import__("json").dumps(idp.key.jwks))
    agent.cli("trust", "add", idp.issuer, "--jwks-file", str(data.parent / "jwks.json"))
    rs = ResourceServer(http, agent.issuer, time.time)
    rs.register("Lab", [DEVICE_GRANT])
    dev = rs.start_device_flow()
    agent.cli("approve", next(i for i in agent.cli_json("inbox") if i["kind"] == "connect")["id"])
    time.sleep(dev["interval"])
    assert rs.poll_device(dev["device_code"]).status_code == 200
    res = rs.register_resource({"name": "Results", "resource_scopes": ["read"]})
    client = RequestingClient(http, agent.issuer, time.time)
    client.register("Clinic", [UMA_GRANT])
    waiting = {}
    for n in range(REQUESTS):
        ticket = rs.ticket({"resource_id": res, "resource_scopes": ["read"]})
        r = client.ask(ticket, id_token=person_token(idp, client, sub=f"doctor-{n}"))
        assert r.json()["error"] == "request_submitted"
        waiting[f"doctor-{n}"] = r.json()["ticket"]
    return rs, client, waiting


def inbox_subject(agent: AgentProcess, item_id: str) -> str:
    audit = agent.cli_json("audit", "--limit", "1000")
    entry = next(e for e in audit if e["event"] == "request_submitted" and e["inbox_id"] == item_id)
    return str(entry["requester"]).rsplit("#", 1)[1]


def approve_until_killed(agent: AgentProcess, ids: list[str], reported: list[str], stop: threading.Event) -> None:
    for item_id in ids:
        if stop.is_set():
            return
        done = agent.cli("approve", item_id, check=False)
        if done.returncode == 0:
            reported.append(item_id)  # the CLI said "done": it must survive whatever comes next


def test_sigkill_during_cli_approvals_loses_nothing_reported(tmp_path: Path) -> None:
    data = tmp_path / "agent"
    agent = AgentProcess(data)
    agent.start()
    http = httpx.Client(timeout=10)
    rng = random.Random(7)
    reported: list[str] = []
    try:
        rs, client, waiting = setup(agent, http, data)
        for _ in range(KILLS):
            pending = [i["id"] for i in agent.cli_json("inbox")]
            if not pending:
                break
            stop = threading.Event()
            worker = threading.Thread(target=approve_until_killed, args=(agent, pending, reported, stop))
            worker.start()
            time.sleep(rng.uniform(0.3, 1.5))
            agent.stop(signal.SIGKILL)
            stop.set()
            worker.join(60)
            agent.start()  # the store must load after every kill
            rs.issuer = client.issuer = agent.issuer  # a new port each start
            approved = {s["inbox_id"] for s in agent.cli_json("shares")}
            missing = set(reported) - approved
            assert not missing, f"approvals reported done but lost: {missing}"
        assert len(reported) >= 3, "the test should have landed some approvals between kills"

        # clients that waited across the crashes are served on their next poll: one approved before a
        # crash, and one approved only now, after the last restart
        subject_of = {i["id"]: i["requester"]["subject"] for i in agent.cli_json("inbox")}
        doctors = [inbox_subject(agent, reported[0])]
        if subject_of:
            later = next(iter(subject_of))
            agent.cli("approve", later)
            doctors.append(subject_of[later])
        for doctor in doctors:
            r = client.ask(waiting[doctor])
            assert r.status_code == 200, r.text
        status = agent.cli_json("status")
        assert status["audit_ok"] is True
    finally:
        http.close()
        agent.stop()
