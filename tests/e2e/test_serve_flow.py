"""Black-box: the whole UMA flow over real HTTP against ``consent-agent serve --ui none``, with the
owner deciding through the ``consent-agent`` CLI."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.live import Live, live_agent
from tests.flow import person_token


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with live_agent(tmp_path_factory.mktemp("agent")) as world:
        yield world


def test_owner_approves_read_through_cli_and_revokes(live: Live) -> None:
    ticket = live.ticket(["read", "write"])
    r = live.client.ask(ticket, id_token=person_token(live.idp, live.client, purpose_of_use="TREAT"))
    assert r.status_code == 403 and r.json()["error"] == "request_submitted", r.text
    waiting = r.json()
    item = live.inbox_item("access")
    assert item["requester"]["subject"] == "dr-bob" and item["requester"]["verified"] is True
    assert item["client"]["client_name"] == "Riverside Clinic EHR"
    assert item["permissions"] == [{"resource_id": live.resource, "resource_name": "Lab results",
                                    "scopes": ["read", "write"]}]
    assert item["purpose"] == "treatment (TREAT)"
    shown = live.agent.cli("inbox").stdout  # what the owner reads in the terminal
    assert "Dr. Bob Jones" in shown and "purpose:    treatment (TREAT)" in shown

    live.agent.cli("approve", item["id"], "--scopes", "read")
    r = live.client.ask(waiting["ticket"])
    assert r.status_code == 200, r.text
    rpt = r.json()
    assert rpt["token_type"] == "DPoP"
    info = live.rs.introspect(rpt["access_token"])
    assert info["active"] is True
    assert info["permissions"] == [{"resource_id": live.resource, "resource_scopes": ["read"],
                                    "exp": info["exp"]}]
    assert info["cnf"] == {"jkt": live.client.dpop_key.thumbprint}

    [share] = [s for s in live.agent.cli_json("shares") if s["inbox_id"] == item["id"]]
    assert share["purpose"] == "treatment (TREAT)"
    live.agent.cli("revoke", share["id"])
    assert live.rs.introspect(rpt["access_token"]) == {"active": False}
    audit = live.agent.cli_json("audit", "--limit", "200")
    assert {"request_submitted", "request_approved", "rpt_issued", "share_revoked"} <= {e["event"] for e in audit}


def test_owner_denies_through_cli(live: Live) -> None:
    r = live.client.ask(live.ticket(["read"]), id_token=person_token(live.idp, live.client, sub="dr-eve"))
    assert r.json()["error"] == "request_submitted"
    item = live.inbox_item("access")
    live.agent.cli("deny", item["id"])
    r = live.client.ask(r.json()["ticket"])
    assert r.status_code == 403 and r.json() == {"error": "request_denied"}
    assert live.agent.cli_json("inbox") == []


def test_share_made_ahead_gives_rpt_without_inbox_item(live: Live) -> None:
    live.agent.cli("share", "--profile", "me", "--resource", live.resource, "--scopes", "read",
                   "--with", f"sub:{live.idp.issuer}#dr-carol", "--days", "1")
    r = live.client.ask(live.ticket(["read"]), id_token=person_token(live.idp, live.client, sub="dr-carol"))
    assert r.status_code == 200, r.text
    assert live.agent.cli_json("inbox") == []
    info = live.rs.introspect(r.json()["access_token"])
    assert info["active"] is True and info["permissions"][0]["resource_scopes"] == ["read"]


def test_expired_share_gives_no_rpt(live: Live) -> None:
    until = (datetime.now(UTC) + timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    live.agent.cli("share", "--profile", "me", "--resource", live.resource, "--scopes", "read",
                   "--with", f"sub:{live.idp.issuer}#dr-dan", "--until", until)
    time.sleep(3)
    r = live.client.ask(live.ticket(["read"]), id_token=person_token(live.idp, live.client, sub="dr-dan"))
    assert r.status_code == 403 and r.json()["error"] == "request_submitted", r.text
    item = live.inbox_item("access")
    live.agent.cli("deny", item["id"])
