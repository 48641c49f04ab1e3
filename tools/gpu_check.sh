#!/usr/bin/env bash
# The CUDA path, checked in one go (a few minutes on a GPU machine):
#   tools/gpu_check.sh            on a GPU machine: parity tests on CUDA, then the GPU rows of
#                                 docs/PERFORMANCE.md (section "gpu", tools/gpu_timing.py)
#   tools/gpu_check.sh --dry-run  the same steps on the CPU, writing nothing (CI runs this)
# Python: $HOLOCAP_GPU_PYTHON, else the project's .venv, else python3. A GPU machine's own
# python3 already holds a CUDA build of torch (no network there to install one); the parity
# references are read from $HOLOCAP_SHARED_DIR, else ./shared (a copy carried with the
# checkout), else ../shared. A missing reference fails the check instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

dry=0
case "${1:-}" in
  --dry-run) dry=1 ;;
  "") ;;
  *) echo "usage: tools/gpu_check.sh [--dry-run]" >&2; exit 2 ;;
esac

py=${HOLOCAP_GPU_PYTHON:-}
if [ -z "$py" ]; then
  if [ -x .venv/bin/python ]; then py=.venv/bin/python; else py=python3; fi
fi
if [ -z "${HOLOCAP_SHARED_DIR:-}" ] && [ -d shared/reference ]; then
  export HOLOCAP_SHARED_DIR="$PWD/shared"
fi

if [ "$dry" = 1 ]; then
  device=cpu
else
  device=cuda
  if ! "$py" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "gpu_check: $py has no CUDA device (torch: $("$py" -c 'import torch; print(torch.__version__)' 2>&1)); use --dry-run on a CPU machine" >&2
    exit 2
  fi
fi
echo "gpu_check: device $device, python $py" >&2

export HOLOCAP_TEST_DEVICE=$device HOLOCAP_NO_SKIPS=1
"$py" -m pytest -c pytest.ini -p no:cacheprovider -q \
  tests/engine/body/test_hmr_parity.py tests/engine/body/test_pointhmr_parity.py \
  tests/engine/volume/test_pifu_parity.py tests/engine/face/test_tddfa_parity.py

if [ "$dry" = 1 ]; then
  "$py" tools/gpu_timing.py --device cpu --quick
else
  "$py" tools/gpu_timing.py --device cuda --write
fi
