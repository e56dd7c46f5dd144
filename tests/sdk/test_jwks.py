"""sdk.jwks: a resource server that knows only the agent id tells the agent's key set from one a
relay (or anyone on the path) substituted. The agent runs in process behind its ASGI app; a
``MockTransport`` plays the relay in the middle, passing answers through or tampering with them."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from core.agent import Agent
from core.clock import FakeClock
from core.jose import b64url, jwk_thumbprint
from core.keys import open_keyring
from sdk import AgentKeysError, agent_id_of, fetch_agent_keys
from tests.kit import http, make_agent

RELAY = "https://relay.example"
Tamper = Callable[[httpx.Request, httpx.Response], httpx.Response]


def relay_agent(data_dir: Path, clock: FakeClock) -> Agent:
    """An agent whose issuer is ``{RELAY}/{agent_id}``, as when it serves through a relay."""
    data_dir.mkdir(parents=True, exist_ok=True)
    keys = open_keyring(data_dir, clock=clock, use_os_keychain=False, plaintext_dev=True)
    return make_agent(data_dir, clock=clock, public_url=f"{RELAY}/{keys.agent_id}")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def agent(tmp_path: Path, clock: FakeClock) -> Iterator[Agent]:
    a = relay_agent(tmp_path / "a", clock)
    yield a
    a.close()


def through(agent: Agent, tamper: Tamper | None = None) -> httpx.Client:
    """An httpx client whose every request crosses a 'relay' that may rewrite the agent's answer."""
    upstream = http(agent)

    def handle(request: httpx.Request) -> httpx.Response:
        r = upstream.request(request.method, str(request.url), headers={"accept": "*/*"})
        answer = httpx.Response(r.status_code, headers={"content-type": r.headers.get("content-type", "")},
                                content=r.content)
        return tamper(request, answer) if tamper is not None else answer

    return httpx.Client(transport=httpx.MockTransport(handle))


def on_jwks(edit: Callable[[str], str]) -> Tamper:
    def tamper(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.url.path.endswith("/jwks.jwt"):
            return httpx.Response(200, headers={"content-type": "application/jwk-set+jwt"},
                                  content=edit(response.text).encode())
        return response
    return tamper


def on_metadata(edit: Callable[[dict[str, Any]], dict[str, Any]]) -> Tamper:
    def tamper(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.url.path.endswith("/.well-known/uma2-configuration"):
            return httpx.Response(200, json=edit(response.json()))
        return response
    return tamper


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    h, p, s = token.split(".")
    pad = lambda x: base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))  # noqa: E731
    return json.loads(pad(h)), json.loads(pad(p)), s


def public_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    n = key.public_key().public_numbers()
    return {"kty": "EC", "crv": "P-256", "x": b64url(n.x.to_bytes(32, "big")), "y": b64url(n.y.to_bytes(32, "big"))}


def fetch(agent: Agent, client: httpx.Client, agent_id: str | None = None, **kw: Any) -> dict[str, Any]:
    kw.setdefault("now", agent.now())
    return fetch_agent_keys(agent.issuer, agent_id or agent.keys.agent_id, client=client, **kw)


# --- genuine -------------------------------------------------------------------------------------


def test_genuine_keys_verify_with_only_the_agent_id(agent: Agent) -> None:
    agent_id = agent_id_of(agent.issuer)
    assert agent_id == agent.keys.agent_id
    keys = fetch(agent, through(agent), agent_id)
    assert keys == agent.keys.public_jwks()
    assert keys["keys"][0]["kid"] == agent.keys.current().kid


def test_genuine_keys_through_the_asgi_app_directly(agent: Agent) -> None:
    assert fetch(agent, http(agent)) == agent.keys.public_jwks()


def test_rotated_keys_still_verify(agent: Agent, clock: FakeClock) -> None:
    clock.advance(31 * 86400)
    assert agent.keys.rotate_if_due(int(clock()))
    keys = fetch(agent, through(agent))
    assert len(keys["keys"]) == 2 and keys == agent.keys.public_jwks()


def test_agent_id_of() -> None:
    aid = "A" * 43
    assert agent_id_of(f"https://relay.example/{aid}") == aid
    assert agent_id_of(f"https://relay.example/sub/path/{aid}/") == aid
    for bad in ("https://relay.example", "https://relay.example/short", f"ftp://relay.example/{aid}",
                f"https://relay.example/{aid}?x=1", f"https://relay.example/{'A' * 42}!", f"/{aid}",
                f"https://relay.example/{'A' * 44}"):
        with pytest.raises(AgentKeysError):
            agent_id_of(bad)


# --- tampered ------------------------------------------------------------------------------------


def test_a_key_swapped_into_the_payload_is_detected(agent: Agent) -> None:
    mallory = ec.generate_private_key(ec.SECP256R1())

    def swap(token: str) -> str:
        _, payload, sig = parts(token)
        jwk = public_jwk(mallory)
        payload["keys"][0] = {**jwk, "kid": jwk_thumbprint(jwk), "alg": "ES256", "use": "sig"}
        return ".".join([token.split(".")[0], b64url(json.dumps(payload).encode()), sig])

    with pytest.raises(AgentKeysError, match="signature does not verify"):
        fetch(agent, through(agent, on_jwks(swap)))


def test_an_edited_payload_is_detected(agent: Agent) -> None:
    def edit(token: str) -> str:
        _, payload, s = parts(token)
        payload["iat"] += 1  # even a harmless-looking edit breaks the signature
        return ".".join([token.split(".")[0], b64url(json.dumps(payload).encode()), s])

    with pytest.raises(AgentKeysError, match="signature does not verify"):
        fetch(agent, through(agent, on_jwks(edit)))


