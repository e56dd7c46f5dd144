"""Shared: who may see what, until when; stop sharing; share ahead of time."""

from __future__ import annotations

from typing import Any

import flet as ft

from app.ui import theme, widgets
from app.ui.widgets import Ui, button, card, icon_line, muted
from app.ui.words import (
    DEFAULT_LIFETIME,
    LIFETIME_CHOICES,
    Names,
    capitalize,
    date_words,
    decided_words,
    grantee_short,
    grantee_words,
    lifetime_for,
    lifetime_words,
    origin_words,
    permissions_words,
    plain_error,
    records_words,
    scope_choice_label,
)
from core.errors import OwnerError

KINDS = (
    ("email", "A person, by e-mail"),
    ("person", "A person, by their account"),
    ("class", "Anyone with a certain role"),
    ("client", "An app"),
)


class SharedScreen:
    key = "shared"
    title = "Shared"

    def __init__(self, ui: Ui) -> None:
        self.ui = ui
        self.show_ended = ft.Switch(label="Show sharing that has ended", value=False,
                                    on_change=lambda _: self.ui.refresh_all())
        self.intro = muted("")
        self.items = ft.Column(spacing=theme.GAP)
        self.refusals = ft.Column(spacing=theme.GAP)
        self.acting: dict[str, Any] = {}
        self.several = False
        top = ft.Row([button("Share ahead of time", lambda _: self.open_form(), icon=ft.Icons.ADD, kind="tonal")],
                     wrap=True)
        self.root, _ = ui.screen(self.intro, top, self.items, self.refusals, self.show_ended)

    def refresh(self) -> None:
        ui = self.ui
        names = ui.names()
        now = ui.now()
        ui.current()  # back to the owner's own profile if the one acted for is gone
        every = ui.owner.shares(include_inactive=True, profile=ui.profile)
        allows = [s for s in every if s.get("effect", "allow") == "allow" and (s["active"] or self.show_ended.value)]
        denies = [s for s in every if s.get("effect") == "deny" and s["active"]]
        active = sum(1 for s in allows if s["active"])
        whose = ui.whose()
        self.acting = ui.owner.acting_for(ui.profile)
        self.several = len(ui.profiles()) > 1
        self.intro.value = (f"{active} {'people or apps have' if active != 1 else 'person or app has'} access to "
                            f"{whose} records." if active else f"Nobody has access to {whose} records right now.")
        self.items.controls = [self._share_card(s, names, now) for s in reversed(allows)] or [
            widgets.empty(ft.Icons.HANDSHAKE_OUTLINED, f"{capitalize(whose)} records are not shared",
                          "When you approve a request, or share ahead of time, it appears here.")]
        self.refusals.controls = ([widgets.heading("You always say no to", size=17)]
                                  + [self._deny_card(s, names) for s in denies]) if denies else []

    def _share_card(self, s: dict[str, Any], names: Names, now: float) -> ft.Control:
        who = grantee_words(s["grantee"], names)
        short = grantee_short(s["grantee"], names)
        what = records_words(s["permissions"], names)
        lines: list[ft.Control] = [
            ft.Text(capitalize(who), size=17, weight=ft.FontWeight.W_600),
            icon_line(ft.Icons.FOLDER_OPEN, f"May {permissions_words(s['permissions'], names)}",
                      color=ft.Colors.ON_SURFACE, size=15),
            icon_line(ft.Icons.SCHEDULE, capitalize(lifetime_words(s, now))),
            icon_line(ft.Icons.HISTORY_EDU, capitalize(origin_words(s))),
        ]
        if s.get("client_id") and s["grantee"].get("kind") != "client":
            lines.append(icon_line(ft.Icons.APPS, f"Only through {names.client(s['client_id'])}"))
        if s.get("purpose"):
            lines.append(icon_line(ft.Icons.CHAT_BUBBLE_OUTLINE, f"Why: {s['purpose']}"))
        if self.several or s["profile"] != "me":
            lines.append(icon_line(ft.Icons.FOLDER_SHARED_OUTLINED, capitalize(f"{names.whose(s['profile'])} records")))
        decided = decided_words(s.get("decided_by"), s["profile"], names)
        if decided and (self.several or s["profile"] != "me" or not decided.startswith("You decided")):
            lines.append(icon_line(ft.Icons.HOW_TO_REG, decided))
        may_decide = bool(self.acting.get("can_decide", True))
        buttons: list[ft.Control] = []
        if s.get("needs_review") and s["active"]:
            due = f" until {date_words(s['review_due'])}" if s.get("review_due") else ""
            if may_decide:
                lines.append(icon_line(ft.Icons.RATE_REVIEW_OUTLINED, f"Made for you by a guardian: it keeps working"
                                       f"{due} unless you keep it", color=theme.WARN, weight=ft.FontWeight.W_600))
                buttons.append(button("Keep", lambda _: self._keep(s, what, short), kind="tonal",
                                      label=f"Keep sharing {what} with {short}"))
            else:
                whom = names.profile(s["profile"])
                lines.append(icon_line(ft.Icons.RATE_REVIEW_OUTLINED, f"Waiting for {whom} to keep or stop it; it "
                                       f"keeps working{due}", color=theme.WARN, weight=ft.FontWeight.W_600))
        if s["active"] and may_decide:
            buttons.append(button("Stop sharing", lambda _: self._revoke(s, what, short), kind="outlined",
                                  label=f"Stop sharing {what} with {short}"))
        if buttons:
            lines.append(widgets.actions(*buttons))
        return card(*lines, muted_bg=not s["active"])

    def _keep(self, s: dict[str, Any], what: str, short: str) -> None:
        ui = self.ui
        if ui.attempt(lambda: ui.owner.keep_share(s["id"]), done=f"You keep sharing {what} with {short}.") \
                is not None:
            ui.refresh_all()

    def _deny_card(self, s: dict[str, Any], names: Names) -> ft.Control:
        short = grantee_short(s["grantee"], names)
        what = records_words(s["permissions"], names)

        def undo() -> None:
            if self.ui.attempt(lambda: self.ui.owner.revoke(s["id"]), done=f"{short} may ask again.") is not None:
                self.ui.refresh_all()

        return card(
            ft.Text(capitalize(grantee_words(s["grantee"], names)), size=16, weight=ft.FontWeight.W_600),
            icon_line(ft.Icons.BLOCK, f"Refused without asking you: {what}"),
            widgets.actions(button("Let them ask again", lambda _: self.ui.confirm(
                title=f"Let {short} ask again?", body=f"Their next request for {what} will come to your inbox.",
                yes="Let them ask", on_yes=undo, danger=False), kind="text", label=f"Let {short} ask again")))

    def _revoke(self, s: dict[str, Any], what: str, short: str) -> None:
        ui = self.ui

        def go() -> None:
            if ui.attempt(lambda: ui.owner.revoke(s["id"]), done=f"You stopped sharing {what} with {short}.") \
                    is not None:
                ui.refresh_all()

        ui.confirm(title=f"Stop sharing {what} with {short}?",
                   body="They lose access at once. You can share again later.", yes="Stop sharing", on_yes=go)

    # sharing ahead of time -----------------------------------------------------------------------------
    def open_form(self) -> None:
        ShareForm(self.ui).open()


