#!/usr/bin/env bash
# The GPU checks of issue 27, as one script for a lent GPU machine (no cargo there). Build
# on the build machine first (about 13 minutes on 2 cores), into the git-ignored .device/
# folder, stripped and compressed (the device tool carries at most 64 MiB; the stripped
# `tanas` is about 85 MB, 2026-12-06), the script unpacks it:
#   cargo build --release --features cuda -p tanas-cli && cargo build --release -p xtask
#   mkdir -p .device && strip -o .device/tanas target/release/tanas \
#     && strip -o .device/xtask target/release/xtask && xz -T2 -6 -f .device/tanas
# then on the GPU machine, from the repository root (device tool: carry [".device"]):
#   tests/gpu/device-check.sh            # outputs under $OUT (or target/gpu-check)
# In order of what matters most, each step with its own time limit so that one slow step
# leaves the others their time (about 9.5 minutes in all; run it with timeout_s 590):
#   1. gpu-smoke on `cudnn` (tanas-cuda: cuDNN convolutions and BatchNorm, the folded exact
#      Fisher): small-cnn's Fisher against the CPU's (1e-3), one training step of resnet18 and
#      DARTS_V2 against the CPU's (2e-2);
#   2. bench train and 3. bench fisher on `cudnn` against PyTorch on the same GPU (one run
#      each: the ratios of the issue's targets);
#   4. bench conv: ms per call on `cudnn` and `cuda` (burn-cuda with autotune and fusion)
#      against PyTorch;
#   5. bench train on `cuda` (step 1 of the issue; its autotuning happens in the warm-up), and
#   6. gpu-smoke on `cuda`.
# TF32 is off on both sides (FP32 arithmetic) unless TANAS_TF32=1 is set for the script.
# A dry run of the plumbing on the build machine (CPU devices, PyTorch on the CPU, the time
# limits cut the slow steps): DEVICE_A=flex DEVICE_B=cpu tests/gpu/device-check.sh
# cuDNN is the pip wheel's that PyTorch uses (found by tanas-cuda; TANAS_CUDNN overrides).
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-target/gpu-check}
mkdir -p "$out"
bin=.device/tanas
x=.device/xtask
a=${DEVICE_A:-cudnn}
b=${DEVICE_B:-cuda}
if [ ! -x "$bin" ] && [ -f "$bin.xz" ]; then
  python3 -c "import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], 'wb'))" "$bin.xz" "$bin"
  chmod +x "$bin"
fi
step() { # name, seconds, command...
  local name=$1 limit=$2
  shift 2
  echo "== $name (limit ${limit}s)"
  local t0=$SECONDS
  timeout "$limit" "$@" >"$out/$name.txt" 2>"$out/$name.log"
  local rc=$?
  echo "exit $rc after $((SECONDS - t0)) s" | tee -a "$out/$name.log"
  tail -n 12 "$out/$name.log" | grep -v '^exit'
  head -n 20 "$out/$name.txt"
}
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  python3 -c "import torch; print('torch', torch.__version__, 'cudnn', torch.backends.cudnn.version())"
  echo "TANAS_TF32=${TANAS_TF32:-unset}"
} | tee "$out/gpu.txt"
step "smoke-$a" 100 "$x" gpu-smoke --tanas "$bin" --device "$a" --archs small-cnn --out "$out/smoke-$a"
step "train-$a" 150 "$x" bench train --devices "$a" --tanas "$bin" --torch python3 --rounds 1 --steps 20
cp target/bench/train.json "$out/train-$a.json" 2>/dev/null
step "fisher-$a" 70 "$x" bench fisher --devices "$a" --tanas "$bin" --torch python3
step conv 90 "$x" bench conv --devices "$a,$b" --tanas "$bin" --torch python3 --steps 10
step "train-$b" 90 "$x" bench train --devices "$b" --tanas "$bin" --rounds 1 --steps 20
step "smoke-$b" 60 "$x" gpu-smoke --tanas "$bin" --device "$b" --archs small-cnn --out "$out/smoke-$b"
cp target/bench/*.json "$out/" 2>/dev/null
exit 0
