"""Refresh the home page's gallery from the figures of the `cpu` main job.

`bash scripts/main.sh` (= `lottery figures --preset cpu`) writes `figures/cpu/<name>.png` in the project root. This
script copies every such PNG to `nbs/images/gallery/` (downscaled to at most --width pixels wide, palette PNG, so the
committed copies stay small), removes gallery images the job no longer writes, and rewrites the gallery cell of
`nbs/index.ipynb` (the markdown cell that starts with GALLERY_HEADING): one image per figure, each linking to its figure
notebook. Then run `python scripts/make_readme.py` (README.md is generated from index.ipynb).

With the job's executed notebooks beside the PNGs (`<src>/notebooks/`, as `lottery figures` writes them), the cell
also says what the run was (seeds, dense runs: read from the notebooks' scrapbook values, never typed), whether Fig. 4's
adaptive schedule ever left fixed IMP's ratio, and a table of every "paper says / this run measured" verdict.
`--compare DIR --compare-label TEXT` adds a second verdict column from another run's executed notebooks (e.g. the GPU
demonstration's, committed under bench/results/).

    python scripts/gallery.py                      # from figures/cpu/
    python scripts/gallery.py --src /other/figures/cpu
    python scripts/gallery.py --src /fresh/clone/figures/cpu --notebooks   # and the executed notebooks into nbs/figures/
"""
import argparse
import json
import re
import sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent
DEST = root / 'nbs' / 'images' / 'gallery'
INDEX = root / 'nbs' / 'index.ipynb'
GALLERY_HEADING = '### Gallery'
# figure name -> (figure notebook, caption); an image `<name>.png` or `<name>_<more>.png` belongs to figure <name>
FIGURES = {'fig1': ('fig1_schematic.ipynb', "Fig. 1: IMP's nested axial subspaces, computed on a 3-weight network"),
           'fig2': ('fig2_connectivity.ipynb', 'Fig. 2: error along the path through successive IMP solutions, per rewind step'),
           'fig3': ('fig3_planes.ipynb', 'Fig. 3: the error plane of an IMP step: a solution, its projection and the next solution'),
           'fig4': ('fig4_adaptive.ipynb', 'Fig. 4: adaptive pruning ratio against fixed 20% IMP'),
           'fig5': ('fig5_rewind.ipynb', 'Fig. 5: test error against weights remaining per rewind step')}
EXTRA_CAPTIONS = {'fig3_all_levels': 'Figs. 7-8: the error plane of every level'}


def figure_of(png: str) -> str:
    "The figure an image file name belongs to ('fig3_all_levels.png' -> 'fig3')."
    m = re.match(r'^(fig\d+)(_\w+)?\.png$', png)
    if not m or m.group(1) not in FIGURES: raise SystemExit(f'gallery: {png!r} is not the image of a known figure ({", ".join(FIGURES)})')
    return m.group(1)


def order(names) -> list:
    "Image names in figure order, each figure's main image first."
    return sorted(names, key=lambda n: (int(re.match(r'fig(\d+)', n).group(1)), n != f'{figure_of(n)}.png', n))


def caption(png: str) -> str:
    stem = png[:-4]
    return EXTRA_CAPTIONS.get(stem) or (FIGURES[stem][1] if stem in FIGURES else stem)


def scraps(nb_dir) -> dict:
    "figure name -> its scrapbook values, from the executed notebooks in `nb_dir` ({} when there are none)."
    out = {}
    if nb_dir is None or not Path(nb_dir).is_dir(): return out
    for fig, (nb, _) in FIGURES.items():
        p = Path(nb_dir) / nb
        if not p.is_file(): continue
        cells = json.loads(p.read_text())['cells']
        out[fig] = {o['metadata']['scrapbook']['name']: o['data']['application/scrapbook.scrap.json+json']['data']
                    for c in cells if c['cell_type'] == 'code' for o in c.get('outputs', [])
                    if 'scrapbook' in o.get('metadata', {}) and 'application/scrapbook.scrap.json+json' in o.get('data', {})}
    return out


