"""GPU check: prove and time the GPU path, the figure notebooks end to end included, in one 10-minute call on one GPU.

CIFAR-shaped synthetic data (labels a fixed random linear function of the images, so the loss falls), the real models
and the real notebooks. The parts run in order, each under its own wall budget (`--budget-<part>`, seconds) and all
under one deadline (`--deadline`, 560 s on a GPU), so a slow part cannot starve the rest; a part that throws is
reported FAIL with its one-line reason and the next part runs; a row that runs out of GPU memory is reported SKIPPED
with the reason. Progress lines go to stdout as each part starts and ends, and the report is rewritten after every
row, so a killed run still leaves every finished row.

  packages     the figure notebooks' imports against the GPU machine's packages and the pinned wheels
               (bench/wheels.py; on the GPU each module is imported).
  correctness  grouped (R=4) and grouped with the whole step captured in a CUDA graph (with and without
               channels_last) against one-by-one training of ResNet-20 with a pruning mask: relative weight
               difference, masks after one more pruning step, loss curves; capture on against off; channels_last
               against not; each with its tolerance and PASS/FAIL. bf16 and TF32 are reported as the opt-in options
               they are (INFO), with their difference from fp32. On the CPU the captured step runs on EagerGraph.
  speed        ResNet-20 steps/s and images/s: naive DataLoader loop, our trainer, grouped R=4 and R=12, grouped
               R=12 + capture (+ channels_last; TF32 and bf16 opt-in rows), torch.compile capture; the MNIST-1D CNN
               of cpu_gpu32 in a group of 96; ResNet-18 (CIFAR-100 shape); ResNet-50 (224x224, the largest batch of
               256/128/64/32 that fits); each ResNet-20 row's ratio against the naive row of the same run.
  level        12 ResNet-20 runs (4 seeds x 3 rewind steps) trained as one group, the fastest fp32 way measured, for
               a fixed number of steps: the projected time of one level of 62,400 steps and of the whole Fig. 2
               CIFAR-10 suite (a projection from the measured rate, not a measured time).
  memory       the group memory estimate against the peak CUDA measures; a group that runs out of memory (injected)
               is halved, said once, and ends as the group never out of memory.
  figures      `lottery figures --preset cpu_gpu32` (32 seeds, 128 dense runs): fig1 to fig5 end to end, timed, and
               the verdicts beside the committed CPU run's (--tiny: the same notebooks at toy size on the CPU).
  rehearsal    cifar10_resnet20 (Figs. 2, 3, 5) and cifar100_resnet18 (Fig. 4) on synthetic files in torchvision's
               CIFAR format, a shortened schedule, timed; a missing or corrupt file gives the CPU's sentence.
  torchrun     2 processes on one device: NCCL if it allows, else the reason and gloo on the same device; DDP
               training (train_ddp) and the evaluation shared by the ranks against one process's evaluation.

fp32 rows are true fp32: the script turns off TF32 (PyTorch lets cuDNN use TF32 by default) and the TF32 row turns it on.

    bash bench/prepare_wheels.sh                                   # here, once: .whl/ for the GPU machine
    PYTHONPATH=. python3 bench/gpu_check.py --device cpu --tiny --out /tmp/dry.md   # the CPU dry run, minutes

The one command on a lent GPU (the device tool's `run`, carry [".whl"], timeout_s 600; bench/results/README.md):

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit; export PYTHONUNBUFFERED=1; nvidia-smi -L; python3 bench/gpu_check.py --out $OUT --work /tmp/gc --deadline 530 2>&1 | tee $OUT/gpu_check.log; tar czf $OUT/figures.tgz -C /tmp/gc --exclude=./runs --exclude='./cifar*' .
"""
import argparse, copy, datetime, gc, json, math, os, platform, re, shlex, signal, statistics, subprocess, sys, tempfile
import textwrap, time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))

from lottery_nb.config import LotteryError, get_preset  # noqa: E402
from lottery_nb.data import TensorDataSet  # noqa: E402
from lottery_nb.group import EagerGraph, GroupLimit, GroupRun, group_memory, train_group  # noqa: E402
from lottery_nb.models import get_model, prunable_names  # noqa: E402
from lottery_nb.pruning import dense_mask, magnitude_prune  # noqa: E402
from lottery_nb.training import MemoryCheckpoint, TrainOptions, get_device, train  # noqa: E402
sys.path.insert(0, str(ROOT / 'bench'))
import gpu_figures as GF  # noqa: E402
import wheels  # noqa: E402

ROWS = {  # part -> how the rows of a full GPU run begin; the CPU dry run writes each of them too (run or SKIPPED)
    'packages': ('imports of the figure notebooks', 'requirements of the pinned wheels', 'wheel folder'),
    'correctness': ('rounding floor', 'scale of a real difference', 'grouped R=4 vs one by one', 'channels_last vs not',
                    'bf16 autocast vs fp32', 'TF32 vs fp32', 'capture', 'grouped R=4 + capture vs one by one',
                    'grouped R=4 + capture + channels_last vs one by one'),
    'speed': ('ResNet-20 naive', 'ResNet-20 ours', 'ResNet-20 grouped R=4', 'ResNet-20 grouped R=12', 'ResNet-18',
              'ResNet-50', 'ResNet-20 capture', 'ResNet-20 grouped R=12 + capture', 'ResNet-20 grouped R=12 + capture + '
              'channels_last', 'ResNet-20 grouped R=12 + capture, TF32', 'ResNet-20 grouped R=12 + capture, bf16',
              'MNIST-1D CNN grouped R=', 'MNIST-1D CNN grouped R=96 + capture'),
    'level': ('measured:', 'projected: one level', 'projected: Fig. 2 CIFAR-10 suite'),
    'memory': ('estimate: ResNet-20 group of 12', 'estimate: MNIST-1D CNN group of 96', 'out of memory with more than 3'),
    'figures': ('fig1', 'fig2', 'fig3', 'fig4', 'fig5', 'demonstration', 'verdicts decided', 'contradictions'),
    'rehearsal': ('cifar10_resnet20 fig2', 'cifar10_resnet20 fig3', 'cifar10_resnet20 fig5', 'cifar100_resnet18 fig4',
                  'rehearsal', 'missing CIFAR file', 'corrupt CIFAR file'),
    'torchrun': ('nccl:', 'gloo:'),   # on a GPU the gloo rows come only where NCCL refuses two ranks on one device
}
SECTIONS = {  # part -> (title, table columns); the CPU dry run writes every one of them
    'packages': ('Packages the figure notebooks need', ('check', 'result', 'detail')),
    'correctness': ('Correctness', ('check', 'measured', 'tolerance', 'result')),
    'speed': ('Speed', ('row', 'runs', 'batch', 'steps/s', 'images/s', 'vs naive', 'note')),
    'level': ('One partial paper level, and the projection', ('quantity', 'value', 'note')),
    'memory': ('Group memory: the estimate, and running out', ('check', 'value', 'result', 'note')),
    'figures': ('Demonstration: lottery figures --preset cpu_gpu32', ('row', 'result', 'seconds', 'detail')),
    'rehearsal': ('Rehearsal: the paper presets on CIFAR files in torchvision\'s format', ('row', 'result', 'seconds',
                                                                                          'detail')),
    'torchrun': ('torchrun on one device', ('check', 'result', 'detail')),
}
# Two fp32 paths that round differently (other CUDA kernels) may differ by the larger of a fixed bound and FLOOR_X x
# the rounding floor measured in the same run at the same horizon (how far a one-ulp change of the start grows).
# Weight differences are relative to the distance the weights travelled (||a - b|| / ||a - start||): after one step this
# is the relative difference of the updates, which a wrong mask, momentum or schedule makes of order 0.1-1.
FLOOR_X = 10      # times the rounding floor (rounding enters every step of a path, the floor's only at the start)
TOL = 1e-3        # relative difference of the distance travelled (cuDNN's fp32 algorithms differ by up to ~1e-4)
LOSS_TOL = 1e-3   # largest difference of one step's loss (losses ~2.3)
MASK_TOL = 1e-3   # fraction of prunable weights whose keep/prune decision differs after one more pruning step
DECISIVE = 0.5    # a check decides only where its tolerance is below this share of a real (other data order) difference
LEVEL_STEPS = 62400   # one level of the CIFAR-10 ResNet-20 preset (Appendix C)


class PartTimeout(BaseException):
    "A part's wall budget is spent (a BaseException, so the per-row `except Exception` lets it through)."


def one_line(e: BaseException) -> str:
    s = str(e).strip().splitlines()
    return f"{type(e).__name__}: {s[0] if s else ''}"[:300]


