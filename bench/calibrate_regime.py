"""Calibration for issue 16, part 2: a CPU setting in the paper's regime, chosen by a rule fixed before any claim is scored.

The paper's phenomena need a network that is unstable at initialisation and stable after a short pre-training
(Frankle et al. 2020: stable at step k when two copies trained from k with different batch orders end without an
error barrier), and that has matching tickets at the late rewind step. This sweep measures, per candidate setting:

- eps: std (ddof=1, `claims.dense_epsilon`) of the dense test error over 8 dense seeds;
- the instability barrier at k in {0, 30, 150}: seeds 0-2, the dense run's weights at step k trained to the end twice
  with two batch orders (fresh optimiser each; at k = 0 one copy is the dense run itself), Definition A.1 on the test
  set as `lottery_nb.paths.error_barrier` computes it (beta 0, 0.1, ..., 1; everything interpolated);
- the sparsest clearly matching level at the late rewind step 150: `run_imp`, seeds 0-1, 10 levels of 20% pruning,
  `claims.sparsest_matching` against the 8 dense seeds;
- seconds per 1000-step training (median of the dense runs, one thread, `nice -n 10` on a shared busy 2-core machine).

THE RULE (also in bench/calibrate_regime_rule.md, committed before anything ran): a candidate is in the paper's
regime when (1) its mean barrier at k = 0 is at least 5 eps, (2) its mean barrier at k = 150 is below eps, and
(3) its sparsest clearly matching level at rewind 150 is 8 or more. The rule picks the candidate in the regime with
the lowest cost per training, or none.

    python bench/calibrate_regime.py run OUT [--only NAME ...] [--deadline HH:MM]   # resumable, one thread
    python bench/calibrate_regime.py summary OUT/results.jsonl                      # the table and the pick
    QUICK=1 python bench/calibrate_regime.py run OUT                                # tiny: proves the script works

Order of work: candidate by candidate, cheapest first (LAST at the end): phase 1 (dense runs, barriers), then at once
phase 2 (IMP) if conditions 1 and 2 hold; at the end phase 2 of the others. A unit whose estimated time would pass
--deadline (UTC) is not started.
"""
import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

BIG = dict(num_samples=20000, num_test=10000)  # 16,000 training examples instead of 4,000 (num_test as the cpu preset)
GRID = {  # name -> overrides of the `cpu` preset; cheapest first
    'cnn_w16': dict(),                                                          # the cpu preset itself
    'cnn_w32': dict(model_kwargs=dict(width=32, depth=3)),
    'cnn_w32_16k': dict(model_kwargs=dict(width=32, depth=3), data_kwargs=BIG),
    'res8_lr0.1': dict(model='mnist1d_resnet', model_kwargs=dict(widths=[16, 32, 64], blocks=1), lr=0.1),
    'res8_lr0.4': dict(model='mnist1d_resnet', model_kwargs=dict(widths=[16, 32, 64], blocks=1), lr=0.4),
    'res8_lr0.2_16k': dict(model='mnist1d_resnet', model_kwargs=dict(widths=[16, 32, 64], blocks=1), lr=0.2,
                           data_kwargs=BIG),
    'res20_lr0.1': dict(model='mnist1d_resnet', model_kwargs=dict(widths=[16, 32, 64], blocks=3), lr=0.1),
    # third amendment (see the rule): the ResNet-8 at half width, because the pick above does not fit the main job
    'res8w8_lr0.2_16k': dict(model='mnist1d_resnet', model_kwargs=dict(widths=[8, 16, 32], blocks=1), lr=0.2,
                             data_kwargs=BIG),
    'res8w8_lr0.1_16k': dict(model='mnist1d_resnet', model_kwargs=dict(widths=[8, 16, 32], blocks=1), lr=0.1,
                             data_kwargs=BIG),
}
LAST = ('res20_lr0.1',)  # about twice the cost of the others: after their phase 2 (see the rule's order of work)
KS = ('0it', '30it', '150it')       # steps k of the instability barrier; the last is the late rewind step
LATE = '150it'
DENSE_SEEDS, COPY_SEEDS, IMP_SEEDS, LEVELS = tuple(range(8)), (0, 1, 2), (0, 1), 10
UNIT_T = {'phase1': len(DENSE_SEEDS) + len(COPY_SEEDS) * (1 + 2 * (len(KS) - 1)), 'phase2': len(IMP_SEEDS) * LEVELS}
if os.environ.get('QUICK'):
    GRID = {'quick_cnn_w16': dict(training_steps='60it', milestones=('30it', '45it'), checkpoint_every='20it')}
    KS, LATE, DENSE_SEEDS, COPY_SEEDS, IMP_SEEDS, LEVELS = ('0it', '5it', '15it'), '15it', (0, 1, 2), (0, 1), (0, 1), 2


def setup_threads():
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    import torch
    torch.set_num_threads(1)


