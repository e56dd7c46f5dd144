"""The app's frame: title, theme, navigation (a bar on phones, a rail on wide screens) and the screens.

``build(page, owner, ctx)`` is the one entry point; it is called once per window or browser tab.

Whom the owner acts for (``Ui.profile``) is chosen with the app bar's chip (the switcher) or on the
Profiles screen; while it is someone else, a banner over every screen says so ("Acting for Mia",
the guardianship's end and what it keeps out) with "Back to you".

Live updates: the agent's event bus calls subscribers from whatever thread published (an HTTP worker,
the owner API, this page's own handlers). The subscriber here never touches a control. It only
schedules ``_apply_events`` on this page's event loop with ``page.run_task`` (which uses
``asyncio.run_coroutine_threadsafe``), and bursts of events collapse into one refresh. Flet runs the
page's event handlers on that same loop, so every change to the control tree happens on one thread.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import flet as ft

from app.ui import theme, widgets
from app.ui.logos import LogoCache
from app.ui.widgets import Ui, button
from app.ui.words import guardianship_words
from core.guardian import GUARDIANSHIP_ENDED
from core.owner import Owner

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UiContext:
    issuer: str
    """The agent's address, for Settings and its QR code."""
    agent_id: str
    data_dir: Path
    relay: str | None
    """The relay's URL, or None when the agent is not reachable through one."""
    on_change_lock: Callable[[str, str], str | None] | None = None
    """Change the app lock: ``(current, new)`` → an error message for the person, or None when done."""
    relay_state: Callable[[], str] | None = None
    """The link's state now: ``connecting``, ``connected`` or ``offline: <reason>``."""
    logos: LogoCache | None = None
    """Client logos fetched by the agent (the browser never loads a client's ``logo_uri``)."""


class Screen(Protocol):
    @property
    def title(self) -> str: ...

    @property
    def root(self) -> ft.Control: ...

    def refresh(self) -> None: ...


@dataclass(frozen=True)
class Destination:
    key: str
    label: str
    icon: ft.IconData
    selected_icon: ft.IconData


DESTINATIONS = (
    Destination("inbox", "Inbox", ft.Icons.INBOX_OUTLINED, ft.Icons.INBOX),
    Destination("shared", "Shared", ft.Icons.HANDSHAKE_OUTLINED, ft.Icons.HANDSHAKE),
    Destination("records", "Records", ft.Icons.FOLDER_SHARED_OUTLINED, ft.Icons.FOLDER_SHARED),
    Destination("activity", "Activity", ft.Icons.HISTORY, ft.Icons.HISTORY),
    Destination("profiles", "Profiles", ft.Icons.PEOPLE_OUTLINE, ft.Icons.PEOPLE),
    Destination("settings", "Settings", ft.Icons.SETTINGS_OUTLINED, ft.Icons.SETTINGS),
)


