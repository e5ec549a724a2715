#!/usr/bin/env bash
# The main job on the embedded default: IMP with weight rewinding on the `cpu` preset (MNIST-1D), into ./runs.
# Extra arguments go to lottery-imp (e.g. --seeds 0 --levels 4). Re-running resumes from the store.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/lottery-imp --preset cpu "$@"
