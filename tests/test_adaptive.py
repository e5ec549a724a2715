"""Adaptive pruning (Section 2.2) under stress, driven as a user would drive it (`lottery-adaptive` in a subprocess):
a run killed at any moment resumes to the same bits; a sweep is not repeated after a kill; two processes share a
store; bad input gets one sentence; Fig. 4 runs on smoke and records its values. Kills are triggered by file events
(a checkpoint, a sweep or a level written), never by timers, and each test checks the run was unfinished then."""
import json
import subprocess
from pathlib import Path

import pytest
import torch

from conftest import adaptive_cmd, appears, differences, figures_cmd, kill_on, leftovers, popen, run, snapshot, TIMEOUT

# ~0.4 s per level, 9 adaptive levels after the dense run: kills land in sweeps, retrainings and between levels.
ARGS = ['--preset', 'smoke', '--set', 'training_steps=2400it', '--set', 'milestones=1200it,1800it', '--set', 'checkpoint_every=300it',
        '--rewind-steps', '400it', '--target-density', '0.15', '--no-progress']
LEVELS = '*-adaptive-*/seed_0/rewind_400/level_*'
# The moments of the kills, in order: inside the dense training, after an adaptive level's sweep (its retraining
# running), inside a retraining, right after a level.
EVENTS = ('**/checkpoint.pt', f'{LEVELS}/sweep.json', f'{LEVELS}/checkpoint.pt', f'{LEVELS}/metrics.json')


def adaptive_dir(store: Path) -> Path:
    return next(store.glob('*-adaptive-*'))


def table(out):
    "The printed table without its timing columns."
    return [l.split()[:8] for l in out[out.index('seed  rewind'):].splitlines()]


def test_kill_anywhere_then_resume_is_bitwise_identical(tmp_path):
    ref, killed = tmp_path / 'ref', tmp_path / 'killed'
    r = run(adaptive_cmd(*ARGS, store=ref))
    assert r.returncode == 0, r.stderr
    levels = sorted(adaptive_dir(ref).glob('seed_0/rewind_400/level_*/metrics.json'))
    assert len(levels) >= 3, r.stdout   # a chain long enough for kills to land inside it
    for pattern in EVENTS:
        k = kill_on(adaptive_cmd(*ARGS, store=killed), appears(killed, pattern))
        assert k.seen and k.running, (pattern, k)
        assert len(list(killed.glob(f'{LEVELS}/metrics.json'))) < len(levels), pattern   # unfinished when killed
    r2 = run(adaptive_cmd(*ARGS, store=killed))
    assert r2.returncode == 0, r2.stderr
    assert not differences(snapshot(ref), snapshot(killed))
    assert table(r.stdout) == table(r2.stdout)
    assert not leftovers(killed), leftovers(killed)


def test_sweep_is_not_repeated_after_a_kill(tmp_path):
    "A kill during a retraining leaves the level's sweep.json and checkpoint; the re-run uses both."
    store = tmp_path / 'runs'
    long = [*ARGS, '--set', 'training_steps=24000it', '--set', 'milestones=12000it', '--set', 'checkpoint_every=500it']
    pattern = '*-adaptive-*/seed_0/rewind_400/level_1/checkpoint.pt'
    k = kill_on(adaptive_cmd(*long, store=store), appears(store, pattern))
    ck = list(store.glob(pattern))
    assert k.seen and k.running and ck, f'no checkpoint was written in adaptive level 1: {k}'
    level = ck[0].parent
    sweep = level / 'sweep.json'
    stamp, step = sweep.stat().st_mtime_ns, torch.load(ck[0], weights_only=True)['step']
    assert step > 400 and (step - 400) % 500 == 0 and not (level / 'metrics.json').exists()
    k = kill_on(adaptive_cmd(*long, store=store), appears(level, 'metrics.json'))
    assert k.seen and k.running, k
    assert (level / 'metrics.json').exists()
    assert sweep.stat().st_mtime_ns == stamp
    assert json.loads((level / 'metrics.json').read_text())['sweep']['p'] == json.loads(sweep.read_text())['p']


def test_two_processes_share_a_store(tmp_path):
    ref, shared = tmp_path / 'ref', tmp_path / 'shared'
    args = [*ARGS, '--seeds', '0,1', '--set', 'training_steps=600it', '--set', 'milestones=300it,450it', '--set', 'checkpoint_every=100it',
            '--rewind-steps', '100it']
    assert run(adaptive_cmd(*args, store=ref)).returncode == 0
    procs = [popen(adaptive_cmd(*args, store=shared), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=TIMEOUT) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert not differences(snapshot(ref), snapshot(shared))
    assert table(outs[0][0]) == table(outs[1][0])


BAD = [
    (['--ratios', '0.1,1.5'], 'Sweep ratio 1.5 is outside (0, 1); ratios are fractions of the remaining weights to prune'),
    (['--ratios', '0,0.5'], 'Sweep ratio 0.0 is outside (0, 1)'),
    (['--ratios', ''], "ratios='' is empty; give at least one number"),
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
    r = run(adaptive_cmd('--preset', 'smoke', '--no-progress', *BAD[0][0], store=store))
    assert r.returncode == 2 and BAD[0][1] in r.stderr and 'Traceback' not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not store.exists()


@pytest.mark.parametrize('args, msg', BAD)
def test_bad_input_is_one_sentence_and_writes_nothing(tmp_path, args, msg):
    import contextlib, io
    from lottery_nb.cli import adaptive_main
    store, err = tmp_path / 'runs', io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = adaptive_main(['--preset', 'smoke', '--no-progress', *args, '--store', str(store)])
    assert rc == 2 and msg in err.getvalue(), err.getvalue()
    assert len(err.getvalue().strip().splitlines()) == 1, err.getvalue()
    assert not store.exists()


def test_fig4_on_smoke(tmp_path):
    "lottery-figures runs Fig. 4 on smoke in seconds; the recorded values are those of the store."
    import scrapbook as sb
    r = run(figures_cmd('--preset', 'smoke', '--only', 'fig4', '--out', tmp_path / 'out', '--store', tmp_path / 'runs', '--no-progress'))
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
