"""Group training (lottery_nb.group) equals runs trained one at a time on the CPU, at more than one oneDNN ISA level, and a
killed group resumes bitwise (a run compared with itself, in one execution mode)."""
import json, os, signal, subprocess, sys, textwrap, time
from pathlib import Path

import pytest
import torch

from lottery_nb.config import LotteryError, get_preset
from lottery_nb.data import get_data
from lottery_nb.group import GroupRun, check_group, train_group
from lottery_nb.models import get_model, prunable_names
from lottery_nb.pruning import dense_mask, magnitude_prune, apply_mask
from lottery_nb.training import evaluate, train

torch.set_num_threads(1)
STEPS = 80


def small_cfg(**kw):
    base = dict(training_steps=f'{STEPS}it', milestones=('40it', '60it'), checkpoint_every='20it', rewind_steps=('0it', '10it'))
    return get_preset('cpu', **{**base, **kw})


def make_runs(cfg, data, plan):
    "4 runs: seeds 0 and 1, rewind steps 0 and 10, each with its own 20%-pruned mask."
    runs = []
    for seed in (0, 1):
        m = get_model(cfg.model, data.num_classes, data.input_shape, seed=seed, **cfg.model_kwargs)
        init = {k: v.clone() for k, v in m.state_dict().items()}
        mask = magnitude_prune(init, dense_mask(init, prunable_names(m)), 0.2)
        for rw in plan.rewind_steps:
            runs.append(GroupRun(cfg, plan, seed, apply_mask(init, mask), rw, mask=mask, where=f'seed {seed}, rewind {rw}'))
    return runs, m


def compare_modes() -> dict:
    """Measure, in this process, a group of 4 runs against the same runs trained one by one (`train`, 80 steps): the CPU
    path (each run computed as the model alone) and, for one step, the channel-grouped kernels that CUDA uses."""
    import json
    import torch.nn.functional as F
    from lottery_nb.group import GroupedModel, stack_states
    cfg = small_cfg()
    data = get_data(cfg.dataset, **cfg.data_kwargs)
    plan = cfg.resolve(data.steps_per_epoch(cfg.batch_size))
    runs, model = make_runs(cfg, data, plan)
    steps = []
    group = train_group(model, data, runs, on_steps=steps.append)
    m = dict(steps=sum(steps), expected=sum(STEPS - r.start_step for r in runs), bitwise=[], rel=0.0, masks=[], test_err=0.0)
    for r, g in zip(runs, group):
        one = train(model, data, cfg, plan, r.seed, r.start_state, r.start_step, mask=r.mask)
        err_one = evaluate(model, data, 'test')['error']
        assert g['end_step'] == STEPS and len(g['losses']) == STEPS - r.start_step
        m['bitwise'].append(all(torch.equal(g['state'][k], v) for k, v in one['state'].items()) and torch.equal(g['losses'], one['losses']))
        m['rel'] = max([m['rel']] + [((g['state'][k] - v).norm() / v.norm().clamp_min(1e-12)).item()
                                     for k, v in one['state'].items() if v.is_floating_point()])
        m1, m2 = magnitude_prune(one['state'], r.mask, 0.2), magnitude_prune(g['state'], r.mask, 0.2)
        m['masks'].append(all(torch.equal(m1[n], m2[n]) for n in prunable_names(model)))
        model.load_state_dict(g['state'])
        m['test_err'] = max(m['test_err'], abs(evaluate(model, data, 'test')['error'] - err_one))
    # the grouped kernels (exact_cpu=False: what CUDA runs) on one batch: gradients against each run's own
    singles = [get_model(cfg.model, data.num_classes, data.input_shape, seed=s, **cfg.model_kwargs) for s in range(4)]
    gm = GroupedModel(singles[0], 4, exact_cpu=False); gm.load_state_dict(stack_states([s.state_dict() for s in singles]))
    x, y = next(data.train_batches(0, 0, cfg.batch_size))
    out = gm(torch.stack([x] * 4)); torch.stack([F.cross_entropy(out[r], y) for r in range(4)]).sum().backward()
    m['kernels_grad_rel'], m['kernels_bitwise'] = 0.0, True
    for r, s in enumerate(singles):
        F.cross_entropy(s(x), y).backward()
        for n, p in s.named_parameters():
            g = dict(gm.named_parameters())[n].grad[r]
            m['kernels_grad_rel'] = max(m['kernels_grad_rel'], ((g - p.grad).norm() / p.grad.norm()).item())
            m['kernels_bitwise'] &= torch.equal(g, p.grad)
    return m


