"""Benchmark: ResNet-20 train steps on CIFAR-shaped synthetic data, one run at a time against runs trained as a group.

Rows (all measured in the same process, same device, same batch size):
  naive      torch DataLoader over a TensorDataset, eager fp32, torch.optim.SGD (a hand-written loop)
  ours       lottery_nb.training.train as today (batches indexed on the device)
  capture    train with TrainOptions(capture='compile' on CPU, 'reduce-overhead' on CUDA); --capture to enable
  vmap R=4   torch.func stack_module_state + vmap + functional_call (the route not taken: not bitwise)
  group R=4  lottery_nb.group.train_group, 4 runs as one channel-grouped computation
  group R=12 the same with 12 runs
Each row: images/s (all runs together) and the ratio to the naive row. Every row is warmed up first, then the rows
are timed in alternation for --reps rounds and the median is kept, so a change in machine load hits all rows alike.

    OMP_NUM_THREADS=1 python bench/bench_scale.py --batch 32 --steps 10        # CPU, a few minutes
    python bench/bench_scale.py --device cuda --batch 128 --steps 200 --capture
"""
import argparse, copy, statistics, time

import torch
import torch.nn.functional as F

from lottery_nb.config import get_preset
from lottery_nb.data import TensorDataSet
from lottery_nb.group import GroupRun, train_group
from lottery_nb.models import get_model
from lottery_nb.training import TrainOptions, get_device, train


def sync(dev):
    if dev.type == 'cuda': torch.cuda.synchronize(dev)


def once(fn, dev):
    sync(dev); t = time.perf_counter(); fn(); sync(dev)
    return time.perf_counter() - t


def timed(fn, dev):
    "A row to time: warmed up (and compiled) now, timed later in `measure`."
    fn()
    return fn


def measure(rows, dev, reps):
    "Median time of each row over `reps` rounds; the rows alternate within a round, so a load change hits all rows."
    times = {i: [] for i, r in enumerate(rows) if r[2] is not None}
    for _ in range(reps):
        for i in times: times[i].append(once(rows[i][2], dev))
    return [(label, R, statistics.median(times[i]) if i in times else None) for i, (label, R, _) in enumerate(rows)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--device', default='cpu'); ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--steps', type=int, default=10); ap.add_argument('--capture', action='store_true')
    ap.add_argument('--groups', default='4,12')
    ap.add_argument('--reps', type=int, default=3, help='timed rounds per row (median)')
    ap.add_argument('--rows', default='naive,ours,capture,vmap,group', help='which rows to measure (naive is always measured)')
    a = ap.parse_args()
    dev = get_device(a.device)
    g = torch.Generator().manual_seed(0); n = max(2560, a.batch * 4)
    data = TensorDataSet('synthetic_images', torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g),
                         torch.randn(256, 3, 32, 32, generator=g), torch.randint(0, 10, (256,), generator=g), 10, device=dev)
    cfg = get_preset('cifar10_resnet20', batch_size=a.batch, device=a.device)
    plan = cfg.resolve(data.steps_per_epoch(a.batch))
    model = get_model('resnet20', 10, (3, 32, 32), seed=0).to(dev)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    S, B = a.steps, a.batch
    rows = []

    def naive():
        m = copy.deepcopy(model); m.load_state_dict(init); m.train()
        ds = torch.utils.data.TensorDataset(data.x_train.cpu(), data.y_train.cpu())
        dl = torch.utils.data.DataLoader(ds, batch_size=B, shuffle=True, drop_last=True, generator=torch.Generator().manual_seed(0))
        opt = torch.optim.SGD(m.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        it = iter(dl)
        for _ in range(S):
            x, y = next(it); x, y = x.to(dev), y.to(dev)
            loss = F.cross_entropy(m(x), y); opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    rows.append(('naive (DataLoader, eager fp32)', 1, timed(naive, dev)))
    want = set(a.rows.split(','))
    if 'ours' in want: rows.append(('ours (train)', 1, timed(lambda: train(model, data, cfg, plan, 0, init, 0, S), dev)))
    if 'capture' not in want: pass
    elif a.capture:
        opts = TrainOptions(capture='reduce-overhead' if dev.type == 'cuda' else 'compile')
        rows.append((f'capture ({opts.capture})', 1, timed(lambda: train(model, data, cfg, plan, 0, init, 0, S, options=opts), dev)))
    else: rows.append(('capture', 1, None))

    from torch.func import functional_call, stack_module_state, vmap
    R = 4
    ms = [get_model('resnet20', 10, (3, 32, 32), seed=s).to(dev) for s in range(R)]
    def vm():
        params, bufs = stack_module_state(copy.deepcopy(ms)); base = copy.deepcopy(ms[0]).to('meta')
        opt = torch.optim.SGD(params.values(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        its = [data.train_batches(s, 0, B) for s in range(len(ms))]
        f = vmap(lambda p, b, x, y: F.cross_entropy(functional_call(base, (p, b), (x,)), y))
        for _ in range(S):
            xs, ys = zip(*(next(i) for i in its))
            loss = f(params, bufs, torch.stack(xs), torch.stack(ys)).sum()
            opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    if 'vmap' in want: rows.append((f'vmap R={len(ms)} (torch.func, not bitwise)', len(ms), timed(vm, dev)))
    for R in map(int, a.groups.split(',')) if 'group' in want else ():
        runs = [GroupRun(cfg, plan, s, init, 0, S) for s in range(R)]
        rows.append((f'group R={R} (train_group)', R, timed(lambda runs=runs: train_group(model, data, runs), dev)))

    rows = measure(rows, dev, a.reps)
    name = torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'CPU'
    print(f"ResNet-20, batch {B}, {S} steps per row, median of {a.reps}, device {dev} ({name}), torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"| row | runs | images/s | vs naive |\n|---|---|---|---|")
    base = rows[0][1] * S * B / rows[0][2]
    for label, r, t in rows:
        if t is None: print(f"| {label} | {r} | n/a on {dev.type.upper()} (pass --capture) | |"); continue
        ips = r * S * B / t
        print(f"| {label} | {r} | {ips:.0f} | {ips / base:.2f}x |", flush=True)


if __name__ == '__main__':
    main()
