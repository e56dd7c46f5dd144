"""Building blocks shared by the screens, and ``Ui``: one window's (or tab's) session of the app.

Every action control gets an accessible name (what a screen reader says and what a browser test
finds with ``get_by_role("button", name=...)``). Text buttons carry it as the text's semantics label,
icon buttons as a ``Semantics`` wrapper.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import flet as ft

from app.ui import theme
from app.ui.words import Names, plain_error
from core.errors import OwnerError
from core.owner import Owner

if TYPE_CHECKING:
    from app.ui.shell import UiContext

log = logging.getLogger(__name__)
T = TypeVar("T")
Handler = Callable[[Any], Any]
ButtonKind = Literal["filled", "tonal", "outlined", "text", "danger"]


# the session --------------------------------------------------------------------------------------
@dataclass
class Ui:
    """What the screens of one page share: the owner, the context, who we act for, and helpers."""

    page: ft.Page
    owner: Owner
    ctx: UiContext
    profile: str = "me"
    """The profile the owner acts for now; Inbox, Shared and Records show only its things."""
    width: float = 390
    refresh_all: Callable[[], None] = lambda: None
    go: Callable[[str], None] = lambda key: None
    frames: list[ft.Container] = field(default_factory=list)

    @property
    def narrow(self) -> bool:
        return self.width < theme.NARROW

    def now(self) -> float:
        return float(self.owner.agent.clock())

    def names(self) -> Names:
        """Who and what the agent's ids stand for, read fresh from its state."""
        owner, state = self.owner, self.owner.agent.state
        n = Names(issuers={t["issuer"]: t["name"] for t in owner.trust_list()})
        for c in state.all("clients"):
            n.clients[c["client_id"]] = str((c.get("metadata") or {}).get("client_name") or "an unnamed app")
        for r in owner.resources():
            n.resources[r["_id"]] = str(r.get("name") or "an unnamed record")
        imported = [r for h in owner.history() for r in h.get("requests") or ()]  # before a hand-over
        for item in [*imported, *state.all("inbox")]:
            n.requests[item["id"]] = item
            who = item.get("requester")
            if who:
                key = f"{who.get('issuer')}#{who.get('subject')}"
                seen = n.people.setdefault(key, {})
                seen.update({k: who[k] for k in ("name", "email") if who.get(k)})
        for s in owner.shares(include_inactive=True):
            n.shares[s["id"]] = s
            g = s["grantee"]
            if g.get("kind") == "person" and g.get("name"):  # the name the owner gave when sharing ahead
                n.people.setdefault(f"{g.get('issuer')}#{g.get('subject')}", {}).setdefault("name", g["name"])
        n.profiles = {p["id"]: p["name"] for p in owner.profiles()}
        connections = owner.connections()
        n.connections = {c["id"]: c["client_id"] for c in connections}
        n.connection_profiles = {c["id"]: c["profile"] for c in connections}
        n.resource_profiles = {r["_id"]: r["profile"] for r in state.all("resources")}
        n.agent_id = self.ctx.agent_id
        return n

    def profiles(self) -> list[dict[str, Any]]:
        """The profiles one can act for: the owner's own and those still held here (not handed over)."""
        return [p for p in self.owner.profiles() if p.get("status", "active") != "handed_over"]

    def current(self) -> dict[str, Any]:
        """The profile acted for now; back to the owner's own when it is gone (handed over)."""
        profiles = self.profiles()
        found = next((p for p in profiles if p["id"] == self.profile), None)
        if found is None:
            self.profile = "me"
            found = next((p for p in profiles if p["id"] == "me"), {"id": "me", "name": "Me", "kind": "owner"})
        return found

    def profile_name(self) -> str:
        return str(self.current()["name"])

    def whose(self) -> str:
        """"your" or "Mia's": whose records the screens show now."""
        return "your" if self.profile == "me" else f"{self.profile_name()}'s"

    def set_profile(self, pid: str) -> None:
        self.profile = pid
        self.refresh_all()

    # feedback -----------------------------------------------------------------------------------
    def toast(self, message: str, *, error: bool = False) -> None:
        text = ft.Text(message, color=ft.Colors.ON_ERROR if error else None)
        bar = ft.SnackBar(ft.Semantics(container=True, content=text),
                          bgcolor=theme.DANGER if error else None, show_close_icon=True,
                          duration=ft.Duration(seconds=8 if error else 5))
        self.page.show_dialog(bar)

    def attempt(self, fn: Callable[[], T], *, done: str | None = None) -> T | None:
        """Run an owner operation; its refusal becomes a plain SnackBar and None."""
        try:
            result = fn()
        except OwnerError as exc:
            self.toast(plain_error(str(exc)), error=True)
            return None
        if done:
            self.toast(done)
        return result

    def close_dialog(self) -> None:
        self.page.pop_dialog()

    def dialog_inset(self) -> ft.Padding:
        return ft.Padding.symmetric(horizontal=12 if self.narrow else 40, vertical=24)

    def confirm(self, *, title: str, body: str, yes: str, on_yes: Callable[[], None], danger: bool = True,
                yes_label: str | None = None) -> None:
        """Ask before doing something that cannot be undone."""

        def ok(_: Any) -> None:
            self.close_dialog()
            on_yes()

        dialog = ft.AlertDialog(
            modal=True, title=ft.Text(title), content=ft.Text(body), inset_padding=self.dialog_inset(),
            actions=[button("Cancel", lambda _: self.close_dialog(), kind="text"),
                     button(yes, ok, kind="danger" if danger else "filled", label=yes_label)],
            actions_alignment=ft.MainAxisAlignment.END)
        self.page.show_dialog(dialog)

    # layout -------------------------------------------------------------------------------------
    def content_width(self) -> float:
        rail = 0 if self.narrow else 88
        return max(280.0, min(float(theme.CONTENT_MAX), self.width - rail))

    def screen(self, *controls: ft.Control) -> tuple[ft.Column, ft.Column]:
        """A scrolling screen with a centred column of readable width; returns (root, inner)."""
        inner = ft.Column(list(controls), spacing=theme.GAP, horizontal_alignment=ft.CrossAxisAlignment.STRETCH)
        frame = ft.Container(inner, width=self.content_width(),
                             padding=ft.Padding.only(left=16, right=16, top=12, bottom=32))
        self.frames.append(frame)
        root = ft.Column([frame], scroll=ft.ScrollMode.AUTO, expand=True,
                         horizontal_alignment=ft.CrossAxisAlignment.CENTER)
        return root, inner

    def resize(self, width: float) -> None:
        self.width = width
        for f in self.frames:
            f.width = self.content_width()


