"""The other guardian's say, in the app (docs/guardians.md, "A second guardian").

A dependent's profile lives on one agent (the home agent); the other parent decides on their own.
The exchange is two signed files, carried by the people (a message, an e-mail):

- Home agent: a request that waits for the other guardian offers "Ask Ben". The agent signs it
  (``Owner.decision_request``); the app writes it to ``DIR/decisions/<request>.request.jwt`` (mode
  0600, never over a file), shows where, and offers it as a download and to copy.
- Ben's agent: Inbox → "Decide a request from another guardian". The file (its path, or its text
  pasted) is checked (``core.guardian.read_decision_request``: signed by the agent it names) and
  shown as a request card; Share (which things, how long) or Deny signs his answer
  (``Owner.sign_decision``), written to ``DIR/decisions/<request>.decision.jwt`` to send back.
- Home agent: "Apply Ben's answer" (on the card, or at the foot of the Inbox) hands the file to
  ``Owner.accept_decision``: his yes is recorded (the share is made once both said yes), his no
  refuses the request; the core's refusals are shown in plain words.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import flet as ft

from app.ui import theme, widgets
from app.ui.dialogs import share_dialog
from app.ui.screens.settings import write_private
from app.ui.widgets import Ui, button, card, heading, icon_line, muted
from app.ui.words import (
    answer_by_words,
    applied_words,
    asked_approvals_words,
    asked_by_words,
    asked_person,
    date_words,
    join_words,
    permissions_words,
    plain_error,
    requester_words,
    require_words,
    send_back_words,
    signed_answer_words,
)
from core import guardian, jose
from core.errors import OwnerError
from core.owner import Lifetime

DECISIONS = "decisions"
"""The folder in the data dir where requests and answers are written."""
MAX_FILE = 64 * 1024
"""Larger than any signed request or answer the core accepts (32 KiB)."""
Kind = Literal["request", "decision"]


def file_name(item_id: str, kind: Kind) -> str:
    """``req-1.request.jwt``: the request's id (from another agent on the deciding side, so reduced to
    letters, digits, ``-`` and ``_``: never a path) and what the file holds."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", str(item_id))[:64].strip("_") or "request"
    return f"{safe}.{kind}.jwt"


def signed_kind(text: str) -> Kind | None:
    """Which of the two a signed text claims to be (its JOSE header's ``typ``), before any check:
    only to tell someone who opened the answer where the request goes, or the other way round."""
    head = text.strip().split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except ValueError:  # not base64 (binascii.Error), not UTF-8, not JSON
        return None
    typ = str(header.get("typ", "")).lower().removeprefix("application/") if isinstance(header, dict) else ""
    return "request" if typ == guardian.REQUEST_TYP else "decision" if typ == guardian.DECISION_TYP else None


def read_signed(path: str, pasted: str) -> str:
    """The text pasted, else the file's at ``path``; ValueError in words for the person."""
    text = pasted.strip()
    if text:
        return text
    if not path.strip():
        raise ValueError("Enter where the file is on this device, or paste its text.")
    try:
        with Path(path.strip()).expanduser().open("rb") as f:
            data = f.read(MAX_FILE + 1)
    except OSError as exc:
        raise ValueError(f"Could not read that file: {exc.strerror or exc}.") from None
    if len(data) > MAX_FILE:
        raise ValueError("That file is too large to be a request or an answer from a guardian.")
    try:
        return data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ValueError("That file is not a request or an answer from a guardian.") from None


