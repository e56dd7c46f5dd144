"""The walk-throughs in docs/resource-servers.md and docs/clients.md, run as written against a real agent.

What the documents mark, and how it runs here:

- every ```bash block runs, in document order, in one bash session (``set -euo pipefail``) in a scratch
  directory, the reader's working directory;
- ``<!-- file: NAME -->`` saves the fenced block after it as NAME there (the ```python kit examples, which
  the bash blocks then run with ``python NAME``); ``<!-- file: NAME from DOC -->`` saves the block DOC saved
  under that name;
- ``<!-- test: COMMAND -->`` runs COMMAND at that point and nowhere else: waiting where a person would
  watch a terminal, and checks of what the commands before it got;
- every other block (sh, text, http, json) is for reading only.

The agent is ``consent-agent serve --port 0 --ui none`` (:mod:`tests.e2e.agentproc`); the commands get its
issuer as ``$AGENT``, its data directory as ``$CONSENT_AGENT_HOME``, a free port for the example lab as
``$LAB``, and ``python`` and ``consent-agent`` from this checkout. A failing command fails the test with the
document line of its block.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.agentproc import ROOT, AgentProcess

DOCS = ROOT / "docs"
WALKTHROUGHS = ("resource-servers.md", "clients.md")
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w-]*)\s*$")
MARKER = re.compile(r"^\s*<!-- (?P<kind>file|test): (?P<text>.*?) -->\s*$")
FROM = re.compile(r"^(?P<name>[\w.-]+) from (?P<doc>[\w.-]+\.md)$")


@dataclass(frozen=True)
class Step:
    kind: str
    """``bash`` (a block), ``test`` (a marker command), ``file`` (a block saved under ``name``)."""
    text: str
    line: int
    name: str = ""


def steps_of(doc: str) -> list[Step]:
    """The runnable parts of ``docs/doc``, in order."""
    lines = (DOCS / doc).read_text(encoding="utf-8").splitlines()
    out: list[Step] = []
    pending_file: str | None = None
    i = 0
    while i < len(lines):
        marker = MARKER.match(lines[i])
        fence = FENCE.match(lines[i])
        if marker and marker["kind"] == "test":
            out.append(Step("test", marker["text"], i + 1))
        elif marker:
            borrowed = FROM.match(marker["text"])
            if borrowed:
                [saved] = [s for s in steps_of(borrowed["doc"]) if s.kind == "file" and s.name == borrowed["name"]]
                out.append(Step("file", saved.text, i + 1, saved.name))
            else:
                assert re.fullmatch(r"[\w.-]+", marker["text"]), f"docs/{doc}:{i + 1}: not a file name or NAME from DOC"
                pending_file = marker["text"]
        elif fence:
            indent, start = len(fence["indent"]), i + 1
            i += 1
            body: list[str] = []
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
                i += 1
            assert i < len(lines), f"docs/{doc}:{start}: the code block is not closed"
            text = "\n".join(body) + "\n"
            if pending_file:
                out.append(Step("file", text, start, pending_file))
                pending_file = None
            elif fence["lang"] == "bash":
                out.append(Step("bash", text, start))
            else:
                assert fence["lang"] != "python", f"docs/{doc}:{start}: a python block that nothing runs"
        i += 1
    assert pending_file is None, f"docs/{doc}: a file marker with no block after it"
    return out


def script_of(doc: str, steps: list[Step]) -> str:
    parts = ["set -Eeuo pipefail",
             "trap 'echo \"FAILED in the block at docs/$STEP: $BASH_COMMAND (exit $?)\" >&2' ERR"]
    for step in steps:
        if step.kind != "file":
            where = f"{doc}:{step.line}" + (" (test: marker)" if step.kind == "test" else "")
            parts += [f"STEP={shlex.quote(where)}", step.text.rstrip()]
    return "\n".join(parts) + "\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def shims(folder: Path) -> Path:
    """``python`` and ``consent-agent`` as a reader has them after ``pip install -e .``, from this checkout."""
    folder.mkdir()
    for name, command in (("python", f'exec {shlex.quote(sys.executable)} "$@"'),
                          ("consent-agent", f'exec {shlex.quote(sys.executable)} -m app "$@"')):
        (folder / name).write_text(f"#!/bin/sh\n{command}\n")
        (folder / name).chmod(0o755)
    return folder


@pytest.fixture
def agent(tmp_path: Path):
    proc = AgentProcess(tmp_path / "agent")
    proc.start(ui="none")
    try:
        yield proc
    finally:
        proc.stop()


def run_walkthrough(doc: str, agent: AgentProcess, tmp_path: Path) -> str:
    steps = steps_of(doc)
    assert sum(s.kind == "bash" for s in steps) >= 5, f"docs/{doc}: too few bash blocks found"
    work = tmp_path / "work"
    work.mkdir()
    for step in steps:
        if step.kind == "file":
            (work / step.name).write_text(step.text, encoding="utf-8")
    (tmp_path / "walkthrough.sh").write_text(script_of(doc, steps), encoding="utf-8")
    env = {**os.environ, "AGENT": agent.issuer, "LAB": f"http://127.0.0.1:{free_port()}",
           "CONSENT_AGENT_HOME": str(agent.data_dir),
           "PATH": f"{shims(tmp_path / 'bin')}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env.pop("CONSENT_AGENT_PASSPHRASE", None)
    log = tmp_path / "walkthrough.log"
    with log.open("wb") as out:  # a file, not a pipe: the lab started in the background keeps it open
        proc = subprocess.Popen(["bash", str(tmp_path / "walkthrough.sh")], cwd=work, env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            code = proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            try:  # the session's background processes (python lab.py &) go with it
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            proc.wait()
    output = log.read_text(errors="replace")
    assert code == 0, f"docs/{doc} failed as written (exit {code}):\n{output[-6000:]}"
    return output


def test_resource_servers_walkthrough(agent: AgentProcess, tmp_path: Path) -> None:
    output = run_walkthrough("resource-servers.md", agent, tmp_path)
    assert "Approve the connection request showing" in output  # the kit's lab asked the owner
    assert "this PAT's connection was revoked" in output


def test_clients_walkthrough(agent: AgentProcess, tmp_path: Path) -> None:
    output = run_walkthrough("clients.md", agent, tmp_path)
    assert "Waiting for the patient to decide" in output  # the kit's on_waiting, while the owner decided
    assert output.count("200 {'results': [{'test': 'HbA1c'") == 2  # clinic.py, before and after the share


LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")


def anchors_of(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    out = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            out.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return out


@pytest.mark.parametrize("doc", WALKTHROUGHS)
def test_links_lead_somewhere(doc: str) -> None:
    text = (DOCS / doc).read_text(encoding="utf-8")
    for match in LINK.finditer(text):
        target = match["target"]
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        file = (DOCS / path).resolve() if path else DOCS / doc
        assert file.exists(), f"docs/{doc}: the link {target} leads nowhere"
        if anchor and file.suffix == ".md":
            assert anchor in anchors_of(file), f"docs/{doc}: no heading for #{anchor} in {file.name}"
