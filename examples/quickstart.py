"""Quickstart: a real consent-agent with its app, a lab, a clinician's request, and you deciding.

Run from the repository root:  python examples/quickstart.py  [--ui web|desktop|none] [--auto share|deny]

It starts ``consent-agent serve`` on loopback with a throw-away data directory and opens the app (a
window where there is a display, otherwise the web UI, whose address it prints). It connects a demo
lab (a resource server) through the device grant, and has a demo clinic ask for your lab results
with a verified identity. The request appears in the app's inbox: press Share or Deny there, or
type s or d in this terminal (the same as ``consent-agent approve`` / ``deny``), and see what the
clinic gets.
"""

from __future__ import annotations

import argparse
import json
import select
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


def typed_choice(timeout: float) -> str | None:
    """s or d typed in the terminal within ``timeout`` seconds, if any."""
    if not sys.stdin.isatty() and not select.select([sys.stdin], [], [], 0)[0]:
        return None
    ready, _, _ = select.select([sys.stdin], [], [], timeout)
    if not ready:
        return None
    answer = sys.stdin.readline().strip().lower()
    return {"s": "share", "share": "share", "d": "deny", "deny": "deny"}.get(answer)


def wait_for_decision(agent: AgentProcess, clinic: RequestingClient, item_id: str, ticket: str,
                      interval: int, auto: str | None) -> httpx.Response:
    """Poll as the clinic would, while you decide in the app or type s or d here."""
    decided = False
    while True:
        choice = auto if not decided else None
        if choice is None and not decided:
            choice = typed_choice(interval)
        else:
            time.sleep(0 if choice else interval)
        if choice and not decided:
            decided = True
            if choice == "share":
                say(agent.cli("approve", item_id, "--scopes", "read", "--days", "1").stdout.strip())
            else:
                say(agent.cli("deny", item_id).stdout.strip())
        answer = clinic.ask(ticket)
        body = answer.json()
        if answer.status_code == 200 or body.get("error") != "request_submitted":
            return answer
        ticket = body["ticket"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--auto", choices=["share", "deny"], help="decide without asking (for scripts)")
    parser.add_argument("--ui", choices=["web", "desktop", "none"], help="default: a window, or the web UI")
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="consent-agent-demo-"))
    agent = AgentProcess(data)
    say(f"Starting consent-agent (demo data in {data}) ...")
    info = agent.start(ui=args.ui, timeout=90)
    say(f"  issuer: {info['issuer']}\n  owner API: {info['owner_api']} (loopback only)")
    if info.get("ui"):
        say(f"  the app: {info['ui']}unlock?t={agent.owner_token}\n"
            "  (open it in a browser; the first time it asks you to choose a PIN for the app)")
    say("")
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
        if not args.auto:
            where = "in the app, or type s (Share) or d (Deny) and Enter here" if info.get("ui") else \
                "type s (Share) or d (Deny) and Enter"
            say(f"Decide {where}. The clinic keeps asking every {waiting['interval']} seconds ...")
        answer = wait_for_decision(agent, clinic, item["id"], waiting["ticket"], waiting["interval"], args.auto)
        if answer.status_code == 200:
            seen = lab.introspect(answer.json()["access_token"])
            say(f"\n4. The clinic's next poll got a {answer.json()['token_type']}-bound token; the lab sees:")
            say("   " + json.dumps(seen["permissions"]))
        else:
            say(f"\n4. The clinic's next poll was refused: {answer.json()['error']}")
        say("\nThe activity log (consent-agent audit):\n" + agent.cli("audit", "--limit", "6").stdout)
        if info.get("ui") and not args.auto:
            say("The app stays open; press Enter here to stop the demo.")
            sys.stdin.readline()
        return 0
    finally:
        http.close()
        agent.stop()


if __name__ == "__main__":
    sys.exit(main())
