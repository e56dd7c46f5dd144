"""CONFORMANCE §5, the protection API and its PAT (P-01..P-07), where tests/oauth/test_bearer.py does not
already cover them.

Covered there: P-02 (no token → bare challenge, forged or expired → invalid_token), P-03 (an RPT is
insufficient_scope), P-05 (a disconnected connection's PAT → 401) and P-07 (token in the query → 401).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from core.config import ConfigError
from tests.conformance.world import REDIRECT, REFRESH, VERIFIER, World, authorization_code, code_party, error_of
from tests.kit import make_agent


def test_P01_the_agent_refuses_a_plain_http_public_url_off_loopback(tmp_path) -> None:
    with pytest.raises(ConfigError):
        make_agent(tmp_path, public_url="http://agent.example")


def test_P01_every_protection_api_endpoint_is_advertised_over_https(world: World) -> None:
    doc = world.web.get(world.url("/.well-known/uma2-configuration")).json()
    for name in ("resource_registration_endpoint", "permission_endpoint", "introspection_endpoint"):
        assert urlsplit(doc[name]).scheme == "https", name


def test_P02_a_bare_request_to_the_permission_endpoint_gets_a_challenge_without_error(world: World) -> None:
    r = world.web.post(world.url("/permission"), json={"resource_id": world.resource, "resource_scopes": []})
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert "error=" not in r.headers["www-authenticate"]


def test_P03_a_requesting_clients_rpt_cannot_register_resources(world: World) -> None:
    rpt = world.rpt(["read"])["access_token"]
    r = world.web.post(world.url("/resource_set"), json={"resource_scopes": ["x"]},
                       headers={"Authorization": f"DPoP {rpt}",
                                **world.client.proof("POST", "/resource_set", rpt)})
    assert r.status_code == 403
    assert error_of(r) == "insufficient_scope"
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]


def test_P04_another_resource_server_cannot_read_update_or_delete_a_resource(world: World) -> None:
    rs_b = world.new_rs()
    path = f"/resource_set/{world.resource}"
    assert world.web.get(world.url(path), headers=rs_b.protected("GET", path)).status_code == 404
    r = world.web.put(world.url(path), json={"resource_scopes": ["read"]}, headers=rs_b.protected("PUT", path))
    assert r.status_code == 404
    assert error_of(r) == "not_found"
    assert world.web.delete(world.url(path), headers=rs_b.protected("DELETE", path)).status_code == 404
    mine = world.web.get(world.url(path), headers=world.rs.protected("GET", path))
    assert mine.status_code == 200
    assert mine.json()["resource_scopes"] == ["read", "write"]


def test_P04_another_resource_servers_list_omits_the_resource(world: World) -> None:
    rs_b = world.new_rs()
    own = rs_b.register_resource({"name": "X-rays", "resource_scopes": ["view"]})
    r = world.web.get(world.url("/resource_set"), headers=rs_b.protected("GET", "/resource_set"))
    assert r.status_code == 200
    assert r.json() == [own]


def test_P05_a_refreshed_pat_keeps_working_offline(world: World) -> None:
    world.clock.advance(world.agent.settings.pat_ttl + 1)
    stale = world.web.get(world.url("/resource_set"), headers=world.rs.protected("GET", "/resource_set"))
    assert stale.status_code == 401
    world.renew_pat()
    r = world.web.get(world.url("/resource_set"), headers=world.rs.protected("GET", "/resource_set"))
    assert r.status_code == 200
    assert r.json() == [world.resource]


def test_P05_after_the_owner_disconnects_the_pat_and_its_refresh_token_are_dead(world: World) -> None:
    [connection] = [c for c in world.owner.connections() if c["client_id"] == world.rs.client_id]
    world.owner.disconnect(connection["id"])
    r = world.web.get(world.url("/resource_set"), headers=world.rs.protected("GET", "/resource_set"))
    assert r.status_code == 401
    assert error_of(r) == "invalid_token"
    refresh = world.rs.token({"grant_type": REFRESH, "refresh_token": world.rs.refresh})
    assert refresh.status_code == 400
    assert error_of(refresh) == "invalid_grant"


def test_P06_a_pat_obtained_by_the_code_grant_carries_uma_protection_and_works(world: World) -> None:
    rs = code_party(world)
    r = rs.token({"grant_type": "authorization_code", "code": authorization_code(world, rs),
                  "redirect_uri": REDIRECT, "code_verifier": VERIFIER})
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "uma_protection"
    assert r.json()["token_type"] == "DPoP"
    rs.pat = r.json()["access_token"]
    assert rs.register_resource({"name": "Scans", "resource_scopes": ["view"]})


def test_P07_an_access_token_in_the_query_of_the_permission_endpoint_is_401(world: World) -> None:
    r = world.web.post(world.url("/permission"), params={"access_token": world.rs.pat},
                       json={"resource_id": world.resource, "resource_scopes": []})
    assert r.status_code == 401
    assert error_of(r) == "invalid_request"
