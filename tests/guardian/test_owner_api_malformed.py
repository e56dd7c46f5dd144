"""Malformed input at the owner API's guardianship and hand-over routes, black-box through ``OwnerApp``
over real agents: Anna's (guardian of Mia, with a co-guardian Ben on his own agent), Ben's, and Mia's own
agent for imports.

One row of a table is one test. Each row sends one request and names the exact 4xx status and a piece of
the sentence the person reads (``message`` for a malformed request, else ``error``). Every row also checks
that the answer is a JSON object that must not be cached, that nothing was logged at ERROR level (no 500,
no traceback), and that no agent's state or activity log changed.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from core import guardian, handover
from core.agent import Agent
from core.owner import Owner
from core.state import TABLES
from tests.guardian.conftest import Family, build_family
from tests.kit import make_agent

TOKEN = "malformed-owner-api-token-" + "m" * 16
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ANNA, BEN, CARL, MIA = "https://anna.example", "https://ben.example", "https://carl.example", "https://mia.example"
SECRET = "a passphrase for Mia"
NEST = "[" * 100_000


def owner_api(owner: Owner, *, token: bool = True) -> TestClient:
    from core.owner_api import OwnerApp

    return TestClient(OwnerApp(owner, TOKEN), base_url="http://127.0.0.1", headers=AUTH if token else {})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --- the worlds -------------------------------------------------------------------------------------


@dataclass
class Home:
    """Anna's agent: Mia (a dependent, co-guardian Ben), Grandpa (a person Anna acts for), a request
    for Mia's lab results waiting, one for her excluded clinic notes withheld, a share made ahead."""

    family: Family
    ben_agent: Agent
    carl_agent: Agent
    item: str
    withheld: str
    share: str
    request: str
    """The decision request Anna's agent signed for Ben on ``item``."""
    apis: dict[str, TestClient] = field(default_factory=dict)

    @property
    def agents(self) -> list[Agent]:
        return [self.family.agent, self.ben_agent, self.carl_agent]

    def now(self) -> int:
        return int(self.family.agent.now())

    def digest(self) -> str:
        return guardian.item_digest(self.family.agent.state.get("inbox", "id", self.item) or {})

    def decision(self, *, by: Agent | None = None, typ: str = guardian.DECISION_TYP, **over: Any) -> str:
        """A decision on ``item`` signed by Ben's agent (or ``by``), with ``over`` changed."""
        signer = by or self.ben_agent
        now = self.now()
        claims = {"iss": signer.keys.agent_id, "issuer": signer.issuer, "aud": ANNA, "iat": now, "exp": now + 3600,
                  "jti": "j-1", "item": self.item, "digest": self.digest(), "decision": "approve", "scopes": None,
                  "expires_at": None, "once": False, "request_iss": self.family.agent.keys.agent_id, **over}
        return signer.keys.sign_with_identity({k: v for k, v in claims.items() if v is not ...}, typ=typ)

    def asked(self, *, by: Agent | None = None, **over: Any) -> str:
        """A decision request on ``item`` signed by Anna's agent (or ``by``), with ``over`` changed."""
        signer = by or self.family.agent
        now = self.now()
        claims = {"iss": self.family.agent.keys.agent_id, "issuer": ANNA, "iat": now, "exp": now + 3600,
                  "item": self.item, "digest": self.digest(), "profile_name": "Mia",
                  "permissions": [{"resource_id": self.family.labs, "scopes": ["write"]}], **over}
        return signer.keys.sign_with_identity({k: v for k, v in claims.items() if v is not ...},
                                              typ=guardian.REQUEST_TYP)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Home]:
    tmp = tmp_path_factory.mktemp("home")
    family = build_family(tmp / "anna", issuer=ANNA)
    ben_agent = make_agent(tmp / "ben", clock=family.clock, public_url=BEN)
    carl_agent = make_agent(tmp / "carl", clock=family.clock, public_url=CARL)
    try:
        Owner(ben_agent).rename_profile("me", "Ben")
        family.owner.add_profile("Grandpa")
        family.owner.add_guardian("mia", name="Ben", agent_id=ben_agent.keys.agent_id, issuer=BEN)
        share = family.owner.share(profile="mia", resource_id=family.labs, scopes=["read"],
                                   grantee="email:bob@clinic.example")["id"]
        assert family.ask(family.labs, ["write"]).json()["error"] == "request_submitted"
        assert family.ask(family.clinic_notes).json()["error"] == "request_denied"
        [item] = family.owner.inbox()
        [withheld] = family.agent.state.find("inbox", status="withheld")
        request = family.owner.decision_request(item["id"])["request"]
        h = Home(family, ben_agent, carl_agent, item["id"], withheld["id"], share, request)
        h.apis = {"anna": owner_api(family.owner), "ben": owner_api(Owner(ben_agent))}
        yield h
    finally:
        family.agent.close()
        ben_agent.close()
        carl_agent.close()


@dataclass
class Moved:
    """Mia's own agent, which imported one bundle from Anna's agent already; ``fresh`` is a second
    bundle of the same profile (never imported), ``done`` the imported one."""

    anna: Family
    mia_agent: Agent
    fresh: str
    done: str
    apis: dict[str, TestClient] = field(default_factory=dict)

    @property
    def agents(self) -> list[Agent]:
        return [self.anna.agent, self.mia_agent]

    def edited(self, **changes: Any) -> str:
        doc = json.loads(self.fresh)
        for path, value in changes.items():
            *parents, last = path.split("__")
            target = doc
            for p in parents:
                target = target[p]
            target[last] = value
        return json.dumps(doc)


