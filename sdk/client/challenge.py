"""Reading ``WWW-Authenticate`` (RFC 9110 §11.6.1): challenges, auth-params, quoted strings.

One header value may hold several challenges, and the comma separates both the challenges and
the parameters inside one, so the parser looks ahead: after a comma, ``name=value`` continues the
current challenge and anything else starts the next one. Quoted strings keep their commas and lose
their backslash escapes (RFC 9110 §5.6.4); parameter names are case-insensitive and may appear only
once per challenge (§11.2), so a challenge naming ``ticket`` twice is refused rather than guessed at.

The resource server's UMA challenge (UMA 2.0 Grant §3.2) is then::

    WWW-Authenticate: UMA realm="lab", as_uri="https://agent.example", ticket="016f84e8..."
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from sdk.client.errors import ChallengeError

__all__ = ["Challenge", "UmaChallenge", "dpop_error", "parse_challenges", "uma_challenge"]

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_QUOTED = re.compile(r'"((?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[\t\x20-\x7e\x80-\xff])*)"')
_ESCAPE = re.compile(r"\\(.)")
_OWS = re.compile(r"[ \t]*")
_SEPARATORS = re.compile(r"[ \t,]*")
_UMA_SCHEME = re.compile(r"(?:^|,)[ \t]*uma(?:[ \t]|,|$)", re.IGNORECASE)
MAX_TICKET = 4096


@dataclass(frozen=True)
class Challenge:
    """One challenge: its scheme as sent, its parameters (names lower-cased) or its token68."""

    scheme: str
    params: Mapping[str, str]
    token68: str | None = None

    def is_scheme(self, name: str) -> bool:
        return self.scheme.lower() == name.lower()


@dataclass(frozen=True)
class UmaChallenge:
    """UMA Grant §3.2: where to ask (``as_uri``) and what to present there (``ticket``)."""

    as_uri: str
    ticket: str
    realm: str | None = None


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def skip(self, pattern: re.Pattern[str]) -> int:
        start = self.pos
        self.pos = _end(pattern, self.text, self.pos)
        return self.pos - start

    def take(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        m = pattern.match(self.text, self.pos)
        if m is not None:
            self.pos = m.end()
        return m

    def expect(self, char: str) -> None:
        if not self.text.startswith(char, self.pos):
            raise ChallengeError(f"expected {char!r} at position {self.pos} of WWW-Authenticate")
        self.pos += 1

    def at_param(self) -> bool:
        """``token BWS "=" BWS (token / quoted-string)`` follows (and not a token68 like ``abc==``)."""
        m = _TOKEN.match(self.text, self.pos)
        if m is None:
            return False
        j = _end(_OWS, self.text, m.end())
        if not self.text.startswith("=", j):
            return False
        k = _end(_OWS, self.text, j + 1)
        return self.text.startswith('"', k) or _TOKEN.match(self.text, k) is not None


def _end(pattern: re.Pattern[str], text: str, pos: int) -> int:
    m = pattern.match(text, pos)
    return m.end() if m is not None else pos


def _name(params: Mapping[str, str], name: str) -> str:
    key = name.lower()
    if key in params:
        raise ChallengeError(f"parameter {key!r} appears twice in one challenge")
    return key


def _value(s: _Scanner, name: str) -> str:
    quoted = s.take(_QUOTED)
    if quoted is not None:
        return _ESCAPE.sub(r"\1", quoted.group(1))
    plain = s.take(_TOKEN)
    if plain is None:
        raise ChallengeError(f"parameter {name!r} has no valid value")
    return plain.group()


def _params(s: _Scanner) -> dict[str, str]:
    params: dict[str, str] = {}
    while True:
        name = s.take(_TOKEN)
        if name is None:
            raise ChallengeError(f"expected a parameter name at position {s.pos} of WWW-Authenticate")
        s.skip(_OWS)
        s.expect("=")
        s.skip(_OWS)
        params[_name(params, name.group())] = _value(s, name.group())
        s.skip(_OWS)
        if s.at_end() or not s.text.startswith(",", s.pos):
            return params
        comma = s.pos
        s.skip(_SEPARATORS)
        if not s.at_param():
            s.pos = comma  # the next challenge starts after this comma
            return params


def parse_challenges(value: str) -> list[Challenge]:
    """All challenges in one ``WWW-Authenticate`` value; :class:`ChallengeError` when malformed."""
    s = _Scanner(value)
    out: list[Challenge] = []
    s.skip(_SEPARATORS)  # RFC 9110 §5.6.1: empty list elements are allowed
    while not s.at_end():
        scheme = s.take(_TOKEN)
        if scheme is None:
            raise ChallengeError(f"expected an auth-scheme at position {s.pos} of WWW-Authenticate")
        params: dict[str, str] = {}
        token68 = None
        if s.skip(_OWS) and not s.at_end() and not s.text.startswith(",", s.pos):
            if s.at_param():
                params = _params(s)
            else:
                m = s.take(_TOKEN68)
                if m is None:
                    raise ChallengeError(f"unexpected character at position {s.pos} of WWW-Authenticate")
                token68 = m.group()
        out.append(Challenge(scheme.group(), params, token68))
        s.skip(_OWS)
        if not s.at_end():
            s.expect(",")
            s.skip(_SEPARATORS)
    return out


def uma_challenge(values: Iterable[str]) -> UmaChallenge | None:
    """The UMA challenge among ``WWW-Authenticate`` header values, or None when there is none.

    A value that does not parse is skipped unless it seems to hold a UMA challenge; a UMA challenge
    without a usable ``as_uri`` and ``ticket`` raises :class:`ChallengeError`."""
    found: list[Challenge] = []
    for value in values:
        try:
            found.extend(c for c in parse_challenges(value) if c.is_scheme("UMA"))
        except ChallengeError:
            if _UMA_SCHEME.search(value):
                raise
    if not found:
        return None
    if len(found) > 1:
        raise ChallengeError("the resource server sent more than one UMA challenge")
    params = found[0].params
    as_uri, ticket = params.get("as_uri", ""), params.get("ticket", "")
    parts = urlsplit(as_uri)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.query or parts.fragment:
        raise ChallengeError(f"the UMA challenge's as_uri {as_uri!r} is not an absolute http(s) URL")
    if not ticket or len(ticket) > MAX_TICKET or not ticket.isprintable():
        raise ChallengeError("the UMA challenge carries no usable ticket")
    return UmaChallenge(as_uri.rstrip("/"), ticket, params.get("realm"))


def dpop_error(values: Iterable[str]) -> str | None:
    """The ``error`` of a ``DPoP`` challenge (RFC 9449 §7.1), e.g. ``use_dpop_nonce``."""
    for value in values:
        try:
            challenges = parse_challenges(value)
        except ChallengeError:
            continue
        for c in challenges:
            if c.is_scheme("DPoP") and "error" in c.params:
                return c.params["error"]
    return None