# controls -----------------------------------------------------------------------------------------
def button(text: str, on_click: Handler, *, kind: ButtonKind = "filled", label: str | None = None,
           icon: ft.IconData | None = None, disabled: bool = False) -> ft.Control:
    """A text button whose accessible name is ``label`` (default: its text)."""
    content = ft.Text(text, semantics_label=label if label and label != text else None)
    if kind == "filled":
        return ft.FilledButton(content=content, icon=icon, on_click=on_click, disabled=disabled)
    if kind == "tonal":
        return ft.FilledTonalButton(content=content, icon=icon, on_click=on_click, disabled=disabled)
    if kind == "outlined":
        return ft.OutlinedButton(content=content, icon=icon, on_click=on_click, disabled=disabled)
    if kind == "danger":
        return ft.FilledButton(content=content, icon=icon, on_click=on_click, disabled=disabled,
                               style=ft.ButtonStyle(bgcolor=theme.DANGER, color=ft.Colors.WHITE))
    return ft.TextButton(content=content, icon=icon, on_click=on_click, disabled=disabled)


def icon_button(icon: ft.IconData, label: str, on_click: Handler) -> ft.Control:
    """An icon button named ``label`` for screen readers (and shown as its tooltip)."""
    return ft.Semantics(label=label, button=True, exclude_semantics=True,
                        content=ft.IconButton(icon, tooltip=label, on_click=on_click))


def labelled(label: str, control: ft.Control) -> ft.Control:
    """Give a control (a dropdown) an accessible name."""
    return ft.Semantics(label=label, content=control)


def dropdown(label: str, options: list[tuple[str, str]], value: str | None, on_select: Handler | None = None,
             *, width: float | None = None, a11y: str | None = None) -> tuple[ft.Control, ft.Dropdown]:
    """A dropdown with an accessible name; returns (what to place, the dropdown itself)."""
    dd = ft.Dropdown(label=label, value=value, options=[ft.DropdownOption(key=k, text=t) for k, t in options],
                     on_select=on_select, width=width, dense=True)
    return labelled(a11y or label, dd), dd


def heading(text: str, *, size: int = 20) -> ft.Control:
    return ft.Semantics(header=True, content=ft.Text(text, size=size, weight=ft.FontWeight.W_600))


