"""Adaptive pruning (Section 2.2) under stress, driven as a user would drive it (`adaptive_main` in a subprocess):
a run killed at any moment resumes to the same bits; a sweep is not repeated after a kill; two processes share a
store; bad input gets one sentence; Fig. 4 runs on smoke and records its values."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import BIN, ROOT

ENTRY = 'import sys; from lottery_nb.adaptive import adaptive_main; sys.exit(adaptive_main(sys.argv[1:]))'
# ~0.4 s per level, 9 adaptive levels after the dense run: kills land in sweeps, retrainings and between levels.
ARGS = ['--preset', 'smoke', '--set', 'training_steps=2400it', '--set', 'milestones=1200it,1800it', '--set', 'checkpoint_every=300it',
        '--rewind-steps', '400it', '--target-density', '0.15', '--no-progress']
TIMINGS = ('wall_time', 'finished_at', 'provenance')


def cmd(*args, store):
    return [sys.executable, '-c', ENTRY, *args, '--store', str(store)]


def run(*args, store, timeout=300):
    return subprocess.run(cmd(*args, store=store), capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env={**os.environ, 'PYTHONUNBUFFERED': '1'})


def strip(x):
    "A JSON value without its timings (recursively)."
    if isinstance(x, dict): return {k: strip(v) for k, v in x.items() if k not in TIMINGS}
    if isinstance(x, list): return [strip(v) for v in x]
    return x


def snapshot(store: Path) -> dict:
    "Every tensor and JSON file of a store (JSON without timings), by relative path; links by their target."
    out = {}
    for p in sorted(store.rglob('*')):
        rel = str(p.relative_to(store))
        if p.is_symlink(): out[rel] = ('link', os.readlink(p))
        elif p.suffix == '.pt': out[rel] = torch.load(p, map_location='cpu', weights_only=True)
        elif p.suffix == '.json': out[rel] = strip(json.loads(p.read_text()))
    return out


def same(a, b):
    if isinstance(a, dict): return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)): return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor): return a.dtype == b.dtype and torch.equal(a, b)
    return a == b


def adaptive_dir(store: Path) -> Path:
    return next(store.glob('*-adaptive-*'))


def test_kill_anywhere_then_resume_is_bitwise_identical(tmp_path):
    ref, killed = tmp_path / 'ref', tmp_path / 'killed'
    r = run(*ARGS, store=ref)
    assert r.returncode == 0, r.stderr
    levels = sorted(adaptive_dir(ref).glob('seed_0/rewind_400/level_*/metrics.json'))
    assert len(levels) >= 3, r.stdout   # a chain long enough for kills to land inside it
    for delay in (2.0, 3.0, 4.0, 5.0):
        p = subprocess.Popen(cmd(*ARGS, store=killed), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        p.send_signal(signal.SIGKILL); p.wait()
    r2 = run(*ARGS, store=killed)
    assert r2.returncode == 0, r2.stderr
    a, b = snapshot(ref), snapshot(killed)
    assert a.keys() == b.keys(), sorted(set(a) ^ set(b))
    assert all(same(a[k], b[k]) for k in a), [k for k in a if not same(a[k], b[k])]
    table = lambda out: [l.split()[:8] for l in out[out.index('seed  rewind'):].splitlines()]   # without the timing columns
    assert table(r.stdout) == table(r2.stdout)
    left = [p for p in killed.rglob('*') if p.name.endswith('.tmp') or p.name == 'checkpoint.pt']
    assert not left, left


def test_sweep_is_not_repeated_after_a_kill(tmp_path):
    "A kill during a retraining leaves the level's sweep.json and checkpoint; the re-run uses both."
    store = tmp_path / 'runs'
    long = [*ARGS, '--set', 'training_steps=24000it', '--set', 'milestones=12000it', '--set', 'checkpoint_every=500it']
    p = subprocess.Popen(cmd(*long, store=store), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    ck = lambda: list(store.glob('*-adaptive-*/seed_0/rewind_400/level_1/checkpoint.pt'))
    while not ck() and time.time() - t0 < 180: time.sleep(0.05)
    p.send_signal(signal.SIGKILL); p.wait()
    assert ck(), 'no checkpoint was written in adaptive level 1'
    level = ck()[0].parent
    sweep = level / 'sweep.json'
    stamp, step = sweep.stat().st_mtime_ns, torch.load(ck()[0], weights_only=True)['step']
    assert step > 400 and (step - 400) % 500 == 0 and not (level / 'metrics.json').exists()
    p = subprocess.Popen(cmd(*long, store=store), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while not (level / 'metrics.json').exists() and time.time() - t0 < 300: time.sleep(0.05)
    p.send_signal(signal.SIGKILL); p.wait()
    assert (level / 'metrics.json').exists()
    assert sweep.stat().st_mtime_ns == stamp
    assert json.loads((level / 'metrics.json').read_text())['sweep']['p'] == json.loads(sweep.read_text())['p']


def test_two_processes_share_a_store(tmp_path):
    ref, shared = tmp_path / 'ref', tmp_path / 'shared'
    args = [*ARGS, '--seeds', '0,1', '--set', 'training_steps=600it', '--set', 'milestones=300it,450it', '--set', 'checkpoint_every=100it',
            '--rewind-steps', '100it']
    assert run(*args, store=ref).returncode == 0
    procs = [subprocess.Popen(cmd(*args, store=shared), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    a, b = snapshot(ref), snapshot(shared)
    assert a.keys() == b.keys() and all(same(a[k], b[k]) for k in a), [k for k in a if k not in b or not same(a[k], b[k])]
    table = lambda out: [l.split()[:8] for l in out[out.index('seed  rewind'):].splitlines()]   # without the timing columns
    assert table(outs[0][0]) == table(outs[1][0])


BAD = [
    (['--ratios', '0.1,1.5'], 'Sweep ratio 1.5 is outside (0, 1); ratios are fractions of the remaining weights to prune'),
    (['--ratios', '0,0.5'], 'Sweep ratio 0.0 is outside (0, 1)'),
    (['--ratios', ''], 'ratios=() is empty: the sweep needs at least one pruning ratio in (0, 1)'),
    (['--ratios', 'a,b'], "ratios='a,b' is not a comma-separated list of numbers"),
    (['--subsample', '300'], 'subsample=300 is larger than the training set of synthetic (256 examples); use an integer from 1 to 256.'),
    (['--target-density', '1.0'], 'target_density=1.0 is not below the density of the dense network (1.0)'),
    (['--target-density', '0.999'], 'target_density=0.999 rounds to all 320 prunable weights, the density already reached'),
    (['--floor', '1.2'], 'floor=1.2 is outside (0, 1)'),
    (['--rule', 'biggest'], "rule='biggest' is not allowed; choose one of first_failure, largest_pass."),
    (['--levels', '0'], 'levels=0 gives no target'),
]


def test_bad_input_from_the_command_line(tmp_path):
    "As a user sees it: exit status 2, one sentence, no traceback, nothing written."
    store = tmp_path / 'runs'
    r = run('--preset', 'smoke', '--no-progress', *BAD[0][0], store=store)
    assert r.returncode == 2 and BAD[0][1] in r.stderr and 'Traceback' not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not store.exists()


@pytest.mark.parametrize('args, msg', BAD)
def test_bad_input_is_one_sentence_and_writes_nothing(tmp_path, args, msg):
    import contextlib, io
    from lottery_nb.adaptive import adaptive_main
    store, err = tmp_path / 'runs', io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = adaptive_main(['--preset', 'smoke', '--no-progress', *args, '--store', str(store)])
    assert rc == 2 and msg in err.getvalue(), err.getvalue()
    assert len(err.getvalue().strip().splitlines()) == 1, err.getvalue()
    assert not store.exists()


def test_fig4_on_smoke(tmp_path):
    "lottery-figures runs Fig. 4 on smoke in seconds; the recorded values are those of the store."
    import scrapbook as sb
    r = subprocess.run([str(BIN / 'lottery-figures'), '--preset', 'smoke', '--only', 'fig4', '--out', str(tmp_path / 'out'),
                        '--store', str(tmp_path / 'runs'), '--no-progress'], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    s = sb.read_notebook(str(tmp_path / 'out' / 'smoke' / 'notebooks' / 'fig4_adaptive.ipynb')).scraps.data_dict
    assert s['target_remaining'] == 204                                   # fixed IMP: 320 -> 256 -> 204 weights
    assert s['final_remaining'] == {'fixed': [204], 'adaptive': [204]}    # both land on the same density
    assert s['densities']['fixed']['0'] == pytest.approx([0.8, 0.6375])
    assert s['retrainings']['fixed'] == [2] and 1 <= s['retrainings']['adaptive'][0] <= 2
    assert all(0.2 - 1e-9 <= x < 1 for x in s['ratios']['0'][:-1])      # every ratio but the clamped last one is >= the floor
    assert s['cost']['fixed']['sweep_examples'] == 0 and s['cost']['adaptive']['sweep_examples'] > 0
    assert len(s['claims_hold']) == 4
    for p in s['files']:
        b = Path(p).read_bytes()
        assert len(b) > 2000 and b[:4] in (b'\x89PNG', b'%PDF')
