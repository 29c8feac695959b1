#!/usr/bin/env bash
# Everything CI runs, in one command: formatting, lints (of the CUDA build too), every test
# of the workspace (the Quick, Draw! profile end to end on generated files among them), then
# the executors of `cargo xtask reproduce` and `tanas run` against each other
# (tests/executors.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo clippy, the CUDA build (it compiles without CUDA: the libraries load at run time)"
cargo clippy -p tanas-cli -p tanas-cuda --features tanas-cli/cuda --all-targets -- -D warnings
echo "== cargo test --workspace"
cargo test --workspace
echo "== executors: the smoke profile inline, on a local pool and on a one-node Slurm cluster"
tests/executors.sh
