"""``consent-agent serve`` as a real process: it starts, announces itself, answers, and stops cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def agent_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CONSENT_AGENT_PASSPHRASE", "CONSENT_AGENT_HOME", "HTTP_PROXY", "HTTPS_PROXY")
    }
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def consent_agent(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "app", *map(str, args)]


def wait_for(path: Path, proc: subprocess.Popen[bytes], timeout: float = 20) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return dict(json.loads(path.read_text()))
        if proc.poll() is not None:
            raise AssertionError(f"serve exited early with {proc.returncode}")
        time.sleep(0.05)
    raise AssertionError(f"{path} did not appear within {timeout} s")


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        consent_agent("serve", "--data-dir", tmp_path / "data", "--port", "0", "--ui", "none"),
        cwd=ROOT,
        env=agent_env(CONSENT_AGENT_PASSPHRASE="correct horse battery staple"),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    yield proc, tmp_path / "data"
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    log.close()


def test_serve_announces_itself_answers_and_stops_cleanly_on_sigterm(
    agent: tuple[subprocess.Popen[bytes], Path],
) -> None:
    proc, data = agent
    info = wait_for(data / "agent.json", proc)
    assert info["pid"] == proc.pid
    assert str(info["owner_api"]).startswith("http://127.0.0.1:")
    assert (data / "owner.token").stat().st_mode & 0o077 == 0

    metadata = httpx.get(f"{info['issuer']}/.well-known/uma2-configuration", timeout=10, trust_env=False)
    assert metadata.status_code == 200
    assert metadata.json()["issuer"] == info["issuer"]

    status = subprocess.run(
        consent_agent("status", "--data-dir", data, "--json"),
        cwd=ROOT,
        env=agent_env(),
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["agent_id"] == info["agent_id"]

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=5) == 0
    assert not (data / "agent.json").exists()


def test_serve_without_any_way_to_unlock_the_keys_stops_at_once_naming_all_three(tmp_path: Path) -> None:
    started = time.monotonic()
    done = subprocess.run(
        consent_agent("serve", "--data-dir", tmp_path / "data", "--port", "0", "--ui", "none"),
        cwd=ROOT,
        env=agent_env(PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring"),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode != 0
    assert time.monotonic() - started < 15
    reason = done.stderr.strip()
    assert "\n" not in reason
    for way in ("--passphrase-file", "CONSENT_AGENT_PASSPHRASE", "keychain"):
        assert way in reason
    assert not (tmp_path / "data" / "keys.json").exists()


def test_serve_with_an_unusable_relay_url_is_refused_plainly(tmp_path: Path) -> None:
    done = subprocess.run(
        consent_agent("serve", "--data-dir", tmp_path / "data", "--port", "0", "--ui", "none",
                      "--relay", "http://relay.example"),
        cwd=ROOT, env=agent_env(CONSENT_AGENT_PASSPHRASE="a test passphrase"), capture_output=True, text=True,
        timeout=30, check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("consent-agent: cannot use the relay http://relay.example:")
    assert done.stderr.count("\n") == 1

