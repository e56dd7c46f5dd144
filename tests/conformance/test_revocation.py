"""CONFORMANCE §9, token revocation with UMA's ``pct`` hint (V-01..V-06)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conformance.world import REFRESH, Client, World, error_of
from tests.kit import basic


def revoke(world: World, client: Client, **form: str) -> httpx.Response:
    return world.web.post(world.url("/revoke"), data={**form, **client.auth()})


def active(world: World, token: str) -> Any:
    return world.introspect(token).json()["active"]


def test_V01_a_request_without_token_is_invalid_request(world: World) -> None:
    r = revoke(world, world.client, token_type_hint="access_token")
    assert r.status_code == 400
    assert error_of(r) == "invalid_request"


def test_V01_bad_client_credentials_are_401_invalid_client(world: World) -> None:
    rpt = world.rpt()["access_token"]
    r = world.web.post(world.url("/revoke"), data={"token": rpt}, headers=basic(world.client.client_id, "nope"))
    assert r.status_code == 401
    assert error_of(r) == "invalid_client"
    assert active(world, rpt) is True


def test_V01_an_unauthenticated_request_is_401_invalid_client(world: World) -> None:
    rpt = world.rpt()["access_token"]
    r = world.web.post(world.url("/revoke"), data={"token": rpt})
    assert r.status_code == 401
    assert error_of(r) == "invalid_client"
    assert active(world, rpt) is True


def test_V01_get_is_405(world: World) -> None:
    r = world.web.get(world.url("/revoke"), params={"token": "x"})
    assert r.status_code == 405
    assert error_of(r) == "unsupported_method_type"


def test_V01_an_access_token_is_revoked(world: World) -> None:
    rpt = world.rpt()["access_token"]
    r = revoke(world, world.client, token=rpt, token_type_hint="access_token")
    assert r.status_code == 200
    assert active(world, rpt) is False


def test_V02_an_unknown_token_is_200(world: World) -> None:
    r = revoke(world, world.client, token="never-issued")
    assert r.status_code == 200


def test_V02_revoking_twice_is_200_both_times(world: World) -> None:
    rpt = world.rpt()["access_token"]
    assert revoke(world, world.client, token=rpt).status_code == 200
    assert revoke(world, world.client, token=rpt).status_code == 200


def test_V03_an_rpt_with_the_refresh_token_hint_is_still_revoked(world: World) -> None:
    rpt = world.rpt()["access_token"]
    r = revoke(world, world.client, token=rpt, token_type_hint="refresh_token")
    assert r.status_code == 200
    assert active(world, rpt) is False


def test_V03_an_unknown_hint_is_not_an_error(world: World) -> None:
    rpt = world.rpt()["access_token"]
    r = revoke(world, world.client, token=rpt, token_type_hint="id_token")
    assert r.status_code == 200
    assert active(world, rpt) is False


def test_V03_a_refresh_token_with_the_access_token_hint_is_still_revoked(world: World) -> None:
    rt = world.rpt()["refresh_token"]
    assert revoke(world, world.client, token=rt, token_type_hint="access_token").status_code == 200
    r = world.client.token({"grant_type": REFRESH, "refresh_token": rt})
    assert r.status_code == 400
    assert error_of(r) == "invalid_grant"


def test_V04_another_client_cannot_revoke_an_rpt(world: World) -> None:
    rpt = world.rpt()["access_token"]
    c2 = world.new_client()
    assert revoke(world, c2, token=rpt).status_code in (200, 400)
    assert active(world, rpt) is True


def test_V04_another_client_cannot_revoke_a_refresh_token(world: World) -> None:
    rt = world.rpt()["refresh_token"]
    c2 = world.new_client()
    assert revoke(world, c2, token=rt, token_type_hint="refresh_token").status_code in (200, 400)
    assert world.client.token({"grant_type": REFRESH, "refresh_token": rt}).status_code == 200


def test_V04_a_public_client_cannot_revoke_a_confidential_clients_rpt(world: World) -> None:
    rpt = world.rpt()["access_token"]
    c2 = world.public_client()
    assert revoke(world, c2, token=rpt).status_code in (200, 400)
    assert active(world, rpt) is True


def test_V05_revoking_the_refresh_token_kills_refresh_and_the_rpt(world: World) -> None:
    body = world.rpt()
    r = revoke(world, world.client, token=body["refresh_token"], token_type_hint="refresh_token")
    assert r.status_code == 200
    refresh = world.client.token({"grant_type": REFRESH, "refresh_token": body["refresh_token"]})
    assert refresh.status_code == 400
    assert error_of(refresh) == "invalid_grant"
    assert active(world, body["access_token"]) is False


def test_V05_a_resource_server_can_revoke_its_own_pat(world: World) -> None:
    r = world.web.post(world.url("/revoke"), data={"token": world.rs.pat, **world.rs.auth()})
    assert r.status_code == 200
    gone = world.web.get(world.url("/resource_set"), headers=world.rs.protected("GET", "/resource_set"))
    assert gone.status_code == 401
    assert error_of(gone) == "invalid_token"


def test_V06_a_revoked_pct_brings_no_benefit(world: World) -> None:
    world.share_with_person(["read"])
    pct = world.client.ask(world.ticket(), id_token=world.id_token()).json()["pct"]
    assert world.client.ask(world.ticket(), pct=pct).status_code == 200
    assert revoke(world, world.client, token=pct, token_type_hint="pct").status_code == 200
    r = world.client.ask(world.ticket(), pct=pct)
    assert r.status_code == 403
    assert error_of(r) == "need_info"


def test_V06_a_pct_is_found_without_a_hint(world: World) -> None:
    world.share_with_person(["read"])
    pct = world.client.ask(world.ticket(), id_token=world.id_token()).json()["pct"]
    assert revoke(world, world.client, token=pct).status_code == 200
    r = world.client.ask(world.ticket(), pct=pct)
    assert r.status_code == 403
    assert error_of(r) == "need_info"


def test_V06_another_client_cannot_revoke_a_pct(world: World) -> None:
    world.share_with_person(["read"])
    pct = world.client.ask(world.ticket(), id_token=world.id_token()).json()["pct"]
    c2 = world.new_client()
    assert revoke(world, c2, token=pct, token_type_hint="pct").status_code == 200
    assert world.client.ask(world.ticket(), pct=pct).status_code == 200
