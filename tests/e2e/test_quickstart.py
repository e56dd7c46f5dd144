"""The README's first command runs examples/quickstart.py; it must keep working."""

from __future__ import annotations

import subprocess
import sys

from tests.e2e.agentproc import ROOT, env


def run(decision: str) -> str:
    done = subprocess.run([sys.executable, "examples/quickstart.py", "--ui", "none", "--auto", decision], cwd=ROOT,
                          env=env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_quickstart_share_gives_the_clinic_a_bound_token_for_read_only():
    out = run("share")
    assert "Dr. Bob Jones" in out and "purpose:    treatment (TREAT)" in out
    assert "got a DPoP-bound token" in out and '"resource_scopes": ["read"]' in out


def test_quickstart_deny_refuses_the_clinic():
    assert "was refused: request_denied" in run("deny")