@pytest.fixture(scope="module")
def moved(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moved]:
    tmp = tmp_path_factory.mktemp("moved")
    anna = build_family(tmp / "anna", issuer=ANNA)
    mia_agent = make_agent(tmp / "mia", clock=anna.clock, public_url=MIA)
    try:
        done = anna.owner.handover_export("mia", to=MIA, passphrase=SECRET)["bundle"]
        Owner(mia_agent).handover_import(done, passphrase=SECRET)
        fresh = anna.owner.handover_export("mia", to=MIA, passphrase=SECRET)["bundle"]
        m = Moved(anna, mia_agent, fresh, done)
        m.apis = {"anna": owner_api(anna.owner), "mia": owner_api(Owner(mia_agent))}
        yield m
    finally:
        anna.agent.close()
        mia_agent.close()


# --- checking one answer ------------------------------------------------------------------------------


def snapshot(agents: list[Agent]) -> list[Any]:
    """Every table and the head of the activity log of each agent."""
    out: list[Any] = []
    for a in agents:
        out.append({t: sorted(json.dumps(d, sort_keys=True) for d in a.state.all(t)) for t in TABLES})
        out.append(a.audit.tail(1))
    return out


def sentence(r: httpx.Response) -> str:
    body = r.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str), r.text
    return str(body.get("message") or body["error"])


def refused(r: httpx.Response, status: int, says: str) -> None:
    assert r.status_code == status, r.text
    text = sentence(r)
    assert says in text, text
    assert " " in text and "Traceback" not in text and len(text) < 400, text
    assert "no-store" in r.headers.get("cache-control", ""), r.headers


Body = dict[str, Any] | bytes | Callable[[Any], Any] | None


@dataclass(frozen=True)
class Row:
    name: str
    method: str
    path: str
    body: Body
    status: int
    says: str
    api: str = "anna"

    def send(self, world: Home | Moved, *, token: bool = True) -> httpx.Response:
        body = self.body(world) if callable(self.body) else self.body
        path = self.path.format(item=getattr(world, "item", ""), withheld=getattr(world, "withheld", ""),
                                share=getattr(world, "share", ""))
        client = world.apis[self.api]
        headers = {} if token else {"Authorization": "Bearer not-the-owner-token-at-all"}
        if isinstance(body, bytes):
            return client.request(self.method, path, content=body,
                                  headers={"Content-Type": "application/json", **headers})
        if self.method == "GET" or body is None:
            return client.request(self.method, path, headers=headers)
        return client.request(self.method, path, json=body, headers=headers)


def check(row: Row, world: Home | Moved, caplog: pytest.LogCaptureFixture) -> None:
    before = snapshot(world.agents)
    with caplog.at_level(logging.INFO):
        r = row.send(world)
    refused(r, row.status, row.says)
    assert [rec.getMessage() for rec in caplog.records if rec.levelno >= logging.ERROR] == []
    assert snapshot(world.agents) == before, "a refused request changed the state or the log"


# --- Anna's agent: profiles and guardianship ------------------------------------------------------------