def is_oom(e: BaseException) -> bool:
    return isinstance(e, torch.cuda.OutOfMemoryError) or 'out of memory' in str(e).lower()


def sync(dev):
    if dev.type == 'cuda': torch.cuda.synchronize(dev)


def free(dev):
    gc.collect()
    if dev.type == 'cuda': torch.cuda.empty_cache()


# ---------------------------------------------------------------- the report
class Report:
    "The markdown report: a header, one table per part; rewritten (atomically) after every row and printed as it grows."
    def __init__(self, path: Path, header: list):
        self.path, self.header, self.parts, self.notes, self.data = path, header, {}, {}, {}
        for line in header: print(line, flush=True)
        self.write()

    def start(self, part: str):
        title, cols = SECTIONS[part]
        self.parts[part], self.notes[part] = [], []
        print(f"\n## {title}\n\n| {' | '.join(cols)} |\n|{'---|' * len(cols)}", flush=True)
        self.write()

    def row(self, part: str, *cells):
        cells = [str(c) for c in cells] + [''] * (len(SECTIONS[part][1]) - len(cells))
        self.parts[part].append(cells)
        print(f"| {' | '.join(cells)} |", flush=True); self.write()

    def note(self, part: str, text: str):
        self.notes[part].append(text); print(text, flush=True); self.write()

    def text(self) -> str:
        out = list(self.header)
        for part, rows in self.parts.items():
            title, cols = SECTIONS[part]
            out += ['', f'## {title}', '', f"| {' | '.join(cols)} |", f"|{'---|' * len(cols)}"]
            out += [f"| {' | '.join(r)} |" for r in rows]
            if self.notes[part]: out += [''] + self.notes[part]
        out += ['', f'<!-- gpu_check results: {json.dumps(self.data, sort_keys=True)} -->']
        return '\n'.join(out) + '\n'

    def write(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + '.tmp'); tmp.write_text(self.text()); os.replace(tmp, self.path)


class Part:
    "A running part: its rows, each wrapped so that an exception becomes a FAIL (or SKIPPED for memory) row."
    def __init__(self, rep: Report, name: str, dev, a, deadline: float = math.inf):
        self.rep, self.name, self.dev, self.a, self.deadline = rep, name, dev, a, deadline

    def left(self) -> float: return self.deadline - time.perf_counter()

    def row(self, *cells): self.rep.row(self.name, *cells)

    def guard(self, label: str, fn):
        "Run `fn()`; an exception becomes one row naming `label` and the one-line reason; returns fn's value or None."
        try: return fn()
        except Exception as e:
            oom = is_oom(e); free(self.dev)
            n = len(SECTIONS[self.name][1])
            self.row(label, *([''] * (n - 2)), ('SKIPPED (not enough GPU memory): ' if oom else 'FAIL: ') + one_line(e))
            return None


def run_part(rep: Report, name: str, budget: float, fn, dev, a):
    "Run part `name` under a wall budget of `budget` seconds (SIGALRM); whatever happens, the next part runs."
    print(f"\n>> {name}: start (budget {budget:.0f} s)", flush=True)
    t0 = time.perf_counter()
    rep.start(name)
    def on_alarm(signum, frame): raise PartTimeout()
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, max(budget, 1.0))
    try:
        if budget <= 0: raise PartTimeout()
        fn(Part(rep, name, dev, a, t0 + budget))
    except PartTimeout:
        rep.note(name, f"Stopped: the part's budget of {budget:.0f} s was spent after {time.perf_counter() - t0:.0f} s; "
                       f"the rows above are complete, the rest of the part did not run (SKIPPED).")
    except Exception as e:
        rep.note(name, f"FAIL: the part stopped with {one_line(e)}")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0); signal.signal(signal.SIGALRM, old)
    try:
        if dev.type == 'cuda' and torch.cuda.is_current_stream_capturing():
            rep.note(name, 'The part was stopped during a CUDA graph capture: the parts after it may fail because of that.')
        sync(dev)
    except Exception: pass
    free(dev)
    took = time.perf_counter() - t0
    rep.data.setdefault('seconds', {})[name] = round(took, 1)
    print(f">> {name}: end ({took:.1f} s)", flush=True)


# ---------------------------------------------------------------- data, models, comparisons
def synthetic(dev, n_train: int, n_test: int, classes: int, shape=(3, 32, 32), seed=0) -> TensorDataSet:
    "CIFAR-shaped images whose labels are a fixed random linear function of the pixels (learnable, no download)."
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_train + n_test, *shape, generator=g)
    w = torch.randn(math.prod(shape), classes, generator=g)
    y = (x.flatten(1) @ w).argmax(1)
    return TensorDataSet('synthetic_images', x[:n_train], y[:n_train], x[n_train:], y[n_train:], classes, device=dev)


def rel_diff(a: dict, b: dict, start: dict | None = None) -> float:
    "||a - b|| over all floating-point tensors, relative to ||a|| or, given `start`, to the distance ||a - start|| travelled."
    keys = [k for k, v in a.items() if v.is_floating_point()]
    num = sum(((a[k].double() - b[k].double()) ** 2).sum().item() for k in keys)
    ref = (lambda k: a[k].double()) if start is None else (lambda k: a[k].double() - start[k].to(a[k].device).double())
    den = sum((ref(k) ** 2).sum().item() for k in keys)
    return math.sqrt(num / max(den, 1e-300))


def compare(a: dict, b: dict, names: list, mask, start: dict | None = None) -> dict:
    "Weights (relative to the distance travelled from `start`), losses and the next pruning masks of two trainings."
    nxt_a, nxt_b = magnitude_prune(a['state'], mask, 0.2), magnitude_prune(b['state'], mask, 0.2)
    total = sum(m.numel() for m in nxt_a.values())
    differ = sum(int((nxt_a[n] != nxt_b[n]).sum()) for n in nxt_a)
    held = all(bool((a['state'][n][~mask[n]] == 0).all()) and bool((b['state'][n][~mask[n]] == 0).all()) for n in mask)
    return dict(rel=rel_diff(a['state'], b['state'], start), loss=(a['losses'] - b['losses']).abs().max().item(),
                mask=differ / total, held=held, bitwise=all(torch.equal(a['state'][k], b['state'][k]) for k in a['state']))


def verdict(ok: bool) -> str: return 'PASS' if ok else 'FAIL'


def pair_rows(p: Part, what: str, c: dict, tol: dict | None, info=False, decisive=True):
    """Three rows (weights, losses, masks): PASS/FAIL against `tol` (None: bitwise), or INFO for an option that changes
    numerics; UNDECIDED where the tolerance is not below a real difference (`decisive` False: the check could not fail)."""
    def cells(key, shown):
        if info: return '(reported)', 'INFO'
        if tol is None: return ('bitwise', verdict(c['bitwise'])) if key == 'rel' else ('equal', verdict(c[key] == 0))
        if not decisive and c[key] <= tol[key]:
            return f'<= {tol[key]:.2g}', 'UNDECIDED: rounding noise reaches a real difference at this horizon'
        return f'<= {tol[key]:.2g}', verdict(c[key] <= tol[key])
    p.row(f'{what}: weight difference / distance travelled', f"{c['rel']:.2e}" + (' (bitwise equal)' if c['bitwise'] else ''), *cells('rel', 0))
    p.row(f'{what}: largest loss difference over the steps', f"{c['loss']:.2e}", *cells('loss', 0))
    t, v = cells('mask', 0)
    p.row(f'{what}: masks after pruning 20% more, fraction that differ; pruned weights held at 0',
          f"{c['mask']:.2e}; held at 0: {'yes' if c['held'] else 'NO'}", f'{t}; yes',
          v if c['held'] else 'FAIL')


def nudged(state: dict) -> dict:
    "`state` with every floating-point value moved by one unit in the last place: a perturbation at rounding level."
    return {k: torch.nextafter(v, torch.full_like(v, math.inf)) if v.is_floating_point() else v.clone() for k, v in state.items()}


