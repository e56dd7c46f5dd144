"""CONFORMANCE §6, the resource registration endpoint (R-01..R-11), with RS-A's DPoP-bound PAT."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conformance.world import World, error_of

JSON = {"Content-Type": "application/json"}


def call(world: World, method: str, path: str, body: Any = None, *, raw: bytes | None = None) -> httpx.Response:
    headers = world.rs.protected(method, path)
    if raw is not None:
        return world.web.request(method, world.url(path), content=raw, headers={**headers, **JSON})
    if body is None:
        return world.web.request(method, world.url(path), headers=headers)
    return world.web.request(method, world.url(path), json=body, headers=headers)


def create(world: World, body: dict[str, Any]) -> httpx.Response:
    return call(world, "POST", "/resource_set", body)


def test_R01_all_five_operations_exist(world: World) -> None:
    r = create(world, {"resource_scopes": ["read"], "name": "Labs"})
    assert r.status_code == 201
    rid = r.json()["_id"]
    assert call(world, "GET", f"/resource_set/{rid}").status_code == 200
    assert call(world, "PUT", f"/resource_set/{rid}", {"resource_scopes": ["read"]}).status_code == 200
    assert call(world, "GET", "/resource_set").status_code == 200
    assert call(world, "DELETE", f"/resource_set/{rid}").status_code in (200, 204)


def test_R02_create_is_201_with_a_location_ending_in_the_id(world: World) -> None:
    r = create(world, {"resource_scopes": ["read", "write"], "name": "Labs"})
    assert r.status_code == 201
    rid = r.json()["_id"]
    assert set(r.json()) <= {"_id", "user_access_policy_uri"}
    assert r.headers["location"] == world.url(f"/resource_set/{rid}")


def test_R03_a_description_without_resource_scopes_is_400(world: World) -> None:
    r = create(world, {"name": "Labs"})
    assert r.status_code == 400
    assert error_of(r) == "invalid_request"


def test_R03_resource_scopes_that_are_not_an_array_are_400(world: World) -> None:
    for scopes in ("read", {"read": True}, [1, 2], [""], None):
        r = create(world, {"resource_scopes": scopes})
        assert r.status_code == 400, scopes
        assert error_of(r) == "invalid_request"


def test_R03_language_tagged_names_and_uri_scopes_round_trip(world: World) -> None:
    body = {"resource_scopes": ["read", "http://photoz.example.com/dev/scopes/print"], "name": "Labs",
            "name#de": "Laborwerte", "description#de": "Alle Werte", "type": "https://example.com/rsrcs/labs",
            "icon_uri": "https://example.com/icon.png", "description": "All lab values"}
    rid = create(world, body).json()["_id"]
    assert call(world, "GET", f"/resource_set/{rid}").json() == {"_id": rid, **body}


def test_R04_read_returns_the_full_description_and_the_id(world: World) -> None:
    body = {"resource_scopes": ["read"], "name": "Labs", "type": "lab", "description": "d"}
    rid = create(world, body).json()["_id"]
    r = call(world, "GET", f"/resource_set/{rid}")
    assert r.status_code == 200
    assert r.json() == {"_id": rid, **body}


def test_R05_update_is_a_complete_replacement(world: World) -> None:
    rid = create(world, {"resource_scopes": ["read"], "name": "Labs", "description": "old"}).json()["_id"]
    r = call(world, "PUT", f"/resource_set/{rid}", {"resource_scopes": ["read", "write"], "name": "Labs 2"})
    assert r.status_code == 200
    assert r.json() == {"_id": rid}
    got = call(world, "GET", f"/resource_set/{rid}").json()
    assert got == {"_id": rid, "resource_scopes": ["read", "write"], "name": "Labs 2"}
    assert "description" not in got


def test_R06_delete_ends_protection(world: World) -> None:
    rid = create(world, {"resource_scopes": ["read"]}).json()["_id"]
    assert call(world, "DELETE", f"/resource_set/{rid}").status_code in (200, 204)
    r = call(world, "GET", f"/resource_set/{rid}")
    assert r.status_code == 404
    assert error_of(r) == "not_found"
    p = call(world, "POST", "/permission", {"resource_id": rid, "resource_scopes": ["read"]})
    assert p.status_code == 400
    assert error_of(p) == "invalid_resource_id"


def test_R06_a_ticket_for_a_resource_deleted_since_is_refused(world: World) -> None:
    rid = create(world, {"resource_scopes": ["read"]}).json()["_id"]
    ticket = world.ticket(["read"], resource=rid)
    call(world, "DELETE", f"/resource_set/{rid}")
    r = world.client.ask(ticket)
    assert r.status_code == 400
    assert error_of(r) == "invalid_grant"


def test_R07_list_is_an_array_of_id_strings(world: World) -> None:
    second = create(world, {"resource_scopes": ["read"]}).json()["_id"]
    r = call(world, "GET", "/resource_set")
    assert r.status_code == 200
    assert sorted(r.json()) == sorted([world.resource, second])
    assert all(isinstance(x, str) for x in r.json())


def test_R08_an_unknown_id_is_404(world: World) -> None:
    for method in ("GET", "DELETE"):
        r = call(world, method, "/resource_set/no-such-id")
        assert r.status_code == 404
        assert error_of(r) == "not_found"
    r = call(world, "PUT", "/resource_set/no-such-id", {"resource_scopes": ["read"]})
    assert r.status_code == 404
    assert error_of(r) == "not_found"


def test_R08_an_unsupported_method_is_405(world: World) -> None:
    r = call(world, "PATCH", f"/resource_set/{world.resource}", {"resource_scopes": ["read"]})
    assert r.status_code == 405
    assert error_of(r) == "unsupported_method_type"
    r = call(world, "DELETE", "/resource_set")
    assert r.status_code == 405
    assert error_of(r) == "unsupported_method_type"


def test_R08_bad_json_is_400_invalid_request(world: World) -> None:
    r = call(world, "POST", "/resource_set", raw=b'{"resource_scopes": ["read"')
    assert r.status_code == 400
    assert error_of(r) == "invalid_request"


def test_R08_a_duplicate_member_is_400_invalid_request(world: World) -> None:
    r = call(world, "POST", "/resource_set", raw=b'{"resource_scopes": ["read"], "resource_scopes": ["write"]}')
    assert r.status_code == 400
    assert error_of(r) == "invalid_request"


def test_R08_a_duplicated_scope_is_400_invalid_request(world: World) -> None:
    r = create(world, {"resource_scopes": ["read", "read"]})
    assert r.status_code == 400
    assert error_of(r) == "invalid_request"


def test_R09_an_error_body_has_only_error_description_and_uri(world: World) -> None:
    r = create(world, {"name": 5, "resource_scopes": ["read"]})
    assert r.status_code == 400
    assert error_of(r) == "invalid_request"
    assert set(r.json()) <= {"error", "error_description", "error_uri"}


def test_R10_a_body_id_cannot_choose_the_id(world: World) -> None:
    r = create(world, {"_id": "chosen", "resource_scopes": ["read"]})
    assert r.status_code == 201
    assert r.json()["_id"] != "chosen"
    assert call(world, "GET", "/resource_set/chosen").status_code == 404


def test_R10_a_body_id_cannot_change_the_id(world: World) -> None:
    r = call(world, "PUT", f"/resource_set/{world.resource}", {"_id": "renamed", "resource_scopes": ["read"]})
    assert r.status_code == 200
    assert r.json() == {"_id": world.resource}
    assert call(world, "GET", f"/resource_set/{world.resource}").json()["_id"] == world.resource


def test_R11_unknown_extension_members_are_ignored(world: World) -> None:
    r = create(world, {"resource_scopes": ["read"], "foo": 1, "scopes": ["legacy"], "uri": "https://x.example"})
    assert r.status_code == 201
    got = call(world, "GET", f"/resource_set/{r.json()['_id']}").json()
    assert got == {"_id": r.json()["_id"], "resource_scopes": ["read"]}
