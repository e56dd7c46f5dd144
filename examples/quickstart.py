"""Quickstart: a real consent-agent, a lab, a clinician's request, and you deciding.

Run from the repository root:  python examples/quickstart.py  [--auto share|deny]

It starts ``consent-agent serve`` on loopback with a throw-away data directory, connects a demo lab
(a resource server) through the device grant, and has a demo clinic ask for your lab results with
a verified identity. The request lands in your inbox; you choose Share or Deny, exactly as you
would with ``consent-agent approve`` / ``consent-agent deny``, and see what the clinic gets.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.agentproc import AgentProcess  # noqa: E402
from tests.flow import DEVICE_GRANT, UMA_GRANT, RequestingClient, ResourceServer, person_token  # noqa: E402
from tests.kit import IdP  # noqa: E402


def say(text: str) -> None:
    print(text, flush=True)


def choose(auto: str | None) -> str:
    if auto:
        return auto
    while True:
        answer = input("\nShare or Deny? [s/d] ").strip().lower()
        if answer in ("s", "share"):
            return "share"
        if answer in ("d", "deny"):
            return "deny"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--auto", choices=["share", "deny"], help="decide without asking (for scripts)")
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="consent-agent-demo-"))
    agent = AgentProcess(data)
    say(f"Starting consent-agent (demo data in {data}) ...")
    info = agent.start()
    say(f"  issuer: {info['issuer']}\n  owner API: {info['owner_api']} (loopback only)\n")
    http = httpx.Client(timeout=10)
    try:
        idp = IdP(issuer="https://login.hospital.example")
        (data / "idp.json").write_text(json.dumps(idp.key.jwks))
        agent.cli("trust", "add", idp.issuer, "--jwks-file", str(data / "idp.json"), "--name", "City Hospital")
        say("1. You trust City Hospital's sign-in service to vouch for its clinicians.")

        lab = ResourceServer(http, agent.issuer, time.time)
        lab.register("City Lab", [DEVICE_GRANT, "refresh_token"])
        device = lab.start_device_flow()
        connect = next(i for i in agent.cli_json("inbox") if i.get("user_code") == device["user_code"])
        say(f"2. City Lab asks to connect; its code {device['user_code']} matches the inbox card, so you approve:")
        say("   " + agent.cli("approve", connect["id"]).stdout.strip())
        time.sleep(device["interval"])
        lab.poll_device(device["device_code"])
        results = lab.register_resource({"name": "Lab results", "resource_scopes": ["read", "write"]})
        say("   City Lab registered your 'Lab results' for protection.\n")

        clinic = RequestingClient(http, agent.issuer, time.time)
        clinic.register("Riverside Clinic EHR", [UMA_GRANT])
        ticket = lab.ticket({"resource_id": results, "resource_scopes": ["read"]})
        ask = clinic.ask(ticket, id_token=person_token(idp, clinic, purpose_of_use="TREAT"))
        waiting = ask.json()
        say(f"3. Dr. Bob Jones at Riverside Clinic asks to read your lab results: {waiting['error']}.")
        say("   Your inbox (consent-agent inbox):\n")
        say(agent.cli("inbox").stdout)

        [item] = [i for i in agent.cli_json("inbox") if i["kind"] == "access"]
        decision = choose(args.auto)
        if decision == "share":
            say(agent.cli("approve", item["id"], "--scopes", "read", "--days", "1").stdout.strip())
        else:
            say(agent.cli("deny", item["id"]).stdout.strip())
        answer = clinic.ask(waiting["ticket"])
        if answer.status_code == 200:
            seen = lab.introspect(answer.json()["access_token"])
            say(f"\n4. The clinic's next poll got a {answer.json()['token_type']}-bound token; the lab sees:")
            say("   " + json.dumps(seen["permissions"]))
        else:
            say(f"\n4. The clinic's next poll was refused: {answer.json()['error']}")
        say("\nThe activity log (consent-agent audit):\n" + agent.cli("audit", "--limit", "6").stdout)
        return 0
    finally:
        http.close()
        agent.stop()


if __name__ == "__main__":
    sys.exit(main())
