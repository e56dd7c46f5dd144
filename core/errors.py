"""One error type for every protocol answer that is not a success.

A ``ProtocolError`` carries what the client may see (``error`` code, description, HTTP status,
extra JSON members such as UMA's ``ticket``) and nothing else; server-side detail goes to the log.
Codes and statuses follow RFC 6749 §5.2, RFC 6750 §3.1, RFC 7591 §3.2.2, RFC 9449 §7.1 and
UMA 2.0 Grant §3.3.6.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ProtocolError(Exception):
    """An error answer: ``{"error": code, "error_description"?: ..., **extra}``."""

    error: str = "server_error"
    status: int = 400

    def __init__(
        self,
        description: str | None = None,
        *,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(description or self.error)
        self.description = description
        if status is not None:
            self.status = status
        self.headers: dict[str, str] = dict(headers or {})
        self.extra: dict[str, Any] = dict(extra or {})

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.error}
        if self.description:
            out["error_description"] = self.description
        out.update(self.extra)
        return out


class InvalidRequest(ProtocolError):
    error = "invalid_request"


class InvalidClient(ProtocolError):
    """RFC 6749 §5.2: 401 when the client tried to authenticate."""

    error = "invalid_client"
    status = 401


class InvalidGrant(ProtocolError):
    error = "invalid_grant"


class UnauthorizedClient(ProtocolError):
    error = "unauthorized_client"


class UnsupportedGrantType(ProtocolError):
    error = "unsupported_grant_type"


class UnsupportedResponseType(ProtocolError):
    error = "unsupported_response_type"


class InvalidScope(ProtocolError):
    error = "invalid_scope"


class AccessDenied(ProtocolError):
    error = "access_denied"
    status = 403


class UnsupportedTokenType(ProtocolError):
    error = "unsupported_token_type"


class AuthorizationPending(ProtocolError):
    """RFC 8628 §3.5."""

    error = "authorization_pending"


class SlowDown(ProtocolError):
    error = "slow_down"


class ExpiredToken(ProtocolError):
    error = "expired_token"


class InvalidDPoPProof(ProtocolError):
    error = "invalid_dpop_proof"


class UseDPoPNonce(ProtocolError):
    error = "use_dpop_nonce"


class InvalidToken(ProtocolError):
    """RFC 6750 §3.1; sent in ``WWW-Authenticate`` by the protection API."""

    error = "invalid_token"
    status = 401


class InsufficientScope(ProtocolError):
    error = "insufficient_scope"
    status = 403


class NotFound(ProtocolError):
    error = "not_found"
    status = 404


class MethodNotAllowed(ProtocolError):
    error = "unsupported_method_type"
    status = 405


class PayloadTooLarge(ProtocolError):
    error = "invalid_request"
    status = 413


class UnsupportedMediaType(ProtocolError):
    error = "invalid_request"
    status = 415


class InvalidResourceId(ProtocolError):
    """UMA FedAuthz §4.3."""

    error = "invalid_resource_id"


class InvalidRedirectUri(ProtocolError):
    error = "invalid_redirect_uri"


class InvalidClientMetadata(ProtocolError):
    error = "invalid_client_metadata"


class InvalidSoftwareStatement(ProtocolError):
    error = "invalid_software_statement"


class UnapprovedSoftwareStatement(ProtocolError):
    error = "unapproved_software_statement"


class NeedInfo(ProtocolError):
    """UMA Grant §3.3.6: 403 with a fresh ``ticket`` and ``required_claims``."""

    error = "need_info"
    status = 403


class RequestSubmitted(ProtocolError):
    """UMA Grant §3.3.6: 403 with a fresh ``ticket`` and a polling ``interval``."""

    error = "request_submitted"
    status = 403


class RequestDenied(ProtocolError):
    error = "request_denied"
    status = 403


class ServerError(ProtocolError):
    error = "server_error"
    status = 500


class OwnerError(Exception):
    """A refused owner operation (unknown id, bad argument); the message is shown as is."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