def seeds_text(s: dict) -> str:
    "'4 seeds (0-3), 16 dense runs' from the run's scraps; '' when they are not there."
    seeds, dense = s.get('fig5', {}).get('seeds'), s.get('fig5', {}).get('dense')
    if not seeds: return ''
    rng = f'{min(seeds)}-{max(seeds)}' if seeds == list(range(min(seeds), max(seeds) + 1)) and len(seeds) > 1 else ', '.join(map(str, seeds))
    return f"{len(seeds)} seed{'s' * (len(seeds) != 1)} ({rng})" + (f", {dense[2]} dense run{'s' * (dense[2] != 1)}" if dense else '')


def fig4_note(s: dict) -> str:
    "A sentence for Fig. 4's caption when the adaptive schedule kept fixed IMP's ratio at every level of every seed."
    f4 = s.get('fig4', {})
    if f4.get('same_schedule'):
        return (f" On this run the heuristic never left the {100 * f4['prune_fraction']:.0f}% floor: the adaptive schedule "
                'is fixed IMP at every level of every seed, so the two curves are one.')
    return ''


def fmt_margin(v: dict) -> str:
    "A verdict's margin ± uncertainty in its unit, as the figure notebooks' tables print them."
    if v['verdict'] in ('untestable',): return v['verdict'] + (f": {v['why']}" if v.get('why') else '')
    k, u = {'error': (100, ' pts'), 'share': (100, '%')}.get(v['unit'], (1, ' ' + v['unit']))
    return f"{v['verdict']} ({k * v['margin']:+.2f} ± {k * v['uncertainty']:.2f}{u})"


def verdict_table(s: dict, other: dict | None = None, label: str = 'this run', other_label: str = 'compared run') -> list:
    "Markdown lines: every verdict row of the run (figure, claim, verdict with margin), with an optional second run."
    rows = [(fig, v) for fig in FIGURES for v in s.get(fig, {}).get('verdicts', [])]
    if not rows: return []
    find = lambda fig, claim: next((w for w in (other or {}).get(fig, {}).get('verdicts', []) if w['claim'] == claim), None)
    head = f'| figure | claim | {label} |' + (f' {other_label} |' if other is not None else '')
    lines = [head, '|---|---|---|' + ('---|' if other is not None else '')]
    for fig, v in rows:
        cell = f"| {fig[3:]} | {v['claim'].replace('|', '/')} | {fmt_margin(v)} |"
        if other is not None: w = find(fig, v['claim']); cell += f" {fmt_margin(w) if w else '–'} |"
        lines.append(cell)
    n = {k: sum(v['verdict'] == k for _, v in rows) for k in ('yes', 'no', 'undecided', 'untestable', 'by construction')}
    lines += ['', f"{len(rows)} rows on this run: " + ', '.join(f'{c} {k}' for k, c in n.items()) + '.']
    return lines


def executed_into_repo(nb_dir: Path) -> list:
    ("Copy the job's executed figure notebooks over nbs/figures/ (their outputs are what a reader sees), without "
     "papermill's injected-parameters cell and metadata; refused when a notebook's code is not this checkout's.")
    done = []
    for nb_name, _ in FIGURES.values():
        src, dst = Path(nb_dir) / nb_name, root / 'nbs' / 'figures' / nb_name
        if not src.is_file(): continue
        nb = json.loads(src.read_text())
        nb['cells'] = [c for c in nb['cells'] if 'injected-parameters' not in c.get('metadata', {}).get('tags', [])]
        code = lambda n: [''.join(c['source']) for c in n['cells']]
        if code(nb) != code(json.loads(dst.read_text())):
            raise SystemExit(f'gallery: {src} was executed from other notebook code than {dst}; run the main job on '
                             'this checkout first.')
        nb['metadata'].pop('papermill', None)
        for c in nb['cells']:
            for k in ('papermill', 'execution'): c.get('metadata', {}).pop(k, None)
        dst.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')
        done.append(dst)
    return done


