"""Dialogs more than one screen opens: the Share choices (which of the asked things, for how long),
used for a request in this agent's inbox and for a request another guardian sent."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import flet as ft

from app.ui import theme, widgets
from app.ui.widgets import Ui, button
from app.ui.words import DEFAULT_LIFETIME, LIFETIME_CHOICES, Names, lifetime_for, scope_choice_label
from core.owner import Lifetime


def share_dialog(ui: Ui, *, name: str, permissions: Iterable[Mapping[str, Any]], names: Names,
                 on_share: Callable[[list[str], Lifetime], None], about: Iterable[ft.Control] = ()) -> None:
    """"Share with Dr. Bob Jones?": a checkbox per asked thing (all ticked), how long (a month
    pre-selected); ``on_share(scopes, lifetime)`` runs after the dialog closed."""
    scopes: dict[str, list[str]] = {}
    for p in permissions:
        for s in p.get("scopes") or ():
            scopes.setdefault(s, []).append(str(p.get("resource_name") or names.resource(str(p.get("resource_id")))))
    rows = {s: widgets.checkbox(scope_choice_label(s, things), True) for s, things in scopes.items()}
    boxes = {s: box for s, (_, box) in rows.items()}
    how_long = widgets.radio_group(list(LIFETIME_CHOICES), DEFAULT_LIFETIME)
    problem = ft.Text("", color=theme.DANGER, visible=False)

    def go(_: Any) -> None:
        chosen = [s for s, box in boxes.items() if box.value]
        if not chosen:
            problem.value, problem.visible = "Tick at least one thing to share, or choose Cancel.", True
            problem.update()
            return
        ui.close_dialog()
        on_share(chosen, lifetime_for(how_long.value or DEFAULT_LIFETIME))

    dialog = ft.AlertDialog(
        modal=True, scrollable=True, title=ft.Text(f"Share with {name}?"), inset_padding=ui.dialog_inset(),
        content=ft.Column([*about, ft.Text("What may they do?", weight=ft.FontWeight.W_600),
                           *(row for row, _ in rows.values()),
                           ft.Text("For how long?", weight=ft.FontWeight.W_600), how_long,
                           widgets.message(problem)],
                          tight=True, spacing=4, width=360),
        actions=[button("Cancel", lambda _: ui.close_dialog(), kind="text"), button("Share", go)],
        actions_alignment=ft.MainAxisAlignment.END)
    ui.page.show_dialog(dialog)