INVALID = "invalid_request"
LONG = "x" * 60_000
PROFILES = [
    Row("name a number", "POST", "/v1/profiles", {"name": 5}, 400, "name must be a non-empty string"),
    Row("name a list", "POST", "/v1/profiles", {"name": ["Zoe"]}, 400, "name must be a non-empty string"),
    Row("name an object", "POST", "/v1/profiles", {"name": {"first": "Zoe"}}, 400, "name must be a non-empty string"),
    Row("name null", "POST", "/v1/profiles", {"name": None}, 400, "name must be a non-empty string"),
    Row("name missing", "POST", "/v1/profiles", {"dependent": True}, 400, "name must be a non-empty string"),
    Row("name blank", "POST", "/v1/profiles", {"name": "   "}, 400, "a profile needs a name of 1 to 80 characters"),
    Row("name huge", "POST", "/v1/profiles", {"name": LONG}, 400, "a profile needs a name of 1 to 80 characters"),
    Row("name taken", "POST", "/v1/profiles", {"name": "mia"}, 409, "a profile called 'mia' exists already"),
    Row("name with an unpaired surrogate", "POST", "/v1/profiles", b'{"name": "Zo\\ud800e"}', 400,
        "unpaired surrogate"),
    Row("unknown member", "POST", "/v1/profiles", {"name": "Zoe", "guardian": "me"}, 400,
        "unknown member(s): guardian"),
    Row("dependent a string", "POST", "/v1/profiles", {"name": "Zoe", "dependent": "yes"}, 400,
        "dependent must be true or false"),
    Row("dependent null", "POST", "/v1/profiles", {"name": "Zoe", "dependent": None}, 400,
        "dependent must be true or false"),
    Row("until a number", "POST", "/v1/profiles", {"name": "Zoe", "dependent": True, "until": 1893456000}, 400,
        "until must be a non-empty string"),
    Row("until in the past", "POST", "/v1/profiles", {"name": "Zoe", "dependent": True, "until": "2001-01-01"},
        400, "the guardianship's end date is already past"),
    Row("until garbage", "POST", "/v1/profiles", {"name": "Zoe", "dependent": True, "until": "next summer"}, 400,
        "'next summer' is not a date"),
    Row("until NaN", "POST", "/v1/profiles", {"name": "Zoe", "dependent": True, "until": "NaN"}, 400,
        "'NaN' is not a date"),
    Row("until infinity", "POST", "/v1/profiles", {"name": "Zoe", "dependent": True, "until": "Infinity"}, 400,
        "'Infinity' is not a date"),
    Row("until the 30th of February", "POST", "/v1/profiles",
        {"name": "Zoe", "dependent": True, "until": "2030-02-30"}, 400, "is not a date"),
    Row("until past the year 9999", "POST", "/v1/profiles",
        {"name": "Zoe", "dependent": True, "until": "9999-12-31T23:59:59-23:59"}, 400, "is not a date"),
    Row("until before the year 1", "POST", "/v1/profiles",
        {"name": "Zoe", "dependent": True, "until": "0001-01-01T00:00+14:00"}, 400, "is not a date"),
    Row("until huge", "POST", "/v1/profiles", {"name": "Zoe", "dependent": True, "until": "2" * 5000}, 400,
        "is not a date"),
    Row("until for a person", "POST", "/v1/profiles", {"name": "Zoe", "until": "2030-01-01"}, 400,
        "belong to a dependent's profile"),
    Row("exclude a string", "POST", "/v1/profiles", {"name": "Zoe", "dependent": True, "exclude": "PSY"}, 400,
        "exclude must be a list of non-empty strings"),
    Row("exclude holds a number", "POST", "/v1/profiles", {"name": "Zoe", "dependent": True, "exclude": [7]}, 400,
        "exclude must be a list of non-empty strings"),
    Row("exclude holds null", "POST", "/v1/profiles", {"name": "Zoe", "dependent": True, "exclude": [None]}, 400,
        "exclude must be a list of non-empty strings"),
    Row("exclude a bad code", "POST", "/v1/profiles", {"name": "Zoe", "dependent": True, "exclude": ["P SY"]},
        400, "'P SY' is not a sensitivity code"),
    Row("exclude a system without code", "POST", "/v1/profiles",
        {"name": "Zoe", "dependent": True, "exclude": ["http://terminology.hl7.org/CodeSystem/v3-ActCode|"]}, 400,
        "is not a sensitivity code"),
    Row("exclude a huge code", "POST", "/v1/profiles", {"name": "Zoe", "dependent": True, "exclude": ["A" * 5000]},
        400, "is not a sensitivity code"),
    Row("exclude for a person", "POST", "/v1/profiles", {"name": "Zoe", "exclude": ["PSY"]}, 400,
        "belong to a dependent's profile"),
    Row("covers empty", "POST", "/v1/profiles", {"name": "Zoe", "dependent": True, "covers": []}, 400,
        "covers must be a list of non-empty strings"),
    Row("covers unknown", "POST", "/v1/profiles", {"name": "Zoe", "dependent": True, "covers": ["drive"]}, 400,
        "a guardianship covers some of: approve, deny, share, revoke, connect"),
    Row("covers an object", "POST", "/v1/profiles", {"name": "Zoe", "dependent": True, "covers": {"approve": 1}},
        400, "covers must be a list of non-empty strings"),
    Row("body a list", "POST", "/v1/profiles", b'[{"name": "Zoe"}]', 400, "the body must be a JSON object"),
    Row("body not JSON", "POST", "/v1/profiles", b'{"name": "Zoe"', 400, "the body is not valid JSON"),
    Row("body nested deep", "POST", "/v1/profiles", NEST.encode()[:60_000], 400, "the body is not valid JSON"),
    Row("body too large", "POST", "/v1/profiles", json.dumps({"name": "x" * 70_000}).encode(), 413,
        "the body is larger than 65536 bytes"),
    Row("show an unknown profile", "GET", "/v1/profiles/nobody", None, 404, "no profile 'nobody'"),
    Row("show a profile id too long", "GET", "/v1/profiles/" + "a" * 200, None, 404, "no such endpoint"),
    Row("acting for an unknown profile", "GET", "/v1/profiles/nobody/acting", None, 404, "no profile 'nobody'"),
    Row("rename to a number", "POST", "/v1/profiles/mia/rename", {"name": 1}, 400, "name must be a non-empty string"),
    Row("rename without a name", "POST", "/v1/profiles/mia/rename", {}, 400, "name must be a non-empty string"),
    Row("rename to a huge name", "POST", "/v1/profiles/mia/rename", {"name": LONG}, 400,
        "a profile needs a name of 1 to 80 characters"),
    Row("rename to a taken name", "POST", "/v1/profiles/mia/rename", {"name": "grandpa"}, 409,
        "a profile called 'grandpa' exists already"),
    Row("rename with an unknown member", "POST", "/v1/profiles/mia/rename", {"name": "Mia", "kind": "owner"}, 400,
        "unknown member(s): kind"),
    Row("rename an unknown profile", "POST", "/v1/profiles/nobody/rename", {"name": "Zoe"}, 404,
        "no profile 'nobody'"),
    Row("rename with an unpaired surrogate", "POST", "/v1/profiles/mia/rename", b'{"name": "Mi\\udc00a"}', 400,
        "unpaired surrogate"),
]

