"""What the kit tells the app, and what the app gives back, while it gets an RPT.

- ``claims(ClaimsRequest) -> str | None``: the requesting party's ID token to push (UMA Grant
  §3.3.1), or None to push nothing. Its ``aud`` must name ``client_id`` (or the agent).
- ``on_need_info(ClaimsRequest) -> str | None``: called on ``need_info`` (§3.3.6) with the
  ``required_claims``; returns a claim token to try again with, or None to give up.
- ``on_waiting(Waiting) -> None``: called before each poll while the owner decides, so the app can
  show "waiting for the patient".

Each may be a plain function or a coroutine function.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

__all__ = ["ClaimsProvider", "ClaimsRequest", "NeedInfoHook", "Waiting", "WaitingHook"]


@dataclass(frozen=True)
class ClaimsRequest:
    """What a claim token is for: the agent, this client's id there (the ID token's ``aud``) and, on
    ``need_info``, what the agent asked for and why the previous claims did not do."""

    as_uri: str
    client_id: str
    required_claims: tuple[dict[str, Any], ...] = ()
    redirect_user: str | None = None
    ticket: str | None = None
    description: str | None = field(default=None)


@dataclass(frozen=True)
class Waiting:
    """The request waits in the owner's inbox (``request_submitted``); the next poll is in ``interval`` s."""

    as_uri: str
    url: str
    interval: float
    waited: float
    polls: int


ClaimsProvider: TypeAlias = Callable[[ClaimsRequest], str | Awaitable[str | None] | None]
NeedInfoHook: TypeAlias = Callable[[ClaimsRequest], str | Awaitable[str | None] | None]
WaitingHook: TypeAlias = Callable[[Waiting], Awaitable[None] | None]
