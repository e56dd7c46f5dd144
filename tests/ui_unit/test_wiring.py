"""Which app opens: a window where one can, the web UI otherwise, always with a reason."""

from __future__ import annotations

import flet_desktop
import pytest

from app.ui import wiring


def test_no_ui_is_no_ui():
    assert wiring.choose_ui("none") == ("none", None)


def test_without_a_display_the_app_opens_in_the_browser(monkeypatch):
    monkeypatch.setattr(wiring, "has_display", lambda: False)
    assert wiring.choose_ui(None) == ("web", None)
    mode, notice = wiring.choose_ui("desktop")
    assert mode == "web" and "no display" in notice


def test_with_a_display_and_the_client_at_hand_a_window_opens(monkeypatch):
    monkeypatch.setattr(wiring, "has_display", lambda: True)
    monkeypatch.delenv("FLET_VIEW_PATH", raising=False)
    monkeypatch.setattr(flet_desktop, "ensure_client_cached", lambda: "/cache")
    assert wiring.choose_ui(None) == ("desktop", None)
    assert wiring.choose_ui("web") == ("web", None)


def test_when_the_window_client_cannot_be_fetched_the_browser_is_used_and_the_reason_shown(monkeypatch):
    monkeypatch.setattr(wiring, "has_display", lambda: True)
    monkeypatch.delenv("FLET_VIEW_PATH", raising=False)

    def offline() -> None:
        raise OSError("network unreachable")

    monkeypatch.setattr(flet_desktop, "ensure_client_cached", offline)
    mode, notice = wiring.choose_ui("desktop")
    assert mode == "web" and "could not be prepared (OSError)" in notice and "browser" in notice


@pytest.mark.parametrize(("env", "expected"),
                         [({"DISPLAY": ":0"}, True), ({"WAYLAND_DISPLAY": "w"}, True), ({}, False)])
def test_a_display_is_seen_from_the_environment_on_linux(monkeypatch, env, expected):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(wiring.sys, "platform", "linux")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert wiring.has_display() is expected
