"""The story of the seed documents, played for real (``consent-agent demo``).

Alice is a patient about to have surgery. Her consent agent runs on her device and is reached through
a relay. Riverside Health Records keeps her chart. Dr. Carol, her regular physician, already has read
access, a share Alice made ahead of time. Dr. Bob, the surgeon, asks for read and write; the request
waits in Alice's inbox until she presses Share. He reads her chart and adds his operative note. A
home blood-pressure monitor is paired after the operation and writes readings that both doctors
read. After her recovery Alice stops sharing with Dr. Bob, and his next read is refused.

Every actor is real: the relay and the agent are processes, the records server is the kit-protected
example server on loopback, the clinicians' apps and the monitor use the client kit, and Alice's
decisions go through the agent's owner API, the same as the CLI and the app. With ``auto`` the script
presses Share for Alice; without it, it waits for the person at the app.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from app.cli import ApiCall, CliError, call_agent
from app.demo.narrate import Narrator
from app.demo.procs import DemoError, Process, start_agent, start_relay
from examples.bp_monitor import Monitor
from examples.clinician import ClinicianApp
from examples.clinician.app import surgery_note
from examples.health_records.chart import Chart
from examples.health_records.server import build_app, register_monitor_resource, register_record_resource
from examples.idp import CLINICIANS, DemoIdP
from sdk.client import FileRegistrationStore, RequestDenied, RequestSubmitted, Waiting
from sdk.rs import ResourceServerKit, connect

STEPS = 9
REMIND_EVERY = 30.0
"""Without ``--auto``, how often step 5 reminds the person that Dr. Bob's request waits for them."""
RS_CACHE_SECONDS = 3.0
"""How long the records server may trust an earlier "active" answer about a token; kept short so the
demo shows a revocation quickly (the kit's default is 30 s)."""


@dataclass(frozen=True)
class DemoOptions:
    auto: bool
    ui: str | None
    """``desktop``, ``web`` or ``none``; None lets the agent choose (a window, else the web UI)."""
    data_dir: Path | None = None
    keep: bool = False


