"""The app's plain words: scopes, lifetimes, grantees, relative times and activity sentences."""

from __future__ import annotations

from datetime import UTC, date

import pytest

from app.ui import words
from app.ui.words import Names
from core.owner import Lifetime

NOW = 1_800_000_000  # 15 Jan 2027, 08:00 UTC
HOSP = "https://hospital.example"
NAMES = Names(
    issuers={HOSP: "City Hospital"},
    clients={"c-ehr": "Riverside Clinic EHR", "c-lab": "City Lab"},
    resources={"r-lab": "Lab results", "r-img": "Imaging"},
    people={f"{HOSP}#dr-bob": {"name": "Dr. Bob Jones", "email": "bob@clinic.example"}},
    requests={"req-1": {"id": "req-1", "kind": "access", "client": {"client_id": "c-ehr"},
                        "requester": {"issuer": HOSP, "subject": "dr-bob", "name": "Dr. Bob Jones"},
                        "permissions": [{"resource_id": "r-lab", "scopes": ["read"]}]},
              "req-2": {"id": "req-2", "kind": "connect", "client": {"client_id": "c-lab"}}},
    shares={"sh-1": {"id": "sh-1", "grantee": {"kind": "person", "issuer": HOSP, "subject": "dr-bob"},
                     "permissions": [{"resource_id": "r-lab", "scopes": ["read"]}], "effect": "allow"}},
    profiles={"me": "Me", "sam": "Sam"},
    connections={"con-1": "c-lab"},
)


@pytest.mark.parametrize(("scope", "text"), [("read", "see"), ("write", "add to or change"), ("READ", "see"),
                                             ("print", "print"), ("https://x.example/export", "https://x.example/export")])
def test_scopes_in_plain_words_and_unknown_ones_as_they_are(scope, text):
    assert words.scope_words(scope) == text


def test_what_someone_may_do_with_records():
    assert words.can_do(["read"], "Lab results") == "see Lab results"
    assert words.can_do(["read", "write"], "Lab results") == "see and add to or change Lab results"
    assert words.can_do(["print"], "Lab results") == "use Lab results for “print”"
    assert words.can_do(["read", "print"], "Lab results") == "see Lab results (and also “print”)"
    perms = [{"resource_id": "r-lab", "scopes": ["read"]}, {"resource_id": "r-img", "resource_name": "X-rays",
                                                              "scopes": ["read", "write"]}]
    assert words.permissions_words(perms, NAMES) == "see Lab results and see and add to or change X-rays"
    assert words.records_words(perms, NAMES) == "Lab results and X-rays"
    assert words.scope_choice_label("write", ["Lab results"]) == "Add to or change Lab results"


def test_join_words():
    assert words.join_words([]) == ""
    assert words.join_words(["a"]) == "a"
    assert words.join_words(["a", "b"]) == "a and b"
    assert words.join_words(["a", "b", "a", "c"]) == "a, b and c"


@pytest.mark.parametrize(("ago", "text"), [
    (0, "just now"), (30, "just now"), (60, "a minute ago"), (120, "2 minutes ago"), (59 * 60, "59 minutes ago"),
    (3600, "an hour ago"), (3 * 3600, "3 hours ago"), (30 * 3600, "yesterday"), (5 * 86400, "5 days ago"),
    (30 * 86400, "on 16 Dec 2026"), (-3600, "on 15 Jan 2027"),
])
def test_relative_time(ago, text):
    assert words.relative_time(NOW - ago, NOW, UTC) == text


def test_dates():
    assert words.date_words(1_795_305_600, UTC) == "22 Nov 2026"
    assert words.time_words(NOW, UTC) == "15 Jan 2027, 08:00"
    assert words.iso_time(NOW) == "2027-01-15T08:00:00Z"


def test_lifetime_choices_map_to_the_owners_lifetimes():
    assert [k for k, _ in words.LIFETIME_CHOICES] == ["once", "day", "month", "always"]
    assert [t for _, t in words.LIFETIME_CHOICES] == ["Just this once", "A day", "A month", "Until I revoke"]
    assert words.lifetime_for("once") == Lifetime(once=True)
    assert words.lifetime_for("day") == Lifetime(days=1)
    assert words.lifetime_for("month") == Lifetime(days=30)
    assert words.lifetime_for("always") == Lifetime()
    assert words.DEFAULT_LIFETIME == "month"


