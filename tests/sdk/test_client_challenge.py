"""Reading WWW-Authenticate (RFC 9110 §11.6.1) and the resource server's UMA challenge (UMA Grant §3.2)."""

from __future__ import annotations

import pytest

from sdk.client import ChallengeError, UmaChallenge, parse_challenges, uma_challenge
from sdk.client.challenge import dpop_error


def test_the_uma_grant_example() -> None:
    value = ('UMA realm="example", as_uri="https://as.example.com", '
             'ticket="016f84e8-f9b9-11e0-bd6f-0021cc6004de"')
    assert uma_challenge([value]) == UmaChallenge("https://as.example.com", "016f84e8-f9b9-11e0-bd6f-0021cc6004de",
                                                  "example")


def test_several_challenges_in_one_value_with_commas_inside_quotes() -> None:
    value = ('Bearer realm="a, b", error="invalid_token", UMA realm="lab, north", '
             'as_uri="https://agent.example/", ticket=t-1, DPoP algs="ES256 PS256", Basic dXNlcjpwYXNz==, Newauth')
    found = parse_challenges(value)
    assert [(c.scheme, dict(c.params), c.token68) for c in found] == [
        ("Bearer", {"realm": "a, b", "error": "invalid_token"}, None),
        ("UMA", {"realm": "lab, north", "as_uri": "https://agent.example/", "ticket": "t-1"}, None),
        ("DPoP", {"algs": "ES256 PS256"}, None),
        ("Basic", {}, "dXNlcjpwYXNz=="),
        ("Newauth", {}, None),
    ]
    assert uma_challenge([value]) == UmaChallenge("https://agent.example", "t-1", "lab, north")


def test_escapes_case_whitespace_and_empty_list_elements() -> None:
    value = r' , uMa  Realm = "say \"hi\"\\" ,, AS_URI="https://agent.example" ,TICKET = "a\bc" , '
    assert uma_challenge([value]) == UmaChallenge("https://agent.example", "abc", 'say "hi"\\')


def test_the_challenge_may_come_in_any_of_several_header_values() -> None:
    values = ['Bearer realm="lab"', 'not a (valid) header', 'UMA as_uri="https://agent.example", ticket="t"']
    assert uma_challenge(values) == UmaChallenge("https://agent.example", "t")
    assert uma_challenge(['Bearer realm="lab"', "garbage ((("]) is None
    assert uma_challenge([]) is None


@pytest.mark.parametrize("value", [
    'UMA as_uri="https://agent.example", ticket="a", ticket="b"',      # a parameter twice
    'UMA as_uri="https://agent.example"',                              # no ticket
    'UMA as_uri="https://agent.example", ticket=""',                   # an empty ticket
    'UMA ticket="t"',                                                  # no as_uri
    'UMA as_uri="agent.example", ticket="t"',                          # not an absolute URL
    'UMA as_uri="ftp://agent.example", ticket="t"',                    # not http(s)
    'UMA as_uri="https://agent.example/?x=1", ticket="t"',             # a query
    'UMA as_uri=https://agent.example, ticket="t"',                    # a URL must be quoted
    'UMA as_uri="https://agent.example, ticket="t"',                   # an unterminated quote
    'UMA as_uri="https://a.example", ticket="t", UMA as_uri="https://b.example", ticket="u"',
])
def test_unusable_uma_challenges_are_refused(value: str) -> None:
    with pytest.raises(ChallengeError):
        uma_challenge([value])


def test_dpop_error_is_read_from_a_dpop_challenge() -> None:
    assert dpop_error(['UMA as_uri="https://a.example", ticket="t"', 'DPoP error="use_dpop_nonce"']) == "use_dpop_nonce"
    assert dpop_error(['Bearer error="use_dpop_nonce"', "DPoP algs=ES256"]) is None
