"""Small shared pieces: origins, the https rule, JSON bodies, hooks that may or may not be async."""

from __future__ import annotations

import inspect
import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx

T = TypeVar("T")
A = TypeVar("A")
Hook = Callable[[A], T | Awaitable[T]]
"""A callback the app gives the kit: a plain function or a coroutine function."""


async def call_hook(hook: Hook[A, T], arg: A) -> T:
    result = hook(arg)
    if inspect.isawaitable(result):
        return await result
    return result


def origin_of(url: httpx.URL | str) -> str:
    """RFC 6454 origin ``scheme://host[:port]``, host lower-cased, default port left out."""
    u = httpx.URL(url)
    host = f"[{u.host}]" if ":" in u.host else u.host
    return f"{u.scheme}://{host}" + (f":{u.port}" if u.port is not None else "")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_secure(url: httpx.URL | str) -> bool:
    """Tokens and claims travel only over https, or plain http to this machine (development)."""
    u = httpx.URL(url)
    return u.scheme == "https" or (u.scheme == "http" and is_loopback(u.host))


def json_object(response: httpx.Response) -> dict[str, Any] | None:
    """The body as a JSON object, or None when it is not one."""
    try:
        body = response.json()
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser follows
        return None
    return body if isinstance(body, dict) else None
