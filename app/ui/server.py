"""The web UI as an ASGI app: Flet's own web app, served only through the gate."""

from __future__ import annotations

from pathlib import Path

import flet as ft

from app.ui.gate import UIGate
from app.ui.lock import AppLock
from app.ui.main import make_main
from app.ui.shell import UiContext
from core.owner import Owner

ASSETS = Path(__file__).resolve().parents[2] / "assets"


def web_app(owner: Owner, ctx: UiContext, lock: AppLock, launch_token: str) -> UIGate:
    """Flet in web mode with local resources only (``no_cdn``: no CDN is reachable from a phone in
    airplane mode, nor from CI), behind the lock and origin checks."""
    flet_app = ft.run(make_main(owner, ctx, window_lock=None), export_asgi_app=True, no_cdn=True,
                      assets_dir=str(ASSETS))
    return UIGate(flet_app, lock, launch_token)
