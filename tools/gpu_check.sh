#!/usr/bin/env bash
# Run tools/gpu_check.py (the GPU check, docs/gpu.md) with the project's venv python; options pass on.
exec "${VISATTN_MM_VENV:-$HOME/.cache/visattn_mm/venv}/bin/python" "$(dirname "$0")/gpu_check.py" "$@"
