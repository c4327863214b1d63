#!/usr/bin/env bash
# Install the pinned OpenMMLab stack and visattn_mm (editable) into a virtual environment.
# mim finds a package's files at <distribution location>/visattn_mm, which an editable install
# does not create: a link there to this checkout's visattn_mm/ makes `mim search/train/test
# visattn_mm` work (the README's Installation section says why a link and not a copy).
#
#   bash tools/setup_env.sh              # creates/updates $VISATTN_MM_VENV (the pinned stack)
#   bash tools/setup_env.sh --floor      # the oldest stack the package supports (torch 2.1.2,
#                                        # OpenMMLab's prebuilt-wheel stack) in $VISATTN_MM_FLOOR_VENV
#
# Environment variables (all optional):
#   VISATTN_MM_VENV        where the environment lives  (default: ~/.cache/visattn_mm/venv)
#   VISATTN_MM_WHEELS      wheel cache for the mmcv build (default: ~/.cache/visattn_mm/wheels)
#   VISATTN_MM_FIND_LINKS  extra folders with prebuilt wheels, ':'-separated (e.g. a prebuilt
#                          mmcv-2.1.0 wheel); ../shared/wheels beside the clone is used when present
#   VISATTN_MM_FLOOR_VENV  where the --floor environment lives (default: ~/.cache/visattn_mm/venv-floor)
#   PYTHON                 the interpreter that creates the venv (default: python3, must be 3.11)
#
# Idempotent: a second run with everything in place only checks versions (seconds).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
MMCV=2.1.0
PINNED=(mmengine==0.10.7 mmdet==3.3.0 mmsegmentation==1.2.2 mmpretrain==1.2.0 openmim==0.3.9)
# What mmdet/mmseg/mmpretrain/openmim need at run time, installed without their broken pins.
RUNTIME_DEPS=(six tqdm pycocotools shapely terminaltables prettytable einops
              importlib_metadata modelindex mat4py click colorama model-index pandas
              rich tabulate requests addict yapf termcolor pyyaml packaging pillow pytest ftfy regex)
if [ "${1:-}" = "--floor" ]; then
  # torch 2.1 was built against numpy 1.x; opencv >= 4.11, scipy >= 1.14 (mmpretrain uses
  # interp2d) and matplotlib >= 3.10 need what that stack lacks. mmcv from the floor's own wheel
  # folder: the one in ../shared/wheels is linked against torch 2.13.
  PROFILE=floor
  VENV="${VISATTN_MM_FLOOR_VENV:-$HOME/.cache/visattn_mm/venv-floor}"
  WHEELS="${VISATTN_MM_WHEELS:-$HOME/.cache/visattn_mm/wheels}/torch2.1.2"
  SHARED_WHEELS="$ROOT/../shared/wheels/torch2.1.2"
  TORCH=2.1.2
  TORCHVISION=0.16.2
  SETUPTOOLS_RUNTIME='setuptools>=70.1,<81'  # 70.1: bdist_wheel for the editable install
  VERSIONED_DEPS=("numpy<2" "opencv-python<4.11" "scipy<1.14" "matplotlib<3.10")
  EXPORT_DEPS=()
else
  PROFILE=main
  VENV="${VISATTN_MM_VENV:-$HOME/.cache/visattn_mm/venv}"
  WHEELS="${VISATTN_MM_WHEELS:-$HOME/.cache/visattn_mm/wheels}"
  SHARED_WHEELS="$ROOT/../shared/wheels"
  TORCH=2.13.0
  TORCHVISION=0.28.0
  # torch 2.13 wants >=77.0.3; mmengine/mim import pkg_resources (removed in 82, and 81 warns
  # about it on every `mim` call).
  SETUPTOOLS_RUNTIME='setuptools>=77.0.3,<81'
  VERSIONED_DEPS=("numpy<2.4" "opencv-python<5" scipy matplotlib)
  # ONNX export (tools/deployment/export_onnx.py) and its check; the series the check below wants.
  EXPORT_DEPS=("onnx>=1.23,<1.24" "onnxruntime>=1.31,<1.32")
fi
# mmcv 2.1.0's setup.py needs an older setuptools to build.
SETUPTOOLS_BUILD='setuptools<70'

log() { printf '[setup_env] %s\n' "$*"; }

find_links=("$WHEELS")
[ -d "$SHARED_WHEELS" ] && find_links+=("$(cd "$SHARED_WHEELS" && pwd)")
if [ -n "${VISATTN_MM_FIND_LINKS:-}" ]; then
  IFS=':' read -r -a extra <<< "$VISATTN_MM_FIND_LINKS"
  find_links+=("${extra[@]}")
fi
fl_args=()
for d in "${find_links[@]}"; do fl_args+=(--find-links "$d"); done

mkdir -p "$WHEELS"
if [ ! -x "$VENV/bin/python" ]; then
  log "creating venv at $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"

