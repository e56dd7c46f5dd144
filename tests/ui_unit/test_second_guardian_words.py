"""The app's words and files for the second guardian, without a browser: whose yes a request still
needs, the request another guardian sent as its card shows it (from a real signed request), what an
applied answer did, and the files (named safely, never overwritten, told apart before any check)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from app.ui import words
from app.ui.screens.coguardian import Exchange, file_name, read_signed, signed_kind
from app.ui.widgets import Ui
from core.agent import Agent
from core.guardian import read_decision_request
from core.owner import Lifetime, Owner
from tests.guardian.conftest import Family, build_family
from tests.kit import make_agent
from tests.ui_unit.test_guardian_words import CO_GUARDIAN, ME_GUARDIAN, N

BEN = "https://ben.example"


@dataclass
class Parents:
    anna: Family
    ben_agent: Agent
    ben: Owner
    item: dict[str, Any]
    request: str


@pytest.fixture
def parents(tmp_path: Path) -> Iterator[Parents]:
    """Anna's agent holds Mia (both must agree, Ben is the other guardian); a clinic asks for her lab
    results and Anna has said yes to seeing them."""
    anna = build_family(tmp_path / "anna")
    ben_agent = make_agent(tmp_path / "ben", clock=anna.clock, public_url=BEN)
    ben = Owner(ben_agent)
    ben.rename_profile("me", "Ben")
    anna.owner.add_guardian("mia", name="Ben", agent_id=ben_agent.keys.agent_id, issuer=BEN)
    anna.owner.update_guardianship("mia", require="both")
    try:
        anna.ask(anna.labs, ["read", "write"])
        [item] = anna.owner.inbox()
        anna.owner.approve(item["id"], scopes=["read"])
        request = str(anna.owner.decision_request(item["id"])["request"])
        yield Parents(anna, ben_agent, ben, item, request)
    finally:
        anna.agent.close()
        ben_agent.close()


def test_whose_yes_a_request_still_needs():
    assert words.waiting_words(["Anna", "Ben"], "Anna") == "Needs your yes and Ben's: both guardians must agree"
    assert words.waiting_words(["Ben"], "Anna") == "Waiting for Ben's yes too: both guardians must agree"
    assert words.waiting_words(["Anna"], "Anna") == "Needs your yes: both guardians must agree"
    assert words.waiting_words([], "Anna") == "Waiting for the other guardian's yes too: both guardians must agree"
    assert words.approval_words(ME_GUARDIAN, N) == "You said yes"
    assert words.approval_words(CO_GUARDIAN, N) == "Ben said yes on their own agent"
    assert words.approval_words({**CO_GUARDIAN, "name": "Me"}, N) == "The other guardian said yes on their own agent"


def test_the_request_another_guardian_sent_in_the_words_of_its_card(parents: Parents):
    request = read_decision_request(parents.request, parents.ben_agent.now())
    assert words.asked_person(request) == "Dr. Bob Jones"
    assert words.asked_by_words(request) == (f"Signed by the agent at anna.example (id "
                                             f"{parents.anna.agent.keys.agent_id[:12]}…), which holds Mia's records")
    assert words.asked_approvals_words(request) == ["Anna said yes: they may see"]
    assert words.require_words(request["require"]) == "Both guardians must say yes to share; one no refuses it"
    assert words.require_words("one") == "One guardian's yes is enough to share; one no refuses it"
    assert words.permissions_words(request["permissions"]) == "see and add to or change Lab results"
    assert words.answer_by_words({"exp": 1_800_000_000}, UTC) == "Answer by 15 Jan 2027"
    assert words.answer_by_words({}) == "Answer soon"
    without = {**request, "requester": None, "approvals": [{"name": None, "scopes": None}], "iss": None}
    assert words.asked_person(without) == "someone using Riverside Clinic EHR"
    assert words.asked_approvals_words(without) == ["The other guardian said yes"]
    assert words.asked_by_words(without).startswith("Signed by the agent at anna.example, which holds")

    done = parents.ben.sign_decision(parents.request, approve=True, scopes=["read"], lifetime=Lifetime(days=30))
    assert words.signed_answer_words(done) == "You said yes to Dr. Bob Jones for Mia's records."
    assert "only on their agent at anna.example, and only for this request" in words.send_back_words(done)
    no = parents.ben.sign_decision(parents.request, approve=False)
    assert words.signed_answer_words(no) == "You said no to Dr. Bob Jones for Mia's records."


def test_what_an_applied_answer_did(parents: Parents):
    anna = parents.anna.owner
    yes = parents.ben.sign_decision(parents.request, approve=True, scopes=["read", "write"])
    assert words.applied_words(anna.accept_decision(yes["decision"]), "Anna") == (
        "Ben said yes: Lab results now shared with Dr. Bob Jones.")
    # now Ben is first: his yes waits for Anna's
    r = parents.anna.ask(parents.anna.labs, ["write"])
    assert r.json()["error"] == "request_submitted", r.text
    [second] = anna.inbox()
    signed = str(anna.decision_request(second["id"])["request"])
    first = anna.accept_decision(parents.ben.sign_decision(signed, approve=True)["decision"])
    assert words.applied_words(first, "Anna") == "Ben said yes; it still needs your yes."


def test_what_an_applied_no_did(parents: Parents):
    no = parents.ben.sign_decision(parents.request, approve=False)
    refused = parents.anna.owner.accept_decision(no["decision"])
    assert words.applied_words(refused, "Anna") == "Ben said no: Dr. Bob Jones is refused."


def test_files_are_named_from_the_request_id_and_never_name_a_path():
    assert file_name("req_AbC-12", "request") == "req_AbC-12.request.jwt"
    assert file_name("../../etc/passwd", "decision") == "etc_passwd.decision.jwt"
    assert file_name("", "decision") == "request.decision.jwt"
    assert "/" not in file_name("a/b\\c", "request") and len(file_name("x" * 500, "request")) < 90


def test_the_two_files_are_told_apart_before_any_check(parents: Parents):
    assert signed_kind(parents.request) == "request"
    assert signed_kind("  " + parents.request + "\n") == "request"
    decision = parents.ben.sign_decision(parents.request, approve=True)["decision"]
    assert signed_kind(decision) == "decision"
    for junk in ("", "hello", "e30.e30.x", "!!!.a.b", "bnVsbA.a.b"):  # "{}" and "null" as headers
        assert signed_kind(junk) is None


def test_a_file_is_read_from_its_path_unless_its_text_is_pasted(tmp_path: Path):
    f = tmp_path / "req.request.jwt"
    f.write_text("  a.b.c\n")
    assert read_signed(str(f), "") == "a.b.c"
    assert read_signed(str(f), " d.e.f ") == "d.e.f"
    with pytest.raises(ValueError, match=r"^Enter where the file is"):
        read_signed("  ", "")
    with pytest.raises(ValueError, match=r"^Could not read that file: No such file"):
        read_signed(str(tmp_path / "missing.jwt"), "")
    big = tmp_path / "big"
    big.write_bytes(b"a" * (64 * 1024 + 1))
    with pytest.raises(ValueError, match="too large"):
        read_signed(str(big), "")
    binary = tmp_path / "bin"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ValueError, match="is not a request or an answer"):
        read_signed(str(binary), "")


def test_the_files_are_private_and_a_second_ask_never_overwrites_the_first(tmp_path: Path):
    exchange = Exchange(cast(Ui, SimpleNamespace(ctx=SimpleNamespace(data_dir=tmp_path))))
    assert exchange.asked("req_1") is None
    first = exchange.save("req_1", "request", "one.two.three")
    assert first == tmp_path / "decisions" / "req_1.request.jwt"
    assert first.read_text() == "one.two.three\n"
    if os.name == "posix":
        assert stat.S_IMODE(first.stat().st_mode) == 0o600
    second = exchange.save("req_1", "request", "four.five.six")
    assert second.name == "req_1.request-2.jwt" and first.read_text() == "one.two.three\n"
    os.utime(first, (1, 1))
    assert exchange.asked("req_1") == second
    exchange.save("req_10", "request", "x.y.z")  # another request's file is not this one's
    exchange.save("req_1", "decision", "x.y.z")
    assert exchange.asked("req_1") == second
