#!/usr/bin/env bash
# All tests: set-up, then every notebook (nbdev_test) and the cross-module tests (pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# One torch thread per process: the test models are tiny (faster so), and a busy machine cannot oversubscribe them.
export PATH="$PWD/.venv/bin:$PATH" MPLBACKEND=Agg OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
echo "== notebooks (nbdev_test)"
nbdev_test --n_workers 2 --timing
echo "== pytest"
python -m pytest -q -p no:cacheprovider tests "$@"
