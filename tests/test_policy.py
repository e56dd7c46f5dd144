"""What the owner's shares allow: core.policy.evaluate (UMA 2.0 Grant §3.3.4, §5.6)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from core import policy
from core.model import AccessRequest, Grantee, Permission, Requester, Share
from core.policy import ClaimHint, Decision, Reason, evaluate

NOW = 1_800_000_000
ISS = "https://id.example"
APP = "app-1"
ALICE = Requester(ISS, "alice", email="Alice@Example.org", email_verified=True,
                  claims={"role": "doctor", "groups": ["family", "gp"]})


def share(sid: str = "s1", perms: tuple[tuple[str, tuple[str, ...]], ...] = (("r1", ("read",)),),
          grantee: Grantee | None = None, **kw: Any) -> Share:
    return Share(id=sid, profile=kw.pop("profile", "me"),
                 permissions=tuple(Permission(r, s) for r, s in perms),
                 grantee=grantee or Grantee("client", client_id=APP), created_at=NOW - 100, **kw)


def ask(*perms: tuple[str, tuple[str, ...]], requester: Requester | None = None,
        client_id: str = APP, profile: str = "me") -> AccessRequest:
    return AccessRequest(profile, client_id, tuple(Permission(r, s) for r, s in perms), requester)


def codes(d: Decision) -> list[str]:
    return [r.code for r in d.reasons]


PERSON = Grantee("person", issuer=ISS, subject="alice")
EMAIL = Grantee("email", email="alice@example.org")
CLASS = Grantee("class", issuer=ISS, claim="role", value="doctor")


# Default deny


def test_no_shares_grants_nothing_and_says_no_share() -> None:
    d = evaluate([], ask(("r1", ("read",))), NOW)
    assert d.nothing_granted and not d.complete
    assert d.refused == (Permission("r1", ("read",)),)
    assert d.reasons == (Reason("no_share", "r1", None, d.reasons[0].detail),)
    assert d.reasons[0].detail


def test_an_empty_request_is_neither_complete_nor_granted() -> None:
    d = evaluate([share()], ask(), NOW)
    assert d.nothing_granted and not d.complete and d.reasons == ()


def test_a_share_for_another_profile_never_grants() -> None:
    d = evaluate([share(profile="work")], ask(("r1", ("read",))), NOW)
    assert d.nothing_granted and codes(d) == ["no_share"] and d.share_ids == ()


def test_a_share_for_another_resource_does_not_grant() -> None:
    d = evaluate([share(perms=(("r2", ("read",)),))], ask(("r1", ("read",))), NOW)
    assert d.nothing_granted and codes(d) == ["no_share"]


# Scopes


def test_a_client_share_grants_exactly_the_requested_scopes_it_covers() -> None:
    s = share(perms=(("r1", ("read", "write", "delete")),))
    d = evaluate([s], ask(("r1", ("write", "read"))), NOW)
    assert d.granted == (Permission("r1", ("write", "read")),)
    assert d.complete and d.refused == () and d.share_ids == ("s1",)
    assert codes(d) == ["shared"] and d.reasons[0].share_id == "s1"


def test_a_narrower_share_grants_a_subset_and_refuses_the_rest_as_scope_not_shared() -> None:
    d = evaluate([share()], ask(("r1", ("read", "write"))), NOW)
    assert d.granted == (Permission("r1", ("read",)),)
    assert d.refused == (Permission("r1", ("write",)),)
    assert not d.complete and not d.nothing_granted
    assert codes(d) == ["shared", "scope_not_shared"] and d.reasons[1].share_id == "s1"


def test_a_share_covering_only_other_scopes_refuses_as_scope_not_shared() -> None:
    d = evaluate([share()], ask(("r1", ("write",))), NOW)
    assert d.nothing_granted and codes(d) == ["scope_not_shared"] and d.share_ids == ()


def test_scopes_from_several_shares_are_united() -> None:
    d = evaluate([share("a"), share("b", (("r1", ("write",)),))], ask(("r1", ("read", "write"))), NOW)
    assert d.granted == (Permission("r1", ("read", "write")),) and d.share_ids == ("a", "b")
    assert codes(d) == ["shared", "shared"]


def test_duplicate_requested_scopes_and_resources_are_merged() -> None:
    d = evaluate([share()], ask(("r1", ("read", "read")), ("r1", ("read",))), NOW)
    assert d.granted == (Permission("r1", ("read",)),) and d.complete


def test_an_empty_scope_request_is_granted_when_a_share_covers_the_resource() -> None:
    d = evaluate([share()], ask(("r1", ())), NOW)
    assert d.granted == (Permission("r1", ()),) and d.complete and d.share_ids == ("s1",)


def test_an_empty_scope_request_for_an_uncovered_resource_is_refused() -> None:
    d = evaluate([share()], ask(("r2", ())), NOW)
    assert d.refused == (Permission("r2", ()),) and d.nothing_granted and codes(d) == ["no_share"]


def test_a_multi_resource_request_is_partially_granted() -> None:
    d = evaluate([share(perms=(("r1", ("read",)), ("r2", ("read",))))],
                 ask(("r1", ("read",)), ("r2", ("read", "write")), ("r3", ("read",))), NOW)
    assert d.granted == (Permission("r1", ("read",)), Permission("r2", ("read",)))
    assert d.refused == (Permission("r2", ("write",)), Permission("r3", ("read",)))
    assert codes(d) == ["shared", "scope_not_shared", "no_share"]
    assert [r.resource_id for r in d.reasons] == [None, "r2", "r3"]


def test_share_ids_list_only_the_shares_that_contributed() -> None:
    shares = [share("z"), share("a", (("r9", ("read",)),)), share("m", (("r1", ("write",)),))]
    d = evaluate(shares, ask(("r1", ("read",))), NOW)
    assert d.share_ids == ("z",)


# Lifetime


def test_a_share_ends_at_its_expiry_and_says_expired() -> None:
    d = evaluate([share(expires_at=NOW)], ask(("r1", ("read",))), NOW)
    assert d.nothing_granted and codes(d) == ["expired"] and d.reasons[0].share_id == "s1"


def test_a_share_still_grants_just_before_its_expiry() -> None:
    assert evaluate([share(expires_at=NOW)], ask(("r1", ("read",))), NOW - 0.5).complete


def test_a_revoked_share_says_revoked() -> None:
    d = evaluate([share(revoked_at=NOW - 1)], ask(("r1", ("read",))), NOW)
    assert d.nothing_granted and codes(d) == ["revoked"]


def test_a_used_once_share_says_used() -> None:
    d = evaluate([share(once=True, used_at=NOW - 1)], ask(("r1", ("read",))), NOW)
    assert d.nothing_granted and codes(d) == ["used"]


def test_an_unused_once_share_grants() -> None:
    assert evaluate([share(once=True)], ask(("r1", ("read",))), NOW).complete


def test_an_ended_share_for_someone_else_is_reported_as_a_mismatch_not_as_ended() -> None:
    d = evaluate([share(revoked_at=NOW - 1, grantee=Grantee("client", client_id="other"))],
                 ask(("r1", ("read",))), NOW)
    assert codes(d) == ["client_mismatch"]


# Grantees


def test_a_person_share_needs_the_exact_issuer_and_subject() -> None:
    s = share(grantee=PERSON)
    assert evaluate([s], ask(("r1", ("read",)), requester=ALICE), NOW).complete
    for other in (Requester("https://evil.example", "alice"), Requester(ISS, "bob")):
        d = evaluate([s], ask(("r1", ("read",)), requester=other), NOW)
        assert d.nothing_granted and codes(d) == ["grantee_mismatch"] and d.need_claims == ()


def test_an_email_share_matches_a_verified_email_case_insensitively() -> None:
    assert evaluate([share(grantee=EMAIL)], ask(("r1", ("read",)), requester=ALICE), NOW).complete


def test_an_email_share_needs_email_verified() -> None:
    unverified = Requester(ISS, "alice", email="alice@example.org", email_verified=False)
    d = evaluate([share(grantee=EMAIL)], ask(("r1", ("read",)), requester=unverified), NOW)
    assert d.nothing_granted and codes(d) == ["requester_unverified"] and d.need_claims == ()


def test_an_email_share_refuses_another_address() -> None:
    bob = Requester(ISS, "bob", email="bob@example.org", email_verified=True)
    d = evaluate([share(grantee=EMAIL)], ask(("r1", ("read",)), requester=bob), NOW)
    assert codes(d) == ["grantee_mismatch"]


def test_an_email_share_with_an_issuer_needs_that_issuer() -> None:
    g = Grantee("email", issuer="https://other.example", email="alice@example.org")
    d = evaluate([share(grantee=g)], ask(("r1", ("read",)), requester=ALICE), NOW)
    assert codes(d) == ["grantee_mismatch"]


def test_a_class_share_matches_by_claim_value() -> None:
    assert evaluate([share(grantee=CLASS)], ask(("r1", ("read",)), requester=ALICE), NOW).complete


def test_a_class_share_matches_by_membership_in_a_list_claim() -> None:
    g = Grantee("class", issuer=ISS, claim="groups", value="family")
    assert evaluate([share(grantee=g)], ask(("r1", ("read",)), requester=ALICE), NOW).complete


@pytest.mark.parametrize("grantee", [
    Grantee("class", issuer=ISS, claim="role", value="nurse"),
    Grantee("class", issuer=ISS, claim="groups", value="work"),
    Grantee("class", issuer=ISS, claim="missing", value="doctor"),
    Grantee("class", issuer="https://other.example", claim="role", value="doctor"),
])
def test_a_class_share_refuses_other_values_claims_and_issuers(grantee: Grantee) -> None:
    d = evaluate([share(grantee=grantee)], ask(("r1", ("read",)), requester=ALICE), NOW)
    assert d.nothing_granted and codes(d) == ["grantee_mismatch"]


def test_a_class_claim_is_compared_as_a_string_without_coercion() -> None:
    rq = Requester(ISS, "x", claims={"level": 3})
    g = Grantee("class", issuer=ISS, claim="level", value="3")
    assert evaluate([share(grantee=g)], ask(("r1", ("read",)), requester=rq), NOW).nothing_granted


def test_a_client_share_matches_whoever_uses_the_client() -> None:
    assert evaluate([share()], ask(("r1", ("read",)), requester=ALICE), NOW).complete


def test_a_client_share_for_another_client_says_client_mismatch() -> None:
    d = evaluate([share()], ask(("r1", ("read",)), client_id="app-2"), NOW)
    assert d.nothing_granted and codes(d) == ["client_mismatch"]


def test_a_client_restricted_share_used_through_another_client_says_client_mismatch() -> None:
    s = share(grantee=PERSON, client_id=APP)
    d = evaluate([s], ask(("r1", ("read",)), requester=ALICE, client_id="app-2"), NOW)
    assert d.nothing_granted and codes(d) == ["client_mismatch"] and d.need_claims == ()
    assert evaluate([s], ask(("r1", ("read",)), requester=ALICE), NOW).complete


def test_a_malformed_grantee_matches_nobody_and_hints_nothing() -> None:
    d = evaluate([share(grantee=Grantee("person", issuer=ISS))], ask(("r1", ("read",))), NOW)
    assert codes(d) == ["grantee_mismatch"] and d.need_claims == ()


# need_info hints (UMA Grant §3.3.6)


def test_need_claims_list_person_email_and_class_claims_when_there_is_no_requester() -> None:
    shares = [share("p", grantee=PERSON), share("e", grantee=EMAIL), share("c", grantee=CLASS),
              share("p2", grantee=Grantee("person", issuer=ISS, subject="bob"))]
    d = evaluate(shares, ask(("r1", ("read",))), NOW)
    assert d.nothing_granted and codes(d) == ["requester_unverified"]
    assert [(h.issuer, h.claim) for h in d.need_claims] == [(ISS, "role"), (None, "email"), (ISS, "sub")]
    assert all(isinstance(h, ClaimHint) and h.friendly_name for h in d.need_claims)


def test_no_hints_when_the_requester_is_present_but_does_not_match() -> None:
    bob = Requester(ISS, "bob", email="bob@example.org", email_verified=True)
    shares = [share(grantee=PERSON), share("e", grantee=EMAIL)]
    d = evaluate(shares, ask(("r1", ("read",)), requester=bob), NOW)
    assert d.need_claims == () and codes(d) == ["grantee_mismatch"]


def test_no_hints_from_shares_that_have_ended_or_do_not_cover_the_refused_scope() -> None:
    shares = [share("p", grantee=PERSON, expires_at=NOW), share("c", (("r1", ("write",)),), grantee=CLASS)]
    d = evaluate(shares, ask(("r1", ("read",))), NOW)
    assert d.need_claims == () and codes(d) == ["expired"]


def test_no_hints_for_scopes_already_granted() -> None:
    d = evaluate([share("a"), share("p", grantee=PERSON)], ask(("r1", ("read",))), NOW)
    assert d.complete and d.need_claims == ()


def test_proving_identity_is_preferred_over_an_ended_share_as_the_reason() -> None:
    d = evaluate([share("a", revoked_at=NOW - 1), share("p", grantee=PERSON)], ask(("r1", ("read",))), NOW)
    assert codes(d) == ["requester_unverified"] and d.reasons[0].share_id == "p"


# Remembered denials


def test_a_remembered_denial_beats_an_allow_and_sets_denied_before() -> None:
    d = evaluate([share("a"), share("d", effect="deny")], ask(("r1", ("read",)), ("r2", ())), NOW)
    assert d.denied_before and d.nothing_granted and d.share_ids == ()
    assert d.refused == (Permission("r1", ("read",)), Permission("r2", ()))
    assert d.reasons[0] == Reason("denied_before", "r1", "d", d.reasons[0].detail)


def test_a_remembered_denial_only_affects_its_resources() -> None:
    d = evaluate([share("a", (("r1", ("read",)), ("r2", ("read",)))), share("d", effect="deny")],
                 ask(("r1", ("read",)), ("r2", ("read",))), NOW)
    assert d.granted == (Permission("r2", ("read",)),) and d.denied_before and d.share_ids == ("a",)


def test_an_ended_or_mismatched_denial_does_not_deny() -> None:
    for deny in (share("d", effect="deny", expires_at=NOW), share("d", effect="deny", revoked_at=NOW - 1),
                 share("d", effect="deny", grantee=Grantee("client", client_id="app-2"))):
        d = evaluate([share("a"), deny], ask(("r1", ("read",))), NOW)
        assert d.complete and not d.denied_before


# Purity


def test_evaluate_is_pure_and_ignores_share_order() -> None:
    shares = [share("b", grantee=PERSON), share("a"), share("c", (("r2", ("x",)),), grantee=EMAIL)]
    request = ask(("r1", ("read", "write")), ("r2", ("x",)))
    before = copy.deepcopy((shares, request))
    first = evaluate(shares, request, NOW)
    assert evaluate(iter(shares), request, NOW) == first == evaluate(list(reversed(shares)), request, NOW)
    assert (shares, request) == before


def test_every_reason_code_is_a_module_constant() -> None:
    names = ["SHARED", "NO_SHARE", "EXPIRED", "REVOKED", "USED", "SCOPE_NOT_SHARED", "REQUESTER_UNVERIFIED",
             "GRANTEE_MISMATCH", "CLIENT_MISMATCH", "DENIED_BEFORE", "OTHER_PROFILE"]
    assert [getattr(policy, n) for n in names] == [n.lower() for n in names]