class Setup:
    "What the parts share: device, sizes, the ResNet-20 data, config, plan, start state and mask."
    def __init__(self, dev, tiny: bool):
        self.dev, self.tiny = dev, tiny
        self.batch = 8 if tiny else 128
        self.data = synthetic(dev, 64 if tiny else 2560, 64 if tiny else 1000, 10)
        self.cfg = get_preset('cifar10_resnet20', batch_size=self.batch, device=dev.type)
        self.plan = self.cfg.resolve(390)   # CIFAR-10's 50,000 images at batch 128: the paper's schedule
        self.model = get_model('resnet20', 10, (3, 32, 32), seed=0).to(dev)
        self.template = copy.deepcopy(self.model)
        self.by_options = {}   # options -> its own model (channels_last changes a model; capture keeps its compiled code)
        init = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
        self.names = prunable_names(self.model)
        self.mask = magnitude_prune(init, dense_mask(init, self.names), 0.2)    # level 1's mask
        self.start = {k: (v * self.mask[k] if k in self.mask else v) for k, v in init.items()}

    def train(self, steps: int, seed: int = 0, options=None, start_step: int = 0, start=None):
        if options is not None and options not in self.by_options: self.by_options[options] = copy.deepcopy(self.template)
        model = self.model if options is None else self.by_options[options]
        start = self.start if start is None else start
        return train(model, self.data, self.cfg, self.plan, seed, start, start_step, start_step + steps,
                     mask=self.mask, options=options)


# ---------------------------------------------------------------- part 1: correctness
def part_correctness(p: Part, S: Setup):
    """Each comparison at growing horizons: after 1 step rounding is tiny and a check decides; over 200 steps at lr 0.1
    from a step-0 start the trajectory is chaotic (a one-ulp change grows to a real difference) and the row says so."""
    dev, cpu = p.dev, p.dev.type == 'cpu'
    horizons = (1, 3) if p.a.tiny else (1, 20)
    p.rep.note('correctness', f"ResNet-20, batch {S.batch}, from a level-1 mask (20% pruned) at step 0, the paper's lr "
               f"schedule, fp32 unless named, after {', '.join(map(str, horizons))} steps. Weight differences are relative "
               f"to the distance travelled. Tolerances: grouped {'bitwise (the CPU path is exact)' if cpu else 'as others'}; "
               f"others: the larger of {TOL:g}/{LOSS_TOL:g}/{MASK_TOL:g} (weights/loss/masks) and {FLOOR_X}x the rounding "
               f"floor of the same horizon (one-ulp change of the start). Checks are judged after one step (the update), where a "
               f"wrong mask, momentum or schedule differs by 0.1-1; a check whose tolerance is not below {DECISIVE:g}x the "
               f"difference another data order makes cannot fail: UNDECIDED. Longer horizons are reported (INFO): there "
               f"each path's own rounding grows chaotically, towards the size of another data order.")
    for h in horizons:
        if p.left() < 10: p.row(f'horizon {h} steps', 'not run', '', 'SKIPPED: the part budget is spent'); continue
        correctness_at(p, S, h, h == horizons[-1])


def correctness_at(p: Part, S: Setup, steps: int, last: bool):
    dev, cpu, at = p.dev, p.dev.type == 'cpu', f'{steps} step' + ('s' if steps > 1 else '')
    cmp = lambda a, b: compare(a, b, S.names, S.mask, S.start)
    single = [S.train(steps, seed=s) for s in range(4)]
    ref = single[0]
    fl = cmp(ref, S.train(steps, start=nudged(S.start)))   # the rounding floor at this horizon
    tol = dict(rel=max(TOL, FLOOR_X * fl['rel']), loss=max(LOSS_TOL, FLOOR_X * fl['loss']), mask=max(MASK_TOL, FLOOR_X * fl['mask']))
    other = cmp(ref, single[1])   # another data order: the size of a real difference
    decisive = tol['rel'] < DECISIVE * other['rel']
    info = steps > 1   # past one step each path's own rounding grows chaotically: reported, not judged
    p.rep.data.setdefault('horizons', {})[steps] = dict(floor=fl['rel'], seed_scale=other['rel'], tol=tol['rel'], decisive=decisive)
    if last:
        p.rep.data['floor'] = {k: fl[k] for k in ('rel', 'loss', 'mask')}
        p.rep.data['seed_scale'] = {k: other[k] for k in ('rel', 'loss', 'mask')}
    pair_rows(p, f'rounding floor (one-ulp start vs not), {at}', fl, None, info=True)
    pair_rows(p, f'scale of a real difference (data order of seed 1 vs seed 0), {at}', other, None, info=True)
    def grouped():
        worst = group_worst(S, steps, single, cmp)
        pair_rows(p, f'grouped R=4 vs one by one (worst of 4 runs), {at}', worst, None if cpu else tol,
                  info and not cpu, decisive)
        p.rep.data['grouped_rel'] = max(p.rep.data.get('grouped_rel', 0.0), worst['rel'])
    p.guard(f'grouped R=4 vs one by one, {at}', grouped)
    # the whole group step captured (CudaGraph); on the CPU its code path with the stand-in EagerGraph
    stand_in = ' (CPU: the captured step run by EagerGraph, no CUDA graph)' if cpu else ''
    for what, cl in (('grouped R=4 + capture', False), ('grouped R=4 + capture + channels_last', True)):
        def captured(what=what, cl=cl):
            opts = TrainOptions(channels_last=cl, capture='none' if cpu else 'reduce-overhead')
            worst = group_worst(S, steps, single, cmp, opts, EagerGraph if cpu else None)
            pair_rows(p, f'{what} vs one by one (worst of 4 runs){stand_in}, {at}', worst, tol, info, decisive)
            p.rep.data.setdefault('captured_rel', {})[f'{what}, {steps}'] = worst['rel']
        p.guard(f'{what} vs one by one, {at}', captured)
    for what, opts, shown in (('channels_last vs not', TrainOptions(channels_last=True), False),
                              ('bf16 autocast vs fp32', TrainOptions(precision='bf16'), True),
                              ('TF32 vs fp32', TrainOptions(tf32=True), True)):
        if cpu and opts.tf32:
            p.row(f'{what}, {at}', 'not run', '', 'SKIPPED: TF32 exists on CUDA only'); continue
        p.guard(f'{what}, {at}', lambda opts=opts, what=what, shown=shown:
                pair_rows(p, f'{what}, {at}', cmp(ref, S.train(steps, options=opts)), tol, info or shown, decisive))
    if cpu and not p.a.cpu_capture:
        p.row(f'capture vs not, {at}', 'not run', '', "SKIPPED: on the CPU capture means an inductor compile (minutes); "
              "pass --cpu-capture to run it"); return
    opts = TrainOptions(capture='compile' if cpu else 'reduce-overhead')
    first = opts not in S.by_options
    if first and p.left() < p.a.capture_seconds:   # not started rather than cut off in the middle of a graph capture
        p.row(f'capture ({opts.capture}) vs not, {at}', 'not run', '', f'SKIPPED: {p.left():.0f} s of the part left, '
              f'capture is started with at least {p.a.capture_seconds:.0f} s (its compile)'); return
    def cap():
        pair_rows(p, f'capture ({opts.capture}) vs not, {at}', cmp(ref, S.train(steps, options=opts)), tol, info, decisive)
        p.rep.data['capture_compiled'] = True
    p.guard(f'capture ({opts.capture}) vs not, {at}', cap)


def group_worst(S, steps: int, single: list, cmp, options=None, graph=None) -> dict:
    "A group of 4 runs (seeds 0-3) against the same runs trained one by one: the worst of each comparison."
    runs = [GroupRun(S.cfg, S.plan, s, S.start, 0, steps, mask=S.mask) for s in range(4)]
    cs = [cmp(a, b) for a, b in zip(single, train_group(S.model, S.data, runs, options=options, graph=graph))]
    return dict(rel=max(c['rel'] for c in cs), loss=max(c['loss'] for c in cs), mask=max(c['mask'] for c in cs),
                held=all(c['held'] for c in cs), bitwise=all(c['bitwise'] for c in cs))


# ---------------------------------------------------------------- part 2: speed
def timed(dev, fn) -> float:
    sync(dev); t = time.perf_counter(); fn(); sync(dev)
    return time.perf_counter() - t


