"""What the per-run batch order changed (issue 10): the `cpu` preset's rewind-0 and rewind-150 curves and segment
barriers with `data_order='per_run'` (the default) against `'shared'` (every level replays the dense run's order),
on the same data (MNIST-1D, 4,000 training and 10,000 test examples), seeds and schedule.

    python bench/compare_data_order.py [--store runs] [--rewinds 0it 150it]

Trains what the store lacks (the per-run runs are those of the main job, the shared ones about 45,000 steps per
rewind step on one core), computes each segment's barrier (Definition A.1, 11 points, BatchNorm interpolated, as
fig2) and prints, per rewind step and level: mean test error over the seeds for both orders, and the mean barrier of
the segment from the previous level. One thread, no GPU.
"""
import argparse
import os

import numpy as np


def curves(cfg, store, rewind):
    from lottery_nb.connectivity import interpolation_path
    from lottery_nb.imp import run_imp
    exp = run_imp(cfg, store, progress=False)
    r = exp.plan.rewind_steps[0]
    L, seeds, grid = cfg.levels, list(cfg.seeds), list(np.linspace(0, 1, 11))
    E = np.array([[exp.metrics(s, r, l)['test_error'] for l in range(L + 1)] for s in seeds])
    B = np.array([[interpolation_path(exp, (s, r, l), (s, r, l + 1), grid, splits=('test',), progress=False)['test_barrier']
                   for l in range(L)] for s in seeds])
    d = [exp.metrics(seeds[0], r, l)['density'] for l in range(L + 1)]
    return E, B, d


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--store', default=None, help='run store (default: the default store, shared with the main job)')
    p.add_argument('--rewinds', nargs='*', default=['0it', '150it'])
    a = p.parse_args(argv)
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    import torch
    torch.set_num_threads(1)
    from lottery_nb.claims import dense_epsilon
    from lottery_nb.config import default_store, get_preset
    store = a.store or default_store()
    for rw in a.rewinds:
        res = {o: curves(get_preset('cpu', rewind_steps=(rw,), data_order=o), store, rw) for o in ('per_run', 'shared')}
        (Ep, Bp, d), (Es, Bs, _) = res['per_run'], res['shared']
        print(f"\nrewind {rw}: dense {100 * Ep[:, 0].mean():.2f}% ± ε {100 * dense_epsilon(Ep[:, 0]):.2f} (same dense runs for both orders)")
        print('| level | weights | test error per_run (%) | test error shared (%) | barrier into level, per_run (%) | barrier into level, shared (%) |')
        print('|---|---|---|---|---|---|')
        for l in range(Ep.shape[1]):
            bp = f"{100 * Bp[:, l - 1].mean():.2f}" if l else '-'
            bs = f"{100 * Bs[:, l - 1].mean():.2f}" if l else '-'
            print(f"| {l} | {100 * d[l]:.1f}% | {100 * Ep[:, l].mean():.2f} | {100 * Es[:, l].mean():.2f} | {bp} | {bs} |")
        print(f"mean barrier over segments: per_run {100 * Bp.mean():.2f}%, shared {100 * Bs.mean():.2f}%; "
              f"segments with mean barrier >= ε: per_run {int((Bp.mean(0) >= dense_epsilon(Ep[:, 0])).sum())}/{Bp.shape[1]}, "
              f"shared {int((Bs.mean(0) >= dense_epsilon(Ep[:, 0])).sum())}/{Bs.shape[1]}")


if __name__ == '__main__':
    main()