class ShareForm:
    """The "Share ahead of time" dialog: profile, record, what they may do, with whom, how long."""

    def __init__(self, ui: Ui) -> None:
        self.ui = ui
        owner = ui.owner
        self.profiles = ui.profiles()
        self.trusted = owner.trust_list()
        self.names = ui.names()
        self.profile = widgets.radio_group([(p["id"], p["name"]) for p in self.profiles], ui.profile,
                                           on_change=lambda _: self._profile_changed())
        self.resource_host = ft.Column(spacing=4)
        self.resource: ft.Dropdown | None = None
        self.scopes_host = ft.Column(spacing=0)
        self.boxes: dict[str, ft.Checkbox] = {}
        self.scope_error = ft.Text("", color=theme.DANGER, size=13, visible=False)
        self.kind = widgets.radio_group(list(KINDS), "email", on_change=lambda _: self._kind_changed())
        self.email = widgets.text_field("E-mail address", keyboard_type=ft.KeyboardType.EMAIL)
        issuers = [(t["issuer"], t["name"]) for t in self.trusted]
        self.issuer_place, self.issuer = widgets.dropdown("Trusted organisation", issuers,
                                                          issuers[0][0] if issuers else None, width=320)
        self.subject = widgets.text_field("Their account id there")
        self.claim = widgets.text_field("Detail to check", value="role")
        self.value = widgets.text_field("It must be (for example: clinician)")
        clients = sorted(((cid, name) for cid, name in self.names.clients.items()), key=lambda c: c[1].lower())
        self.client_place, self.client = widgets.dropdown("App", clients, None, width=320)
        self.who_host = ft.Column(spacing=8)
        self.how_long = widgets.radio_group(list(LIFETIME_CHOICES), DEFAULT_LIFETIME)
        self.problem = ft.Text("", color=theme.DANGER, visible=False)
        self._profile_changed(update=False)
        self._kind_changed(update=False)

    def open(self) -> None:
        parts: list[ft.Control] = []
        if len(self.profiles) > 1:
            parts += [self._label("Whose records?"), self.profile]
        parts += [self._label("Which record?"), self.resource_host, self._label("What may they do?"),
                  self.scopes_host, widgets.message(self.scope_error), self._label("With whom?"), self.kind,
                  self.who_host,
                  self._label("For how long?"), self.how_long, widgets.message(self.problem)]
        self.dialog = ft.AlertDialog(
            modal=True, scrollable=True, title=ft.Text("Share ahead of time"), inset_padding=self.ui.dialog_inset(),
            content=ft.Column(parts, tight=True, spacing=6, width=420),
            actions=[button("Cancel", lambda _: self.ui.close_dialog(), kind="text"), button("Share", self._submit)],
            actions_alignment=ft.MainAxisAlignment.END)
        self.ui.page.show_dialog(self.dialog)

    @staticmethod
    def _label(text: str) -> ft.Control:
        return ft.Container(ft.Text(text, weight=ft.FontWeight.W_600), padding=ft.Padding.only(top=8))

    def _resources(self) -> list[dict[str, Any]]:
        return self.ui.owner.resources(profile=self.profile.value or "me")

    def _profile_changed(self, *, update: bool = True) -> None:
        res = self._resources()
        if not res:
            self.resource = None
            self.resource_host.controls = [muted("No records for this profile yet. Connect a lab or clinic first "
                                                 "(it appears under Records).")]
        else:
            place, self.resource = widgets.dropdown(
                "Record", [(r["_id"], str(r.get("name") or "Unnamed record")) for r in res], res[0]["_id"],
                on_select=lambda _: self._resource_changed(), width=320)
            self.resource_host.controls = [place]
        self._resource_changed(update=update)

    def _resource_changed(self, *, update: bool = True) -> None:
        rec = next((r for r in self._resources() if self.resource and r["_id"] == self.resource.value), None)
        scopes = list(rec.get("resource_scopes") or []) if rec else []
        thing = str(rec.get("name") or "this record") if rec else "this record"
        rows = {s: widgets.checkbox(scope_choice_label(s, [thing]), s in ("read", "view")) for s in scopes}
        self.boxes = {s: box for s, (_, box) in rows.items()}
        self.scopes_host.controls = [row for row, _ in rows.values()] or [muted("Choose a record first.")]
        if update:
            self.ui.page.update()

    def _kind_changed(self, *, update: bool = True) -> None:
        kind = self.kind.value
        no_issuers = muted("You trust no organisation yet. Add one under Settings first.")
        hosts: dict[str | None, list[ft.Control]] = {
            "email": [muted("They must prove this address through an organisation you trust.", size=13),
                      self.email],
            "person": [muted("Their account at an organisation you trust, such as their hospital.", size=13),
                       self.issuer_place, self.subject] if self.trusted else [no_issuers],
            "class": [muted("Anyone the organisation vouches for with this detail, for example everyone whose "
                            "role is clinician.", size=13),
                      self.issuer_place, self.claim, self.value] if self.trusted else [no_issuers],
            "client": [muted("Whoever uses this app gets access.", size=13), self.client_place],
        }
        self.who_host.controls = hosts.get(kind, [])
        if update:
            self.ui.page.update()

    def _grantee(self) -> str | None:
        """The owner's grantee text, or None after marking what is missing."""
        kind = self.kind.value
        for tf in (self.email, self.subject, self.claim, self.value):
            tf.error = None
        if kind == "email":
            email = (self.email.value or "").strip()
            if "@" not in email or " " in email or email.startswith("@") or email.endswith("@"):
                self.email.error = "Enter an e-mail address, like name@example.org."
                return None
            return f"email:{email}"
        if kind in ("person", "class"):
            if not self.issuer.value:
                self._fail("Choose a trusted organisation (add one under Settings).")
                return None
            if kind == "person":
                subject = (self.subject.value or "").strip()
                if not subject:
                    self.subject.error = "Enter their account id at that organisation."
                    return None
                return f"sub:{self.issuer.value}#{subject}"
            claim, value = (self.claim.value or "").strip(), (self.value.value or "").strip()
            bad = False
            if not claim or "=" in claim or "#" in claim:
                self.claim.error, bad = "Enter which detail to check, like role.", True
            if not value:
                self.value.error, bad = "Enter the value it must have, like clinician.", True
            return None if bad else f"class:{self.issuer.value}#{claim}={value}"
        if not self.client.value:
            self._fail("Choose an app.")
            return None
        return f"client:{self.client.value}"

    def _fail(self, message: str) -> None:
        self.problem.value, self.problem.visible = message, True

    def _submit(self, _: Any) -> None:
        ui = self.ui
        self.problem.visible = False
        self.scope_error.visible = False
        chosen = [s for s, box in self.boxes.items() if box.value]
        ok = True
        if self.resource is None or not self.resource.value:
            self._fail("Choose a record to share.")
            ok = False
        elif not chosen:
            self.scope_error.value, self.scope_error.visible = "Tick at least one thing they may do.", True
            ok = False
        grantee = self._grantee()
        if not ok or grantee is None:
            ui.page.update()
            return
        assert self.resource is not None
        try:
            share = ui.owner.share(profile=self.profile.value or "me", resource_id=str(self.resource.value),
                                   scopes=chosen, grantee=grantee,
                                   lifetime=lifetime_for(self.how_long.value or DEFAULT_LIFETIME))
        except OwnerError as exc:
            self._fail(plain_error(str(exc)))
            ui.page.update()
            return
        ui.close_dialog()
        names = ui.names()
        ui.toast(f"Shared {records_words(share['permissions'], names)} with {grantee_short(share['grantee'], names)}.")
        ui.refresh_all()
