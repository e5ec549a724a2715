"""The docs site: what can be checked without Quarto. nbdev_proc_nbs must process every notebook and produce a
rendered show_doc entry for every public function and class of every module; Quarto's own render is skipped
here with a message when Quarto is not installed."""
import importlib
import json
import shutil
import subprocess

import pytest

from conftest import BIN, ROOT


@pytest.fixture(scope='module')
def proc():
    r = subprocess.run([str(BIN / 'nbdev_proc_nbs')], capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    return ROOT / '_proc'


def test_every_notebook_is_processed(proc):
    src = {p.relative_to(ROOT / 'nbs') for p in (ROOT / 'nbs').rglob('*.ipynb') if '.ipynb_checkpoints' not in str(p)}
    out = {p.relative_to(proc) for p in proc.rglob('*.ipynb')}
    assert src and src <= out, src - out
    assert (proc / '_quarto.yml').exists()


def test_show_doc_for_every_public_name(proc):
    rendered = ''
    for p in proc.glob('*.ipynb'):
        for c in json.loads(p.read_text())['cells']:
            for o in c.get('outputs', []):
                rendered += ''.join(o.get('data', {}).get('text/markdown', []))
    missing = []
    for mod in sorted(p.stem for p in (ROOT / 'lottery_nb').glob('*.py') if not p.stem.startswith('_')):
        m = importlib.import_module(f'lottery_nb.{mod}')
        for name in getattr(m, '__all__', []):
            obj = getattr(m, name)
            if not callable(obj) or name.isupper() or getattr(obj, '__module__', None) != m.__name__: continue  # aliases, constants
            if f'### {name}' not in rendered: missing.append(f'{mod}.{name}')
    assert not missing, f'no rendered show_doc for {missing}'


def test_quarto_render_or_skip():
    if shutil.which('quarto') is None:
        pytest.skip('Quarto is not installed here (its installers download from the internet): the site render itself is not checked')
    r = subprocess.run([str(BIN / 'nbdev_docs')], capture_output=True, text=True, cwd=ROOT, timeout=1800)
    assert r.returncode == 0, r.stderr[-2000:]