class Alice:
    """The owner's decisions, through the owner API of the running agent."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, *,
             query: dict[str, str] | None = None) -> Any:
        return call_agent(self.data_dir, ApiCall(method, path, body, query or {})).data

    def inbox(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "/v1/inbox"))

    def profile(self) -> str:
        return str(next(p["id"] for p in self.call("GET", "/v1/profiles") if p["kind"] == "owner"))


@contextlib.contextmanager
def workspace(opts: DemoOptions) -> Iterator[Path]:
    if opts.data_dir is not None:
        opts.data_dir.mkdir(parents=True, exist_ok=True)
        yield opts.data_dir
        return
    folder = Path(tempfile.mkdtemp(prefix="consent-agent-demo-"))
    try:
        yield folder
    finally:
        if not opts.keep:
            shutil.rmtree(folder, ignore_errors=True)


def run(opts: DemoOptions) -> int:
    narrator = Narrator(STEPS)
    narrator.title("consent-agent demo: Alice's surgery, from the seed documents")
    with workspace(opts) as work:
        agent_dir = work / "agent"
        relay: Process | None = None
        agent: Process | None = None
        story: Story | None = None
        try:
            narrator.step("A relay, and Alice's agent behind it",
                          "Alice's device sits behind NAT, so clinics reach her agent through a relay. "
                          "The relay forwards requests but never holds the agent's keys.")
            relay, relay_url = start_relay()
            narrator.say(f"relay listening at {relay_url}")
            agent, info = start_agent(agent_dir, relay_url, opts.ui)
            narrator.places[info["issuer"]] = "agent"
            narrator.say(f"Alice's agent is {info['issuer']}")
            app_url = app_address(agent) if info.get("ui") else None
            if app_url:
                narrator.say(f"Alice's app: {app_url}")
            story = Story(narrator, Alice(agent_dir), info["issuer"], work, opts, app_url)
            return asyncio.run(story.play())
        except (DemoError, CliError) as exc:
            narrator.say(f"The demo stopped: {exc}")
            return 1
        except KeyboardInterrupt:
            if story is not None and story.over:
                narrator.say("Goodbye: stopping Alice's agent, her app and the relay.")
                return 0
            narrator.say("Stopped.")
            return 130
        finally:
            stop_all(agent, relay)


def stop_all(*procs: Process | None) -> None:
    """Stop the background processes; a second Ctrl-C while they stop kills the rest, so none outlives
    the demo."""
    for proc in procs:
        if proc is None:
            continue
        try:
            proc.stop()
        except KeyboardInterrupt:
            for p in procs:
                if p is not None and p.proc.poll() is None:
                    p.proc.kill()
                    p.proc.wait()
            return


@dataclass
class Story:
    n: Narrator
    alice: Alice
    issuer: str
    work: Path
    opts: DemoOptions
    app_url: str | None
    over: bool = False
    """The story has been told; the demo only keeps the agent and the app running for the person."""
    request_id: str = ""
    """Dr. Bob's request in Alice's inbox, once it is there."""

    async def play(self) -> int:
        n, alice = self.n, self.alice
        idp = DemoIdP.load_or_create(self.work)
        profile = alice.profile()

        n.step("Alice trusts her hospital's sign-in service",
               "Clinicians prove who they are with ID tokens from Riverside Hospital's sign-in service.")
        alice.call("POST", "/v1/trust", {"issuer": idp.issuer, "jwks": idp.jwks, "name": "Riverside Hospital"})
        n.owner(f"trusts {idp.issuer} (Riverside Hospital)")

        n.step("Alice connects her records",
               "Riverside Health Records finds her agent from its address alone, checks the agent's signed "
               "keys against its id, registers, and asks to connect (the device grant). Alice compares "
               "the code and approves; the records server gets its protection token (PAT) and registers "
               "her chart.")
        rs_http = n.traced("records")
        kit = await connect(self.issuer, client_name="Riverside Health Records", state_dir=self.work / "records",
                            http=rs_http, cache_seconds=RS_CACHE_SECONDS)
        device = await kit.start_device()
        n.say(f"the records server shows the code {device.user_code}")
        item = await self.wait_for(lambda i: i.get("user_code") == device.user_code, "the connection request")
        alice.call("POST", f"/v1/inbox/{item['id']}/approve", {})
        n.owner(f"sees the same code {device.user_code} in her app and approves")
        await kit.finish_device(device)
        record = await register_record_resource(kit)
        async with serve(kit) as records:
            n.places[records] = "records"
            return await self.clinic(kit, records, idp, profile, record)

    async def clinic(self, kit: ResourceServerKit, records: str, idp: DemoIdP, profile: str, record: str) -> int:
        n, alice = self.n, self.alice
        carol_sub, bob_sub = CLINICIANS["carol"].sub, CLINICIANS["bob"].sub

        n.step("Dr. Carol, her regular physician, reads her chart",
               "Alice shared her medical record with Dr. Carol ahead of time, so Carol's app gets in without "
               "asking Alice: a 401 with a ticket, the ticket and Carol's ID token to the agent, an RPT back.")
        alice.call("POST", "/v1/shares", {"profile": profile, "resource_id": record, "scopes": ["read"],
                                          "with": f"sub:{idp.issuer}#{carol_sub}", "name": CLINICIANS["carol"].name})
        n.owner("shared her medical record (see) with Dr. Carol White, until she revokes it")
        carol = ClinicianApp("carol", idp, n.traced("Dr. Carol"), client_name="Riverside Clinician (Dr. Carol)",
                             store=FileRegistrationStore(self.work / "carol"))
        r = await carol.read(records, "Condition")
        expect(r, 200)
        n.shown("Dr. Carol sees: " + ", ".join(e["resource"]["code"]["text"] for e in r.json()["entry"]))

        n.step("Dr. Bob, the surgeon, asks to read and write",
               "Nobody shared with Dr. Bob, so his request waits in Alice's inbox. His app polls at the "
               "interval the agent asks for.")
        told_at: float | None = None

        async def on_waiting(info: Waiting) -> None:
            nonlocal told_at
            if told_at is None:
                told_at = info.waited
                if self.opts.auto or self.opts.ui == "none":  # the script, or the person at the CLI, needs its id
                    item = await self.wait_for(lambda i: (i.get("requester") or {}).get("subject") == bob_sub,
                                               "Dr. Bob's request")
                    self.request_id = item["id"]
                if self.opts.auto:
                    alice.call("POST", f"/v1/inbox/{self.request_id}/approve", {})
                    n.owner("presses Share on Dr. Bob's request (see, add to or change; until she revokes it)")
                else:
                    self.ask_for_share()
            elif not self.opts.auto and info.waited - told_at >= REMIND_EVERY:
                told_at = info.waited
                self.remind(info.waited)

        bob = ClinicianApp("bob", idp, n.traced("Dr. Bob"), client_name="Riverside Surgery Center",
                           scopes=("read", "write"), on_waiting=on_waiting,
                           store=FileRegistrationStore(self.work / "bob"))
        try:
            r = await bob.read(records, "Condition")
        except RequestDenied:
            raise DemoError("Dr. Bob's request was denied, so his app got request_denied and the story ends "
                            "here. Run the demo again and press Share to see the rest.") from None
        except RequestSubmitted:
            raise DemoError("nobody decided on Dr. Bob's request in time (his app stops waiting after 15 "
                            "minutes); run the demo again and press Share") from None
        expect(r, 200)
        n.shown(f"Dr. Bob sees {r.json()['total']} conditions in Alice's chart")

        n.step("Dr. Bob adds his operative note", "His token already carries write: no new question to Alice.")
        r = await bob.write(records, surgery_note("Dr. Bob Jones", "Laparoscopic cholecystectomy, uncomplicated."))
        expect(r, 201)
        r = await carol.read(records, "DocumentReference")
        expect(r, 200)
        n.shown("Dr. Carol now sees: " + "; ".join(e["resource"]["type"]["text"] for e in r.json()["entry"]))

        n.step("A blood-pressure monitor for her recovery",
               "The records server places the monitor's readings under the agent's protection (a new "
               "resource). The monitor registers at Alice's agent; Alice lets it write readings and lets "
               "both doctors read them.")
        bp = await register_monitor_resource(kit)
        monitor = Monitor(n.traced("monitor"), store=FileRegistrationStore(self.work / "monitor"))
        monitor_id = await monitor.pair(self.issuer)
        for scopes, grantee, who in ((["write"], f"client:{monitor_id}", "the blood pressure monitor"),
                                     (["read"], f"sub:{idp.issuer}#{carol_sub}", CLINICIANS["carol"].name),
                                     (["read"], f"sub:{idp.issuer}#{bob_sub}", CLINICIANS["bob"].name)):
            alice.call("POST", "/v1/shares", {"profile": profile, "resource_id": bp, "scopes": scopes,
                                              "with": grantee, "name": who})
            n.owner(f"shared her blood pressure readings with {who} ({'write' if 'write' in scopes else 'see'})")
        for systolic, diastolic in ((132, 85), (128, 82), (124, 80)):
            expect(await monitor.send(records, systolic, diastolic), 201)
        for doctor in (carol, bob):
            r = await doctor.read(records, "Observation", category="vital-signs")
            expect(r, 200)
            n.shown(f"{CLINICIANS[doctor.who].name} sees {r.json()['total']} blood pressure readings")

        n.step("Alice recovers and stops sharing with Dr. Bob",
               f"Revoking makes his tokens inactive at once; the records server learns it the next time it "
               f"checks with the agent (at most {RS_CACHE_SECONDS:.0f} s in this demo).")
        shares = [s for s in alice.call("GET", "/v1/shares") if s["grantee"].get("subject") == bob_sub]
        for s in shares:
            alice.call("POST", f"/v1/shares/{s['id']}/revoke")
        n.owner(f"stops sharing with Dr. Bob ({len(shares)} share{'s' if len(shares) != 1 else ''})")
        await asyncio.sleep(RS_CACHE_SECONDS + 0.5)
        r = await bob.read(records, "Condition")
        if r.status_code not in (401, 403):
            raise DemoError(f"Dr. Bob's read after revocation answered {r.status_code}, not a refusal")
        n.shown(f"Dr. Bob's read is refused ({r.status_code})")
        r = await carol.read(records, "Condition")
        expect(r, 200)
        n.shown("Dr. Carol still reads Alice's chart")

        n.step("What Alice's agent recorded")
        log = alice.call("GET", "/v1/audit", query={"limit": "10000"})
        n.say(f"{len(log)} entries in Alice's activity log, hash-chained; {n.exchanges} HTTP exchanges in all.")
        for client in (carol, bob, monitor):
            await client.session.aclose()
            await client.http.aclose()
        if not self.opts.auto:
            self.over = True
            n.say("The story is over. The agent and the app keep running so you can look around: Shared "
                  "(who may still see what), Activity (everything that happened), Records. Press Ctrl-C to stop.")
            await asyncio.Event().wait()
        n.say("The demo ran to the end.")
        return 0

    def ask_for_share(self) -> None:
        """Step 5 without ``--auto``: tell the person, who plays Alice, what to do and where."""
        n = self.n
        n.shown("Your turn: you are Alice, and Dr. Bob's request is waiting in her inbox.")
        if self.app_url:
            n.say("1. Open Alice's app at this address (the first time, it asks you to choose a PIN or "
                  "passphrase for the app):")
            n.say(self.app_url)
            n.say("2. On Dr. Bob Jones's request in the Inbox, press Share, keep the choices as they are, and "
                  "press Share again. The story goes on by itself.")
        elif self.opts.ui == "none":
            n.say("There is no app (--ui none): approve the request from another terminal with")
            n.say(f"consent-agent approve {self.request_id} --data-dir {self.alice.data_dir}")
        else:
            n.say("In Alice's app window, press Share on Dr. Bob Jones's request in the Inbox, keep the choices "
                  "as they are, and press Share again. The story goes on by itself.")

    def remind(self, waited: float) -> None:
        """Dr. Bob's polls scroll the instructions away; every ``REMIND_EVERY`` s, say again what is awaited."""
        if self.app_url:
            what = f"press Share on Dr. Bob's request in her app, {self.app_url}"
        elif self.opts.ui == "none":
            what = f"consent-agent approve {self.request_id} --data-dir {self.alice.data_dir}"
        else:
            what = "press Share on Dr. Bob's request in her app window"
        self.n.shown(f"Still waiting for Alice, {waited:.0f} s so far: {what}")

    async def wait_for(self, match: Any, what: str, timeout: float = 30.0) -> dict[str, Any]:
        """The inbox item ``match`` picks, once the agent has it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            found = [i for i in self.alice.inbox() if match(i)]
            if found:
                return found[0]
            await asyncio.sleep(0.1)
        raise DemoError(f"{what} did not reach Alice's inbox within {timeout:.0f} s")


def app_address(agent: Process, timeout: float = 10.0) -> str | None:
    """The address the agent printed for opening its web UI (it carries the one-time launch token)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in agent.lines:
            if line.startswith("Open the app: "):
                return line.split(": ", 1)[1].strip()
        time.sleep(0.05)
    return None


def expect(response: httpx.Response, status: int) -> None:
    if response.status_code != status:
        raise DemoError(f"{response.request.method} {response.request.url} answered {response.status_code}, "
                        f"not {status}: {response.text[:300]}")


@contextlib.asynccontextmanager
async def serve(kit: ResourceServerKit) -> Any:
    """The records server on a free loopback port, in this event loop."""
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = build_app(kit, Chart(), public_url=base)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=2))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            raise DemoError("the records server did not start")
        await asyncio.sleep(0.02)
    try:
        yield base
    finally:
        server.should_exit = True
        await task
        sock.close()