GUARDIANSHIP = [
    Row("nothing to change", "POST", "/v1/profiles/mia/guardianship", {}, 400, "nothing to change"),
    Row("until in the past", "POST", "/v1/profiles/mia/guardianship", {"until": "2001-01-01"}, 400,
        "that date is already past"),
    Row("until later", "POST", "/v1/profiles/mia/guardianship", {"until": "2040-01-01"}, 400,
        "a guardianship can end earlier, never later (it ends on 2027-03-02)"),
    Row("until garbage", "POST", "/v1/profiles/mia/guardianship", {"until": "soon"}, 400, "'soon' is not a date"),
    Row("until an offset out of range", "POST", "/v1/profiles/mia/guardianship",
        {"until": "2027-02-01T00:00+99:00"}, 400, "is not a date"),
    Row("until a number", "POST", "/v1/profiles/mia/guardianship", {"until": 12}, 400,
        "until must be a non-empty string"),
    Row("until a list", "POST", "/v1/profiles/mia/guardianship", {"until": ["2027-02-01"]}, 400,
        "until must be a non-empty string"),
    Row("exclude a string", "POST", "/v1/profiles/mia/guardianship", {"exclude": "PSY"}, 400,
        "exclude must be a list of non-empty strings"),
    Row("exclude empty", "POST", "/v1/profiles/mia/guardianship", {"exclude": []}, 400,
        "exclude must be a list of non-empty strings"),
    Row("exclude a bad code", "POST", "/v1/profiles/mia/guardianship", {"exclude": ["a b"]}, 400,
        "'a b' is not a sensitivity code"),
    Row("covers unknown", "POST", "/v1/profiles/mia/guardianship", {"covers": ["fly"]}, 400,
        "a guardianship covers some of"),
    Row("require three", "POST", "/v1/profiles/mia/guardianship", {"require": "three"}, 400, "require is one or both"),
    Row("require a number", "POST", "/v1/profiles/mia/guardianship", {"require": 2}, 400,
        "require must be a non-empty string"),
    Row("unknown member", "POST", "/v1/profiles/mia/guardianship", {"ends": "2027-02-01"}, 400,
        "unknown member(s): ends"),
    Row("the owner's profile", "POST", "/v1/profiles/me/guardianship", {"until": "2027-02-01"}, 400,
        "Anna is not a dependent in your care on this agent"),
    Row("a person's profile", "POST", "/v1/profiles/grandpa/guardianship", {"covers": ["approve"]}, 400,
        "Grandpa is not a dependent in your care on this agent"),
    Row("an unknown profile", "POST", "/v1/profiles/nobody/guardianship", {"until": "2027-02-01"}, 404,
        "no profile 'nobody'"),
    Row("end the owner's profile", "POST", "/v1/profiles/me/end", {}, 400, "Anna is not a dependent in your care"),
    Row("end a person's profile", "POST", "/v1/profiles/grandpa/end", None, 400, "is not a dependent in your care"),
    Row("end an unknown profile", "POST", "/v1/profiles/nobody/end", {}, 404, "no profile 'nobody'"),
    Row("end with a member", "POST", "/v1/profiles/mia/end", {"when": "now"}, 400, "unknown member(s): when"),
    Row("co-guardian without anything", "POST", "/v1/profiles/mia/guardians", {}, 400,
        "name must be a non-empty string"),
    Row("co-guardian without an agent id", "POST", "/v1/profiles/mia/guardians", {"name": "Dan"}, 400,
        "agent_id must be a non-empty string"),
    Row("co-guardian agent id short", "POST", "/v1/profiles/mia/guardians", {"name": "Dan", "agent_id": "short"},
        400, "an agent id is the 43-character thumbprint"),
    Row("co-guardian agent id a list", "POST", "/v1/profiles/mia/guardians", {"name": "Dan", "agent_id": ["A" * 43]},
        400, "agent_id must be a non-empty string"),
    Row("co-guardian is this agent", "POST", "/v1/profiles/mia/guardians",
        lambda h: {"name": "Dan", "agent_id": h.family.agent.keys.agent_id}, 400, "that is this agent"),
    Row("co-guardian already there", "POST", "/v1/profiles/mia/guardians",
        lambda h: {"name": "Ben again", "agent_id": h.ben_agent.keys.agent_id}, 409,
        "Ben again is a guardian of Mia already"),
    Row("co-guardian issuer http", "POST", "/v1/profiles/mia/guardians",
        {"name": "Dan", "agent_id": "D" * 43, "issuer": "http://dan.example"}, 400,
        "the guardian's agent must be an https URL"),
    Row("co-guardian issuer not a URL", "POST", "/v1/profiles/mia/guardians",
        {"name": "Dan", "agent_id": "D" * 43, "issuer": "dan's laptop"}, 400, "must be an https URL"),
    Row("co-guardian name huge", "POST", "/v1/profiles/mia/guardians", {"name": LONG, "agent_id": "D" * 43}, 400,
        "the guardian needs a name of 1 to 80 characters"),
    Row("co-guardian name with an unpaired surrogate", "POST", "/v1/profiles/mia/guardians",
        b'{"name": "D\\udc00n", "agent_id": "' + b"D" * 43 + b'"}', 400, "unpaired surrogate"),
    Row("co-guardian require maybe", "POST", "/v1/profiles/mia/guardians",
        {"name": "Dan", "agent_id": "D" * 43, "require": "maybe"}, 400, "require is one or both"),
    Row("co-guardian for the owner", "POST", "/v1/profiles/me/guardians", {"name": "Dan", "agent_id": "D" * 43}, 400,
        "is not a dependent in your care"),
    Row("co-guardian unknown member", "POST", "/v1/profiles/mia/guardians",
        {"name": "Dan", "agent_id": "D" * 43, "role": "parent"}, 400, "unknown member(s): role"),
    Row("remove without a guardian", "POST", "/v1/profiles/mia/guardians/remove", {}, 400,
        "guardian must be a non-empty string"),
    Row("remove the owner", "POST", "/v1/profiles/mia/guardians/remove", {"guardian": "me"}, 404,
        "'me' is not another guardian of Mia"),
    Row("remove an unknown guardian", "POST", "/v1/profiles/mia/guardians/remove", {"guardian": "agent:nobody"},
        404, "'agent:nobody' is not another guardian of Mia"),
    Row("remove a number", "POST", "/v1/profiles/mia/guardians/remove", {"guardian": 5}, 400,
        "guardian must be a non-empty string"),
    Row("remove on the owner's profile", "POST", "/v1/profiles/me/guardians/remove", {"guardian": "agent:x"}, 400,
        "is not a dependent in your care"),
]

