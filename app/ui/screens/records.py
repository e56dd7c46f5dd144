"""Records: the labs and clinics connected to the agent, and the records each keeps for this profile."""

from __future__ import annotations

from typing import Any

import flet as ft

from app.ui import theme, widgets
from app.ui.widgets import Ui, button, card, icon_line, muted
from app.ui.words import Names, capitalize, excluded_words, join_words, label_words, relative_time, scope_words


class RecordsScreen:
    key = "records"
    title = "Records"

    def __init__(self, ui: Ui) -> None:
        self.ui = ui
        self.intro = muted("")
        self.kept_out = ft.Text("", size=13, visible=False)
        self.items = ft.Column(spacing=theme.GAP)
        self.root, _ = ui.screen(self.intro, widgets.message(self.kept_out), self.items)

    def refresh(self) -> None:
        ui = self.ui
        names = ui.names()
        now = ui.now()
        current = ui.current()
        pid = ui.profile
        connections = [c for c in ui.owner.connections(profile=pid) if c["status"] == "active"]
        resources = ui.owner.resources(profile=pid)  # never what the guardianship keeps out
        whose = ui.whose()
        self.intro.value = (f"Labs and clinics that keep {whose} records and let you decide who sees them."
                            if connections or resources else "")
        self.intro.visible = bool(self.intro.value)
        g = current.get("guardianship") or {}
        hidden = excluded_words(x["code"] for x in g.get("exclude") or ())
        name = str(current.get("name"))
        self.kept_out.visible = bool(hidden)
        self.kept_out.value = (f"Records marked {join_words(hidden, 'or')} are not listed here: only {name} "
                               "decides who sees them." if hidden else "")
        cards: list[ft.Control] = []
        connected = set()
        for c in sorted(connections, key=lambda c: c["created_at"]):
            connected.add(c["client_id"])
            mine = [r for r in resources if r["client_id"] == c["client_id"]]
            cards.append(self._connection_card(c, mine, names, now))
        orphans = [r for r in resources if r["client_id"] not in connected]
        if orphans:
            cards.append(widgets.heading("From places no longer connected", size=17))
            cards.append(card(*[self._resource_line(r) for r in orphans], muted_bg=True))
        self.items.controls = cards or [widgets.empty(
            ft.Icons.FOLDER_OFF_OUTLINED, "No lab or clinic is connected yet",
            "When a lab or clinic asks to connect, you approve it in the Inbox and its records appear here.")]

    def _connection_card(self, c: dict[str, Any], resources: list[dict[str, Any]], names: Names,
                         now: float) -> ft.Control:
        app = names.client(c["client_id"])
        lines: list[ft.Control] = [
            ft.Row([ft.Icon(ft.Icons.LOCAL_HOSPITAL_OUTLINED, color=ft.Colors.PRIMARY),
                    ft.Text(app, size=17, weight=ft.FontWeight.W_600, expand=True)],
                   vertical_alignment=ft.CrossAxisAlignment.START),
            muted(f"Connected {relative_time(c['created_at'], now)}", size=13),
        ]
        if resources:
            lines += [self._resource_line(r) for r in resources]
        else:
            lines.append(muted("It has not listed any records yet."))
        lines.append(widgets.actions(button("Disconnect", lambda _: self._disconnect(c, app), kind="outlined",
                                            label=f"Disconnect {app}")))
        return card(*lines)

    @staticmethod
    def _resource_line(r: dict[str, Any]) -> ft.Control:
        name = str(r.get("name") or "Unnamed record")
        can = join_words(scope_words(s) for s in r.get("resource_scopes") or [])
        detail = f"Others can be allowed to {can}." if can else ""
        if r.get("description") and isinstance(r["description"], str):
            detail = f"{r['description']} {detail}".strip()
        lines: list[ft.Control] = [
            icon_line(ft.Icons.DESCRIPTION_OUTLINED, name, color=ft.Colors.ON_SURFACE, size=15,
                      weight=ft.FontWeight.W_600),
            ft.Container(muted(capitalize(detail), size=13), padding=ft.Padding.only(left=26))]
        sensitive = label_words(r.get("security_labels") or ())
        if sensitive:
            lines.append(ft.Container(ft.Text(f"Marked sensitive: {', '.join(sensitive)}", size=13, color=theme.WARN),
                                      padding=ft.Padding.only(left=26)))
        return ft.Column(lines, spacing=2)

    def _disconnect(self, c: dict[str, Any], app: str) -> None:
        ui = self.ui

        def go() -> None:
            if ui.attempt(lambda: ui.owner.disconnect(c["id"]), done=f"{app} is disconnected.") is not None:
                ui.refresh_all()

        ui.confirm(title=f"Disconnect {app}?",
                   body=(f"{app} will no longer check with your agent before showing your records, so nobody "
                         "can be given access to them through it until it connects again. Sharing you set up "
                         "stays listed under Shared."),
                   yes="Disconnect", on_yes=go)
