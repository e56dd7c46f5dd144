"""``python -m examples.idp``: the demo sign-in service the walk-throughs use to mint ID tokens."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import jwt
import pytest

from examples.idp.__main__ import main
from examples.idp.provider import ISSUER
from tests.e2e.agentproc import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def printed(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(list(args)) == 0
    return capsys.readouterr().out


def test_token_verifies_with_the_printed_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys = json.loads(printed(capsys, "jwks", "--dir", str(tmp_path)))
    token = printed(capsys, "token", "bob", "--aud", "c_clinic", "--purpose", "TREAT", "--dir", str(tmp_path)).strip()
    [jwk] = keys["keys"]
    assert "d" not in jwk
    claims = jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=["ES256"], audience="c_clinic", issuer=ISSUER)
    assert claims["sub"] == "dr-bob-jones"
    assert claims["purpose_of_use"] == "TREAT"
    assert claims["exp"] > time.time()
    assert jwt.get_unverified_header(token)["kid"] == jwk["kid"]


def test_the_key_is_kept_in_the_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = printed(capsys, "jwks", "--dir", str(tmp_path / "a"))
    assert printed(capsys, "jwks", "--dir", str(tmp_path / "a")) == first
    assert printed(capsys, "jwks", "--dir", str(tmp_path / "b")) != first


def test_unknown_clinician_and_missing_audience_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    for args in (["token", "alice", "--aud", "x"], ["token", "bob"]):
        with pytest.raises(SystemExit) as exc:
            main(args)
        assert exc.value.code == 2
    capsys.readouterr()


def test_without_a_command_it_still_serves_its_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys = json.loads(printed(capsys, "jwks", "--dir", str(tmp_path)))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "examples.idp", "--port", str(port), "--dir", str(tmp_path)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                served = httpx.get(f"http://127.0.0.1:{port}/jwks.json", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, "the provider did not start"
                time.sleep(0.1)
        assert served.json() == keys
        config = httpx.get(f"http://127.0.0.1:{port}/.well-known/openid-configuration", timeout=2).json()
        assert config["issuer"] == f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)
