#!/usr/bin/env bash
# Run the test suite: sets up (or checks) the environment first, then pytest.
#   bash tools/run_tests.sh                 # everything, end-to-end runs included
#   bash tools/run_tests.sh -m "not e2e"    # the fast unit suite only (extra args go to pytest)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VISATTN_MM_VENV:-$HOME/.cache/visattn_mm/venv}"
bash "$ROOT/tools/setup_env.sh"
cd "$ROOT"
exec "$VENV/bin/python" -m pytest tests -ra "$@"
