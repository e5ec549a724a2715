"""The notebooks work with plain tools: every notebook names its kernel and language (and keeps them through
`nbdev_clean`), `papermill --help-notebook` lists every figure parameter with its type and help, and plain
`papermill NB OUT -p preset smoke` runs a figure notebook with nothing else given."""
import configparser
import copy
import json

import pytest
import scrapbook as sb

from conftest import BIN, ROOT, run

NOTEBOOKS = sorted(p for p in (ROOT / 'nbs').rglob('*.ipynb') if '.ipynb_checkpoints' not in str(p) and '_proc' not in p.parts)
FIGURES = sorted((ROOT / 'nbs' / 'figures').glob('fig*.ipynb'))


def test_every_notebook_names_its_kernel_and_language():
    bad = []
    for p in NOTEBOOKS:
        m = json.loads(p.read_text())['metadata']
        if m.get('kernelspec', {}).get('name') != 'python3' or m.get('kernelspec', {}).get('language') != 'python' \
                or m.get('language_info', {}).get('name') != 'python': bad.append(str(p.relative_to(ROOT)))
    assert NOTEBOOKS and not bad, f'no python3 kernelspec / python language_info in {bad}'


def test_nbdev_clean_keeps_kernel_and_language():
    from nbdev.clean import clean_nb
    s = configparser.ConfigParser(); s.read(ROOT / 'settings.ini')
    keys = s['DEFAULT']['allowed_metadata_keys'].split()
    assert {'kernelspec', 'language_info'} <= set(keys)
    nb = json.loads(FIGURES[0].read_text())
    before = copy.deepcopy(nb['metadata'])
    clean_nb(nb, allowed_metadata_keys=keys, allowed_cell_metadata_keys=s['DEFAULT']['allowed_cell_metadata_keys'].split())
    assert nb['metadata']['kernelspec'] == before['kernelspec'] and nb['metadata']['language_info'] == before['language_info']


def test_help_notebook_runs():
    "`papermill --help-notebook` as a user types it."
    nb = ROOT / 'nbs' / 'figures' / 'fig5_rewind.ipynb'
    r = run([BIN / 'papermill', '--help-notebook', nb])
    assert r.returncode == 0 and 'Traceback' not in r.stdout + r.stderr, r.stdout + r.stderr
    assert f"Parameters inferred for notebook '{nb}'" in r.stdout
    assert "preset: str (default 'cpu')" in r.stdout and 'seeds: list[int]|None (default None)' in r.stdout


def assigned(nb) -> set:
    "The names assigned in a notebook's cell tagged `parameters`, as Python parses them."
    import ast
    cell = next(c for c in json.loads(nb.read_text())['cells'] if 'parameters' in c['metadata'].get('tags', []))
    return {t.id for n in ast.parse(''.join(cell['source'])).body for t in getattr(n, 'targets', [getattr(n, 'target', None)])}


@pytest.mark.parametrize('nb', FIGURES, ids=lambda p: p.stem)
def test_every_figure_parameter_is_typed_and_commented(nb):
    import papermill as pm
    params = pm.inspect_notebook(str(nb))
    assert params and set(params) == assigned(nb)     # papermill understands every line of the parameters cell
    untyped = [k for k, v in params.items() if v['inferred_type_name'] in (None, 'None') or not v['help'].strip()]
    assert not untyped, f'{nb.name}: parameters without a type or a comment: {untyped}'
    assert params['preset']['inferred_type_name'] == 'str' and params['seeds']['inferred_type_name'] == 'list[int]|None'


def checkout_stores() -> set:
    "The run directories of the stores a figure notebook could write into the checkout by mistake."
    return {p for d in (ROOT / 'runs', ROOT / 'nbs' / 'figures' / 'runs') if d.is_dir() for p in d.iterdir()}


def test_plain_papermill_runs_a_figure_notebook(tmp_path):
    "`papermill fig5_rewind.ipynb out.ipynb -p preset smoke` from a scratch folder, as a user types it."
    work, before = tmp_path / 'work', checkout_stores()
    work.mkdir()
    r = run([BIN / 'papermill', ROOT / 'nbs' / 'figures' / 'fig5_rewind.ipynb', 'out.ipynb', '-p', 'preset', 'smoke'],
            cwd=work, env={'LOTTERY_STORE': str(tmp_path / 'store')})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    s = sb.read_notebook(str(work / 'out.ipynb')).scraps.data_dict
    assert s['densities'] == pytest.approx([1.0, 0.8, 0.6375])   # smoke: 320 -> 256 -> 204 prunable weights
    assert {p.suffix for p in (work / 'figures' / 'smoke').glob('fig5.*')} == {'.png', '.pdf'}
    # the runs went to a store outside the checkout: $LOTTERY_STORE, or ./runs of the scratch folder
    runs = list((tmp_path / 'store').glob('*/config.json')) + list((work / 'runs').glob('*/config.json'))
    assert len(runs) == 1, runs
    assert checkout_stores() == before     # nothing written into the checkout


def test_refused_parameter_leaves_no_output_folder(tmp_path):
    "fig3 refuses `-p grid 1` in its setup cell; the output folder is made only when a figure is saved, so none is left."
    out = tmp_path / 'figs'
    r = run([BIN / 'papermill', ROOT / 'nbs' / 'figures' / 'fig3_planes.ipynb', tmp_path / 'x.ipynb', '-p', 'preset', 'smoke',
             '-p', 'grid', '1', '-p', 'store', str(tmp_path / 'runs'), '-p', 'out_dir', str(out)])
    assert r.returncode != 0 and 'Parameter grid=1 is too small' in r.stdout + r.stderr
    assert not out.exists() and not (tmp_path / 'runs').exists()
