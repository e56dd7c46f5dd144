"""The CLI against two real agent processes: a dependent with an end date and exclusions, a lab
connected to her profile, the hand-over bundle written by one agent and imported by the other."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from core.owner_api import parse_until
from tests.e2e.agentproc import AgentProcess
from tests.flow import DEVICE_GRANT, ResourceServer


def connect(agent: AgentProcess, lab: ResourceServer, *approve_args: str) -> dict:
    device = lab.start_device_flow()
    item = next(i for i in agent.cli_json("inbox") if i.get("user_code") == device["user_code"])
    agent.cli("approve", item["id"], *approve_args)
    r = lab.poll_device(device["device_code"])  # the first poll: no slow_down to fear
    assert r.status_code == 200, r.text
    return item


def test_profiles_add_handover_and_import_through_the_cli(tmp_path: Path) -> None:
    anna, mia = AgentProcess(tmp_path / "anna"), AgentProcess(tmp_path / "mia")
    client = httpx.Client(timeout=10)
    try:
        anna.start()
        mia.start()
        added = anna.cli_json("profiles", "add", "Mia", "--dependent", "--until", "2040-01-01",
                              "--exclude", "PSY", "--exclude", "sdv")
        assert (added["id"], added["kind"], added["exclude"]) == ("mia", "dependent", ["PSY", "SDV"])
        assert added["guardianship"]["ends_at"] == parse_until("2040-01-01")
        shown = anna.cli("profiles", "show", "mia").stdout
        assert "PSY (psychiatry)" in shown and "you are guardian until 2040-01-01" in shown

        lab = ResourceServer(client, anna.issuer, time.time)
        lab.register("City Lab", [DEVICE_GRANT, "refresh_token"])
        connect(anna, lab, "--profile", "mia")
        rid = lab.register_resource({"name": "Lab results", "resource_scopes": ["read"]})

        secret = tmp_path / "bundle-passphrase"
        secret.write_text("a passphrase for Mia\n")
        bundle = tmp_path / "mia.handover.json"
        out = anna.cli_json("profiles", "handover", "mia", "--to", mia.issuer, "--out", str(bundle),
                            "--passphrase-file", str(secret))
        assert out["file"] == str(bundle) and "bundle" not in out
        assert bundle.stat().st_mode & 0o777 == 0o600

        r = client.post(anna.issuer + "/permission", json={"resource_id": rid, "resource_scopes": ["read"]},
                        headers=lab.protected("POST", "/permission"))
        assert r.status_code == 401 and r.json()["as_uri"] == mia.issuer

        imported = mia.cli_json("profiles", "import", str(bundle), "--passphrase-file", str(secret))
        assert imported["resources"] == 1 and imported["reconnect"] == [lab.client_id]
        moved = ResourceServer(client, mia.issuer, time.time, key=lab.key, dpop_key=lab.dpop_key,
                               client_id=lab.client_id)
        item = connect(mia, moved)
        assert item["reconnect"]["from"] == anna.issuer
        listed = client.get(mia.issuer + "/resource_set", headers=moved.protected("GET", "/resource_set"))
        assert listed.json() == [rid]

        log = anna.cli_json("audit", "--limit", "500")
        [handed] = [e for e in log if e["event"] == "profile_handed_over"]
        assert handed["on_behalf_of"] == "mia" and handed["decided_by"]["role"] == "guardian"
        assert handed["to"] == mia.issuer
        listed_profiles = anna.cli("profiles").stdout
        assert f"handed over to {mia.issuer}" in listed_profiles

        again = mia.cli("profiles", "import", str(bundle), "--passphrase-file", str(secret), check=False)
        assert again.returncode == 1
        assert again.stderr.strip() == "consent-agent: this bundle was imported already"
    finally:
        client.close()
        anna.stop()
        mia.stop()