def naive_loop(model, data, cfg, batch, steps, dev):
    "The hand-written loop: DataLoader over CPU tensors, eager fp32, torch.optim.SGD."
    m = model; m.train()
    ds = torch.utils.data.TensorDataset(data.x_train.cpu(), data.y_train.cpu())
    dl = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, drop_last=True,
                                     generator=torch.Generator().manual_seed(0))
    opt = torch.optim.SGD(m.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    it, done = iter(dl), 0
    while done < steps:
        for x, y in it:
            x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
            loss = F.cross_entropy(m(x), y); opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
            done += 1
            if done == steps: break
        it = iter(dl)


def part_speed(p: Part, S: Setup):
    dev, tiny = p.dev, p.a.tiny
    steps, warm = (2, 1) if tiny else (200, 10)
    B = S.batch
    rates = p.rep.data.setdefault('speed', {})
    def row(key, label, R, batch, fn, n=steps, w=warm, note=''):
        def go():
            tw = timed(dev, lambda: fn(w))   # warm-up: first calls, cuDNN autotuning, compiles; its rate sizes the row
            k = n if tiny else int(min(n, max(10, w / tw * p.a.row_seconds)))
            t = timed(dev, lambda: fn(k))
            sps = k / t
            rates[key] = dict(steps_per_s=sps, images_per_s=sps * R * batch, runs=R, batch=batch)
            base = rates.get('naive')
            ratio = f"{sps * R * batch / base['images_per_s']:.2f}x" if base and batch and key.startswith('r20') else ''
            ratio = '1.00x' if key == 'r20_naive' else ratio
            p.row(label, R, batch, f'{sps:.1f}', f'{sps * R * batch:.0f}', ratio, f'{k} steps' + (f'; {note}' if note else ''))
        p.guard(label, go)
    fresh = lambda: {k: v.to(dev) for k, v in S.start.items()}
    def naive(n):
        S.model.load_state_dict(fresh()); naive_loop(S.model, S.data, S.cfg, B, n, dev)
    row('r20_naive', 'ResNet-20 naive (DataLoader, eager fp32, optim.SGD)', 1, B, naive)
    if 'r20_naive' in rates: rates['naive'] = rates['r20_naive']
    row('r20_ours', 'ResNet-20 ours (train, masked, fp32)', 1, B, lambda n: S.train(n))
    for R in (4, 12):
        row(f'r20_group{R}', f'ResNet-20 grouped R={R} (train_group)', R, B, lambda n, R=R: train_group(
            S.model, S.data, [GroupRun(S.cfg, S.plan, s, S.start, 0, n, mask=S.mask) for s in range(R)]),
            note='steps/s of each run; images/s of all runs')
    group_speed_rows(p, S, row)
    d100 = synthetic(dev, 64 if tiny else 2560, 64 if tiny else 1000, 100)
    c18 = get_preset('cifar100_resnet18', batch_size=B, device=dev.type); p18 = c18.resolve(390)
    m18 = p.guard('ResNet-18 model', lambda: get_model('resnet18', 100, (3, 32, 32), seed=0).to(dev))
    if m18 is not None:
        s18 = {k: v.clone() for k, v in m18.state_dict().items()}
        row('r18_ours', 'ResNet-18, CIFAR-100 shape (train, fp32)', 1, B,
            lambda n: train(m18, d100, c18, p18, 0, s18, 0, n), n=max(2, steps // 2))
        del m18, s18
    free(dev); del d100
    p.guard('ResNet-50', lambda: resnet50_row(p, row, tiny, dev))
    if dev.type == 'cpu' and not p.a.cpu_capture:
        p.row('ResNet-20 capture', 1, B, '', '', '', 'SKIPPED: on the CPU capture is an inductor compile (minutes); '
              'pass --cpu-capture'); return
    opts = TrainOptions(capture='compile' if dev.type == 'cpu' else 'reduce-overhead')
    need = p.a.capture_seconds / (3 if p.rep.data.get('capture_compiled') else 1)   # less once compiled in correctness
    if p.left() < need:
        p.row(f'ResNet-20 capture ({opts.capture})', 1, B, '', '', '', f'SKIPPED: {p.left():.0f} s of the part left, '
              f'capture is started with at least {need:.0f} s'); return
    row('r20_capture', f'ResNet-20 capture ({opts.capture})', 1, B, lambda n: S.train(n, options=opts),
        w=max(warm, 3), note='warm-up (compile, graph capture) not timed')


def group_speed_rows(p: Part, S: Setup, row):
    "Grouped training with the whole step captured (CudaGraph; EagerGraph on the CPU), its options, and MNIST-1D groups."
    dev, tiny, cpu, B = p.dev, p.a.tiny, p.dev.type == 'cpu', S.batch
    cap, graph = ('none', EagerGraph) if cpu else ('reduce-overhead', None)
    stand_in = '; CPU: the captured step run eagerly by EagerGraph (no CUDA graph)' if cpu else ''
    runs = lambda R, n, st=S: [GroupRun(st.cfg, st.plan, s, st.start, 0, n, mask=st.mask) for s in range(R)]
    R12 = 4 if tiny else 12
    for key, label, opts in (('r20_group12_capture', '', TrainOptions(capture=cap)),
                             ('r20_group12_capture_cl', ' + channels_last', TrainOptions(capture=cap, channels_last=True)),
                             ('r20_group12_capture_tf32', ', TF32 (opt-in)', TrainOptions(capture=cap, tf32=True)),
                             ('r20_group12_capture_bf16', ', bf16 autocast (opt-in)',
                              TrainOptions(capture=cap, precision='bf16'))):
        if cpu and opts.tf32: p.row(f'ResNet-20 grouped R=12 + capture{label}', 12, B, '', '', '',
                                    'SKIPPED: TF32 exists on CUDA only'); continue
        if cpu and opts.precision == 'bf16': p.row(f'ResNet-20 grouped R=12 + capture{label}', R12, B, '', '', '',
                                                   'SKIPPED on the CPU: bf16 autocast is slow there (correctness '
                                                   'runs it)'); continue
        row(key, f'ResNet-20 grouped R=12 + capture{label}' + (f' (--tiny: R={R12})' if tiny else ''), R12, B,
            lambda n, o=opts: train_group(S.model, S.data, runs(R12, n), options=o, graph=graph),
            note='steps/s of each run; images/s of all runs; each call captures anew (timed)' + stand_in)
    R = 8 if tiny else 96
    m = get_model('mnist1d_cnn', 10, (1, 40), seed=0, width=16, depth=3).to(dev)
    M = type('M', (), {})()   # the MNIST-1D CNN of the cpu preset on synthetic 1x40 inputs (mnist1d is not needed)
    M.data = synthetic(dev, 256 if tiny else 4000, 64 if tiny else 1000, 10, shape=(1, 40))
    M.cfg = get_preset('cpu', device=dev.type); M.plan = M.cfg.resolve(M.data.steps_per_epoch(128))
    M.start, M.mask = {k: v.clone() for k, v in m.state_dict().items()}, None
    size = f' (--tiny: R={R})' if tiny else ''
    for key, label, o, g in ((f'm1d_group{R}', f'MNIST-1D CNN grouped R={R}', None, None),
                             (f'm1d_group{R}_capture', f'MNIST-1D CNN grouped R=96 + capture{size}',
                              TrainOptions(capture=cap), graph)):
        row(key, label, R, 128, lambda n, o=o, g=g: train_group(m, M.data, runs(R, n, M), options=o, graph=g),
            note="the cpu preset's model and batch, synthetic inputs: one level of cpu_gpu32 is 96 runs"
                 + (stand_in if g else ''))


def resnet50_plain(num_classes: int = 1000) -> torch.nn.Module:
    "torchvision's ResNet-50 architecture (v1.5, bottlenecks [3, 4, 6, 3]) rebuilt, to time it where torchvision is absent."
    from torch import nn
    class Bottleneck(nn.Module):
        def __init__(s, cin, width, stride):
            super().__init__()
            s.conv1, s.bn1 = nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width)
            s.conv2, s.bn2 = nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width)
            s.conv3, s.bn3 = nn.Conv2d(width, 4 * width, 1, bias=False), nn.BatchNorm2d(4 * width)
            s.down = None if stride == 1 and cin == 4 * width else nn.Sequential(
                nn.Conv2d(cin, 4 * width, 1, stride, bias=False), nn.BatchNorm2d(4 * width))
        def forward(s, x):
            out = F.relu(s.bn1(s.conv1(x))); out = F.relu(s.bn2(s.conv2(out))); out = s.bn3(s.conv3(out))
            return F.relu(out + (x if s.down is None else s.down(x)))
    layers, cin = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)], 64
    for width, n, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for i in range(n): layers.append(Bottleneck(cin, width, stride if i == 0 else 1)); cin = 4 * width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2048, num_classes))


