"""The end of a guardianship: the guardian may no longer act and is told; requests that waited for
them are withheld for Mia; the shares they made keep working until Mia reviews them, at most
90 days."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from core import guardian
from core.errors import OwnerError
from core.owner_api import OwnerApp
from tests.guardian.conftest import BIRTHDAY, Family

TOKEN = "guardian-test-owner-token-" + "e" * 16
ENDED = "Your guardianship for Mia ended on 2027-03-02; Mia decides now."


def test_after_the_end_date_the_guardians_approve_is_refused_with_a_clear_message(family: Family) -> None:
    told = []
    family.agent.events.subscribe(lambda kind, payload: told.append((kind, dict(payload))))
    family.later(BIRTHDAY - family.clock() - 3600)  # the evening before Mia turns 18
    waiting = family.ask(family.labs)
    [item] = family.owner.inbox()
    family.until_birthday()

    with TestClient(OwnerApp(family.owner, TOKEN), base_url="http://127.0.0.1") as api:
        r = api.post(f"/v1/inbox/{item['id']}/approve", json={}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 403 and r.json() == {"error": ENDED}
    with pytest.raises(OwnerError) as refused:
        family.owner.share(profile="mia", resource_id=family.labs, scopes=["read"], grantee="email:x@example.org")
    assert (str(refused.value), refused.value.status) == (ENDED, 403)
    with TestClient(OwnerApp(family.owner, TOKEN), base_url="http://127.0.0.1") as api:
        r = api.post("/v1/profiles/mia/end", json={}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 403 and r.json() == {"error": ENDED}

    assert family.clinic.ask(waiting.json()["ticket"]).json()["error"] == "request_denied"
    assert family.owner.inbox() == []
    assert [k for k, _ in told if k == guardian.GUARDIANSHIP_ENDED] == [guardian.GUARDIANSHIP_ENDED]
    assert family.owner.acting_for("mia")["reason"] == ENDED
    [notice] = family.owner.notices()
    assert notice["kind"] == "guardianship_ended" and "Mia decides now" in notice["message"]
    [entry] = family.agent.audit.tail(500, event="guardianship_ended")
    assert entry["profile"] == "mia" and entry["requests_withheld"] == [item["id"]]


def test_deny_and_revoke_after_the_end_are_refused_the_same_way(family: Family) -> None:
    made = family.owner.share(profile="mia", resource_id=family.labs, scopes=["read"], grantee="email:x@example.org")
    family.ask(family.labs)
    [item] = family.owner.inbox()
    family.until_birthday()
    for attempt in (lambda: family.owner.deny(item["id"]), lambda: family.owner.revoke(made["id"])):
        with pytest.raises(OwnerError) as refused:
            attempt()
        assert (str(refused.value), refused.value.status) == (ENDED, 403)
    assert family.agent.state.get("inbox", "id", item["id"])["status"] == "withheld"
    assert family.agent.state.share(made["id"]).revoked_at is None


def test_new_requests_after_the_end_wait_for_mia_and_are_refused_meanwhile(family: Family) -> None:
    family.until_birthday()
    r = family.ask(family.labs)
    assert r.status_code == 403 and r.json()["error"] == "request_denied"
    assert family.owner.inbox() == []
    assert [i["withheld_reason"] for i in family.agent.state.find("inbox", status="withheld")] == [
        "guardianship_ended"]


def test_the_guardians_shares_keep_working_until_mia_reviews_them_then_stop_at_the_deadline(family: Family) -> None:
    made = family.owner.share(profile="mia", resource_id=family.labs, scopes=["read"],
                              grantee=f"sub:{family.idp.issuer}#dr-bob")
    family.until_birthday()
    ended = family.owner.profile("mia")
    assert ended["guardianship"]["status"] == "ended"
    [review] = ended["shares_to_review"]
    assert review["id"] == made["id"] and review["needs_review"] is True
    assert review["review_due"] == BIRTHDAY + guardian.REVIEW_DAYS * 86400

    r = family.ask(family.labs)
    assert r.status_code == 200, r.text  # care does not stop on Mia's birthday
    token = r.json()["access_token"]
    assert family.lab.introspect(token)["active"] is True

    family.later(review["review_due"] - family.clock())
    assert family.lab.introspect(token) == {"active": False}
    assert family.ask(family.labs).json()["error"] == "request_denied"  # and nobody here may decide anew
    with pytest.raises(OwnerError, match="Mia decides now"):
        family.owner.keep_share(made["id"])


def test_ending_early_by_hand_opens_the_review_and_cannot_be_undone(family: Family) -> None:
    family.owner.share(profile="mia", resource_id=family.labs, scopes=["read"], grantee="email:bob@clinic.example")
    shown = family.owner.end_guardianship("mia")
    assert shown["guardianship"]["status"] == "ended" and len(shown["shares_to_review"]) == 1
    assert shown["acting"]["can_decide"] is False
    with pytest.raises(OwnerError, match="Mia decides now"):
        family.owner.update_guardianship("mia", until=family.agent.now() + 86400)
    log = family.owner.audit(100, profile="mia")
    assert [e["event"] for e in log][-2:] == ["guardianship_ended_by_guardian", "guardianship_ended"]
