#!/usr/bin/env bash
# Install everything the tests need, then run the whole suite:
# Debian's Chromium for the app's browser tests (never a downloaded browser), Node.js and the locked
# npm packages of the interop test, and the Python packages in a virtualenv at .venv. Extra arguments
# go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then
  echo "installing Debian's chromium for the browser tests"
  as_root=""
  [ "$(id -u)" -eq 0 ] || as_root="sudo"
  $as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
fi

if ! command -v curl >/dev/null 2>&1; then
  echo "installing curl for the documentation walk-throughs (tests/docs)"
  as_root=""
  [ "$(id -u)" -eq 0 ] || as_root="sudo"
  $as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq curl >/dev/null
fi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "installing Debian's nodejs and npm for the interop test (tests/interop)"
  as_root=""
  [ "$(id -u)" -eq 0 ] || as_root="sudo"
  $as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq nodejs npm >/dev/null
fi

# The independent client in tests/interop: install its locked packages again whenever the lock file
# differs from the one last installed (a copy kept inside node_modules; npm ci starts that afresh).
if ! cmp -s tests/interop/package-lock.json tests/interop/node_modules/.installed-lock.json; then
  (cd tests/interop && npm ci --no-audit --no-fund)
  cp tests/interop/package-lock.json tests/interop/node_modules/.installed-lock.json
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
exec .venv/bin/python -m pytest -q "$@"
