"""The app's plumbing without a browser: live updates are marshalled onto the page's loop once per
burst, the session unsubscribes when it goes away, and the small helpers of the screens."""

from __future__ import annotations

import asyncio
import os
import stat
import threading
from pathlib import Path
from typing import Any

from app.ui.screens.profiles import parse_day
from app.ui.screens.settings import qr_png, write_private
from app.ui.shell import UiContext, build
from core.events import REQUEST_ARRIVED
from tests.flow import person_token


class FakePage:
    """Just what the shell touches before ``build``: a width, lifecycle hooks and run_task."""

    def __init__(self) -> None:
        self.width = 390
        self.on_disconnect = self.on_close = self.on_connect = None
        self.scheduled: list[Any] = []
        self.lock = threading.Lock()

    def run_task(self, handler: Any, *args: Any) -> None:
        with self.lock:
            self.scheduled.append((handler, args))


def shell_for(world: Any, tmp_path: Path) -> Any:
    from app.ui.shell import Shell

    ctx = UiContext(issuer=world.agent.issuer, agent_id=world.agent.keys.agent_id, data_dir=tmp_path, relay=None)
    return Shell(FakePage(), world.owner, ctx)  # type: ignore[arg-type]


def test_events_from_many_threads_schedule_one_refresh_on_the_pages_loop(world, tmp_path):
    shell = shell_for(world, tmp_path)
    refreshed = []
    shell.refresh_all = lambda update=True: refreshed.append(update)
    threads = [threading.Thread(target=lambda: [shell._on_event(REQUEST_ARRIVED, {"id": "x"}) for _ in range(50)])
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(shell.page.scheduled) == 1  # nothing touched a control off the loop; one refresh is queued
    handler, _ = shell.page.scheduled[0]
    asyncio.run(handler())
    assert refreshed == [True]
    shell._on_event(REQUEST_ARRIVED, {"id": "y"})  # the next burst schedules again
    assert len(shell.page.scheduled) == 2


def test_a_real_request_reaches_the_subscribed_shell_and_unsubscribing_stops_it(world, tmp_path):
    shell = shell_for(world, tmp_path)
    shell._subscribe()
    r = world.client.ask(world.ticket(["read"]), id_token=person_token(world.idp, world.client))
    assert r.json()["error"] == "request_submitted"
    assert len(shell.page.scheduled) == 1
    shell._chain_lifecycle()
    shell.page.on_disconnect(None)  # the tab went away
    shell._scheduled = False
    world.client.ask(world.ticket(["write"]), id_token=person_token(world.idp, world.client, sub="dr-x"))
    assert len(shell.page.scheduled) == 1 and world.agent.events._subs == []


def test_lifecycle_handlers_already_on_the_page_still_run(world, tmp_path):
    shell = shell_for(world, tmp_path)
    seen = []
    shell.page.on_close = lambda e: seen.append("theirs")
    shell._subscribe()
    shell._chain_lifecycle()
    shell.page.on_close(None)
    assert seen == ["theirs"] and world.agent.events._subs == []


def test_build_is_the_entry_point_the_runtime_calls():
    import inspect

    assert list(inspect.signature(build).parameters) == ["page", "owner", "ctx"]
    assert "on_change_lock" in UiContext.__dataclass_fields__


def test_parse_day():
    assert parse_day("2030-01-31") == parse_day("31/01/2030") == 1_896_134_399
    for bad in ("2030-02-30", "tomorrow", ""):
        try:
            parse_day(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


def test_qr_code_is_a_png():
    png = qr_png("https://agent.example")
    assert png is not None and png.startswith(b"\x89PNG\r\n\x1a\n")


def test_backups_are_private_and_never_overwritten(tmp_path):
    first = write_private(tmp_path / "backups" / "agent-backup-2027-01-15.json", b"one")
    second = write_private(tmp_path / "backups" / "agent-backup-2027-01-15.json", b"two")
    assert first.name == "agent-backup-2027-01-15.json" and second.name == "agent-backup-2027-01-15-2.json"
    assert first.read_bytes() == b"one" and second.read_bytes() == b"two"
    if os.name == "posix":
        assert stat.S_IMODE(first.stat().st_mode) == 0o600