class Exchange:
    """The files of the exchange: where they are written, and offered (download, clipboard)."""

    def __init__(self, ui: Ui) -> None:
        self.ui = ui
        self.files = ft.FilePicker()  # web: offered as a download
        self.clipboard = ft.Clipboard()

    def folder(self) -> Path:
        return Path(self.ui.ctx.data_dir) / DECISIONS

    def save(self, item_id: str, kind: Kind, signed: str) -> Path:
        """Write a signed request or answer (mode 0600; ``-2``, ``-3`` … rather than over a file)."""
        return write_private(self.folder() / file_name(item_id, kind), (signed.strip() + "\n").encode("utf-8"))

    def asked(self, item_id: str) -> Path | None:
        """The request last written for this inbox item, if any."""
        stem = file_name(item_id, "request").removesuffix(".jwt")
        found = [p for p in (self.folder().glob(f"{stem}*.jwt") if self.folder().is_dir() else ())
                 if p.name == f"{stem}.jwt" or re.fullmatch(rf"{re.escape(stem)}-\d+\.jwt", p.name)]
        return max(found, key=lambda p: (p.stat().st_mtime, p.name)) if found else None

    def offer(self, file: str, signed: str, what: str) -> list[ft.Control]:
        """Buttons to download (web) and copy a signed text; ``what`` names it for screen readers."""
        data = (signed.strip() + "\n").encode("utf-8")

        async def download(_: Any) -> None:
            await self.files.save_file(file_name=file, src_bytes=data)

        async def copy(_: Any) -> None:
            await self.clipboard.set(signed.strip())
            self.ui.toast("Copied. Paste it into a message.")

        out: list[ft.Control] = []
        if self.ui.page.web:
            out.append(button("Download", download, kind="outlined", icon=ft.Icons.DOWNLOAD, label=f"Download {what}"))
        out.append(button("Copy", copy, kind="outlined", icon=ft.Icons.COPY, label=f"Copy {what}"))
        return out

    # the home agent ----------------------------------------------------------------------------------
    def ask(self, item: Mapping[str, Any], others: list[str], profile_name: str) -> None:
        """"Ask Ben": sign the request for the other guardian, write it, say how to send it."""
        ui = self.ui
        asked = ui.attempt(lambda: ui.owner.decision_request(str(item["id"])))
        if asked is None:
            return
        signed = str(asked["request"])
        whom = join_words(asked.get("for") or others) or "the other guardian"
        try:
            path: Path | None = self.save(str(item["id"]), "request", signed)
        except OSError as exc:
            path = None
            ui.toast(f"Could not save the file: {exc.strerror or exc}. Download or copy it instead.", error=True)
        try:
            exp = jose.unverified_claims(signed, max_size=guardian.MAX_DECISION).get("exp")
        except jose.JoseError:
            exp = None
        until = f" {whom} can answer until {date_words(float(exp))}." if isinstance(exp, int) else ""
        lines: list[ft.Control] = [
            ft.Text("Your agent signed the request" + (" and saved it:" if path else "."), size=14)]
        if path is not None:
            lines.append(ft.Text(str(path), size=13, font_family="monospace"))
        lines += [
            ft.Text(f"Send it to {whom} only (a message or an e-mail): it says who asks for {profile_name}'s "
                    "records, and what for.", size=14),
            muted(f"{whom} opens it in their own app (in the Inbox: “Decide a request”) and sends "
                  f"you their answer. Then choose “Apply {whom}'s answer” on this request.{until}", size=13),
            widgets.actions(*self.offer(file_name(str(item["id"]), "request"), signed, f"the request for {whom}"))]
        dialog = ft.AlertDialog(
            modal=True, scrollable=True, title=ft.Text(f"Send this request to {whom}"),
            inset_padding=ui.dialog_inset(),
            content=ft.Column([widgets.message(x) if isinstance(x, ft.Text) else x for x in lines],
                              tight=True, spacing=8, width=360),
            actions=[button("Done", lambda _: ui.close_dialog())], actions_alignment=ft.MainAxisAlignment.END)
        ui.page.show_dialog(dialog)
        ui.refresh_all()  # the card now says where the request is


def _fields(what: str, hint: str) -> tuple[ft.TextField, ft.TextField]:
    return (widgets.text_field(f"The {what} file", hint_text=hint),
            widgets.text_field("Or paste its text", multiline=True, min_lines=1, max_lines=4))


def _back(on_back: Callable[[], None]) -> ft.Control:
    return ft.Row([button("Back to inbox", lambda _: on_back(), kind="text", icon=ft.Icons.ARROW_BACK)])


