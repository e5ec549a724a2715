"""The tutorials and the home page's gallery: what can go stale without any notebook failing.

- the scrapbook reference of tutorials/tutorial_read_store.ipynb names exactly what each figure notebook glues;
- nbdev_test executes the tutorials (they are found in nbs/tutorials/ and carry no skip_exec) and they keep a kernelspec;
- the gallery cell of nbs/index.ipynb shows exactly the images of nbs/images/gallery/, each linking to its figure
  notebook, and README.md's copies of those links resolve from the repository root;
- scripts/gallery.py copies a folder of figure PNGs (downscaled), drops stale ones and rewrites the gallery cell."""
import importlib.util
import json
import re

import pytest

from conftest import ROOT

NBS = ROOT / 'nbs'
TUTORIALS = ('tutorial_gpu.ipynb', 'tutorial_read_store.ipynb')
LINKED_IMAGE = re.compile(r'\[!\[[^\]]*\]\((images/gallery/[^)\s]+)\)\]\((figures/[^)\s]+\.ipynb)\)')


def cells(path, kind=None) -> list:
    return [''.join(c['source']) for c in json.loads(path.read_text())['cells'] if kind is None or c['cell_type'] == kind]


def glued(path) -> list:
    "Names a notebook records with `sb.glue(...)`, in order."
    return re.findall(r"sb\.glue\(\s*'(\w+)'", '\n'.join(cells(path, 'code')))


def documented() -> dict:
    "Notebook stem -> scrap names of its table in the read-store tutorial's reference."
    out, current = {}, None
    for md in cells(NBS / 'tutorials' / 'tutorial_read_store.ipynb', 'markdown'):
        for line in md.splitlines():
            if (m := re.match(r'^### `(fig\w+)`', line)): current = out.setdefault(m.group(1), [])
            elif current is not None and (m := re.match(r'^\| `(\w+)` \|', line)): current.append(m.group(1))
    return out


def test_scrap_reference_names_exactly_what_each_figure_glues():
    figs = {p.stem: glued(p) for p in sorted((NBS / 'figures').glob('fig*.ipynb'))}
    assert figs and all(figs.values()), figs
    assert documented() == figs


def test_tutorials_run_under_nbdev_test():
    from nbdev.doclinks import nbglob
    found = {p.relative_to(NBS).as_posix() for p in nbglob(NBS, as_path=True)}
    for name in TUTORIALS:
        p = NBS / 'tutorials' / name
        assert f'tutorials/{name}' in found, sorted(found)
        nb = json.loads(p.read_text())
        assert nb['metadata']['kernelspec']['name'] == 'python3' and nb['metadata']['language_info']['name'] == 'python', name
        assert not any('skip_exec' in s for s in cells(p, 'raw')), f'{name} must be executed by nbdev_test'


def gallery_cell() -> str:
    g = [md for md in cells(NBS / 'index.ipynb', 'markdown') if md.startswith('### Gallery')]
    assert len(g) == 1, f'{len(g)} gallery cells in index.ipynb'
    return g[0]


def test_gallery_shows_exactly_the_gallery_folder_each_linking_its_notebook():
    from PIL import Image
    from lottery_nb.figures import FIGURES
    md = gallery_cell()
    links = LINKED_IMAGE.findall(md)
    assert links and len(links) == md.count('!['), 'every gallery image is a link to its figure notebook'
    images = [img for img, _ in links]
    assert len(images) == len(set(images)), images
    assert {f'images/gallery/{p.name}' for p in (NBS / 'images' / 'gallery').iterdir()} == set(images)
    for img, nb in links:
        fig = re.match(r'images/gallery/(fig\d+)', img).group(1)
        assert nb == f'figures/{FIGURES[fig]}' and (NBS / nb).is_file(), (img, nb)
        with Image.open(NBS / img) as im: assert im.format == 'PNG' and im.width <= 1000, (img, im.format, im.size)
        assert (NBS / img).stat().st_size < 400_000, img


def test_readme_gallery_links_resolve_from_the_root():
    readme = (ROOT / 'README.md').read_text()
    targets = re.findall(r'\]\((nbs/[^)\s]+)\)', readme)
    assert len(targets) >= 2 * len(LINKED_IMAGE.findall(gallery_cell())) > 0
    assert all((ROOT / t).exists() for t in targets), [t for t in targets if not (ROOT / t).exists()]


@pytest.fixture
def gallery_script(tmp_path, monkeypatch):
    "scripts/gallery.py with its destination folder and index notebook in tmp_path (a copy of the real index)."
    spec = importlib.util.spec_from_file_location('gallery_under_test', ROOT / 'scripts' / 'gallery.py')
    g = importlib.util.module_from_spec(spec); spec.loader.exec_module(g)
    (tmp_path / 'index.ipynb').write_text((NBS / 'index.ipynb').read_text())
    monkeypatch.setattr(g, 'DEST', tmp_path / 'gallery'); monkeypatch.setattr(g, 'INDEX', tmp_path / 'index.ipynb')
    monkeypatch.setattr(g, 'root', tmp_path)
    return g


def test_gallery_script_copies_downscales_and_rewrites_the_cell(gallery_script, tmp_path):
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from PIL import Image
    src = tmp_path / 'figures' / 'cpu'; src.mkdir(parents=True)
    for name, w in (('fig5', 15), ('fig2', 4), ('fig3_all_levels', 8)):
        fig = plt.figure(figsize=(w, 3)); plt.plot([0, 1], [1, 0]); fig.savefig(src / f'{name}.png', dpi=100); plt.close(fig)
    (src / 'fig5.pdf').write_bytes(b'%PDF')                                   # not a gallery image
    (tmp_path / 'gallery').mkdir(); (tmp_path / 'gallery' / 'fig9.png').write_bytes(b'stale')
    gallery_script.main(['--src', str(src), '--width', '600'])
    test = sorted(p.name for p in (tmp_path / 'gallery').iterdir())
    assert test == ['fig2.png', 'fig3_all_levels.png', 'fig5.png'], test
    sizes = {n: Image.open(tmp_path / 'gallery' / n).size for n in test}
    assert sizes['fig5.png'] == (600, 120) and sizes['fig2.png'] == (400, 300), sizes    # only wider ones shrink
    nb = json.loads((tmp_path / 'index.ipynb').read_text())
    md = [''.join(c['source']) for c in nb['cells'] if ''.join(c['source']).startswith('### Gallery')]
    assert len(md) == 1
    links = LINKED_IMAGE.findall(md[0])
    assert links == [('images/gallery/fig2.png', 'figures/fig2_connectivity.ipynb'),
                     ('images/gallery/fig3_all_levels.png', 'figures/fig3_planes.ipynb'),
                     ('images/gallery/fig5.png', 'figures/fig5_rewind.ipynb')], links
    assert len(nb['cells']) == len(json.loads((NBS / 'index.ipynb').read_text())['cells'])   # one cell replaced, none added


def test_gallery_script_refuses_an_empty_or_foreign_folder(gallery_script, tmp_path):
    with pytest.raises(SystemExit, match='no fig'): gallery_script.main(['--src', str(tmp_path)])
    (tmp_path / 'plot.png').write_bytes(b'x'); (tmp_path / 'fig7.png').write_bytes(b'x')
    with pytest.raises(SystemExit, match="'fig7.png' is not the image of a known figure"): gallery_script.main(['--src', str(tmp_path)])