def resnet50_row(p: Part, row, tiny: bool, dev):
    "ResNet-50 at 224x224 (64x64 in the dry run), the largest batch of 256/128/64/32 that fits."
    shape = (3, 64, 64) if tiny else (3, 224, 224)
    cfg = get_preset('imagenet_resnet50', device=dev.type)
    try:
        import torchvision  # noqa: F401
        m, built = get_model('resnet50', 1000, shape, seed=0).to(dev), 'lottery_nb.models (torchvision)'
    except ImportError:
        torch.manual_seed(0)
        m, built = resnet50_plain().to(dev), "torchvision's architecture rebuilt here: torchvision is not installed"
    start = {k: v.clone() for k, v in m.state_dict().items()}
    tried = []
    for B in ((2,) if tiny else (256, 128, 64, 32)):
        data = None
        try:
            n = max(2 * B, 4)
            g = torch.Generator().manual_seed(0)
            data = TensorDataSet('synthetic_imagenet', torch.randn(n, *shape, generator=g), torch.randint(0, 1000, (n,), generator=g),
                                 torch.randn(4, *shape, generator=g), torch.randint(0, 1000, (4,), generator=g), 1000, device=dev)
            c = cfg.replace(batch_size=B); plan = c.resolve(data.steps_per_epoch(B))
            sync(dev)
            # a short probe step first, so that a batch that does not fit fails before the timed row
            train(m, data, c, plan, 0, start, 0, 1)
        except Exception as e:
            if not is_oom(e): raise
            tried.append(B); del data; free(dev); continue
        note = f"{shape[1]}x{shape[2]} images, fp32; {built}" + (f"; batch {', '.join(map(str, tried))} did not fit" if tried else '')
        row('r50_ours', f'ResNet-50, ImageNet shape (train)', 1, B, lambda k: train(m, data, c, plan, 0, start, 0, k),
            n=2 if tiny else 20, w=1 if tiny else 3, note=note)
        return
    p.row('ResNet-50', '', '', '', '', '', f"SKIPPED (not enough GPU memory): no batch of {tried} fit")


# ---------------------------------------------------------------- part 3: one partial level and the projection
def suite_steps() -> tuple[int, int, int]:
    "Training steps of the Fig. 2 CIFAR-10 suite (cifar10_resnet20): dense runs, chain steps, and the number of levels."
    cfg = get_preset('cifar10_resnet20'); plan = cfg.resolve(390)
    dense = len(cfg.seeds) * plan.total
    chains = sum(cfg.levels * (plan.total - r) for s in cfg.seeds for r in plan.rewind_steps)
    return dense, chains, cfg.levels


def fastest_fp32(p: Part) -> tuple:
    "The fastest fp32 way the speed part measured to train a group of 12: (speed key, options, graph, words)."
    cpu, sp = p.dev.type == 'cpu', p.rep.data.get('speed', {})
    cap, graph = ('none', EagerGraph) if cpu else ('reduce-overhead', None)
    ways = [('r20_group12', None, None, 'eager'), ('r20_group12_capture', TrainOptions(capture=cap), graph, 'captured'),
            ('r20_group12_capture_cl', TrainOptions(capture=cap, channels_last=True), graph,
             'captured, channels_last')]
    measured = [w for w in ways if w[0] in sp]
    return max(measured, key=lambda w: sp[w[0]]['steps_per_s']) if measured else ways[0]


def part_level(p: Part, S: Setup):
    dev, cfg, sp = p.dev, S.cfg, p.rep.data.get('speed', {})
    key, opts, graph, how = fastest_fp32(p)
    r12 = sp.get(key, {}).get('steps_per_s')
    # about --level-seconds of timed training at the group-of-12 rate the speed part measured (100 steps without it)
    steps = 3 if p.a.tiny else int(min(2000, max(20, r12 * p.a.level_seconds))) if r12 else 100
    def runs(n, offset=0):
        return [GroupRun(cfg, S.plan, s, S.start, r + offset, r + offset + n, mask=S.mask, where=f'seed {s}, rewind {r}')
                for s in cfg.seeds for r in S.plan.rewind_steps]
    go = lambda n, offset: train_group(S.model, S.data, runs(n, offset), options=opts, graph=graph)
    go(1 if p.a.tiny else 10, 0)   # warm-up, not timed
    t = timed(dev, lambda: go(steps, 10))
    rate = steps / t
    R = len(cfg.seeds) * len(S.plan.rewind_steps)
    dense, chains, levels = suite_steps()
    level_s = LEVEL_STEPS / rate
    r4 = sp.get('r20_group4', {}).get('steps_per_s')
    dense_s = LEVEL_STEPS / max(r4 or rate, rate)   # a group of 4 trains at least as fast per run as one of 12
    suite_s = dense_s + levels * level_s
    one = sp.get('r20_ours', {}).get('steps_per_s')
    p.rep.data['level'] = dict(runs=R, steps=steps, batch=S.batch, group_steps_per_s=rate, level_hours=level_s / 3600,
                               suite_hours=suite_s / 3600, suite_steps=dense + chains, how=how,
                               one_by_one_suite_hours=(dense + chains) / one / 3600 if one else None)
    p.row(f'measured: {R} ResNet-20 runs as one group (4 seeds x rewind {"/".join(map(str, S.plan.rewind_steps))})',
          f'{rate:.2f} steps/s per run, {rate * R * S.batch:.0f} images/s',
          f'{steps} steps, batch {S.batch}, masked, fp32, {how} (the fastest fp32 group of 12 in the speed part)')
    p.row('projected: one level of 62,400 steps (all 12 runs)', f'{level_s / 3600:.2f} h',
          'projection from the measured rate; evaluation and pruning not included')
    p.row(f'projected: Fig. 2 CIFAR-10 suite ({(dense + chains) / 1e6:.2f} M steps: 4 dense runs + {levels} levels of 12 chains)',
          f'{suite_s / 3600:.1f} h', 'projection from the measured rates (dense runs as a group of 4'
          + ('' if r4 else ', at the group-of-12 rate: R=4 not measured') + ')')
    if one:
        p.row('projected: the same suite one run at a time (ours row)', f'{(dense + chains) / one / 3600:.1f} h',
              'projection from the measured one-by-one rate')


# ---------------------------------------------------------------- packages
def part_packages(p: Part, S):
    "The figure notebooks' imports against the GPU machine's packages and the pinned wheels (bench/wheels.py)."
    rows = wheels.check(do_import=p.dev.type == 'cuda')   # on the GPU machine, after the wheels are installed
    imports = [r for r in rows if r[0].startswith('import ') and not r[0].endswith(' here')]
    bad = [r[0] for r in imports if r[1] != 'ok']
    pinned = len(wheels.pins())
    p.row(f'imports of the figure notebooks ({len(imports)} packages)', verdict(not bad),
          f"missing: {', '.join(bad)}" if bad else f"{sum('machine' in r[2] for r in imports)} on the GPU machine, "
          f"{sum('wheel' in r[2] for r in imports)} from the {pinned} pinned wheels (bench/wheels.txt)")
    req = [r for r in rows if r[0].startswith('wheel ')]
    badr = [f'{r[0].split(":")[0]}: {r[2]}' for r in req if r[1] != 'ok']
    p.row(f'requirements of the pinned wheels ({len(req)})', verdict(not badr), '; '.join(badr) or
          'every requirement is on the machine or pinned')
    folder = [r for r in rows if r[0].startswith(f'{wheels.WHEELS.name}/')]
    p.row('wheel folder' + (f' {folder[0][0]}' if folder else ''), verdict(folder[0][1] == 'ok') if folder else 'SKIPPED',
          folder[0][2] if folder else f'{wheels.WHEELS} is not here (bench/prepare_wheels.sh makes it, where PyPI is reachable)')
    done = [r for r in rows if r[0].endswith(' here')]
    if done:
        bad = [f'{r[0]}: {r[2]}' for r in done if r[1] != 'ok']
        p.row(f'imported here ({len(done)} modules)', verdict(not bad), '; '.join(bad)[:300] or 'all imported')


