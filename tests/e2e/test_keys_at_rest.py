"""No private key can be read from the data directory of a real agent without the passphrase."""

from __future__ import annotations

import base64
from pathlib import Path

from core.clock import system_clock
from core.keys import open_keyring
from tests.e2e.agentproc import AgentProcess

PASSPHRASE = "correct horse battery staple"  # what tests.e2e.agentproc.env() gives the agent


def forms_of_secret(d: bytes) -> list[bytes]:
    """The raw scalar and every usual text spelling of it."""
    b64u = base64.urlsafe_b64encode(d).rstrip(b"=")
    return [d, d.hex().encode(), d.hex().upper().encode(), b64u, base64.b64encode(d)]


def test_data_dir_of_a_served_agent_holds_no_private_key_material(tmp_path: Path) -> None:
    data = tmp_path / "agent"
    agent = AgentProcess(data)
    agent.start()
    agent.cli("status")
    agent.stop()
    keys = open_keyring(data, clock=system_clock, passphrase=PASSPHRASE, use_os_keychain=False)
    material = keys._material()
    secrets = [base64.urlsafe_b64decode(material["identity"]["d"] + "=="),
               base64.urlsafe_b64decode(material["master_secret"] + "==")]
    secrets += [base64.urlsafe_b64decode(s["jwk"]["d"] + "==") for s in material["signing"]]
    files = [p for p in data.rglob("*") if p.is_file()]
    assert any(p.name == "keys.json" for p in files)
    for path in files:
        blob = path.read_bytes()
        for secret in secrets:
            for form in forms_of_secret(secret):
                assert form not in blob, f"{path} holds private key material"
    assert keys.protection == "passphrase"
