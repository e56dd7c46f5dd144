"""The door in front of the web UI: loopback only, locked until the app lock is opened.

Every request to the web UI passes here before Flet sees it:

- the ``Host`` must be a loopback name (DNS rebinding cannot reach the owner's app);
- ``/unlock`` serves a plain HTML lock page (no scripts) and opens a session cookie for the right
  PIN or passphrase; on first run it lets the owner choose one, but only with the launch token the
  agent printed (so another local user or a web page cannot set it first);
- everything else, the Flutter page, its assets and its ``/ws`` WebSocket, needs that session, and
  the WebSocket also needs an ``Origin`` that is this very server (Flet's own ``/ws`` accepts any).
"""

from __future__ import annotations

import hmac
import html
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from app.ui.lock import AppLock, LockError
from core.config import is_loopback_host

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COOKIE = "ca_ui"
MAX_FORM = 4096
SECURITY_HEADERS = [
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
]
PAGE_HEADERS = [
    (b"content-type", b"text/html; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"content-security-policy", b"default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                                 b"frame-ancestors 'none'"),
    (b"x-frame-options", b"DENY"),
    # not no-referrer: with it a browser sends "Origin: null" on the form's POST, which the Origin
    # check must refuse (a sandboxed frame sends that too); same-origin keeps the real origin
    (b"referrer-policy", b"same-origin"),
]


def _headers(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in scope.get("headers") or []:
        out.setdefault(k.decode("latin-1").lower(), v.decode("latin-1"))
    return out


def _cookie(headers: dict[str, str], name: str) -> str | None:
    for part in headers.get("cookie", "").split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value
    return None


def host_is_loopback(host_header: str) -> bool:
    host = host_header.strip()
    if host.startswith("["):
        host = host[1:host.find("]")] if "]" in host else host
    else:
        host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return bool(host) and is_loopback_host(host)


class UIGate:
    def __init__(self, inner: ASGIApp, lock: AppLock, launch_token: str) -> None:
        self.inner = inner
        self.lock = lock
        self.launch_token = launch_token
        self.port: int | None = None
        """Set once the server is bound; the only origins allowed are this server's own."""

    def origins(self) -> set[str]:
        return {f"http://{name}:{self.port}" for name in ("127.0.0.1", "localhost", "[::1]")}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self.inner(scope, receive, send)
            return
        headers = _headers(scope)
        if not host_is_loopback(headers.get("host", "")):
            await self._refuse(kind, send, 421, "This app answers on this device only.")
            return
        if kind == "websocket":
            await self._websocket(scope, receive, send, headers)
            return
        path = scope.get("path", "/")
        if path == "/unlock":
            await self._unlock(scope, receive, send, headers)
        elif path == "/lock" and scope["method"] == "POST":
            self.lock.end_session(_cookie(headers, COOKIE))
            await _redirect(send, "/unlock", clear_cookie=True)
        elif not self.lock.session_valid(_cookie(headers, COOKIE)):
            if scope["method"] in ("GET", "HEAD"):
                await _redirect(send, "/unlock")
            else:
                await self._refuse(kind, send, 401, "Unlock the app first.")
        else:
            await self.inner(scope, receive, _with_headers(send))

    async def _websocket(self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str]) -> None:
        origin_ok = headers.get("origin") in self.origins()
        if not origin_ok or not self.lock.session_valid(_cookie(headers, COOKIE)):
            await send({"type": "websocket.close", "code": 1008})  # policy violation, before accepting
            return
        await self.inner(scope, receive, send)

    async def _refuse(self, kind: str, send: Send, status: int, message: str) -> None:
        if kind == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await _page(send, status, _lock_page(message=message, form=None))

    async def _unlock(self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str]) -> None:
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        if scope["method"] == "GET":
            await _page(send, 200, self._form_page(query.get("t", ""), None))
            return
        if scope["method"] != "POST":
            await _page(send, 405, _lock_page(message="Use the form.", form=None))
            return
        origin = headers.get("origin")
        if origin is not None and origin not in self.origins():
            await _page(send, 403, _lock_page(message="This form only works from this app.", form=None))
            return
        form = await _read_form(receive)
        if form is None:
            await _page(send, 400, self._form_page("", "That did not arrive right; try again."))
            return
        launch = form.get("t", "")
        try:
            if not self.lock.is_set:
                if not hmac.compare_digest(launch.encode(), self.launch_token.encode()):
                    raise LockError("Open the link consent-agent printed when it started to set up the lock.")
                if form.get("secret", "") != form.get("again", ""):
                    raise LockError("The two entries differ.")
                self.lock.set(form.get("secret", ""))
                session = self.lock.open_session()
            else:
                session = self.lock.unlock(form.get("secret", ""))
        except LockError as exc:
            await _page(send, 401, self._form_page(launch, str(exc)))
            return
        await _redirect(send, "/", cookie=session)

    def _form_page(self, launch: str, error: str | None) -> str:
        if self.lock.is_set:
            return _lock_page(message=error, form="unlock")
        if not hmac.compare_digest(launch.encode(), self.launch_token.encode()):
            return _lock_page(message=error or "Open the link consent-agent printed when it started to set up "
                                               "the app lock.", form=None)
        return _lock_page(message=error, form="setup", launch=launch)


