"""``python -m examples.idp [--port P] [--dir D]``: serve the demo provider's keys on loopback."""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn

from examples.idp.provider import DemoIdP, asgi_app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m examples.idp", description=__doc__)
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--dir", type=Path, default=Path(".demo-idp"))
    args = parser.parse_args()
    issuer = f"http://127.0.0.1:{args.port}"
    idp = DemoIdP.load_or_create(args.dir, issuer)
    print(f"demo sign-in service {issuer}; trust it with: consent-agent trust add {issuer} --jwks-uri "
          f"{issuer}/jwks.json --name 'Riverside Hospital'", flush=True)
    uvicorn.run(asgi_app(idp), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
