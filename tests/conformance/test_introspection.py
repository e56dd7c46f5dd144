"""CONFORMANCE §8, token introspection with UMA's ``permissions`` (I-01..I-10), called with RS-A's PAT."""

from __future__ import annotations

from core.tokens import TokenRegistry
from tests.conformance.world import World, error_of
from tests.kit import client_assertion

# I-10: we authorize introspection callers with their PAT (UMA FedAuthz §5), not with client credentials;
# metadata says so with introspection_endpoint_auth_methods_supported = ["Bearer", "DPoP"].


def test_I01_introspection_without_a_pat_is_401(world: World) -> None:
    rpt = world.rpt()["access_token"]
    r = world.web.post(world.url("/introspect"), data={"token": rpt})
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_I01_a_request_without_token_is_invalid_request(world: World) -> None:
    r = world.web.post(world.url("/introspect"), data={"token_type_hint": "access_token"},
                       headers=world.rs.protected("POST", "/introspect"))
    assert r.status_code == 400
    assert error_of(r) == "invalid_request"


def test_I01_a_json_body_is_invalid_request(world: World) -> None:
    r = world.web.post(world.url("/introspect"), json={"token": "x"}, headers=world.rs.protected("POST", "/introspect"))
    assert r.status_code == 400
    assert error_of(r) == "invalid_request"


def test_I01_get_is_405(world: World) -> None:
    r = world.web.get(world.url("/introspect"), headers=world.rs.protected("GET", "/introspect"))
    assert r.status_code == 405
    assert error_of(r) == "unsupported_method_type"


def test_I02_an_active_rpt_has_permissions_and_no_top_level_scope(world: World) -> None:
    body = world.rpt(["read", "write"])
    r = world.introspect(body["access_token"], token_type_hint="access_token")
    assert r.status_code == 200
    info = r.json()
    assert info["active"] is True
    assert "scope" not in info
    [perm] = info["permissions"]
    assert perm["resource_id"] == world.resource
    assert sorted(perm["resource_scopes"]) == ["read", "write"]
    assert r.headers["cache-control"] == "no-store"


def test_I03_permission_times_are_integers_no_later_than_the_token(world: World) -> None:
    info = world.introspect(world.rpt()["access_token"]).json()
    assert isinstance(info["exp"], int) and isinstance(info["iat"], int)
    for perm in info["permissions"]:
        for member in ("exp", "iat", "nbf"):
            if member in perm:
                assert isinstance(perm[member], int) and not isinstance(perm[member], bool)
        assert perm.get("exp", info["exp"]) <= info["exp"]


def test_I04_an_unknown_token_is_exactly_active_false(world: World) -> None:
    r = world.introspect("not-a-token-we-issued")
    assert r.status_code == 200
    assert r.json() == {"active": False}


def test_I04_an_expired_rpt_is_exactly_active_false(world: World) -> None:
    rpt = world.rpt()["access_token"]
    world.clock.advance(world.agent.settings.rpt_ttl + 1)
    assert world.introspect(rpt).json() == {"active": False}


def test_I04_a_revoked_rpt_is_exactly_active_false(world: World) -> None:
    rpt = world.rpt()["access_token"]
    r = world.client.http.post(world.url("/revoke"), data={"token": rpt, **world.client.auth()})
    assert r.status_code == 200
    assert world.introspect(rpt).json() == {"active": False}


def test_I04_an_rpt_forgotten_after_a_restart_is_exactly_active_false(world: World) -> None:
    rpt = world.rpt()["access_token"]
    world.agent.registry = TokenRegistry()  # what a restart leaves: RPTs are remembered in memory only
    assert world.introspect(rpt).json() == {"active": False}


def test_I05_an_rpt_with_a_tampered_signature_is_inactive(world: World) -> None:
    rpt = world.rpt()["access_token"]
    h, p, s = rpt.split(".")
    assert world.introspect(f"{h}.{p}.{s[:-4]}AAAA").json() == {"active": False}


def test_I05_another_resource_server_may_not_see_the_rpt(world: World) -> None:
    rpt = world.rpt()["access_token"]
    rs_b = world.new_rs()
    r = world.introspect(rpt, rs=rs_b)
    assert r.status_code == 200
    assert r.json() == {"active": False}


def test_I05_an_rpt_whose_share_was_revoked_is_inactive(world: World) -> None:
    share_id = world.share_with_client(["read"])
    rpt = world.client.ask(world.ticket()).json()["access_token"]
    world.owner.revoke(share_id)
    assert world.introspect(rpt).json() == {"active": False}


def test_I06_a_wrong_hint_does_not_stop_the_lookup(world: World) -> None:
    rpt = world.rpt()["access_token"]
    for hint in ("refresh_token", "pct", "made_up"):
        r = world.introspect(rpt, token_type_hint=hint)
        assert r.status_code == 200
        assert r.json()["active"] is True, hint


def test_I07_an_expired_pat_is_401(world: World) -> None:
    rpt = world.rpt()["access_token"]
    world.clock.advance(world.agent.settings.pat_ttl + 1)
    r = world.introspect(rpt)
    assert r.status_code == 401
    assert error_of(r) == "invalid_token"


def test_I07_a_garbage_pat_is_401_invalid_token(world: World) -> None:
    r = world.web.post(world.url("/introspect"), data={"token": "x"}, headers={"Authorization": "Bearer abc.def.ghi"})
    assert r.status_code == 401
    assert error_of(r) == "invalid_token"


def test_I08_a_resource_server_may_introspect_its_own_pat(world: World) -> None:
    r = world.introspect(world.rs.pat)
    assert r.status_code == 200
    info = r.json()
    assert info["active"] is True
    assert info["scope"] == "uma_protection"
    assert info["client_id"] == world.rs.client_id


def test_I08_another_resource_servers_pat_is_inactive(world: World) -> None:
    rs_b = world.new_rs()
    assert world.introspect(rs_b.pat).json() == {"active": False}


def test_I09_a_dpop_bound_rpt_shows_cnf_jkt_and_token_type_dpop(world: World) -> None:
    info = world.introspect(world.rpt()["access_token"]).json()
    assert info["cnf"] == {"jkt": world.client.dpop_key.thumbprint}
    assert info["token_type"] == "DPoP"


def test_I10_a_requesting_client_cannot_introspect_with_its_client_credentials(world: World) -> None:
    rpt = world.rpt()["access_token"]
    c = world.client
    r = world.web.post(world.url("/introspect"), data={
        "token": rpt, "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": client_assertion(c.key, c.client_id, world.url("/introspect"), world.clock())})
    assert r.status_code == 401


def test_I10_a_requesting_client_cannot_introspect_with_its_rpt(world: World) -> None:
    rpt = world.rpt()["access_token"]
    r = world.web.post(world.url("/introspect"), data={"token": rpt},
                       headers={"Authorization": f"DPoP {rpt}", **world.client.proof("POST", "/introspect", rpt)})
    assert r.status_code == 403
    assert error_of(r) == "insufficient_scope"
