"""Profiles: the owner and the people they look after. Choose whom you act for; add a dependent with
an end date, categories kept out and the kinds of decision covered; narrow or end a guardianship;
a second guardian; hand a profile over to the dependent's own agent; take one over.

A guardianship can only be narrowed here, as in the core (docs/guardians.md): an earlier end, more
categories kept out, fewer kinds of decision.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import flet as ft

from app.ui import theme, widgets
from app.ui.screens.settings import write_private
from app.ui.widgets import Ui, button, card, heading, muted
from app.ui.words import (
    CATEGORIES,
    COVER_CHOICES,
    capitalize,
    category_codes,
    date_words,
    decided_words,
    excluded_categories,
    grantee_short,
    guardianship_words,
    notice_words,
    plain_error,
    records_words,
)
from core.errors import OwnerError

MIN_PASSPHRASE = 8


def parse_day(text: str) -> int:
    """``2030-01-31`` (or 31/01/2030) as the end of that day, UTC; ValueError when it is not a date."""
    return parse_day_start(text) + 86399


def parse_day_start(text: str) -> int:
    """``2030-01-31`` (or 31/01/2030) as that day's start, UTC: a guardianship that ends on the 18th
    birthday ends as that day begins (as ``consent-agent profiles add --until`` reads it)."""
    text = text.strip()
    for fmt in ("%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y"):
        try:
            day = datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
        return int(day.timestamp())
    raise ValueError(text)


def utc_day(ts: float) -> str:
    return date_words(ts, UTC)


def category_boxes() -> dict[str, tuple[ft.Control, ft.Checkbox]]:
    return {c.key: widgets.checkbox(c.label) for c in CATEGORIES}


def cover_boxes(value: bool = True) -> dict[str, tuple[ft.Control, ft.Checkbox]]:
    return {k: widgets.checkbox(text, value) for k, text in COVER_CHOICES}


def section(text: str) -> ft.Control:
    return ft.Container(ft.Text(text, weight=ft.FontWeight.W_600), padding=ft.Padding.only(top=4))


class ProfilesScreen:
    key = "profiles"
    title = "Profiles"

    def __init__(self, ui: Ui) -> None:
        self.ui = ui
        self.panel: DependentPanel | None = None
        self.files = ft.FilePicker()  # web: hand-over bundles offered as a download
        self.notices = ft.Column(spacing=theme.GAP)
        self.items = ft.Column(spacing=theme.GAP)
        # add a dependent
        self.name = widgets.text_field("Their name", max_length=80)
        self.until = widgets.text_field("Guardianship ends on (optional)", hint_text="YYYY-MM-DD",
                                        helper="For example the day they turn 18. Leave empty for no end.")
        self.exclude = category_boxes()
        self.covers = cover_boxes()
        self.covers_error = ft.Text("", size=13, color=theme.DANGER, visible=False)
        add = card(
            heading("Add someone you look after", size=17),
            muted("A child or another person whose records you manage as their guardian. Requests for their "
                  "records are kept apart from yours."),
            self.name, self.until,
            section("Keep out of your reach"),
            muted("Care they may keep to themselves. Requests for records marked like this never reach you, and "
                  "you never see those records.", size=13),
            *(row for row, _ in self.exclude.values()),
            section("You may decide on"),
            *(row for row, _ in self.covers.values()),
            widgets.message(self.covers_error),
            widgets.actions(button("Add dependent", self._add, icon=ft.Icons.PERSON_ADD)))
        # take a profile over (on the dependent's own agent)
        self.bundle_path = widgets.text_field("The hand-over file", hint_text="/path/to/mia.handover.json")
        self.bundle_pass = widgets.text_field("Its passphrase", password=True)
        self.import_result = ft.Text("", size=13, color=theme.GOOD, visible=False)
        self.import_busy = ft.ProgressRing(width=20, height=20, visible=False)
        take_over = card(
            heading("Take over your records from a guardian", size=17),
            muted("If a parent or guardian managed your records on their agent, they give you a hand-over file "
                  "and, separately, its passphrase. Your records, and the sharing made for you, move here."),
            self.bundle_path, self.bundle_pass,
            widgets.actions(self.import_busy, button("Take over", self._import, icon=ft.Icons.MOVE_DOWN,
                                                     label="Take over records from a hand-over file")),
            widgets.message(self.import_result))
        # the owner's own name, as their decisions for others show it
        self.my_name = widgets.text_field("Your name", max_length=80)
        mine = card(
            heading("Your name", size=17),
            muted("Shown on the decisions you take for someone you look after.", size=13),
            self.my_name,
            widgets.actions(button("Save name", self._rename_me, kind="outlined", label="Save your name")))
        intro = muted("Choose whom you act for. Inbox, Shared, Records and Activity show that person's things.")
        self.listing = ft.Column([intro, self.notices, self.items, add, mine, take_over], spacing=theme.GAP,
                                 horizontal_alignment=ft.CrossAxisAlignment.STRETCH)
        self.host = ft.Column([self.listing], spacing=theme.GAP, horizontal_alignment=ft.CrossAxisAlignment.STRETCH)
        self.root, _ = ui.screen(self.host)
        self._named = False

    # the list ------------------------------------------------------------------------------------------
    def refresh(self) -> None:
        ui = self.ui
        ui.current()
        if self.panel is not None and ui.owner.agent.state.get("profiles", "id", self.panel.pid) is not None:
            self.host.controls = [self.panel.root]
            self.panel.refresh()
            return
        self.panel = None
        self.host.controls = [self.listing]
        now = ui.now()
        profiles = ui.owner.profiles()
        pending = ui.owner.inbox()
        if not self._named:
            self.my_name.value = next((str(p["name"]) for p in profiles if p["id"] == "me"), "")
            self._named = True
        self.notices.controls = [self._notice(n) for n in ui.owner.notices()]
        self.items.controls = [self._row(p, now, pending) for p in profiles]

    def _notice(self, notice: dict[str, Any]) -> ft.Control:
        ui = self.ui
        names = ui.names()
        pid = str(notice.get("profile"))
        ended = notice.get("kind") == "guardianship_ended"
        shares = ui.owner.shares_to_review(pid)
        lines: list[ft.Control] = [
            widgets.icon_line(ft.Icons.NOTIFICATION_IMPORTANT_OUTLINED, notice_words(notice),
                              color=theme.WARN, weight=ft.FontWeight.W_600)]
        if ended and shares:
            whom = str(notice.get("name"))
            lines.append(muted(f"What you shared for {whom} keeps working until {whom} keeps or stops it, at most "
                               "90 days. They decide on their own agent after the hand-over:", size=13))
        elif shares:
            lines.append(muted("Keep what you want to go on; stop the rest. Unreviewed, a sharing stops on the day "
                               "shown.", size=13))
        for s in shares:
            lines.append(self._review_line(s, names, mine=not ended))
        if ended:
            lines.append(widgets.actions(button(
                f"Hand over to {notice.get('name')}", lambda _: self.open(pid), kind="tonal",
                icon=ft.Icons.MOVE_UP, label=f"Hand over {notice.get('name')}'s profile")))
        return card(*lines)

    def _review_line(self, s: dict[str, Any], names: Any, *, mine: bool) -> ft.Control:
        ui = self.ui
        who = grantee_short(s["grantee"], names)
        what = records_words(s["permissions"], names)
        due = f" until {date_words(s['review_due'])}" if s.get("review_due") else ""
        by = decided_words(s.get("decided_by"), s["profile"], names)
        rows: list[ft.Control] = [
            widgets.message(widgets.icon_line(ft.Icons.HANDSHAKE_OUTLINED, f"{capitalize(what)} with {who}",
                                              color=ft.Colors.ON_SURFACE, weight=ft.FontWeight.W_600)),
            ft.Container(widgets.message(muted(" · ".join(x for x in (by, f"works{due}") if x), size=13)),
                         padding=ft.Padding.only(left=26))]
        if mine:
            def keep(_: Any) -> None:
                if ui.attempt(lambda: ui.owner.keep_share(s["id"]), done=f"You keep sharing {what} with {who}.") \
                        is not None:
                    ui.refresh_all()

            def stop() -> None:
                if ui.attempt(lambda: ui.owner.revoke(s["id"]), done=f"You stopped sharing {what} with {who}.") \
                        is not None:
                    ui.refresh_all()

            rows.append(ft.Container(widgets.actions(
                button("Keep", keep, kind="tonal", label=f"Keep sharing {what} with {who}"),
                button("Stop", lambda _: ui.confirm(title=f"Stop sharing {what} with {who}?",
                                                    body="They lose access at once.", yes="Stop sharing",
                                                    on_yes=stop),
                       kind="outlined", label=f"Stop sharing {what} with {who}")), padding=ft.Padding.only(left=26)))
        return ft.Column(rows, spacing=4)

    def _row(self, p: dict[str, Any], now: float, pending: list[dict[str, Any]]) -> ft.Control:
        ui = self.ui
        current = p["id"] == ui.profile
        name = str(p["name"])
        pid = str(p["id"])
        g = p.get("guardianship")
        away = p.get("status") == "handed_over"
        if p["kind"] == "owner":
            kind = "You"
        elif p["kind"] == "dependent":
            kind = "Someone you look after"
        else:
            kind = "Someone you act for"
        if p.get("until") and not g:
            kind += f" · {'ended' if p['until'] <= now else 'until'} {utc_day(p['until'])}"
        n = sum(1 for i in pending if i["profile"] == pid and i["kind"] == "access")
        details: list[ft.Control] = [
            ft.Row([ft.Icon(ft.Icons.PERSON if p["kind"] == "owner" else ft.Icons.SUPERVISOR_ACCOUNT,
                            color=ft.Colors.PRIMARY),
                    ft.Text(name, size=17, weight=ft.FontWeight.W_600, expand=True)],
                   vertical_alignment=ft.CrossAxisAlignment.START),
            muted(kind, size=13),
        ]
        if away:
            when = f" on {date_words(p['handed_over_at'])}" if p.get("handed_over_at") else ""
            details.append(widgets.icon_line(ft.Icons.MOVE_UP, f"Handed over{when} to their own agent at "
                                             f"{p.get('moved_to')}. It is decided there now."))
            return card(*details, muted_bg=True)
        if g:
            details.append(widgets.icon_line(ft.Icons.SHIELD_OUTLINED, guardianship_words(g),
                                             color=theme.WARN if g.get("status") == "ended" else None))
        if n:
            details.append(ft.Text(f"{n} request{'s' if n != 1 else ''} waiting", size=13))
        buttons: list[ft.Control] = []
        if current:
            details.append(widgets.icon_line(ft.Icons.CHECK_CIRCLE, "You are acting for this profile",
                                             color=theme.GOOD, weight=ft.FontWeight.W_600))
        else:
            buttons.append(button(f"Act for {name}" if p["kind"] != "owner" else "Act for yourself",
                                  lambda _: self._switch(pid, name), kind="tonal",
                                  label=f"Act for {name}" if p["kind"] != "owner" else "Act for yourself"))
        if g:
            buttons.append(button("Guardianship", lambda _: self.open(pid), kind="outlined", icon=ft.Icons.TUNE,
                                  label=f"Guardianship settings for {name}"))
        if buttons:
            details.append(widgets.actions(*buttons))
        return card(*details)

    def _switch(self, pid: str, name: str) -> None:
        self.ui.set_profile(pid)
        self.ui.toast("You are acting for yourself again." if pid == "me" else f"You are now acting for {name}.")

    def open(self, pid: str) -> None:
        """Show one dependent's guardianship: settings, the other guardian, hand-over, end."""
        self.panel = DependentPanel(self.ui, pid, on_back=self.close, files=self.files)
        self.ui.go("profiles")

    def close(self) -> None:
        self.panel = None
        self.ui.refresh_all()

    # adding, naming, taking over ---------------------------------------------------------------------
    def _add(self, _: Any) -> None:
        ui = self.ui
        self.name.error = self.until.error = None
        self.covers_error.visible = False
        name = (self.name.value or "").strip()
        until: int | None = None
        bad = False
        if not name:
            self.name.error, bad = "Enter their name.", True
        if (self.until.value or "").strip():
            try:
                until = parse_day_start(self.until.value or "")
            except ValueError:
                self.until.error, bad = "Enter a date like 2030-01-31, or leave it empty.", True
            else:
                if until <= ui.now():
                    self.until.error, bad = "That date is already past.", True
        covers = [k for k, (_, box) in self.covers.items() if box.value]
        if not covers:
            self.covers_error.value, self.covers_error.visible, bad = "Tick at least one kind of decision.", True, True
        if bad:
            ui.page.update()
            return
        exclude = category_codes(k for k, (_, box) in self.exclude.items() if box.value)
        try:
            prof = ui.owner.add_profile(name, dependent=True, until=until, exclude=exclude,
                                        covers=covers if len(covers) < len(COVER_CHOICES) else None)
        except OwnerError as exc:
            self.name.error = plain_error(str(exc))
            ui.page.update()
            return
        self.name.value = self.until.value = ""
        for _, box in self.exclude.values():
            box.value = False
        for _, box in self.covers.values():
            box.value = True
        ui.toast(f"Added {prof['name']}. Choose “Act for {prof['name']}” to see their requests.")
        ui.refresh_all()

    def _rename_me(self, _: Any) -> None:
        ui = self.ui
        self.my_name.error = None
        done = None
        try:
            done = ui.owner.rename_profile("me", self.my_name.value or "")
        except OwnerError as exc:
            self.my_name.error = plain_error(str(exc))
        if done is not None:
            ui.toast(f"Your name is now {done['name']}.")
            ui.refresh_all()
        else:
            ui.page.update()

    async def _import(self, _: Any) -> None:
        ui = self.ui
        self.bundle_path.error = self.bundle_pass.error = None
        self.import_result.visible = False
        raw = (self.bundle_path.value or "").strip()
        if not raw:
            self.bundle_path.error = "Enter where the hand-over file is on this device."
        if not self.bundle_pass.value:
            self.bundle_pass.error = "Enter the passphrase you were given."
        if self.bundle_path.error or self.bundle_pass.error:
            ui.page.update()
            return
        self.import_busy.visible = True
        ui.page.update()
        try:
            text = await asyncio.to_thread(Path(raw).expanduser().read_text, encoding="utf-8")
            done = await asyncio.to_thread(ui.owner.handover_import, text, passphrase=self.bundle_pass.value or "")
        except OSError as exc:
            self.bundle_path.error = f"Could not read that file: {exc.strerror or exc}"
        except (OwnerError, UnicodeDecodeError) as exc:
            self.bundle_pass.error = plain_error(str(exc))
        else:
            self.bundle_path.value = self.bundle_pass.value = ""
            review = len(done.get("shares_to_review") or ())
            src = (done.get("from") or {}).get("issuer") or "your guardian's agent"
            records, shares = int(done.get("resources") or 0), int(done.get("shares") or 0)
            self.import_result.value = (
                f"Your records came over from {src}: {records} record{'s' if records != 1 else ''} and {shares} "
                f"sharing{'s' if shares != 1 else ''}. Each lab or clinic connects again: approve it in the Inbox "
                "when it asks."
                + (f" {review} sharing{'s' if review != 1 else ''} made for you wait for your review, above."
                   if review else ""))
            self.import_result.visible = True
            ui.toast("Your records are here now.")
            ui.refresh_all()
        finally:
            self.import_busy.visible = False
            ui.page.update()


