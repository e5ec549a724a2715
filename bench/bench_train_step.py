"""Benchmark: one training step of lottery_nb's trainer against a minimal hand-written PyTorch loop.

Both run the same model, the same batches (the data set's own seeded batches) and the same optimiser settings,
interleaved in one process, so the ratio is measured against a baseline of the same run. Dense and masked
(50% of weights pruned) training are compared; the masked hand loop zeroes pruned gradients the obvious way.

    python bench/bench_train_step.py                      # cpu preset model (MNIST-1D CNN) and ResNet-20, on CPU
    python bench/bench_train_step.py --device cuda --models resnet20,resnet18
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from lottery_nb.config import get_preset
from lottery_nb.data import get_data
from lottery_nb.models import get_model, prunable_names
from lottery_nb.pruning import dense_mask, magnitude_prune
from lottery_nb.training import get_device, train

SETUPS = {  # model -> (preset whose optimiser settings are used, data set, data kwargs)
    'mnist1d_cnn': ('cpu', 'mnist1d', {}),
    'resnet20': ('cifar10_resnet20', 'synthetic_images', dict(num_classes=10)),
    'resnet18': ('cifar100_resnet18', 'synthetic_images', dict(num_classes=100)),
}


def sync(dev):
    if dev.type == 'cuda': torch.cuda.synchronize(dev)


def hand_loop(model, batches, cfg, steps, masks, dev):
    "The minimal loop: SGD with momentum and weight decay, cross-entropy, optional gradient masking."
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    params = dict(model.named_parameters())
    model.train()
    sync(dev); t = time.perf_counter()
    for _ in range(steps):
        x, y = next(batches)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        for n, m in masks.items(): params[n].grad.mul_(m)
        opt.step()
    sync(dev)
    return (time.perf_counter() - t) / steps


def ours(model, data, cfg, plan, start, steps, mask, dev):
    sync(dev); t = time.perf_counter()
    train(model, data, cfg, plan, seed=0, start_state=start, start_step=0, end_step=steps, mask=mask)
    sync(dev)
    return (time.perf_counter() - t) / steps


def make_data(name, kw, dev, model_name):
    if name != 'synthetic_images': return get_data(name, device=dev, **kw)
    # CIFAR-shaped random images, so the benchmark needs no download; only shapes matter for speed.
    from lottery_nb.data import TensorDataSet
    g = torch.Generator().manual_seed(0)
    n = 2560
    return TensorDataSet('synthetic_images', torch.randn(n, 3, 32, 32, generator=g).to(dev),
                         torch.randint(0, kw['num_classes'], (n,), generator=g).to(dev),
                         torch.randn(256, 3, 32, 32, generator=g).to(dev),
                         torch.randint(0, kw['num_classes'], (256,), generator=g).to(dev), kw['num_classes'], device=dev)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--models', default='mnist1d_cnn,resnet20')
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--steps', type=int, default=0, help='steps per timing (default: by model and device)')
    ap.add_argument('--reps', type=int, default=5)
    a = ap.parse_args()
    dev = get_device(a.device)
    print(f"device {dev} ({torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'CPU'}), torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"{'model':12s} {'mode':7s} {'hand ms/step':>12s} {'ours ms/step':>12s} {'ratio':>7s}")
    for name in a.models.split(','):
        preset, dname, dkw = SETUPS[name]
        cfg = get_preset(preset, device=a.device)
        data = make_data(dname, dkw, dev, name)
        plan = cfg.resolve(data.steps_per_epoch(cfg.batch_size))
        steps = a.steps or (400 if name == 'mnist1d_cnn' or dev.type == 'cuda' else 10)
        model = get_model(name, data.num_classes, data.input_shape, seed=0, **(cfg.model_kwargs if name == cfg.model else {})).to(dev)
        start = {k: v.clone() for k, v in model.state_dict().items()}
        m50 = magnitude_prune(start, dense_mask(start, prunable_names(model)), 0.5)
        for mode, mask in (('dense', None), ('masked', m50)):
            dev_masks = {n: m.to(dev, torch.float32) for n, m in (mask or {}).items()}
            h, o = [], []
            for rep in range(a.reps + 1):  # the first round warms up and is dropped; the order alternates
                def run_hand():
                    model.load_state_dict(start)
                    return hand_loop(model, data.train_batches(0, 0, cfg.batch_size), cfg, steps, dev_masks, dev)
                if rep % 2: to = ours(model, data, cfg, plan, start, steps, mask, dev); th = run_hand()
                else: th = run_hand(); to = ours(model, data, cfg, plan, start, steps, mask, dev)
                if rep: h.append(th); o.append(to)
            hm, om = statistics.median(h), statistics.median(o)
            print(f"{name:12s} {mode:7s} {1e3 * hm:12.3f} {1e3 * om:12.3f} {om / hm:7.3f}", flush=True)


if __name__ == '__main__':
    main()
