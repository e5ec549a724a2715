"""Compare the verdicts of two runs of the figure notebooks, e.g. the `cpu` main job on two disjoint seed sets.

Each run is a folder of executed figure notebooks (`lottery figures` writes them to `<out>/<preset>/notebooks/`). The
script reads the verdict rows each notebook glued with scrapbook (`verdicts`, and the seeds and dense runs of fig5) and
prints a Markdown table: one row per claim, each run's verdict with its margin and 90% uncertainty, and whether the two
runs *flip* (one says yes where the other says no), then how far apart their Fig. 5 curves are (the same seeds on two
CPUs: how much the figures vary between machines). Rows that name a level chosen by the run itself (e.g. Fig. 5's
"at level 4 ...") are matched by their claim text with the level taken out, so the same rule on two runs is one row.

    python bench/compare_seed_sets.py figures/cpu/notebooks /tmp/B/figures/cpu/notebooks --labels "seeds 0-7" "seeds 8-15"

Exit status 1 when a row flips between yes and no, else 0.
"""
import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_figures import scraps   # noqa: E402  (the one reader of a notebook's scrapbook values)

NOTEBOOKS = ('fig2_connectivity', 'fig3_planes', 'fig4_adaptive', 'fig5_rewind')


def rule(claim: str) -> str:
    """A claim's text without the levels the run chose, so that two runs' rows of one rule match: Fig. 5's contrast
    ("at level 4 (40.9% weights, the sparsest where rewind 150 clearly matches), ..." when decided, "where rewind 150 is
    still clearly matching, ..." when untestable) and Fig. 3's "level 8", "w^(8)"."""
    claim = re.sub(r'^at level \d+ \([\d.]+% weights, the sparsest where (rewind \d+) clearly matches\),',
                   r'where \1 is still clearly matching,', claim)
    return re.sub(r'\^\(\d+\)', '^(·)', re.sub(r'level \d+', 'level ·', claim)).strip()


def read_run(folder: Path) -> dict:
    "notebook name -> its scrapbook values, each executed figure notebook in `folder` read once."
    out = {}
    for name in NOTEBOOKS:
        p = folder / f'{name}.ipynb'
        if not p.is_file(): raise SystemExit(f'compare_seed_sets: {p} is missing; run `lottery figures` into that folder first.')
        out[name] = scraps(p)
    return out


def verdicts(run: dict) -> dict:
    "(figure, rule) -> verdict dict, for every figure notebook of the run (`read_run`)."
    return {(name.split('_')[0], rule(v['claim'])): v for name in NOTEBOOKS for v in run[name].get('verdicts', [])}


def run_facts(run: dict) -> str:
    "'seeds 0, 1, 2, 3; 16 dense runs' from the run's fig5 notebook."
    s = run['fig5_rewind']
    seeds, dense = s.get('seeds'), s.get('dense')
    return (f"seeds {', '.join(map(str, seeds))}" if seeds else 'seeds not recorded') + (f'; {dense[2]} dense runs' if dense else '')


def fig5_errors(a: dict, b: dict, labels) -> str:
    "How far apart the two runs' Fig. 5 curves are: per rewind step, the largest and the mean |difference| of the seed means."
    ea, eb = (r['fig5_rewind'].get('mean_test_error', {}) for r in (a, b))
    rows = [f'Fig. 5, seed-mean test error per level, {labels[0]} against {labels[1]} (points):']
    for r in ea:
        if r not in eb or len(ea[r]) != len(eb[r]): continue
        d = [100 * abs(x - y) for x, y in zip(ea[r], eb[r])]
        worst = max(range(len(d)), key=d.__getitem__)
        rows.append(f'- rewind {r}: mean |difference| {sum(d) / len(d):.2f}, largest {d[worst]:.2f} at level {worst} '
                    f'({100 * ea[r][worst]:.2f}% against {100 * eb[r][worst]:.2f}%)')
    da, db = (r['fig5_rewind'].get('dense') for r in (a, b))
    if da and db: rows.append(f'- dense: {100 * da[0]:.2f}% against {100 * db[0]:.2f}%, ε {100 * da[1]:.2f} against '
                              f'{100 * db[1]:.2f} points ({da[2]} and {db[2]} dense runs)')
    return '\n'.join(rows)


def power_lines(run: dict, label: str) -> list:
    "The power table each notebook glued (`power`): what the observed spreads say an undecided row would need."
    rows = []
    for name in NOTEBOOKS:
        for r in run[name].get('power', []):
            lo, hi = r['seeds_range']
            top = hi if hi else f"over {r['max_seeds']}"
            need = (f"{r['seeds_needed']} seeds ({lo}-{top})" if r['seeds_needed']
                    else f"{r['dense_runs_needed']} dense runs" if r['dense_runs_needed']
                    else f"not within {r['max_seeds']} seeds and {r['max_dense']} dense runs")
            rows.append(f"| {name[3:4]} | {rule(r['claim']).replace('|', '/')} | {label} | {need} |")
    return rows


def cell(v: dict | None) -> str:
    "A verdict with its margin ± uncertainty, in its unit."
    if v is None: return '–'
    if v['verdict'] == 'untestable': return f"untestable ({v.get('why') or 'no reason given'})"
    k, u = {'error': (100, ' pts'), 'share': (100, '%')}.get(v['unit'], (1, ' ' + v['unit']))
    return f"{v['verdict']} ({k * v['margin']:+.2f} ± {k * v['uncertainty']:.2f}{u})"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('a', type=Path, help='executed figure notebooks of the first run')
    p.add_argument('b', type=Path, help='executed figure notebooks of the second run')
    p.add_argument('--labels', nargs=2, default=('run A', 'run B'), help='column headings')
    args = p.parse_args(argv)
    runs = read_run(args.a), read_run(args.b)
    A, B = verdicts(runs[0]), verdicts(runs[1])
    keys = list(dict.fromkeys([*A, *B]))
    flips = [k for k in keys if {A.get(k, {}).get('verdict'), B.get(k, {}).get('verdict')} == {'yes', 'no'}]
    both = [k for k in keys if A.get(k, {}).get('verdict') in ('yes', 'no') and B.get(k, {}).get('verdict') in ('yes', 'no')]
    print(f'| figure | claim | {args.labels[0]} | {args.labels[1]} | flip |')
    print('|---|---|---|---|---|')
    for k in keys:
        print(f"| {k[0][3:]} | {k[1].replace('|', '/')} | {cell(A.get(k))} | {cell(B.get(k))} | {'**yes**' if k in flips else ''} |")
    print()
    print(f'{args.labels[0]}: {run_facts(runs[0])}. {args.labels[1]}: {run_facts(runs[1])}.')
    print()
    print(fig5_errors(*runs, args.labels))
    print()
    print('What each run\'s power table says an undecided row needs (at its own spreads; spreads of few seeds are uncertain):')
    print()
    print('| figure | claim | run | needs |')
    print('|---|---|---|---|')
    for label, run in zip(args.labels, runs): print('\n'.join(power_lines(run, label)))
    print()
    decided = lambda V: sum(v['verdict'] in ('yes', 'no') for v in V.values())
    print(f'Decided rows: {decided(A)} of {len(A)} and {decided(B)} of {len(B)}; decided in both: {len(both)}; '
          f'yes/no flips: {len(flips)}.')
    return 1 if flips else 0


if __name__ == '__main__':
    sys.exit(main())