def _with_headers(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = dict(message)
            names = {k.lower() for k, _ in message.get("headers", [])}
            message["headers"] = [*message.get("headers", []), *(h for h in SECURITY_HEADERS if h[0] not in names)]
        await send(message)
    return wrapped


async def _read_form(receive: Receive) -> dict[str, str] | None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if len(body) > MAX_FORM:
            return None
        if not message.get("more_body"):
            break
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body)))
    except (UnicodeDecodeError, ValueError):
        return None


async def _page(send: Send, status: int, page: str) -> None:
    body = page.encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [*PAGE_HEADERS, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _redirect(send: Send, location: str, *, cookie: str | None = None, clear_cookie: bool = False) -> None:
    headers = [(b"location", location.encode()), (b"cache-control", b"no-store"), (b"content-length", b"0")]
    if cookie:
        headers.append((b"set-cookie", f"{COOKIE}={cookie}; Path=/; HttpOnly; SameSite=Strict".encode()))
    if clear_cookie:
        headers.append((b"set-cookie", f"{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0".encode()))
    await send({"type": "http.response.start", "status": 303, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


STYLE = """
body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f4f6f8;color:#1b1f23}
main{max-width:22rem;margin:12vh auto 0;padding:2rem 1.5rem;background:#fff;border-radius:16px;
box-shadow:0 2px 12px rgba(0,0,0,.08)}
h1{font-size:1.4rem;margin:0 0 .5rem}p{line-height:1.45;margin:.5rem 0 1rem}
label{display:block;font-weight:600;margin:1rem 0 .3rem}
input{box-sizing:border-box;width:100%;font-size:1.1rem;padding:.7rem;border:1px solid #8a939c;border-radius:10px}
button{margin-top:1.3rem;width:100%;font-size:1.05rem;padding:.8rem;border:0;border-radius:10px;
background:#1f5fae;color:#fff;font-weight:600}
.error{color:#a4161a;font-weight:600}
"""


def _lock_page(*, message: str | None, form: str | None, launch: str = "") -> str:
    err = f'<p class="error" role="alert">{html.escape(message)}</p>' if message else ""
    if form == "unlock":
        body = (f"<h1>consent-agent is locked</h1>{err}<form method=post action=/unlock>"
                '<label for=secret>PIN or passphrase</label>'
                '<input id=secret name=secret type=password autocomplete=current-password autofocus required>'
                '<button type=submit>Unlock</button></form>')
    elif form == "setup":
        body = ("<h1>Choose an app lock</h1><p>Pick a PIN (4 digits or more) or a passphrase. It is asked "
                f"every time before the app shows anything.</p>{err}<form method=post action=/unlock>"
                f'<input type=hidden name=t value="{html.escape(launch)}">'
                '<label for=secret>New PIN or passphrase</label>'
                '<input id=secret name=secret type=password autocomplete=new-password autofocus required>'
                '<label for=again>The same again</label>'
                '<input id=again name=again type=password autocomplete=new-password required>'
                '<button type=submit>Set the lock and open the app</button></form>')
    else:
        body = f"<h1>consent-agent</h1>{err}"
    return (f'<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport '
            f'content="width=device-width,initial-scale=1"><title>consent-agent</title><style>{STYLE}</style>'
            f"</head><body><main>{body}</main></body></html>")