def test_a_set_re_signed_by_another_key_with_its_own_jwk_header_is_detected(agent: Agent) -> None:
    mallory = ec.generate_private_key(ec.SECP256R1())

    def resign(token: str) -> str:
        header, payload, _ = parts(token)
        jwk = public_jwk(mallory)
        payload["keys"] = [{**jwk, "kid": "m", "alg": "ES256", "use": "sig"}]
        return jwt.encode(payload, mallory, algorithm="ES256", headers={"typ": header["typ"], "jwk": jwk})

    with pytest.raises(AgentKeysError, match="key other than the agent's identity key"):
        fetch(agent, through(agent, on_jwks(resign)))


def test_a_genuine_set_of_another_agent_is_detected(agent: Agent, tmp_path: Path, clock: FakeClock) -> None:
    other = relay_agent(tmp_path / "b", clock)
    try:
        with pytest.raises(AgentKeysError, match="key other than the agent's identity key"):
            fetch(agent, through(agent, on_jwks(lambda _: other.keys.signed_jwks(int(clock())))))
    finally:
        other.close()


def test_the_jwk_header_of_the_agent_with_another_signer_is_detected(agent: Agent) -> None:
    """The header names the agent's identity key (so the thumbprint matches), the signature is Mallory's."""
    mallory = ec.generate_private_key(ec.SECP256R1())

    def forge(token: str) -> str:
        header, payload, _ = parts(token)
        payload["keys"] = [{**public_jwk(mallory), "kid": "m", "alg": "ES256", "use": "sig"}]
        return jwt.encode(payload, mallory, algorithm="ES256", headers={"typ": header["typ"], "jwk": header["jwk"]})

    with pytest.raises(AgentKeysError, match="signature does not verify"):
        fetch(agent, through(agent, on_jwks(forge)))


@pytest.mark.parametrize("edit", [
    pytest.param(lambda t: "", id="empty"),
    pytest.param(lambda t: json.dumps({"keys": []}), id="plain-json-jwks"),
    pytest.param(lambda t: t.rsplit(".", 1)[0] + ".", id="signature-stripped"),
    pytest.param(lambda t: "x" * 70_000, id="too-large"),
])
def test_a_replaced_document_is_refused(agent: Agent, edit: Callable[[str], str]) -> None:
    with pytest.raises(AgentKeysError):
        fetch(agent, through(agent, on_jwks(edit)))


def test_an_alg_none_token_is_refused(agent: Agent) -> None:
    def none(token: str) -> str:
        header, payload, _ = parts(token)
        h = b64url(json.dumps({**header, "alg": "none"}).encode())
        return f"{h}.{b64url(json.dumps(payload).encode())}."

    with pytest.raises(AgentKeysError, match="not an ES256 JWS"):
        fetch(agent, through(agent, on_jwks(none)))


def test_a_stale_replayed_set_is_refused(agent: Agent, clock: FakeClock) -> None:
    old = agent.keys.signed_jwks(int(clock()) - 8 * 86400)
    with pytest.raises(AgentKeysError, match="too old"):
        fetch(agent, through(agent, on_jwks(lambda _: old)))
    assert fetch(agent, through(agent, on_jwks(lambda _: old)), max_age=9 * 86400) == agent.keys.public_jwks()


def test_a_set_dated_in_the_future_is_refused(agent: Agent, clock: FakeClock) -> None:
    ahead = agent.keys.signed_jwks(int(clock()) + 3600)
    with pytest.raises(AgentKeysError, match="future"):
        fetch(agent, through(agent, on_jwks(lambda _: ahead)))


def test_the_wrong_agent_id_is_refused(agent: Agent) -> None:
    with pytest.raises(AgentKeysError, match="key other than"):
        fetch(agent, through(agent), "B" * 43)


# --- metadata ------------------------------------------------------------------------------------


def test_signed_jwks_uri_off_the_issuers_origin_is_refused(agent: Agent) -> None:
    moved = on_metadata(lambda d: {**d, "signed_jwks_uri": "https://evil.example/jwks.jwt"})
    with pytest.raises(AgentKeysError, match="origin"):
        fetch(agent, through(agent, moved))


def test_metadata_naming_another_issuer_is_refused(agent: Agent) -> None:
    with pytest.raises(AgentKeysError, match="names the issuer"):
        fetch(agent, through(agent, on_metadata(lambda d: {**d, "issuer": RELAY + "/" + "C" * 43})))


def test_metadata_without_signed_jwks_uri_is_refused(agent: Agent) -> None:
    def drop(d: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in d.items() if k != "signed_jwks_uri"}

    with pytest.raises(AgentKeysError, match="no signed_jwks_uri"):
        fetch(agent, through(agent, on_metadata(drop)))


def test_http_failures_become_agent_keys_errors(agent: Agent) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(AgentKeysError, match="failed"):
        fetch(agent, httpx.Client(transport=httpx.MockTransport(down)))
    offline = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(503, headers={"retry-after": "5"})))
    with pytest.raises(AgentKeysError, match="503"):
        fetch(agent, offline)
    redirect = httpx.Client(transport=httpx.MockTransport(
        lambda r: httpx.Response(302, headers={"location": "https://evil.example/"})))
    with pytest.raises(AgentKeysError, match="302"):
        fetch(agent, redirect)
