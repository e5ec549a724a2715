"""The figure parts of bench/gpu_check.py: `lottery figures` end to end (the demonstration at scale) and the paper
presets on synthetic files in torchvision's on-disk CIFAR format (the rehearsal), each notebook timed.

The notebooks run in their own processes (`python -m lottery_nb.cli figures ...`, Jupyter kernels by papermill), with
the packages the GPU machine lacks taken from the wheels that bench/wheels.py prepares. Their verdicts are read from
the scrapbook outputs of the executed notebooks (plain JSON: no scrapbook import here) and set beside those of the
committed CPU run (nbs/figures/*.ipynb, the `cpu` gallery).
"""
import json, math, os, pickle, re, signal, subprocess, sys, time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SCRAP = 'application/scrapbook.scrap.json+json'

# the demonstration: `cpu_gpu32` as it is on a GPU; at --tiny size on the CPU (the same notebooks and code paths)
DEMO_TINY = ['--set', 'device=cpu', '--set', 'capture=none', '--seeds', '0,1', '--set', 'dense_seeds=2', '--levels', '1',
             '--rewind-steps', '0it,5it,10it', '--set', 'training_steps=40it', '--set', 'milestones=20it,30it',
             '--set', 'checkpoint_every=20it', '--set', 'group_size=8', '--set', 'data_kwargs={"num_test": 500}']
# the demonstration's Fig. 3 at --tiny size: a coarse plane (its own parameters: a `lottery figures` call of its own)
FIG3_TINY = ['--param', 'grid=9', '--param', 'plane_test_examples=200']
# the rehearsal: a shortened schedule of the paper presets (a few hundred steps on a GPU, one epoch on the CPU; Fig. 4
# needs at least one epoch of dense training); on the CPU Fig. 4 runs ResNet-20 on the CIFAR-100 files and its sweep
# tries one ratio (ResNet-18's 11 M weights take minutes of a CPU there: pruning and sweeps; the GPU runs ResNet-18)
FIG4_TINY = ['--set', 'model=resnet20', '--param', 'ratios=[0.5]', '--param', 'subsample=16']
REHEARSE = {False: dict(train=10240, test=2000, args=['--set', 'training_steps=300it', '--set', 'milestones=150it,225it',
                                                      '--rewind-steps', '0it,10it,50it', '--levels', '2',
                                                      '--set', 'checkpoint_every=100it', '--set', 'group_size=12']),
            True: dict(train=40, test=32, args=['--set', 'training_steps=5it', '--set', 'milestones=3it', '--seeds', '0,1',
                                                '--rewind-steps', '0it,1it', '--levels', '1', '--set', 'batch_size=8',
                                                '--set', 'eval_batch_size=32', '--set', 'checkpoint_every=5it',
                                                '--set', 'group_size=4'])}


# ---------------------------------------------------------------- synthetic CIFAR files, torchvision's format
def write_cifar(root: Path, which: str, n_train: int, n_test: int, seed: int = 0) -> Path:
    """`root/cifar-10-batches-py` (5 training batches, test_batch, batches.meta) or `root/cifar-100-python` (train,
    test, meta): pickles of uint8 pixels (N x 3072, channel-major) whose labels are a fixed random linear function of
    the pixels, so the loss falls. The real loader reads them (`lottery_nb.data.read_cifar_pickle`)."""
    rng = np.random.default_rng(seed)
    classes, key = (10, b'labels') if which == 'cifar10' else (100, b'fine_labels')
    x = rng.integers(0, 256, (n_train + n_test, 3072), dtype=np.uint8)
    w = rng.standard_normal((3072, classes)).astype(np.float32)
    y = ((x.astype(np.float32) / 255 - 0.5) @ w).argmax(1).tolist()
    folder = root / ('cifar-10-batches-py' if which == 'cifar10' else 'cifar-100-python')
    folder.mkdir(parents=True, exist_ok=True)
    def dump(name, lo, hi):
        d = {b'batch_label': name.encode(), b'data': x[lo:hi], key: y[lo:hi], b'filenames': [b'x.png'] * (hi - lo)}
        if which == 'cifar100': d[b'coarse_labels'] = [c // 5 for c in y[lo:hi]]
        with open(folder / name, 'wb') as f: pickle.dump(d, f)
    if which == 'cifar10':
        per = n_train // 5
        for i in range(5): dump(f'data_batch_{i + 1}', i * per, (i + 1) * per)
        dump('test_batch', n_train, n_train + n_test)
        meta = {b'label_names': [f'class{i}'.encode() for i in range(10)], b'num_cases_per_batch': per}
        with open(folder / 'batches.meta', 'wb') as f: pickle.dump(meta, f)
    else:
        dump('train', 0, n_train); dump('test', n_train, n_train + n_test)
        with open(folder / 'meta', 'wb') as f: pickle.dump({b'fine_label_names': [b'c'] * 100}, f)
    return folder


# ---------------------------------------------------------------- running `lottery figures`
def kernel_env(extra: dict | None = None) -> dict:
    "The environment of the figure runs: the repository on the path (before the wheels' site, when one is set)."
    env = {**os.environ, **(extra or {})}
    env['PYTHONPATH'] = os.pathsep.join([str(ROOT)] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep)
                                                       if p and Path(p).resolve() != ROOT])
    return env


