#!/usr/bin/env bash
# Set-up for a fresh machine: a virtual environment in .venv with lottery-nb (editable) and its dev tools.
# Idempotent: a second call only re-installs when settings.ini or setup.py changed.
# torch: the CUDA build (PyPI's default) where `nvidia-smi` finds a GPU; elsewhere the CPU build from PyTorch's CPU
# wheel index ($TORCH_CPU_INDEX; a .venv of ~1 GB instead of ~6 GB) when that index answers within 5 s (a failed try
# costs at most 10 s); else the default build.
# One line says which build was installed and why.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
CPU_INDEX=${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
# pip's notes about local index folders that do not hold a package are noise here.
quiet_pip() { .venv/bin/python -m pip install --disable-pip-version-check -q "$@" 2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2); }
torch_build() { .venv/bin/python -c 'import torch; print(torch.__version__, "(CUDA " + torch.version.cuda + " build)" if torch.version.cuda else "(CPU build)")' 2>/dev/null; }
# The torch requirements of settings.ini (torch, torchvision), so the CPU build satisfies them.
torch_reqs() { sed -n 's/^requirements *= *//p' settings.ini | tr ' ' '\n' | grep -E '^torch(vision)?([<>=!~]|$)'; }

why=""
if ! torch_build >/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    why="nvidia-smi finds a GPU, so the default (CUDA) build"
  elif timeout 10 .venv/bin/python - "$CPU_INDEX" <<'PYEOF'
import sys, urllib.request
try: urllib.request.urlopen(sys.argv[1].rstrip('/') + '/torch/', timeout=5)
except Exception: sys.exit(1)
PYEOF
  then
    echo "setup: no GPU (no working nvidia-smi): installing the CPU build of torch from $CPU_INDEX"
    # only that index: a mirror or find-links folder in pip's configuration must not hand back the default build
    mapfile -t reqs < <(torch_reqs)
    if env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL -u PIP_INDEX_URL -u PIP_CONSTRAINT PIP_CONFIG_FILE=/dev/null \
         .venv/bin/python -m pip install --disable-pip-version-check -q --timeout 30 --retries 1 --index-url "$CPU_INDEX" "${reqs[@]}"; then
      why="no GPU (no working nvidia-smi), so the CPU build from $CPU_INDEX"
    else
      why="no GPU, but installing from $CPU_INDEX failed, so the default build"
    fi
  else
    why="no GPU (no working nvidia-smi), but $CPU_INDEX could not be reached (5 s limit), so the default build"
  fi
fi

stamp=.venv/.lottery-nb-installed
if [ ! -f "$stamp" ] || [ settings.ini -nt "$stamp" ] || [ setup.py -nt "$stamp" ]; then
  echo "setup: installing lottery-nb and its dependencies into .venv (torch is large: this takes a few minutes the first time)"
  quiet_pip -e ".[dev]"
  touch "$stamp"
fi
if [ -n "$why" ]; then echo "setup: torch $(torch_build) installed: $why"; fi
