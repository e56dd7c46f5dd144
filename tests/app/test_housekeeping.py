"""A long-running agent rotates its signing key when it falls due, and says so in the log."""

from __future__ import annotations

from app.runtime import rotate_keys
from core.clock import FakeClock
from tests.kit import make_agent


def test_rotation_happens_when_due_and_is_logged(tmp_path):
    clock = FakeClock()
    agent = make_agent(tmp_path, clock=clock)
    try:
        before = agent.keys.current().kid
        rotate_keys(agent)
        assert agent.keys.current().kid == before
        clock.advance(31 * 86_400)
        rotate_keys(agent)
        after = agent.keys.current().kid
        assert after != before
        assert agent.keys.public_key(before) is not None  # still published for tokens it signed
        assert agent.audit.tail(1)[0]["event"] == "signing_key_rotated" and agent.audit.tail(1)[0]["kid"] == after
    finally:
        agent.close()
