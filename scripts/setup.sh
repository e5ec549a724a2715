#!/usr/bin/env bash
# Set-up for a fresh machine: a virtual environment in .venv with lottery-nb (editable) and its dev tools.
# Idempotent: a second call only re-installs when settings.ini or setup.py changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
stamp=.venv/.lottery-nb-installed
if [ ! -f "$stamp" ] || [ settings.ini -nt "$stamp" ] || [ setup.py -nt "$stamp" ]; then
  echo "setup: installing lottery-nb and its dependencies into .venv (torch is large: this takes a few minutes the first time)"
  # pip's notes about local index folders that do not hold a package are noise here.
  .venv/bin/python -m pip install --disable-pip-version-check -q -e ".[dev]" 2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
  touch "$stamp"
fi
