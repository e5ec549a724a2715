"""ε on the cpu preset from its 16 dense runs (replicates 0-3 and 12 derived seeds), and how often 4-run intervals cover it.
Usage: python bench/measure_epsilon.py [STORE]  (trains the 16 dense runs of `cpu` if they are not stored)."""
import itertools, sys, time
import numpy as np
from lottery_nb.config import get_preset
from lottery_nb.imp import run_imp, dense_seed_list
from lottery_nb.claims import epsilon_interval, dense_epsilon, bootstrap_margin
t = time.time()
cfg = get_preset('cpu', levels=0, rewind_steps=('150it',))
exp = run_imp(cfg, sys.argv[1] if len(sys.argv) > 1 else 'runs', progress=False)
seeds = dense_seed_list(cfg)
e = np.array([exp.metrics(s, 0, 0)['test_error'] for s in seeds])
print(f"trained/read in {time.time() - t:.0f}s; dense errors (%): {np.round(100 * e, 2).tolist()}")
s16, (lo, hi) = dense_epsilon(e), epsilon_interval(e)
print(f"16 runs: mean {100 * e.mean():.2f}%, eps {100 * s16:.3f} pts, 90% chi2 interval {100 * lo:.3f}-{100 * hi:.3f}")
print(f"replicates 0-3 alone: eps {100 * dense_epsilon(e[:4]):.3f} pts, interval {' - '.join(f'{100 * x:.3f}' for x in epsilon_interval(e[:4]))}")
subs = list(itertools.combinations(range(16), 4))
ch = bo = 0; eps4 = []
for k, c in enumerate(subs):
    d = e[list(c)]; eps4.append(dense_epsilon(d))
    l, h = epsilon_interval(d); ch += l <= s16 <= h
    bl, bh = bootstrap_margin(lambda x: np.std(x, ddof=1), d, n_boot=500, seed=k); bo += bl <= s16 <= bh
eps4 = np.array(eps4)
print(f"{len(subs)} 4-run subsets: eps from {100 * eps4.min():.3f} to {100 * eps4.max():.3f} pts (median {100 * np.median(eps4):.3f}); "
      f"the 16-run eps lies in the chi-square interval of {100 * ch / len(subs):.0f}% of them, in the bootstrap interval of {100 * bo / len(subs):.0f}%")
