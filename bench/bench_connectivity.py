"""Benchmark: evaluating many points of weight space (paths, planes) with lottery_nb.connectivity against the naive way.

The naive way builds a model per point: `copy.deepcopy` of a template, `load_state_dict` of the combined weights,
then `lottery_nb.training.evaluate`. Ours hands the combined tensors to one template through
`torch.func.functional_call`, `batch_points` points per `torch.func.vmap` call. Both evaluate the same points on the
same data in the same process, interleaved, so the ratio is measured against a baseline of the same run.

Points come from a real IMP run of the `cpu` preset (MNIST-1D CNN with BatchNorm; one seed, rewind step 150,
levels 0..2; about 10 s on a laptop CPU, stored in a temporary store unless --store is given):
  - path: the 11 points of the level 1 -> level 2 path, test and train splits (1000 + 4000 examples each);
  - plane: points of the level-1 plane (extrapolated, test split), the naive rate measured on a sample of them;
  - the wall time of one full 51 x 51 plane through `error_plane` (with its cache in the temporary store);
  - a sweep of `batch_points` (the measurement behind its default).

    python bench/bench_connectivity.py                  # CPU
    python bench/bench_connectivity.py --device cuda
"""
import argparse
import copy
import statistics
import tempfile
import time

import numpy as np
import torch

from lottery_nb.config import get_preset
from lottery_nb.connectivity import (DEFAULT_BETAS, PointEvaluator, error_plane, interpolation_path, load_point,
                                     plane_geometry, plane_points)
from lottery_nb.data import get_data
from lottery_nb.imp import run_imp
from lottery_nb.models import get_model
from lottery_nb.training import evaluate, get_device


def sync(dev):
    if dev.type == 'cuda': torch.cuda.synchronize(dev)


def timed(fn, dev):
    sync(dev); t = time.perf_counter(); out = fn(); sync(dev)
    return time.perf_counter() - t, out


def naive_points(template, data, states, splits, batch_size):
    "One model per point: deepcopy + load_state_dict + evaluate."
    out = []
    for sd in states:
        m = copy.deepcopy(template); m.load_state_dict(sd)
        out.append({s: evaluate(m, data, s, batch_size)['error'] for s in splits})
    return out


