"""Refresh the home page's gallery from the figures of the `cpu` main job.

`bash scripts/main.sh` (= `lottery figures --preset cpu`) writes `figures/cpu/<name>.png` in the project root. This
script copies every such PNG to `nbs/images/gallery/` (downscaled to at most --width pixels wide, palette PNG, so the
committed copies stay small), removes gallery images the job no longer writes, and rewrites the gallery cell of
`nbs/index.ipynb` (the markdown cell that starts with GALLERY_HEADING): one image per figure, each linking to its figure
notebook. Then run `python scripts/make_readme.py` (README.md is generated from index.ipynb).

    python scripts/gallery.py                      # from figures/cpu/
    python scripts/gallery.py --src /other/figures/cpu
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


def gallery_markdown(names) -> str:
    "The gallery cell: a two-column table of images, each linking to its figure notebook's page."
    cells = [f'[![{caption(n)}](images/gallery/{n})](figures/{FIGURES[figure_of(n)][0]})<br>{caption(n)}' for n in order(names)]
    if len(cells) % 2: cells.append(' ')
    rows = [f'| {a} | {b} |' for a, b in zip(cells[::2], cells[1::2])]
    return '\n'.join([GALLERY_HEADING, '',
                      'The figures of the `cpu` main job (`bash scripts/main.sh`: MNIST-1D, 4 seeds, on a laptop CPU), as it wrote them '
                      'to `figures/cpu/`; each links to its notebook, which states what the paper says and what this run measured.',
                      '', '| | |', '|---|---|', *rows])


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
    a = p.parse_args(argv)
    src = Path(a.src)
    pngs = sorted(q.name for q in src.glob('fig*.png'))
    if not pngs: raise SystemExit(f'gallery: no fig*.png in {src}; run `bash scripts/main.sh` first (it writes figures/cpu/).')
    for n in pngs: figure_of(n)
    DEST.mkdir(parents=True, exist_ok=True)
    for old in DEST.glob('*.png'):
        if old.name not in pngs: old.unlink()
    for n in pngs: shrink(src / n, DEST / n, a.width)
    write_index(gallery_markdown(pngs))
    for n in pngs: print(f'{DEST.relative_to(root) / n}: {(DEST / n).stat().st_size // 1024} KiB')
    print('gallery: updated nbs/index.ipynb; now run: python scripts/make_readme.py')


if __name__ == '__main__':
    sys.exit(main())
