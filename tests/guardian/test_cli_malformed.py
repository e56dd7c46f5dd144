"""``consent-agent profiles ...`` with bad arguments, through ``app.cli.main`` against a live owner API
(uvicorn on a free loopback port) over Anna's real agent (guardian of Mia).

A malformed command line is refused by the parser (exit 2), anything the agent refuses is exit 1;
either way one line on stderr that says why, nothing on stdout, no traceback, and the agent's state
and activity log are unchanged.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from app import cli
from core import handover
from core.owner_api import OwnerApp
from core.state import TABLES
from tests.guardian.conftest import Family, build_family

TOKEN = "cli-malformed-owner-token-" + "c" * 16
MIA = "https://mia.example"


@dataclass
class Live:
    family: Family
    data_dir: Path
    files: Path

    def snapshot(self) -> list[Any]:
        agent = self.family.agent
        return [{t: sorted(json.dumps(d, sort_keys=True) for d in agent.state.all(t)) for t in TABLES},
                agent.audit.tail(1)]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("cli")
    family = build_family(tmp / "anna")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(OwnerApp(family.owner, TOKEN), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        data_dir = tmp / "data"
        data_dir.mkdir()
        (data_dir / "agent.json").write_text(json.dumps({
            "issuer": family.agent.issuer, "agent_id": family.agent.keys.agent_id,
            "owner_api": f"http://127.0.0.1:{sock.getsockname()[1]}", "pid": 1, "ui": None}))
        (data_dir / "owner.token").write_text(TOKEN + "\n")
        files = tmp / "files"
        files.mkdir()
        (files / "passphrase").write_text("a passphrase for Mia\n")
        (files / "short").write_text("short\n")
        (files / "garbage.json").write_text("this is not a bundle\n")
        (files / "binary").write_bytes(b"\xff\xfe\x00bundle")
        (files / "empty").write_text("\n")
        (files / "exists.json").write_text("{}")
        (files / "a-directory").mkdir()
        mine, _ = handover.seal(family.agent, handover.gather(family.agent, {"id": "grandma"}),
                                to=family.agent.issuer, passphrase="a passphrase for Mia")
        (files / "mine.json").write_bytes(mine)
        yield Live(family, data_dir, files)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
        family.agent.close()


def run(capsys: pytest.CaptureFixture[str], live: Live, argv: list[str]) -> tuple[int, str, str]:
    args = [a.replace("{files}", str(live.files)) for a in argv]
    try:
        code = cli.main([*args, "--data-dir", str(live.data_dir)])
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


PARSER = [
    (["profiles", "add"], "the following arguments are required: NAME"),
    (["profiles", "add", "Zoe", "--dependent", "--until", "next summer"], "'next summer' is not a date"),
    (["profiles", "add", "Zoe", "--dependent", "--until", "9999-12-31T23:59:59-23:59"], "is not a date"),
    (["profiles", "add", "Zoe", "--dependent", "--covers", ","], "give scopes as a,b"),
    (["profiles", "frobnicate"], "invalid choice: 'frobnicate'"),
    (["profiles", "show"], "the following arguments are required: ID"),
    (["profiles", "rename", "mia"], "the following arguments are required: NAME"),
    (["profiles", "change", "mia", "--require", "three"], "invalid choice: 'three'"),
    (["profiles", "change", "mia", "--until", "2027-02-30"], "is not a date"),
    (["profiles", "end"], "the following arguments are required: ID"),
    (["profiles", "handover", "mia"], "the following arguments are required: --to"),
    (["profiles", "import"], "the following arguments are required: FILE"),
    (["profiles", "keep"], "the following arguments are required: SHARE_ID"),
    (["profiles", "co-guardian", "mia", "--name", "Ben"], "the following arguments are required: --agent-id"),
    (["profiles", "decide", "{files}/garbage.json"], "one of the arguments --approve --deny is required"),
    (["profiles", "decide", "{files}/garbage.json", "--approve", "--deny"], "not allowed with argument"),
    (["profiles", "decide", "{files}/garbage.json", "--approve", "--days", "-1"],
     "'-1' is not a positive number of days"),
    (["profiles", "decide", "{files}/garbage.json", "--approve", "--days", "nan"],
     "'nan' is not a positive number of days"),
    (["profiles", "decide", "{files}/garbage.json", "--approve", "--once", "--days", "3"], "not allowed with argument"),
    (["profiles", "accept"], "the following arguments are required: FILE"),
]


@pytest.mark.parametrize(("argv", "says"), PARSER, ids=[" ".join(a) for a, _ in PARSER])
def test_a_malformed_command_line_is_refused_by_the_parser_in_one_line(
        argv: list[str], says: str, live: Live, capsys: pytest.CaptureFixture[str]) -> None:
    before = live.snapshot()
    code, out, err = run(capsys, live, argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("consent-agent") and "Traceback" not in err, err
    assert says in err, err
    assert live.snapshot() == before


AGENT = [
    (["profiles", "add", "Mia"], "a profile called 'Mia' exists already"),
    (["profiles", "add", "Zo\udcffe"], "an argument is not valid UTF-8 text"),
    (["profiles", "add", "x" * 200], "a profile needs a name of 1 to 80 characters"),
    (["profiles", "add", "Zoe", "--dependent", "--until", "2001-01-01"], "the guardianship's end date is already past"),
    (["profiles", "add", "Zoe", "--dependent", "--exclude", "P SY"], "'P SY' is not a sensitivity code"),
    (["profiles", "add", "Zoe", "--dependent", "--covers", "drive,fly"], "a guardianship covers some of"),
    (["profiles", "add", "Zoe", "--until", "2030-01-01"], "belong to a dependent's profile"),
    (["profiles", "show", "nobody"], "no profile 'nobody'"),
    (["profiles", "show", "../../etc/passwd"], "no such endpoint"),
    (["profiles", "rename", "mia", "Anna"], "a profile called 'Anna' exists already"),
    (["profiles", "change", "mia"], "nothing to change"),
    (["profiles", "change", "mia", "--until", "2040-01-01"], "a guardianship can end earlier, never later"),
    (["profiles", "change", "mia", "--until", "2001-01-01"], "that date is already past"),
    (["profiles", "change", "mia", "--require", "both"], "add the other guardian first"),
    (["profiles", "change", "me", "--covers", "approve"], "Anna is not a dependent in your care on this agent"),
    (["profiles", "change", "nobody", "--covers", "approve"], "no profile 'nobody'"),
    (["profiles", "end", "me"], "Anna is not a dependent in your care on this agent"),
    (["profiles", "end", "nobody"], "no profile 'nobody'"),
    (["profiles", "handover", "me", "--to", MIA, "--out", "{files}/me.json", "--passphrase-file", "{files}/passphrase"],
     "your own profile moves with a key backup"),
    (["profiles", "handover", "mia", "--to", "http://mia.example", "--out", "{files}/m.json",
      "--passphrase-file", "{files}/passphrase"], "the dependent's agent must be an https URL"),
    (["profiles", "handover", "mia", "--to", "https://anna.example", "--out", "{files}/m.json",
      "--passphrase-file", "{files}/passphrase"], "that is this agent"),
    (["profiles", "handover", "mia", "--to", MIA, "--out", "{files}/m.json", "--passphrase-file", "{files}/short"],
     "a passphrase of at least 8 characters"),
    (["profiles", "handover", "mia", "--to", MIA, "--out", "{files}/m.json", "--passphrase-file", "{files}/none"],
     "cannot read"),
    (["profiles", "handover", "mia", "--to", MIA, "--out", "{files}/exists.json",
      "--passphrase-file", "{files}/passphrase"], "exists already; choose another file with --out"),
    (["profiles", "handover", "mia", "--to", MIA, "--out", "{files}/m.json"], "give the bundle's passphrase"),
    (["profiles", "handover", "nobody", "--to", MIA, "--out", "{files}/m.json", "--passphrase-file",
      "{files}/passphrase"], "no profile 'nobody'"),
    (["profiles", "import", "{files}/none.json", "--passphrase-file", "{files}/passphrase"],
     "cannot read the bundle from"),
    (["profiles", "import", "{files}/a-directory", "--passphrase-file", "{files}/passphrase"],
     "cannot read the bundle from"),
    (["profiles", "import", "{files}/binary", "--passphrase-file", "{files}/passphrase"],
     "cannot read the bundle from"),
    (["profiles", "import", "{files}/empty", "--passphrase-file", "{files}/passphrase"],
     "bundle must be a non-empty string"),
    (["profiles", "import", "{files}/garbage.json", "--passphrase-file", "{files}/passphrase"],
     "this is not a consent-agent hand-over bundle"),
    (["profiles", "import", "{files}/mine.json", "--passphrase-file", "{files}/short"],
     "wrong passphrase for this bundle"),
    (["profiles", "import", "{files}/mine.json", "--passphrase-file", "{files}/passphrase"],
     "this bundle was made by this agent"),
    (["profiles", "import", "{files}/mine.json"], "give the bundle's passphrase"),
    (["profiles", "review", "nobody"], "no profile 'nobody'"),
    (["profiles", "keep", "sh_nope"], "no share 'sh_nope'"),
    (["profiles", "co-guardian", "mia", "--name", "Ben", "--agent-id", "short"],
     "an agent id is the 43-character thumbprint"),
    (["profiles", "co-guardian", "mia", "--name", "Ben", "--agent-id", "B" * 43, "--issuer", "http://ben.example"],
     "the guardian's agent must be an https URL"),
    (["profiles", "co-guardian", "me", "--name", "Ben", "--agent-id", "B" * 43], "is not a dependent in your care"),
    (["profiles", "ask", "req_nope"], "no request 'req_nope' in the inbox"),
    (["profiles", "decide", "{files}/garbage.json", "--approve"], "the signed document does not check out"),
    (["profiles", "decide", "{files}/none.jwt", "--deny"], "cannot read the decision request from"),
    (["profiles", "decide", "{files}/empty", "--deny"], "request must be a non-empty string"),
    (["profiles", "accept", "{files}/garbage.json"], "that is not a signed decision"),
    (["profiles", "accept", "{files}/binary"], "cannot read the decision from"),
    (["profiles", "accept", "{files}/empty"], "decision must be a non-empty string"),
]


@pytest.mark.parametrize(("argv", "says"), AGENT, ids=[" ".join(a)[:80] for a, _ in AGENT])
def test_what_the_agent_refuses_is_one_line_on_stderr_and_exit_1(
        argv: list[str], says: str, live: Live, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cli.BUNDLE_PASSPHRASE_ENV, raising=False)
    before = live.snapshot()
    code, out, err = run(capsys, live, argv)
    assert code == 1 and out == "", (out, err)
    assert err.count("\n") == 1 and err.startswith("consent-agent: ") and "Traceback" not in err, err
    assert says in err, err
    assert live.snapshot() == before
    assert not (live.files / "m.json").exists() and not (live.files / "me.json").exists()