def start(args: list, log: Path, env: dict) -> subprocess.Popen:
    "`python -m lottery_nb.cli figures ARGS` in its own process group, its output into `log`."
    cmd = [sys.executable, '-m', 'lottery_nb.cli', 'figures', *map(str, args)]
    log.parent.mkdir(parents=True, exist_ok=True)
    f = open(log, 'w'); f.write('$ ' + ' '.join(cmd) + '\n'); f.flush()
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    p.log_file = f
    return p


def finish(procs: list, timeout: float) -> list:
    "Wait for `procs` (at most `timeout` s in all); each one's exit status (None: stopped at the timeout)."
    deadline, out = time.perf_counter() + max(timeout, 1), []
    try:
        for p in procs:
            try: out.append(p.wait(timeout=max(deadline - time.perf_counter(), 0.1)))
            except subprocess.TimeoutExpired: stop(p); out.append(None)
    except BaseException:   # the part's budget (PartTimeout) or an interrupt: no figure run outlives it
        for p in procs: stop(p)
        raise
    finally:
        for p in procs: p.log_file.close()
    return out


def stop(p: subprocess.Popen):
    try: os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError: pass
    p.wait()


def notebook_times(log: Path) -> dict:
    "name -> (ok, seconds, error) from the summary `lottery figures` prints at its end."
    out = {}
    for m in re.finditer(r'^[ \t]+(fig\d)[ \t]+(ok|FAILED)[ \t]+([\d.]+) s[ \t]*(.*)$', log.read_text(errors='replace'), re.M):
        out[m.group(1)] = (m.group(2) == 'ok', float(m.group(3)), m.group(4).strip())
    return out


def executed(folder: Path, log: Path) -> dict:
    """name -> (ok, seconds, error) of the notebooks executed into `folder`, from the metadata papermill writes into each
    (ok None: started, not finished), with the error from the summary in `log` when the run got that far."""
    said, out = notebook_times(log) if Path(log).exists() else {}, {}
    for nb in sorted(Path(folder).glob('fig*.ipynb')):
        try: meta = json.loads(nb.read_text()).get('metadata', {}).get('papermill', {})
        except (OSError, ValueError): continue   # being written when the run was stopped
        n, dur = nb.stem.split('_')[0], meta.get('duration')
        out[n] = (None if dur is None else not meta.get('exception'), dur, said.get(n, (0, 0, ''))[2])
    return out


def log_tail(log: Path, n: int = 3) -> str:
    lines = [l.strip() for l in log.read_text(errors='replace').splitlines() if l.strip()]
    return ' / '.join(lines[-n:])[:300]


# ---------------------------------------------------------------- verdicts
def scraps(nb: Path) -> dict:
    "The scrapbook values an executed notebook recorded (name -> data), read as JSON."
    out = {}
    for c in json.loads(Path(nb).read_text()).get('cells', []):
        for o in c.get('outputs', []):
            d = o.get('data', {}).get(SCRAP)
            if d: out[d['name']] = d['data']
    return out


def verdicts(folder: Path) -> dict:
    "figure -> its list of verdicts (claim, verdict, margin, uncertainty, n, ...) from the executed notebooks."
    out = {}
    for nb in sorted(Path(folder).glob('fig*.ipynb')):
        v = scraps(nb).get('verdicts')
        if v: out[nb.stem.split('_')[0]] = v
    return out


def compare(gpu: dict, cpu: dict) -> list:
    "Rows where both runs decided (yes/no) the same figure's same claim (its place in the table) differently."
    bad = []
    for fig, vs in gpu.items():
        for i, v in enumerate(vs):
            c = cpu.get(fig, [])[i] if i < len(cpu.get(fig, [])) else None
            if c and {v['verdict'], c['verdict']} == {'yes', 'no'}: bad.append((fig, v['claim'], v['verdict'], c['verdict']))
    return bad


def verdict_table(gpu: dict, cpu: dict) -> list:
    "Markdown lines: every verdict of the run beside the committed CPU run's verdict of the same row."
    lines = ['| figure | claim | verdict here | margin ± uncertainty | n | CPU run (4 seeds) |', '|---|---|---|---|---|---|']
    for fig, vs in gpu.items():
        for i, v in enumerate(vs):
            c = cpu.get(fig, [])[i]['verdict'] if i < len(cpu.get(fig, [])) else '-'
            mu = (f"{v['margin']:.3g} ± {v['uncertainty']:.3g}" if isinstance(v.get('margin'), (int, float))
                  and isinstance(v.get('uncertainty'), (int, float)) and math.isfinite(v['margin']) else '-')
            lines.append(f"| {fig} | {v['claim']} | {v['verdict']} | {mu} | {v.get('n', '')} | {c} |")
    return lines
