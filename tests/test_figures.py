"""Every figure notebook, run through papermill on the `smoke` preset as lottery-figures runs it, with assertions on
the values each notebook recorded (scrapbook) and on the files it wrote."""
import json
import subprocess
from pathlib import Path

import pytest
import scrapbook as sb

from conftest import BIN, ROOT

FIGS = sorted(p.stem.split('_')[0] for p in (ROOT / 'nbs' / 'figures').glob('fig*.ipynb'))


@pytest.fixture(scope='module')
def smoke_figures(tmp_path_factory):
    "Run lottery-figures once on smoke for every figure notebook (sharing one store, as users do)."
    d = tmp_path_factory.mktemp('figs')
    r = subprocess.run([str(BIN / 'lottery-figures'), '--preset', 'smoke', '--out', str(d / 'out'), '--store', str(d / 'runs'),
                        '--no-progress', '--jobs', '2'], capture_output=True, text=True, timeout=1200, cwd=ROOT)
    return d, r


def scraps(d, name):
    nb = next((d / 'out' / 'smoke' / 'notebooks').glob(f'{name}_*.ipynb'))
    return sb.read_notebook(str(nb)).scraps.data_dict


def image_ok(p: Path):
    b = Path(p).read_bytes()
    return len(b) > 2000 and (b[:4] == b'\x89PNG' or b[:4] == b'%PDF')


def test_all_figures_ran(smoke_figures):
    d, r = smoke_figures
    assert r.returncode == 0, r.stdout + r.stderr
    for f in FIGS: assert f'{f}' in r.stdout


@pytest.mark.skipif('fig5' not in FIGS, reason='no fig5 notebook')
def test_fig5_values(smoke_figures):
    d, _ = smoke_figures
    s = scraps(d, 'fig5')
    assert s['densities'] == pytest.approx([1.0, 0.8, 0.6375])   # 320 -> 256 -> 204 prunable weights
    assert set(s['mean_test_error']) == {'0', '5'} and all(len(v) == 3 for v in s['mean_test_error'].values())
    assert all(0 <= e <= 1 for v in s['mean_test_error'].values() for e in v)
    assert s['dense'][2] == 1 and s['dense'][1] == 0.0              # one seed: epsilon is 0
    assert all(image_ok(p) for p in s['files']) and {Path(p).suffix for p in s['files']} == {'.png', '.pdf'}


def test_warm_store_only_replots(smoke_figures, tmp_path):
    "A second run on the same store trains nothing: no weights file is rewritten."
    d, _ = smoke_figures
    before = {p: p.stat().st_mtime_ns for p in (d / 'runs').rglob('weights.pt')}
    r = subprocess.run([str(BIN / 'lottery-figures'), '--preset', 'smoke', '--out', str(tmp_path), '--store', str(d / 'runs'),
                        '--no-progress', '--only', 'fig5'], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert before and all(p.stat().st_mtime_ns == t for p, t in before.items())


def test_failing_notebook_is_named_and_others_continue(tmp_path):
    "A notebook that fails (here: a preset override the notebook rejects) is reported with its cell; exit status 1."
    r = subprocess.run([str(BIN / 'lottery-figures'), '--preset', 'smoke', '--out', str(tmp_path), '--store', str(tmp_path / 'runs'),
                        '--no-progress', '--only', 'fig5', '--param', 'levels="two"'], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 1, r.stdout + r.stderr
    assert 'fig5 at cell [' in r.stderr and "Parameter levels='two' has type str" in r.stderr


def test_bad_figure_name_and_parameter(tmp_path):
    for args, msg in ((['--only', 'fig9'], 'Unknown figure(s) fig9'), (['--param', 'levls=3'], 'Unknown parameter(s) levls'),
                      (['--preset', 'cifar'], "Unknown preset 'cifar'")):
        r = subprocess.run([str(BIN / 'lottery-figures'), '--out', str(tmp_path), '--no-progress', *args], capture_output=True, text=True, cwd=ROOT)
        assert r.returncode == 2 and msg in r.stderr and 'Traceback' not in r.stderr, r.stderr


@pytest.mark.skipif('fig1' not in FIGS, reason='no fig1 notebook')
def test_fig1_values(smoke_figures):
    d, _ = smoke_figures
    s = scraps(d, 'fig1')
    assert s['kept'] == [3, 2, 1] and s['nested'] and s['in_subspace']
    nonzero = [sum(x != 0 for x in w) for w in s['solutions']]
    assert nonzero == [3, 2, 1]
    assert all(image_ok(p) for p in s['files'])


@pytest.mark.skipif('fig2' not in FIGS, reason='no fig2 notebook')
def test_fig2_values(smoke_figures):
    d, _ = smoke_figures
    s = scraps(d, 'fig2')
    assert s['rewinds'] == [0, 5] and s['matrix_shape'] == [3, 3]          # smoke: levels 0..2
    assert s['matrix_diag_barrier'] == [0.0, 0.0, 0.0]                    # a solution's barrier with itself
    for r in ('0', '5'):
        assert len(s['segment_barriers'][r]) == 2 and all(b >= 0 for b in s['segment_barriers'][r])
    dense, eps, thr = s['threshold']
    assert eps == 0.0 and thr == dense                                      # one seed: epsilon is 0
    assert s['matrix_diag_error'][0] == s['level_error']['5'][0] == dense   # diagonal = the levels' own errors
    assert all(image_ok(p) for p in s['files'])


@pytest.mark.skipif('fig3' not in FIGS, reason='no fig3 notebook')
def test_fig3_values(smoke_figures):
    d, _ = smoke_figures
    s = scraps(d, 'fig3')
    assert s['levels'] == [0, 1] and s['grid_shape'] == [51, 51]
    for l, (e_solution, e_projection, e_next) in s['point_errors'].items():
        assert [e_solution, e_next] == s['stored_errors'][l]                # the plane reproduces the stored solutions
    assert all(image_ok(p) for p in s['files']) and len(s['files']) == 4    # fig3 and the all-levels grid, PNG + PDF
