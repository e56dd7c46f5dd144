"""sdk.rs protecting a Starlette lab API with a real in-process agent: the UMA ticket challenge, the
RPT checked locally with its DPoP proof, revocation honoured within the cache bound, the 403 with
the Warning header when the agent is unreachable, and tokens that must be refused."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sdk.rs import UNREACHABLE_WARNING, challenge
from sdk.rs.starlette import Protection, UMAMiddleware, access_of
from tests.flow import ResourceServer
from tests.kit import Key, dpop_proof
from tests.sdk.rs_world import LAB, LabWorld, running_lab, uma_params
from tests.world import connect_rs

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def lab_world(tmp_path: Path) -> AsyncIterator[LabWorld]:
    async with running_lab(tmp_path) as world:
        yield world


def reencode(token: str, edit: dict) -> str:
    """The token with payload members replaced and the original signature kept."""
    h, p, s = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
    claims.update(edit)
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{h}.{body}.{s}"


def error_of(r: httpx.Response) -> str:
    return r.headers["www-authenticate"]


async def test_tokenless_request_gets_uma_challenge_and_the_rpt_then_opens_it(lab_world: LabWorld) -> None:
    w = lab_world
    path = f"/results/{w.resource}"
    r = await w.lab.get(path)
    assert r.status_code == 401
    params = uma_params(r.headers["www-authenticate"])
    assert params["realm"] == "lab" and params["as_uri"] == w.agent.issuer and params["ticket"]
    assert "warning" not in r.headers

    rpt = w.rpt(["read"], params["ticket"])
    r = await w.lab.get(path, headers=w.dpop("GET", path, rpt))
    assert r.status_code == 200, r.text
    assert r.json()["results"] == "Hb 13.9 g/dL" and r.json()["scopes"] == ["read"]
    assert r.json()["subject"]  # pairwise subject of the requesting party


async def test_rpt_without_the_needed_scope_gets_a_fresh_ticket(lab_world: LabWorld) -> None:
    w = lab_world
    path = f"/results/{w.resource}"
    rpt = await w.granted_rpt(["read"])
    r = await w.lab.post(path, headers=w.dpop("POST", path, rpt))
    assert r.status_code == 401
    params = uma_params(r.headers["www-authenticate"])
    assert params["as_uri"] == w.agent.issuer
    # the ticket asks for write: taking it to the agent opens a request for exactly that
    r = w.client.ask(params["ticket"], rpt=rpt)
    assert r.status_code == 403 and r.json()["error"] == "request_submitted", r.text
    [item] = w.owner.inbox()
    assert [p["scopes"] for p in item["permissions"]] == [["write"]]


async def test_unknown_resource_in_challenge_is_403_without_warning(lab_world: LabWorld) -> None:
    r = await lab_world.lab.get("/results/rs_notregistered")
    assert r.status_code == 403 and "warning" not in r.headers and "www-authenticate" not in r.headers


async def test_resource_named_by_the_app_key(lab_world: LabWorld) -> None:
    w = lab_world
    assert (await w.lab.get("/named/unknown")).status_code == 404
    params = await w.challenge("GET", "/named/results")
    rpt = w.rpt(["read"], params["ticket"])
    r = await w.lab.get("/named/results", headers=w.dpop("GET", "/named/results", rpt))
    assert r.status_code == 200 and r.json() == {"key": "results"}


async def test_tampered_rpt_is_invalid_token(lab_world: LabWorld) -> None:
    w = lab_world
    path = f"/results/{w.resource}"
    rpt = await w.granted_rpt(["read"])
    widened = reencode(rpt, {"permissions": [{"resource_id": w.resource, "resource_scopes": ["read", "write"]}]})
    r = await w.lab.post(path, headers=w.dpop("POST", path, widened))
    assert r.status_code == 401
    assert error_of(r).startswith("DPoP ") and 'error="invalid_token"' in error_of(r)
    assert r.json()["error"] == "invalid_token"
    flipped = rpt[:-4] + ("AAAA" if rpt[-4:] != "AAAA" else "BBBB")
    r = await w.lab.get(path, headers=w.dpop("GET", path, flipped))
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"
    # the genuine token still works: nothing above was accepted or cached
    r = await w.lab.get(path, headers=w.dpop("GET", path, rpt))
    assert r.status_code == 200


async def test_rpt_minted_for_another_resource_server_is_refused(lab_world: LabWorld) -> None:
    w = lab_world
    other = ResourceServer(w.client.http, w.agent.issuer, w.clock)
    connect_rs(w.agent, w.owner, other)
    foreign = other.register_resource({"name": "Imaging", "resource_scopes": ["read"]})
    ticket = other.ticket({"resource_id": foreign, "resource_scopes": ["read"]})
    rpt = w.rpt(["read"], ticket)
    assert other.introspect(rpt)["active"] is True  # a genuine, active RPT, only not for this lab
    path = f"/results/{w.resource}"
    r = await w.lab.get(path, headers=w.dpop("GET", path, rpt))
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"
    assert "another resource server" in r.json()["error_description"]


async def test_rs_own_pat_is_not_an_rpt(lab_world: LabWorld) -> None:
    w = lab_world
    path = f"/results/{w.resource}"
    pat = await w.kit.session.pat()
    headers = {"Authorization": f"DPoP {pat}",
               "DPoP": w.kit.session.dpop.proof("GET", w.url(path), access_token=pat, now=w.clock())}
    r = await w.lab.get(path, headers=headers)
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"


async def test_dpop_proof_is_required_and_checked(lab_world: LabWorld) -> None:
    w = lab_world
    path = f"/results/{w.resource}"
    rpt = await w.granted_rpt(["read"])

    async def refused(headers: dict[str, str], error: str = "invalid_dpop_proof") -> str:
        r = await w.lab.get(path, headers=headers)
        assert r.status_code == 401, r.text
        assert error_of(r).startswith("DPoP ") and f'error="{error}"' in error_of(r)
        return str(r.json()["error_description"])

    assert "exactly one" in await refused({"Authorization": f"DPoP {rpt}"})
    assert "ath" in await refused(w.dpop("GET", path, rpt, ath="x" * 43))
    assert "ath" in await refused({"Authorization": f"DPoP {rpt}",
                                   "DPoP": dpop_proof(w.client.dpop_key, "GET", w.url(path), w.clock())})
    stranger = dpop_proof(Key(), "GET", w.url(path), w.clock(), ath_of=rpt)
    assert "bound" in await refused({"Authorization": f"DPoP {rpt}", "DPoP": stranger})
    assert "htu" in await refused(w.dpop("GET", path, rpt, htu="https://elsewhere.example" + path))
    assert "htm" in await refused(w.dpop("GET", path, rpt, htm="POST"))
    assert "iat" in await refused(w.dpop("GET", path, rpt, iat=int(w.clock()) - 3600))
    assert "typ" in await refused(w.dpop("GET", path, rpt, _headers={"typ": "JWT"}))
    # a Bearer presentation of a DPoP-bound token (RFC 9449 §7.1)
    assert "DPoP-bound" in await refused({"Authorization": f"Bearer {rpt}"}, "invalid_token")
    # one good proof works once; its replay does not
    good = w.dpop("GET", path, rpt)
    assert (await w.lab.get(path, headers=good)).status_code == 200
    assert "already used" in await refused(good)


async def test_revocation_is_honoured_within_the_cache_bound(lab_world: LabWorld) -> None:
    w = lab_world  # the kit was connected with cache_seconds=10
    path = f"/results/{w.resource}"
    rpt = await w.granted_rpt(["read"])
    assert (await w.lab.get(path, headers=w.dpop("GET", path, rpt))).status_code == 200
    [share] = w.owner.shares()
    w.owner.revoke(share["id"])
    assert (await w.kit.introspect(rpt)) == {"active": False}
    # within the bound the cached introspection still stands (the documented window) ...
    w.clock.advance(9)
    assert (await w.lab.get(path, headers=w.dpop("GET", path, rpt))).status_code == 200
    # ... and once it is older than cache_seconds the agent is asked again, and says no
    w.clock.advance(2)
    r = await w.lab.get(path, headers=w.dpop("GET", path, rpt))
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"
    assert "not active" in r.json()["error_description"]


async def test_unreachable_agent_gives_403_with_warning(lab_world: LabWorld) -> None:
    w = lab_world
    path = f"/results/{w.resource}"
    rpt = await w.granted_rpt(["read"])
    assert (await w.lab.get(path, headers=w.dpop("GET", path, rpt))).status_code == 200
    w.network.up = False
    r = await w.lab.get(path)
    assert r.status_code == 403 and r.headers["warning"] == UNREACHABLE_WARNING
    assert r.headers["warning"] == '199 - "UMA Authorization Server Unreachable"'
    assert "www-authenticate" not in r.headers
    # a valid RPT whose cached introspection is too old cannot be vouched for either: fail closed
    w.clock.advance(11)
    r = await w.lab.get(path, headers=w.dpop("GET", path, rpt))
    assert r.status_code == 403 and r.headers["warning"] == UNREACHABLE_WARNING
    w.network.up = True
    assert (await w.lab.get(path, headers=w.dpop("GET", path, rpt))).status_code == 200


async def test_rotated_agent_key_is_fetched_and_made_up_key_ids_are_rate_limited(lab_world: LabWorld) -> None:
    w = lab_world
    path = f"/results/{w.resource}"
    assert w.agent.keys.rotate_if_due(int(w.clock()) + 31 * 86400)  # the agent signs with a new key now
    w.clock.advance(61)
    rpt = await w.granted_rpt(["read"])
    fetched = w.network.paths.count("/jwks.jwt")
    assert (await w.lab.get(path, headers=w.dpop("GET", path, rpt))).status_code == 200
    assert w.network.paths.count("/jwks.jwt") == fetched + 1  # one refetch for the new kid
    for n in range(20):
        header = base64.urlsafe_b64encode(b'{"alg":"ES256","typ":"at+jwt","kid":"k%d"}' % n).rstrip(b"=").decode()
        made_up = header + rpt[rpt.index("."):]
        r = await w.lab.get(path, headers=w.dpop("GET", path, made_up))
        assert r.status_code == 401 and r.json()["error"] == "invalid_token"
    assert w.network.paths.count("/jwks.jwt") <= fetched + 2  # at most one more, however many kids


async def test_introspection_alone_decides_when_keys_cannot_be_had(lab_world: LabWorld) -> None:
    w = lab_world
    path = f"/results/{w.resource}"
    rpt = await w.granted_rpt(["read"])
    w.kit.verifier.keys = None  # as when the signed key set cannot be fetched
    assert (await w.lab.get(path, headers=w.dpop("GET", path, rpt))).status_code == 200
    r = await w.lab.get(path, headers=w.dpop("GET", path, reencode(rpt, {"jti": "forged"})))
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"


@pytest.mark.parametrize("headers", [
    {"Authorization": "DPoP "},
    {"Authorization": "DPoP a b c"},
    {"Authorization": "Bearer " + "a" * 9000},
    {"Authorization": "DPoP é.é.é"},
    {"Authorization": "DPoP a.b.c", "DPoP": "x"},
    {"Authorization": "Bearer eyJhbGciOiJub25lIn0.e30."},
    {"Authorization": "DPoP eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6MX0.e30.AAAA"},
    {"Authorization": "DPoP e30.e30.AAAA", "DPoP": "e30.e30.AAAA"},
])
async def test_malformed_credentials_are_4xx_never_500(lab_world: LabWorld, headers: dict[str, str]) -> None:
    raw = [(k.encode(), v.encode("utf-8")) for k, v in headers.items()]
    r = await lab_world.lab.get(f"/results/{lab_world.resource}", headers=raw)
    assert r.status_code in (400, 401), r.text
    assert r.json()["error"] in ("invalid_token", "invalid_request")


async def test_two_authorization_headers_are_invalid_request(lab_world: LabWorld) -> None:
    w = lab_world
    r = await w.lab.get(f"/results/{w.resource}", headers=[("Authorization", "DPoP a.b.c"),
                                                           ("Authorization", "Bearer d.e.f")])
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


async def test_garbage_dpop_proof_with_real_rpt_is_401(lab_world: LabWorld) -> None:
    w = lab_world
    path = f"/results/{w.resource}"
    rpt = await w.granted_rpt(["read"])
    odd_alg = base64.urlsafe_b64encode('{"alg":"\\"é","typ":"dpop+jwt"}'.encode()).rstrip(b"=").decode()
    for proof in ("x", "a.b.c", "é" * 10, "e30." * 2 + "AAAA", "A" * 9000, odd_alg + ".e30.AAAA"):
        r = await w.lab.get(path, headers=[(b"authorization", f"DPoP {rpt}".encode()), (b"dpop", proof.encode())])
        assert r.status_code == 401 and r.json()["error"] == "invalid_dpop_proof", proof


def test_challenge_text_from_a_client_is_made_safe_for_the_header() -> None:
    denial = challenge.token_error("DPoP", "invalid_token", 'alg \'"é\r\n\' is not allowed', realm="lab",
                                   dpop_algs=["ES256"])
    assert denial.headers["WWW-Authenticate"] == ('DPoP error="invalid_token", '
                                                  'error_description="alg \'????\' is not allowed", algs="ES256"')


async def test_middleware_protects_a_whole_app(lab_world: LabWorld) -> None:
    w = lab_world
    protection = Protection(w.kit, public_url=LAB, realm="lab")

    async def results(request: Request) -> Response:
        return JSONResponse({"scopes": sorted(access_of(request).scopes_for(w.resource, w.clock()))})

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True})

    def rule(request: Request) -> tuple[str, list[str]] | None:
        return None if request.url.path == "/health" else (w.resource, ["read"])

    app = UMAMiddleware(Starlette(routes=[Route("/results", results), Route("/health", health)]),
                        protection=protection, rule=rule)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=LAB) as api:
        assert (await api.get("/health")).json() == {"ok": True}
        r = await api.get("/results")
        assert r.status_code == 401
        rpt = w.rpt(["read"], uma_params(r.headers["www-authenticate"])["ticket"])
        proof = dpop_proof(w.client.dpop_key, "GET", LAB + "/results", w.clock(), ath_of=rpt)
        r = await api.get("/results", headers={"Authorization": f"DPoP {rpt}", "DPoP": proof})
        assert r.status_code == 200 and r.json() == {"scopes": ["read"]}
