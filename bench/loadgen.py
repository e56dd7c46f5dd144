"""A small closed-loop HTTP/1.1 load generator for the benches.

Every request is serialised to bytes before the clock starts, so the timed phase measures the
server, not the client's signing or formatting. ``concurrency`` keep-alive connections each send a
request, read the whole answer (status line, headers, ``Content-Length`` body) and send the next,
until the list is used up. The client is asyncio streams on uvloop when it is installed, a few
microseconds of client CPU per request, so one client core comfortably outruns one server worker.

Only what the benches need: no chunked bodies (the agent always sends Content-Length), no
pipelining, no TLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

Check = Callable[[int, bytes], bool]
"""Is this answer a success? Given the status code and the body."""


def request_bytes(method: str, path: str, host: str, *, headers: Sequence[tuple[str, str]] = (),
                  body: bytes = b"") -> bytes:
    """One serialised HTTP/1.1 request (keep-alive is the HTTP/1.1 default)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines.extend(f"{k}: {v}" for k, v in headers)
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def ok_2xx(status: int, body: bytes) -> bool:
    return 200 <= status < 300


@dataclass
class Result:
    name: str
    requests: int
    seconds: float
    latencies: list[float]
    """Seconds per answered request, in completion order."""
    statuses: Counter[int] = field(default_factory=Counter)
    failures: int = 0
    """Answers the check refused (wrong status or body) plus requests that got no answer."""
    errors: int = 0
    """Requests that got no answer (connection closed or reset)."""
    bodies: list[bytes] = field(default_factory=list)
    client_cpu: float = 0.0
    """CPU seconds this (client) process used during the timed phase."""
    server_cpu: float | None = None
    """CPU seconds the server process used during the timed phase (Linux /proc), if known."""
    first_failure: str = ""

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile of the latencies, in milliseconds."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
        return ordered[rank - 1] * 1000.0

    @property
    def non_2xx(self) -> int:
        return sum(n for s, n in self.statuses.items() if not 200 <= s < 300)


class _Closed(Exception):
    """The server closed a keep-alive connection."""


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    req: bytes) -> tuple[int, bytes, bool]:
    """Send one request, read one answer: (status, body, server wants the connection closed)."""
    writer.write(req)
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError) as exc:
        raise _Closed(str(exc)) from exc
    status = int(head[9:12])
    length = 0
    close = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            close = True
        elif name == b"transfer-encoding":
            raise RuntimeError("chunked answers are not supported by this load generator")
    try:
        body = await reader.readexactly(length) if length else b""
    except (asyncio.IncompleteReadError, ConnectionError) as exc:
        raise _Closed(str(exc)) from exc
    return status, body, close


async def _connect(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return reader, writer


def _proc_cpu(pid: int | None) -> float | None:
    """utime + stime of another process in seconds (Linux), or None."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


async def run(name: str, host: str, port: int, requests: Sequence[bytes], *, concurrency: int = 32,
              check: Check = ok_2xx, keep_bodies: bool = False, server_pid: int | None = None) -> Result:
    """Send every request once over ``concurrency`` keep-alive connections; time the whole batch."""
    concurrency = max(1, min(concurrency, len(requests)))
    conns = [await _connect(host, port) for _ in range(concurrency)]
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    bodies: list[bytes] = []
    tally = {"failures": 0, "errors": 0}
    first_failure: list[str] = []
    it = iter(requests)
    clock = time.perf_counter

    async def worker(slot: int) -> None:
        reader, writer = conns[slot]
        for req in it:  # one shared iterator: asyncio is single-threaded, so no request is sent twice
            t0 = clock()
            try:
                status, body, close = await _exchange(reader, writer, req)
            except _Closed as exc:
                tally["errors"] += 1
                tally["failures"] += 1
                if not first_failure:
                    first_failure.append(f"connection closed: {exc}")
                writer.close()
                reader, writer = await _connect(host, port)
                conns[slot] = (reader, writer)
                continue
            latencies.append(clock() - t0)
            statuses[status] += 1
            if keep_bodies:
                bodies.append(body)
            if not check(status, body):
                tally["failures"] += 1
                if not first_failure:
                    first_failure.append(f"{status} {body[:300]!r}")
            if close:
                writer.close()
                reader, writer = await _connect(host, port)
                conns[slot] = (reader, writer)

    cpu0, srv0 = time.process_time(), _proc_cpu(server_pid)
    t0 = clock()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    seconds = clock() - t0
    cpu1, srv1 = time.process_time(), _proc_cpu(server_pid)
    for _, writer in conns:
        writer.close()
    for _, writer in conns:
        with contextlib.suppress(ConnectionError, OSError):  # already gone: nothing to close
            await writer.wait_closed()
    return Result(name, len(requests), seconds, latencies, statuses, tally["failures"], tally["errors"], bodies,
                  cpu1 - cpu0, None if srv0 is None or srv1 is None else srv1 - srv0,
                  first_failure[0] if first_failure else "")


def run_sync(name: str, host: str, port: int, requests: Sequence[bytes], **kw: object) -> Result:
    """``run`` on a fresh event loop (uvloop when available)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        return asyncio.run(run(name, host, port, requests, **kw))  # type: ignore[arg-type]
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(run(name, host, port, requests, **kw))  # type: ignore[arg-type]
