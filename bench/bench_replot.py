"""Re-plotting a finished store: the old path (a checkout before the change, e.g. /work/main) against this checkout,
on a copy of the same store, in the same run (issue 26, item 4).

What it times, each in a fresh process (as a figure notebook's kernel is), alternating old and new:
- `run_imp` on the filled store (the call only, imports excluded), then `results()`;
- with `--figures`, `lottery figures --only fig5` end to end (kernel start, the notebook, the figure).

The old path loads (for MNIST-1D: generates) the data set in every process before it reads the store; this one reads
a finished run without it, from the facts `lottery_nb.store.remember_data` keeps (a first process that loads the data
set keeps them: the `cold` line). The store is copied first (`cp -a`), so the original is never written.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_replot.py --store /work/stores/cpu --old /work/main --rounds 3
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CALL = r'''
import json, sys, time
t0 = time.perf_counter()
from lottery_nb.config import get_preset
from lottery_nb.imp import run_imp
t1 = time.perf_counter()
exp = run_imp(get_preset(sys.argv[2]), sys.argv[1], progress=False)
t2 = time.perf_counter()
rows = exp.results()
t3 = time.perf_counter()
print(json.dumps({'import': t1 - t0, 'run_imp': t2 - t1, 'results': t3 - t2, 'rows': len(rows)}))
'''


def venv_bin(checkout: Path) -> Path:
    return Path(checkout) / '.venv' / 'bin'


def call(checkout: Path, store: Path, preset: str, env: dict) -> dict:
    "One fresh process: import, `run_imp` on the filled store, `results()`; seconds of each and the wall time."
    t = time.perf_counter()
    r = subprocess.run([str(venv_bin(checkout) / 'python'), '-c', CALL, str(store), preset], capture_output=True,
                       text=True, env=env, cwd=str(checkout))
    if r.returncode: raise SystemExit(f'{checkout}: run_imp failed:\n{r.stderr[-3000:]}')
    return {**json.loads(r.stdout.strip().splitlines()[-1]), 'process': time.perf_counter() - t}


def figure(checkout: Path, store: Path, preset: str, env: dict) -> float:
    "Seconds of `lottery figures --only fig5` on the filled store (the figure into a throw-away folder)."
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        r = subprocess.run([str(venv_bin(checkout) / 'lottery'), 'figures', '--preset', preset, '--only', 'fig5',
                            '--store', str(store), '--out', out, '--no-progress'], capture_output=True, text=True,
                           env=env, cwd=str(checkout))
        if r.returncode: raise SystemExit(f'{checkout}: lottery figures failed:\n{r.stdout[-2000:]}{r.stderr[-2000:]}')
        return time.perf_counter() - t


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--store', default='/work/stores/cpu', help='a filled store (copied first, never written)')
    p.add_argument('--preset', default='cpu')
    p.add_argument('--old', default='/work/main', help='the checkout of the old path (its .venv runs it)')
    p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--figures', action='store_true', help='also time `lottery figures --only fig5`')
    a = p.parse_args()
    old, new = Path(a.old).resolve(), ROOT
    work = Path(tempfile.mkdtemp(prefix='bench_replot_'))
    store = work / 'store'
    subprocess.run(['cp', '-a', str(Path(a.store)), str(store)], check=True)
    env = {**os.environ, 'OMP_NUM_THREADS': os.environ.get('OMP_NUM_THREADS', '1'), 'MPLBACKEND': 'Agg',
           'LOTTERY_CACHE': str(work / 'cache')}
    print(f'store {a.store} (copy in {store}), preset {a.preset}; old path: {old}; new path: {new}; '
          f'{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}')
    cold = call(new, store, a.preset, env)   # the first process loads the data set once and keeps its facts
    print(f"cold (new path, data set not seen yet): run_imp {cold['run_imp']:.2f} s")
    res = {'old': [], 'new': []}
    figs = {'old': [], 'new': []}
    for i in range(a.rounds):
        for name, co in (('old', old), ('new', new)) if i % 2 == 0 else (('new', new), ('old', old)):
            res[name].append(call(co, store, a.preset, env))
            if a.figures: figs[name].append(figure(co, store, a.preset, env))
        print(f"round {i + 1}: " + '; '.join(f"{n} run_imp {res[n][-1]['run_imp']:.2f} s, results "
                                             f"{res[n][-1]['results']:.2f} s, process {res[n][-1]['process']:.1f} s"
                                             + (f", fig5 {figs[n][-1]:.1f} s" if a.figures else '')
                                             for n in ('old', 'new')), flush=True)
    assert res['old'][0]['rows'] == res['new'][0]['rows'], 'old and new read different rows'
    med = lambda xs: statistics.median(xs)
    for what, get in (('run_imp', lambda r: r['run_imp']), ('run_imp + results', lambda r: r['run_imp'] + r['results']),
                      ('whole process (import included)', lambda r: r['process'])):
        o, n = med([get(r) for r in res['old']]), med([get(r) for r in res['new']])
        print(f"{what:32s} old {o:7.2f} s   new {n:7.2f} s   ratio old/new {o / n:6.1f}   ({a.rounds} rounds, median)")
    if a.figures:
        o, n = med(figs['old']), med(figs['new'])
        print(f"{'lottery figures --only fig5':32s} old {o:7.2f} s   new {n:7.2f} s   ratio old/new {o / n:6.1f}")
    print(f"rows read: {res['new'][0]['rows']}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
