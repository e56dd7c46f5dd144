"""Inbox: requests waiting for the owner. Share or Deny an access request; Approve or Decline a
lab or clinic that wants to connect. A dependent's request that needs the other guardian offers
"Ask Ben" and "Apply Ben's answer"; the foot of the Inbox opens a request another guardian sent
(app/ui/screens/coguardian.py)."""

from __future__ import annotations

from typing import Any

import flet as ft

from app.ui import theme, widgets
from app.ui.dialogs import share_dialog
from app.ui.screens.coguardian import ApplyPanel, DecidePanel, Exchange
from app.ui.widgets import Ui, button, card, icon_line, muted
from app.ui.words import (
    Names,
    approval_words,
    capitalize,
    join_words,
    notice_words,
    permissions_words,
    registration_words,
    relative_time,
    requester_name,
    requester_words,
    waiting_words,
)
from core.owner import Lifetime


class InboxScreen:
    key = "inbox"
    title = "Inbox"

    def __init__(self, ui: Ui) -> None:
        self.ui = ui
        self.notices = ft.Column(spacing=8)
        self.summary = ft.Text("", size=15, color=theme.MUTED)
        self.others = ft.Column(spacing=8)
        self.items = ft.Column(spacing=theme.GAP)
        self.exchange = Exchange(ui)
        self.between = ft.Column(spacing=8)
        self.guardians: dict[str, list[dict[str, Any]]] = {}
        """profile id → its active guardians (this agent's owner is ``me``)."""
        # the list, and a request or answer from the other guardian opened in its place (both stay in
        # the page: only one is visible, as the shell does with screens)
        self.listing = ft.Column([self.notices, self.summary, self.others, self.items, self.between],
                                 spacing=theme.GAP, horizontal_alignment=ft.CrossAxisAlignment.STRETCH)
        self.panel = ft.Container(visible=False)
        self.root, _ = ui.screen(self.listing, self.panel)

    def refresh(self) -> None:
        ui = self.ui
        names = ui.names()
        ui.current()  # back to the owner's own profile if the one acted for is gone
        pending = ui.owner.inbox()
        mine = [i for i in pending if i["kind"] == "connect" or i["profile"] == ui.profile]
        elsewhere = [i for i in pending if i not in mine]
        n = len(mine)
        whom = "you" if ui.profile == "me" else ui.profile_name()
        self.notices.controls = [self._notice(x) for x in ui.owner.notices()]
        self.summary.value = f"{n} request{'s' if n != 1 else ''} waiting for {whom}" if n else ""
        self.summary.visible = bool(n)
        self.others.controls = [self._elsewhere(elsewhere, names)] if elsewhere else []
        whose = "your" if ui.profile == "me" else f"{ui.profile_name()}'s"
        self.guardians = {str(p["id"]): list((p.get("guardianship") or {}).get("guardians") or ())
                          for p in ui.profiles()}
        self.items.controls = [self._card(item, names) for item in reversed(mine)] or [
            widgets.empty(ft.Icons.INBOX_OUTLINED, f"Nothing waiting for {whom}",
                          f"When a clinic or lab asks for {whose} records, the request appears here.")]
        self.between.controls = [self._between()]

    # the other guardian's files ------------------------------------------------------------------------
    def _co_guardians(self) -> list[str]:
        """The other guardians' names, over every dependent held here."""
        return list(dict.fromkeys(str(g.get("name")) for gs in self.guardians.values() for g in gs
                                  if g.get("id") != "me"))

    def _between(self) -> ft.Control:
        """The foot of the Inbox: a request another guardian sent, or (with a co-guardian here) their answer."""
        others = self._co_guardians()
        buttons = [button("Decide a request", lambda _: self._open(DecidePanel(self.ui, self.exchange,
                                                                               on_back=self._close)),
                          kind="text", icon=ft.Icons.FILE_OPEN, label="Decide a request from another guardian")]
        if others:
            buttons.append(button(f"Apply {join_words(others, 'or')}'s answer", lambda _: self._apply(None),
                                  kind="text", icon=ft.Icons.DONE_ALL, label="Apply the other guardian's answer"))
        return ft.Container(ft.Column([
            widgets.icon_line(ft.Icons.SUPERVISOR_ACCOUNT, "Between guardians: a request the other parent sent you "
                              "to decide" + (", or their answer to yours." if others else "."), size=13),
            widgets.actions(*buttons)], spacing=4),
            padding=ft.Padding.symmetric(horizontal=12, vertical=8), border_radius=12,
            bgcolor=ft.Colors.SURFACE_CONTAINER_HIGH)

    def _open(self, panel: DecidePanel | ApplyPanel) -> None:
        self.panel.content = panel.root
        self.panel.visible, self.listing.visible = True, False
        self.ui.page.update()

    def _close(self) -> None:
        self.panel.content = None
        self.panel.visible, self.listing.visible = False, True
        self.ui.refresh_all()

    def _apply(self, whose: str | None) -> None:
        self._open(ApplyPanel(self.ui, whose=whose, on_back=self._close))

    def _notice(self, notice: dict[str, Any]) -> ft.Control:
        """A guardianship that ended, or shares a guardian made waiting for review: see Profiles."""
        ended = notice.get("kind") == "guardianship_ended"
        label = (f"Review the end of the guardianship for {notice.get('name')}" if ended
                 else "Review the sharing a guardian made for you")
        return ft.Container(ft.Column([
            widgets.icon_line(ft.Icons.NOTIFICATION_IMPORTANT_OUTLINED, notice_words(notice),
                              color=theme.WARN, weight=ft.FontWeight.W_600),
            ft.Row([button("Review", lambda _: self.ui.go("profiles"), kind="text", label=label)],
                   alignment=ft.MainAxisAlignment.END)], spacing=0),
            padding=ft.Padding.only(left=12, right=12, top=10, bottom=2), border_radius=12,
            bgcolor=ft.Colors.SURFACE_CONTAINER_HIGH)

    def _elsewhere(self, items: list[dict[str, Any]], names: Names) -> ft.Control:
        by_profile: dict[str, int] = {}
        for i in items:
            by_profile[i["profile"]] = by_profile.get(i["profile"], 0) + 1
        rows: list[ft.Control] = []
        for pid, count in by_profile.items():
            whose = "your own" if pid == "me" else f"{names.profile(pid)}'s"
            show, label = ("Show yours", "Show your own requests") if pid == "me" else (
                f"Show {names.profile(pid)}'s", f"Show requests for {names.profile(pid)}")
            rows.append(ft.Row([
                ft.Icon(ft.Icons.INFO_OUTLINE, size=18, color=theme.MUTED),
                ft.Text(f"{count} request{'s' if count != 1 else ''} for {whose} records", expand=True),
                button(show, self._switcher(pid), kind="text", label=label),
            ], wrap=False, vertical_alignment=ft.CrossAxisAlignment.CENTER))
        return ft.Container(ft.Column(rows, spacing=4), padding=ft.Padding.symmetric(horizontal=12, vertical=8),
                            border_radius=12, bgcolor=ft.Colors.SURFACE_CONTAINER_HIGH)

    def _switcher(self, pid: str) -> widgets.Handler:
        return lambda _: self.ui.set_profile(pid)

    # cards -----------------------------------------------------------------------------------------
    def _card(self, item: dict[str, Any], names: Names) -> ft.Control:
        return self._connect_card(item, names) if item["kind"] == "connect" else self._access_card(item, names)

    def _access_card(self, item: dict[str, Any], names: Names) -> ft.Control:
        ui = self.ui
        requester = item.get("requester")
        who, sure = requester_words(requester, names)
        verified = sure != "Not verified"
        client = item.get("client") or {}
        app = client.get("client_name") or names.client(client.get("client_id"))
        name = requester_name(requester) if requester else f"someone using {app}"
        how = registration_words(client.get("registration"), names)
        lines: list[ft.Control] = [
            ft.Row([ft.Icon(ft.Icons.PERSON, color=ft.Colors.PRIMARY),
                    ft.Text(who, size=17, weight=ft.FontWeight.W_600, expand=True)],
                   vertical_alignment=ft.CrossAxisAlignment.START),
            icon_line(ft.Icons.VERIFIED_USER if verified else ft.Icons.GPP_MAYBE, sure,
                      color=theme.GOOD if verified else theme.WARN, weight=ft.FontWeight.W_600),
            widgets.app_line(ui, client, f"Through {app} ({how})"),
            icon_line(ft.Icons.FOLDER_OPEN, f"Wants to {permissions_words(item.get('permissions') or [], names)}",
                      color=ft.Colors.ON_SURFACE, size=15),
        ]
        if item.get("purpose"):
            lines.append(icon_line(ft.Icons.CHAT_BUBBLE_OUTLINE, f"Why: {item['purpose']}"))
        if item["profile"] != "me":
            whom = names.profile(item["profile"])
            role = {"guardian": f"you decide for {whom} as guardian",
                    "proxy": f"you decide on {whom}'s behalf"}.get(str(item.get("acting_as")), "")
            about = f"About {whom}'s records" + (f": {role}" if role else "")
            lines.append(icon_line(ft.Icons.SUPERVISOR_ACCOUNT, about, color=ft.Colors.ON_SURFACE,
                                   weight=ft.FontWeight.W_600))
        for a in item.get("approvals") or []:
            lines.append(icon_line(ft.Icons.HOW_TO_REG, approval_words(a.get("by"), names)))
        if item.get("waiting_for"):
            lines += self._waiting(item)
        lines.append(muted(f"Arrived {relative_time(item['created_at'], ui.now())}", size=13))
        if not verified:
            lines.append(ft.Text("We could not confirm who this is. Share only if you expected this request.",
                                 size=13, color=theme.WARN))
        lines.append(widgets.actions(
            button("Deny", lambda _: self._deny(item, name, person=requester is not None), kind="outlined",
                   label=f"Deny {name}"),
            button("Share", lambda _: self._share(item, name, names), label=f"Share with {name}"),
        ))
        return card(*lines)

    def _waiting(self, item: dict[str, Any]) -> list[ft.Control]:
        """Whose yes is still needed; for the other guardian: Ask them, and Apply their answer."""
        guardians = self.guardians.get(str(item["profile"])) or []
        me = next((str(g.get("name")) for g in guardians if g.get("id") == "me"), None)
        waiting = [str(w) for w in item.get("waiting_for") or ()]
        others = [str(g.get("name")) for g in guardians if g.get("id") != "me" and g.get("name") in waiting]
        lines: list[ft.Control] = [icon_line(ft.Icons.HOURGLASS_TOP, waiting_words(waiting, me), color=theme.WARN)]
        if not others:
            return lines
        whom = join_words(others)
        asked = self.exchange.asked(str(item["id"]))
        lines.append(muted(f"{whom} decides on their own agent: send them this request, then apply their answer "
                           "here." if asked is None else f"The request for {whom} is saved at {asked}", size=13))
        whose = f"{whom}'s" if len(others) == 1 else "their"
        lines.append(widgets.actions(
            button(f"Ask {whom}", lambda _: self.exchange.ask(item, others, self.ui.names().profile(item["profile"])),
                   kind="tonal", icon=ft.Icons.SEND, label=f"Ask {whom} to decide"),
            button(f"Apply {whose} answer", lambda _: self._apply(whom if len(others) == 1 else None),
                   kind="outlined", icon=ft.Icons.DONE_ALL, label=f"Apply {whose} answer")))
        return lines

    def _connect_card(self, item: dict[str, Any], names: Names) -> ft.Control:
        ui = self.ui
        client = item.get("client") or {}
        app = client.get("client_name") or names.client(client.get("client_id"))
        code = item.get("user_code") or item.get("match_code") or ""
        profiles = ui.profiles()
        choice = widgets.radio_group([(p["id"], p["name"]) for p in profiles],
                                     ui.profile if any(p["id"] == ui.profile for p in profiles) else "me")
        lines: list[ft.Control] = [
            ft.Row([ft.Icon(ft.Icons.LINK, color=ft.Colors.PRIMARY),
                    ft.Text(f"{app} wants to connect to {ui.whose()} records", size=17, weight=ft.FontWeight.W_600,
                            expand=True)], vertical_alignment=ft.CrossAxisAlignment.START),
            ft.Text(f"If you approve, {app} can tell your agent which records it keeps for you, "
                    "so that you decide who may see them.", size=14),
            # a labelled node (aria-label "Code H Q H W - M X Z J", read out character by character)
            # holding the code as shown
            ft.Semantics(label=f"Code {' '.join(code)}", container=True, content=ft.Container(
                ft.Semantics(container=True, content=ft.Text(code, size=30, font_family="monospace",
                                                             weight=ft.FontWeight.W_700)),
                padding=ft.Padding.symmetric(horizontal=16, vertical=8), border_radius=8,
                bgcolor=ft.Colors.SURFACE_CONTAINER_HIGHEST)),
            icon_line(ft.Icons.WARNING_AMBER, "Check that this code matches what the lab shows.",
                      color=theme.WARN, weight=ft.FontWeight.W_600),
            widgets.app_line(ui, client, capitalize(registration_words(client.get("registration"), names))),
            muted(f"Arrived {relative_time(item['created_at'], ui.now())}", size=13),
        ]
        if len(profiles) > 1:
            lines += [ft.Text("Whose records does it keep?", weight=ft.FontWeight.W_600), choice]
        lines.append(widgets.actions(
            button("Decline", lambda _: self._decline(item, app), kind="outlined", label=f"Decline {app}"),
            button("Approve", lambda _: self._approve_connect(item, app, choice.value), label=f"Approve {app}"),
        ))
        return card(*lines)

    # decisions -------------------------------------------------------------------------------------
    def _share(self, item: dict[str, Any], name: str, names: Names) -> None:
        ui = self.ui

        def go(scopes: list[str], lifetime: Lifetime) -> None:
            done = ui.attempt(lambda: ui.owner.approve(item["id"], scopes=scopes, lifetime=lifetime))
            if done is not None:
                waiting = (done.get("item") or {}).get("waiting_for") or []
                ui.toast(f"Your yes is recorded; waiting for {join_words(waiting)}." if done.get("share") is None
                         and waiting else f"Shared with {name}.")
                ui.refresh_all()

        about: list[ft.Control] = []
        if item["profile"] != "me":
            about.append(icon_line(ft.Icons.SUPERVISOR_ACCOUNT, f"{names.profile(item['profile'])}'s records: you "
                                   "decide for them", color=ft.Colors.ON_SURFACE))
        share_dialog(ui, name=name, permissions=item.get("permissions") or [], names=names, on_share=go, about=about)

    def _deny(self, item: dict[str, Any], name: str, *, person: bool) -> None:
        ui = self.ui
        remember_row, remember = widgets.checkbox(
            f"Always deny this {'person' if person else 'app'} for these records")

        def go(_: Any) -> None:
            ui.close_dialog()
            done = ui.attempt(lambda: ui.owner.deny(item["id"], remember=bool(remember.value)),
                              done=f"You said no to {name}.")
            if done is not None:
                ui.refresh_all()

        dialog = ft.AlertDialog(
            modal=True, title=ft.Text(f"Deny {name}?"), inset_padding=ui.dialog_inset(),
            content=ft.Column([ft.Text("They will be told no. You can still share with them later."), remember_row],
                              tight=True, spacing=8, width=360),
            actions=[button("Cancel", lambda _: ui.close_dialog(), kind="text"), button("Deny", go, kind="danger")],
            actions_alignment=ft.MainAxisAlignment.END)
        ui.page.show_dialog(dialog)

    def _approve_connect(self, item: dict[str, Any], app: str, profile: str | None) -> None:
        ui = self.ui
        done = ui.attempt(lambda: ui.owner.approve(item["id"], profile=profile or "me"),
                          done=f"{app} is connected.")
        if done is not None:
            ui.refresh_all()

    def _decline(self, item: dict[str, Any], app: str) -> None:
        ui = self.ui

        def go() -> None:
            if ui.attempt(lambda: ui.owner.deny(item["id"]), done=f"You declined {app}.") is not None:
                ui.refresh_all()

        ui.confirm(title=f"Decline {app}?", body=f"{app} will not be connected to your records.", yes="Decline",
                   on_yes=go)
