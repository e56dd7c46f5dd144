"""``python -m relay``: the same as the ``consent-relay`` console script."""

from relay.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
