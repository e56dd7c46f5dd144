"""The Flet entry point: one ``main(page)`` per connected window or browser tab.

In the web UI the gate (``app.ui.gate``) has already asked for the app lock before Flet is served
at all. A desktop window has no HTTP in front of it, so there the same lock is asked inside the
window, before anything else is built.
"""

from __future__ import annotations

from collections.abc import Callable

import flet as ft

from app.ui.lock import AppLock, LockError
from app.ui.shell import UiContext, build
from core.owner import Owner


def make_main(owner: Owner, ctx: UiContext, *, window_lock: AppLock | None) -> Callable[[ft.Page], None]:
    """``window_lock``: ask for the app lock inside the window (desktop); None when the gate did."""

    def main(page: ft.Page) -> None:
        if window_lock is None:
            build(page, owner, ctx)
        else:
            lock_view(page, window_lock, on_open=lambda: build(page, owner, ctx))

    return main


def lock_view(page: ft.Page, lock: AppLock, *, on_open: Callable[[], None]) -> None:
    """A PIN or passphrase first; nothing of the owner's data is built until it is right."""
    page.title = "consent-agent"
    setting_up = not lock.is_set
    secret = ft.TextField(label="New PIN or passphrase" if setting_up else "PIN or passphrase", password=True,
                          autofocus=True, width=320)
    again = ft.TextField(label="The same again", password=True, width=320, visible=setting_up)
    message = ft.Text("", color=ft.Colors.RED_800, selectable=False)

    def submit(_: object) -> None:
        try:
            if setting_up:
                if (secret.value or "") != (again.value or ""):
                    raise LockError("The two entries differ.")
                lock.set(secret.value or "")
            else:
                lock.unlock(secret.value or "")
        except LockError as exc:
            message.value = str(exc)
            secret.value = again.value = ""
            page.update()
            return
        page.controls.clear()
        on_open()

    secret.on_submit = submit
    again.on_submit = submit
    title = "Choose an app lock" if setting_up else "consent-agent is locked"
    page.add(ft.SafeArea(ft.Column(
        [ft.Text(title, size=24, weight=ft.FontWeight.W_600), secret, again, message,
         ft.FilledButton("Set the lock and open the app" if setting_up else "Unlock", on_click=submit)],
        horizontal_alignment=ft.CrossAxisAlignment.CENTER, spacing=16)))