def config(name, **kw):
    from lottery_nb.config import get_preset
    return get_preset('cpu', **{**GRID[name], **kw}, device='cpu')


def instability(cfg, exp, data, plan, seed, k):
    "Barrier (Definition A.1, test set) between two copies trained from the dense run's weights at step k."
    from lottery_nb.data import derive_seed
    from lottery_nb.evaluator import PointEvaluator
    from lottery_nb.models import get_model, prunable_names
    from lottery_nb.paths import DEFAULT_BETAS, error_barrier
    from lottery_nb.points import Point
    from lottery_nb.pruning import dense_mask
    from lottery_nb.training import train
    model = get_model(cfg.model, data.num_classes, data.input_shape, seed=seed, **cfg.model_kwargs)
    start = exp.rewind_state(seed, k)
    ends, secs = [], []
    for copy in (0, 1):
        if k == 0 and copy == 0:
            ends.append(exp.weights(seed, 0, 0)); continue      # the dense run: fresh optimiser at 0, the seed's order
        out = train(model, data, cfg, plan, derive_seed(seed, 'instability', k, copy), start, k, plan.total)
        ends.append(out['state']); secs.append(out['wall_time'])
    mask = dense_mask(ends[0], prunable_names(model))
    ev = PointEvaluator(model, data, ('test',), cfg.eval_batch_size)
    betas = list(DEFAULT_BETAS)
    path = ev.evaluate([Point(ends[0], mask, 'copy 0'), Point(ends[1], mask, 'copy 1')], [[1 - b, b] for b in betas])
    path['betas'] = betas
    return dict(seed=seed, k=k, barrier=error_barrier(path), errors=path['test_error'].tolist(), train_s=secs)


def phase1(name, store):
    from lottery_nb.claims import dense_epsilon
    from lottery_nb.data import get_data
    from lottery_nb.imp import run_imp
    from lottery_nb.training import TrainingDiverged
    cfg = config(name, seeds=DENSE_SEEDS, levels=0, rewind_steps=KS)
    t0 = time.time()
    try: exp = run_imp(cfg, store, progress=False)
    except TrainingDiverged as e: return dict(name=name, phase=1, ov=GRID[name], diverged=str(e))
    data = get_data(cfg.dataset, **cfg.data_kwargs)
    plan = cfg.resolve(data.steps_per_epoch(cfg.batch_size))
    dense = [exp.metrics(s, 0, 0)['test_error'] for s in DENSE_SEEDS]
    train_s = [exp.metrics(s, 0, 0)['wall_time'] for s in DENSE_SEEDS]
    bars = {}
    for k in plan.rewind_steps:
        bars[k] = []
        for s in COPY_SEEDS:
            try: bars[k].append(instability(cfg, exp, data, plan, s, k))
            except TrainingDiverged as e: bars[k].append(dict(seed=s, k=k, diverged=str(e)))
    eps = dense_epsilon(dense)
    mean = lambda k: float(np.mean([b['barrier'] for b in bars[k] if 'barrier' in b] or [np.nan]))
    k0, kl = plan.rewind_steps[0], plan.rewind_steps[-1]
    return dict(name=name, phase=1, ov=GRID[name], n_train=data.num_train, n_test=data.num_test, dense=dense, eps=eps,
                dense_mean=float(np.mean(dense)), train_s=train_s, s_per_training=statistics.median(train_s),
                barriers={str(k): v for k, v in bars.items()}, mean_barrier={str(k): mean(k) for k in bars},
                cond1=mean(k0) >= 5 * eps, cond2=mean(kl) < eps, wall=time.time() - t0)


def phase2(name, store, dense):
    from lottery_nb.claims import matching_levels, sparsest_matching
    from lottery_nb.paths import test_examples
    from lottery_nb.imp import run_imp
    from lottery_nb.training import TrainingDiverged
    cfg = config(name, seeds=IMP_SEEDS, levels=LEVELS, rewind_steps=(LATE,))
    t0 = time.time()
    try: exp = run_imp(cfg, store, progress=False)
    except TrainingDiverged as e: return dict(name=name, phase=2, diverged=str(e))
    r = exp.plan.rewind_steps[0]
    E = np.array([[exp.metrics(s, r, l)['test_error'] for l in range(LEVELS + 1)] for s in IMP_SEEDS])
    vs = matching_levels(E, dense, test_examples(cfg))
    return dict(name=name, phase=2, rewind=r, level_errors=E.tolist(),
                densities=[exp.metrics(IMP_SEEDS[0], r, l)['density'] for l in range(LEVELS + 1)],
                verdicts=[v.verdict for v in vs], margins=[v.margin for v in vs], uncertainty=[v.uncertainty for v in vs],
                sparsest=sparsest_matching(vs), wall=time.time() - t0)


def load(path):
    rs = [json.loads(l) for l in open(path)] if Path(path).exists() else []
    return {(r['name'], r['phase']): r for r in rs}


