"""``python -m app``: the same as the ``consent-agent`` console script."""

from app.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