HANDOVER = [
    Row("no destination", "POST", "/v1/profiles/mia/handover", {"passphrase": SECRET}, 400,
        "to must be a non-empty string"),
    Row("no passphrase", "POST", "/v1/profiles/mia/handover", {"to": MIA}, 400,
        "passphrase must be a non-empty string"),
    Row("passphrase a number", "POST", "/v1/profiles/mia/handover", {"to": MIA, "passphrase": 12345678}, 400,
        "passphrase must be a non-empty string"),
    Row("passphrase short", "POST", "/v1/profiles/mia/handover", {"to": MIA, "passphrase": "short"}, 400,
        "a passphrase of at least 8 characters"),
    Row("destination http", "POST", "/v1/profiles/mia/handover", {"to": "http://mia.example", "passphrase": SECRET},
        400, "the dependent's agent must be an https URL"),
    Row("destination not a URL", "POST", "/v1/profiles/mia/handover", {"to": "Mia's phone", "passphrase": SECRET},
        400, "the dependent's agent must be an https URL"),
    Row("destination a list", "POST", "/v1/profiles/mia/handover", {"to": [MIA], "passphrase": SECRET}, 400,
        "to must be a non-empty string"),
    Row("destination this agent", "POST", "/v1/profiles/mia/handover", {"to": ANNA + "/", "passphrase": SECRET},
        400, "that is this agent"),
    Row("the owner's profile", "POST", "/v1/profiles/me/handover", {"to": MIA, "passphrase": SECRET}, 400,
        "your own profile moves with a key backup"),
    Row("an unknown profile", "POST", "/v1/profiles/nobody/handover", {"to": MIA, "passphrase": SECRET}, 404,
        "no profile 'nobody'"),
    Row("unknown member", "POST", "/v1/profiles/mia/handover", {"to": MIA, "passphrase": SECRET, "out": "x"}, 400,
        "unknown member(s): out"),
]

REVIEW_AND_VIEWS = [
    Row("review an unknown profile", "GET", "/v1/shares/review?profile=nobody", None, 404, "no profile 'nobody'"),
    Row("keep an unknown share", "POST", "/v1/shares/sh_nope/keep", {}, 404, "no share 'sh_nope'"),
    Row("keep a share not under review", "POST", "/v1/shares/{share}/keep", {}, 409, "is not waiting for a review"),
    Row("keep with a member", "POST", "/v1/shares/{share}/keep", {"until": "2030-01-01"}, 400,
        "unknown member(s): until"),
    Row("inbox of an unknown profile", "GET", "/v1/inbox?profile=nobody", None, 404, "no profile 'nobody'"),
    Row("shares of an unknown profile", "GET", "/v1/shares?profile=nobody", None, 404, "no profile 'nobody'"),
    Row("resources of an unknown profile", "GET", "/v1/resources?profile=nobody", None, 404, "no profile 'nobody'"),
    Row("connections of an unknown profile", "GET", "/v1/connections?profile=nobody", None, 404,
        "no profile 'nobody'"),
    Row("audit of an unknown profile", "GET", "/v1/audit?profile=nobody", None, 404, "no profile 'nobody'"),
    Row("audit with a bad limit", "GET", "/v1/audit?profile=mia&limit=-1", None, 400, "limit must be a whole number"),
]

