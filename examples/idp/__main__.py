"""The demo sign-in service on the command line.

- ``python -m examples.idp token WHO --aud CLIENT_ID [--purpose CODE] [--dir D]`` prints an ID token for
  the clinician WHO (``bob`` or ``carol``) as the client CLIENT_ID would get it after a sign-in: the
  claim token a client pushes to a patient's agent (UMA Grant §3.3.1).
- ``python -m examples.idp jwks [--dir D]`` prints the public keys, for
  ``consent-agent trust add https://sign-in.riverside-hospital.example --jwks-file F``.
- ``python -m examples.idp serve [--port P] [--dir D]`` (or no command) serves the keys and the discovery
  document on loopback.

The key is kept in ``D/idp-key.pem`` (default ``.demo-idp`` in the current directory) and made on first
use, so tokens and keys printed from the same directory go together.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from examples.idp.provider import CLINICIANS, ISSUER, DemoIdP, asgi_app

DEFAULT_DIR = Path(".demo-idp")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m examples.idp",
                                     description="The demo sign-in service: ID tokens, its keys, or a server.")
    commands = parser.add_subparsers(dest="command", metavar="{token,jwks,serve}")

    def command(name: str, helptext: str) -> argparse.ArgumentParser:
        p = commands.add_parser(name, help=helptext, description=helptext)
        p.add_argument("--dir", type=Path, default=DEFAULT_DIR, metavar="D",
                       help=f"where the provider's key is kept (default {DEFAULT_DIR})")
        return p

    p = command("token", f"print an ID token from {ISSUER}")
    p.add_argument("who", choices=sorted(CLINICIANS), help="the clinician who signed in")
    p.add_argument("--aud", required=True, metavar="CLIENT_ID",
                   help="the client the token is for: its client_id at the patient's agent")
    p.add_argument("--purpose", metavar="CODE",
                   help="a purpose_of_use claim, an HL7 PurposeOfUse code such as TREAT")
    command("jwks", "print the provider's public keys (a JWK Set)")
    p = command("serve", "serve the keys and discovery document on loopback")
    p.add_argument("--port", type=int, default=8900)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or (args[0].startswith("-") and args[0] not in ("-h", "--help")):
        args.insert(0, "serve")  # the original form: python -m examples.idp [--port P] [--dir D]
    ns = build_parser().parse_args(args)
    if ns.command == "token":
        extra = {"purpose_of_use": ns.purpose} if ns.purpose else {}
        print(DemoIdP.load_or_create(ns.dir).id_token(ns.who, ns.aud, **extra))
    elif ns.command == "jwks":
        print(json.dumps(DemoIdP.load_or_create(ns.dir).jwks, indent=2))
    else:
        serve(ns.dir, ns.port)
    return 0


def serve(folder: Path, port: int) -> None:
    import uvicorn

    issuer = f"http://127.0.0.1:{port}"
    idp = DemoIdP.load_or_create(folder, issuer)
    print(f"demo sign-in service {issuer}; trust it with: consent-agent trust add {issuer} --jwks-uri "
          f"{issuer}/jwks.json --name 'Riverside Hospital'", flush=True)
    uvicorn.run(asgi_app(idp), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    sys.exit(main())
