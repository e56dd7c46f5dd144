"""The demo's background programs: a relay and the patient's agent, each a real process, and the
records server in a thread of the demo. All are stopped when the demo ends, however it ends."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn

LISTENING = re.compile(r"listening on (http://\S+)")


class DemoError(Exception):
    """A part of the demo could not start or did not answer; the message says which and why."""


@dataclass
class Process:
    name: str
    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def pump(self, *, echo: bool) -> None:
        """Read the process's output in a thread, keeping the last lines for error messages."""
        def run() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.lines = [*self.lines[-40:], line.rstrip()]
                if echo:
                    print(f"    [{self.name}] {line.rstrip()}", flush=True)
        threading.Thread(target=run, name=f"{self.name}-output", daemon=True).start()

    def tail(self) -> str:
        return "\n".join(self.lines[-12:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("CONSENT_AGENT_HOME", None)
    env.update(extra)
    return env


def start_relay(timeout: float = 30.0) -> tuple[Process, str]:
    proc = subprocess.Popen([sys.executable, "-m", "relay", "serve", "--host", "127.0.0.1", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env())
    process = Process("relay", proc)
    try:
        return process, _relay_url(process, timeout)
    except BaseException:  # a failed start, or Ctrl-C while waiting: the relay must not outlive the demo
        process.stop()
        raise


def _relay_url(process: Process, timeout: float) -> str:
    proc = process.proc
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            raise DemoError(f"the relay exited with status {proc.returncode}")
        process.lines.append(line.rstrip())
        found = LISTENING.search(line)
        if found:
            process.pump(echo=False)
            return found.group(1).rstrip("/")
    raise DemoError(f"the relay did not start within {timeout:.0f} s")


def start_agent(data_dir: Path, relay: str, ui: str | None, timeout: float = 60.0) -> tuple[Process, dict[str, Any]]:
    """``consent-agent serve`` behind ``relay``, with a passphrase made for this throw-away agent."""
    passphrase = secrets.token_urlsafe(24)
    args = [sys.executable, "-m", "app", "serve", "--data-dir", str(data_dir), "--host", "127.0.0.1",
            "--port", "0", "--relay", relay, *(("--ui", ui) if ui else ())]
    # no shell, and every argument is ours: the data dir we made and the relay URL it printed
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,  # noqa: S603
                            env=_env(CONSENT_AGENT_PASSPHRASE=passphrase))
    process = Process("agent", proc)
    process.pump(echo=False)
    try:
        return process, _agent_info(process, data_dir / "agent.json", timeout)
    except BaseException:  # a failed start, or Ctrl-C while waiting: the agent must not outlive the demo
        process.stop()
        raise


def _agent_info(process: Process, info_path: Path, timeout: float) -> dict[str, Any]:
    proc = process.proc
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            time.sleep(0.2)
            raise DemoError(f"the agent exited with status {proc.returncode}:\n{process.tail()}")
        try:
            info = json.loads(info_path.read_text())
            if info.get("pid") == proc.pid and _answers(info["issuer"]):
                return dict(info)
        except (OSError, ValueError, KeyError):  # agent.json not written yet, or caught half written
            pass
        time.sleep(0.1)
    raise DemoError(f"the agent was not reachable through the relay within {timeout:.0f} s:\n{process.tail()}")


def _answers(issuer: str) -> bool:
    try:
        return httpx.get(issuer + "/.well-known/uma2-configuration", timeout=2, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def serve_in_thread(app: Any, port: int = 0) -> Iterator[str]:
    """``app`` on loopback in a thread of this process; yields its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
                            timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="records-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise DemoError("the records server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
