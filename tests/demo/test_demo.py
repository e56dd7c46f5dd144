"""``consent-agent demo --auto``: the seed story through a real relay, as a newcomer's first run."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.e2e.agentproc import ROOT, env

EXCHANGE = re.compile(r"^ {6}(\S.{0,10}?) +(GET|POST|PUT|DELETE) +(\S+ \S+)  → (\d{3}) (.+)$")


def test_demo_auto_plays_the_whole_story_and_exits_0() -> None:
    done = subprocess.run([sys.executable, "-m", "app", "demo", "--auto"], cwd=ROOT, env=env(),
                          capture_output=True, text=True, timeout=120)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "[9/9] What Alice's agent recorded" in out and "The demo ran to the end." in out
    exchanges = [EXCHANGE.match(line).groups() for line in out.splitlines() if EXCHANGE.match(line)]
    seen = [(actor.strip(), method, where.split("?")[0], int(status), what) for actor, method, where, status, what
            in exchanges]

    def outcomes(actor: str, method: str, where: str) -> list[tuple[int, str]]:
        return [(status, what) for a, m, w, status, what in seen if (a, m, w) == (actor, method, where)]

    # the relay carried everything to the agent: each actor reached it at its relayed address
    assert {a for a, _, w, _, _ in seen if w.startswith("agent ")} == {"records", "Dr. Carol", "Dr. Bob", "monitor"}
    # the records server connected by the device grant and got a DPoP-bound PAT
    assert (200, "PAT (DPoP-bound)") in outcomes("records", "POST", "agent /token")
    # Dr. Carol's share made ahead: challenge, RPT, chart
    assert outcomes("Dr. Carol", "GET", "records /fhir/Condition")[:2] == [
        (401, "UMA challenge with a permission ticket"), (200, "2 entries")]
    # Dr. Bob waited for Alice, then got in, wrote his note, and was refused after the revocation
    bob_tokens = outcomes("Dr. Bob", "POST", "agent /token")
    assert bob_tokens[0] == (403, "request_submitted") and (200, "RPT (DPoP-bound)") in bob_tokens
    assert outcomes("Dr. Bob", "POST", "records /fhir/DocumentReference") == [(201, "DocumentReference "
                                                                                  "documentreference-8")]
    assert outcomes("Dr. Carol", "GET", "records /fhir/DocumentReference") == [(200, "2 entries")]
    # the monitor wrote three readings that both doctors read
    assert [s for s, _ in outcomes("monitor", "POST", "records /fhir/Observation")] == [401, 201, 201, 201]
    assert outcomes("Dr. Carol", "GET", "records /fhir/Observation")[-1] == (200, "4 entries")
    assert outcomes("Dr. Bob", "GET", "records /fhir/Observation")[-1] == (200, "4 entries")
    # after the revocation: Bob refused, Carol still in
    assert outcomes("Dr. Bob", "GET", "records /fhir/Condition")[-1] == (401, "invalid_token")
    assert outcomes("Dr. Carol", "GET", "records /fhir/Condition")[-1] == (200, "2 entries")
    assert (200, "token inactive") in outcomes("records", "POST", "agent /introspect")
