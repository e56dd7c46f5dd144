"""Choosing and starting the owner's app: a desktop window, or the web UI on loopback."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from app.ui.gate import UIGate
from app.ui.lock import AppLock, LockError
from app.ui.logos import LOGO_READY, LogoCache
from core.agent import Agent
from core.config import is_loopback_host
from core.owner import Owner

if TYPE_CHECKING:
    from app.relaying import Relaying
    from app.ui.shell import UiContext

LOCK_FILE = "ui-lock.json"
BindFn = Callable[[str, int], socket.socket]


def has_display() -> bool:
    """A desktop window can open here (Linux and BSD need X11 or Wayland; macOS and Windows always can)."""
    if sys.platform.startswith(("linux", "freebsd", "openbsd")):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def desktop_client_problem() -> str | None:
    """Why no desktop window can open, or None. Flet's window is a separate client program that is
    fetched once and cached; without it (offline on first run) the web UI is the way in."""
    if os.environ.get("FLET_VIEW_PATH"):
        return None
    try:
        import flet_desktop  # type: ignore[import-untyped]

        flet_desktop.ensure_client_cached()
    except Exception as exc:  # a download or unpack failure of any kind: fall back, say why
        return f"the desktop window could not be prepared ({exc.__class__.__name__})"
    return None


def choose_ui(requested: str | None) -> tuple[str, str | None]:
    """The mode to run (``desktop``, ``web`` or ``none``) and a notice for the person, if any."""
    if requested == "none":
        return "none", None
    if requested in (None, "desktop") and has_display():
        problem = desktop_client_problem()
        if problem is None:
            return "desktop", None
        return "web", f"{problem}, so the app opens in your browser instead"
    if requested == "desktop":
        return "web", "no display here, so the app opens in your browser instead of a window"
    return "web", None


def context(agent: Agent, data_dir: Path, relaying: Relaying | None = None) -> UiContext:
    from app.ui.shell import UiContext

    lock = AppLock(data_dir / LOCK_FILE)

    def change_lock(current: str, new: str) -> str | None:
        try:
            lock.set(new, current=current)
        except LockError as exc:
            return str(exc)
        return None

    logos = LogoCache(data_dir / "logos", allow_loopback=is_loopback_host(urlsplit(agent.issuer).hostname or ""),
                      on_ready=lambda uri: agent.events.publish(LOGO_READY, {"uri": uri}))
    return UiContext(issuer=agent.issuer, agent_id=agent.keys.agent_id, data_dir=data_dir,
                     relay=relaying.relay_url if relaying else None, on_change_lock=change_lock,
                     relay_state=(lambda: relaying.state) if relaying else None, logos=logos)


@dataclass
class WebUI:
    gate: UIGate
    sock: socket.socket
    url: str
    open_url: str
    """What to print: the lock page with the launch token on a first run, else the app's address."""


def web_ui(agent: Agent, owner: Owner, data_dir: Path, launch_token: str, port: int | None,
           bind: BindFn, relaying: Relaying | None = None) -> WebUI:
    from app.ui.server import web_app

    lock = AppLock(data_dir / LOCK_FILE)
    sock = bind("127.0.0.1", port or 0)  # the app never listens beyond loopback
    gate = web_app(owner, context(agent, data_dir, relaying), lock, launch_token)
    gate.port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{gate.port}/"
    open_url = url if lock.is_set else f"{url}unlock?t={launch_token}"
    return WebUI(gate, sock, url, open_url)


def run_desktop(agent: Agent, owner: Owner, data_dir: Path, relaying: Relaying | None = None) -> None:
    """Open the window and block until it is closed; the lock is asked inside it."""
    import flet as ft

    from app.ui.main import make_main
    from app.ui.server import ASSETS

    main = make_main(owner, context(agent, data_dir, relaying), window_lock=AppLock(data_dir / LOCK_FILE))
    ft.run(main, view=ft.AppView.FLET_APP, assets_dir=str(ASSETS))