# ---------------------------------------------------------------- group memory
def part_memory(p: Part, S: Setup):
    dev, cuda = p.dev, p.dev.type == 'cuda'
    def peak(fn) -> float | None:
        if not cuda: return None
        free(dev); sync(dev); base = torch.cuda.memory_allocated(dev); torch.cuda.reset_peak_memory_stats(dev)
        fn(); sync(dev)
        return torch.cuda.max_memory_allocated(dev) - base
    m1 = get_model('mnist1d_cnn', 10, (1, 40), seed=0, width=16, depth=3).to(dev)
    d1 = synthetic(dev, 256 if p.a.tiny else 4000, 64, 10, shape=(1, 40))
    c1 = get_preset('cpu', device=dev.type); pl1 = c1.resolve(d1.steps_per_epoch(128))
    st1 = {k: v.clone() for k, v in m1.state_dict().items()}
    for label, tpl, shape, R, B, fn in (
            ('ResNet-20 group of 12', S.template, (3, 32, 32), 12, S.batch, lambda: train_group(
                S.model, S.data, [GroupRun(S.cfg, S.plan, s, S.start, 0, 2, mask=S.mask) for s in range(12)])),
            ('MNIST-1D CNN group of 96', m1, (1, 40), 96, 128, lambda: train_group(
                m1, d1, [GroupRun(c1, pl1, s, st1, 0, 2) for s in range(96)]))):
        def go(label=label, tpl=tpl, shape=shape, R=R, B=B, fn=fn):
            est = group_memory(tpl, shape, R, B)['total']
            got = peak(fn) if not p.a.tiny or R <= 12 else None
            p.row(f'estimate: {label} at batch {B}', f'{est / 2**30:.3f} GiB',
                  'INFO' if got is None else f'measured peak {got / 2**30:.3f} GiB ({est / got:.2f}x)',
                  'eager fp32, 2 steps; the estimate leaves out the CUDA context and cuDNN workspaces' if cuda else
                  'measured on CUDA only (torch.cuda.max_memory_allocated)')
            p.rep.data.setdefault('memory', {})[label] = dict(estimate=est, peak=got)
        p.guard(f'estimate: {label}', go)
    p.guard('out of memory with more than 3 runs', lambda: oom_row(p, S))


def oom_row(p: Part, S: Setup):
    "A group of 6 that runs out of memory (injected) with more than 3 runs: halved once, nothing lost, as without."
    import lottery_nb.group as G
    real, said, steps = G._group_step, [], []
    def injected(g, sts, *a):
        if len(sts) > 3 and sts[0]['step'] == 2: raise torch.cuda.OutOfMemoryError('CUDA out of memory (injected)')
        return real(g, sts, *a)
    runs = lambda: [GroupRun(S.cfg, S.plan, s, S.start, 0, 4, mask=S.mask, checkpointer=MemoryCheckpoint())
                    for s in range(6)]
    G._group_step = injected
    try: got = train_group(S.model, S.data, runs(), on_steps=steps.append, limit=GroupLimit(say=said.append))
    finally: G._group_step = real
    ref = train_group(S.model, S.data, runs())
    rel = max(rel_diff(a['state'], b['state'], S.start) for a, b in zip(got, ref))
    same = all(torch.equal(a['state'][k], b['state'][k]) for a, b in zip(got, ref) for k in a['state'])
    halved = [s for s in said if s.startswith('Out of memory')]
    # on the CPU a group's runs are bitwise the runs alone; on CUDA groups of 3 and 6 round differently (reported)
    ok = len(halved) == 1 and len(got) == 6 and sum(steps) == 24 and (same or p.dev.type != 'cpu')
    p.row('out of memory with more than 3 runs (injected at step 2 of a group of 6)',
          f"{'bitwise equal' if same else f'{rel:.1e} relative'} to the group never out of memory; said "
          f"{len(halved)}x; {sum(steps)}/24 steps counted once", verdict(ok),
          (halved[0] if halved else 'nothing said')[:160])


# ---------------------------------------------------------------- the figures: demonstration and rehearsal
def figure_rows(p: Part, folder: Path, log: Path, names: list, prefix: str = '') -> dict:
    "One row per notebook of a `lottery figures` run (its executed notebooks, its log); name -> (ok, seconds, error)."
    times = GF.executed(folder, log)
    for n in names:
        ok, s, err = times.get(n, (None, None, ''))
        p.row(f'{prefix}{n}', 'not run' if n not in times else 'not finished' if ok is None else verdict(ok),
              '' if s is None else f'{s:.1f}', err or (f'see {log.name}: {GF.log_tail(log)}' if ok is None else ''))
    return times


def finished(times: dict, names: list) -> bool:
    return all(times.get(n, (None,))[0] for n in names)


def part_figures(p: Part, S):
    "`lottery figures --preset cpu_gpu32`: every notebook end to end on the device, timed; verdicts beside the CPU run's."
    W, tiny, dev = Path(p.a.work), p.a.tiny, p.dev
    if dev.type == 'cpu' and not tiny:
        for r in ROWS['figures']: p.row(r, 'SKIPPED', '', 'the demonstration is for a GPU; the CPU runs it with --tiny')
        return
    common = ['--preset', 'cpu_gpu32', '--store', W / 'runs', '--out', W / 'out', '--no-progress']
    env, t0 = GF.kernel_env(), time.perf_counter()
    if tiny:   # Fig. 3 with a coarse plane in a call of its own, at the same time (the store's locks order them)
        procs = [GF.start(common + ['--only', 'fig1,fig2,fig4,fig5', '--jobs', '2'] + GF.DEMO_TINY, W / 'demo.log', env),
                 GF.start(common + ['--only', 'fig3'] + GF.FIG3_TINY + GF.DEMO_TINY, W / 'demo_fig3.log', env)]
    else: procs = [GF.start(common + ['--jobs', '3'], W / 'demo.log', env)]
    GF.finish(procs, p.left() - 5)
    took, names = time.perf_counter() - t0, ['fig1', 'fig2', 'fig3', 'fig4', 'fig5']
    times = figure_rows(p, W / 'out' / 'cpu_gpu32' / 'notebooks', W / 'demo.log', names)
    if tiny: p.rep.note('figures', f"--tiny: fig3 ran in a call of its own with {' '.join(GF.FIG3_TINY)} (demo_fig3.log).")
    cfg = get_preset('cpu_gpu32')
    p.row('demonstration: lottery figures --preset cpu_gpu32' + (' (--tiny settings, CPU)' if tiny else ''),
          verdict(finished(times, names)), f'{took:.1f}',
          f'{len(cfg.seeds)} seeds x {len(cfg.rewind_steps)} rewind steps, {cfg.dense_seeds} dense runs, group_size '
          f'{cfg.group_size}, capture {cfg.capture}' + (f'; here: {" ".join(map(str, GF.DEMO_TINY))}' if tiny else ''))
    p.rep.data['demo'] = dict(seconds=took, notebooks={k: v[1] for k, v in times.items()}, tiny=tiny)
    verdict_rows(p, W / 'out' / 'cpu_gpu32' / 'notebooks', tiny)


def verdict_rows(p: Part, folder: Path, tiny: bool):
    "The demonstration's verdicts: how many are decided, the table beside the committed CPU run, contradictions."
    gv, cv = GF.verdicts(folder), GF.verdicts(ROOT / 'nbs' / 'figures')
    allv = [v for vs in gv.values() for v in vs]
    decided = [v for v in allv if v['verdict'] in ('yes', 'no')]
    p.row('verdicts decided (yes or no)', f'{len(decided)} of {len(allv)}', '',
          '; '.join(f"{f}: {sum(v['verdict'] in ('yes', 'no') for v in vs)}/{len(vs)}" for f, vs in gv.items()))
    bad = GF.compare(gv, cv)
    p.row('contradictions with the committed CPU run (a yes against a no)', 'INFO' if tiny else verdict(not bad), '',
          '; '.join(f'{f}: {c!r} {a} here, {b} on the CPU' for f, c, a, b in bad)[:400] or 'none' +
          (' (--tiny: toy settings, not a test of the claims)' if tiny else ''))
    p.rep.data['verdicts'] = gv
    if gv: p.rep.note('figures', '\n'.join(['Verdicts of the demonstration, beside the committed CPU run '
                                            '(nbs/figures, the `cpu` preset at 4 seeds):', ''] + GF.verdict_table(gv, cv)))