def gallery_markdown(names, s: dict | None = None, other: dict | None = None, other_label: str = 'compared run') -> str:
    "The gallery cell: a two-column table of images, each linking to its figure notebook's page, then the verdicts."
    s = s or {}
    cap = lambda n: caption(n) + (fig4_note(s) if n == 'fig4.png' else '')
    cells = [f'[![{caption(n)}](images/gallery/{n})](figures/{FIGURES[figure_of(n)][0]})<br>{cap(n)}' for n in order(names)]
    if len(cells) % 2: cells.append(' ')
    rows = [f'| {a} | {b} |' for a, b in zip(cells[::2], cells[1::2])]
    what = seeds_text(s)
    table = verdict_table(s, other, 'this run (`cpu`)', other_label)
    return '\n'.join([GALLERY_HEADING, '',
                      f"The figures of the `cpu` main job (`bash scripts/main.sh`: MNIST-1D{', ' + what if what else ''}, on a laptop CPU), "
                      'as it wrote them to `figures/cpu/`; each links to its notebook, which states what the paper says and what this '
                      'run measured.',
                      '', '| | |', '|---|---|', *rows]
                     + (['', '#### What this run decides', '',
                         'Every "paper says / this run measured" row of the figure notebooks, with its margin and 90% uncertainty '
                         '(a row is yes or no only when its whole interval is on one side; each notebook\'s power table says how '
                         'many seeds an undecided row would need).', '', *table] if table else []))


def shrink(src: Path, dst: Path, width: int):
    "Copy a PNG, at most `width` pixels wide, as an optimised palette PNG."
    from PIL import Image
    im = Image.open(src).convert('RGB')
    if im.width > width: im = im.resize((width, round(im.height * width / im.width)), Image.LANCZOS)
    im.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(dst, optimize=True)


def write_index(md: str):
    "Replace the gallery cell of index.ipynb (nbdev_clean's format: sorted keys, indent 1)."
    nb = json.loads(INDEX.read_text())
    cells = [c for c in nb['cells'] if c['cell_type'] == 'markdown' and ''.join(c['source']).startswith(GALLERY_HEADING)]
    if len(cells) != 1: raise SystemExit(f'gallery: {INDEX} needs exactly one markdown cell starting with {GALLERY_HEADING!r}, found {len(cells)}')
    cells[0]['source'] = md.splitlines(keepends=True)
    INDEX.write_text(json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + '\n')


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--src', default=str(root / 'figures' / 'cpu'), help='folder of the main job\'s PNGs (default: figures/cpu)')
    p.add_argument('--width', type=int, default=900, help='largest width in pixels (default 900)')
    p.add_argument('--notebooks', action='store_true',
                   help="also copy the job's executed notebooks (<src>/notebooks/) over nbs/figures/ (then run nbdev_clean)")
    p.add_argument('--compare', help="another run's executed figure notebooks, for a second verdict column")
    p.add_argument('--compare-label', default='compared run', help='the heading of that column')
    a = p.parse_args(argv)
    src = Path(a.src)
    pngs = sorted(q.name for q in src.glob('fig*.png'))
    if not pngs: raise SystemExit(f'gallery: no fig*.png in {src}; run `bash scripts/main.sh` first (it writes figures/cpu/).')
    for n in pngs: figure_of(n)
    DEST.mkdir(parents=True, exist_ok=True)
    for old in DEST.glob('*.png'):
        if old.name not in pngs: old.unlink()
    for n in pngs: shrink(src / n, DEST / n, a.width)
    other = scraps(a.compare) if a.compare else None
    if a.compare and not other: raise SystemExit(f'gallery: no executed figure notebooks in {a.compare}')
    write_index(gallery_markdown(pngs, scraps(src / 'notebooks'), other, a.compare_label))
    for n in pngs: print(f'{DEST.relative_to(root) / n}: {(DEST / n).stat().st_size // 1024} KiB')
    if a.notebooks:
        for d in executed_into_repo(src / 'notebooks'): print(f'{d.relative_to(root)}: the executed notebook')
    print('gallery: updated nbs/index.ipynb; now run: python scripts/make_readme.py')


if __name__ == '__main__':
    sys.exit(main())