# Fast path: everything already at the pinned versions and importable. Exit 3: all there but
# visattn_mm is installed from another checkout, or mim's path to it (the link) is missing or
# points elsewhere. Run from / so that the checkout in the current folder cannot stand in for
# the installed package.
check() {
  (cd / && "$PY" - "$ROOT" "$PROFILE" "$TORCH" "$TORCHVISION" "$MMCV" "${PINNED[@]}" <<'PY' 2>/dev/null)
import sys, importlib.metadata as md
root, profile, torch_v, tv_v, mmcv_v, *pinned = sys.argv[1:]
want = dict(p.split('==') for p in pinned)
want.update(torch=torch_v, torchvision=tv_v, mmcv=mmcv_v)
for name, ver in want.items():
    got = md.version(name)
    if got != ver:  # a '+cpu' torch has no matching torchvision
        sys.exit(f'{name} {got} != {ver}')
if profile == 'main':
    for name, series in {'onnx': '1.23', 'onnxruntime': '1.31'}.items():
        got = md.version(name)
        if got.split('.')[:2] != series.split('.'):
            sys.exit(f'{name} {got} is not {series}.x')
    import setuptools
    if not (77, 0, 3) <= tuple(int(p) for p in setuptools.__version__.split('.')[:3]) < (81,):
        sys.exit(f'setuptools {setuptools.__version__} is outside >=77.0.3,<81')
else:
    import numpy
    if int(numpy.__version__.split('.')[0]) >= 2:
        sys.exit(f'numpy {numpy.__version__}: torch {torch_v} needs numpy 1.x')
import mmcv.ops, torchvision.ops  # compiled ops
import os.path as osp
import visattn_mm
if osp.dirname(osp.dirname(osp.realpath(visattn_mm.__file__))) != osp.realpath(root):
    sys.exit(3)
# where mim (mim/utils/utils.py get_installed_path) and mmengine look for the package's files
mim_path = osp.join(str(md.distribution('visattn_mm').locate_file('')), 'visattn_mm')
if osp.realpath(mim_path) != osp.realpath(osp.join(root, 'visattn_mm')) or \
        not osp.isfile(osp.join(mim_path, '.mim', 'model-index.yml')):
    sys.exit(3)
PY
}

# The editable install (re-)points the package at this checkout and (re)makes visattn_mm/.mim;
# then site-packages/visattn_mm becomes a link to the checkout's package, where mim looks.
install_visattn() {
  PIP_FIND_LINKS= "$PY" -m pip install --no-input -q --no-deps --no-build-isolation -e "$ROOT"
  local site link
  site="$(cd / && "$PY" -c \
    "import importlib.metadata as m; print(m.distribution('visattn_mm').locate_file(''))")"
  link="$site/visattn_mm"
  if [ -e "$link" ] && [ ! -L "$link" ]; then
    log "$link is a folder, not a link (left by a non-editable install?): remove it and rerun"
    return 1
  fi
  ln -sfn "$ROOT/visattn_mm" "$link"
}
status=0
check || status=$?
if [ "$status" -eq 0 ]; then
  log "environment at $VENV is complete"
  exit 0
elif [ "$status" -eq 3 ]; then
  log "installing visattn_mm from $ROOT (editable, linked for mim)"
  install_visattn
  check && { log "environment at $VENV is complete"; exit 0; }
fi

# Pip as configured on the machine but without a local find-links folder: a local '+cpu' torch
# would sort above the registry's 2.13.0 and has no torchvision to match.
export PIP_DISABLE_PIP_VERSION_CHECK=1
pip_() { PIP_FIND_LINKS= "$PY" -m pip install --no-input "$@"; }

"$PY" -m pip install --no-input -q --upgrade pip >/dev/null

have() { "$PY" -c "import importlib.metadata as m,sys; sys.exit(m.version('$1')!='$2')" 2>/dev/null; }

if ! have torch "$TORCH" || ! have torchvision "$TORCHVISION"; then
  log "installing torch $TORCH + torchvision $TORCHVISION (a few GB on the first run)"
  PIP_CONFIG_FILE=/dev/null pip_ "torch==$TORCH" "torchvision==$TORCHVISION"
fi

if ! have mmcv "$MMCV"; then
  if ! ls "$WHEELS"/mmcv-"$MMCV"-*.whl >/dev/null 2>&1 && \
     ! for d in "${find_links[@]}"; do ls "$d"/mmcv-"$MMCV"-*.whl 2>/dev/null; done | grep -q .; then
    log "building mmcv $MMCV with compiled ops into $WHEELS (about 45 minutes on 2 cores, once)"
    pip_ "$SETUPTOOLS_BUILD" wheel ninja psutil
    MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" PIP_FIND_LINKS= \
      "$PY" -m pip wheel --no-input --no-deps --no-build-isolation -w "$WHEELS" "mmcv==$MMCV"
  fi
  log "installing mmcv $MMCV from the wheel cache"
  pip_ "${fl_args[@]}" --no-index --no-deps "mmcv==$MMCV"
fi

log "installing the OpenMMLab packages"
pip_ -q "$SETUPTOOLS_RUNTIME" "${RUNTIME_DEPS[@]}" "${VERSIONED_DEPS[@]}" "${EXPORT_DEPS[@]}"
pip_ -q --no-deps "${PINNED[@]}"
install_visattn

if ! check; then
  log "the environment is incomplete after installing; see the messages above"
  "$PY" -c "import mmcv.ops, torchvision.ops, visattn_mm"
  exit 1
fi
log "done: activate with 'source $VENV/bin/activate'"
