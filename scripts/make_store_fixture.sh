#!/usr/bin/env bash
# Regenerate tests/fixtures/store_2c7a6ae: a run store written by lottery-nb at commit 2c7a6ae (before the issue-18
# refactor), read and resumed by tests/test_store_compat.py. It was made with this script on an AMD EPYC (AVX-512),
# CPU, one torch thread: a `smoke` IMP run with --levels 1 and a `smoke` adaptive run with --levels 1 (about 170 KB).
# Usage: scripts/make_store_fixture.sh [COMMIT]   (run from the repository root; needs the project's venv on PATH)
set -euo pipefail
commit=${1:-2c7a6ae}
src=$(mktemp -d); trap 'rm -rf "$src"' EXIT
git archive "$commit" lottery_nb | tar -x -C "$src"
out=tests/fixtures/store_$commit
rm -rf "$out"
export PYTHONPATH=$src OMP_NUM_THREADS=1 MPLBACKEND=Agg
python -m lottery_nb.cli imp --preset smoke --levels 1 --store "$out" --no-progress
python -m lottery_nb.cli adaptive --preset smoke --levels 1 --store "$out" --no-progress
du -sh "$out"