def test_lifetime_words():
    assert words.lifetime_words({"expires_at": None}, NOW, UTC) == "until you revoke"
    assert words.lifetime_words({"expires_at": 1_795_305_600 + 86400 * 400}, NOW, UTC) == "until 27 Dec 2027"
    assert words.lifetime_words({"once": True}, NOW, UTC) == "just once"
    assert words.lifetime_words({"once": True, "used_at": NOW}, NOW, UTC) == "just once (used on 15 Jan 2027)"
    assert words.lifetime_words({"expires_at": NOW - 86400}, NOW, UTC) == "ended on 14 Jan 2027"
    assert words.lifetime_words({"revoked_at": NOW, "expires_at": None}, NOW, UTC) == "stopped on 15 Jan 2027"
    assert words.origin_words({"origin": "request"}) == "when you approved a request"
    assert words.origin_words({"origin": "ahead"}) == "shared ahead of time"


def test_grantees_in_plain_words():
    person = {"kind": "person", "issuer": HOSP, "subject": "dr-bob"}
    assert words.grantee_words(person, NAMES) == "Dr. Bob Jones (verified by City Hospital)"
    assert words.grantee_short(person, NAMES) == "Dr. Bob Jones"
    stranger = {"kind": "person", "issuer": "https://other.example/", "subject": "x-9"}
    assert words.grantee_words(stranger, NAMES) == "x-9 (verified by other.example)"
    assert words.grantee_words({"kind": "class", "issuer": HOSP, "claim": "role", "value": "clinician"},
                               NAMES) == "anyone at City Hospital whose role is clinician"
    assert words.grantee_words({"kind": "email", "email": "a@b.example"}, NAMES) == (
        "whoever proves the e-mail address a@b.example")
    assert words.grantee_words({"kind": "client", "client_id": "c-ehr"}, NAMES) == "the app Riverside Clinic EHR"
    assert words.grantee_from_text(f"class:{HOSP}#role=clinician") == {
        "kind": "class", "issuer": HOSP, "claim": "role", "value": "clinician"}
    assert words.grantee_from_text(f"sub:{HOSP}#dr-bob") == person


def test_requester_and_app_words():
    req = {"issuer": HOSP, "subject": "dr-bob", "name": "Dr. Bob Jones", "email": "bob@clinic.example",
           "verified": True}
    assert words.requester_words(req, NAMES) == ("Dr. Bob Jones · bob@clinic.example", "Verified by City Hospital")
    assert words.requester_words(None, NAMES)[1] == "Not verified"
    assert words.requester_words({**req, "verified": False}, NAMES)[1] == "Not verified"
    assert words.requester_name(req) == "Dr. Bob Jones"
    assert words.registration_words("dynamic", NAMES) == "registered itself"
    assert words.registration_words(None, NAMES) == "registered itself"
    assert words.registration_words(f"software_statement:{HOSP}", NAMES) == "vouched for by City Hospital"


def test_errors_in_plain_words_never_name_protocol_things():
    assert words.plain_error("request req-1 was already approved") == (
        "Someone already answered this request (approved).")
    assert words.plain_error("scope 'write' was not asked for; asked: read") == (
        "You can only share what was asked for.")
    assert "scope" not in words.plain_error("the scope is odd").lower()
    assert words.plain_error("something broke") == "Something broke."


