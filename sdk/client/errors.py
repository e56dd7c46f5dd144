"""What can go wrong on the client's side of UMA, as exceptions an app can catch one by one.

Every error carries the OAuth ``error`` code (RFC 6749 §5.2, UMA 2.0 Grant §3.3.6), the
``error_description`` when the server gave one, the HTTP ``status`` and the whole JSON ``body``::

    try:
        r = await session.get(url)
    except RequestDenied:
        ...                         # the owner said no
    except NeedInfo as exc:
        exc.required_claims         # what the agent wants to know about the requesting party
    except RequestSubmitted as exc:
        exc.ticket                  # still waiting for the owner after max_wait
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["ChallengeError", "DiscoveryError", "NeedInfo", "RegistrationError", "RequestDenied",
           "RequestSubmitted", "TokenError", "UmaError"]


class UmaError(Exception):
    """Base class: ``error`` code, ``description``, HTTP ``status`` (0: no response), JSON ``body``."""

    default_error = "invalid_response"

    def __init__(self, description: str | None = None, *, error: str | None = None, status: int = 0,
                 body: Mapping[str, Any] | None = None) -> None:
        self.error = error or self.default_error
        self.description = description
        self.status = status
        self.body: dict[str, Any] = dict(body or {})
        super().__init__(f"{self.error}: {description}" if description else self.error)

    @classmethod
    def from_body(cls, status: int, body: Mapping[str, Any]) -> UmaError:
        """The typed error for an OAuth error response (RFC 6749 §5.2) from the token endpoint."""
        error = body.get("error")
        kind = _BY_CODE.get(error, TokenError) if isinstance(error, str) else TokenError
        text = body.get("error_description")
        return kind(text if isinstance(text, str) else None, error=error if isinstance(error, str) else None,
                    status=status, body=body)

    @property
    def ticket(self) -> str | None:
        """The fresh permission ticket the answer carried, if any (UMA Grant §3.3.6)."""
        value = self.body.get("ticket")
        return value if isinstance(value, str) and value else None


class TokenError(UmaError):
    """The token endpoint refused (``invalid_grant``, ``invalid_client``, ``invalid_dpop_proof``...)."""


class NeedInfo(TokenError):
    """UMA Grant §3.3.6 ``need_info``: the agent must learn more about the requesting party first.

    ``required_claims`` lists what would help (claim name, accepted issuers, token formats);
    ``redirect_user`` is a URL to send the person to, when the agent offers one."""

    default_error = "need_info"

    @property
    def required_claims(self) -> list[dict[str, Any]]:
        value = self.body.get("required_claims")
        return [c for c in value if isinstance(c, dict)] if isinstance(value, list) else []

    @property
    def redirect_user(self) -> str | None:
        value = self.body.get("redirect_user")
        return value if isinstance(value, str) else None


class RequestSubmitted(TokenError):
    """UMA Grant §3.3.6 ``request_submitted``: the request waits for the owner's decision.

    The kit polls on its own; this reaches the app only once ``max_wait`` has passed. The request
    stays in the owner's inbox, and :attr:`ticket` is what a later poll would present."""

    default_error = "request_submitted"

    @property
    def interval(self) -> int | None:
        value = self.body.get("interval")
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


class RequestDenied(TokenError):
    """UMA Grant §3.3.6 ``request_denied``: the owner (or a rule of theirs) refused."""

    default_error = "request_denied"


class DiscoveryError(UmaError):
    """The agent's metadata (UMA Grant §2) could not be fetched or does not hold together."""


class RegistrationError(UmaError):
    """Dynamic client registration (RFC 7591 §3.2.2) failed."""


class ChallengeError(UmaError):
    """The resource server's ``WWW-Authenticate: UMA`` challenge (UMA Grant §3.2) cannot be followed:
    malformed, or naming an authorization server this session may not use."""

    default_error = "invalid_challenge"


_BY_CODE: dict[str, type[UmaError]] = {
    "need_info": NeedInfo, "request_submitted": RequestSubmitted, "request_denied": RequestDenied,
}
