"""The wire protocol between an agent and the relay, over one WebSocket the agent opens.

Connecting (text frames, JSON):

1. agent opens ``{relay}/_agent/connect`` (a path no agent id can take: ids are 43-character
   RFC 7638 thumbprints);
2. relay → ``{"type": "challenge", "nonce": <random>, "relay": <relay public URL>}``;
3. agent → ``{"type": "hello", "proof": <JWS>, "jwks": <signed JWKS>}`` where the proof is made with
   the agent's identity key (``KeyRing.sign_with_identity``, ``typ`` ``HELLO_TYP``) over
   ``{"nonce", "aud": <relay public URL>, "iat", "metadata": {"uma2": {...}, "oauth"?: {...}}}``
   (``oauth`` omitted: the RFC 8414 location serves the ``uma2`` document);
   the relay checks that the key in the JWS header hashes to the agent id it claims, the signature,
   the nonce and the audience, and keeps the signed metadata and JWKS to serve while the agent is away;
4. relay → ``{"type": "welcome", "agent_id": ..., "base_url": <relay public URL>/<agent id>}``
   or ``{"type": "refused", "reason": ...}`` and a close.

Then requests and responses travel as binary frames, many at once, matched by ``id``:
``encode(header, body)`` = 4-byte big-endian header length, the header as UTF-8 JSON, the raw body.

- request header: ``{"id": int, "method": str, "path": str (relative to the agent's base, starts
  with "/"), "query": str, "headers": [[name, value], ...]}``
- response header: ``{"id": int, "status": int, "headers": [[name, value], ...]}``

Right after the welcome the agent sends one response frame with the reserved id ``READY_ID`` (0;
requests are numbered from 1), which the relay ignores like any unknown id. It is there so that the
relay's WebSocket parser, which keeps the last frame it read, lets go of the (few KB) hello at once:
with thousands of idle agents that is a tenth of the relay's memory.

Heartbeats are WebSocket pings. No per-message compression (it costs several times the memory per
idle connection).
"""

from __future__ import annotations

import json
import struct
from typing import Any

CONNECT_PATH = "/_agent/connect"
READY_ID = 0
HELLO_TYP = "relay-hello+jwt"
MAX_HEADER = 64 * 1024
AGENT_ID_LENGTH = 43


class FrameError(ValueError):
    """A frame that does not follow the protocol."""


def encode(header: dict[str, Any], body: bytes = b"") -> bytes:
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    if len(raw) > MAX_HEADER:
        raise FrameError("frame header too large")
    return struct.pack(">I", len(raw)) + raw + body


def decode(frame: bytes) -> tuple[dict[str, Any], bytes]:
    if len(frame) < 4:
        raise FrameError("frame too short")
    (size,) = struct.unpack(">I", frame[:4])
    if size > MAX_HEADER or 4 + size > len(frame):
        raise FrameError("bad frame header length")
    try:
        header = json.loads(frame[4:4 + size].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise FrameError("frame header is not JSON") from exc
    if not isinstance(header, dict) or not isinstance(header.get("id"), int):
        raise FrameError("frame header needs an integer id")
    return header, frame[4 + size:]


def is_agent_id(text: str) -> bool:
    return len(text) == AGENT_ID_LENGTH and all(c.isalnum() or c in "-_" for c in text)
