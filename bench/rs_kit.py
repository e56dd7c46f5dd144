"""What the resource-server kit costs a protected route, as ratios against an open route of the same app.

    python bench/rs_kit.py            # 2000 requests per row (~10 s)
    python bench/rs_kit.py --quick    # 200 per row

One process, one event loop: the agent (in process, behind its ASGI app), the lab's Starlette app
protected by ``sdk.rs.starlette.Protection``, and requests sent through ``httpx.ASGITransport``, so
the rows differ only by what the kit does. Every protected request carries the same RPT and a fresh
DPoP proof signed before timing. Rows:

- ``open``: ``GET /open``, the same handler without protection (the baseline);
- ``cached``: ``GET /results/{id}`` with a DPoP-bound RPT, checked locally (signature, ``aud``,
  ``exp``, DPoP proof with ``ath`` and ``cnf.jkt``) with the agent's "active" answer still within
  the kit's ``cache_seconds`` (the usual case);
- ``introspect``: the same with ``cache_seconds = 0``, so every request also asks the agent
  (in process here: through a relay it would add a network round trip as well).

Printed: each row's requests/s, its rate as a share of the open route's, and the microseconds per
request it adds to the open route.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse, Response  # noqa: E402
from starlette.routing import Route  # noqa: E402

from sdk.rs.starlette import Protection  # noqa: E402
from tests.kit import dpop_proof  # noqa: E402
from tests.sdk.rs_world import LAB, running_lab  # noqa: E402


def app_for(protection: Protection, resource: str) -> Starlette:
    """Two routes with the same body; only one is protected."""
    async def answer(_: Request) -> Response:
        return JSONResponse({"ok": True})

    guarded = protection.require(resource=resource, scopes=["read"])(answer)
    return Starlette(routes=[Route("/open", answer), Route("/read", guarded)])


async def timed(send: list[tuple[str, str, dict[str, str]]], lab: httpx.AsyncClient) -> float:
    start = time.perf_counter()
    for method, path, headers in send:
        r = await lab.request(method, path, headers=headers)
        if r.status_code != 200:
            raise SystemExit(f"{method} {path} answered {r.status_code}: {r.text[:200]}")
    return time.perf_counter() - start


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with running_lab(Path(tmp)) as w:
            rpt = await w.granted_rpt(["read"])
            path = "/read"
            app = app_for(Protection(w.kit, public_url=LAB, realm="lab"), w.resource)
            lab = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=LAB)

            def protected() -> list[tuple[str, str, dict[str, str]]]:
                return [("GET", path, {"Authorization": f"DPoP {rpt}",
                                       "DPoP": dpop_proof(w.client.dpop_key, "GET", w.url(path), w.clock(),
                                                          ath_of=rpt)}) for _ in range(n)]

            open_route = [("GET", "/open", {}) for _ in range(n)]
            await timed(open_route[:50], lab)  # warm up both paths (and fill the introspection cache)
            await timed(protected()[:50], lab)
            rows = {"open": await timed(open_route, lab), "cached": await timed(protected(), lab)}
            w.kit.verifier.cache_seconds = 0
            rows["introspect"] = await timed(protected(), lab)
            await lab.aclose()
    base = rows["open"]
    print(f"{'row':<11} {'req/s':>9} {'share of open':>14} {'µs over open':>13}")
    for name, seconds in rows.items():
        print(f"{name:<11} {n / seconds:>9.0f} {base / seconds:>14.2f} {(seconds - base) / n * 1e6:>13.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(200 if args.quick else args.requests))
