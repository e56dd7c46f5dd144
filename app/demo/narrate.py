"""The demo's console: numbered steps in plain words, and every HTTP exchange with its outcome."""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

import httpx


@dataclass
class Narrator:
    total: int
    out: TextIO = field(default_factory=lambda: sys.stdout)
    places: dict[str, str] = field(default_factory=dict)
    """URL prefixes and the names they are printed as (the agent through the relay, the records server)."""
    exchanges: int = 0
    step_no: int = 0

    def _print(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def _wrap(self, text: str, indent: str) -> str:
        width = min(100, shutil.get_terminal_size((100, 20)).columns) - len(indent)
        # addresses (the app's, with its launch token) must stay whole to be copied or clicked
        return textwrap.fill(text, width=max(40, width), initial_indent=indent, subsequent_indent=indent,
                             break_long_words=False, break_on_hyphens=False)

    def title(self, text: str) -> None:
        self._print(text)
        self._print("=" * len(text))

    def step(self, title: str, story: str = "") -> None:
        self.step_no += 1
        self._print()
        self._print(f"[{self.step_no}/{self.total}] {title}")
        if story:
            self._print(self._wrap(story, "      "))

    def say(self, text: str) -> None:
        self._print(self._wrap(text, "      "))

    def owner(self, text: str) -> None:
        self._print(self._wrap(f"Alice: {text}", "      "))

    def shown(self, text: str) -> None:
        self._print(self._wrap(f"→ {text}", "      "))

    def place(self, url: str) -> str:
        for prefix, name in sorted(self.places.items(), key=lambda kv: -len(kv[0])):
            if url.startswith(prefix):
                return f"{name} {url[len(prefix):] or '/'}"
        return url

    def exchange(self, actor: str, request: httpx.Request, response: httpx.Response, body: bytes) -> None:
        self.exchanges += 1
        url = str(request.url.copy_with(query=None))
        query = f"?{request.url.query.decode()}" if request.url.query else ""
        self._print(f"      {actor:<11} {request.method:<4} {self.place(url)}{query}  "
                    f"→ {response.status_code} {outcome(response, body)}")

    def traced(self, actor: str, **kwargs: Any) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` whose every response is printed as ``actor``'s exchange."""
        async def log(response: httpx.Response) -> None:
            body = await response.aread()
            self.exchange(actor, response.request, response, body)

        hooks: dict[str, list[Callable[[httpx.Response], Awaitable[None]]]] = {"response": [log]}
        return httpx.AsyncClient(event_hooks=hooks, timeout=30.0, trust_env=False, **kwargs)


def outcome(response: httpx.Response, body: bytes) -> str:
    """A few words on what came back: an OAuth/UMA error, a challenge, a token, a FHIR answer."""
    challenge = " ".join(response.headers.get_list("www-authenticate"))
    if challenge.startswith("UMA "):
        return "UMA challenge with a permission ticket"
    if response.headers.get("warning"):
        return response.headers["warning"]
    try:
        data = json.loads(body) if body else None
    except ValueError:
        data = None
    if isinstance(data, dict):
        if "error" in data:
            return str(data["error"])
        if isinstance(data.get("active"), bool):
            return "token active" if data["active"] else "token inactive"
        if "access_token" in data:
            kind = "PAT" if data.get("scope") == "uma_protection" else "RPT"
            return f"{kind} ({data.get('token_type', 'Bearer')}-bound)"
        if data.get("resourceType") == "Bundle":
            return f"{data.get('total', 0)} entr{'y' if data.get('total') == 1 else 'ies'}"
        if data.get("resourceType"):
            return f"{data['resourceType']} {data.get('id', '')}".strip()
        if "ticket" in data:
            return "permission ticket"
        if "_id" in data:
            return f"resource {data['_id']}"
        if "client_id" in data:
            return f"client {data['client_id']}"
        if "user_code" in data:
            return f"user code {data['user_code']}"
        if "issuer" in data:
            return "metadata"
    if body.startswith(b"eyJ"):
        return "signed JWT"
    if "invalid_token" in challenge:
        return "invalid_token"
    return response.reason_phrase
