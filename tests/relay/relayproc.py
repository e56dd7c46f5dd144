"""Run ``consent-relay serve`` as a real process for black-box tests."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

from tests.e2e.agentproc import ROOT, env

LISTENING = re.compile(r"listening on (http://\S+)")


@dataclass
class RelayProcess:
    proc: subprocess.Popen[str] | None = None
    url: str = ""

    def start(self, *extra: str, timeout: float = 20.0) -> str:
        self.proc = subprocess.Popen([sys.executable, "-m", "relay", "serve", "--port", "0", *extra], cwd=ROOT,
                                     env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line and self.proc.poll() is not None:
                raise RuntimeError(f"relay exited with {self.proc.returncode}")
            found = LISTENING.search(line)
            if found:
                self.url = found.group(1).rstrip("/")
                return self.url
        raise RuntimeError("relay did not start in time")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        self.proc = None
