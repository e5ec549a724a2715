import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def cli(*args, store=None, timeout=300, **kw):
    "Run lottery-imp as a user would; returns the CompletedProcess."
    cmd = [str(BIN / 'lottery-imp'), *args] + (['--store', str(store)] if store is not None else [])
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=kw.get('cwd', ROOT),
                          env={**os.environ, 'PYTHONUNBUFFERED': '1'})


@pytest.fixture
def store(tmp_path):
    return tmp_path / 'runs'
