#!/usr/bin/env bash
# The main job on the embedded default: regenerate every paper figure on the `cpu` preset (MNIST-1D) with
# lottery-figures. Training runs go to ./runs (shared by all figures, resumable), figures and executed notebooks to
# ./figures/cpu/. Extra arguments go to lottery-figures (e.g. --only fig2,fig5 or --seeds 0,1).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/lottery figures --preset cpu --jobs 2 "$@"
