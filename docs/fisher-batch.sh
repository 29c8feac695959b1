#!/usr/bin/env bash
# Measures how far the authors' `batch` Fisher estimator is from the exact Fisher, on a
# small-cnn trained on the embedded Fashion-MNIST (task fashion-3) and its real test images.
# Usage: docs/fisher-batch.sh [TANAS_BINARY]   (needs python3 with numpy)
set -euo pipefail
cd "$(dirname "$0")/.."
T=${1:-target/debug/tanas}
W=$(mktemp -d)
tasks=configs/tasks/fashion.toml
$T -q train --tasks $tasks --task fashion-3 --epochs 3 --out "$W/net" >/dev/null
f() { $T -q fisher small-cnn --num-classes 10 --run "$W/net" --tasks $tasks --task fashion-3 "$@" >/dev/null; }
f --estimator exact --out "$W/exact.safetensors"
f --estimator batch --batch-size 128 --out "$W/batch.safetensors"
f --estimator exact --limit 500 --out "$W/half1.safetensors"
f --estimator exact --skip 500 --out "$W/half2.safetensors"
python3 - "$W" <<'PY'
import json, struct, sys
import numpy as np
def load(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
    return np.concatenate([np.frombuffer(b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], "<f4")
                           for k, v in sorted(h.items()) if k != "__metadata__"]).astype(np.float64)
w = sys.argv[1]; e, b = load(f"{w}/exact.safetensors"), load(f"{w}/batch.safetensors")
print(f"relative L2 of batch vs exact: {np.linalg.norm(b - e) / np.linalg.norm(e):.3f}")
PY
for pair in "batch exact" "half1 half2"; do set -- $pair
  echo "FTD $1 -> $2: $($T distance "$W/$1.safetensors" "$W/$2.safetensors")"; done
rm -rf "$W"
