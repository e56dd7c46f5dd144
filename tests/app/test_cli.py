"""The CLI against a real owner API (uvicorn on a free loopback port) backed by a fake ``Owner``."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from app import cli, runtime
from core.errors import OwnerError
from core.owner import Lifetime
from core.owner_api import OwnerApp, parse_until

TOKEN = "cli-test-token-" + "y" * 32
DEC_1 = parse_until("2026-12-01")

ACCESS = {
    "id": "req-1",
    "kind": "access",
    "profile": "me",
    "created_at": 1_790_000_000,
    "client": {"client_id": "ehr-7", "client_name": "Riverside Clinic EHR"},
    "requester": {
        "issuer": "https://idp.example",
        "subject": "u-42",
        "email": "dr.alice@example.org",
        "name": "Dr Alice Ng",
        "verified": True,
    },
    "permissions": [{"resource_id": "labs", "resource_name": "Labs", "scopes": ["read"]}],
    "purpose": "follow-up after surgery",
}
CONNECT = {
    "id": "req-2",
    "kind": "connect",
    "profile": "me",
    "created_at": 1_790_000_100,
    "client": {"client_id": "lab-3", "client_name": "City Lab\x1b[2J\u202e"},
    "scope": "uma_protection",
    "match_code": "KXQT-7MPD",
}
SHARE = {
    "id": "sh-1",
    "profile": "me",
    "permissions": [{"resource_id": "labs", "resource_name": "Labs", "scopes": ["read"]}],
    "grantee": {"kind": "email", "email": "dr.alice@example.org"},
    "grantee_text": "email:dr.alice@example.org",
    "created_at": 1_790_000_200,
    "expires_at": DEC_1,
    "once": False,
    "revoked_at": None,
    "origin": "request",
    "purpose": None,
    "active": True,
}


class FakeOwner:
    """The ``Owner`` interface with canned answers; records what it was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def _did(self, op: str, /, *args: Any, **kwargs: Any) -> None:
        self.calls.append((op, args, kwargs))

    def status(self) -> dict[str, Any]:
        return {
            "issuer": "http://127.0.0.1:8470",
            "agent_id": "agent-xyz",
            "key_protection": "plaintext",
            "warnings": ["private keys are stored in plaintext (development mode)"],
            "pending": 2,
            "shares_active": 1,
            "profiles": 1,
            "clients": 2,
            "resources": 3,
            "audit_ok": True,
            "notices": [{"kind": "guardianship_ended", "profile": "mia", "name": "Mia",
                         "message": "Your guardianship for Mia ended on 2027-03-02; Mia decides now."}],
        }

    def inbox(self) -> list[dict[str, Any]]:
        return [ACCESS, CONNECT]

    def approve(
        self,
        item_id: str,
        *,
        scopes: list[str] | None = None,
        lifetime: Lifetime = Lifetime(),
        profile: str | None = None,
    ) -> dict[str, Any]:
        if item_id == "gone":
            raise OwnerError("no request 'gone' in the inbox", status=404)
        self._did("approve", item_id, scopes=scopes, lifetime=lifetime, profile=profile)
        return {"item": {**ACCESS, "id": item_id, "status": "approved"}, "share": SHARE}

    def deny(self, item_id: str, *, remember: bool = False) -> dict[str, Any]:
        self._did("deny", item_id, remember=remember)
        return {"item": {**ACCESS, "status": "denied"}}

    def share(self, **kwargs: Any) -> dict[str, Any]:
        self._did("share", **kwargs)
        return {**SHARE, "id": "sh-2", "origin": "ahead"}

    def shares(self, *, include_inactive: bool = False) -> list[dict[str, Any]]:
        self._did("shares", include_inactive=include_inactive)
        ended = {**SHARE, "id": "sh-0", "revoked_at": 1_790_000_300, "active": False, "expires_at": None}
        return [SHARE, ended] if include_inactive else [SHARE]

    def revoke(self, share_id: str) -> dict[str, Any]:
        self._did("revoke", share_id)
        return {**SHARE, "id": share_id, "active": False}

    def profiles(self) -> list[dict[str, Any]]:
        return [{"id": "me", "name": "Me", "kind": "owner", "until": None, "exclude": []}]

    def add_profile(self, name: str, **kwargs: Any) -> dict[str, Any]:
        self._did("add_profile", name, **kwargs)
        return {"id": "kid", "name": name, "kind": "dependent", **kwargs}

    def trust_add(self, issuer: str, **kwargs: Any) -> dict[str, Any]:
        self._did("trust_add", issuer, **kwargs)
        return {"issuer": issuer, "name": kwargs.get("name") or issuer, "keys": 1}

    def trust_list(self) -> list[dict[str, Any]]:
        return [{"issuer": "https://idp.example", "name": "Example IdP", "jwks_uri": None, "keys": 1}]

    def audit(self, limit: int = 50) -> list[dict[str, Any]]:
        self._did("audit", limit)
        return [
            {
                "seq": 1,
                "ts": 1_790_000_400.5,
                "event": "share_revoked",
                "share_id": "sh-0",
                "actor": "owner",
                "prev": "0" * 64,
                "hash": "f" * 64,
            }
        ]

    def resources(self) -> list[dict[str, Any]]:
        return []

    def connections(self) -> list[dict[str, Any]]:
        return []

    def disconnect(self, connection_id: str) -> dict[str, Any]:
        return {"id": connection_id}


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeOwner, str]]:
    owner = FakeOwner()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(
            OwnerApp(owner, TOKEN),  # type: ignore[arg-type]
            log_level="warning",
            lifespan="off",
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    yield owner, f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(5)


@pytest.fixture
def owner(served: tuple[FakeOwner, str]) -> FakeOwner:
    served[0].calls.clear()
    return served[0]


@pytest.fixture
def data_dir(tmp_path: Path, served: tuple[FakeOwner, str]) -> Path:
    (tmp_path / "agent.json").write_text(
        json.dumps(
            {
                "issuer": "http://127.0.0.1:8470",
                "agent_id": "agent-xyz",
                "owner_api": served[1],
                "pid": 1,
                "ui": None,
            }
        )
    )
    (tmp_path / "owner.token").write_text(TOKEN + "\n")
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# --- what a person reads ---------------------------------------------------------------------------


def test_status_tells_a_person_how_the_agent_is_doing(
    capsys: pytest.CaptureFixture[str], data_dir: Path
) -> None:
    code, out, err = run(capsys, "status", "--data-dir", data_dir)
    assert (code, err) == (0, "")
    assert "http://127.0.0.1:8470" in out
    assert "agent-xyz" in out
    assert "2 waiting" in out
    assert "WARNING: private keys are stored in plaintext" in out
    assert "NOTICE: Your guardianship for Mia ended on 2027-03-02; Mia decides now." in out


def test_inbox_shows_one_block_per_request_with_who_what_purpose_and_code(
    capsys: pytest.CaptureFixture[str], data_dir: Path
) -> None:
    code, out, _ = run(capsys, "inbox", "--data-dir", data_dir)
    assert code == 0
    access, connect = out.strip().split("\n\n")
    assert "req-1" in access
    assert "Dr Alice Ng <dr.alice@example.org>, verified by https://idp.example" in access
    assert "Riverside Clinic EHR" in access
    assert "read on Labs" in access
    assert "follow-up after surgery" in access
    assert "2026-09-21" in access  # created_at, readable
    assert "req-2" in connect
    assert "City Lab" in connect
    assert "KXQT-7MPD" in connect


def test_names_from_clients_cannot_send_escape_sequences_to_the_terminal(
    capsys: pytest.CaptureFixture[str], data_dir: Path
) -> None:
    out = run(capsys, "inbox", "--data-dir", data_dir)[1]
    assert "City Lab?[2J?" in out
    assert "\x1b" not in out and "\u202e" not in out


def test_inbox_json_prints_the_array_exactly_as_the_api_returns_it(
    capsys: pytest.CaptureFixture[str], data_dir: Path, served: tuple[FakeOwner, str]
) -> None:
    direct = httpx.get(served[1] + "/v1/inbox", headers={"Authorization": f"Bearer {TOKEN}"})
    code, out, _ = run(capsys, "inbox", "--data-dir", data_dir, "--json")
    assert code == 0
    assert out == direct.text + "\n"
    assert json.loads(out) == [ACCESS, CONNECT]


def test_approve_says_what_was_shared_with_whom_until_when(
    capsys: pytest.CaptureFixture[str], data_dir: Path, owner: FakeOwner
) -> None:
    code, out, _ = run(
        capsys,
        "approve",
        "req-1",
        "--scopes",
        "read",
        "--until",
        "2026-12-01",
        "--profile",
        "me",
        "--data-dir",
        data_dir,
    )
    assert code == 0
    assert (
        out
        == "Approved req-1: shared read on Labs with email:dr.alice@example.org until 2026-12-01 00:00 UTC\n"
    )
    assert owner.calls == [
        ("approve", ("req-1",), {"scopes": ["read"], "lifetime": Lifetime(until=DEC_1), "profile": "me"})
    ]


@pytest.mark.parametrize(
    ("flags", "lifetime"),
    [([], Lifetime()), (["--once"], Lifetime(once=True)), (["--days", "14"], Lifetime(days=14.0))],
)
def test_approve_sends_the_chosen_lifetime(
    capsys: pytest.CaptureFixture[str], data_dir: Path, owner: FakeOwner, flags: list[str], lifetime: Lifetime
) -> None:
    assert run(capsys, "approve", "req-1", *flags, "--data-dir", data_dir)[0] == 0
    assert owner.calls[-1][2]["lifetime"] == lifetime


def test_json_and_data_dir_are_accepted_before_the_command_too(
    capsys: pytest.CaptureFixture[str], data_dir: Path
) -> None:
    code, out, _ = run(capsys, "--json", "--data-dir", data_dir, "status")
    assert code == 0
    assert json.loads(out)["agent_id"] == "agent-xyz"


def test_deny_share_revoke_and_shares(
    capsys: pytest.CaptureFixture[str], data_dir: Path, owner: FakeOwner
) -> None:
    assert run(capsys, "deny", "req-1", "--remember", "--data-dir", data_dir)[1].startswith("Denied req-1;")
    code, out, _ = run(
        capsys,
        "share",
        "--profile",
        "me",
        "--resource",
        "labs",
        "--scopes",
        "read,write",
        "--with",
        "sub:https://idp.example#u-42",
        "--days",
        "30",
        "--purpose",
        "second opinion",
        "--data-dir",
        data_dir,
    )
    assert (code, out.startswith("Share sh-2: shared read on Labs")) == (0, True)
    assert run(capsys, "revoke", "sh-1", "--data-dir", data_dir)[1].startswith("Revoked share sh-1")
    code, out, _ = run(capsys, "shares", "--all", "--data-dir", data_dir)
    assert out.splitlines()[0].split() == ["ID", "PROFILE", "WHAT", "WITH", "ENDS", "STATE"]
    assert "revoked" in out.splitlines()[2]
    assert owner.calls == [
        ("deny", ("req-1",), {"remember": True}),
        (
            "share",
            (),
            {
                "profile": "me",
                "resource_id": "labs",
                "scopes": ["read", "write"],
                "grantee": "sub:https://idp.example#u-42",
                "lifetime": Lifetime(days=30.0),
                "purpose": "second opinion",
                "name": None,
            },
        ),
        ("revoke", ("sh-1",), {}),
        ("shares", (), {"include_inactive": True}),
    ]


def test_profiles_trust_and_audit(
    capsys: pytest.CaptureFixture[str], data_dir: Path, owner: FakeOwner, tmp_path: Path
) -> None:
    assert "Me" in run(capsys, "profiles", "--data-dir", data_dir)[1]
    out = run(
        capsys,
        "profiles",
        "add",
        "Kid",
        "--dependent",
        "--until",
        "2030-01-01",
        "--exclude",
        "PSY",
        "--exclude",
        "SDV",
        "--data-dir",
        data_dir,
    )[1]
    assert out.startswith("Added profile Kid")
    jwks_file = tmp_path / "idp.jwks.json"
    jwks_file.write_text('{"keys": [{"kty": "EC", "crv": "P-256", "x": "x", "y": "y"}]}')
    out = run(
        capsys,
        "trust",
        "add",
        "https://idp.example",
        "--jwks-file",
        jwks_file,
        "--name",
        "IdP",
        "--data-dir",
        data_dir,
    )[1]
    assert out.startswith("Trusting ID tokens from https://idp.example")
    assert "Example IdP" in run(capsys, "trust", "list", "--data-dir", data_dir)[1]
    out = run(capsys, "audit", "--limit", "5", "--data-dir", data_dir)[1]
    assert "share_revoked" in out and "share_id=sh-0" in out and "hash=" not in out
    assert owner.calls == [
        (
            "add_profile",
            ("Kid",),
            {"dependent": True, "until": parse_until("2030-01-01"), "exclude": ["PSY", "SDV"]},
        ),
        (
            "trust_add",
            ("https://idp.example",),
            {"jwks": json.loads(jwks_file.read_text()), "jwks_uri": None, "name": "IdP"},
        ),
        ("audit", (5,), {}),
    ]


# --- failing, in one line ----------------------------------------------------------------------------


def test_an_api_refusal_exits_1_with_its_message_on_one_line(
    capsys: pytest.CaptureFixture[str], data_dir: Path
) -> None:
    code, out, err = run(capsys, "approve", "gone", "--data-dir", data_dir)
    assert (code, out) == (1, "")
    assert err == "consent-agent: no request 'gone' in the inbox\n"


def test_a_stopped_agent_is_named_with_how_to_start_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run(capsys, "status", "--data-dir", tmp_path)
    assert (code, out) == (1, "")
    assert err.startswith(
        f"consent-agent is not running (no {tmp_path / 'agent.json'}); start it with: consent-agent serve"
    )
    assert err.count("\n") == 1


def test_a_stale_agent_json_reports_the_refused_connection(
    capsys: pytest.CaptureFixture[str], data_dir: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    (data_dir / "agent.json").write_text(json.dumps({"owner_api": f"http://127.0.0.1:{closed_port}"}))
    code, _, err = run(capsys, "inbox", "--data-dir", data_dir)
    assert code == 1
    assert "connection refused" in err and err.count("\n") == 1


def test_a_wrong_owner_token_is_reported(capsys: pytest.CaptureFixture[str], data_dir: Path) -> None:
    (data_dir / "owner.token").write_text("not-the-token-at-all-at-all")
    code, _, err = run(capsys, "status", "--data-dir", data_dir)
    assert code == 1
    assert "refused the owner token" in err and err.count("\n") == 1


def test_an_owner_api_url_off_loopback_is_not_sent_the_token(
    capsys: pytest.CaptureFixture[str], data_dir: Path
) -> None:
    (data_dir / "agent.json").write_text(json.dumps({"owner_api": "http://203.0.113.9:8080"}))
    code, _, err = run(capsys, "status", "--data-dir", data_dir)
    assert code == 1
    assert "loopback" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["approve"],
        ["approve", "x", "--until", "next week"],
        ["approve", "x", "--once", "--days", "3"],
        ["share", "--profile", "me"],
        ["trust", "add", "https://idp.example"],
        ["audit", "--limit", "-1"],
        ["frobnicate"],
    ],
)
def test_a_malformed_command_line_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], data_dir: Path, argv: list[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main([*argv, "--data-dir", str(data_dir)])
    assert exited.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


# --- defaults ------------------------------------------------------------------------------------------


def test_the_data_dir_comes_from_consent_agent_home_then_xdg_then_home() -> None:
    assert cli.default_data_dir({"CONSENT_AGENT_HOME": "/srv/ca", "XDG_DATA_HOME": "/x"}) == Path("/srv/ca")
    assert cli.default_data_dir({"XDG_DATA_HOME": "/x"}) == Path("/x/consent-agent")
    assert cli.default_data_dir({}) == Path.home() / ".local/share/consent-agent"


def test_no_arguments_means_serve_with_the_default_ui(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[runtime.ServeOptions] = []

    def serve(opts: runtime.ServeOptions) -> int:
        seen.append(opts)
        return 0

    monkeypatch.setattr(runtime, "serve", serve)
    monkeypatch.setenv("CONSENT_AGENT_HOME", "/tmp/somewhere")
    assert cli.main([]) == 0
    assert seen == [runtime.ServeOptions(data_dir=Path("/tmp/somewhere"))]
