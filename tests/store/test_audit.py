"""AuditLog: hash-chained, crash-tolerant, rotated, group-committed."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.clock import FakeClock
from core.store.audit import GENESIS, AuditLog, canonical_json, entry_hash

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def audit(tmp_path: Path, clock: FakeClock) -> Iterator[AuditLog]:
    log = AuditLog(tmp_path, clock=clock, flush_interval=60)  # only explicit flushes write
    yield log
    log.close()


def lines_on_disk(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def rewrite(path: Path, lines: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def test_entries_are_chained_from_the_genesis_hash(audit: AuditLog, clock: FakeClock) -> None:
    first = audit.append("grant.created", grant="g1", durable=True)
    second = audit.append("token.issued", jti="j1", durable=True)
    body = {k: v for k, v in first.items() if k != "hash"}
    assert first["prev"] == GENESIS
    assert first["hash"] == entry_hash(GENESIS, canonical_json(body))
    assert (first["seq"], first["ts"], first["grant"]) == (1, int(clock()), "g1")
    assert (second["seq"], second["prev"]) == (2, first["hash"])


def test_an_untouched_chain_verifies(audit: AuditLog) -> None:
    for i in range(5):
        audit.append("e", i=i, text="né")
    check = audit.verify()
    assert (check.ok, check.count, check.first_bad_seq, check.reason) == (True, 5, None, None)


def test_an_edited_line_is_detected(tmp_path: Path, audit: AuditLog) -> None:
    for i in range(4):
        audit.append("e", i=i, durable=True)
    entries = lines_on_disk(audit.path)
    entries[1]["i"] = 99
    rewrite(audit.path, entries)
    check = audit.verify()
    assert (check.ok, check.count, check.first_bad_seq) == (False, 1, 2)
    assert check.reason is not None and "hash mismatch" in check.reason


def test_a_deleted_line_is_detected(audit: AuditLog) -> None:
    for i in range(4):
        audit.append("e", i=i, durable=True)
    entries = lines_on_disk(audit.path)
    del entries[1]
    rewrite(audit.path, entries)
    check = audit.verify()
    assert (check.ok, check.first_bad_seq) == (False, 2)
    assert check.reason is not None and "expected seq 2" in check.reason


def test_a_garbled_line_is_detected(audit: AuditLog) -> None:
    for i in range(3):
        audit.append("e", i=i, durable=True)
    raw = audit.path.read_bytes().split(b"\n")
    raw[0] = b"not json"
    audit.path.write_bytes(b"\n".join(raw))
    assert audit.verify().first_bad_seq == 1


def test_seq_and_chain_resume_after_reopening(tmp_path: Path, clock: FakeClock) -> None:
    with_log = AuditLog(tmp_path, clock=clock)
    with_log.append("a")
    with_log.append("b")
    with_log.close()
    reopened = AuditLog(tmp_path, clock=clock)
    assert reopened.append("c")["seq"] == 3
    assert reopened.verify().ok
    reopened.close()


def test_torn_last_line_is_truncated_on_open(tmp_path: Path, clock: FakeClock) -> None:
    log = AuditLog(tmp_path, clock=clock)
    log.append("a")
    log.append("b")
    log.close()
    intact = (tmp_path / "audit.jsonl").read_bytes()
    with open(tmp_path / "audit.jsonl", "ab") as handle:
        handle.write(b'{"seq":3,"ts":18000')
    reopened = AuditLog(tmp_path, clock=clock)
    assert reopened.path.read_bytes() == intact
    assert reopened.append("c", durable=True)["seq"] == 3
    assert reopened.verify().ok
    reopened.close()


def test_unparsable_complete_last_line_is_truncated_on_open(tmp_path: Path, clock: FakeClock) -> None:
    log = AuditLog(tmp_path, clock=clock)
    log.append("a")
    log.close()
    with open(tmp_path / "audit.jsonl", "ab") as handle:
        handle.write(b"\x00\x00\x00\n")
    reopened = AuditLog(tmp_path, clock=clock)
    assert reopened.append("b")["seq"] == 2
    assert reopened.verify().ok
    reopened.close()


def test_rotation_keeps_the_chain_verifiable_across_files(tmp_path: Path, clock: FakeClock) -> None:
    log = AuditLog(tmp_path, clock=clock, max_bytes=600, flush_interval=60)
    for i in range(30):
        log.append("e", i=i, durable=True)
    rotated = sorted(p.name for p in tmp_path.glob("audit-*.jsonl"))
    assert len(rotated) >= 3 and "audit-1.jsonl" in rotated
    assert all(p.stat().st_size <= 600 + 300 for p in tmp_path.glob("audit*.jsonl"))
    assert [e["seq"] for e in log.iter_all()] == list(range(1, 31))
    check = log.verify()
    assert (check.ok, check.count) == (True, 30)
    assert [e["i"] for e in log.tail(12)] == list(range(18, 30))
    log.close()
    reopened = AuditLog(tmp_path, clock=clock, max_bytes=600)
    assert reopened.append("after")["seq"] == 31
    assert reopened.verify().count == 31
    reopened.close()


def test_a_line_deleted_from_a_rotated_file_is_detected(tmp_path: Path, clock: FakeClock) -> None:
    log = AuditLog(tmp_path, clock=clock, max_bytes=600)
    for i in range(20):
        log.append("e", i=i, durable=True)
    first_file = tmp_path / "audit-1.jsonl"
    entries = lines_on_disk(first_file)
    rewrite(first_file, entries[:-1])
    check = log.verify()
    assert (check.ok, check.first_bad_seq) == (False, len(entries))
    log.close()


def test_durable_append_is_on_disk_before_it_returns(audit: AuditLog) -> None:
    audit.append("buffered")
    entry = audit.append("owner.approved", durable=True, grant="g1")
    assert lines_on_disk(audit.path)[-2:] == [audit.tail(2)[0], entry]


def test_buffered_entries_are_visible_to_tail_before_reaching_disk(audit: AuditLog) -> None:
    audit.append("token.issued", jti="j1")
    assert audit.path.read_bytes() == b""
    assert [e["jti"] for e in audit.tail()] == ["j1"]


def test_buffered_entries_reach_disk_within_the_flush_interval(tmp_path: Path, clock: FakeClock) -> None:
    log = AuditLog(tmp_path, clock=clock, flush_interval=0.02)
    for i in range(100):
        log.append("token.issued", i=i)
    deadline = time.monotonic() + 5
    while len(log.path.read_bytes().splitlines()) < 100 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [e["i"] for e in lines_on_disk(log.path)] == list(range(100))
    log.close()


def test_tail_filters_by_event_and_returns_oldest_first(audit: AuditLog) -> None:
    for i in range(6):
        audit.append("odd" if i % 2 else "even", i=i, durable=i < 3)
    assert [e["i"] for e in audit.tail(2, event="odd")] == [3, 5]
    assert [e["i"] for e in audit.tail(100)] == list(range(6))
    assert audit.tail(0) == []


def test_unserialisable_fields_are_rejected_without_touching_the_log(audit: AuditLog) -> None:
    with pytest.raises(TypeError):
        audit.append("e", obj=object(), durable=True)
    with pytest.raises(TypeError):
        audit.append("e", value=float("nan"))
    with pytest.raises(TypeError):
        audit.append("e", seq=5)
    assert audit.path.read_bytes() == b""
    assert audit.append("e")["seq"] == 1


def test_close_flushes_and_is_idempotent(tmp_path: Path, clock: FakeClock) -> None:
    log = AuditLog(tmp_path, clock=clock, flush_interval=60)
    log.append("e")
    log.close()
    log.close()
    assert len(lines_on_disk(log.path)) == 1
    with pytest.raises(ValueError, match="closed"):
        log.append("late")


@pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")
def test_log_file_is_private_to_the_owner(audit: AuditLog) -> None:
    assert stat.S_IMODE(audit.path.stat().st_mode) == 0o600


WRITER = """
import sys
from pathlib import Path
from core.clock import system_clock
from core.store.audit import AuditLog

log = AuditLog(Path(sys.argv[1]), clock=system_clock, max_bytes=4096)
while True:
    entry = log.append("decision", durable=True, pad="x" * 100)
    print(entry["seq"], flush=True)
"""


@pytest.mark.skipif(os.name == "nt", reason="needs SIGKILL")
def test_sigkill_never_loses_a_durable_entry_or_breaks_the_chain(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for delay in (0.0, 0.01, 0.03, 0.05, 0.08, 0.1, 0.02, 0.04, 0.06, 0.07):
        command = [sys.executable, "-c", WRITER, str(tmp_path)]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, env=env)
        assert proc.stdout is not None
        first = proc.stdout.readline()
        time.sleep(delay)
        proc.kill()
        rest, _ = proc.communicate()
        acknowledged = max(int(line) for line in (first + rest).split(b"\n")[:-1])
        log = AuditLog(tmp_path, clock=FakeClock())
        check = log.verify()
        log.close()
        assert check.ok, check.reason
        assert check.count >= acknowledged
