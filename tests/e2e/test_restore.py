"""A key backup made on one device restores into a new data dir as the same agent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from core.clock import system_clock
from core.keys import open_keyring
from tests.e2e.agentproc import ROOT, AgentProcess, env

PASSPHRASE = "correct horse battery staple"


def restore(*args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app", "restore", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={**env(), **(extra_env or {})})


def test_a_backup_restores_as_the_same_agent_on_a_new_device(tmp_path: Path) -> None:
    old = tmp_path / "old"
    original = AgentProcess(old)
    original.start()
    agent_id = original.info["agent_id"]
    original.stop()
    backup = tmp_path / "agent-backup.json"
    backup.write_bytes(open_keyring(old, clock=system_clock, passphrase=PASSPHRASE,
                                    use_os_keychain=False).export_backup("backup passphrase 1"))
    (tmp_path / "bp").write_text("backup passphrase 1\n")

    new = tmp_path / "new"
    done = restore(str(backup), "--data-dir", str(new), "--backup-passphrase-file", str(tmp_path / "bp"))
    assert done.returncode == 0, done.stderr
    assert agent_id in done.stdout

    moved = AgentProcess(new)
    moved.start()
    try:
        assert moved.info["agent_id"] == agent_id
        meta = httpx.get(moved.issuer + "/.well-known/uma2-configuration", timeout=5).json()
        assert meta["issuer"] == moved.issuer
    finally:
        moved.stop()


def test_a_wrong_backup_passphrase_restores_nothing_and_says_so(tmp_path: Path) -> None:
    ring = open_keyring(tmp_path / "old", clock=system_clock, passphrase=PASSPHRASE, use_os_keychain=False)
    backup = tmp_path / "b.json"
    backup.write_bytes(ring.export_backup("the right one"))
    done = restore(str(backup), "--data-dir", str(tmp_path / "new"),
                   extra_env={"CONSENT_AGENT_BACKUP_PASSPHRASE": "a wrong one"})
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "consent-agent:" in done.stderr
    assert not (tmp_path / "new" / "keys.json").exists()


def test_restoring_over_existing_keys_is_refused(tmp_path: Path) -> None:
    ring = open_keyring(tmp_path / "old", clock=system_clock, passphrase=PASSPHRASE, use_os_keychain=False)
    backup = tmp_path / "b.json"
    backup.write_bytes(ring.export_backup("the right one"))
    done = restore(str(backup), "--data-dir", str(tmp_path / "old"),
                   extra_env={"CONSENT_AGENT_BACKUP_PASSPHRASE": "the right one"})
    assert done.returncode == 1 and "keys.json" in done.stderr
