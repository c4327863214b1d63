#!/usr/bin/env bash
# The main job, end to end on a generated mini COCO set:
#   1. set up (or check) the environment            tools/setup_env.sh
#   2. generate mini COCO (learnable shapes)         tools/mini_datasets.py coco
#   3. derive a short run of the headline config     tools/mini_config.py configs/pslt_retinanet.py
#   4. train it                                      mim train mmdet
#   5. evaluate the last checkpoint                  mim test mmdet
#   6. print the COCO box AP
# Knobs (environment): VISATTN_MM_DEMO_DIR (default work_dirs/demo), DEMO_EPOCHS (default 60),
# DEMO_CONFIG (default configs/pslt_retinanet.py).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VISATTN_MM_VENV:-$HOME/.cache/visattn_mm/venv}"
WORK="${VISATTN_MM_DEMO_DIR:-$ROOT/work_dirs/demo}"
EPOCHS="${DEMO_EPOCHS:-60}"
CONFIG="${DEMO_CONFIG:-$ROOT/configs/pslt_retinanet.py}"

bash "$ROOT/tools/setup_env.sh"
PY="$VENV/bin/python"
MIM="$VENV/bin/mim"
mkdir -p "$WORK"
cd "$ROOT"

echo "[demo] generating mini COCO in $WORK/data/coco"
"$PY" tools/mini_datasets.py coco --out "$WORK/data" --seed 0

# The recipe's model and optimiser (AdamW 1e-4) from scratch on 24 images at their own size,
# step decay for the last quarter. (A larger lr kills the RetinaNet head's ReLUs from scratch.)
"$PY" tools/mini_config.py "$CONFIG" --data-root "$WORK/data/coco" --out "$WORK/mini_config.py" \
  --iters "$EPOCHS" --scale 160 128 --batch-size 4 --no-val

echo "[demo] mim train mmdet ($EPOCHS epochs)"
set +e  # show one log line per epoch, keep the whole log
"$MIM" train mmdet "$WORK/mini_config.py" --work-dir "$WORK/train" 2>&1 | tee "$WORK/train.log" \
  | grep --line-buffered -E "Epoch\(train\)|Error"
status=${PIPESTATUS[0]}
set -e
[ "$status" -eq 0 ] || { tail -30 "$WORK/train.log"; echo "[demo] training failed"; exit 1; }
CKPT="$(cat "$WORK/train/last_checkpoint")"

echo "[demo] mim test mmdet --checkpoint $CKPT"
"$MIM" test mmdet "$WORK/mini_config.py" --checkpoint "$CKPT" --work-dir "$WORK/test" \
  > "$WORK/test.log" 2>&1 || { tail -30 "$WORK/test.log"; echo "[demo] test failed"; exit 1; }
grep -A 14 "Evaluating bbox" "$WORK/test.log" | grep "Average Precision" || true
AP="$(grep -oE "coco/bbox_mAP: [0-9.]+" "$WORK/test.log" | tail -1 | cut -d' ' -f2)"
[ -n "$AP" ] || { echo "[demo] no bbox mAP in $WORK/test.log"; exit 1; }
echo "[demo] COCO box AP (mini COCO val, $EPOCHS epochs from scratch): $AP"
# the shapes are learnable: an AP of zero means the run learned nothing, which is a failure
"$PY" -c "import sys; sys.exit(float('$AP') <= 0)" || { echo "[demo] box AP is 0"; exit 1; }
