#!/usr/bin/env bash
# One prepared check for a CUDA machine: a round of cifar10-resnet18 with 5 learners on
# generated CIFAR-shaped data, on the GPU, split into propose / validate / accept / other,
# and the share of each round beyond "the proposer's training + one validation".
#
#   bench/gpu_resnet_check.sh                       # on the GPU machine, from anywhere
#   DEVICE=cpu ROWS=600 ROUNDS=1 bench/gpu_resnet_check.sh   # a dry run of the flow on a CPU
#
# Settings (environment): PYTHON (default: the first of .venv/bin/python, python3, python
# whose torch sees the device), DEVICE (cuda), ROWS (15000 generated images: 3,000
# rows per learner, 1,800 to train on), ROUNDS (5 measured, after WARMUP=2), BATCH (128),
# EPOCHS (2). Sized to finish in well under 5 minutes on one H100 (the whole script is
# capped at 280 s).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

DEVICE=${DEVICE:-cuda}
ROWS=${ROWS:-15000}
ROUNDS=${ROUNDS:-5}
WARMUP=${WARMUP:-2}
BATCH=${BATCH:-128}
EPOCHS=${EPOCHS:-2}

sees_device() {
  "$1" - "$DEVICE" <<'PY' >/dev/null 2>&1
import sys, torch
sys.exit(0 if sys.argv[1] == "cpu" or torch.cuda.is_available() else 1)
PY
}

PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for candidate in .venv/bin/python python3 python; do
    if command -v "$candidate" >/dev/null 2>&1 && sees_device "$candidate"; then
      PY=$candidate
      break
    fi
  done
fi
if [ -z "$PY" ]; then
  echo "no Python whose torch sees device=$DEVICE (torch.cuda.is_available() is False everywhere);"
  echo "set PYTHON=/path/to/python of an environment with a CUDA build of torch"
  exit 2
fi

# Run the checkout's code whether or not colearning is installed in that environment.
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
"$PY" - <<'PY' || exit 2
import importlib.util, platform, sys
missing = [m for m in ("numpy", "safetensors", "torch") if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"missing Python packages: {', '.join(missing)} (pip install {' '.join(missing)})")
import torch
gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
print(f"python {platform.python_version()}, torch {torch.__version__}, "
      f"CUDA {torch.version.cuda}, GPU: {gpu}")
PY

start=$(date +%s)
timeout 280 "$PY" bench/torch_round_split.py \
  --task cifar10-resnet18 --learners 5 --partition iid \
  --fake-cifar "$ROWS" --device "$DEVICE" \
  --rounds "$ROUNDS" --warmup "$WARMUP" \
  -p batch_size="$BATCH" -p epochs="$EPOCHS"
rc=$?
echo "gpu_resnet_check: exit $rc after $(( $(date +%s) - start )) s (device=$DEVICE, rows=$ROWS)"
exit $rc
