"""Getting an RPT for one ticket: the UMA grant's answers and what the kit does with each
(UMA 2.0 Grant §3.3.1–§3.3.6).

- an RPT: done; a PCT that came with it is kept for next time (§3.3.5);
- ``need_info``: the PCT, if one was sent, no longer vouches and is dropped; the app's claims
  provider (when a PCT was tried instead of it) or ``on_need_info`` hook may supply a claim
  token, and the grant is asked again with the fresh ticket; otherwise :class:`NeedInfo` is raised;
- ``request_submitted``: the request waits for the owner; the kit polls with the fresh ticket every
  ``interval`` seconds (5 more after each ``slow_down``, as RFC 8628 §3.5), calling ``on_waiting``
  before each poll, until ``max_wait`` is spent, then raises :class:`RequestSubmitted`;
- ``request_denied``: :class:`RequestDenied`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass

from sdk.client._util import call_hook
from sdk.client.connection import Connection, TokenAnswer
from sdk.client.errors import NeedInfo, RequestSubmitted, TokenError
from sdk.client.hooks import ClaimsProvider, ClaimsRequest, NeedInfoHook, Waiting, WaitingHook

__all__ = ["DEFAULT_INTERVAL", "MAX_NEED_INFO", "GrantOptions", "obtain"]

DEFAULT_INTERVAL = 5
"""Seconds between polls when the agent names no ``interval`` (as RFC 8628 §3.2)."""
SLOW_DOWN = 5
MAX_NEED_INFO = 3
"""``need_info`` rounds before giving up, so a hook that keeps offering the same claims cannot loop."""


@dataclass(frozen=True)
class GrantOptions:
    clock: Callable[[], float]
    sleep: Callable[[float], Awaitable[None]]
    max_wait: float
    claims: ClaimsProvider | None = None
    on_need_info: NeedInfoHook | None = None
    on_waiting: WaitingHook | None = None
    scope: str | None = None
    """Scopes asked for on top of the ticket's (§3.3.1 ``scope``); the client must have registered them."""


@dataclass
class _Round:
    """What the next token request carries."""

    ticket: str
    claim_token: str | None
    pct: str | None


async def obtain(conn: Connection, ticket: str, opts: GrantOptions, *, url: str, pcts: MutableMapping[str, str],
                 rpt: str | None) -> TokenAnswer:
    """An RPT for ``ticket``, upgrading ``rpt`` when given (§3.3.5.1).

    ``pcts`` maps agents to the PCT held there: one stands in for pushed claims, a new one replaces it."""
    pct = pcts.get(conn.as_uri)
    claim_token = None if pct else await _ask(opts.claims, ClaimsRequest(conn.as_uri, conn.client_id, ticket=ticket))
    r = _Round(ticket, claim_token, None if claim_token else pct)
    need_info, polls, interval, bump, started = 0, 0, DEFAULT_INTERVAL, 0, opts.clock()
    while True:
        try:
            answer = await conn.uma_grant(r.ticket, claim_token=r.claim_token, pct=r.pct, rpt=rpt, scope=opts.scope)
        except NeedInfo as exc:
            if r.pct:
                pcts.pop(conn.as_uri, None)  # it no longer vouches for the requesting party
            need_info += 1
            if not exc.ticket or need_info > MAX_NEED_INFO:
                raise
            r = await _after_need_info(conn, opts, r, exc)
        except RequestSubmitted as exc:
            if not exc.ticket:
                raise
            polls += 1
            interval = exc.interval or interval
            await _wait(conn, opts, exc, url, interval + bump, started, polls)
            # the waiting request holds who asks: claims are not pushed again, a PCT may renew itself
            r = _Round(exc.ticket, None, r.pct)
        except TokenError as exc:
            if exc.error != "slow_down":
                raise
            bump += SLOW_DOWN
            polls += 1
            await _wait(conn, opts, exc, url, interval + bump, started, polls)
            r = _Round(exc.ticket or r.ticket, None, r.pct)
        else:
            if answer.pct:
                pcts[conn.as_uri] = answer.pct
            return answer


async def _after_need_info(conn: Connection, opts: GrantOptions, sent: _Round, exc: NeedInfo) -> _Round:
    ask = ClaimsRequest(conn.as_uri, conn.client_id, tuple(exc.required_claims), exc.redirect_user, exc.ticket,
                        exc.description)
    token = await _ask(opts.claims, ask) if sent.pct and not sent.claim_token else None
    if token is None:
        token = await _ask(opts.on_need_info, ask)
    if token is None:
        raise exc
    return _Round(exc.ticket or sent.ticket, token, None)


async def _ask(hook: ClaimsProvider | None, request: ClaimsRequest) -> str | None:
    if hook is None:
        return None
    token = await call_hook(hook, request)
    return token if isinstance(token, str) and token else None


async def _wait(conn: Connection, opts: GrantOptions, exc: TokenError, url: str, interval: float, started: float,
                polls: int) -> None:
    waited = opts.clock() - started
    if waited + interval > opts.max_wait:
        raise exc if isinstance(exc, RequestSubmitted) else RequestSubmitted(
            "the owner has not decided within max_wait", status=exc.status, body=exc.body)
    if opts.on_waiting is not None:
        await call_hook(opts.on_waiting, Waiting(conn.as_uri, url, interval, waited, polls))
    await opts.sleep(interval)
