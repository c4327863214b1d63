#!/usr/bin/env bash
# Run the test suite: sets up (or checks) the environment first, then pytest.
#   bash tools/run_tests.sh                          # everything, end-to-end runs included
#   bash tools/run_tests.sh -m "not e2e"             # the fast unit suite only (extra args go to pytest)
#   bash tools/run_tests.sh --floor -m "not e2e"     # the same in the oldest supported stack
#                                                    # (torch 2.1.2; tools/setup_env.sh --floor)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ "${1:-}" = "--floor" ]; then
  shift
  VENV="${VISATTN_MM_FLOOR_VENV:-$HOME/.cache/visattn_mm/venv-floor}"
  bash "$ROOT/tools/setup_env.sh" --floor
else
  VENV="${VISATTN_MM_VENV:-$HOME/.cache/visattn_mm/venv}"
  bash "$ROOT/tools/setup_env.sh"
fi
cd "$ROOT"
exec "$VENV/bin/python" -m pytest tests -ra "$@"
