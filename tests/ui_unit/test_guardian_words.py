"""The app's plain words for guardianship: categories kept out, labels, who decided for whom, the
banner's line, and the activity sentences of the guardianship events."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC

import pytest

from app.ui import words
from app.ui.screens.profiles import parse_day_start
from app.ui.words import Names
from tests.ui_unit.test_words import HOSP, NAMES, NOW

HERE = "A" * 43
THERE = "B" * 43
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CONF = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
N = replace(NAMES, profiles={"me": "Anna", "mia": "Mia"}, agent_id=HERE,
            requests={**NAMES.requests, "req-3": {"id": "req-3", "kind": "access", "profile": "mia",
                                                  "client": {"client_id": "c-ehr"},
                                                  "requester": {"issuer": HOSP, "subject": "dr-bob",
                                                                "name": "Dr. Bob Jones"},
                                                  "permissions": [{"resource_id": "r-lab", "scopes": ["read"]}]}},
            shares={**NAMES.shares, "sh-2": {"id": "sh-2", "profile": "mia", "effect": "allow",
                                             "grantee": {"kind": "person", "issuer": HOSP, "subject": "dr-bob"},
                                             "permissions": [{"resource_id": "r-img", "scopes": ["read"]}]}},
            connection_profiles={"con-1": "me", "con-2": "mia"}, resource_profiles={"r-lab": "me", "r-img": "mia"})
ME_GUARDIAN = {"role": "guardian", "id": "me", "name": "Anna", "agent_id": HERE, "on_behalf_of": "mia"}
CO_GUARDIAN = {"role": "guardian", "id": f"agent:{THERE}", "name": "Ben", "agent_id": THERE, "on_behalf_of": "mia"}


def test_the_categories_offered_stand_for_the_codes_the_brief_names():
    assert words.category_codes(["mental", "sexual"]) == ["PSY", "MH", "BH", "SEX", "STD"]
    assert words.category_codes(["substance", "assault", "hiv"]) == ["ETH", "SUD", "SDV", "HIV"]
    assert words.category_codes([]) == []
    assert words.excluded_categories(["PSY", "MH", "BH", "SEX"]) == {"mental"}  # sexual health: STD missing
    assert words.excluded_categories([f"{ACT}|HIV"]) == {"hiv"}


def test_what_is_kept_out_in_plain_words():
    assert words.excluded_words(["PSY", "MH", "BH", "SEX", "STD"]) == ["mental health", "sexual health"]
    assert words.excluded_words(["PSY"]) == ["psychiatry"]  # one code of a category: its own words
    assert words.excluded_words(["SDV", "R", "XYZ"]) == ["sexual assault and abuse", "restricted", "XYZ"]
    assert words.excluded_words([]) == []


def test_a_records_labels_in_plain_words():
    assert words.label_words([f"{ACT}|PSY", f"{CONF}|R", f"{ACT}|HIV"]) == ["psychiatry", "restricted", "HIV/AIDS"]
    assert words.label_words([f"{CONF}|N", f"{ACT}|psy", "urn:x|ODD", 7]) == [
        "normal confidentiality", "psychiatry", "ODD"]


def test_the_banners_line_says_the_end_what_is_kept_out_and_what_is_not_allowed():
    g = {"status": "active", "ends_at": 1_930_176_000, "covers": ["approve", "deny", "share", "revoke", "connect"],
         "exclude": [{"code": c} for c in ("PSY", "MH", "BH", "SEX", "STD")], "guardians": [{"id": "me"}]}
    assert words.guardianship_words(g) == "Until 2 Mar 2031 · Not shown: mental health, sexual health"
    assert words.guardianship_words({**g, "exclude": [], "ends_at": None}) == "No end date"
    narrowed = {**g, "exclude": [], "covers": ["approve", "deny"],
                "guardians": [{"id": "me"}, {"id": f"agent:{THERE}", "name": "Ben"}], "require": "both"}
    assert words.guardianship_words(narrowed) == (
        "Until 2 Mar 2031 · Not allowed: sharing ahead of time, stopping a sharing and connecting labs and "
        "clinics · With Ben (both must agree)")
    assert words.guardianship_words({**g, "status": "ended", "exclude": []}) == "Ended on 2 Mar 2031"


@pytest.mark.parametrize(("by", "profile", "text"), [
    (None, "mia", None),
    ({"role": "self", "id": "me", "agent_id": HERE}, "me", "You decided"),
    (ME_GUARDIAN, "mia", "You decided for Mia as guardian"),
    ({**ME_GUARDIAN, "agent_id": None}, "mia", "You decided for Mia as guardian"),
    ({"role": "proxy", "id": "me", "agent_id": HERE}, "mia", "You decided for Mia on their behalf"),
    (CO_GUARDIAN, "mia", "Decided by the other guardian, Ben"),
    ({**CO_GUARDIAN, "name": None}, "mia", "Decided by the other guardian"),
    ({"role": "self", "id": "me", "name": "Mia", "agent_id": THERE}, "mia", "Mia decided"),
    # on Mia's own agent after the hand-over: Anna decided there, as guardian, for Mia (now "me")
    ({**ME_GUARDIAN, "agent_id": THERE}, "me", "Anna decided for you as your guardian"),
    ({**ME_GUARDIAN, "agent_id": THERE, "name": "Me"}, "me", "Your guardian decided for you"),  # no name given
])
def test_who_decided_for_whom(by, profile, text):
    assert words.decided_words(by, profile, N) == text


def test_an_activity_entry_says_whose_records_and_who_decided():
    approved = {"event": "request_approved", "inbox_id": "req-3", "profile": "mia", "on_behalf_of": "mia",
                "decided_by": ME_GUARDIAN}
    assert words.entry_profile(approved, N) == "mia"
    assert words.entry_context(approved, N) == "Mia's records · You decided for Mia as guardian"
    assert words.entry_profile({"event": "share_revoked", "share_id": "sh-2"}, N) == "mia"
    assert words.entry_profile({"event": "rpt_issued", "inbox_id": "req-3"}, N) == "mia"
    assert words.entry_profile({"event": "pat_revoked", "connection_id": "con-2"}, N) == "mia"
    assert words.entry_profile({"event": "resource_updated", "resource_id": "r-lab"}, N) == "me"
    assert words.entry_profile({"event": "client_registered", "client_id": "c-ehr"}, N) is None
    assert words.entry_context({"event": "client_registered"}, N) is None
    assert words.entry_context({"event": "share_created", "profile": "me", "decided_by": {
        "role": "self", "id": "me", "agent_id": HERE}}, N) == "Your records · You decided"


def test_sentences_for_the_guardianship_events():
    s = lambda e: words.event_sentence(e, N, UTC)  # noqa: E731
    perms = [{"resource_id": "r-lab", "scopes": ["read"]}]
    assert s({"event": "request_approved", "inbox_id": "req-3", "kind": "access", "profile": "mia", "ts": NOW,
              "permissions": perms, "expires_at": None, "decided_by": ME_GUARDIAN}) == (
        "You shared with Dr. Bob Jones: see Lab results, until you revoke")
    assert s({"event": "request_approved", "inbox_id": "req-3", "kind": "access", "profile": "mia", "ts": NOW,
              "permissions": perms, "expires_at": None, "decided_by": CO_GUARDIAN}) == (
        "Ben (the other guardian) shared with Dr. Bob Jones: see Lab results, until you revoke")
    assert s({"event": "request_approved_waiting", "inbox_id": "req-3", "kind": "access", "profile": "mia",
              "decided_by": ME_GUARDIAN}) == (
        "You said yes to Dr. Bob Jones (see Lab results); the other guardian must agree too")
    assert s({"event": "request_approved", "inbox_id": "req-2", "kind": "connect", "profile": "mia"}) == (
        "You let City Lab connect to Mia's records")
    assert s({"event": "guardianship_ended", "profile": "mia", "ends_at": 1_930_176_000,
              "shares_to_review": ["sh-2"]}) == (
        "Your guardianship for Mia ended on 2 Mar 2031; Mia decides now. 1 sharing you made waits for "
        "Mia's review")
    assert s({"event": "guardianship_ended", "profile": "mia", "ends_at": 1_930_176_000}) == (
        "Your guardianship for Mia ended on 2 Mar 2031; Mia decides now")
    assert s({"event": "guardianship_ended_by_guardian", "profile": "mia", "decided_by": ME_GUARDIAN}) == (
        "You ended the guardianship for Mia")
    assert s({"event": "profile_handed_over", "profile": "mia", "to": "https://relay.example/mias-agent",
              "decided_by": ME_GUARDIAN}) == (
        "You handed Mia's profile over to their own agent at relay.example/mias-agent")
    assert s({"event": "profile_imported", "profile": "me", "from_issuer": "https://anna.example",
              "shares_to_review": ["a", "b"]}) == (
        "You took over your records from your guardian's agent at anna.example; 2 sharings made for you wait "
        "for your review")
    assert s({"event": "share_kept", "share_id": "sh-2", "profile": "mia"}) == (
        "You kept the sharing of Imaging with Dr. Bob Jones")
    assert s({"event": "share_kept", "share_id": "sh-gone"}) == "You kept a sharing"
    assert s({"event": "guardian_added", "profile": "mia", "name": "Ben", "guardian": f"agent:{THERE}"}) == (
        "You added Ben as the other guardian of Mia")
    assert s({"event": "guardian_removed", "profile": "mia", "guardian": f"agent:{THERE}"}) == (
        "You removed the other guardian of Mia")
    assert s({"event": "guardianship_changed", "profile": "mia", "until": 1_930_176_000,
              "exclude": ["PSY", "MH", "BH", "SEX"], "covers": ["approve", "deny"], "require": "both"}) == (
        "You changed the guardianship for Mia: it now ends on 2 Mar 2031; it keeps out mental health and "
        "sexuality and reproductive health; it covers only saying yes to requests and saying no to requests; "
        "both guardians must agree to share")
    assert s({"event": "guardianship_changed", "profile": "mia", "require": "one"}) == (
        "You changed the guardianship for Mia: one guardian's yes is enough")
    assert s({"event": "profile_renamed", "profile": "mia", "name": "Mia"}) == "You renamed a profile to Mia"
    assert s({"event": "profile_renamed", "profile": "me", "name": "Anna"}) == "You changed your name to Anna"


def test_the_imported_shares_name_the_guardian_who_made_them():
    entry = {"event": "share_created", "profile": "me", "grantee": f"sub:{HOSP}#dr-bob",
             "permissions": [{"resource_id": "r-lab", "scopes": ["read"]}],
             "decided_by": {**ME_GUARDIAN, "agent_id": THERE}}
    assert words.event_sentence(entry, N).startswith("Anna (your guardian) shared ahead of time with Dr. Bob Jones")
    unnamed = {**entry, "decided_by": {**ME_GUARDIAN, "agent_id": THERE, "name": "Me"}}
    assert words.event_sentence(unnamed, N).startswith("Your guardian shared ahead of time with Dr. Bob Jones")


def test_notices_in_the_apps_words():
    assert words.notice_words({"kind": "shares_to_review", "count": 1}) == (
        "1 sharing a guardian made for you waits for you to keep or stop.")
    assert words.notice_words({"kind": "shares_to_review", "count": 3}).startswith("3 sharings a guardian made")
    ended = {"kind": "guardianship_ended", "message": "Your guardianship for Mia ended on 2031-03-02; Mia decides now."}
    assert words.notice_words(ended) == ended["message"]


def test_no_guardianship_sentence_uses_protocol_words():
    events = ["request_approved_waiting", "guardianship_ended", "guardianship_ended_by_guardian",
              "profile_handed_over", "profile_imported", "share_kept", "guardian_added", "guardian_removed",
              "guardianship_changed", "profile_renamed", "guardian_decision_signed"]
    for ev in events:
        text = words.event_sentence({"event": ev, "profile": "mia", "share_id": "sh-2", "inbox_id": "req-3",
                                     "kind": "access", "name": "Ben", "to": "https://x.example",
                                     "decision": "approve", "for_agent": "https://anna.example"}, N)
        assert text and not text[0].islower(), (ev, text)
        for bad in ("RPT", "PAT", "scope", "ticket", "UMA", "token", "_", "None"):
            assert bad.lower() not in text.lower(), (ev, text)


def test_the_activity_filters_know_the_new_events():
    assert words.event_outcome({"event": "share_kept"}) == "shared"
    assert words.event_person({"event": "share_kept", "share_id": "sh-2"}, N) == "Dr. Bob Jones"
    assert words.event_resources({"event": "share_kept", "share_id": "sh-2"}, N) == ["Imaging"]
    assert words.event_person({"event": "request_approved_waiting", "inbox_id": "req-3"}, N) == "Dr. Bob Jones"
    assert words.event_resources({"event": "request_approved_waiting", "inbox_id": "req-3"}, N) == ["Lab results"]


def test_whose_records():
    assert N.whose("me") == "your" and N.whose(None) == "your" and N.whose("mia") == "Mia's"
    assert Names().whose("sam") == "sam's"


def test_a_guardianship_ends_as_its_day_begins():
    assert parse_day_start("2031-03-02") == parse_day_start("02/03/2031") == 1_930_176_000
    with pytest.raises(ValueError):
        parse_day_start("next spring")
