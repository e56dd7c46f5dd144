"""The shell's "acting for" banner and profile switcher without a browser: what the banner says for a
dependent, that it goes with "Back to you", and that a profile handed over is no longer offered."""

from __future__ import annotations

from typing import Any

import flet as ft

from core.owner import Lifetime
from tests.flow import ResourceServer, person_token
from tests.ui_unit.test_shell import FakePage, shell_for
from tests.world import connect_rs

DAY = 86_400


class Page(FakePage):
    def __init__(self) -> None:
        super().__init__()
        self.dialogs: list[Any] = []
        self.web = False

    def update(self, *controls: Any) -> None:
        """No browser behind this page: nothing to send."""

    def show_dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog)

    def pop_dialog(self) -> None:
        self.dialogs.pop()


def texts(control: Any) -> list[str]:
    """Every Text value and semantics label under ``control``, depth first."""
    out: list[str] = []
    if isinstance(control, ft.Text) and control.value:
        out.append(str(control.value))
    if isinstance(control, ft.Semantics) and control.label:
        out.append(str(control.label))
    for name in ("content", "controls", "actions", "title"):
        child = getattr(control, name, None)
        for c in child if isinstance(child, list) else [child]:
            if isinstance(c, ft.Control):
                out += texts(c)
    return out


def shell(world: Any, tmp_path: Any) -> Any:
    s = shell_for(world, tmp_path)
    s.page = s.ui.page = Page()
    return s


def test_the_banner_says_whom_the_owner_acts_for_and_goes_with_back_to_you(world, tmp_path):
    world.owner.add_profile("Mia", dependent=True, until=int(world.clock()) + 400 * DAY,
                            exclude=["PSY", "MH", "BH", "SEX", "STD"])
    s = shell(world, tmp_path)
    s.refresh_all()
    assert not s.banner.visible and s.acting_chip.visible
    assert s.acting_chip.content.label == "Switch profile, now you"

    s.ui.set_profile("mia")
    assert s.banner.visible and s.banner_label.label == "Acting for Mia"
    assert s.banner_title.value == "Acting for Mia"
    assert s.banner_detail.value.startswith("As guardian · Until ")
    assert s.banner_detail.value.endswith(" · Not shown: mental health, sexual health")
    assert not s.banner_reason.visible
    assert s.acting.value == "Mia" and s.acting_chip.content.label == "Switch profile, now Mia"
    [back] = [c for c in s.banner_label.content.content.controls if isinstance(c, ft.FilledButton | ft.OutlinedButton)]
    back.on_click(None)
    assert s.ui.profile == "me" and not s.banner.visible


def test_after_the_end_the_banner_says_why_the_guardian_may_not_decide(world, tmp_path):
    world.owner.add_profile("Mia", dependent=True, until=int(world.clock()) + DAY)
    s = shell(world, tmp_path)
    s.ui.profile = "mia"
    world.clock.advance(2 * DAY)
    s.refresh_all()
    assert s.banner.visible and s.banner_reason.visible
    assert s.banner_reason.value.startswith("Your guardianship for Mia ended on ")
    assert "Ended on " in s.banner_detail.value


def test_the_switcher_lists_you_and_each_dependent_and_switches(world, tmp_path):
    world.owner.add_profile("Mia", dependent=True)
    world.owner.add_profile("Leo", dependent=True)
    s = shell(world, tmp_path)
    s.refresh_all()
    s.open_switcher()
    [dialog] = s.page.dialogs
    said = texts(dialog)
    assert "You" in said and "Mia" in said and "Leo" in said and "Now" in said
    switch = [c for c in _buttons(dialog) if _label(c) == "Switch to Leo"]
    assert len(switch) == 1
    switch[0].on_click(None)
    assert s.ui.profile == "leo" and s.page.dialogs == [] and s.banner_label.label == "Acting for Leo"


def test_a_profile_handed_over_is_no_longer_offered_and_the_app_goes_back_to_you(world, tmp_path):
    world.owner.add_profile("Mia", dependent=True)
    kids = ResourceServer(world.rs.http, world.agent.issuer, world.clock)
    connect_rs(world.agent, world.owner, kids, profile="mia")
    growth = kids.register_resource({"name": "Growth chart", "resource_scopes": ["read"]})
    r = world.client.ask(kids.ticket({"resource_id": growth, "resource_scopes": ["read"]}),
                         id_token=person_token(world.idp, world.client))
    assert r.json()["error"] == "request_submitted"
    [item] = world.owner.inbox(profile="mia")
    world.owner.approve(item["id"], lifetime=Lifetime(days=30))
    s = shell(world, tmp_path)
    s.ui.set_profile("mia")
    assert s.banner.visible
    world.owner.handover_export("mia", to="https://mia.example", passphrase="paper kite river")
    s.refresh_all()
    assert s.ui.profile == "me" and not s.banner.visible and not s.acting_chip.visible
    assert [p["id"] for p in s.ui.profiles()] == ["me"]


def _buttons(control: Any) -> list[Any]:
    out = []
    if isinstance(control, ft.FilledTonalButton | ft.FilledButton | ft.OutlinedButton | ft.TextButton):
        out.append(control)
    for name in ("content", "controls", "actions"):
        child = getattr(control, name, None)
        for c in child if isinstance(child, list) else [child]:
            if isinstance(c, ft.Control):
                out += _buttons(c)
    return out


def _label(button: Any) -> str:
    content = button.content
    return str(content.semantics_label or content.value)