def part_rehearsal(p: Part, S):
    "cifar10_resnet20 (Figs. 2, 3, 5) and cifar100_resnet18 (Fig. 4) on synthetic CIFAR files, a shortened schedule."
    W, tiny, dev = Path(p.a.work), p.a.tiny, p.dev
    spec, root = GF.REHEARSE[tiny], W / 'cifar'
    for which in ('cifar10', 'cifar100'): GF.write_cifar(root, which, spec['train'], spec['test'])
    base = ['--store', W / 'runs', '--out', W / 'out', '--no-progress', '--set', f'device={dev.type}',
            '--set', f'data_kwargs={{"root": "{root}"}}'] + spec['args']
    env, t0 = GF.kernel_env(), time.perf_counter()
    figs10 = ['fig5'] if tiny else ['fig2', 'fig5']   # the dry run: the CIFAR loader, ResNets, groups; figs 2, 3 on GPU
    a = GF.start(['--preset', 'cifar10_resnet20', '--only', ','.join(figs10), '--jobs', '2'] + base, W / 'c10.log', env)
    c = GF.start(['--preset', 'cifar100_resnet18', '--only', 'fig4', '--seeds', '0,1'] + base + (GF.FIG4_TINY if tiny else []),
                 W / 'c100.log', env)
    GF.finish([a, c], p.left() - (5 if tiny else 60))
    if tiny:
        for n in ('fig2', 'fig3'): p.row(f'cifar10_resnet20 {n}', 'SKIPPED', '', 'on the GPU only (the CPU dry run runs '
                                         f'{n} on cpu_gpu32 above, and the CIFAR loader and ResNets with fig5 and fig4)')
    else:
        b = GF.start(['--preset', 'cifar10_resnet20', '--only', 'fig3', '--param', 'grid=21'] + base, W / 'c10_fig3.log', env)
        GF.finish([b], p.left() - 5)
    took = time.perf_counter() - t0
    nb10, nb100 = W / 'out' / 'cifar10_resnet20' / 'notebooks', W / 'out' / 'cifar100_resnet18' / 'notebooks'
    t10 = figure_rows(p, nb10, W / 'c10.log', figs10, 'cifar10_resnet20 ')
    if not tiny: t10.update(figure_rows(p, nb10, W / 'c10_fig3.log', ['fig3'], 'cifar10_resnet20 '))
    t100 = figure_rows(p, nb100, W / 'c100.log', ['fig4'], 'cifar100_resnet18 ')
    if tiny: p.rep.note('rehearsal', f"--tiny: cifar100_resnet18's Fig. 4 ran with {' '.join(GF.FIG4_TINY)} (ResNet-20 on the "
                                     "CIFAR-100 files: ResNet-18's pruning and sweeps take minutes of a CPU; the GPU runs "
                                     "ResNet-18).")
    ok = finished(t10, figs10 + ([] if tiny else ['fig3'])) and finished(t100, ['fig4'])
    p.row('rehearsal: CIFAR files in torchvision\'s format, a shortened schedule', verdict(ok),
          f'{took:.1f}', ' '.join(map(str, spec['args'] + (GF.FIG4_TINY if tiny else []))) +
          f"; {spec['train']} training and {spec['test']} test images")
    p.rep.data['rehearsal'] = dict(seconds=took, notebooks={k: v[1] for k, v in {**t10, **t100}.items()}, tiny=tiny)
    bad_cifar_rows(p, root)


def bad_cifar_rows(p: Part, root: Path):
    "A CIFAR root with a missing or a corrupt file: the same sentence on the device as on the CPU."
    import shutil
    from lottery_nb.data import clear_data_cache, get_data
    def message(r, device):
        clear_data_cache()
        try: get_data('cifar10', device=device, root=r)
        except LotteryError as e: return str(e)
        return None
    for what, spoil in (('missing CIFAR file', lambda f: f.unlink()), ('corrupt CIFAR file', lambda f: f.write_bytes(b'not a pickle'))):
        def go(what=what, spoil=spoil):
            r = root.parent / f'cifar_{what.split()[0]}'
            shutil.rmtree(r, ignore_errors=True); shutil.copytree(root, r)
            spoil(r / 'cifar-10-batches-py' / 'data_batch_3')
            on_dev, on_cpu = message(r, p.dev), message(r, 'cpu')
            p.row(f'{what} (data_batch_3) on {p.dev.type}', verdict(on_dev is not None and on_dev == on_cpu), '',
                  f'{on_dev!r}'[:300] + ('' if on_dev == on_cpu else f' differs from the CPU: {on_cpu!r}'[:200]))
        p.guard(what, go)
    clear_data_cache()


# ---------------------------------------------------------------- part 4: torchrun
WORKER = textwrap.dedent('''
    import json, os, sys, time, torch
    sys.path.insert(0, sys.argv[1]); sys.path.insert(0, os.path.join(sys.argv[1], 'bench'))
    torch.set_num_threads(1)
    import torch.distributed as dist
    from gpu_check import synthetic
    from lottery_nb.config import get_preset
    from lottery_nb.distributed import broadcast, evaluate_ddp, train_ddp
    from lottery_nb.models import get_model
    from lottery_nb.training import evaluate
    out, backend, devname, steps, batch = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    rank, world = int(os.environ['RANK']), int(os.environ['WORLD_SIZE'])
    dev = torch.device(devname)
    if dev.type == 'cuda': torch.cuda.set_device(dev)
    dist.init_process_group(backend, device_id=dev if backend == 'nccl' else None)
    x = torch.ones(1, device=dev) * (rank + 1); dist.all_reduce(x)
    assert x.item() == sum(range(1, world + 1)), x.item()
    data = synthetic(dev, 256 if batch < 64 else 2560, 100 if batch < 64 else 1000, 10)
    cfg = get_preset('cifar10_resnet20', batch_size=batch, device=dev.type); plan = cfg.resolve(390)
    model = get_model('resnet20', 10, (3, 32, 32), seed=0).to(dev)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    sync_bn = None if dev.type == 'cuda' else False
    fresh = lambda: get_model('resnet20', 10, (3, 32, 32), seed=0).to(dev)   # one module per DDP wrapper, as imp does
    train_ddp(fresh(), data, cfg, plan, 0, init, 0, 1, sync_bn=sync_bn)   # warm-up
    if dev.type == 'cuda': torch.cuda.synchronize()
    t = time.perf_counter()
    res = train_ddp(fresh(), data, cfg, plan, 0, init, 0, steps, sync_bn=sync_bn)
    if dev.type == 'cuda': torch.cuda.synchronize()
    t = time.perf_counter() - t
    model = fresh(); model.load_state_dict(broadcast(res['state']))   # rank 0's model (the CPU smoke's BatchNorm is per rank)
    shared = evaluate_ddp(model, data, 'test', 128)
    alone = evaluate(model, data, 'test', 128)
    if rank == 0:
        json.dump(dict(steps_per_s=steps / t, loss=res['losses'][-1].item(), finite=bool(torch.isfinite(res['losses']).all()),
                       shared=shared, alone=alone, world=world), open(out, 'w'))
    dist.barrier(); dist.destroy_process_group()   # leave together: a rank exiting with the group alive may abort
''')


def launch(p: Part, backend: str, devname: str, timeout: float) -> tuple:
    "Run the worker on 2 processes under torchrun; (result dict or None, one-line reason)."
    tmp = Path(tempfile.mkdtemp(prefix='gpu_check_'))
    script, out = tmp / 'worker.py', tmp / 'result.json'
    script.write_text(WORKER)
    steps, batch = (2, 8) if p.a.tiny else (50, 128)
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')])}
    for k in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT'): env.pop(k, None)
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', str(script), str(ROOT),
           str(out), backend, devname, str(steps), str(batch)]
    # its own process group, so that a timeout (or the part's budget) ends torchrun's workers too, not the agent alone
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try: so, se = proc.communicate(timeout=max(timeout, 5))
    except BaseException as e:
        try: os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError: pass
        proc.communicate()
        if isinstance(e, subprocess.TimeoutExpired): return None, f'did not finish within {timeout:.0f} s'
        raise
    if proc.returncode == 0 and out.exists(): return json.loads(out.read_text()), ''
    lines = [l.strip() for l in (se + so).splitlines() if l.strip()]
    for pat in (r'Duplicate GPU', r'ncclInvalidUsage', r'^[\w.]*(Error|Exception): .*(NCCL|nccl)', r'^[\w.]*(Error|Exception): '):
        key = [l for l in lines if re.search(pat, l) and 'ChildFailedError' not in l]
        if key: return None, key[0][:300]
    return None, (lines or [f'exit status {proc.returncode}'])[-1][:300]


def part_torchrun(p: Part, S: Setup):
    dev = p.dev
    deadline = p.deadline
    devname = 'cuda:0' if dev.type == 'cuda' else 'cpu'
    tries = [('nccl', devname), ('gloo', devname)] if dev.type == 'cuda' else [('gloo', 'cpu')]
    if dev.type != 'cuda': p.row('nccl: 2 processes on one device', 'SKIPPED', 'NCCL needs CUDA; the CPU dry run runs gloo')
    for i, (backend, dn) in enumerate(tries):
        left = deadline - time.perf_counter() - 2
        res, why = launch(p, backend, dn, left / (len(tries) - i) if i == 0 and len(tries) > 1 else left)
        if res is None:
            p.row(f'{backend}: 2 processes on {dn}', 'SKIPPED' if backend == 'nccl' else 'FAIL', why); continue
        p.rep.data.setdefault('torchrun', {})[backend] = res
        p.row(f'{backend}: 2 processes on {dn}, all_reduce and train_ddp', verdict(res['finite']),
              f"ResNet-20 {res['steps_per_s']:.1f} steps/s (global batch {8 if p.a.tiny else 128}), last loss {res['loss']:.3f}")
        sh, al = res['shared'], res['alone']
        same = sh['n'] == al['n'] and round(sh['error'] * sh['n']) == round(al['error'] * al['n'])
        p.row(f'{backend}: evaluation shared by the ranks vs one process', verdict(same and abs(sh['loss'] - al['loss']) <= 1e-4),
              f"errors {round(sh['error'] * sh['n'])}/{sh['n']} vs {round(al['error'] * al['n'])}/{al['n']}, "
              f"loss {sh['loss']:.6f} vs {al['loss']:.6f} (tolerance 1e-4)")
        if backend == 'nccl': break


