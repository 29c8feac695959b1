#!/usr/bin/env bash
# The GPU checks of issue 27, as one script for a lent GPU machine (no cargo there). Build
# on the build machine first, into the git-ignored .device/ folder:
#   cargo build --release --features cuda -p tanas-cli -p xtask
#   mkdir -p .device && cp target/release/tanas target/release/xtask .device/
# then on the GPU machine, from the repository root (device tool: carry [".device"]):
#   tests/gpu/device-check.sh            # outputs under $OUT (or target/gpu-check)
# It checks burn-cuda (`cuda`) and the cuDNN backend (`cudnn`) against the CPU (Fisher within
# 1e-3), then times both against PyTorch on the same GPU in one run per benchmark. cuDNN is
# the pip wheel's that PyTorch uses (found by tanas-cuda; TANAS_CUDNN overrides).
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-target/gpu-check}
mkdir -p "$out"
bin=.device/tanas
x=.device/xtask
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$out/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cudnn', torch.backends.cudnn.version())" | tee -a "$out/gpu.txt"
for device in cuda cudnn; do
  echo "== gpu-smoke on $device"
  timeout 150 "$x" gpu-smoke --tanas "$bin" --device "$device" --out "target/gpu-smoke-$device" >"$out/smoke-$device.log" 2>&1
  echo "exit $?" >>"$out/smoke-$device.log"
  tail -5 "$out/smoke-$device.log"
done
echo "== bench train (cuda, cudnn, PyTorch)"
timeout 200 "$x" bench train --devices cuda,cudnn --tanas "$bin" --torch python3 --rounds 1 --steps 20 >"$out/train.txt" 2>"$out/train.log"
head -8 "$out/train.txt"
echo "== bench fisher (cuda, cudnn, PyTorch)"
timeout 150 "$x" bench fisher --devices cuda,cudnn --tanas "$bin" --torch python3 >"$out/fisher.txt" 2>"$out/fisher.log"
head -6 "$out/fisher.txt"