class _SignedFileForm:
    """A path or pasted text holding a signed file of one kind, with the problem line under it."""

    def __init__(self, ui: Ui, kind: str, hint: str) -> None:
        self.ui = ui
        self.path, self.pasted = _fields(kind, hint)
        self.problem = ft.Text("", size=13, color=theme.DANGER, visible=False)

    def _fail(self, text: str) -> None:
        self.problem.value, self.problem.visible = text, True
        self.ui.page.update()

    def _read(self, wrong_kind: str, wrong_kind_message: str) -> str | None:
        """The signed text, or None once the problem is shown (unreadable, or the other kind of file)."""
        self.problem.visible = False
        try:
            signed = read_signed(self.path.value or "", self.pasted.value or "")
        except ValueError as exc:
            self._fail(str(exc))
            return None
        if signed_kind(signed) == wrong_kind:
            self._fail(wrong_kind_message)
            return None
        return signed


class DecidePanel(_SignedFileForm):
    """On the other guardian's agent: open a request another guardian sent, decide, send the answer back."""

    def __init__(self, ui: Ui, exchange: Exchange, *, on_back: Callable[[], None]) -> None:
        super().__init__(ui, "request", "/path/to/….request.jwt")
        self.exchange = exchange
        self.on_back = on_back
        self.signed = ""
        self.form = card(
            muted("The other parent or guardian of a child whose records live on their agent can ask you to "
                  "decide on a request. Open the file they sent you, or paste its text."),
            self.path, self.pasted, widgets.message(self.problem),
            widgets.actions(button("Open", self._open, icon=ft.Icons.FILE_OPEN, label="Open the request")))
        self.shown = ft.Column(spacing=theme.GAP, horizontal_alignment=ft.CrossAxisAlignment.STRETCH)
        self.root = ft.Column([_back(on_back), heading("A request from another guardian"), self.form, self.shown],
                              spacing=theme.GAP, horizontal_alignment=ft.CrossAxisAlignment.STRETCH)

    def _open(self, _: Any) -> None:
        ui = self.ui
        signed = self._read("decision", "This is a guardian's answer, not a request: apply it on the agent that "
                                        "asked, with “Apply the other guardian's answer”.")
        if signed is None:
            return None
        try:
            request = guardian.read_decision_request(signed, ui.now())
        except OwnerError as exc:
            return self._fail(plain_error(str(exc)))
        if request.get("iss") == ui.ctx.agent_id:
            return self._fail("This agent made this request. Send the file to the other guardian, who opens it in "
                              "their own app.")
        self.signed = signed
        self.form.visible = False
        self.shown.controls = [self._card(request)]
        ui.page.update()

    def _card(self, request: Mapping[str, Any]) -> ft.Control:
        ui = self.ui
        names = ui.names()
        who, sure = requester_words(request.get("requester"), names)
        if not request.get("requester"):
            who, sure = "Someone who did not say who they are", "Not verified"
        client = request.get("client") or {}
        app = client.get("client_name") or "an app"
        name = asked_person(request)
        profile = str(request.get("profile_name") or "the child")
        lines: list[ft.Control] = [
            ft.Row([ft.Icon(ft.Icons.PERSON, color=ft.Colors.PRIMARY),
                    ft.Text(who, size=17, weight=ft.FontWeight.W_600, expand=True)],
                   vertical_alignment=ft.CrossAxisAlignment.START),
            icon_line(ft.Icons.VERIFIED_USER if request.get("requester") else ft.Icons.GPP_MAYBE, sure,
                      color=theme.GOOD if request.get("requester") else theme.WARN, weight=ft.FontWeight.W_600),
            icon_line(ft.Icons.APPS, f"Through {app}"),
            icon_line(ft.Icons.FOLDER_OPEN, f"Wants to {permissions_words(request.get('permissions') or [], names)}",
                      color=ft.Colors.ON_SURFACE, size=15)]
        if request.get("purpose"):
            lines.append(icon_line(ft.Icons.CHAT_BUBBLE_OUTLINE, f"Why: {request['purpose']}"))
        lines.append(icon_line(ft.Icons.SUPERVISOR_ACCOUNT, f"About {profile}'s records: you decide as their other "
                               "guardian", color=ft.Colors.ON_SURFACE, weight=ft.FontWeight.W_600))
        lines += [icon_line(ft.Icons.HOW_TO_REG, text) for text in asked_approvals_words(request)]
        lines += [icon_line(ft.Icons.RULE, require_words(request.get("require"))),
                  icon_line(ft.Icons.KEY, asked_by_words(request)),
                  muted(answer_by_words(request), size=13),
                  widgets.actions(
                      button("Deny", lambda _: self._deny(name), kind="outlined", label=f"Deny {name}"),
                      button("Share", lambda _: share_dialog(
                          ui, name=name, permissions=request.get("permissions") or [], names=names,
                          about=[icon_line(ft.Icons.SUPERVISOR_ACCOUNT, f"{profile}'s records: you decide as their "
                                           "other guardian", color=ft.Colors.ON_SURFACE)],
                          on_share=lambda scopes, lifetime: self._sign(request, True, scopes, lifetime)),
                             label=f"Share with {name}"))]
        return card(*lines)

    def _deny(self, name: str) -> None:
        self.ui.confirm(title=f"Deny {name}?",
                        body="Your no is final: once the guardian who asked applies your answer, the request is "
                             "refused.", yes="Deny", on_yes=lambda: self._sign(None, False, None, None))

    def _sign(self, request: Mapping[str, Any] | None, approve: bool, scopes: list[str] | None,
              lifetime: Lifetime | None) -> None:
        ui = self.ui
        done = ui.attempt(lambda: ui.owner.sign_decision(self.signed, approve=approve, scopes=scopes,
                                                         lifetime=lifetime))
        if done is None:
            return
        item = str((done.get("request") or {}).get("item") or "request")
        signed = str(done["decision"])
        try:
            path: Path | None = self.exchange.save(item, "decision", signed)
        except OSError as exc:
            path = None
            ui.toast(f"Could not save the file: {exc.strerror or exc}. Download or copy it instead.", error=True)
        lines: list[ft.Control] = [
            icon_line(ft.Icons.CHECK_CIRCLE, signed_answer_words(done), color=theme.GOOD,
                      weight=ft.FontWeight.W_600),
            ft.Text("Your agent signed your answer" + (" and saved it:" if path else "."), size=14)]
        if path is not None:
            lines.append(ft.Text(str(path), size=13, font_family="monospace"))
        lines += [muted(send_back_words(done), size=13),
                  widgets.actions(*self.exchange.offer(file_name(item, "decision"), signed, "your answer")),
                  widgets.actions(button("Back to inbox", lambda _: self.on_back(), kind="text"))]
        self.shown.controls = [card(*[widgets.message(x) if isinstance(x, ft.Text) else x for x in lines])]
        ui.toast("Your answer is ready to send back.")
        ui.page.update()


