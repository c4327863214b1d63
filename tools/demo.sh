#!/usr/bin/env bash
# The main job, end to end on a generated mini COCO set:
#   1. set up (or check) the environment            tools/setup_env.sh
#   2. generate mini COCO (learnable shapes)         tools/mini_datasets.py coco
#   3. derive the demo's short run of the headline   tools/mini_config.py configs/pslt_retinanet.py --demo
#      config, and a checkpoint of its initialised,  (--init-checkpoint)
#      untrained model
#   4. evaluate the untrained model                  mim test mmdet
#   5. train                                         mim train mmdet
#   6. evaluate the trained model                    mim test mmdet
#   7. print the COCO box AP of both, side by side; fail unless training raised it
# The recipe (PSLT-tiny RetinaNet, five classes, lr, schedule, anchors, data size) and why each
# choice: make_demo_config and DEMO_DATA in visattn_mm/testing/mini_config.py.
#
# Deterministic: the same machine gives the same AP on every run. The data are generated from a
# seed (byte-identical files), the run is seeded with mmengine's deterministic mode, the data
# are loaded in the main process, and the number of CPU threads is fixed: how a sum is split
# over threads changes its rounding, and from-scratch training grows such differences into a
# different AP (1 and 2 threads differ after a few iterations). Another CPU model may still give
# another AP (other kernels, other rounding).
#
# Knobs (environment): VISATTN_MM_DEMO_DIR (default work_dirs/demo), DEMO_EPOCHS (default: the
# recipe's), DEMO_THREADS (default 2; another count is deterministic too, with another AP),
# DEMO_CONFIG (default configs/pslt_retinanet.py).
set -euo pipefail
START=$SECONDS
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VISATTN_MM_VENV:-$HOME/.cache/visattn_mm/venv}"
WORK="${VISATTN_MM_DEMO_DIR:-$ROOT/work_dirs/demo}"
CONFIG="${DEMO_CONFIG:-$ROOT/configs/pslt_retinanet.py}"
THREADS="${DEMO_THREADS:-2}"

bash "$ROOT/tools/setup_env.sh"
PY="$VENV/bin/python"
MIM="$VENV/bin/mim"
# The thread count, fixed (see above). PASSIVE: a waiting OpenMP thread sleeps instead of
# spinning, so that a busy machine slows the run down and no more (spinning threads that wait
# for a descheduled one made iterations 5-10x slower on a shared 2-core machine).
export OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS" OMP_WAIT_POLICY=PASSIVE
stamp() { echo "[demo] $1 ($((SECONDS - START)) s)"; }
mkdir -p "$WORK"
rm -rf "$WORK/data/coco" "$WORK/train" "$WORK/test" "$WORK/test_untrained"  # this demo's own outputs
cd "$ROOT"

# the recipe's data size and schedule length
SETTINGS="$("$PY" -c "from visattn_mm.testing.mini_config import DEMO_DATA as d, DEMO_EPOCHS as e
print(d['num_train'], d['num_val'], d['size'], e)" 2> "$WORK/settings.log")" \
  || { tail -30 "$WORK/settings.log"; echo "[demo] reading the recipe failed"; exit 1; }
read -r NUM_TRAIN NUM_VAL SIZE EPOCHS_DEFAULT <<< "$SETTINGS"
EPOCHS="${DEMO_EPOCHS:-$EPOCHS_DEFAULT}"

stamp "generating mini COCO in $WORK/data/coco ($NUM_TRAIN train / $NUM_VAL val images, ${SIZE} px)"
"$PY" tools/mini_datasets.py coco --out "$WORK/data" --seed 0 --num-train "$NUM_TRAIN" \
  --num-val "$NUM_VAL" --size "$SIZE"

stamp "deriving the demo config and the untrained model's checkpoint"
"$PY" tools/mini_config.py "$CONFIG" --data-root "$WORK/data/coco" --out "$WORK/mini_config.py" \
  --demo --iters "$EPOCHS" --init-checkpoint "$WORK/untrained.pth" > "$WORK/config.log" 2>&1 \
  || { tail -30 "$WORK/config.log"; echo "[demo] deriving the config failed"; exit 1; }

stamp "mim test mmdet: the untrained model"
"$MIM" test mmdet "$WORK/mini_config.py" --checkpoint "$WORK/untrained.pth" \
  --work-dir "$WORK/test_untrained" > "$WORK/test_untrained.log" 2>&1 \
  || { tail -30 "$WORK/test_untrained.log"; echo "[demo] test failed"; exit 1; }

stamp "mim train mmdet ($EPOCHS epochs, $THREADS threads)"
set +e  # show the last log line of each epoch, keep the whole log
"$MIM" train mmdet "$WORK/mini_config.py" --work-dir "$WORK/train" 2>&1 | tee "$WORK/train.log" \
  | grep --line-buffered -E "Epoch\(train\) +\[[0-9]+\]\[([0-9]+)/\1\]|Error"
status=${PIPESTATUS[0]}
set -e
[ "$status" -eq 0 ] || { tail -30 "$WORK/train.log"; echo "[demo] training failed"; exit 1; }
CKPT="$(cat "$WORK/train/last_checkpoint")"

stamp "mim test mmdet --checkpoint $CKPT"
"$MIM" test mmdet "$WORK/mini_config.py" --checkpoint "$CKPT" --work-dir "$WORK/test" \
  > "$WORK/test.log" 2>&1 || { tail -30 "$WORK/test.log"; echo "[demo] test failed"; exit 1; }
grep -A 14 "Evaluating bbox" "$WORK/test.log" | grep "Average Precision" || true

# both APs side by side; exits non-zero unless the trained model beats the untrained one
"$PY" -c 'import sys; from visattn_mm.testing.mini_config import demo_report
sys.exit(demo_report(*sys.argv[1:]))' "$WORK/test_untrained.log" "$WORK/test.log" \
  "trained ($EPOCHS epochs from scratch)" 2>/dev/null
stamp "done"
