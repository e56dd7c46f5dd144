"""The app's frame: title, theme, navigation (a bar on phones, a rail on wide screens) and the screens.

``build(page, owner, ctx)`` is the one entry point; it is called once per window or browser tab.

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

from app.ui import theme
from app.ui.logos import LogoCache
from app.ui.widgets import Ui
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
        self.host = ft.Container(expand=True, alignment=ft.Alignment.TOP_CENTER)
        self.title = ft.Text("", size=20, weight=ft.FontWeight.W_600)
        self.acting = ft.Text("", size=13)
        self.acting_chip = ft.Container(
            ft.Semantics(label="", button=True, exclude_semantics=True, on_tap=lambda _: self.go("profiles"),
                         content=ft.Row([ft.Icon(ft.Icons.PERSON_OUTLINE, size=16), self.acting], spacing=4,
                                        tight=True)),
            padding=ft.Padding.symmetric(horizontal=10, vertical=6), border_radius=16,
            bgcolor=ft.Colors.SECONDARY_CONTAINER, on_click=lambda _: self.go("profiles"), visible=False)
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
            page.add(ft.SafeArea(self.host, expand=True))
        else:
            page.navigation_bar = None
            page.add(ft.Row([self.rail, ft.VerticalDivider(width=1), self.host], expand=True, spacing=0,
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
        self.host.content = screen.root
        self.refresh_all(update=update)

    def refresh_all(self, *, update: bool = True) -> None:
        """Re-read what the current screen shows, the Inbox count and who we act for."""
        pending = len(self.ui.owner.inbox())
        self.bar.destinations, self.rail.destinations = self._destinations(pending)
        profiles = self.ui.owner.profiles()
        self.acting_chip.visible = len(profiles) > 1
        name = self.ui.profile_name()
        self.acting.value = f"For {name}"
        semantics = self.acting_chip.content
        if isinstance(semantics, ft.Semantics):
            semantics.label = f"Acting for {name}. Change"
        if self.current != "inbox":
            self.screens["inbox"].refresh()  # keeps its own count line right for when we go back
        self.screens[self.current].refresh()
        if update:
            self.page.update()

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
        try:
            self.refresh_all()
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