class ApplyPanel(_SignedFileForm):
    """On the home agent: apply the answer the other guardian sent back."""

    def __init__(self, ui: Ui, *, whose: str | None, on_back: Callable[[], None]) -> None:
        super().__init__(ui, "answer", "/path/to/….decision.jwt")
        self.on_back = on_back
        who = whose or "the other guardian"
        self.root = ft.Column([
            _back(on_back), heading(f"Apply {who}'s answer"),
            card(muted(f"When {who} has decided on their own agent, they send you a file with their answer. A yes "
                       "counts as theirs; a no refuses the request."),
                 self.path, self.pasted, widgets.message(self.problem),
                 widgets.actions(button("Apply", self._apply, icon=ft.Icons.DONE_ALL, label="Apply the answer")))],
            spacing=theme.GAP, horizontal_alignment=ft.CrossAxisAlignment.STRETCH)

    def _apply(self, _: Any) -> None:
        ui = self.ui
        signed = self._read("request", "This is the request for the other guardian, not their answer: send it to "
                                       "them, and apply the file they send back.")
        if signed is None:
            return None
        try:
            done = ui.owner.accept_decision(signed)
        except OwnerError as exc:
            return self._fail(plain_error(str(exc)))
        me = next((str(p["name"]) for p in ui.owner.profiles() if p["id"] == "me"), None)
        item = done.get("item") or {}
        ui.toast(applied_words(done, me))
        self.on_back()
        if item.get("status") == "pending" and item.get("profile") and item["profile"] != ui.profile:
            ui.set_profile(str(item["profile"]))  # show the card that still waits
