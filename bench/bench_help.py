"""How long `lottery --help` (and each subcommand's --help) takes, against `python -c pass`.

A benchmark, not a test: run `python bench/bench_help.py` and read the ratio. The goal (issue 11) is under 2 s;
before the command line imported torch lazily, `lottery-imp --help` took 6-14 s on a 2-core machine.
"""
import statistics, subprocess, sys, time
from pathlib import Path

BIN = Path(sys.executable).parent

def best(cmd, n=5):
    "Median wall time of `n` runs of `cmd`, in seconds."
    ts = []
    for _ in range(n):
        t0 = time.perf_counter(); subprocess.run(cmd, capture_output=True, check=True); ts.append(time.perf_counter() - t0)
    return statistics.median(ts)

if __name__ == '__main__':
    base = best([sys.executable, '-c', 'pass'])
    print(f"python -c pass: {base:.3f} s")
    for args in (['--help'], ['imp', '--help'], ['adaptive', '--help'], ['figures', '--help'], ['--version']):
        t = best([str(BIN / 'lottery'), *args])
        print(f"lottery {' '.join(args):16s} {t:.3f} s  ({t / base:.1f} x python -c pass)")