def muted(text: str, *, size: int = 14, italic: bool = False) -> ft.Text:
    return ft.Text(text, size=size, color=theme.MUTED, italic=italic)


def body(text: str, *, size: int = 15, weight: ft.FontWeight | None = None, color: str | None = None) -> ft.Text:
    return ft.Text(text, size=size, weight=weight, color=color)


def card(*controls: ft.Control, muted_bg: bool = False) -> ft.Card:
    """A card whose lines are each their own node for screen readers (and for ``get_by_text``), rather
    than one long merged label."""
    lines: list[ft.Control] = [ft.Semantics(container=True, content=ft.Container(c)) for c in controls]
    return ft.Card(ft.Container(ft.Column(lines, spacing=8), padding=16),
                   bgcolor=ft.Colors.SURFACE_CONTAINER_LOWEST if muted_bg else None, elevation=1, margin=0)


def actions(*controls: ft.Control) -> ft.Row:
    """A row of buttons that wraps on narrow screens."""
    return ft.Row(list(controls), wrap=True, spacing=8, run_spacing=8)


def icon_line(icon: ft.IconData, text: str, *, color: str | None = None, size: int = 14,
              weight: ft.FontWeight | None = None) -> ft.Row:
    """An icon and a sentence that wraps next to it."""
    return ft.Row([ft.Icon(icon, size=18, color=color or theme.MUTED),
                   ft.Text(text, size=size, color=color, weight=weight, expand=True)],
                  spacing=8, vertical_alignment=ft.CrossAxisAlignment.START)


def app_line(ui: Ui, client: Mapping[str, Any], text: str) -> ft.Row:
    """``text`` about the app a request comes through, led by the app's logo once the agent has it
    on the device (see app/ui/logos.py), or a generic app icon until then."""
    logos = ui.ctx.logos
    picture = logos.get(client.get("logo_uri")) if logos is not None else None
    if picture is None:
        return icon_line(ft.Icons.APPS, text)
    name = client.get("client_name") or "the app"
    logo = ft.Semantics(label=f"Logo of {name}", image=True, content=ft.Image(
        src=picture, width=18, height=18, fit=ft.BoxFit.CONTAIN, border_radius=4))
    return ft.Row([logo, ft.Text(text, size=14, expand=True)], spacing=8,
                  vertical_alignment=ft.CrossAxisAlignment.START)


def empty(icon: ft.IconData, text: str, hint: str | None = None) -> ft.Control:
    items: list[ft.Control] = [ft.Icon(icon, size=48, color=theme.MUTED), ft.Text(text, size=18, color=theme.MUTED,
                                                                                text_align=ft.TextAlign.CENTER)]
    if hint:
        items.append(muted(hint))
    return ft.Container(ft.Column(items, horizontal_alignment=ft.CrossAxisAlignment.CENTER, spacing=8),
                        padding=ft.Padding.symmetric(vertical=48), alignment=ft.Alignment.CENTER)


def message(text: ft.Text) -> ft.Control:
    """A status or error line, as its own node (so it is read, and found by ``get_by_text``, on its own)."""
    return ft.Semantics(container=True, content=ft.Container(text))  # the text may be hidden, the wrapper not


def field_error(tf: ft.TextField, message: str | None) -> bool:
    """Show (or clear) an inline validation message; True when there was one."""
    tf.error = message
    return message is not None


def checkbox(label: str, value: bool = False) -> tuple[ft.Control, ft.Checkbox]:
    """A checkbox whose label wraps (Flutter's own label does not); returns (row, the checkbox)."""
    box = ft.Checkbox(value=value, semantics_label=label)

    def toggle(_: Any) -> None:
        if box.disabled:
            return
        box.value = not box.value
        box.update()

    text = ft.Semantics(exclude_semantics=True, expand=True, content=ft.Text(label, on_tap=toggle))
    return ft.Row([box, text], spacing=4, vertical_alignment=ft.CrossAxisAlignment.CENTER), box


def text_field(label: str, **kw: Any) -> ft.TextField:
    """A text field whose helper and error messages wrap instead of being cut off."""
    return ft.TextField(label=label, error_max_lines=3, helper_max_lines=3, **kw)


def radio_group(choices: list[tuple[str, str]], value: str | None, on_change: Handler | None = None) -> ft.RadioGroup:
    return ft.RadioGroup(value=value, on_change=on_change,
                         content=ft.Column([ft.Radio(value=k, label=t) for k, t in choices], spacing=0))