COMPARE = textwrap.dedent('''
    import json, sys, torch
    torch.set_num_threads(1)
    sys.path.insert(0, {tests!r})
    import test_group
    print(json.dumps(test_group.compare_modes()))
''')


@pytest.mark.parametrize('isa', [None, 'AVX2'], ids=['isa-default', 'isa-avx2'])
def test_group_equals_one_by_one(isa):
    """A group of 4 runs (seeds 0, 1 x rewind steps 0, 10, each with its mask) against the runs trained one by one, in a
    process whose oneDNN is left to pick its ISA (AVX-512 on an AVX-512 machine) or is held to AVX2.

    On the CPU a group computes each run as the model alone, so it claims, and gets, one-by-one's bits at every ISA
    level (tolerance 0). The grouped kernels that CUDA uses are another execution mode: their one-step gradients differ
    from a run alone's by rounding, measured 2.0e-6 (AVX-512) and 2.1e-6 (AVX2) relative, largest per tensor over 4
    runs, on an AMD EPYC; the tolerance is 1e-4."""
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}; env.pop('ONEDNN_MAX_CPU_ISA', None)
    if isa: env['ONEDNN_MAX_CPU_ISA'] = isa
    p = subprocess.run([sys.executable, '-c', COMPARE.format(tests=str(Path(__file__).parent))], env=env,
                       capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    m = json.loads(p.stdout.splitlines()[-1])
    assert m['steps'] == m['expected'] == 2 * STEPS + 2 * (STEPS - 10)
    assert m['bitwise'] == [True] * 4 and m['rel'] == 0.0, m     # one-by-one's arithmetic: the same bits
    assert m['masks'] == [True] * 4 and m['test_err'] == 0.0, m
    assert m['kernels_grad_rel'] < 1e-4, m                       # grouped kernels: within rounding of one-by-one
    print(f"ISA {isa or 'default'}: grouped kernels' one-step gradient differs by {m['kernels_grad_rel']:.2g} relative "
          f"({'bitwise equal' if m['kernels_bitwise'] else 'not bitwise'})")


def test_group_snapshots_sgdw_and_divergence():
    cfg = small_cfg(optimizer='sgdw', weight_decay=0.01)
    data = get_data(cfg.dataset, **cfg.data_kwargs)
    plan = cfg.resolve(data.steps_per_epoch(cfg.batch_size))
    model = get_model(cfg.model, data.num_classes, data.input_shape, seed=0, **cfg.model_kwargs)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    snaps_g, snaps_1 = {}, {}
    runs = [GroupRun(cfg, plan, 0, init, 0, 30, snapshot_steps=(0, 10), on_snapshot=snaps_g.__setitem__),
            GroupRun(cfg.replace(momentum=0.0, lr=0.05), cfg.replace(lr=0.05).resolve(plan.steps_per_epoch), 3, init, 5, 20)]
    g = train_group(model, data, runs)
    one = train(model, data, cfg, plan, 0, init, 0, 30, snapshot_steps=(0, 10), on_snapshot=snaps_1.__setitem__)
    two = train(model, data, runs[1].cfg, runs[1].plan, 3, init, 5, 20)
    assert sorted(snaps_g) == [0, 10] and all(torch.equal(snaps_g[s][k], snaps_1[s][k]) for s in snaps_1 for k in init)
    for a, b in ((g[0], one), (g[1], two)):
        assert all(torch.equal(a['state'][k], b['state'][k]) for k in init) and torch.equal(a['losses'], b['losses'])
    bad = cfg.replace(optimizer='sgd', lr=1e12)
    with pytest.raises(LotteryError, match=r'Training diverged: the loss was .* \(bad run\)'):
        train_group(model, data, [runs[0], GroupRun(bad, bad.resolve(plan.steps_per_epoch), 0, init, where='bad run')])


def test_group_refuses_runs_that_cannot_share():
    cfg = small_cfg(); data = get_data(cfg.dataset)
    plan = cfg.resolve(data.steps_per_epoch(cfg.batch_size))
    model = get_model(cfg.model, data.num_classes, data.input_shape, seed=0, **cfg.model_kwargs)
    st = model.state_dict()
    other = cfg.replace(batch_size=64)
    with pytest.raises(LotteryError, match=r"Run 1 \(b\) cannot join the group: its batch_size=64 differs from run 0's 128"):
        check_group([GroupRun(cfg, plan, 0, st), GroupRun(other, other.resolve(plan.steps_per_epoch * 2), 0, st, where='b')])
    with pytest.raises(LotteryError, match="its model_kwargs="):
        check_group([GroupRun(cfg, plan, 0, st), GroupRun(cfg.replace(model_kwargs=dict(width=8)), plan, 0, st)])


CHILD = textwrap.dedent('''
    import io, os, sys, torch
    from pathlib import Path
    torch.set_num_threads(1)
    sys.path.insert(0, {tests!r})
    from test_group import small_cfg, make_runs
    from lottery_nb.data import get_data
    from lottery_nb.group import train_group
    out = Path(sys.argv[1]); STEPS = int(sys.argv[2])
    class FileCk:
        def __init__(self, p): self.p = p
        def load(self): return torch.load(self.p, weights_only=True) if self.p.exists() else None
        def save(self, st):
            buf = io.BytesIO(); torch.save(st, buf); tmp = self.p.with_suffix('.tmp'); tmp.write_bytes(buf.getvalue()); os.replace(tmp, self.p)
        def clear(self): self.p.unlink(missing_ok=True)
    cfg = small_cfg(training_steps=f'{{STEPS}}it', milestones=('200it', '300it'))
    data = get_data(cfg.dataset)
    plan = cfg.resolve(data.steps_per_epoch(cfg.batch_size))
    runs, model = make_runs(cfg, data, plan)
    for i, r in enumerate(runs): r.checkpointer = FileCk(out / f'ck{{i}}.pt')
    res = train_group(model, data, runs)
    torch.save(res, out / 'result.tmp'); os.replace(out / 'result.tmp', out / 'result.pt')
''')


def child(out, steps):
    code = CHILD.format(tests=str(Path(__file__).parent))
    return subprocess.Popen([sys.executable, '-c', code, str(out), str(steps)],
                            env={**os.environ, 'OMP_NUM_THREADS': '1'}, stderr=subprocess.PIPE, text=True)


def test_killed_group_resumes_bitwise(tmp_path):
    steps = 400
    a, b = tmp_path / 'killed', tmp_path / 'straight'; a.mkdir(); b.mkdir()
    p = child(a, steps)
    deadline = time.monotonic() + 300
    while not (a / 'ck0.pt').exists():  # kill as soon as the group has written a checkpoint
        assert p.poll() is None, p.stderr.read()
        assert time.monotonic() < deadline, 'no checkpoint appeared'
        time.sleep(0.005)
    p.send_signal(signal.SIGKILL); p.wait(timeout=60)
    assert not (a / 'result.pt').exists()  # the group was unfinished when killed
    ck = torch.load(a / 'ck0.pt', weights_only=True)
    assert 0 < ck['step'] < steps
    for out in (a, b):
        q = child(out, steps); _, err = q.communicate(timeout=900)
        assert q.returncode == 0, err
    ra, rb = torch.load(a / 'result.pt', weights_only=True), torch.load(b / 'result.pt', weights_only=True)
    for x, y in zip(ra, rb):
        assert torch.equal(x['losses'], y['losses'])
        assert all(torch.equal(x['state'][k], y['state'][k]) for k in y['state'])


def test_execution_options_on_cpu():
    from lottery_nb.training import TrainOptions
    cfg = small_cfg(); data = get_data(cfg.dataset)
    plan = cfg.resolve(data.steps_per_epoch(cfg.batch_size))
    runs, model = make_runs(cfg, data, plan)
    r = runs[0]
    ref = train(model, data, cfg, plan, r.seed, r.start_state, 0, 10, mask=r.mask)
    # channels_last is a documented no-op for 1-D models: the same bits
    cl = train(model, data, cfg, plan, r.seed, r.start_state, 0, 10, mask=r.mask, options=TrainOptions(channels_last=True))
    assert torch.equal(cl['losses'], ref['losses'])
    # bf16 autocast really changes the arithmetic (it is an option, never the default), and stays close
    bf = train(model, data, cfg, plan, r.seed, r.start_state, 0, 10, mask=r.mask, options=TrainOptions(precision='bf16'))
    assert not torch.equal(bf['losses'], ref['losses']) and torch.allclose(bf['losses'], ref['losses'], rtol=0.05)
    gb = train_group(model, data, [GroupRun(cfg, plan, r.seed, r.start_state, 0, 10, mask=r.mask)], options=TrainOptions(precision='bf16'))
    assert torch.isfinite(gb[0]['losses']).all() and torch.allclose(gb[0]['losses'], ref['losses'], rtol=0.05)
    for bad, msg in ((TrainOptions(tf32=True), 'tf32=True needs a CUDA device'),
                     (TrainOptions(capture='reduce-overhead'), "capture='reduce-overhead' \\(CUDA graphs\\) needs a CUDA device")):
        with pytest.raises(LotteryError, match=msg): train(model, data, cfg, plan, 0, r.start_state, 0, 2, options=bad)
        with pytest.raises(LotteryError, match=msg): train_group(model, data, [GroupRun(cfg, plan, 0, r.start_state, 0, 2)], options=bad)


def test_group_resnet20_bitwise_on_cpu():
    "ResNet-20 (3-channel stem, strided 1x1 shortcuts) as a group of 3 on the CPU: each run's bits are its own alone."
    from lottery_nb.data import TensorDataSet
    g = torch.Generator().manual_seed(0)
    data = TensorDataSet('syn', torch.randn(64, 3, 32, 32, generator=g), torch.randint(0, 10, (64,), generator=g),
                         torch.randn(16, 3, 32, 32, generator=g), torch.randint(0, 10, (16,), generator=g), 10)
    cfg = get_preset('cifar10_resnet20', batch_size=8, device='cpu'); plan = cfg.resolve(data.steps_per_epoch(8))
    model = get_model('resnet20', 10, (3, 32, 32), seed=0)
    runs = [GroupRun(cfg, plan, s, get_model('resnet20', 10, (3, 32, 32), seed=s).state_dict(), s, s + 3) for s in range(3)]
    for r, gr in zip(runs, train_group(model, data, runs)):
        one = train(model, data, cfg, plan, r.seed, r.start_state, r.start_step, r.end_step)
        assert all(torch.equal(one['state'][k], gr['state'][k]) for k in one['state']) and torch.equal(one['losses'], gr['losses'])


@pytest.mark.parametrize('name,shape', [('mnist1d_cnn', (1, 40)), ('mlp', (1, 16)), ('linear', (1, 16)),
                                        ('resnet20', (3, 32, 32)), ('resnet18', (3, 32, 32)), ('resnet50', (3, 32, 32))])
def test_every_registered_model_can_be_grouped(name, shape):
    from lottery_nb.group import GroupedModel, stack_states
    kw = dict(bn=True) if name == 'mlp' else {}
    ms = [get_model(name, 10, shape, seed=s, **kw) for s in range(2)]
    gm = GroupedModel(ms[0], 2); gm.load_state_dict(stack_states([m.state_dict() for m in ms]))
    x = torch.randn(2, 4, *shape)
    for train_mode in (True, False):
        gm.train(train_mode); [m.train(train_mode) for m in ms]
        out = gm(x)
        for r, m in enumerate(ms): assert torch.equal(out[r], m(x[r])), (name, train_mode, r)


def test_checkpoints_move_between_group_and_train():
    "A run's checkpoint is in train's format: a group checkpoint resumes in train, and a train checkpoint in a group."
    from lottery_nb.training import MemoryCheckpoint
    class Killed(Exception): pass
    class KillAfterSave(MemoryCheckpoint):
        def save(self, state):
            super().save(state)
            if state['step'] == 40: raise Killed()
    cfg = small_cfg(); data = get_data(cfg.dataset)
    plan = cfg.resolve(data.steps_per_epoch(cfg.batch_size))
    runs, model = make_runs(cfg, data, plan)
    r = runs[0]
    straight = train(model, data, cfg, plan, r.seed, r.start_state, r.start_step, mask=r.mask)
    ck = KillAfterSave()
    with pytest.raises(Killed): train_group(model, data, [GroupRun(cfg, plan, r.seed, r.start_state, r.start_step, mask=r.mask, checkpointer=ck)])
    assert ck.state['step'] == 40
    resumed = train(model, data, cfg, plan, r.seed, r.start_state, r.start_step, mask=r.mask, checkpointer=ck)
    assert all(torch.equal(resumed['state'][k], straight['state'][k]) for k in straight['state'])
    assert torch.equal(resumed['losses'], straight['losses'])
    ck = KillAfterSave()
    with pytest.raises(Killed): train(model, data, cfg, plan, r.seed, r.start_state, r.start_step, mask=r.mask, checkpointer=ck)
    steps = []
    resumed = train_group(model, data, [GroupRun(cfg, plan, r.seed, r.start_state, r.start_step, mask=r.mask, checkpointer=ck)], on_steps=steps.append)[0]
    assert steps[0] == 40 and sum(steps) == STEPS
    assert all(torch.equal(resumed['state'][k], straight['state'][k]) for k in straight['state'])
    assert torch.equal(resumed['losses'], straight['losses'])


# ---------------------------------------------------------------- issue 27: batches, memory, capture
def write_cifar_pickles(root, n_train=40, n_test=10):
    "Tiny CIFAR-10 and CIFAR-100 files in the python-version format (as 01_data's tests write them)."
    import pickle
    g = torch.Generator().manual_seed(0)
    c10, c100 = root / 'cifar-10-batches-py', root / 'cifar-100-python'; c10.mkdir(); c100.mkdir()
    x = torch.randint(0, 256, (n_train + n_test, 3072), dtype=torch.uint8, generator=g).numpy()
    y = [i % 10 for i in range(n_train + n_test)]
    per = n_train // 5
    dump = lambda f, d: pickle.dump(d, open(f, 'wb'))
    for i in range(5): dump(c10 / f'data_batch_{i + 1}', {b'data': x[i * per:(i + 1) * per], b'labels': y[i * per:(i + 1) * per]})
    dump(c10 / 'test_batch', {b'data': x[n_train:], b'labels': y[n_train:]})
    dump(c100 / 'train', {b'data': x[:n_train], b'fine_labels': [7 * v for v in y[:n_train]]})
    dump(c100 / 'test', {b'data': x[n_train:], b'fine_labels': [7 * v for v in y[n_train:]]})


@pytest.mark.parametrize('which', ['cifar10', 'cifar100', 'synthetic'])
def test_group_batches_are_the_runs_own(tmp_path, which):
    "GroupBatches gathers the batches of all runs at once; each run's batch is bitwise its own train_batches' (CIFAR's augmentation too)."
    from lottery_nb.data import clear_data_cache
    from lottery_nb.group import GroupBatches
    if which != 'synthetic': write_cifar_pickles(tmp_path)
    data = get_data(which, root=tmp_path) if which != 'synthetic' else get_data('synthetic')
    assert which == 'synthetic' or data.augment
    seeds, starts, bs = [0, 5, 9], [0, 3, 7], 8
    gb, its = GroupBatches(data, seeds, starts, bs), [data.train_batches(s, t, bs) for s, t in zip(seeds, starts)]
    assert gb.fast
    for step in range(12):   # several epochs (5 steps each at 40 images)
        if step == 6: gb.keep([2, 0]); its = [its[2], its[0]]
        x, y = next(gb)
        for r, it in enumerate(its):
            xr, yr = next(it)
            assert torch.equal(x[r], xr) and torch.equal(y[r], yr), (step, r)
    clear_data_cache()


def run_oom(cfg, data, plan, runs, model, fail_above, at_step, said, steps):
    "train_group with a device that runs out of memory with more than `fail_above` runs when the first run is at `at_step`."
    import lottery_nb.group as G
    from lottery_nb.group import GroupLimit
    real = G._group_step
    def injected(g, sts, *a):
        if len(sts) > fail_above and sts[0]['step'] == at_step: raise torch.cuda.OutOfMemoryError('CUDA out of memory (test)')
        real(g, sts, *a)
    G._group_step = injected
    try: return train_group(model, data, runs, on_steps=steps.append, limit=GroupLimit(say=said.append, estimate=False))
    finally: G._group_step = real


def test_out_of_memory_halves_and_loses_nothing():
    """Out of memory at a group size: the group is halved (said once), finished runs are kept, the others go on from their
    checkpoints, every step is counted once, and every run ends with the bits of `train` (on the CPU)."""
    from lottery_nb.training import MemoryCheckpoint
    from dataclasses import replace
    cfg = small_cfg(); data = get_data(cfg.dataset, **cfg.data_kwargs)
    plan = cfg.resolve(data.steps_per_epoch(cfg.batch_size))
    runs, model = make_runs(cfg, data, plan)
    runs = [replace(r, checkpointer=MemoryCheckpoint(), end_step=70 if i == 1 else None) for i, r in enumerate(runs)]
    said, steps = [], []
    out = run_oom(cfg, data, plan, runs, model, 1, 45, said, steps)   # halved twice: 4 -> 2 -> 1
    assert [s.split(':')[0] for s in said] == ['Out of memory on cpu with a group of 4 runs',
                                               'Out of memory on cpu with a group of 2 runs']
    assert sum(steps) == sum((r.end_step or plan.total) - r.start_step for r in runs)
    for r, g in zip(runs, out):
        one = train(model, data, cfg, plan, r.seed, r.start_state, r.start_step, r.end_step, mask=r.mask)
        assert all(torch.equal(one['state'][k], g['state'][k]) for k in one['state']) and torch.equal(one['losses'], g['losses'])
    with pytest.raises(LotteryError, match='One run alone does not fit in the memory of cpu'):
        run_oom(cfg, data, plan, [replace(runs[0], checkpointer=None)], model, 0, 3, [], [])


def test_groups_larger_than_the_free_memory_train_in_chunks(monkeypatch):
    "When the estimate exceeds the free memory (here: said to be 3 runs' worth), the group trains in equal chunks, said once."
    import lottery_nb.group as G
    cfg = small_cfg(); data = get_data(cfg.dataset, **cfg.data_kwargs)
    plan = cfg.resolve(data.steps_per_epoch(cfg.batch_size))
    runs, model = make_runs(cfg, data, plan)
    per_run = G.group_memory(model, data.input_shape, 1, cfg.batch_size)['per_run']
    monkeypatch.setattr(G, 'free_memory', lambda dev: int(2.5 * per_run / 0.9))
    sizes, real = [], G._Group
    monkeypatch.setattr(G, '_Group', lambda tpl, sts, *a: sizes.append(len(sts)) or real(tpl, sts, *a))
    said = []
    out = train_group(model, data, runs, limit=G.GroupLimit(say=said.append))
    assert sizes == [2, 1, 2, 1] and len(said) == 2 and 'Groups of at most 2 runs fit' in said[1]   # (rewind 10 ends first)
    assert 'Group of 4 ' in said[0] and 'by estimate' in said[0]
    for r, g in zip(runs, out):
        one = train(model, data, cfg, plan, r.seed, r.start_state, r.start_step, mask=r.mask)
        assert all(torch.equal(one['state'][k], g['state'][k]) for k in one['state'])


def test_captured_group_step_on_the_cpu_stand_in():
    """The captured step (EagerGraph: its code without a CUDA graph) for runs with other optimisers, learning rates,
    spans and a checkpoint resumed: within rounding of `train` (a tolerance: another code path; measured bitwise here),
    pruned weights held at 0, every group size captured anew."""
    from dataclasses import replace
    from lottery_nb.group import EagerGraph
    from lottery_nb.training import MemoryCheckpoint
    cfg = small_cfg(); data = get_data(cfg.dataset, **cfg.data_kwargs)
    plan = cfg.resolve(data.steps_per_epoch(cfg.batch_size))
    runs, model = make_runs(cfg, data, plan)
    w = cfg.replace(optimizer='sgdw', weight_decay=0.01); z = cfg.replace(momentum=0.0, lr=0.05)
    runs = [runs[0], replace(runs[1], cfg=w), replace(runs[2], cfg=z, plan=z.resolve(plan.steps_per_epoch), end_step=50),
            replace(runs[3], checkpointer=MemoryCheckpoint())]
    graphs = []
    class Counting(EagerGraph):
        def __init__(self, fn, stream=None): super().__init__(fn, stream); graphs.append(self)
    out = train_group(model, data, runs, graph=Counting)
    assert [g.replays for g in graphs] == [50, 20, 10]   # run 2 ends at 50, runs 1 and 3 at 80 (from 10): recaptured
    ck = runs[3].checkpointer.state; assert ck['step'] == 70   # resumed from here below
    again = train_group(model, data, [runs[3]], graph=EagerGraph)[0]
    for r, g in zip(runs, out):
        one = train(model, data, r.cfg, r.plan, r.seed, r.start_state, r.start_step, r.end_step, mask=r.mask)
        for k, v in one['state'].items():
            if v.is_floating_point(): assert (g['state'][k] - v).norm() <= 1e-5 * v.norm() + 1e-7, (r.where, k)
        assert torch.allclose(g['losses'], one['losses'], rtol=1e-5, atol=1e-6)
        assert all(bool((g['state'][n][~m] == 0).all()) for n, m in r.mask.items())
    assert all(torch.equal(again['state'][k], out[3]['state'][k]) for k in again['state'])


def test_cuda_route_with_capture_on_the_cpu(monkeypatch):
    """What CUDA runs, as far as the CPU can: the channel-grouped kernels (exact_cpu=False), eager and with the whole step
    run by the captured-step code (EagerGraph), ResNet-20 and the MNIST-1D CNN, judged as bench/gpu_check.py judges:
    after one step, the weight difference from one-by-one training relative to the distance travelled, against the
    larger of a fixed bound and 10x the rounding floor (a one-ulp change of the start) of the same step. At batch 8 a
    rounding difference can flip a ReLU and move one step's update by ~1e-3 (here the floor measured 2e-6 to 2.6e-3
    and the grouped kernels 7e-5 to 1.8e-3), so the fixed bound is 1e-2; a wrong mask, momentum or learning rate moves
    it by 0.1 to 1. The captured step against the eager group step on the same kernels: 1e-6 (measured 0)."""
    import functools
    import lottery_nb.group as G
    from lottery_nb.data import TensorDataSet
    def rel(a, b, start):
        num = sum(((a[k] - b[k]).double() ** 2).sum() for k in b if b[k].is_floating_point())
        return (num / sum(((b[k] - start[k]).double() ** 2).sum() for k in b if b[k].is_floating_point())).sqrt().item()
    up = lambda st: {k: torch.nextafter(v, torch.full_like(v, 1e9)) if v.is_floating_point() else v for k, v in st.items()}
    g = torch.Generator().manual_seed(0)
    for name, shape, kw in (('resnet20', (3, 32, 32), {}), ('mnist1d_cnn', (1, 40), dict(width=16, depth=3))):
        data = TensorDataSet('syn', torch.randn(64, *shape, generator=g), torch.randint(0, 10, (64,), generator=g),
                             torch.randn(16, *shape, generator=g), torch.randint(0, 10, (16,), generator=g), 10)
        cfg = get_preset('cifar10_resnet20', batch_size=8, device='cpu'); plan = cfg.resolve(data.steps_per_epoch(8))
        model = get_model(name, 10, shape, seed=0, **kw)
        init = model.state_dict()
        mask = magnitude_prune(init, dense_mask(init, prunable_names(model)), 0.2)
        runs = [GroupRun(cfg, plan, s, apply_mask(get_model(name, 10, shape, seed=s, **kw).state_dict(), mask), s, s + 1,
                         mask=mask) for s in range(3)]
        with monkeypatch.context() as m:
            m.setattr(G, 'GroupedModel', functools.partial(G.GroupedModel, exact_cpu=False))
            eager, graph = train_group(model, data, runs), train_group(model, data, runs, graph=G.EagerGraph)
        for r, e, gr in zip(runs, eager, graph):
            one = train(model, data, cfg, plan, r.seed, r.start_state, r.start_step, r.end_step, mask=r.mask)
            floor = rel(train(model, data, cfg, plan, r.seed, up(r.start_state), r.start_step, r.end_step, mask=r.mask)['state'],
                        one['state'], r.start_state)
            assert rel(gr['state'], one['state'], r.start_state) <= max(1e-2, 10 * floor), (name, r.seed)
            assert rel(gr['state'], e['state'], r.start_state) <= 1e-6, (name, r.seed)
            assert torch.allclose(gr['losses'], one['losses'], rtol=1e-4)
            assert all(bool((gr['state'][n][~m] == 0).all()) for n, m in mask.items())