class Shell:
    def __init__(self, page: ft.Page, owner: Owner, ctx: UiContext) -> None:
        from app.ui.screens import activity, inbox, profiles, records, settings, shared

        self.page = page
        self.ui = Ui(page=page, owner=owner, ctx=ctx, width=float(page.width or 390))
        self.ui.refresh_all = self.refresh_all
        self.ui.go = self.go
        self.screens: dict[str, Screen] = {
            "inbox": inbox.InboxScreen(self.ui), "shared": shared.SharedScreen(self.ui),
            "records": records.RecordsScreen(self.ui), "activity": activity.ActivityScreen(self.ui),
            "profiles": profiles.ProfilesScreen(self.ui), "settings": settings.SettingsScreen(self.ui),
        }
        self.current = "inbox"
        # Every screen stays in the tree and only the current one is visible: a subtree taken out and
        # put back after changing (another profile's cards) would be patched against what the browser
        # no longer holds.
        for key, screen in self.screens.items():
            screen.root.visible = key == "inbox"
        self.host = ft.Column([s.root for s in self.screens.values()], expand=True, spacing=0,
                              horizontal_alignment=ft.CrossAxisAlignment.STRETCH)
        self.title = ft.Text("", size=20, weight=ft.FontWeight.W_600)
        self.acting = ft.Text("", size=13)
        self.acting_icon = ft.Icon(ft.Icons.PERSON_OUTLINE, size=16)
        self.acting_chip = ft.Container(
            ft.Semantics(label="", button=True, exclude_semantics=True, on_tap=lambda _: self.open_switcher(),
                         content=ft.Row([self.acting_icon, self.acting, ft.Icon(ft.Icons.ARROW_DROP_DOWN, size=18)],
                                        spacing=4, tight=True)),
            padding=ft.Padding.only(left=10, right=4, top=6, bottom=6), border_radius=16,
            bgcolor=ft.Colors.SECONDARY_CONTAINER, on_click=lambda _: self.open_switcher(), visible=False)
        # the banner over every screen while the owner acts for someone else
        self.banner_title = ft.Text("", size=15, weight=ft.FontWeight.W_600)
        self.banner_detail = ft.Text("", size=13)
        self.banner_reason = ft.Text("", size=13, color=theme.WARN, weight=ft.FontWeight.W_600, visible=False)
        self.banner_label = ft.Semantics(label="", container=True, content=ft.Container(
            ft.Row([ft.Icon(ft.Icons.SUPERVISOR_ACCOUNT, color=ft.Colors.ON_TERTIARY_CONTAINER),
                    ft.Column([widgets.message(self.banner_title), widgets.message(self.banner_detail),
                               widgets.message(self.banner_reason)], spacing=2, expand=True),
                    button("Back to you", lambda _: self.ui.set_profile("me"), kind="outlined",
                           icon=ft.Icons.ARROW_BACK)],
                   spacing=12, vertical_alignment=ft.CrossAxisAlignment.CENTER),
            padding=ft.Padding.symmetric(horizontal=16, vertical=10)))
        self.banner = ft.Container(self.banner_label, bgcolor=ft.Colors.TERTIARY_CONTAINER, visible=False,
                                   border=ft.Border.only(bottom=ft.BorderSide(2, ft.Colors.TERTIARY)))
        self.body = ft.Column([self.banner, self.host], expand=True, spacing=0)
        self._told: list[Mapping[str, Any]] = []
        bar_items, rail_items = self._destinations(0)
        self.bar = ft.NavigationBar(destinations=bar_items, on_change=self._nav_changed,
                                    label_behavior=ft.NavigationBarLabelBehavior.ALWAYS_SHOW)
        self.rail = ft.NavigationRail(destinations=rail_items, on_change=self._nav_changed,
                                      label_type=ft.NavigationRailLabelType.ALL, min_width=88,
                                      group_alignment=-1.0)
        self.layout_narrow: bool | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._scheduled = False
        self._guard = threading.Lock()

    # building ------------------------------------------------------------------------------------
    def build(self) -> None:
        page = self.page
        theme.apply(page)
        page.appbar = ft.AppBar(title=self.title, actions=[self.acting_chip, ft.Container(width=12)],
                                bgcolor=ft.Colors.SURFACE_CONTAINER, center_title=False)
        self._chain_lifecycle()
        page.on_resize = self._resized
        self._lay_out(force=True)
        self.go("inbox", update=False)
        self._subscribe()
        page.update()

    def _destinations(self, pending: int) -> tuple[list[ft.NavigationBarDestination],
                                                    list[ft.NavigationRailDestination]]:
        bar, rail = [], []
        for d in DESTINATIONS:
            def icon(name: ft.IconData, d: Destination = d) -> ft.Control:
                badge = ft.Badge(label=str(pending)) if d.key == "inbox" and pending else None
                # the count is said by the Inbox screen itself; the destination's name stays "Inbox"
                return ft.Semantics(exclude_semantics=True, content=ft.Icon(name, badge=badge))
            bar.append(ft.NavigationBarDestination(icon=icon(d.icon), selected_icon=icon(d.selected_icon),
                                                   label=d.label))
            rail.append(ft.NavigationRailDestination(icon=icon(d.icon), selected_icon=icon(d.selected_icon),
                                                     label=d.label))
        return bar, rail

    def _lay_out(self, *, force: bool = False) -> None:
        narrow = self.ui.narrow
        if narrow == self.layout_narrow and not force:
            return
        self.layout_narrow = narrow
        page = self.page
        page.controls.clear()
        if narrow:
            page.navigation_bar = self.bar
            page.add(ft.SafeArea(self.body, expand=True))
        else:
            page.navigation_bar = None
            page.add(ft.Row([self.rail, ft.VerticalDivider(width=1), self.body], expand=True, spacing=0,
                            vertical_alignment=ft.CrossAxisAlignment.STRETCH))

    def _resized(self, e: ft.PageResizeEvent) -> None:
        self.ui.resize(float(e.width))
        self._lay_out()
        self.page.update()

    # navigation ----------------------------------------------------------------------------------
    def _nav_changed(self, e: ft.Event[Any]) -> None:
        index = int(e.control.selected_index or 0)
        self.go(DESTINATIONS[index].key)

    def go(self, key: str, *, update: bool = True) -> None:
        self.current = key
        index = next(i for i, d in enumerate(DESTINATIONS) if d.key == key)
        self.bar.selected_index = self.rail.selected_index = index
        screen = self.screens[key]
        self.title.value = screen.title
        for k, other in self.screens.items():
            other.root.visible = k == key
        self.refresh_all(update=update)

    def refresh_all(self, *, update: bool = True) -> None:
        """Re-read what the current screen shows, the Inbox count and who we act for."""
        pending = len(self.ui.owner.inbox())  # every profile's: the Inbox says how many are whose
        self.bar.destinations, self.rail.destinations = self._destinations(pending)
        profiles = self.ui.profiles()
        current = self.ui.current()
        self.acting_chip.visible = len(profiles) > 1
        who = "You" if self.ui.profile == "me" else str(current["name"])
        self.acting.value = who
        self.acting_icon.icon = ft.Icons.PERSON_OUTLINE if self.ui.profile == "me" else ft.Icons.SUPERVISOR_ACCOUNT
        semantics = self.acting_chip.content
        if isinstance(semantics, ft.Semantics):
            semantics.label = f"Switch profile, now {'you' if self.ui.profile == 'me' else who}"
        self._banner(current)
        if self.current != "inbox":
            self.screens["inbox"].refresh()  # keeps its own count line right for when we go back
        self.screens[self.current].refresh()
        if update:
            self.page.update()

    def _banner(self, current: Mapping[str, Any]) -> None:
        """"Acting for Mia", what the guardianship allows, and why the owner may not decide (ended)."""
        ui = self.ui
        self.banner.visible = ui.profile != "me"
        if ui.profile == "me":
            return
        acting = ui.owner.acting_for(ui.profile)
        name = str(current["name"])
        g = current.get("guardianship")
        role = {"guardian": "As guardian", "proxy": "On their behalf"}.get(str(acting.get("role")), "")
        self.banner_title.value = f"Acting for {name}"
        self.banner_detail.value = " · ".join(x for x in (role, guardianship_words(g) if g else "") if x)
        self.banner_reason.value = str(acting.get("reason") or "")
        self.banner_reason.visible = not acting.get("can_decide", True)
        self.banner_label.label = f"Acting for {name}"

    # the profile switcher ------------------------------------------------------------------------
    def open_switcher(self) -> None:
        """Whose records the app shows: the owner's own or a dependent's (reachable from every screen)."""
        ui = self.ui
        pending = ui.owner.inbox()
        rows: list[ft.Control] = []
        for p in ui.profiles():
            own = p["kind"] == "owner"
            who = "You" if own else str(p["name"])
            n = sum(1 for i in pending if i["kind"] == "access" and i["profile"] == p["id"])
            kind = "Your own records" if own else (
                "Someone you look after" if p["kind"] == "dependent" else "Someone you act for")
            detail = kind + (f" · {n} request{'s' if n != 1 else ''} waiting" if n else "")
            pid = str(p["id"])
            if pid == ui.profile:
                end: ft.Control = widgets.icon_line(ft.Icons.CHECK_CIRCLE, "Now", color=theme.GOOD,
                                                    weight=ft.FontWeight.W_600)
                end = ft.Container(end, width=72)
            else:
                end = button("Switch", lambda _, pid=pid: self._switch_to(pid), kind="tonal",
                             label=f"Switch to {'you' if own else who}")
            rows.append(ft.Container(ft.Row([
                ft.Icon(ft.Icons.PERSON if own else ft.Icons.SUPERVISOR_ACCOUNT, color=ft.Colors.PRIMARY),
                ft.Column([widgets.message(ft.Text(who, size=16, weight=ft.FontWeight.W_600)),
                           widgets.message(widgets.muted(detail, size=13))], spacing=0, expand=True),
                end], spacing=12, vertical_alignment=ft.CrossAxisAlignment.CENTER),
                padding=ft.Padding.symmetric(vertical=6)))
        dialog = ft.AlertDialog(
            modal=False, scrollable=True, title=ft.Text("Whose records?"), inset_padding=ui.dialog_inset(),
            content=ft.Column([widgets.muted("Inbox, Shared, Records and Activity show the records of the "
                                             "person you choose.", size=13), *rows], tight=True, spacing=4,
                              width=380),
            actions=[button("Manage profiles", lambda _: self._manage(), kind="text"),
                     button("Close", lambda _: ui.close_dialog(), kind="text")],
            actions_alignment=ft.MainAxisAlignment.END)
        ui.page.show_dialog(dialog)

    def _switch_to(self, pid: str) -> None:
        self.ui.close_dialog()
        self.ui.set_profile(pid)

    def _manage(self) -> None:
        self.ui.close_dialog()
        self.go("profiles")

    # live updates --------------------------------------------------------------------------------
    def _subscribe(self) -> None:
        if self._unsubscribe is None:
            self._unsubscribe = self.ui.owner.agent.events.subscribe(self._on_event)

    def _unsubscribe_now(self) -> None:
        unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()

    def _on_event(self, kind: str, payload: Mapping[str, Any]) -> None:
        """Called on any thread: only schedule a refresh on the page's loop, once per burst."""
        with self._guard:
            if kind == GUARDIANSHIP_ENDED:
                self._told.append(dict(payload))  # said once the refresh runs, on the page's loop
            if self._scheduled:
                return
            self._scheduled = True
        try:
            self.page.run_task(self._apply_events)
        except Exception:  # the session is going away (no connection, loop closed)
            with self._guard:
                self._scheduled = False
            log.debug("could not schedule a UI refresh for %s", kind, exc_info=True)

    async def _apply_events(self) -> None:
        await asyncio.sleep(0.1)  # let a burst of events land, then refresh once
        with self._guard:
            self._scheduled = False
            told, self._told = self._told, []
        try:
            self.refresh_all()
            for t in told:
                name = t.get("name") or "your dependent"
                self.ui.toast(f"Your guardianship for {name} has ended; {name} decides now. See Profiles.")
        except Exception:
            log.exception("refreshing the app after an event failed")

    def _chain_lifecycle(self) -> None:
        """Unsubscribe when the tab goes away or the session ends; subscribe again when it comes back."""
        page = self.page
        before = {name: getattr(page, name) for name in ("on_disconnect", "on_close", "on_connect")}

        def chained(name: str, ours: Callable[[], None]) -> Callable[[Any], None]:
            def handler(e: Any) -> None:
                ours()
                previous = before[name]
                if inspect.iscoroutinefunction(previous):
                    page.run_task(previous, e)
                elif previous is not None:
                    previous(e)
            return handler

        def reconnected() -> None:
            self._subscribe()
            self.refresh_all()

        page.on_disconnect = chained("on_disconnect", self._unsubscribe_now)
        page.on_close = chained("on_close", self._unsubscribe_now)
        page.on_connect = chained("on_connect", reconnected)


def build(page: ft.Page, owner: Owner, ctx: UiContext) -> None:
    """Build the whole app into ``page`` and keep it live with the agent's events."""
    Shell(page, owner, ctx).build()
