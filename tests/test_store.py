"""The run store under stress: a run killed at any moment resumes to the same bits; two processes share a store;
damaged files are named."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from conftest import BIN, ROOT, cli

# Long enough that kills land inside levels, short enough for CI: 3 levels x 2 rewind steps of 240 steps.
ARGS = ['--preset', 'smoke', '--set', 'training_steps=240it', '--set', 'milestones=120it,180it',
        '--set', 'checkpoint_every=30it', '--rewind-steps', '0it,40it', '--levels', '3', '--no-progress']


def snapshot(store: Path) -> dict:
    "Every stored tensor file and metrics file (minus timings and provenance) of a store, by relative path."
    import json
    out = {}
    for p in sorted(store.rglob('*')):
        rel = str(p.relative_to(store))
        if p.suffix == '.pt':
            out[rel] = torch.load(p, map_location='cpu', weights_only=True)
        elif p.name == 'metrics.json':
            m = json.loads(p.read_text())
            out[rel] = {k: v for k, v in m.items() if k not in ('wall_time', 'finished_at', 'provenance')}
    return out


def same(a, b):
    if isinstance(a, dict): return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, torch.Tensor): return a.dtype == b.dtype and torch.equal(a, b)
    return a == b


def test_kill_anywhere_then_resume_is_bitwise_identical(tmp_path):
    ref, killed = tmp_path / 'ref', tmp_path / 'killed'
    r = cli(*ARGS, store=ref)
    assert r.returncode == 0, r.stderr
    # kill -9 the same command at several moments (early, mid-level, between levels), resuming each time
    for delay in (1.5, 2.5, 3.5, 5.0):
        p = subprocess.Popen([str(BIN / 'lottery-imp'), *ARGS, '--store', str(killed)], cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        p.send_signal(signal.SIGKILL); p.wait()
    r2 = cli(*ARGS, store=killed)
    assert r2.returncode == 0, r2.stderr
    a, b = snapshot(ref), snapshot(killed)
    assert a.keys() == b.keys()
    assert all(same(a[k], b[k]) for k in a), [k for k in a if not same(a[k], b[k])]
    left = [p for p in killed.rglob('*') if p.name.endswith('.tmp') or p.name == 'checkpoint.pt']
    assert not left, left


def test_interrupted_level_resumes_from_checkpoint(tmp_path):
    "A kill after a checkpoint leaves checkpoint.pt; the re-run continues from it instead of starting over."
    store = tmp_path / 'runs'
    p = subprocess.Popen([str(BIN / 'lottery-imp'), *ARGS, '--set', 'training_steps=2400it', '--set', 'milestones=1200it',
                          '--store', str(store)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while not list(store.rglob('checkpoint.pt')) and time.time() - t0 < 120: time.sleep(0.05)
    p.send_signal(signal.SIGKILL); p.wait()
    ck = list(store.rglob('checkpoint.pt'))
    assert ck, 'no checkpoint was written'
    step = torch.load(ck[0], weights_only=True)['step']
    assert step > 0 and step % 30 == 0


def test_two_processes_share_a_store(tmp_path):
    ref, shared = tmp_path / 'ref', tmp_path / 'shared'
    args = [*ARGS, '--seeds', '0,1']
    assert cli(*args, store=ref).returncode == 0
    procs = [subprocess.Popen([str(BIN / 'lottery-imp'), *args, '--store', str(shared)], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    a, b = snapshot(ref), snapshot(shared)
    assert a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    # both printed the same complete table
    tail = lambda s: s[s.index('level'):]
    assert tail(outs[0][0]) == tail(outs[1][0])


def test_damaged_store_file_is_named(tmp_path):
    store = tmp_path / 'runs'
    assert cli(*ARGS, '--levels', '1', store=store).returncode == 0
    w = next(store.rglob('rewind_0/level_1/weights.pt'))
    w.write_bytes(w.read_bytes()[:100])
    r = cli(*ARGS, '--levels', '2', store=store)
    assert r.returncode == 2 and str(w) in r.stderr and 'corrupt or truncated' in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
