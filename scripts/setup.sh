#!/usr/bin/env bash
# Sets up a fresh clone: a virtual environment with keeper and its test tools (.venv), and the
# pinned npm tools (solc for contracts/, anvil for local chains) in node_modules/.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev]'
# `npm install` (not `npm ci`): the lock file pins versions, and npm picks anvil's binary package
# for this platform among its optional dependencies.
npm install --no-audit --no-fund --loglevel=error
# the real Morpho Blue for the tests, built with its own compiler version (BUSL-1.1: never committed)
node scripts/build-morpho.mjs
echo "setup done: .venv/bin/keeper --help"
