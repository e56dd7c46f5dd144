"""The relay's settings: one typed object, checked at start."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class RelaySettings:
    public_url: str
    max_body: int = 64 * 1024
    max_concurrent_per_agent: int = 64
    request_timeout: float = 15.0
    max_agents: int = 10_000
    heartbeat: float = 20.0
    retry_after: int = 5
    max_frame: int = 1024 * 1024
    """The largest WebSocket message taken from an agent (uvicorn's ``ws_max_size``)."""

    def __post_init__(self) -> None:
        parts = urlsplit(self.public_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise ValueError(f"relay public URL {self.public_url!r} must be an http(s) URL without query")
        if self.max_body < 0 or self.max_concurrent_per_agent < 1 or self.max_agents < 1 \
                or self.request_timeout <= 0 or self.retry_after < 0:
            raise ValueError("relay limits must be positive")

    @property
    def base(self) -> str:
        return self.public_url.rstrip("/")

    def agent_base(self, agent_id: str) -> str:
        return f"{self.base}/{agent_id}"
