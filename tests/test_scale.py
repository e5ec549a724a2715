"""Scaling IMP out: runs trained as a group equal runs trained one by one on the CPU (at two oneDNN ISA levels), a unit
is continued only in the execution mode it started in, a killed group resumes bitwise, torchrun's
chain split writes the same store as one process, and `data_order='per_run'` gives each training run its own order."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import BIN, ROOT, appears, cli, differences, imp_cmd, kill_on, leftovers, run, same, snapshot

# a small cpu-preset experiment: 2 seeds x 2 rewind steps x 2 levels of 100 steps (a few seconds per run)
SMALL = ['--preset', 'cpu', '--set', 'training_steps=100it', '--set', 'milestones=50it,75it', '--set', 'checkpoint_every=20it',
         '--set', 'dense_seeds=null', '--seeds', '0,1', '--rewind-steps', '0it,10it', '--levels', '2', '--no-progress']


def ok(p: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert p.returncode == 0, p.stderr[-3000:]
    return p


def without(snap: dict, *keys) -> dict:
    "A snapshot whose JSON files lack `keys` (e.g. the file checksums, or the I/O-only group_size in config.json)."
    return {k: ({f: v for f, v in x.items() if f not in keys} if k.endswith('.json') else x) for k, x in snap.items()}


@pytest.fixture(scope='module')
def stores(tmp_path_factory):
    "The small experiment trained one unit at a time and with group_size=4."
    base = tmp_path_factory.mktemp('scale')
    one, grouped = base / 'one', base / 'grouped'
    ok(cli(*SMALL, store=one))
    ok(cli(*SMALL, '--group-size', '4', store=grouped))
    return one, grouped


def test_grouped_equals_one_by_one(stores):
    one, grouped = stores
    a, b = snapshot(one), snapshot(grouped)
    assert set(a) == set(b) and len([k for k in a if k.endswith('weights.pt')]) == 2 + 2 * 2 * 2   # 2 dense + 8 levels
    assert json.loads(next(grouped.glob('*/config.json')).read_text())['group_size'] == 4   # recorded, same key
    for st in (one, grouped):   # on the CPU a group computes each run alone: one execution mode, recorded with each level
        assert {json.loads(p.read_text())['provenance']['execution'] for p in st.glob('*/seed_*/**/metrics.json')} == {'one-by-one'}
    for k in a:
        if k.endswith('mask.pt') or k.endswith('losses.pt'): assert same(a[k], b[k]), k
        elif k.endswith('.pt'):
            assert a[k].keys() == b[k].keys(), k
            for n in a[k]:
                x, y = a[k][n].double(), b[k][n].double()
                assert (x - y).norm() <= 1e-5 * x.norm() + 1e-12, (k, n)
                assert torch.equal(a[k][n], b[k][n]), (k, n)   # equal values: on CPU the group is exact
    # metrics (test errors included) and the files' checksums equal: the grouped store is byte for byte the same
    assert not differences(without(a, 'group_size'), without(b, 'group_size'))
    errs = lambda s: sorted((k, v['test_error']) for k, v in s.items() if k.endswith('metrics.json'))
    assert errs(a) == errs(b) and len(errs(a)) == 10


def test_grouped_equals_one_by_one_under_avx2(tmp_path):
    "The same comparison with oneDNN held to AVX2 (the test above runs at the ISA oneDNN picks, AVX-512 here): bitwise too."
    small = SMALL[:SMALL.index('--seeds')] + ['--seeds', '0,1', '--rewind-steps', '10it', '--levels', '1', '--no-progress']
    env = {'ONEDNN_MAX_CPU_ISA': 'AVX2'}
    ok(run(imp_cmd(*small, store=tmp_path / 'one'), env=env)); ok(run(imp_cmd(*small, '--group-size', '2', store=tmp_path / 'g'), env=env))
    a, b = snapshot(tmp_path / 'one'), snapshot(tmp_path / 'g')
    assert len([k for k in a if k.endswith('weights.pt')]) == 4 and not differences(without(a, 'group_size'), without(b, 'group_size'))


def test_unit_is_continued_only_in_its_execution_mode(tmp_path):
    "A chain whose stored level, or a level whose checkpoint, another execution mode wrote is refused in one sentence."
    from lottery_nb.config import get_preset
    from lottery_nb.imp import setup
    from lottery_nb.store import Experiment, load_json, save_json
    args = ['--preset', 'smoke', '--rewind-steps', '5it', '--no-progress']
    store = tmp_path / 'runs'
    ok(cli(*args, '--levels', '1', store=store))
    exp = Experiment(get_preset('smoke', rewind_steps=('5it',)), store, setup(get_preset('smoke'))[2])
    f = exp.level_dir(0, 5, 1) / 'metrics.json'
    m = load_json(f); assert m['provenance']['execution'] == 'one-by-one'
    m['provenance']['execution'] = 'ddp over 2 ranks'; save_json(m, f)   # as if `--ddp` had trained it (its checksum too)
    before = snapshot(store)
    p = cli(*args, '--levels', '2', store=store)
    assert p.returncode == 2 and not differences(before, snapshot(store)), p.stderr[-2000:]   # refused before training
    assert ("Level 1 of seed 0, rewind step 5 was trained in execution mode 'ddp over 2 ranks', but this run would continue "
            "it in 'one-by-one', which gives other numbers; continue it with --ddp under torchrun with 2") in p.stderr
    # a checkpoint another mode wrote (here: grouped on a GPU) is refused when its level would resume from it
    m['provenance']['execution'] = 'one-by-one'; save_json(m, f)
    ck = exp.checkpointer(0, 5, 2, 'grouped on cuda'); ck.path.parent.mkdir(parents=True)
    ck.save({'start_step': 5, 'end_step': 40, 'step': 10})
    p = cli(*args, '--levels', '2', store=store)
    assert p.returncode == 2 and "was trained in execution mode 'grouped on cuda', but this run would continue it in 'one-by-one'" in p.stderr
    assert not exp.is_done(0, 5, 2) and ck.path.exists()
    ck.path.unlink(); ok(cli(*args, '--levels', '2', store=store)); assert exp.is_done(0, 5, 2)


def test_killed_group_resumes_bitwise(stores, tmp_path):
    _, grouped = stores
    store = tmp_path / 'runs'
    k = kill_on(imp_cmd(*SMALL, '--group-size', '4', store=store), appears(store, '*/seed_*/rewind_*/level_1/checkpoint.pt'))
    assert k.seen and k.running, k                                           # killed mid-level, before the end
    assert not list(store.glob('*/seed_*/rewind_*/level_2/metrics.json'))   # unfinished
    ok(cli(*SMALL, '--group-size', '4', store=store))
    assert not leftovers(store)
    assert differences(snapshot(store), snapshot(grouped)) == []


def test_torchrun_chain_split_equals_one_process(tmp_path):
    args = ['imp', '--preset', 'smoke', '--seeds', '0,1', '--no-progress']
    single, split = tmp_path / 'single', tmp_path / 'split'
    ok(run([sys.executable, '-m', 'lottery_nb.cli', *args, '--store', single]))
    p = ok(run([BIN / 'torchrun', '--standalone', '--nproc_per_node=2', '-m', 'lottery_nb.cli', *args, '--store', split]))
    a, b = snapshot(single), snapshot(split)
    assert len([k for k in a if k.endswith('weights.pt')]) == 2 + 2 * 2 * 2 and differences(a, b) == []
    assert 'will idle' not in p.stderr
    p = ok(run([BIN / 'torchrun', '--standalone', '--nproc_per_node=5', '-m', 'lottery_nb.cli', *args, '--store', split]))
    assert 'World size 5 exceeds the 4 independent chain(s): rank(s) 4 will idle' in p.stderr


def _retrain(exp, cfg, seed, rewind, level, order):
    "Level `level` of a chain trained again by `train` from what the store holds, with data-order seed `order`."
    from lottery_nb.imp import setup
    from lottery_nb.models import get_model
    from lottery_nb.pruning import apply_mask
    from lottery_nb.training import train
    dev, data, plan = setup(cfg)
    model = get_model(cfg.model, data.num_classes, data.input_shape, seed=seed, **cfg.model_kwargs)
    mask = exp.mask(seed, rewind, level)
    return train(model, data, cfg, plan, order, apply_mask(exp.rewind_state(seed, rewind), mask), rewind, plan.total, mask=mask)['state']


def test_data_order_per_run(tmp_path):
    from lottery_nb.config import get_preset
    from lottery_nb.imp import order_seed, run_imp, setup
    torch.set_num_threads(1)
    shared, per_run = get_preset('smoke', data_order='shared'), get_preset('smoke')
    assert shared.key != per_run.key
    # two levels of one seed draw different batch orders
    _, data, _ = setup(per_run)
    first = lambda level: next(data.train_batches(order_seed(per_run, 0, 5, level), 5, per_run.batch_size))[0]
    assert not torch.equal(first(1), first(2))
    # shared: every level trains on the replicate seed's order, as before per_run existed
    exp = run_imp(shared, tmp_path / 's', progress=False)
    assert same(_retrain(exp, shared, 0, 5, 2, 0), exp.weights(0, 5, 2))
    # per_run: level 2 used its own order (not the replicate seed's), and the whole run is reproducible
    e1, e2 = run_imp(per_run, tmp_path / 'p1', progress=False), run_imp(per_run, tmp_path / 'p2', progress=False)
    assert same(_retrain(e1, per_run, 0, 5, 2, order_seed(per_run, 0, 5, 2)), e1.weights(0, 5, 2))
    assert not same(_retrain(e1, per_run, 0, 5, 2, 0), e1.weights(0, 5, 2))
    assert same(e1.weights(0, 0, 0), exp.weights(0, 0, 0))   # the dense level 0 keeps the replicate seed's order
    assert differences(snapshot(tmp_path / 'p1'), snapshot(tmp_path / 'p2')) == []


def test_unit_held_elsewhere_leaves_the_group(stores, tmp_path):
    "A chain whose lock another process holds is left out of its group and trained once the lock is free."
    import time
    from conftest import DEADLINE, popen
    from lottery_nb.config import get_preset
    from lottery_nb.imp import setup
    from lottery_nb.store import Experiment, file_lock
    _, grouped = stores
    store = tmp_path / 'runs'
    cfg = get_preset('cpu', training_steps='100it', milestones=('50it', '75it'), checkpoint_every='20it', seeds=(0, 1),
                     rewind_steps=('0it', '10it'), levels=2)
    exp = Experiment(cfg, store, setup(cfg)[2])
    others = [exp.level_dir(s, r, 2) / 'metrics.json' for s, r in [(0, 0), (0, 10), (1, 0)]]
    with file_lock(exp.unit_lock(1, 10), blocking=False) as got:
        assert got
        p, t0 = popen(imp_cmd(*SMALL, '--group-size', '4', store=store)), time.monotonic()
        while not all(f.exists() for f in others) and p.poll() is None and time.monotonic() - t0 < DEADLINE: time.sleep(0.05)
        assert all(f.exists() for f in others) and p.poll() is None          # the others finished, the run waits
        assert not list(exp.chain_dir(1, 10).glob('level_*'))                 # nothing of the held chain was trained
    assert p.wait(timeout=DEADLINE) == 0
    assert differences(snapshot(store), snapshot(grouped)) == []


def test_run_imp_out_of_memory_loses_nothing(tmp_path, monkeypatch, capsys):
    """A grouped run_imp whose device runs out of memory with more than 2 runs (injected) halves its groups, says so
    once, and writes the store the unit-by-unit runner writes (on the CPU: every file the same bits)."""
    import lottery_nb.group as G
    from lottery_nb.config import get_preset
    from lottery_nb.imp import run_imp
    torch.set_num_threads(1)
    cfg = get_preset('smoke', seeds=(0, 1, 2), rewind_steps=('0it', '5it'))
    real, fails = G._group_step, []
    def injected(g, sts, *a):
        if len(sts) > 2 and sts[0]['step'] in (12, 17): fails.append(len(sts)); raise torch.cuda.OutOfMemoryError('test')
        real(g, sts, *a)
    monkeypatch.setattr(G, '_group_step', injected)
    run_imp(cfg.replace(group_size=8), tmp_path / 'g', progress=False)
    said = capsys.readouterr().err.splitlines()
    monkeypatch.setattr(G, '_group_step', real)
    run_imp(cfg, tmp_path / 'one', progress=False)
    assert fails and [s for s in said if s.startswith('Out of memory')] == [
        'Out of memory on cpu with a group of 3 runs: groups of at most 2 runs from here on; 3 unfinished run(s) of that '
        'group start again from their last checkpoints (the finished ones are kept).']   # once: the next groups fit
    a, b = snapshot(tmp_path / 'one'), snapshot(tmp_path / 'g')
    assert not differences(without(a, 'group_size'), without(b, 'group_size'))
