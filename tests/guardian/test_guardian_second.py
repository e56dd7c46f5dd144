"""A second guardian on their own agent: Mia's profile lives on Anna's agent; Ben's decisions arrive
signed by his agent's identity key. With ``require: both`` a request needs both guardians' yes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from core import guardian
from core.agent import Agent
from core.errors import OwnerError
from core.owner import Owner
from tests.guardian.conftest import Family, build_family
from tests.kit import make_agent

BEN = "https://ben.example"


@dataclass
class Parents:
    anna: Family
    ben_agent: Agent
    ben: Owner


@pytest.fixture
def parents(tmp_path: Path) -> Iterator[Parents]:
    anna = build_family(tmp_path / "anna")
    ben_agent = make_agent(tmp_path / "ben", clock=anna.clock, public_url=BEN)
    ben = Owner(ben_agent)
    ben.rename_profile("me", "Ben")
    shown = anna.owner.add_guardian("mia", name="Ben", agent_id=ben_agent.keys.agent_id, issuer=BEN)
    assert [g["name"] for g in shown["guardianship"]["guardians"]] == ["Anna", "Ben"]
    anna.owner.update_guardianship("mia", require="both")
    try:
        yield Parents(anna, ben_agent, ben)
    finally:
        anna.agent.close()
        ben_agent.close()


def test_with_both_required_the_share_is_made_when_the_second_guardians_signed_yes_arrives(parents: Parents) -> None:
    anna, ben = parents.anna, parents.ben
    r = anna.ask(anna.labs, ["read", "write"])
    [item] = anna.owner.inbox()
    first = anna.owner.approve(item["id"])
    assert first["share"] is None and first["item"]["status"] == "pending" and first["item"]["waiting_for"] == ["Ben"]
    r = anna.clinic.ask(r.json()["ticket"])
    assert r.json()["error"] == "request_submitted"  # still waiting, with a fresh ticket

    asked = anna.owner.decision_request(item["id"])
    signed = ben.sign_decision(asked["request"], approve=True, scopes=["read"])
    assert signed["request"]["profile_name"] == "Mia" and signed["request"]["issuer"] == "https://anna.example"
    done = anna.owner.accept_decision(signed["decision"])
    share = done["share"]
    assert [p["scopes"] for p in share["permissions"]] == [["read"]]  # what both agreed to
    assert share["decided_by"]["id"] == f"agent:{parents.ben_agent.keys.agent_id}"
    assert share["decided_by"]["role"] == "guardian" and share["decided_by"]["name"] == "Ben"

    polled = anna.clinic.ask(r.json()["ticket"])
    assert polled.status_code == 200, polled.text
    info = anna.lab.introspect(polled.json()["access_token"])
    assert info["permissions"][0]["resource_scopes"] == ["read"]
    assert info["act"] == {"sub": parents.ben_agent.keys.agent_id, "iss": BEN}
    log = [e for e in anna.owner.audit(200, profile="mia") if e.get("inbox_id") == item["id"]
           and e["event"].startswith("request_approved")]
    assert [(e["event"], e["decided_by"]["name"]) for e in log] == [
        ("request_approved_waiting", "Anna"), ("request_approved", "Ben")]
    with pytest.raises(OwnerError, match="already approved"):
        anna.owner.accept_decision(signed["decision"])


def test_one_guardians_no_is_final(parents: Parents) -> None:
    anna, ben = parents.anna, parents.ben
    r = anna.ask(anna.labs)
    [item] = anna.owner.inbox()
    anna.owner.approve(item["id"])
    no = ben.sign_decision(anna.owner.decision_request(item["id"])["request"], approve=False)
    assert anna.owner.accept_decision(no["decision"])["item"]["status"] == "denied"
    assert anna.clinic.ask(r.json()["ticket"]).json()["error"] == "request_denied"


def test_only_a_registered_co_guardians_decision_for_this_agent_counts(parents: Parents, tmp_path: Path) -> None:
    anna = parents.anna
    anna.ask(anna.labs)
    [item] = anna.owner.inbox()
    request = anna.owner.decision_request(item["id"])["request"]
    eve_agent = make_agent(tmp_path / "eve", clock=anna.clock, public_url="https://eve.example")
    try:
        forged = Owner(eve_agent).sign_decision(request, approve=True)["decision"]
    finally:
        eve_agent.close()
    with pytest.raises(OwnerError, match="not from a co-guardian") as refused:
        anna.owner.accept_decision(forged)
    assert refused.value.status == 403
    now = anna.agent.now()
    elsewhere = parents.ben_agent.keys.sign_with_identity({
        "iss": parents.ben_agent.keys.agent_id, "aud": "https://elsewhere.example", "iat": now, "exp": now + 60,
        "item": item["id"], "digest": guardian.item_digest(anna.agent.state.get("inbox", "id", item["id"])),
        "decision": "approve"}, typ=guardian.DECISION_TYP)
    with pytest.raises(OwnerError, match=re.escape("for the agent at https://elsewhere.example")):
        anna.owner.accept_decision(elsewhere)
    assert anna.owner.inbox()[0]["status"] == "pending"


def test_an_excluded_request_never_goes_to_either_guardian(parents: Parents) -> None:
    anna = parents.anna
    assert anna.ask(anna.clinic_notes).json()["error"] == "request_denied"
    held = anna.agent.state.find("inbox", status="withheld")[0]["id"]
    with pytest.raises(OwnerError) as refused:
        anna.owner.decision_request(held)
    assert refused.value.status == 404