def lerp(a, b, beta):
    return {k: ((1 - beta) * a[k] + beta * b[k]).to(a[k].dtype) if a[k].is_floating_point() else a[k] for k in a}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--device', default='cpu', help="'cpu', 'cuda', 'cuda:1', ...")
    ap.add_argument('--store', default=None, help='run store (default: a temporary directory)')
    ap.add_argument('--repeats', type=int, default=3, help='interleaved repetitions; the median is reported')
    ap.add_argument('--grid', type=int, default=51, help='plane grid size for the timed plane')
    ap.add_argument('--plane-sample', type=int, default=64, help='plane points per measurement of the rate')
    ap.add_argument('--no-plane', action='store_true', help='skip the full plane timing')
    args = ap.parse_args()
    dev = get_device(args.device)
    store = args.store or tempfile.mkdtemp(prefix='bench_connectivity_')
    print(f'device {dev} ({torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"}), torch {torch.__version__}, '
          f'{torch.get_num_threads()} threads, store {store}')

    cfg = get_preset('cpu', seeds=(0,), rewind_steps=('150it',), levels=2, device=str(dev))
    t, exp = timed(lambda: run_imp(cfg, store, progress=False), dev)
    print(f'IMP run (cpu preset, 1 seed, rewind 150, levels 0..2): {t:.1f} s')
    data = get_data(cfg.dataset, device=dev, **cfg.data_kwargs)
    template = get_model(cfg.model, data.num_classes, data.input_shape, seed=0, **cfg.model_kwargs).to(dev)
    bs = cfg.eval_batch_size

    # --- path: 11 points, test + train
    a, b = load_point(exp, 0, 150, 1), load_point(exp, 0, 150, 2)
    sa = {k: v.to(dev) for k, v in a.state.items()}; sb = {k: v.to(dev) for k, v in b.state.items()}
    betas = list(DEFAULT_BETAS)
    splits = ('test', 'train')
    ev = PointEvaluator(template, data, splits, bs)
    C = np.array([[1 - x, x] for x in betas])
    naive_t, ours_t, engine_t = [], [], []
    for _ in range(args.repeats):
        tn, rn = timed(lambda: naive_points(template, data, [lerp(sa, sb, x) for x in betas], splits, bs), dev)
        to, ro = timed(lambda: interpolation_path(exp, (0, 150, 1), (0, 150, 2), splits=splits, device=str(dev),
                                                  cache=False, progress=False), dev)
        te, re = timed(lambda: ev.evaluate([a, b], C), dev)
        naive_t.append(tn); ours_t.append(to); engine_t.append(te)
    n = len(betas)
    same = sum(r['test'] == e for r, e in zip(rn, ro['test_error']))
    print(f'\npath level 1 -> 2, {n} points x (test {data.num_test} + train {data.num_train} examples), median of {args.repeats}:')
    tn, to, te = statistics.median(naive_t), statistics.median(ours_t), statistics.median(engine_t)
    print(f'  naive (deepcopy + load_state_dict + evaluate): {n / tn:7.1f} points/s')
    print(f'  interpolation_path (load points, build, evaluate): {n / to:7.1f} points/s   ratio {tn / to:.2f}x')
    print(f'  PointEvaluator.evaluate alone:                 {n / te:7.1f} points/s   ratio {tn / te:.2f}x')
    print(f'  test errors equal to the naive ones at {same}/{n} points (end points bitwise: '
          f'{ro["test_error"][0] == exp.metrics(0, 150, 1)["test_error"] and ro["test_error"][-1] == exp.metrics(0, 150, 2)["test_error"]})')

    # --- plane points: extrapolated, test split
    p0, p1, p2 = plane_points(exp, 0, 150, 1)
    geo = plane_geometry(p0, p1, p2)
    rng = np.random.default_rng(0)
    al, ga = rng.uniform(-0.75, 1.75, args.plane_sample), rng.uniform(-2, 3, args.plane_sample)
    Cp = geo.barycentric(al, ga)
    evp = PointEvaluator(template, data, 'test', bs)
    comb = evp.combiner([p0, p1, p2])
    states = [{k: v for k, v in comb.single(c).items()} for c in Cp]
    nt, ot = [], []
    for _ in range(args.repeats):
        tn, rn = timed(lambda: naive_points(template, data, states, ('test',), bs), dev)
        to, ro = timed(lambda: evp.evaluate(comb, Cp), dev)
        nt.append(tn); ot.append(to)
    tn, to = statistics.median(nt), statistics.median(ot)
    m = args.plane_sample
    same = sum(r['test'] == e for r, e in zip(rn, ro['test_error']))
    print(f'\nplane points (level-1 plane, random points of the default window, test split), {m} points, median of {args.repeats}:')
    print(f'  naive (states precomputed; deepcopy + load_state_dict + evaluate): {m / tn:7.1f} points/s')
    print(f'  PointEvaluator.evaluate (combination included):                {m / to:7.1f} points/s   ratio {tn / to:.2f}x')
    print(f'  test errors equal to the naive ones at {same}/{m} points')

    # --- batch_points sweep
    print('\nbatch_points sweep (same plane points, test split):')
    base = None
    for k in ((1, 4, 8, 16, 32, 64) if dev.type == 'cpu' else (1, 8, 16, 32, 64, 128, 256)):
        e = PointEvaluator(template, data, 'test', bs, batch_points=k)
        c = e.combiner([p0, p1, p2])
        ts = [timed(lambda: e.evaluate(c, Cp), dev)[0] for _ in range(args.repeats)]
        rate = m / statistics.median(ts); base = base or rate
        print(f'  batch_points={k:3d}: {rate:7.1f} points/s  ({rate / base:.2f}x of one at a time)')

    # --- one full plane
    if not args.no_plane:
        g = args.grid
        t, pl = timed(lambda: error_plane(exp, 0, 150, 1, grid=g, device=str(dev), progress=False), dev)
        print(f'\nerror_plane level 1, {g} x {g} = {g * g} points (test split, cached in the store): {t:.1f} s wall '
              f'({g * g / t:.1f} points/s); naive at the rate above would take about {g * g * statistics.median(nt) / m:.1f} s')
        t2, _ = timed(lambda: error_plane(exp, 0, 150, 1, grid=g, device=str(dev), progress=False), dev)
        print(f'  second request (read from the cache): {t2 * 1000:.0f} ms; error range {np.nanmin(pl["test_error"]):.3f}..'
              f'{np.nanmax(pl["test_error"]):.3f}, threshold {pl["threshold"]:.3f}')


if __name__ == '__main__':
    main()
