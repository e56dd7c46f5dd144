"""Settings: the agent's address (with a QR code), the relay, trusted organisations, key backup, app lock."""

from __future__ import annotations

import asyncio
import io
import json
import os
from datetime import date
from pathlib import Path
from typing import Any

import flet as ft

from app.ui import theme, widgets
from app.ui.widgets import Ui, button, card, heading, muted
from app.ui.words import date_words, plain_error
from core.errors import OwnerError

MIN_BACKUP_PASSPHRASE = 10


def qr_png(text: str) -> bytes | None:
    """The text as a QR code PNG, or None when the qrcode package is not installed."""
    try:
        import qrcode  # type: ignore[import-untyped]
    except ImportError:
        return None
    qr = qrcode.QRCode(border=2, box_size=8, error_correction=qrcode.constants.ERROR_CORRECT_M)
    qr.add_data(text)
    qr.make(fit=True)
    buf = io.BytesIO()
    qr.make_image(fill_color="black", back_color="white").save(buf, format="PNG")
    return buf.getvalue()


def write_private(path: Path, data: bytes) -> Path:
    """Write a new file readable only by the owner; never overwrite (``-2``, ``-3`` … instead)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    candidate, n = path, 2
    while True:
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
        except FileExistsError:
            candidate, n = path.with_name(f"{path.stem}-{n}{path.suffix}"), n + 1
            continue
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return candidate


class SettingsScreen:
    key = "settings"
    title = "Settings"

    def __init__(self, ui: Ui) -> None:
        self.ui = ui
        self.clipboard = ft.Clipboard()
        self.warnings = ft.Column(spacing=8)
        self.trusted = ft.Column(spacing=8)
        # trusted organisations
        self.iss_url = widgets.text_field("Organisation's address", hint_text="https://login.hospital.example")
        self.iss_name = widgets.text_field("Name to show (optional)", hint_text="City Hospital")
        self.keys_source = widgets.radio_group(
            [("uri", "Get its public keys from an address"), ("paste", "Paste its public keys")], "uri",
            on_change=lambda _: self._source_changed())
        self.keys_url = widgets.text_field("Address of its public keys", hint_text="https://login.hospital.example/keys")
        self.keys_json = widgets.text_field("Its public keys (JSON)", multiline=True, min_lines=3, max_lines=8,
                                      visible=False)
        self.trust_busy = ft.ProgressRing(width=20, height=20, visible=False)
        # backup
        self.pass1 = widgets.text_field("Backup passphrase", password=True)
        self.pass2 = widgets.text_field("The same passphrase again", password=True)
        self.backup_busy = ft.ProgressRing(width=20, height=20, visible=False)
        self.backup_done = ft.Text("", size=13, visible=False, color=theme.GOOD)
        # app lock
        self.lock_now = widgets.text_field("Current PIN or passphrase", password=True)
        self.lock_new = widgets.text_field("New PIN or passphrase", password=True)
        self.lock_again = widgets.text_field("New PIN or passphrase again", password=True)
        self.lock_msg = ft.Text("", size=13, visible=False)

        self.root, _ = ui.screen(self.warnings, self._address(), self._relay(), self._trust_section(),
                                 self._backup_section(), self._lock_section())

    # sections ----------------------------------------------------------------------------------------------
    def _address(self) -> ft.Control:
        ctx = self.ui.ctx
        png = qr_png(ctx.issuer)
        qr: list[ft.Control] = []
        if png is not None:
            qr.append(ft.Container(ft.Image(src=png, width=180, height=180,
                                            semantics_label="QR code of your agent's address"),
                                   bgcolor=ft.Colors.WHITE, padding=8, border_radius=8))
        return card(
            heading("Your agent's address", size=17),
            muted("Labs and clinics reach your agent here. Show them this code or send them the address."),
            ft.Row([ft.Text(ctx.issuer, size=15, font_family="monospace", expand=True),
                    widgets.icon_button(ft.Icons.COPY, "Copy address", self._copy)],
                   vertical_alignment=ft.CrossAxisAlignment.CENTER),
            *qr,
            muted(f"Agent id: {ctx.agent_id}", size=12),
        )

    async def _copy(self, _: Any) -> None:
        await self.clipboard.set(self.ui.ctx.issuer)
        self.ui.toast("The address is copied.")
        self.ui.page.update()

    def _relay(self) -> ft.Control:
        relay = self.ui.ctx.relay
        state = self.ui.ctx.relay_state() if self.ui.ctx.relay_state else "connected"
        if relay and state == "connected":
            lines: list[ft.Control] = [widgets.icon_line(ft.Icons.CLOUD_DONE_OUTLINED, f"Connected through {relay}",
                                                         color=theme.GOOD, weight=ft.FontWeight.W_600),
                                       muted("Apps can reach your agent through the relay even when this device "
                                             "is not on their network. The relay never sees your keys.")]
        elif relay:
            why = state.removeprefix("offline: ") if state.startswith("offline") else "connecting"
            lines = [widgets.icon_line(ft.Icons.CLOUD_SYNC_OUTLINED, f"Reconnecting to {relay}", color=theme.WARN,
                                       weight=ft.FontWeight.W_600),
                     muted(f"Apps cannot reach your agent from the internet until the relay answers again ({why}). "
                           "Your agent keeps trying by itself.")]
        else:
            lines = [widgets.icon_line(ft.Icons.CLOUD_OFF, "Not connected", weight=ft.FontWeight.W_600),
                     muted("A relay lets labs and clinics reach your agent from the internet while it runs on "
                           "your phone or laptop. None is set up, so apps reach your agent only at the address "
                           "above.")]
        return card(heading("Relay", size=17), *lines)

    def _trust_section(self) -> ft.Control:
        return card(
            heading("Organisations you trust to confirm who people are", size=17),
            muted("When someone asks for your records, their hospital or clinic confirms who they are. "
                  "Requests confirmed by these organisations show as verified."),
            self.trusted,
            ft.Divider(),
            ft.Text("Add an organisation", weight=ft.FontWeight.W_600),
            self.iss_url, self.iss_name, self.keys_source, self.keys_url, self.keys_json,
            widgets.actions(self.trust_busy, button("Add organisation", self._add_issuer, icon=ft.Icons.ADD)),
        )

    def _backup_section(self) -> ft.Control:
        return card(
            heading("Back up your agent's keys", size=17),
            muted("The backup lets you move your agent to a new device. It is encrypted with a passphrase "
                  "you choose now; without it the backup is useless, so keep it somewhere safe."),
            muted("On the new device, before its first start: consent-agent restore <backup file>. It then "
                  "starts as the same agent, with the same address for labs and clinics to trust.", size=13),
            self.pass1, self.pass2,
            widgets.actions(self.backup_busy, button("Save encrypted backup", self._backup, icon=ft.Icons.SAVE)),
            widgets.message(self.backup_done),
        )

    def _lock_section(self) -> ft.Control:
        if self.ui.ctx.on_change_lock is None:
            return card(heading("App lock", size=17),
                        muted("The app lock cannot be changed from here in this mode."))
        return card(
            heading("App lock", size=17),
            muted("The PIN or passphrase asked when the app opens. A PIN needs at least 4 digits; a passphrase "
                  "at least 8 characters."),
            self.lock_now, self.lock_new, self.lock_again,
            widgets.actions(button("Change app lock", self._change_lock, icon=ft.Icons.LOCK_RESET)),
            widgets.message(self.lock_msg),
        )

    # refresh ------------------------------------------------------------------------------------------------
    def refresh(self) -> None:
        ui = self.ui
        status = ui.owner.status()
        warnings: list[ft.Control] = []
        for w in status.get("warnings") or []:
            text = ("Your agent's keys are stored without encryption (development mode)."
                    if "plaintext" in w else "The activity log fails its tamper check. Something changed it."
                    if "activity log" in w else w)
            warnings.append(ft.Container(widgets.icon_line(ft.Icons.WARNING_AMBER, text, color=theme.WARN,
                                                           weight=ft.FontWeight.W_600),
                                         padding=12, border_radius=12, bgcolor=ft.Colors.SURFACE_CONTAINER_HIGH))
        self.warnings.controls = warnings
        items: list[ft.Control] = []
        for t in ui.owner.trust_list():
            items.append(ft.Semantics(container=True, content=ft.Container(ft.Column([
                widgets.icon_line(ft.Icons.VERIFIED_OUTLINED, str(t["name"]), color=theme.GOOD,
                                  weight=ft.FontWeight.W_600, size=15),
                ft.Container(ft.Column([
                    ft.Text(t["issuer"], size=13, font_family="monospace"),
                    muted(f"Added on {date_words(t['added_at'])} · {t['keys']} public "
                          f"key{'s' if t['keys'] != 1 else ''}", size=12)], spacing=2),
                    padding=ft.Padding.only(left=26))], spacing=2), padding=ft.Padding.symmetric(vertical=4))))
        self.trusted.controls = items or [muted("None yet. Without one, every request shows as not verified.")]

    # actions ------------------------------------------------------------------------------------------------
    def _source_changed(self) -> None:
        paste = self.keys_source.value == "paste"
        self.keys_url.visible, self.keys_json.visible = not paste, paste
        self.ui.page.update()

    async def _add_issuer(self, _: Any) -> None:
        ui = self.ui
        for tf in (self.iss_url, self.keys_url, self.keys_json):
            tf.error = None
        issuer = (self.iss_url.value or "").strip()
        bad = False
        if not issuer.startswith("https://"):
            self.iss_url.error, bad = "Enter the address, starting with https://", True
        jwks: dict[str, Any] | None = None
        jwks_uri: str | None = None
        if self.keys_source.value == "paste":
            try:
                parsed = json.loads(self.keys_json.value or "")
            except ValueError:
                self.keys_json.error, bad = "That is not valid JSON. Paste the whole key list.", True
            else:
                if isinstance(parsed, dict):
                    jwks = parsed
                else:
                    self.keys_json.error, bad = "Paste the key list: it starts with {\"keys\": [", True
        else:
            jwks_uri = (self.keys_url.value or "").strip()
            if not jwks_uri.startswith("https://"):
                self.keys_url.error, bad = "Enter the address of its keys, starting with https://", True
        if bad:
            ui.page.update()
            return
        self.trust_busy.visible = True
        ui.page.update()
        name = (self.iss_name.value or "").strip() or None
        try:
            added = await asyncio.to_thread(ui.owner.trust_add, issuer, jwks=jwks, jwks_uri=jwks_uri, name=name)
        except OwnerError as exc:
            ui.toast(plain_error(str(exc)), error=True)
        else:
            self.iss_url.value = self.iss_name.value = self.keys_url.value = self.keys_json.value = ""
            ui.toast(f"You now trust {added['name']} to confirm who people are.")
            self.refresh()
        finally:
            self.trust_busy.visible = False
            ui.page.update()

    async def _backup(self, _: Any) -> None:
        ui = self.ui
        self.pass1.error = self.pass2.error = None
        self.backup_done.visible = False
        p1, p2 = self.pass1.value or "", self.pass2.value or ""
        if len(p1) < MIN_BACKUP_PASSPHRASE:
            self.pass1.error = f"Use at least {MIN_BACKUP_PASSPHRASE} characters; a few words work well."
        elif p1 != p2:
            self.pass2.error = "The two passphrases differ."
        if self.pass1.error or self.pass2.error:
            ui.page.update()
            return
        self.backup_busy.visible = True
        ui.page.update()
        try:
            blob = await asyncio.to_thread(ui.owner.agent.keys.export_backup, p1)
            stamp = date.fromtimestamp(ui.now()).isoformat()
            path = await asyncio.to_thread(write_private, Path(ui.ctx.data_dir) / "backups" /
                                           f"agent-backup-{stamp}.json", blob)
        except OSError as exc:
            ui.toast(f"Could not save the backup: {exc.strerror or exc}", error=True)
        else:
            self.pass1.value = self.pass2.value = ""
            self.backup_done.value = f"Saved to {path}. Copy it somewhere safe, away from this device."
            self.backup_done.visible = True
            ui.toast(f"Backup saved to {path}")
        finally:
            self.backup_busy.visible = False
            ui.page.update()

    def _change_lock(self, _: Any) -> None:
        ui = self.ui
        change = ui.ctx.on_change_lock
        self.lock_again.error = None
        if (self.lock_new.value or "") != (self.lock_again.value or ""):
            self.lock_again.error = "The two entries differ."
            ui.page.update()
            return
        problem = change(self.lock_now.value or "", self.lock_new.value or "") if change else "Not available."
        self.lock_msg.visible = True
        if problem:
            self.lock_msg.value, self.lock_msg.color = problem, theme.DANGER
        else:
            self.lock_now.value = self.lock_new.value = self.lock_again.value = ""
            self.lock_msg.value, self.lock_msg.color = "The app lock is changed.", theme.GOOD
            ui.toast("The app lock is changed.")
        ui.page.update()