# ---------------------------------------------------------------- main
def header(dev, a) -> tuple:
    if dev.type == 'cuda':
        pr = torch.cuda.get_device_properties(dev)
        card = torch.cuda.get_device_name(dev)
        try:
            driver = subprocess.run(['nvidia-smi', '--query-gpu=driver_version', '--format=csv,noheader'], capture_output=True,
                                    text=True, timeout=20).stdout.strip().splitlines()[0]
        except Exception as e:
            try: v = torch._C._cuda_getDriverVersion(); driver = f'unknown build; supports CUDA {v // 1000}.{v % 1000 // 10}'
            except Exception: driver = f'unknown ({one_line(e)})'
        desc = f"{card} ({pr.total_memory / 2**30:.0f} GiB, compute capability {pr.major}.{pr.minor})"
    else:
        card, driver, desc = 'CPU', 'none (CPU dry run)', f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
    git = lambda *args: subprocess.run(['git', *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    try:
        commit = git('rev-parse', '--short', 'HEAD') or 'unknown'
        if git('status', '--porcelain', '--untracked-files=no'): commit += ' with uncommitted changes'
    except Exception: commit = 'unknown'
    date = datetime.datetime.now(datetime.timezone.utc)
    cudnn = torch.backends.cudnn.version() if dev.type == 'cuda' else None
    cmd = 'PYTHONPATH=. python3 ' + ' '.join(shlex.quote(x) for x in [os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:])
    lines = [f"# GPU check: {card}, {date:%Y-%m-%d}" if dev.type == 'cuda' else f"# GPU check, CPU dry run, {date:%Y-%m-%d}", '',
             f"- card: {desc}", f"- driver: {driver}",
             f"- torch: {torch.__version__} (CUDA {torch.version.cuda}, cuDNN {cudnn}), Python {platform.python_version()}",
             f"- date: {date:%Y-%m-%d %H:%M} UTC; commit {commit}", f"- command: `{cmd}`",
             f"- mode: {'tiny (CPU dry run: shapes and code paths, not speeds)' if a.tiny else 'full'}; fp32 rows are true fp32 "
             f"(TF32 off); budgets (s): " + ', '.join(f"{k} {getattr(a, 'budget_' + k):.0f}" for k in SECTIONS)]
    return card, date, lines


def slug(s: str) -> str: return re.sub(r'[^a-z0-9]+', '-', s.lower()).strip('-')


PARTS = {'packages': part_packages, 'correctness': part_correctness, 'speed': part_speed, 'level': part_level,
         'memory': part_memory, 'figures': part_figures, 'rehearsal': part_rehearsal, 'torchrun': part_torchrun}
# default wall seconds of each part on a GPU; with --deadline (560 s by default there) they fit a 10-minute call
BUDGETS = {'packages': 20, 'correctness': 70, 'speed': 90, 'level': 20, 'memory': 25, 'figures': 230, 'rehearsal': 110,
           'torchrun': 40}
BUDGETS_TINY = {**BUDGETS, 'correctness': 160, 'speed': 160, 'level': 50, 'memory': 60, 'figures': 600, 'rehearsal': 400,
                'torchrun': 80}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--device', default='cuda', help="'cuda' (default), 'cuda:N' or 'cpu'")
    ap.add_argument('--tiny', action='store_true', help='the dry run: every part at toy sizes (seconds on a CPU)')
    ap.add_argument('--out', default=str(ROOT / 'bench' / 'results'),
                    help='a folder (the file is gpu-<card>-<date>.md there; cpu-dry-run-<date>.md on the CPU) or a .md file')
    ap.add_argument('--cpu-capture', action='store_true', help='on the CPU, also run the capture rows (an inductor compile)')
    ap.add_argument('--row-seconds', type=float, default=4.0, help='timed seconds a speed row aims at (after its warm-up)')
    ap.add_argument('--capture-seconds', type=float, default=90.0,
                    help='start a capture row only with this much of its part left (its compile is not cut off)')
    ap.add_argument('--level-seconds', type=float, default=20.0, help='timed seconds the partial level aims at')
    for k, v in BUDGETS.items():
        ap.add_argument(f'--budget-{k}', type=float, default=None,
                        help=f'wall seconds for the {k} part (default {v}; with --tiny {BUDGETS_TINY[k]})')
    ap.add_argument('--deadline', type=float, default=None,
                    help='wall seconds for the whole check (default 560 on a GPU, none with --tiny): a part gets at most '
                         'what is left, and the parts after it are reported as not run')
    ap.add_argument('--work', default=None, help='folder for the figure runs: store, executed notebooks, figures, logs '
                                                 '(default: a new temporary folder)')
    ap.add_argument('--only', default=None, help=f"comma-separated parts to run, from: {', '.join(BUDGETS)} (default: all)")
    a = ap.parse_args(argv)
    for k in BUDGETS:   # a busy CPU runs the dry run's notebooks slowly: its budgets are larger
        if getattr(a, 'budget_' + k) is None: setattr(a, 'budget_' + k, (BUDGETS_TINY if a.tiny else BUDGETS)[k])
    try:
        only = list(BUDGETS) if a.only is None else [x.strip() for x in a.only.split(',') if x.strip()]
        if not only or set(only) - set(BUDGETS):
            raise LotteryError(f"--only {a.only!r} is not allowed; name parts from {', '.join(BUDGETS)}.")
        if not re.fullmatch(r'cpu|cuda(:\d+)?', a.device):
            raise LotteryError(f"--device {a.device!r} is not allowed; use 'cuda', 'cuda:N' or 'cpu'.")
        dev = get_device(a.device)
        if dev.type == 'cuda' and a.tiny: raise LotteryError("--tiny is the CPU dry run; drop it on a GPU or use --device cpu.")
    except LotteryError as e:
        print(f"gpu_check: {e}", file=sys.stderr); return 2
    if dev.type == 'cuda' and dev.index is None: dev = torch.device('cuda', 0)
    if dev.type == 'cuda': torch.cuda.set_device(dev)
    defaults = f"PyTorch's TF32 defaults here: cuDNN {torch.backends.cudnn.allow_tf32}, matmul {torch.backends.cuda.matmul.allow_tf32}"
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.benchmark = False
    card, date, lines = header(dev, a)
    lines[-1] += f" ({defaults}; TrainOptions(tf32=False) leaves them as they are)"
    out = Path(a.out)
    if out.suffix != '.md':
        out = out / (f"gpu-{slug(card)}-{date:%Y-%m-%d}.md" if dev.type == 'cuda' else f"cpu-dry-run-{date:%Y-%m-%d}.md")
    rep = Report(out, lines)
    rep.data.update(card=card, date=f'{date:%Y-%m-%d}', device=dev.type, torch=torch.__version__, tiny=a.tiny)
    t0 = time.perf_counter()
    try: S = Setup(dev, a.tiny)
    except Exception as e:
        rep.header.append(f"- FAIL: the shared setup (data, ResNet-20, mask) stopped with {one_line(e)}; no part ran")
        rep.write(); print(rep.header[-1], file=sys.stderr, flush=True); return 1
    a.work = a.work or tempfile.mkdtemp(prefix='gpu_check_work_')
    Path(a.work).mkdir(parents=True, exist_ok=True)
    rep.header.append(f"- figure runs (store, executed notebooks, figures, logs): {a.work}")
    deadline = t0 + (a.deadline if a.deadline is not None else math.inf if a.tiny else 560)
    for name, fn in PARTS.items():
        if name not in only: continue
        left = deadline - time.perf_counter()
        run_part(rep, name, max(0.0, min(getattr(a, 'budget_' + name), left)), lambda p, fn=fn: fn(p, S), dev, a)
    rep.data['total_seconds'] = round(time.perf_counter() - t0, 1); rep.write()
    print(f"\nreport: {out} ({rep.data['total_seconds']:.0f} s)", flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
