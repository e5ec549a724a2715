"""Write README.md from nbs/index.ipynb without Quarto (nbdev_readme needs Quarto).

Markdown cells are copied, with relative link and image targets made relative to the repository root (index.ipynb
lives in nbs/: `images/gallery/fig5.png` becomes `nbs/images/gallery/fig5.png`); code cells become ```python blocks
without their `#|` directives; cells marked `#| hide` are left out. `python scripts/make_readme.py --check` exits 1 when README.md is stale.
"""
import json
import re
import sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent


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
        if c['cell_type'] == 'markdown': parts.append(from_root(src.strip()))
        elif c['cell_type'] == 'code':
            body = '\n'.join(l for l in lines if not l.startswith('#|')).strip()
            if body: parts.append(f'```python\n{body}\n```')
    return '\n\n'.join(parts) + '\n'


if __name__ == '__main__':
    text, out = render(), root / 'README.md'
    if '--check' in sys.argv:
        if not out.exists() or out.read_text() != text:
            print('README.md is stale: run python scripts/make_readme.py', file=sys.stderr); sys.exit(1)
    else:
        out.write_text(text)
