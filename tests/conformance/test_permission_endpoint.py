"""CONFORMANCE §7, the permission endpoint (M-01..M-08), with RS-A's DPoP-bound PAT."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.conformance.world import World, build_world, error_of


def request(world: World, body: Any, rs: Any = None, *, raw: bytes | None = None,
            content_type: str = "application/json") -> httpx.Response:
    rs = rs or world.rs
    headers = rs.protected("POST", "/permission")
    if raw is not None:
        return world.web.post(world.url("/permission"), content=raw, headers={**headers, "Content-Type": content_type})
    return world.web.post(world.url("/permission"), json=body, headers=headers)


def ticket_permissions(world: World, ticket: str) -> list[tuple[str, list[str]]]:
    """Redeem under an allow-all policy and read the RPT's permissions back."""
    r = world.client.ask(ticket)
    assert r.status_code == 200, r.text
    info = world.introspect(r.json()["access_token"]).json()
    return sorted((p["resource_id"], sorted(p["resource_scopes"])) for p in info["permissions"])


def test_M01_one_permission_object_is_accepted(world: World) -> None:
    r = request(world, {"resource_id": world.resource, "resource_scopes": ["read"]})
    assert r.status_code == 201
    assert isinstance(r.json()["ticket"], str)


def test_M01_an_array_of_permissions_is_accepted(world: World) -> None:
    other = world.rs.register_resource({"name": "Notes", "resource_scopes": ["view"]})
    r = request(world, [{"resource_id": world.resource, "resource_scopes": ["read"]},
                        {"resource_id": other, "resource_scopes": ["view"]}])
    assert r.status_code == 201
    assert set(r.json()) == {"ticket"}


def test_M02_success_is_201_with_exactly_one_ticket_even_for_an_array(world: World) -> None:
    r = request(world, [{"resource_id": world.resource, "resource_scopes": ["read"]},
                        {"resource_id": world.resource, "resource_scopes": ["write"]}])
    assert r.status_code == 201
    assert list(r.json()) == ["ticket"]


def test_M03_an_unregistered_resource_id_is_invalid_resource_id(world: World) -> None:
    r = request(world, {"resource_id": "rs_doesnotexist", "resource_scopes": ["read"]})
    assert r.status_code == 400
    assert error_of(r) == "invalid_resource_id"


def test_M03_another_resource_servers_resource_is_invalid_resource_id(world: World) -> None:
    rs_b = world.new_rs()
    r = request(world, {"resource_id": world.resource, "resource_scopes": ["read"]}, rs=rs_b)
    assert r.status_code == 400
    assert error_of(r) == "invalid_resource_id"


def test_M03_one_bad_resource_in_an_array_refuses_the_whole_request(world: World) -> None:
    r = request(world, [{"resource_id": world.resource, "resource_scopes": ["read"]},
                        {"resource_id": "rs_unknown", "resource_scopes": []}])
    assert r.status_code == 400
    assert error_of(r) == "invalid_resource_id"


def test_M04_an_unregistered_scope_is_invalid_scope(world: World) -> None:
    r = request(world, {"resource_id": world.resource, "resource_scopes": ["delete"]})
    assert r.status_code == 400
    assert error_of(r) == "invalid_scope"


def test_M05_empty_resource_scopes_are_allowed(world: World) -> None:
    r = request(world, {"resource_id": world.resource, "resource_scopes": []})
    assert r.status_code == 201


def test_M06_a_missing_resource_scopes_is_invalid_request(world: World) -> None:
    r = request(world, {"resource_id": world.resource})
    assert r.status_code == 400
    assert error_of(r) == "invalid_request"


def test_M06_a_missing_resource_id_is_invalid_request(world: World) -> None:
    r = request(world, {"resource_scopes": ["read"]})
    assert r.status_code == 400
    assert error_of(r) == "invalid_request"


def test_M06_an_empty_array_is_invalid_request(world: World) -> None:
    r = request(world, [])
    assert r.status_code == 400
    assert error_of(r) == "invalid_request"


def test_M06_a_body_that_is_not_json_is_invalid_request(world: World) -> None:
    r = request(world, None, raw=b"resource_id=x", content_type="application/json")
    assert r.status_code == 400
    assert error_of(r) == "invalid_request"


def test_M06_a_form_body_is_invalid_request(world: World) -> None:
    r = request(world, None, raw=b"resource_id=x&resource_scopes=read",
                content_type="application/x-www-form-urlencoded")
    assert r.status_code == 400
    assert error_of(r) == "invalid_request"


def test_M06_scopes_that_are_not_strings_are_invalid_request(world: World) -> None:
    r = request(world, {"resource_id": world.resource, "resource_scopes": [1]})
    assert r.status_code == 400
    assert error_of(r) == "invalid_request"


def test_M07_the_ticket_stands_for_exactly_the_requested_permissions(world: World) -> None:
    other = world.rs.register_resource({"name": "Notes", "resource_scopes": ["view", "edit"]})
    world.share_with_client(["read", "write"])
    world.share_with_client(["view", "edit"], resource=other)
    ticket = world.rs.ticket([{"resource_id": world.resource, "resource_scopes": ["write"]},
                              {"resource_id": other, "resource_scopes": ["view"]}])
    assert ticket_permissions(world, ticket) == sorted([(world.resource, ["write"]), (other, ["view"])])


def test_M07_two_entries_for_one_resource_are_merged(world: World) -> None:
    world.share_with_client(["read", "write"])
    ticket = world.rs.ticket([{"resource_id": world.resource, "resource_scopes": ["read"]},
                              {"resource_id": world.resource, "resource_scopes": ["write"]}])
    assert ticket_permissions(world, ticket) == [(world.resource, ["read", "write"])]


def test_M08_the_ticket_answer_is_json_and_no_store(world: World) -> None:
    r = request(world, {"resource_id": world.resource, "resource_scopes": ["read"]})
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["cache-control"] == "no-store"


def test_M08_the_ticket_lifetime_is_short_and_configurable(tmp_path: Path) -> None:
    world = build_world(tmp_path, ticket_ttl=30)
    try:
        world.share_with_client(["read"])
        ticket = world.ticket()
        world.clock.advance(31)
        r = world.client.ask(ticket)
        assert r.status_code == 400
        assert error_of(r) == "invalid_grant"
    finally:
        world.agent.close()
    assert world.agent.settings.ticket_ttl <= 600