class DependentPanel:
    """One dependent's guardianship, managed from the Profiles screen."""

    def __init__(self, ui: Ui, pid: str, *, on_back: Callable[[], None], files: ft.FilePicker) -> None:
        self.ui = ui
        self.pid = pid
        self.files = files
        self.bundle: tuple[str, bytes] | None = None
        self.title = ft.Text("", size=20, weight=ft.FontWeight.W_600)
        self.status = ft.Text("", size=14)
        self.summary = ft.Text("", size=13, color=theme.MUTED)
        self.act = ft.Container()
        # narrowing the guardianship
        self.end_now = muted("", size=13)
        self.until = widgets.text_field("End earlier, on (optional)", hint_text="YYYY-MM-DD")
        self.exclude = category_boxes()
        self.covers = cover_boxes()
        self.change_error = ft.Text("", size=13, color=theme.DANGER, visible=False)
        self._synced: tuple[Any, ...] | None = None
        self.settings = card(
            heading("Guardianship", size=17),
            muted("You can narrow it, never widen it: an earlier end, more kept out, fewer kinds of decision. "
                  "Widening would need their agreement, which this app cannot check.", size=13),
            self.end_now, self.until,
            section("Keep out of your reach"),
            muted("Greyed: kept out already. Tick more to keep them out too.", size=13),
            *(row for row, _ in self.exclude.values()),
            section("You may decide on"), *(row for row, _ in self.covers.values()),
            widgets.message(self.change_error),
            widgets.actions(button("Save changes", self._change, label="Save guardianship changes")))
        # the other guardian
        self.guardians = ft.Column(spacing=4)
        self.g_name = widgets.text_field("Their name", max_length=80)
        self.g_agent = widgets.text_field("Their agent id", helper="43 characters: consent-agent status shows it on "
                                                                   "their device.")
        self.g_issuer = widgets.text_field("Their agent's address (optional)", hint_text="https://…")
        self.require = widgets.radio_group([("one", "Either guardian's yes is enough"),
                                            ("both", "Both guardians must say yes")], "one")
        self.require_host = ft.Column([section("Who must agree"), self.require,
                                       widgets.actions(button("Save", self._require, kind="outlined",
                                                              label="Save who must agree"))], spacing=4)
        self.add_guardian_host = ft.Column([section("Add the other guardian"), self.g_name, self.g_agent,
                                            self.g_issuer,
                                            widgets.actions(button("Add guardian", self._add_guardian,
                                                                   kind="outlined", icon=ft.Icons.PERSON_ADD,
                                                                   label="Add the other guardian"))],
                                           spacing=8, horizontal_alignment=ft.CrossAxisAlignment.STRETCH)
        self.co = card(
            heading("The other guardian", size=17),
            muted("The other parent or guardian decides on their own agent; their decisions arrive signed by it.",
                  size=13),
            self.guardians, self.require_host, self.add_guardian_host)
        # renaming
        self.new_name = widgets.text_field("Name", max_length=80)
        self.rename = card(heading("Their name", size=17), self.new_name,
                           widgets.actions(button("Rename", self._rename, kind="outlined",
                                                  label="Rename this profile")))
        # hand-over
        self.to = widgets.text_field("Address of their own agent", hint_text="https://relay.example/…",
                                     helper="What consent-agent status shows on their device.")
        self.pass1 = widgets.text_field("Passphrase for the file", password=True)
        self.pass2 = widgets.text_field("The same passphrase again", password=True)
        self.hand_busy = ft.ProgressRing(width=20, height=20, visible=False)
        self.hand_title = ft.Text("", size=17, weight=ft.FontWeight.W_600)
        self.hand_form = ft.Column([
            muted("When they are ready to decide for themselves, their records move to their own agent: the labs "
                  "and clinics, the sharing you made (which they review), the requests and the activity. This "
                  "agent then stops answering for them and sends labs and clinics to the new address.", size=13),
            self.to, self.pass1, self.pass2,
            widgets.actions(self.hand_busy, button("Hand over", self._hand_over, icon=ft.Icons.MOVE_UP,
                                                   label="Hand over this profile"))],
            spacing=8, horizontal_alignment=ft.CrossAxisAlignment.STRETCH)
        self.hand_done = ft.Column(spacing=8, visible=False)
        self.handover = card(ft.Semantics(header=True, content=self.hand_title), self.hand_form, self.hand_done)
        # ending
        self.end = card(
            heading("End the guardianship now", size=17),
            muted("You can no longer decide for them. Requests waiting for you go to them; what you shared keeps "
                  "working until they keep or stop it (at most 90 days).", size=13),
            widgets.actions(button("End guardianship", self._end, kind="danger", icon=ft.Icons.STOP_CIRCLE_OUTLINED,
                                   label="End the guardianship now")))
        self.review = ft.Column(spacing=8)
        back = ft.Row([button("Back to profiles", lambda _: on_back(), kind="text", icon=ft.Icons.ARROW_BACK)])
        self.root = ft.Column([back, self.title, widgets.message(self.status), widgets.message(self.summary),
                               self.act, self.review, self.settings, self.co, self.rename, self.handover, self.end],
                              spacing=theme.GAP, horizontal_alignment=ft.CrossAxisAlignment.STRETCH)

    def profile(self) -> dict[str, Any]:
        return self.ui.owner.profile(self.pid)

    def refresh(self) -> None:
        ui = self.ui
        p = self.profile()
        name = str(p["name"])
        g = p.get("guardianship") or {}
        away = p.get("status") == "handed_over"
        live = not away and g.get("status") in ("active", "not_started")
        self.title.value = name
        if away:
            self.status.value = f"Handed over to their own agent at {p.get('moved_to')}. It is decided there now."
        elif g.get("status") == "active":
            self.status.value = f"You decide for {name} as guardian."
        else:
            self.status.value = str(g.get("message") or "")
        self.summary.value = guardianship_words(g) if g and not away else ""
        self.summary.visible = bool(self.summary.value)
        self.act.content = None
        if live and ui.profile != self.pid:
            self.act.content = widgets.actions(button(f"Act for {name}", lambda _: ui.set_profile(self.pid),
                                                      kind="tonal", label=f"Act for {name}"))
        for c in (self.settings, self.co, self.rename, self.end):
            c.visible = live
        self.handover.visible = not away or self.bundle is not None
        self.hand_title.value = f"Hand over to {name}"
        self.hand_form.visible = not away
        self._review(p, g)
        if live:
            self._sync(p, g)
            self._guardians(g)

    def _review(self, p: dict[str, Any], g: dict[str, Any]) -> None:
        """After the end: what the guardian shared, waiting for the dependent's review."""
        ui = self.ui
        shares = p.get("shares_to_review") or []
        if g.get("status") != "ended" or not shares:
            self.review.controls = []
            return
        names = ui.names()
        name = str(p["name"])
        lines: list[ft.Control] = [heading(f"Waiting for {name}'s review", size=17),
                                   muted(f"What you shared keeps working until {name} keeps or stops it on their own "
                                         "agent after the hand-over, at most 90 days.", size=13)]
        for s in shares:
            who = grantee_short(s["grantee"], names)
            due = f" until {date_words(s['review_due'])}" if s.get("review_due") else ""
            lines.append(widgets.icon_line(ft.Icons.HANDSHAKE_OUTLINED,
                                           f"{capitalize(records_words(s['permissions'], names))} with {who}: "
                                           f"works{due}"))
        self.review.controls = [card(*lines)]

    def _sync(self, p: dict[str, Any], g: dict[str, Any]) -> None:
        """Set the form from the guardianship, only when it changed (typing survives live refreshes)."""
        codes = [x["code"] for x in g.get("exclude") or ()]
        covers = list(g.get("covers") or ())
        key = (p["name"], g.get("ends_at"), tuple(codes), tuple(covers), g.get("require"),
               tuple(x["id"] for x in g.get("guardians") or ()))
        if key == self._synced:
            return
        self._synced = key
        end = g.get("ends_at")
        self.end_now.value = (f"Ends on {utc_day(end)}." if end else "No end date yet.")
        self.until.value = ""
        done = excluded_categories(codes)
        for k, (_, box) in self.exclude.items():
            box.value = k in done
            box.disabled = k in done
        for k, (_, box) in self.covers.items():
            box.value = k in covers
            box.disabled = k not in covers
        self.require.value = str(g.get("require") or "one")
        self.new_name.value = str(p["name"])

    def _guardians(self, g: dict[str, Any]) -> None:
        rows: list[ft.Control] = []
        others = [x for x in g.get("guardians") or () if x["id"] != "me"]
        for x in g.get("guardians") or ():
            if x["id"] == "me":
                rows.append(widgets.icon_line(ft.Icons.PERSON, f"You ({x.get('name')}), on this agent"))
                continue
            text = f"{x.get('name')}, on their agent {str(x.get('agent_id'))[:12]}…"
            gid, gname = str(x["id"]), str(x.get("name"))
            rows.append(ft.Row([ft.Icon(ft.Icons.PERSON_OUTLINE, size=18, color=theme.MUTED),
                                ft.Text(text, size=14, expand=True),
                                button("Remove", lambda _, gid=gid, gname=gname: self._remove_guardian(gid, gname),
                                       kind="text", label=f"Remove {gname} as guardian")],
                               vertical_alignment=ft.CrossAxisAlignment.CENTER))
        self.guardians.controls = rows
        self.require_host.visible = bool(others)
        self.add_guardian_host.visible = not others

    # actions ---------------------------------------------------------------------------------------------
    def _change(self, _: Any) -> None:
        ui = self.ui
        self.until.error = None
        self.change_error.visible = False
        until: int | None = None
        if (self.until.value or "").strip():
            try:
                until = parse_day_start(self.until.value or "")
            except ValueError:
                self.until.error = "Enter a date like 2030-01-31, or leave it empty."
                ui.page.update()
                return
        g = self.profile().get("guardianship") or {}
        covered = list(g.get("covers") or ())
        exclude = category_codes(k for k, (_, box) in self.exclude.items() if box.value and not box.disabled)
        covers = [k for k, (_, box) in self.covers.items() if box.value]
        if not covers:
            self.change_error.value = "Keep at least one kind of decision, or end the guardianship instead."
            self.change_error.visible = True
            ui.page.update()
            return
        fewer = covers if set(covers) != set(covered) else None
        if until is None and not exclude and fewer is None:
            self.change_error.value, self.change_error.visible = "Nothing to change yet.", True
            ui.page.update()
            return
        name = str(self.profile()["name"])

        def go() -> None:
            if ui.attempt(lambda: ui.owner.update_guardianship(self.pid, until=until, exclude=exclude or None,
                                                               covers=fewer),
                          done=f"The guardianship for {name} is narrowed.") is not None:
                ui.refresh_all()

        ui.confirm(title=f"Narrow the guardianship for {name}?",
                   body="You cannot undo this from here: a guardianship can only be narrowed.",
                   yes="Narrow it", on_yes=go, danger=False)

    def _require(self, _: Any) -> None:
        ui = self.ui
        if ui.attempt(lambda: ui.owner.update_guardianship(self.pid, require=self.require.value or "one"),
                      done="Saved who must agree.") is not None:
            ui.refresh_all()

    def _add_guardian(self, _: Any) -> None:
        ui = self.ui
        self.g_name.error = self.g_agent.error = self.g_issuer.error = None
        name, agent_id = (self.g_name.value or "").strip(), (self.g_agent.value or "").strip()
        issuer = (self.g_issuer.value or "").strip() or None
        if not name:
            self.g_name.error = "Enter their name."
        if len(agent_id) != 43:
            self.g_agent.error = "An agent id has 43 letters, digits, - and _."
        if self.g_name.error or self.g_agent.error:
            ui.page.update()
            return
        try:
            ui.owner.add_guardian(self.pid, name=name, agent_id=agent_id, issuer=issuer)
        except OwnerError as exc:
            text = plain_error(str(exc))
            if "agent" in str(exc) and "https" in str(exc):
                self.g_issuer.error = text
            else:
                self.g_agent.error = text
            ui.page.update()
            return
        self.g_name.value = self.g_agent.value = self.g_issuer.value = ""
        ui.toast(f"{name} is the other guardian now.")
        ui.refresh_all()

    def _remove_guardian(self, gid: str, gname: str) -> None:
        ui = self.ui

        def go() -> None:
            if ui.attempt(lambda: ui.owner.remove_guardian(self.pid, gid), done=f"{gname} is no longer a guardian.") \
                    is not None:
                ui.refresh_all()

        ui.confirm(title=f"Remove {gname} as guardian?",
                   body="Their signed decisions no longer count here, and your yes alone is enough again.",
                   yes="Remove", on_yes=go)

    def _rename(self, _: Any) -> None:
        ui = self.ui
        self.new_name.error = None
        try:
            done = ui.owner.rename_profile(self.pid, self.new_name.value or "")
        except OwnerError as exc:
            self.new_name.error = plain_error(str(exc))
            ui.page.update()
            return
        ui.toast(f"The profile is now called {done['name']}.")
        ui.refresh_all()

    def _end(self, _: Any) -> None:
        ui = self.ui
        name = str(self.profile()["name"])

        def go() -> None:
            if ui.attempt(lambda: ui.owner.end_guardianship(self.pid),
                          done=f"The guardianship for {name} has ended; {name} decides now.") is not None:
                ui.refresh_all()

        ui.confirm(title=f"End the guardianship for {name} now?",
                   body=f"You can no longer decide for {name}, and you cannot undo this. What you shared keeps "
                        f"working until {name} keeps or stops it.", yes="End it now", on_yes=go)

    def _hand_over(self, _: Any) -> None:
        ui = self.ui
        self.to.error = self.pass1.error = self.pass2.error = None
        to = (self.to.value or "").strip()
        p1, p2 = self.pass1.value or "", self.pass2.value or ""
        if not to.startswith(("https://", "http://")):
            self.to.error = "Enter their agent's address, starting with https://"
        if len(p1) < MIN_PASSPHRASE:
            self.pass1.error = f"Use at least {MIN_PASSPHRASE} characters; a few words work well."
        elif p1 != p2:
            self.pass2.error = "The two passphrases differ."
        if self.to.error or self.pass1.error or self.pass2.error:
            ui.page.update()
            return
        name = str(self.profile()["name"])
        ui.confirm(title=f"Hand {name}'s profile over?",
                   body=f"This agent stops answering for {name} at once: labs and clinics are sent to {to}, and "
                        f"what you shared stops here. {name} takes over with the file and the passphrase.",
                   yes="Hand over", on_yes=lambda: ui.page.run_task(self._export, to, p1, name), danger=False)

    async def _export(self, to: str, passphrase: str, name: str) -> None:
        ui = self.ui
        self.hand_busy.visible = True
        ui.page.update()
        try:
            done = await asyncio.to_thread(ui.owner.handover_export, self.pid, to=to, passphrase=passphrase)
        except OwnerError as exc:
            self.hand_busy.visible = False
            ui.toast(plain_error(str(exc)), error=True)
            ui.page.update()
            return
        data = str(done["bundle"]).encode("utf-8")
        file_name = f"{self.pid}.handover.json"
        self.bundle = (file_name, data)
        try:
            path: Path | None = await asyncio.to_thread(write_private, Path(ui.ctx.data_dir) / "handovers" /
                                                        file_name, data)
        except OSError as exc:
            path = None
            ui.toast(f"Could not save the file: {exc.strerror or exc}. Download it instead.", error=True)
        self.pass1.value = self.pass2.value = ""
        self.hand_busy.visible = False
        lines: list[ft.Control] = [widgets.icon_line(ft.Icons.CHECK_CIRCLE, f"{name}'s profile is handed over.",
                                                     color=theme.GOOD, weight=ft.FontWeight.W_600)]
        if path is not None:
            lines.append(ft.Text(f"The file: {path}", size=14))
        lines += [muted(f"Give {name} the file, and the passphrase separately (say it, or write it down). On "
                        f"{name}'s agent: Profiles, then Take over, or", size=13),
                  ft.Text(f"consent-agent profiles import {path or file_name}", size=13, font_family="monospace"),
                  muted(f"Then {name} approves each lab or clinic as it connects again there, and keeps or stops "
                        "what you shared.", size=13)]
        lines = [widgets.message(line) if isinstance(line, ft.Text) else line for line in lines]
        if ui.page.web:
            lines.append(widgets.actions(button("Download the file", self._download, kind="outlined",
                                                icon=ft.Icons.DOWNLOAD, label=f"Download {name}'s hand-over file")))
        self.hand_done.controls = lines
        self.hand_done.visible = True
        ui.toast(f"{name}'s profile is handed over." + (f" Saved to {path}" if path else ""))
        if ui.profile == self.pid:
            ui.profile = "me"
        ui.refresh_all()

    async def _download(self, _: Any) -> None:
        if self.bundle is None:
            return
        file_name, data = self.bundle
        await self.files.save_file(file_name=file_name, src_bytes=data)
