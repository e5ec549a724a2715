"""Write README.md from nbs/index.ipynb without Quarto (nbdev_readme needs Quarto).

Markdown cells are copied, with relative link and image targets made relative to the repository root (index.ipynb
lives in nbs/: `images/gallery/fig5.png` becomes `nbs/images/gallery/fig5.png`); code cells become ```python blocks
without their `#|` directives; cells marked `#| hide` are left out. `python scripts/make_readme.py --check` exits 1 when README.md is stale.

GPU times are never typed in: the block between the `gpu-times` markers of nbs/index.ipynb is made by `gpu_times()`
from the newest GPU check results (`bench/results/gpu-<card>-<date>.md`, written by `bench/gpu_check.py`), naming the
card and the date, or says "not measured on a GPU yet" when there is none. Running this script rewrites that block in
nbs/index.ipynb too; `--check` also fails when the block is not the one the newest results give.
"""
import json
import re
import sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent
RESULTS = root / 'bench' / 'results'
BEGIN = '<!-- gpu-times: made by scripts/make_readme.py from the newest bench/results/gpu-*.md; do not edit -->'
END = '<!-- /gpu-times -->'
RUN = 'PYTHONPATH=. python3 bench/gpu_check.py'


def gpu_results(folder: Path = RESULTS) -> dict | None:
    "The results of the newest GPU check in `folder` (newest date in the name `gpu-<card>-<date>.md`) plus its `file`; None if none."
    def date(p):
        m = re.search(r'(\d{4}-\d{2}-\d{2})\.md$', p.name)
        return (m.group(1) if m else '', p.name)
    for p in sorted(Path(folder).glob('gpu-*.md'), key=date, reverse=True):
        m = re.search(r'<!-- gpu_check results: (.*) -->', p.read_text())
        if not m: continue
        d = json.loads(m.group(1))
        if d.get('device') == 'cuda' and not d.get('tiny'):
            return {**d, 'file': p.relative_to(root).as_posix() if p.is_relative_to(root) else str(p)}
    return None


def gpu_times(folder: Path = RESULTS) -> str:
    "Markdown sentences on GPU speed and time: the newest GPU check's numbers with its card and date, or 'not measured on a GPU yet'."
    d = gpu_results(folder)
    if d is None:
        return ("Speed and time on a GPU: **not measured on a GPU yet**. `bench/gpu_check.py` measures them in under 8 "
                f"minutes on one GPU, without a data set (`{RUN}`); it writes `bench/results/gpu-<card>-<date>.md`, and "
                "`python scripts/make_readme.py` then puts its numbers here.")
    sp, lv = d.get('speed', {}), d.get('level') or {}
    naive = sp.get('r20_naive', {}).get('images_per_s')
    def rate(key, what):
        r = sp.get(key)
        if not r: return f'{what}: not measured (that row did not run; see the file)'
        x = f" ({r['images_per_s'] / naive:.2f}x the naive DataLoader loop's images/s)" if naive else ''
        return f"{what}: {r['steps_per_s']:.1f} steps/s per run, {r['images_per_s']:,.0f} images/s{x}"
    parts = [rate('r20_ours', 'ResNet-20 one run at a time'), rate('r20_group12', 'ResNet-20 in a group of 12 runs')]
    if sp.get('r20_capture'): parts.append(rate('r20_capture', 'ResNet-20 with capture'))
    if sp.get('r18_ours'): parts.append(f"ResNet-18 (CIFAR-100 shape): {1e3 / sp['r18_ours']['steps_per_s']:.1f} ms/step")
    if sp.get('r50_ours'):
        r = sp['r50_ours']; parts.append(f"ResNet-50 (224x224, batch {r['batch']}): {r['images_per_s']:,.0f} images/s")
    text = (f"Measured by `bench/gpu_check.py` on one {d['card']} on {d['date']} (`{d['file']}`, torch {d.get('torch', '?')}, "
            f"fp32, batch 128): " + '; '.join(parts) + '.')
    if lv.get('level_hours'):
        text += (f" Projected from the measured rates (not measured end to end; evaluation and pruning left out): one level "
                 f"of 62,400 steps for the 12 runs of a level trained as one group, {lv['level_hours']:.1f} h; the whole "
                 f"CIFAR-10 suite of Fig. 2 ({lv['suite_steps'] / 1e6:.1f} M steps), {lv['suite_hours']:.0f} h on one GPU")
        text += (f" ({lv['one_by_one_suite_hours']:.0f} h with the runs one at a time)." if lv.get('one_by_one_suite_hours') else '.')
    return text


def with_gpu_times(md: str, folder: Path = RESULTS) -> str:
    "`md` with the block between the gpu-times markers made anew (unchanged when it has no markers)."
    if BEGIN not in md: return md
    a, b = md.index(BEGIN) + len(BEGIN), md.index(END)
    return md[:a] + '\n' + gpu_times(folder) + '\n' + md[b:]


def update_index(folder: Path = RESULTS) -> bool:
    "Rewrite the gpu-times block of nbs/index.ipynb from the newest results; True when it changed."
    path = root / 'nbs' / 'index.ipynb'
    nb = json.loads(path.read_text()); changed = False
    for c in nb['cells']:
        src = ''.join(c['source'])
        if c['cell_type'] == 'markdown' and BEGIN in src:
            new = with_gpu_times(src, folder)
            if new != src: c['source'] = new.splitlines(True); changed = True
    if changed: path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')
    return changed


def from_root(md: str) -> str:
    "Markdown of nbs/index.ipynb with its relative link targets `](x)` rewritten as `](nbs/x)` (URLs and anchors kept)."
    return re.sub(r'\]\((?![a-z][a-z0-9+.-]*:|#|/)([^)\s]+)\)', r'](nbs/\1)', md)


def render() -> str:
    nb = json.loads((root / 'nbs' / 'index.ipynb').read_text())
    parts = []
    for c in nb['cells']:
        src = ''.join(c['source'])
        lines = src.splitlines()
        if any(l.replace(' ', '') in ('#|hide', '#|exporti') for l in lines): continue
        if c['cell_type'] == 'markdown': parts.append(from_root(with_gpu_times(src).strip()))
        elif c['cell_type'] == 'code':
            body = '\n'.join(l for l in lines if not l.startswith('#|')).strip()
            if body: parts.append(f'```python\n{body}\n```')
    return '\n\n'.join(parts) + '\n'


if __name__ == '__main__':
    text, out = render(), root / 'README.md'
    if '--check' in sys.argv:
        index = (root / 'nbs' / 'index.ipynb').read_text()
        stale_index = any(with_gpu_times(''.join(c['source'])) != ''.join(c['source'])
                          for c in json.loads(index)['cells'] if c['cell_type'] == 'markdown')
        if not out.exists() or out.read_text() != text or stale_index:
            print('README.md (or the GPU times in nbs/index.ipynb) is stale: run python scripts/make_readme.py', file=sys.stderr)
            sys.exit(1)
    else:
        update_index()
        out.write_text(text)
