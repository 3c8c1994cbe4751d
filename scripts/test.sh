#!/usr/bin/env bash
# The whole test suite (what CI runs): lint, types, then pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || scripts/setup.sh
.venv/bin/ruff check keeper tests benchmarks
.venv/bin/mypy
.venv/bin/python -m pytest -q -rs "$@"