CO_GUARDIAN = [
    Row("ask about an unknown request", "POST", "/v1/inbox/req_nope/decision-request", {}, 404,
        "no request 'req_nope' in the inbox"),
    Row("ask about a withheld request", "POST", "/v1/inbox/{withheld}/decision-request", {}, 404, "in the inbox"),
    Row("ask with a member", "POST", "/v1/inbox/{item}/decision-request", {"to": "Ben"}, 400,
        "unknown member(s): to"),
    Row("decision missing", "POST", "/v1/decisions", {}, 400, "decision must be a non-empty string"),
    Row("decision a number", "POST", "/v1/decisions", {"decision": 5}, 400, "decision must be a non-empty string"),
    Row("decision an object", "POST", "/v1/decisions", {"decision": {"approve": True}}, 400,
        "decision must be a non-empty string"),
    Row("decision garbage", "POST", "/v1/decisions", {"decision": "yes please"}, 400, "that is not a signed decision"),
    Row("decision three garbage segments", "POST", "/v1/decisions", {"decision": "a.b.c"}, 400,
        "that is not a signed decision"),
    Row("decision huge", "POST", "/v1/decisions", {"decision": "e" * 40_000}, 400, "that is not a signed decision"),
    Row("decision payload a list", "POST", "/v1/decisions",
        {"decision": b64(b'{"alg":"ES256"}') + "." + b64(b"[1]") + ".c2ln"}, 400, "that is not a signed decision"),
    Row("decision payload nested deep", "POST", "/v1/decisions",
        {"decision": b64(b'{"alg":"ES256"}') + "." + b64(NEST.encode()[:20_000]) + ".c2ln"}, 400,
        "that is not a signed decision"),
    Row("decision unsigned", "POST", "/v1/decisions",
        lambda h: {"decision": h.decision().rsplit(".", 1)[0] + "."}, 400, "does not check out"),
    Row("decision expired", "POST", "/v1/decisions", lambda h: {"decision": h.decision(exp=h.now() - 1)}, 400,
        "this decision has expired"),
    Row("decision without exp", "POST", "/v1/decisions", lambda h: {"decision": h.decision(exp=...)}, 400,
        "this decision has expired"),
    Row("decision for another agent", "POST", "/v1/decisions",
        lambda h: {"decision": h.decision(aud="https://other.example")}, 403,
        "this decision is for the agent at https://other.example, not this one"),
    Row("decision signed by a non-guardian", "POST", "/v1/decisions",
        lambda h: {"decision": h.decision(by=h.carl_agent)}, 403,
        "this decision is not from a co-guardian of the profile it names"),
    Row("decision naming Ben but signed by another key", "POST", "/v1/decisions",
        lambda h: {"decision": h.decision(by=h.carl_agent, iss=h.ben_agent.keys.agent_id)}, 400,
        "signed by a key other than the agent's identity key"),
    Row("decision of the wrong type", "POST", "/v1/decisions",
        lambda h: {"decision": h.decision(typ=guardian.REQUEST_TYP)}, 400, "is not of type consent-decision+jwt"),
    Row("decision on an unknown request", "POST", "/v1/decisions", lambda h: {"decision": h.decision(item="req_x")},
        403, "not from a co-guardian"),
    Row("decision on another version of the request", "POST", "/v1/decisions",
        lambda h: {"decision": h.decision(digest="0" * 64)}, 409, "made on another version of the request"),
    Row("decision neither yes nor no", "POST", "/v1/decisions", lambda h: {"decision": h.decision(decision="maybe")},
        400, "this decision neither approves nor denies"),
    Row("decision scopes not asked for", "POST", "/v1/decisions",
        lambda h: {"decision": h.decision(scopes=["delete"])}, 400, "scope 'delete' was not asked for"),
    Row("decision scopes malformed", "POST", "/v1/decisions",
        lambda h: {"decision": h.decision(scopes=[["read"]])}, 400, "this decision is malformed"),
    Row("decision scopes a string", "POST", "/v1/decisions", lambda h: {"decision": h.decision(scopes="read")},
        400, "this decision is malformed"),
    Row("decision end date a string", "POST", "/v1/decisions",
        lambda h: {"decision": h.decision(expires_at="tomorrow")}, 400, "this decision is malformed"),
    Row("decision on a request this agent did not sign", "POST", "/v1/decisions",
        lambda h: {"decision": h.decision(request_iss=h.carl_agent.keys.agent_id)}, 403,
        "answers a decision request this agent did not make"),
    Row("decision with a member", "POST", "/v1/decisions", lambda h: {"decision": h.decision(), "approve": True},
        400, "unknown member(s): approve"),
    Row("sign without a request", "POST", "/v1/decisions/sign", {"approve": True}, 400,
        "request must be a non-empty string", "ben"),
    Row("sign garbage", "POST", "/v1/decisions/sign", {"request": "please approve", "approve": True}, 400,
        "the signed document does not check out", "ben"),
    Row("sign a huge request", "POST", "/v1/decisions/sign", {"request": "r" * 40_000, "approve": True}, 400,
        "that is not a signed decision", "ben"),
    Row("sign an expired request", "POST", "/v1/decisions/sign",
        lambda h: {"request": h.asked(exp=h.now() - 1), "approve": True}, 400,
        "this decision request has expired; ask for a new one", "ben"),
    Row("sign an incomplete request", "POST", "/v1/decisions/sign",
        lambda h: {"request": h.asked(digest=...), "approve": True}, 400, "this decision request is incomplete", "ben"),
    Row("sign a request with malformed permissions", "POST", "/v1/decisions/sign",
        lambda h: {"request": h.asked(permissions=["write"]), "approve": True}, 400,
        "this decision request is incomplete", "ben"),
    Row("sign a forged request", "POST", "/v1/decisions/sign",
        lambda h: {"request": h.asked(by=h.carl_agent), "approve": True}, 400,
        "signed by a key other than the agent's identity key", "ben"),
    Row("sign a decision for a scope not asked", "POST", "/v1/decisions/sign",
        lambda h: {"request": h.request, "approve": True, "scopes": ["delete"]}, 400,
        "scope 'delete' was not asked for", "ben"),
    Row("sign with approve a string", "POST", "/v1/decisions/sign",
        lambda h: {"request": h.request, "approve": "yes"}, 400, "approve must be true or false", "ben"),
    Row("sign with scopes a string", "POST", "/v1/decisions/sign",
        lambda h: {"request": h.request, "approve": True, "scopes": "read"}, 400,
        "scopes must be a list of non-empty strings", "ben"),
    Row("sign with days negative", "POST", "/v1/decisions/sign",
        lambda h: {"request": h.request, "approve": True, "days": -3}, 400, "days must be a positive number", "ben"),
    Row("sign with days NaN-ish", "POST", "/v1/decisions/sign",
        lambda h: {"request": h.request, "approve": True, "days": "NaN"}, 400, "days must be a positive number", "ben"),
    Row("sign with until in the past", "POST", "/v1/decisions/sign",
        lambda h: {"request": h.request, "approve": True, "until": "2001-01-01"}, 400, "that date is already past",
        "ben"),
    Row("sign with until garbage", "POST", "/v1/decisions/sign",
        lambda h: {"request": h.request, "approve": True, "until": "whenever"}, 400, "'whenever' is not a date", "ben"),
    Row("sign with two lifetimes", "POST", "/v1/decisions/sign",
        lambda h: {"request": h.request, "approve": True, "once": True, "days": 3}, 400,
        "give at most one of once, days, until", "ben"),
    Row("sign with a member", "POST", "/v1/decisions/sign",
        lambda h: {"request": h.request, "approve": True, "why": "ok"}, 400, "unknown member(s): why", "ben"),
]


@pytest.mark.parametrize("row", PROFILES + GUARDIANSHIP + HANDOVER + REVIEW_AND_VIEWS + CO_GUARDIAN,
                         ids=lambda row: f"{row.method} {row.path} {row.name}")
def test_a_malformed_request_gets_a_clear_4xx_and_changes_nothing(
        row: Row, home: Home, caplog: pytest.LogCaptureFixture) -> None:
    check(row, home, caplog)


# --- Mia's agent: importing a bundle --------------------------------------------------------------------


