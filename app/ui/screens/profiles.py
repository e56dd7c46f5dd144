"""Profiles: the owner and the people they look after; choose whom you act for; add a dependent."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import flet as ft

from app.ui import theme, widgets
from app.ui.widgets import Ui, button, card, muted
from app.ui.words import date_words, plain_error
from core.errors import OwnerError


def parse_day(text: str) -> int:
    """``2030-01-31`` (or 31/01/2030) as the end of that day, UTC; ValueError when it is not a date."""
    text = text.strip()
    for fmt in ("%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y"):
        try:
            day = datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
        return int(day.timestamp()) + 86399
    raise ValueError(text)


class ProfilesScreen:
    key = "profiles"
    title = "Profiles"

    def __init__(self, ui: Ui) -> None:
        self.ui = ui
        self.items = ft.Column(spacing=theme.GAP)
        self.name = widgets.text_field("Name", max_length=80)
        self.until = widgets.text_field("Until (optional)", hint_text="YYYY-MM-DD",
                                        helper="For example the day they turn 18. Leave empty for no end.")
        form = widgets.card(
            widgets.heading("Add someone you look after", size=17),
            muted("A child or another person whose records you manage. Requests for their records are "
                  "kept apart from yours."),
            self.name, self.until,
            widgets.actions(button("Add dependent", self._add, icon=ft.Icons.PERSON_ADD)))
        intro = muted("Choose whom you act for. Inbox, Shared and Records show that person's things.")
        self.root, _ = ui.screen(intro, self.items, form)

    def refresh(self) -> None:
        ui = self.ui
        now = ui.now()
        self.items.controls = [self._row(p, now) for p in ui.owner.profiles()]

    def _row(self, p: dict[str, Any], now: float) -> ft.Control:
        ui = self.ui
        current = p["id"] == ui.profile
        name = str(p["name"])
        if p["kind"] == "owner":
            kind = "You"
        elif p["kind"] == "dependent":
            kind = "Someone you look after"
        else:
            kind = "Another person"
        if p.get("until"):
            ended = p["until"] <= now
            kind += f" · {'ended' if ended else 'until'} {date_words(p['until'])}"
        pending = sum(1 for i in ui.owner.inbox() if i["profile"] == p["id"] and i["kind"] == "access")
        details: list[ft.Control] = [
            ft.Row([ft.Icon(ft.Icons.PERSON if p["kind"] == "owner" else ft.Icons.CHILD_CARE,
                            color=ft.Colors.PRIMARY),
                    ft.Text(name, size=17, weight=ft.FontWeight.W_600, expand=True)],
                   vertical_alignment=ft.CrossAxisAlignment.START),
            muted(kind, size=13),
        ]
        if pending:
            details.append(ft.Text(f"{pending} request{'s' if pending != 1 else ''} waiting", size=13))
        if current:
            details.append(widgets.icon_line(ft.Icons.CHECK_CIRCLE, "You are acting for this profile",
                                             color=theme.GOOD, weight=ft.FontWeight.W_600))
        else:
            pid = str(p["id"])
            details.append(widgets.actions(button(f"Act for {name}", lambda _: self._switch(pid, name),
                                                  kind="tonal", label=f"Act for {name}")))
        return card(*details)

    def _switch(self, pid: str, name: str) -> None:
        self.ui.set_profile(pid)
        self.ui.toast(f"You are now acting for {name}.")

    def _add(self, _: Any) -> None:
        ui = self.ui
        self.name.error = self.until.error = None
        name = (self.name.value or "").strip()
        until: int | None = None
        bad = False
        if not name:
            self.name.error, bad = "Enter their name.", True
        if (self.until.value or "").strip():
            try:
                day = parse_day(self.until.value or "")
            except ValueError:
                self.until.error, bad = "Enter a date like 2030-01-31, or leave it empty.", True
            else:
                if day <= ui.now():
                    self.until.error, bad = "That date is already past.", True
                until = day
        if bad:
            ui.page.update()
            return
        try:
            prof = ui.owner.add_profile(name, dependent=True, until=until)
        except OwnerError as exc:
            self.name.error = plain_error(str(exc))
            ui.page.update()
            return
        self.name.value = self.until.value = ""
        ui.toast(f"Added {prof['name']}. Choose “Act for {prof['name']}” to see their requests.")
        ui.refresh_all()
