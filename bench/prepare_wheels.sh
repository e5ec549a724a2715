#!/usr/bin/env bash
# Download, here, the wheels the GPU machine lacks for the figure notebooks into .whl/ (ignored by git) and pin
# them in bench/wheels.txt; the device tool's `carry` then sends .whl/ (see bench/results/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
"$PY" bench/wheels.py prepare "$@"
"$PY" bench/wheels.py check
du -sh .whl
