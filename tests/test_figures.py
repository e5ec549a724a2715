"""Every figure notebook, run through papermill on the `smoke` preset as lottery-figures runs it, with assertions on
the values each notebook recorded (scrapbook) and on the files it wrote."""
from pathlib import Path

import numpy as np
import pytest
import scrapbook as sb

from conftest import ROOT, figures_cmd, run

FIGS = sorted(p.stem.split('_')[0] for p in (ROOT / 'nbs' / 'figures').glob('fig*.ipynb'))


@pytest.fixture(scope='module')
def smoke_figures(tmp_path_factory):
    "Run lottery-figures once on smoke for every figure notebook (sharing one store, as users do)."
    d = tmp_path_factory.mktemp('figs')
    r = run(figures_cmd('--preset', 'smoke', '--out', d / 'out', '--store', d / 'runs', '--no-progress', '--jobs', '2'))
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
    r = run(figures_cmd('--preset', 'smoke', '--out', tmp_path, '--store', d / 'runs', '--no-progress', '--only', 'fig5'))
    assert r.returncode == 0, r.stderr
    assert before and all(p.stat().st_mtime_ns == t for p, t in before.items())


def test_failing_notebook_is_named_and_others_continue(tmp_path):
    "A notebook that fails (here: fig3's own check of plane_levels in its setup cell) is reported with its cell; exit status 2 (a LotteryError: the user's mistake)."
    r = run(figures_cmd('--preset', 'smoke', '--out', tmp_path, '--store', tmp_path / 'runs', '--no-progress', '--only', 'fig3',
                        '--param', 'plane_levels=[99]'))
    assert r.returncode == 2, r.stdout + r.stderr   # a LotteryError in the notebook: the user's mistake, exit 2
    assert 'fig3 at cell ['  in r.stderr and 'Parameter plane_levels has [99]' in r.stderr


def test_bad_figure_name_and_parameter(tmp_path):
    for args, msg in ((['--only', 'fig9'], 'Unknown figure fig9;'), (['--param', 'levls=3'], 'Unknown parameter levls'),
                      (['--preset', 'cifar'], "Unknown preset 'cifar'")):
        r = run(figures_cmd('--out', tmp_path, '--no-progress', *args))
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
    assert all(len(s['segment_barriers'][r]) == 2 for r in ('0', '5'))
    dense, eps, thr = s['threshold']
    assert eps == 0.0 and thr == dense                                      # one seed: epsilon is 0
    assert s['matrix_diag_error'][0] == s['level_error']['5'][0] == dense   # diagonal = the levels' own errors
    assert all(image_ok(p) for p in s['files'])


@pytest.mark.skipif('fig2' not in FIGS, reason='no fig2 notebook')
def test_fig2_barriers_are_those_of_the_stored_paths(smoke_figures):
    """The segment barriers fig2 recorded are Definition A.1 applied to the error curves stored for its paths (read
    back from the store's cache, recomputed here), and the matrix's entries for successive levels are the same."""
    from lottery_nb.config import get_preset
    from lottery_nb.imp import run_imp
    from lottery_nb.connectivity import interpolation_path, barrier_matrix
    d, _ = smoke_figures
    s = scraps(d, 'fig2')
    exp = run_imp(get_preset('smoke'), d / 'runs', progress=False)   # finished: trains nothing
    grid = list(np.linspace(0, 1, 11))
    for r in s['rewinds']:
        errors = []
        for l in range(2):
            p = interpolation_path(exp, (0, r, l), (0, r, l + 1), grid, splits=('test',), progress=False)
            b, e = np.asarray(p['betas']), np.asarray(p['test_error'])
            e0, e1 = e[b == 0][0], e[b == 1][0]
            errors += [e0, e1]
            assert s['segment_barriers'][str(r)][l] == pytest.approx(float(np.max(e - ((1 - b) * e0 + b * e1))), abs=1e-12)
        assert errors[1] == errors[2]                                             # the two paths meet at level 1
        assert s['level_error'][str(r)] == pytest.approx([errors[0], errors[2], errors[3]])
    M = barrier_matrix(exp, 0, max(s['rewinds']), betas=grid, progress=False)
    assert [M['barrier'][0, 1], M['barrier'][1, 2]] == pytest.approx(s['segment_barriers'][str(max(s['rewinds']))], abs=1e-12)
    assert M['barrier'][0, 2] == M['barrier'][2, 0]


@pytest.mark.skipif('fig3' not in FIGS, reason='no fig3 notebook')
def test_fig3_values(smoke_figures):
    d, _ = smoke_figures
    s = scraps(d, 'fig3')
    assert s['levels'] == [0, 1] and s['grid_shape'] == [51, 51]
    for l, (e_solution, e_projection, e_next) in s['point_errors'].items():
        assert [e_solution, e_next] == s['stored_errors'][l]                # the plane reproduces the stored solutions
    assert all(image_ok(p) for p in s['files']) and len(s['files']) == 4    # fig3 and the all-levels grid, PNG + PDF