def at_mia(name: str, method: str, path: str, body: Body, status: int, says: str, api: str = "mia") -> Row:
    """A row sent to Mia's agent unless it names another."""
    return Row(name, method, path, body, status, says, api)


def flipped(text: str) -> str:
    """``text`` with one base64url character changed."""
    return text[:10] + ("A" if text[10] != "A" else "B") + text[11:]


IMPORT = [
    at_mia("no bundle", "POST", "/v1/profiles/import", {"passphrase": SECRET}, 400,
           "bundle must be a non-empty string"),
    at_mia("no passphrase", "POST", "/v1/profiles/import", lambda m: {"bundle": m.fresh}, 400,
        "passphrase must be a non-empty string"),
    at_mia("bundle a number", "POST", "/v1/profiles/import", {"bundle": 5, "passphrase": SECRET}, 400,
        "bundle must be a non-empty string"),
    at_mia("bundle an object", "POST", "/v1/profiles/import", lambda m: {"bundle": json.loads(m.fresh),
                                                                      "passphrase": SECRET}, 400,
        "bundle must be a non-empty string"),
    at_mia("bundle garbage", "POST", "/v1/profiles/import", {"bundle": "hello", "passphrase": SECRET}, 400,
        "this is not a consent-agent hand-over bundle"),
    at_mia("bundle a JSON list", "POST", "/v1/profiles/import", {"bundle": "[1, 2]", "passphrase": SECRET}, 400,
        "this is not a consent-agent hand-over bundle"),
    at_mia("bundle nested deep", "POST", "/v1/profiles/import", {"bundle": NEST, "passphrase": SECRET}, 400,
        "this is not a consent-agent hand-over bundle"),
    at_mia("bundle of another format", "POST", "/v1/profiles/import",
        lambda m: {"bundle": m.edited(format=2), "passphrase": SECRET}, 400,
        "this is not a consent-agent hand-over bundle"),
    at_mia("bundle too large", "POST", "/v1/profiles/import",
        lambda m: {"bundle": "x" * (handover.MAX_BUNDLE + 1), "passphrase": SECRET}, 400, "the bundle is too large"),
    at_mia("body over the import limit", "POST", "/v1/profiles/import",
        lambda m: json.dumps({"bundle": "x" * (2 * handover.MAX_BUNDLE + 1), "passphrase": SECRET}).encode(), 413,
        "the body is larger than"),
    at_mia("wrong passphrase", "POST", "/v1/profiles/import",
           lambda m: {"bundle": m.fresh, "passphrase": "not it at all"}, 400,
           "wrong passphrase for this bundle (or the bundle was altered)"),
    at_mia("passphrase with an unpaired surrogate", "POST", "/v1/profiles/import",
        lambda m: json.dumps({"bundle": m.fresh, "passphrase": "abcdefgh"}).replace('"abcdefgh"', '"abcd\\ud800"')
        .encode(), 400, "unpaired surrogate"),
    at_mia("header destination changed", "POST", "/v1/profiles/import",
        lambda m: {"bundle": m.edited(to="https://mallory.example"), "passphrase": SECRET}, 400,
        "wrong passphrase for this bundle (or the bundle was altered)"),
    at_mia("header source changed", "POST", "/v1/profiles/import",
        lambda m: {"bundle": m.edited(from_agent_id="M" * 43), "passphrase": SECRET}, 400,
        "wrong passphrase for this bundle (or the bundle was altered)"),
    at_mia("ciphertext changed", "POST", "/v1/profiles/import",
        lambda m: {"bundle": m.edited(ciphertext=flipped(json.loads(m.fresh)["ciphertext"])), "passphrase": SECRET},
        400, "wrong passphrase for this bundle (or the bundle was altered)"),
    at_mia("ciphertext not base64url", "POST", "/v1/profiles/import",
        lambda m: {"bundle": m.edited(ciphertext="y"), "passphrase": SECRET}, 400, "the bundle is damaged"),
    at_mia("ciphertext missing", "POST", "/v1/profiles/import",
        lambda m: {"bundle": m.edited(ciphertext=None), "passphrase": SECRET}, 400, "the bundle is damaged"),
    at_mia("nonce a list", "POST", "/v1/profiles/import",
        lambda m: {"bundle": m.edited(nonce=[1]), "passphrase": SECRET}, 400, "the bundle is damaged"),
    at_mia("no encryption", "POST", "/v1/profiles/import",
        lambda m: {"bundle": m.edited(enc="none"), "passphrase": SECRET}, 400, "the bundle is damaged"),
    at_mia("scrypt asking for gigabytes", "POST", "/v1/profiles/import",
        lambda m: {"bundle": m.edited(kdf__n=2**30), "passphrase": SECRET}, 400, "scrypt parameters out of range"),
    at_mia("scrypt weaker than ours", "POST", "/v1/profiles/import",
        lambda m: {"bundle": m.edited(kdf__n=2**4), "passphrase": SECRET}, 400, "scrypt parameters out of range"),
    at_mia("scrypt parameters as strings", "POST", "/v1/profiles/import",
        lambda m: {"bundle": m.edited(kdf__r="8"), "passphrase": SECRET}, 400, "scrypt parameters out of range"),
    at_mia("scrypt salt short", "POST", "/v1/profiles/import",
        lambda m: {"bundle": m.edited(kdf__salt="AAAA"), "passphrase": SECRET}, 400, "scrypt salt too short"),
    at_mia("another key derivation", "POST", "/v1/profiles/import",
        lambda m: {"bundle": m.edited(kdf={"name": "pbkdf2"}), "passphrase": SECRET}, 400, "unknown key derivation"),
    at_mia("imported already", "POST", "/v1/profiles/import", lambda m: {"bundle": m.done, "passphrase": SECRET}, 409,
        "this bundle was imported already"),
    at_mia("the same records again", "POST", "/v1/profiles/import", lambda m: {"bundle": m.fresh, "passphrase": SECRET},
        409, "was the profile imported before?"),
    at_mia("a bundle for another agent", "POST", "/v1/profiles/import",
        lambda m: {"bundle": m.fresh, "passphrase": SECRET}, 400,
        f"this bundle is for the agent at {MIA}; this agent is {ANNA}", "anna"),
    at_mia("unknown member", "POST", "/v1/profiles/import",
        lambda m: {"bundle": m.fresh, "passphrase": SECRET, "profile": "mia"}, 400, "unknown member(s): profile"),
    at_mia("guardianship of a handed-over profile", "POST", "/v1/profiles/mia/guardianship",
        {"until": "2027-02-01"}, 400, "Mia is not a dependent in your care", "anna"),
    at_mia("share on a handed-over profile", "POST", "/v1/shares",
        lambda m: {"profile": "mia", "resource_id": m.anna.labs, "scopes": ["read"], "with": "email:x@y.example"},
        409, "handed over to https://mia.example; it is decided there now", "anna"),
    at_mia("keep a share that is not Mia's to keep", "POST", "/v1/shares/sh_nope/keep", {}, 404, "no share 'sh_nope'",
        "mia"),
]