def summary(path):
    R = load(path)
    names = [n for n in GRID if (n, 1) in R] + sorted({n for n, _ in R if n not in GRID})
    ks = [str(int(k[:-2])) for k in KS]
    print(f"| candidate | train ex. | dense test err (%) | ε (%) | " + ' | '.join(f'barrier k={k} (%)' for k in ks) +
          " | sparsest clearly matching level at 150 (density) | s/training | rule 1 / 2 / 3 | in regime |")
    print('|---|---|---|---|' + '---|' * len(ks) + '---|---|---|---|')
    ok = []
    for n in names:
        p1, p2 = R.get((n, 1)), R.get((n, 2))
        if p1 is None: continue
        if 'diverged' in p1:
            print(f"| {n} | diverged: {p1['diverged'][:80]} |"); continue
        def bar(k):
            v = [b['barrier'] for b in p1['barriers'][k] if 'barrier' in b]
            return f"{100 * np.mean(v):.2f} [{100 * min(v):.2f}, {100 * max(v):.2f}]" if v else 'diverged'
        if p2 is None: m, c3 = 'not run', None
        elif 'diverged' in p2: m, c3 = 'diverged', False
        else: m, c3 = f"{p2['sparsest']} ({100 * p2['densities'][p2['sparsest']]:.1f}%)", p2['sparsest'] >= 8
        yn = lambda c: '?' if c is None else ('yes' if c else 'no')
        reg = p1['cond1'] and p1['cond2'] and bool(c3)
        if reg: ok.append((p1['s_per_training'], n))
        print(f"| {n} | {p1['n_train']} | {100 * p1['dense_mean']:.2f} | {100 * p1['eps']:.2f} | " +
              ' | '.join(bar(k) for k in p1['barriers']) +
              f" | {m} | {p1['s_per_training']:.1f} | {yn(p1['cond1'])} / {yn(p1['cond2'])} / {yn(c3)} | "
              f"{'yes' if reg else ('not decided' if c3 is None and p1['cond1'] and p1['cond2'] else 'no')} |")
    print(f"\nThe rule picks: {min(ok)[1] if ok else 'none (no candidate meets all three conditions)'}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('cmd', choices=['run', 'summary'])
    p.add_argument('out', nargs='?', default='/tmp/calib_regime')
    p.add_argument('--only', nargs='*', default=None, help='candidates of GRID to run')
    p.add_argument('--deadline', default=None, help='HH:MM UTC: start no unit estimated to end after it')
    a = p.parse_args(argv)
    if a.cmd == 'summary': return summary(a.out)
    setup_threads()
    bad = [n for n in (a.only or []) if n not in GRID]
    if bad: sys.exit(f"--only names {bad} that are not in the grid; use some of {', '.join(GRID)}.")
    names = a.only or list(GRID)
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    res = out / 'results.jsonl'
    end = None
    if a.deadline:
        h, m = map(int, a.deadline.split(':'))
        t = time.gmtime(); end = time.mktime(time.struct_time((t.tm_year, t.tm_mon, t.tm_mday, h, m, 0, 0, 0, 0))) - time.timezone
    est = {}  # name -> seconds per training measured in phase 1, or a guess from the last measured candidate
    def fits(name, phase):
        if end is None: return True
        s = est.get(name) or (max(est.values()) if est else 0)
        need = s * UNIT_T[phase] * 1.2
        if time.time() + need > end:
            print(f"skip {name} {phase}: about {need / 60:.0f} min, past the deadline", flush=True); return False
        return True
    def write(r):
        with open(res, 'a') as f: f.write(json.dumps(r) + '\n')
    def run1(group):
        for n in group:
            R = load(res)
            if (n, 1) in R:
                est[n] = R[(n, 1)].get('s_per_training'); continue
            if not fits(n, 'phase1'): continue
            r = phase1(n, out / 'store' / n); write(r); est[n] = r.get('s_per_training')
            print(f"phase 1 {n}: {json.dumps({k: r.get(k) for k in ('eps', 'mean_barrier', 'cond1', 'cond2', 's_per_training')})}",
                  flush=True)
    def run2(group, qualifying):
        R = load(res)
        for n in group:
            p1 = R.get((n, 1), {})
            if not p1 or 'diverged' in p1 or bool(p1.get('cond1') and p1.get('cond2')) != qualifying: continue
            if (n, 2) in load(res) or not fits(n, 'phase2'): continue
            r = phase2(n, out / 'store' / n, p1['dense']); write(r)
            print(f"phase 2 {n}: sparsest {r.get('sparsest')} {r.get('verdicts')}", flush=True)
    order = [n for n in names if n not in LAST] + [n for n in names if n in LAST]
    for n in order:   # each candidate to the end before the next, cheapest first: the rule picks the cheapest
        run1([n]); run2([n], True)
    run2(order, False)
    summary(res)


if __name__ == '__main__':
    main()
