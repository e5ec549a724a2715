"""Helpers shared by the tests: the command-line runners, the store snapshot and its comparison, and kill-on-event.

Every subprocess runs with one thread per process (`OMP_NUM_THREADS=1`): the test models are tiny, so one thread is
faster anyway, and a machine busy with other work cannot oversubscribe them. Timeouts and deadlines are generous
(a 2-core machine busy with other work is ten times slower than an idle one); nothing waits a fixed time."""
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ENV = {**os.environ, 'PYTHONUNBUFFERED': '1', 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1', 'MPLBACKEND': 'Agg'}
TIMEOUT = 1800     # seconds for one command of a small model, on a loaded machine
DEADLINE = 900     # seconds to wait for a file event before giving up
TIMINGS = ('wall_time', 'finished_at', 'provenance', 'checksum')   # (a stored JSON's checksum covers its timings)


def run(cmd, timeout=TIMEOUT, cwd=ROOT, env=None) -> subprocess.CompletedProcess:
    "Run `cmd` (a list) with the test environment; returns the CompletedProcess with text stdout and stderr."
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env={**ENV, **(env or {})})


def popen(cmd, cwd=ROOT, env=None, **kw) -> subprocess.Popen:
    "Start `cmd` with the test environment (output discarded unless `stdout`/`stderr` are given)."
    kw.setdefault('stdout', subprocess.DEVNULL); kw.setdefault('stderr', subprocess.DEVNULL)
    return subprocess.Popen([str(c) for c in cmd], cwd=cwd, env={**ENV, **(env or {})}, **kw)


def imp_cmd(*args, store=None) -> list:
    "The `lottery-imp` command line a user types."
    return [BIN / 'lottery-imp', *args] + (['--store', store] if store is not None else [])


def adaptive_cmd(*args, store=None) -> list:
    "The `lottery-adaptive` command line a user types."
    return [BIN / 'lottery-adaptive', *args] + (['--store', store] if store is not None else [])


def figures_cmd(*args) -> list:
    "The `lottery-figures` command line a user types."
    return [BIN / 'lottery-figures', *args]


def cli(*args, store=None, timeout=TIMEOUT, cwd=ROOT) -> subprocess.CompletedProcess:
    "Run lottery-imp as a user would; returns the CompletedProcess."
    return run(imp_cmd(*args, store=store), timeout=timeout, cwd=cwd)


# ---------------------------------------------------------------- file events and kills
def stamps(store: Path, pattern: str) -> set:
    "(path, mtime) of every file under `store` matching the glob `pattern` (files that vanish meanwhile are skipped)."
    out = set()
    for p in Path(store).glob(pattern):
        try: out.add((p, p.stat().st_mtime_ns))
        except FileNotFoundError: pass
    return out


def appears(store: Path, pattern: str):
    "An event: a file matching `pattern` is created or rewritten after this call."
    before = stamps(store, pattern)
    return lambda: bool(stamps(store, pattern) - before)


@dataclass
class Kill:
    seen: bool      # the event happened before the deadline
    running: bool   # the process had not exited when it was killed
    returncode: int


def kill_on(cmd, event, deadline=DEADLINE, poll=0.01, **kw) -> Kill:
    "Start `cmd`, wait for `event()` to hold (or the process to exit, or `deadline` seconds), then SIGKILL it."
    p, t0, seen = popen(cmd, **kw), time.monotonic(), False
    try:
        while time.monotonic() - t0 < deadline and p.poll() is None:
            if event(): seen = True; break
            time.sleep(poll)
        running = p.poll() is None
        if running: p.send_signal(signal.SIGKILL)
    finally:
        p.wait()
    return Kill(seen, running, p.returncode)


# ---------------------------------------------------------------- store snapshots
def strip(x):
    "A JSON value without its timings and provenance (recursively)."
    if isinstance(x, dict): return {k: strip(v) for k, v in x.items() if k not in TIMINGS}
    if isinstance(x, list): return [strip(v) for v in x]
    return x


def snapshot(store: Path) -> dict:
    "Every tensor and JSON file of a store (JSON without timings), by relative path; links by their target."
    import torch
    out = {}
    for p in sorted(Path(store).rglob('*')):
        rel = str(p.relative_to(store))
        if p.is_symlink(): out[rel] = ('link', os.readlink(p))
        elif p.suffix == '.pt': out[rel] = torch.load(p, map_location='cpu', weights_only=True)
        elif p.suffix == '.json': out[rel] = strip(json.loads(p.read_text()))
    return out


def same(a, b) -> bool:
    "Bitwise equality of nested dicts, lists and tensors."
    import torch
    if isinstance(a, dict): return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)): return isinstance(b, (list, tuple)) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor): return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    return a == b


def differences(a: dict, b: dict) -> list:
    "The paths at which two snapshots differ (missing on either side or different content)."
    return sorted(set(a) ^ set(b)) + [k for k in a if k in b and not same(a[k], b[k])]


def leftovers(store: Path) -> list:
    "Temporary files and checkpoints left in a store that should be finished."
    return [p for p in Path(store).rglob('*') if p.name.endswith('.tmp') or p.name == 'checkpoint.pt']


def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: takes over a minute on 2 cores (deselect with -m "not slow")')


@pytest.fixture
def store(tmp_path):
    return tmp_path / 'runs'
