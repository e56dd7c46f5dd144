"""The owner API, black-box through its ASGI app, with a fake ``Owner`` that records each call."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from core.errors import OwnerError
from core.owner import Lifetime
from core.owner_api import MAX_BODY, OwnerApp, parse_until

TOKEN = "owner-token-" + "x" * 32
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class FakeOwner:
    """Implements the ``Owner`` interface; answers with what it was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def _did(self, op: str, /, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.calls.append((op, args, kwargs))
        return {"op": op}

    @property
    def last(self) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
        return self.calls[-1]

    def status(self) -> dict[str, Any]:
        return {"issuer": "http://127.0.0.1:8470", "pending": 1}

    def inbox(self) -> list[dict[str, Any]]:
        return [{"id": "req-1", "kind": "access"}]

    def approve(
        self,
        item_id: str,
        *,
        scopes: list[str] | None = None,
        lifetime: Lifetime = Lifetime(),
        profile: str | None = None,
    ) -> dict[str, Any]:
        if item_id == "missing":
            raise OwnerError("no request 'missing' in the inbox", status=404)
        return self._did("approve", item_id, scopes=scopes, lifetime=lifetime, profile=profile)

    def deny(self, item_id: str, *, remember: bool = False) -> dict[str, Any]:
        return self._did("deny", item_id, remember=remember)

    def share(self, **kwargs: Any) -> dict[str, Any]:
        return self._did("share", **kwargs)

    def shares(self, *, include_inactive: bool = False) -> list[dict[str, Any]]:
        self._did("shares", include_inactive=include_inactive)
        return []

    def revoke(self, share_id: str) -> dict[str, Any]:
        return self._did("revoke", share_id)

    def profiles(self) -> list[dict[str, Any]]:
        return [{"id": "me"}]

    def add_profile(self, name: str, **kwargs: Any) -> dict[str, Any]:
        return self._did("add_profile", name, **kwargs)

    def trust_add(self, issuer: str, **kwargs: Any) -> dict[str, Any]:
        return self._did("trust_add", issuer, **kwargs)

    def trust_list(self) -> list[dict[str, Any]]:
        return []

    def audit(self, limit: int = 50) -> list[dict[str, Any]]:
        self._did("audit", limit)
        return []

    def resources(self) -> list[dict[str, Any]]:
        raise RuntimeError("the disk is on fire")

    def connections(self) -> list[dict[str, Any]]:
        return [{"id": "c-1"}]

    def disconnect(self, connection_id: str) -> dict[str, Any]:
        return self._did("disconnect", connection_id)


@pytest.fixture
def owner() -> FakeOwner:
    return FakeOwner()


@pytest.fixture
def api(owner: FakeOwner) -> Iterator[TestClient]:
    with TestClient(
        OwnerApp(owner, TOKEN),  # type: ignore[arg-type]
        base_url="http://127.0.0.1:8471",
        headers=AUTH,
    ) as client:
        yield client


# --- the gates -------------------------------------------------------------------------------------


def test_a_request_without_the_owner_token_is_unauthorized(owner: FakeOwner) -> None:
    with TestClient(OwnerApp(owner, TOKEN), base_url="http://127.0.0.1:8471") as bare:  # type: ignore[arg-type]
        r = bare.get("/v1/status")
    assert r.status_code == 401
    assert r.json() == {"error": "unauthorized"}
    assert r.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "value", [f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer", f"Basic {TOKEN}", TOKEN, ""]
)
def test_a_wrong_or_malformed_token_is_unauthorized(api: TestClient, value: str) -> None:
    r = api.get("/v1/status", headers={"Authorization": value})
    assert (r.status_code, r.json()) == (401, {"error": "unauthorized"})


def test_the_bearer_scheme_is_case_insensitive(api: TestClient) -> None:
    assert api.get("/v1/status", headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200


def test_an_unauthorized_request_reaches_no_operation(api: TestClient, owner: FakeOwner) -> None:
    api.post("/v1/inbox/req-1/approve", json={}, headers={"Authorization": "Bearer nope-nope-nope-nope"})
    assert owner.calls == []


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:8471",
        "127.0.0.1.evil.example",
        "localhost.evil.example",
        "10.0.0.1:8471",
        "[::2]:8471",
        "::1",
        "127.0.0.1:http",
        "[::1]x",
    ],
)
def test_a_host_that_is_not_loopback_is_refused_even_with_the_token(api: TestClient, host: str) -> None:
    r = api.get("/v1/status", headers={"Host": host})
    assert r.status_code == 421
    assert r.json()["error"] == "misdirected_request"


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "127.0.0.1:8471", "127.9.8.7:1", "localhost", "LOCALHOST:8471", "[::1]", "[::1]:8471"],
)
def test_a_loopback_host_with_any_port_is_accepted(api: TestClient, host: str) -> None:
    assert api.get("/v1/status", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize(
    "origin",
    ["https://evil.example", "http://127.0.0.1.evil.example", "null", "file://", "chrome-extension://abc"],
)
def test_a_request_from_a_foreign_origin_is_forbidden(api: TestClient, owner: FakeOwner, origin: str) -> None:
    r = api.post("/v1/inbox/req-1/approve", json={}, headers={"Origin": origin})
    assert r.status_code == 403
    assert r.json()["error"] == "forbidden"
    assert owner.calls == []


@pytest.mark.parametrize("origin", ["http://127.0.0.1:5173", "http://localhost:8550", "http://[::1]:80"])
def test_a_loopback_origin_is_accepted(api: TestClient, origin: str) -> None:
    assert api.get("/v1/status", headers={"Origin": origin}).status_code == 200


def test_a_body_over_64_kib_is_refused_with_413(api: TestClient, owner: FakeOwner) -> None:
    r = api.post(
        "/v1/inbox/req-1/approve",
        content=b"{" + b" " * MAX_BODY + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 413
    assert owner.calls == []


def test_a_streamed_body_over_64_kib_is_refused_with_413(api: TestClient) -> None:
    chunks = iter([b" " * 40_000, b" " * 40_000])
    r = api.post("/v1/inbox/req-1/approve", content=chunks, headers={"Content-Type": "application/json"})
    assert r.status_code == 413


# --- bodies and errors -----------------------------------------------------------------------------


def test_bad_json_is_a_400_invalid_request_with_a_message(api: TestClient) -> None:
    r = api.post(
        "/v1/inbox/req-1/approve", content=b'{"once": tru', headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400
    assert r.json() == {"error": "invalid_request", "message": "the body is not valid JSON"}


def test_a_json_body_that_is_not_an_object_is_a_400(api: TestClient) -> None:
    r = api.post("/v1/inbox/req-1/approve", json=["once"])
    assert (r.status_code, r.json()["error"]) == (400, "invalid_request")


def test_a_body_that_is_not_json_is_refused(api: TestClient) -> None:
    r = api.post(
        "/v1/inbox/req-1/deny",
        content=b"remember=true",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert (r.status_code, r.json()["error"]) == (400, "invalid_request")


def test_an_unknown_member_is_refused_rather_than_ignored(api: TestClient) -> None:
    r = api.post("/v1/inbox/req-1/approve", json={"scope": ["read"]})
    assert r.status_code == 400
    assert "scope" in r.json()["message"]


def test_an_owner_error_is_answered_with_its_message_and_status(api: TestClient) -> None:
    r = api.post("/v1/inbox/missing/approve", json={})
    assert (r.status_code, r.json()) == (404, {"error": "no request 'missing' in the inbox"})


def test_an_unexpected_failure_is_a_logged_500_that_tells_nothing(
    api: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        r = api.get("/v1/resources")
    assert (r.status_code, r.json()) == (500, {"error": "internal error"})
    assert "disk is on fire" in caplog.text


def test_an_unknown_path_is_404_and_a_wrong_method_is_405(api: TestClient) -> None:
    assert api.get("/v1/nothing").status_code == 404
    assert api.delete("/v1/shares").status_code == 405


def test_answers_are_json_and_never_cached(api: TestClient) -> None:
    r = api.get("/v1/status")
    assert r.headers["content-type"] == "application/json"
    assert r.headers["cache-control"] == "no-store"


# --- mapping requests to the owner operations ----------------------------------------------------


def test_reads_return_what_the_owner_returns(api: TestClient) -> None:
    assert api.get("/v1/status").json() == {"issuer": "http://127.0.0.1:8470", "pending": 1}
    assert api.get("/v1/inbox").json() == [{"id": "req-1", "kind": "access"}]
    assert api.get("/v1/profiles").json() == [{"id": "me"}]
    assert api.get("/v1/trust").json() == []
    assert api.get("/v1/connections").json() == [{"id": "c-1"}]


def test_approve_maps_scopes_until_and_profile(api: TestClient, owner: FakeOwner) -> None:
    r = api.post(
        "/v1/inbox/req-1/approve",
        json={"scopes": ["read"], "once": False, "days": None, "until": "2026-12-01", "profile": "kid"},
    )
    assert r.status_code == 200
    assert owner.last == (
        "approve",
        ("req-1",),
        {"scopes": ["read"], "profile": "kid", "lifetime": Lifetime(until=parse_until("2026-12-01"))},
    )


def test_approve_without_a_body_approves_as_asked_until_revoked(api: TestClient, owner: FakeOwner) -> None:
    api.post("/v1/inbox/req-1/approve")
    assert owner.last == ("approve", ("req-1",), {"scopes": None, "profile": None, "lifetime": Lifetime()})


@pytest.mark.parametrize(
    ("body", "lifetime"),
    [
        ({"once": True}, Lifetime(once=True)),
        ({"days": 7}, Lifetime(days=7.0)),
        ({"days": 0.5}, Lifetime(days=0.5)),
        ({"until": "2026-12-01T17:00+02:00"}, Lifetime(until=parse_until("2026-12-01T15:00Z"))),
    ],
)
def test_approve_passes_one_lifetime(
    api: TestClient, owner: FakeOwner, body: dict[str, Any], lifetime: Lifetime
) -> None:
    assert api.post("/v1/inbox/req-1/approve", json=body).status_code == 200
    assert owner.last[2]["lifetime"] == lifetime


@pytest.mark.parametrize(
    "body",
    [
        {"once": True, "days": 3},
        {"days": 3, "until": "2026-12-01"},
        {"days": 0},
        {"days": -1},
        {"days": True},
        {"days": "3"},
        {"once": "yes"},
        {"scopes": "read"},
        {"scopes": [""]},
        {"profile": 7},
    ],
)
def test_approve_refuses_a_malformed_body(api: TestClient, owner: FakeOwner, body: dict[str, Any]) -> None:
    r = api.post("/v1/inbox/req-1/approve", json=body)
    assert (r.status_code, r.json()["error"]) == (400, "invalid_request")
    assert owner.calls == []


def test_an_until_that_is_not_a_date_is_refused_with_the_reason(api: TestClient) -> None:
    r = api.post("/v1/inbox/req-1/approve", json={"until": "next tuesday"})
    assert r.status_code == 400
    assert "ISO 8601" in r.json()["error"]


def test_deny_passes_remember(api: TestClient, owner: FakeOwner) -> None:
    api.post("/v1/inbox/req-1/deny", json={"remember": True})
    assert owner.last == ("deny", ("req-1",), {"remember": True})
    api.post("/v1/inbox/req-2/deny")
    assert owner.last == ("deny", ("req-2",), {"remember": False})


def test_share_maps_with_to_the_grantee(api: TestClient, owner: FakeOwner) -> None:
    r = api.post(
        "/v1/shares",
        json={
            "profile": "me",
            "resource_id": "rs-1",
            "scopes": ["read"],
            "with": "email:dr@example.org",
            "days": 30,
            "purpose": "second opinion",
            "name": "Dr. Dee",
        },
    )
    assert r.status_code == 200
    assert owner.last == (
        "share",
        (),
        {
            "profile": "me",
            "resource_id": "rs-1",
            "scopes": ["read"],
            "grantee": "email:dr@example.org",
            "lifetime": Lifetime(days=30.0),
            "purpose": "second opinion",
            "name": "Dr. Dee",
        },
    )


@pytest.mark.parametrize("missing", ["profile", "resource_id", "scopes", "with"])
def test_share_needs_profile_resource_scopes_and_grantee(api: TestClient, missing: str) -> None:
    body = {"profile": "me", "resource_id": "rs-1", "scopes": ["read"], "with": "client:c1"}
    del body[missing]
    r = api.post("/v1/shares", json=body)
    assert (r.status_code, r.json()["error"]) == (400, "invalid_request")
    assert missing in r.json()["message"]


def test_shares_lists_the_ended_ones_only_when_asked(api: TestClient, owner: FakeOwner) -> None:
    api.get("/v1/shares")
    assert owner.last == ("shares", (), {"include_inactive": False})
    api.get("/v1/shares", params={"all": "true"})
    assert owner.last == ("shares", (), {"include_inactive": True})


def test_revoke_and_disconnect_take_the_id_from_the_path(api: TestClient, owner: FakeOwner) -> None:
    api.post("/v1/shares/sh-1/revoke")
    assert owner.last == ("revoke", ("sh-1",), {})
    api.post("/v1/connections/c-1/disconnect", json={})
    assert owner.last == ("disconnect", ("c-1",), {})


def test_a_new_profile_gets_its_until_parsed(api: TestClient, owner: FakeOwner) -> None:
    api.post(
        "/v1/profiles", json={"name": "Kid", "dependent": True, "until": "2030-01-01", "exclude": ["PSY"]}
    )
    assert owner.last == (
        "add_profile",
        ("Kid",),
        {"dependent": True, "until": parse_until("2030-01-01"), "exclude": ["PSY"]},
    )
    api.post("/v1/profiles", json={"name": "Gran", "exclude": []})
    assert owner.last == ("add_profile", ("Gran",), {"dependent": False, "until": None, "exclude": []})


def test_trust_takes_exactly_one_of_jwks_and_jwks_uri(api: TestClient, owner: FakeOwner) -> None:
    jwks = {"keys": [{"kty": "EC"}]}
    assert api.post("/v1/trust", json={"issuer": "https://idp.example", "jwks": jwks}).status_code == 200
    assert owner.last == (
        "trust_add",
        ("https://idp.example",),
        {"jwks": jwks, "jwks_uri": None, "name": None},
    )
    both = {"issuer": "https://idp.example", "jwks": jwks, "jwks_uri": "https://idp.example/jwks"}
    assert api.post("/v1/trust", json=both).status_code == 400
    assert api.post("/v1/trust", json={"issuer": "https://idp.example"}).status_code == 400


def test_audit_passes_a_checked_limit(api: TestClient, owner: FakeOwner) -> None:
    api.get("/v1/audit", params={"limit": "7"})
    assert owner.last == ("audit", (7,), {})
    api.get("/v1/audit")
    assert owner.last == ("audit", (50,), {})
    assert api.get("/v1/audit", params={"limit": "0"}).status_code == 400
    assert api.get("/v1/audit", params={"limit": "many"}).status_code == 400


def test_the_owner_token_must_not_be_trivially_short() -> None:
    with pytest.raises(ValueError):
        OwnerApp(FakeOwner(), "short")  # type: ignore[arg-type]