def test_activity_sentences():
    s = words.event_sentence
    asked = {"event": "request_submitted", "ts": NOW, "client_id": "c-ehr", "requester": f"{HOSP}#dr-bob",
             "permissions": [{"resource_id": "r-lab", "resource_name": "Lab results", "scopes": ["read"]}]}
    assert s(asked, NAMES) == "Dr. Bob Jones at Riverside Clinic EHR asked to see Lab results"
    assert s({**asked, "requester": None}, NAMES) == (
        "Someone using Riverside Clinic EHR (not verified) asked to see Lab results")
    assert s({**asked, "purpose": "treatment (TREAT)"}, NAMES).endswith("Lab results, for treatment (TREAT)")
    approved = {"event": "request_approved", "ts": NOW, "inbox_id": "req-1", "kind": "access",
                "permissions": [{"resource_id": "r-lab", "scopes": ["read"]}], "expires_at": None}
    assert s(approved, NAMES, UTC) == "You shared with Dr. Bob Jones: see Lab results, until you revoke"
    assert s({"event": "request_approved", "inbox_id": "req-2", "kind": "connect"}, NAMES) == (
        "You let City Lab connect to your records")
    assert s({"event": "request_denied_by_owner", "inbox_id": "req-1", "kind": "access", "remembered": True},
             NAMES).startswith("You said no to Dr. Bob Jones (see Lab results) and will always say no")
    assert s({"event": "share_created", "grantee": f"class:{HOSP}#role=clinician",
              "permissions": [{"resource_id": "r-lab", "scopes": ["read"]}]}, NAMES) == (
        "You shared ahead of time with anyone at City Hospital whose role is clinician: see Lab results")
    assert s({"event": "share_revoked", "share_id": "sh-1"}, NAMES) == (
        "You stopped sharing Lab results with Dr. Bob Jones")
    assert s({"event": "rpt_issued", "client_id": "c-ehr", "requester": f"{HOSP}#dr-bob",
              "permissions": [{"resource_id": "r-lab", "scopes": ["read"]}]}, NAMES) == (
        "Riverside Clinic EHR was given access to see Lab results for Dr. Bob Jones")
    assert s({"event": "rs_disconnected", "connection_id": "con-1"}, NAMES) == "You disconnected City Lab"
    assert s({"event": "pat_issued", "client_id": "c-lab", "profile": "sam"}, NAMES) == (
        "City Lab is now connected to Sam's records")
    assert s({"event": "issuer_trusted", "issuer": HOSP}, NAMES) == (
        "You now trust City Hospital to confirm who people are")
    assert s({"event": "something_new"}, NAMES) == "Something new"


def test_no_sentence_uses_protocol_words():
    events = ["request_submitted", "connect_requested", "request_approved", "request_denied_by_owner",
              "request_denied", "share_created", "share_revoked", "rpt_issued", "rpt_refreshed", "introspection",
              "pat_issued", "pat_refreshed", "pat_revoked", "rs_disconnected", "grant_revoked", "token_revoked",
              "resource_registered", "resource_updated", "resource_deleted", "client_registered", "profile_added",
              "issuer_trusted", "code_issued", "code_reused", "signing_key_rotated"]
    for ev in events:
        text = words.event_sentence({"event": ev, "client_id": "c-ehr", "share_id": "sh-1", "inbox_id": "req-1",
                                     "kind": "access"}, NAMES)
        for bad in ("RPT", "PAT", "scope", "ticket", "UMA", "token", "_"):
            assert bad.lower() not in text.lower(), (ev, text)


def test_activity_filters():
    approved = {"event": "request_approved", "inbox_id": "req-1", "kind": "access",
                "permissions": [{"resource_id": "r-lab", "scopes": ["read"]}]}
    assert words.event_outcome(approved) == "shared"
    assert words.event_outcome({"event": "rpt_issued"}) == "access"
    assert words.event_outcome({"event": "whatever"}) == "other"
    assert words.event_person(approved, NAMES) == "Dr. Bob Jones"
    assert words.event_resources(approved, NAMES) == ["Lab results"]
    assert words.event_person({"event": "share_revoked", "share_id": "sh-1"}, NAMES) == "Dr. Bob Jones"
    assert words.event_resources({"event": "share_revoked", "share_id": "sh-1"}, NAMES) == ["Lab results"]


def test_daily_access_counts_cover_fourteen_days_ending_today():
    entries = [{"event": "rpt_issued", "ts": NOW}, {"event": "introspection", "ts": NOW - 86400},
               {"event": "introspection", "ts": NOW - 86400 + 60}, {"event": "share_created", "ts": NOW},
               {"event": "rpt_issued", "ts": NOW - 20 * 86400}]
    days = words.daily_access_counts(entries, NOW, tz=UTC)
    assert len(days) == 14
    assert days[-1] == (date(2027, 1, 15), 1) and days[-2] == (date(2027, 1, 14), 2)
    assert days[0][0] == date(2027, 1, 2) and sum(n for _, n in days) == 3