@pytest.mark.parametrize("row", IMPORT, ids=lambda row: f"{row.api}: {row.name}")
def test_a_malformed_or_misaddressed_bundle_is_refused_and_imports_nothing(
        row: Row, moved: Moved, caplog: pytest.LogCaptureFixture) -> None:
    check(row, moved, caplog)


def test_a_bundle_made_by_this_agent_is_not_imported_here(moved: Moved, caplog: pytest.LogCaptureFixture) -> None:
    anna = moved.anna.agent
    content = handover.gather(anna, {"id": "me"})
    blob, _ = handover.seal(anna, content, to=ANNA, passphrase=SECRET)
    row = Row("made here", "POST", "/v1/profiles/import", {"bundle": blob.decode(), "passphrase": SECRET}, 400,
              "this bundle was made by this agent", "anna")
    check(row, moved, caplog)


@pytest.mark.parametrize("content", [
    {"resources": [5]},
    {"resources": [{"name": "no id"}]},
    {"shares": ["sh_1"]},
    {"shares": [{"id": "sh_1", "permissions": "all"}]},
    {"clients": [None]},
    {"clients": [{"client_name": "no id"}]},
    {"connections": [7]},
    {"profile": "Mia"},
    {"resources": {"_id": "rs_1"}},
], ids=lambda c: json.dumps(c))
def test_a_signed_bundle_with_malformed_content_is_refused_whole(
        content: dict[str, Any], moved: Moved, caplog: pytest.LogCaptureFixture) -> None:
    """The content is signed, but by whichever agent made the bundle: its shape is checked before
    anything of it is written, so a bad bundle leaves no half-import behind."""
    anna = moved.anna.agent
    full = handover.gather(anna, anna.state.get("profiles", "id", "mia") or {})
    full["clients"] = [{"client_id": "c_new_here", "client_name": "New"}, *full["clients"]]
    blob, _ = handover.seal(anna, {**full, **content}, to=MIA, passphrase=SECRET)
    row = Row("malformed content", "POST", "/v1/profiles/import", {"bundle": blob.decode(), "passphrase": SECRET},
              400, "the bundle is damaged", "mia")
    check(row, moved, caplog)


# --- without the owner token ------------------------------------------------------------------------------

ROUTES = [
    ("POST", "/v1/profiles", {"name": "Zoe", "dependent": True}),
    ("GET", "/v1/profiles/mia", None),
    ("GET", "/v1/profiles/mia/acting", None),
    ("POST", "/v1/profiles/mia/rename", {"name": "Mimi"}),
    ("POST", "/v1/profiles/mia/guardianship", {"covers": ["approve"]}),
    ("POST", "/v1/profiles/mia/end", {}),
    ("POST", "/v1/profiles/mia/guardians", {"name": "Dan", "agent_id": "D" * 43}),
    ("POST", "/v1/profiles/mia/guardians/remove", {"guardian": "agent:x"}),
    ("POST", "/v1/profiles/mia/handover", {"to": MIA, "passphrase": SECRET}),
    ("POST", "/v1/profiles/import", {"bundle": "{}", "passphrase": SECRET}),
    ("GET", "/v1/profiles/history", None),
    ("GET", "/v1/shares/review", None),
    ("POST", "/v1/shares/{share}/keep", {}),
    ("POST", "/v1/inbox/{item}/decision-request", {}),
    ("POST", "/v1/decisions/sign", {"request": "x", "approve": True}),
    ("POST", "/v1/decisions", {"decision": "x"}),
    ("GET", "/v1/notices", None),
    ("GET", "/v1/inbox?profile=mia", None),
    ("GET", "/v1/audit?profile=mia", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_without_the_owner_token_every_new_route_is_unauthorized(
        method: str, path: str, body: dict[str, Any] | None, home: Home, caplog: pytest.LogCaptureFixture) -> None:
    before = snapshot(home.agents)
    row = Row("no token", method, path, body, 401, "unauthorized")
    with caplog.at_level(logging.INFO):
        r = row.send(home, token=False)
        bare = owner_api(home.family.owner, token=False).request(
            method, path.format(item=home.item, share=home.share), json=body)
    for answer in (r, bare):
        assert (answer.status_code, answer.json()) == (401, {"error": "unauthorized"})
        assert answer.headers["www-authenticate"].startswith("Bearer")
    assert [rec.getMessage() for rec in caplog.records if rec.levelno >= logging.ERROR] == []
    assert snapshot(home.agents) == before
