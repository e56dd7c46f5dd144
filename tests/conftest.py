"""Shared fixtures: an agent on a temp data dir with a fake clock, reached through its ASGI app."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


from tests.world import world  # noqa: E402,F401  (the wired-up agent, RS and client)
