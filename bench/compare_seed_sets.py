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

NOTEBOOKS = ('fig2_connectivity', 'fig3_planes', 'fig4_adaptive', 'fig5_rewind')


def scraps(nb: Path) -> dict:
    "The scrapbook values an executed notebook glued, by name."
    cells = json.loads(nb.read_text())['cells']
    return {o['metadata']['scrapbook']['name']: o['data']['application/scrapbook.scrap.json+json']['data']
            for c in cells if c['cell_type'] == 'code' for o in c.get('outputs', [])
            if 'scrapbook' in o.get('metadata', {}) and 'application/scrapbook.scrap.json+json' in o.get('data', {})}


def rule(claim: str) -> str:
    """A claim's text without the levels the run chose, so that two runs' rows of one rule match: Fig. 5's contrast
    ("at level 4 (40.9% weights, the sparsest where rewind 150 clearly matches), ..." when decided, "where rewind 150 is
    still clearly matching, ..." when untestable) and Fig. 3's "level 8", "w^(8)"."""
    claim = re.sub(r'^at level \d+ \([\d.]+% weights, the sparsest where (rewind \d+) clearly matches\),',
                   r'where \1 is still clearly matching,', claim)
    return re.sub(r'\^\(\d+\)', '^(·)', re.sub(r'level \d+', 'level ·', claim)).strip()


def verdicts(folder: Path) -> dict:
    "(figure, rule) -> verdict dict, for every figure notebook in `folder`."
    out = {}
    for name in NOTEBOOKS:
        p = folder / f'{name}.ipynb'
        if not p.is_file(): raise SystemExit(f'compare_seed_sets: {p} is missing; run `lottery figures` into that folder first.')
        for v in scraps(p).get('verdicts', []): out[(name.split('_')[0], rule(v['claim']))] = v
    return out


def run_facts(folder: Path) -> str:
    "'seeds 0, 1, 2, 3; 16 dense runs' from the run's fig5 notebook."
    s = scraps(folder / 'fig5_rewind.ipynb')
    seeds, dense = s.get('seeds'), s.get('dense')
    return (f"seeds {', '.join(map(str, seeds))}" if seeds else 'seeds not recorded') + (f'; {dense[2]} dense runs' if dense else '')


def fig5_errors(a: Path, b: Path, labels) -> str:
    "How far apart the two runs' Fig. 5 curves are: per rewind step, the largest and the mean |difference| of the seed means."
    ea, eb = (scraps(f / 'fig5_rewind.ipynb').get('mean_test_error', {}) for f in (a, b))
    rows = [f'Fig. 5, seed-mean test error per level, {labels[0]} against {labels[1]} (points):']
    for r in ea:
        if r not in eb or len(ea[r]) != len(eb[r]): continue
        d = [100 * abs(x - y) for x, y in zip(ea[r], eb[r])]
        worst = max(range(len(d)), key=d.__getitem__)
        rows.append(f'- rewind {r}: mean |difference| {sum(d) / len(d):.2f}, largest {d[worst]:.2f} at level {worst} '
                    f'({100 * ea[r][worst]:.2f}% against {100 * eb[r][worst]:.2f}%)')
    da, db = (scraps(f / 'fig5_rewind.ipynb').get('dense') for f in (a, b))
    if da and db: rows.append(f'- dense: {100 * da[0]:.2f}% against {100 * db[0]:.2f}%, ε {100 * da[1]:.2f} against '
                              f'{100 * db[1]:.2f} points ({da[2]} and {db[2]} dense runs)')
    return '\n'.join(rows)


def power_lines(folder: Path, label: str) -> list:
    "The power table each notebook glued (`power`): what the observed spreads say an undecided row would need."
    rows = []
    for name in NOTEBOOKS:
        for r in scraps(folder / f'{name}.ipynb').get('power', []):
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
    A, B = verdicts(args.a), verdicts(args.b)
    keys = list(dict.fromkeys([*A, *B]))
    flips = [k for k in keys if {A.get(k, {}).get('verdict'), B.get(k, {}).get('verdict')} == {'yes', 'no'}]
    both = [k for k in keys if A.get(k, {}).get('verdict') in ('yes', 'no') and B.get(k, {}).get('verdict') in ('yes', 'no')]
    print(f'| figure | claim | {args.labels[0]} | {args.labels[1]} | flip |')
    print('|---|---|---|---|---|')
    for k in keys:
        print(f"| {k[0][3:]} | {k[1].replace('|', '/')} | {cell(A.get(k))} | {cell(B.get(k))} | {'**yes**' if k in flips else ''} |")
    print()
    print(f'{args.labels[0]}: {run_facts(args.a)}. {args.labels[1]}: {run_facts(args.b)}.')
    print()
    print(fig5_errors(args.a, args.b, args.labels))
    print()
    print('What each run\'s power table says an undecided row needs (at its own spreads; spreads of few seeds are uncertain):')
    print()
    print('| figure | claim | run | needs |')
    print('|---|---|---|---|')
    for label, folder in zip(args.labels, (args.a, args.b)): print('\n'.join(power_lines(folder, label)))
    print()
    decided = lambda V: sum(v['verdict'] in ('yes', 'no') for v in V.values())
    print(f'Decided rows: {decided(A)} of {len(A)} and {decided(B)} of {len(B)}; decided in both: {len(both)}; '
          f'yes/no flips: {len(flips)}.')
    return 1 if flips else 0


if __name__ == '__main__':
    sys.exit(main())
