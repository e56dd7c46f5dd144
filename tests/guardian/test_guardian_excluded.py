"""Categories excluded from a guardianship: requests touching them never reach the guardian, are
refused while Mia has no agent of her own, and no guardian view lists what they are about."""

from __future__ import annotations

import json

import pytest

from core import guardian
from core.errors import OwnerError
from tests.flow import person_token
from tests.guardian.conftest import ACT_CODE, SEX, Family

CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"


def test_a_request_for_an_excluded_category_never_reaches_the_guardian(family: Family) -> None:
    r = family.ask(family.clinic_notes)
    assert r.status_code == 403
    assert r.json() == {"error": "request_denied",
                        "error_description": "only the person these records are about can decide on this request"}
    assert family.owner.inbox() == [] and family.owner.inbox("mia") == []
    # no guardian view lists the notes: records, shares, the activity log, the profile's counts
    assert [x["_id"] for x in family.owner.resources()] == [family.labs]
    assert family.owner.shares(include_inactive=True) == []
    log = json.dumps(family.owner.audit(1000)) + json.dumps(family.owner.audit(1000, profile="mia"))
    assert family.clinic_notes not in log and "Sexual health" not in log and "request_withheld" not in log
    assert family.owner.profile("mia")["resources"] == 1
    # the request is kept for Mia (it moves with her profile at hand-over), not thrown away
    [held] = family.agent.state.find("inbox", status="withheld")
    assert held["profile"] == "mia" and held["withheld_reason"] == "excluded"
    assert [p["resource_id"] for p in held["permissions"]] == [family.clinic_notes]
    with pytest.raises(OwnerError) as refused:
        family.owner.approve(held["id"])
    assert refused.value.status == 404


def test_a_mixed_request_reaches_the_guardian_without_the_excluded_part(family: Family) -> None:
    ticket = family.lab.ticket([{"resource_id": family.labs, "resource_scopes": ["read"]},
                                {"resource_id": family.clinic_notes, "resource_scopes": ["read"]}])
    r = family.clinic.ask(ticket, id_token=person_token(family.idp, family.clinic))
    assert r.json()["error"] == "request_submitted", r.text
    [item] = family.owner.inbox()
    assert [p["resource_id"] for p in item["permissions"]] == [family.labs]
    family.owner.approve(item["id"])
    got = family.clinic.ask(r.json()["ticket"])
    assert got.status_code == 200, got.text
    perms = family.lab.introspect(got.json()["access_token"])["permissions"]
    assert [p["resource_id"] for p in perms] == [family.labs]  # a partial grant, never the notes


def test_the_guardian_cannot_share_an_excluded_resource_ahead_of_time(family: Family) -> None:
    with pytest.raises(OwnerError) as refused:
        family.owner.share(profile="mia", resource_id=family.clinic_notes, scopes=["read"],
                           grantee="email:bob@clinic.example")
    assert refused.value.status == 404 and "no resource" in str(refused.value)


def test_a_label_added_after_the_request_takes_it_out_of_the_guardians_hands(family: Family) -> None:
    r = family.ask(family.labs)
    [item] = family.owner.inbox()
    relabel = family.lab.http.put(family.lab.url(f"/resource_set/{family.labs}"),
                                  json={"name": "Lab results", "resource_scopes": ["read", "write"],
                                        "security_labels": [f"{ACT_CODE}|PSY"]},
                                  headers=family.lab.protected("PUT", f"/resource_set/{family.labs}"))
    assert relabel.status_code == 200, relabel.text
    assert family.owner.inbox() == []
    with pytest.raises(OwnerError):
        family.owner.approve(item["id"])
    assert family.clinic.ask(r.json()["ticket"]).json()["error"] == "request_denied"


def test_exclusions_can_be_added_but_never_lifted(family: Family) -> None:
    shown = family.owner.update_guardianship("mia", exclude=["eth"])
    assert shown["exclude"] == ["SEX", "PSY", "ETH"]
    assert [x["words"] for x in shown["guardianship"]["exclude"]][-1] == "substance use"
    with pytest.raises(OwnerError, match="earlier, never later"):
        family.owner.update_guardianship("mia", until=shown["until"] + 86400)
    with pytest.raises(OwnerError, match="not a sensitivity code"):
        family.owner.add_profile("Leo", dependent=True, exclude=["not a code"])


@pytest.mark.parametrize(("label", "rule", "hit"), [
    (SEX, "SEX", True),
    (SEX, "sex", True),
    (SEX, f"{ACT_CODE}|SEX", True),
    (SEX, "http://example.org/other|SEX", False),
    (SEX, "PSY", False),
    (f"{CONFIDENTIALITY}|V", "R", True),   # excluding restricted excludes very restricted too
    (f"{CONFIDENTIALITY}|N", "R", False),
    (f"{CONFIDENTIALITY}|R", "R", True),
])
def test_labels_match_exclusions_by_code_and_confidentiality_level(label: str, rule: str, hit: bool) -> None:
    assert guardian.label_matches(label, guardian.exclusion_rule(rule)) is hit
