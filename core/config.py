"""One typed settings object with secure defaults (STYLE habit 8).

Unknown settings fail at start: ``Settings.from_mapping`` refuses keys it does not know.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


class ConfigError(ValueError):
    """A setting is wrong; the message names it."""


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    public_url: str
    """The issuer: where resource servers and clients reach the agent (direct or via the relay)."""

    rpt_ttl: int = 300
    pat_ttl: int = 3600
    refresh_ttl: int = 86_400
    pat_refresh_ttl: int = 90 * 86_400
    ticket_ttl: int = 600
    pending_ticket_ttl: int = 7 * 86_400
    """A ticket handed out with ``request_submitted`` lives long enough for the owner to think."""
    poll_interval: int = 5
    code_ttl: int = 120
    device_code_ttl: int = 900
    pct_ttl: int = 30 * 86_400
    assertion_max_age: int = 600
    dpop_iat_window: int = 60
    dpop_nonce_required: bool = False
    dpop_algs: tuple[str, ...] = ("ES256", "ES384", "EdDSA", "Ed25519", "PS256", "RS256")
    client_assertion_algs: tuple[str, ...] = ("ES256", "ES384", "EdDSA", "PS256", "RS256")
    max_body: int = 64 * 1024
    max_token: int = 8 * 1024
    max_header: int = 16 * 1024
    open_registration: bool = True
    key_rotation_days: int = 30
    software_statement_issuers: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_public_url(self.public_url)
        if self.rpt_ttl <= 0 or self.rpt_ttl > 3600:
            raise ConfigError("rpt_ttl must be between 1 and 3600 seconds")
        if self.ticket_ttl <= self.poll_interval:
            raise ConfigError("ticket_ttl must outlive poll_interval")

    @property
    def issuer(self) -> str:
        return self.public_url.rstrip("/")

    def endpoint(self, path: str) -> str:
        return self.issuer + path

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Settings:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
        return cls(**values)


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_public_url(url: str) -> None:
    """The issuer is https (plain http only on loopback, for development), no query or fragment."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(f"public URL {url!r} must be an absolute http(s) URL")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ConfigError(f"public URL {url!r} must use https unless it is on loopback")
    if parts.query or parts.fragment:
        raise ConfigError(f"public URL {url!r} must not carry a query or fragment")
