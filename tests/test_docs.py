"""The docs site: what can be checked without Quarto. The notebooks are processed as `nbdev_proc_nbs` does, but
without its Quarto installer: without Quarto, nbdev 2 runs `sudo touch .installing`, downloads Quarto and runs
`pip install -e "<root>[dev]"`, and a test installs nothing. Every notebook must process, with a rendered show_doc
entry for every public function and class of every module; Quarto's own render is skipped here with a message when
Quarto is not installed. Stub `sudo`, `pip`, `pip3` and `curl` first on PATH record any call: none may happen."""
import importlib
import json
import os
import shutil
import stat
import subprocess

import pytest

from conftest import BIN, ENV, ROOT

# nbdev's `nbdev_proc_nbs` is `_pre_docs()`, whose first step `_ensure_quarto()` installs Quarto (sudo, curl, pip)
# when `quarto` is not on PATH; the rest (refresh _quarto.yml, the module index, the sidebar, proc_nbs) installs nothing.
PROC_NBS = """import nbdev.quarto as q
assert callable(getattr(q, '_ensure_quarto', None)) and callable(getattr(q, '_pre_docs', None)), 'nbdev changed: see tests/test_docs.py'
q._ensure_quarto = lambda: None
q._pre_docs()
"""
INSTALLERS = ('sudo', 'pip', 'pip3', 'curl')


def stubs(folder, record):
    "Scripts named after the installers that append their command line to `record` and fail; returns `folder`."
    folder.mkdir(parents=True, exist_ok=True)
    for name in INSTALLERS:
        f = folder / name
        f.write_text(f'#!/bin/sh\necho "{name} $*" >> "{record}"\nexit 1\n')
        f.chmod(f.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return folder


def stubbed_env(folder) -> dict:
    return {**ENV, 'PATH': f"{folder}{os.pathsep}{ENV.get('PATH', '')}"}


@pytest.fixture(scope='module')
def installer_calls(tmp_path_factory):
    "The file in which the stub installers record their calls (absent: no call)."
    return tmp_path_factory.mktemp('stubs') / 'calls.txt'


@pytest.fixture(scope='module')
def proc(tmp_path_factory, installer_calls):
    env = stubbed_env(stubs(tmp_path_factory.mktemp('bin'), installer_calls))
    r = subprocess.run([str(BIN / 'python'), '-c', PROC_NBS], capture_output=True, text=True, cwd=ROOT, timeout=900, env=env)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return ROOT / '_proc'


def test_the_stubs_record_a_call(tmp_path):
    "The check below can fail: a stub first on PATH is the `sudo` or `pip` a subprocess's shell finds, and it records."
    record = tmp_path / 'calls.txt'
    env = stubbed_env(stubs(tmp_path / 'bin', record))
    r = subprocess.run('sudo touch .installing; pip install -e ".[dev]"', shell=True, cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and record.read_text().splitlines() == ['sudo touch .installing', 'pip install -e .[dev]']
    assert not (tmp_path / '.installing').exists()


def test_processing_installs_nothing(proc, installer_calls):
    assert not installer_calls.exists(), f'the docs processing called an installer: {installer_calls.read_text()}'


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


def sidebar_entries(path) -> list:
    "Every page of a Quarto sidebar file, in order (sections flattened)."
    import yaml
    def walk(items):
        for it in items:
            if isinstance(it, dict): yield from walk(it.get('contents', []))
            else: yield it
    return list(walk(yaml.safe_load(path.read_text())['website']['sidebar']['contents']))


def test_sidebar_lists_every_notebook_and_nothing_else():
    "The hand-kept sidebar (custom_sidebar) names each notebook of nbs/ once; no nbdev.yml, styles.css or missing page."
    import configparser
    s = configparser.ConfigParser(); s.read(ROOT / 'settings.ini')
    assert s['DEFAULT']['custom_sidebar'] == 'True'
    entries = sidebar_entries(ROOT / 'nbs' / 'sidebar.yml')
    nbs = {str(p.relative_to(ROOT / 'nbs')) for p in (ROOT / 'nbs').rglob('*.ipynb')
           if '.ipynb_checkpoints' not in str(p) and not p.name.startswith('_')}
    assert len(entries) == len(set(entries)), entries
    assert set(entries) == nbs, f'missing from the sidebar: {sorted(nbs - set(entries))}; not notebooks: {sorted(set(entries) - nbs)}'


def test_processed_sidebar_has_only_pages(proc):
    entries = sidebar_entries(proc / 'sidebar.yml')
    assert entries and all(e.endswith(('.ipynb', '.qmd', '.md')) for e in entries), entries


def test_front_matter_is_front_matter(proc):
    """A notebook's YAML front matter (e.g. `skip_exec`) is a raw cell, as nbdev 2 expects: nbdev_proc_nbs merges it
    into the page's front matter, and an HTML export (nbconvert, JupyterLab) does not print it as text."""
    fm = [p for p in (ROOT / 'nbs').rglob('*.ipynb') if '.ipynb_checkpoints' not in str(p)
          and any(c['cell_type'] == 'raw' and ''.join(c['source']).startswith('---') for c in json.loads(p.read_text())['cells'])]
    assert fm, 'no notebook has YAML front matter'
    for p in fm:
        raw = [c for c in json.loads(p.read_text())['cells'] if c['cell_type'] == 'raw']
        assert all(c['metadata'].get('raw_mimetype') == 'text/x-yaml' for c in raw), p
        first = json.loads((proc / p.relative_to(ROOT / 'nbs')).read_text())['cells'][0]
        assert first['cell_type'] == 'raw' and 'skip_exec: true' in ''.join(first['source']), p
    r = subprocess.run([str(BIN / 'jupyter'), 'nbconvert', '--to', 'html', '--stdout', str(fm[0])], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and '<html' in r.stdout, r.stderr[-2000:]
    assert 'skip_exec' not in r.stdout
