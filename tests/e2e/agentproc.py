"""Run ``consent-agent serve`` as a real process and drive its CLI, for black-box tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def env(passphrase: str = "correct horse battery staple") -> dict[str, str]:
    e = dict(os.environ)
    e["CONSENT_AGENT_PASSPHRASE"] = passphrase
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    e.pop("CONSENT_AGENT_HOME", None)
    return e


@dataclass
class AgentProcess:
    data_dir: Path
    proc: subprocess.Popen[bytes] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def start(self, *extra: str, ui: str | None = "none", timeout: float = 30.0) -> dict[str, Any]:
        """``ui``: ``none``, ``web``, ``desktop``, or None for the agent's own choice."""
        agent_json = self.data_dir / "agent.json"
        if agent_json.exists():
            agent_json.unlink()  # left behind by a killed run
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "--data-dir", str(self.data_dir), "--port", "0",
             *(("--ui", ui) if ui else ()), *extra],
            env=env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                out = self.proc.stdout.read().decode() if self.proc.stdout else ""
                raise RuntimeError(f"agent exited with {self.proc.returncode}: {out}")
            if agent_json.exists():
                try:
                    self.info = json.loads(agent_json.read_text())
                    if self.info.get("pid") == self.proc.pid:
                        return self.info
                except ValueError:
                    pass
            time.sleep(0.05)
        raise RuntimeError("agent did not start in time")

    @property
    def owner_token(self) -> str:
        return (self.data_dir / "owner.token").read_text().strip()

    @property
    def issuer(self) -> str:
        return str(self.info["issuer"])

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "app", *args, "--data-dir", str(self.data_dir)],
                              env=env(), cwd=ROOT, capture_output=True, text=True, timeout=60)
        if check and done.returncode != 0:
            raise AssertionError(f"consent-agent {' '.join(args)} failed: {done.stderr or done.stdout}")
        return done

    def cli_json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--json").stdout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        code = self.proc.returncode
        self.proc = None
        return code
