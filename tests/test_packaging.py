"""A release a user can install: the sdist builds a wheel on its own, the wheel ships the figure notebooks as
`lottery_nb/figure_notebooks/`, and, installed into a fresh virtual environment, its commands run from an empty
folder (no checkout in sight). The fresh environment reuses this one's third-party packages (torch is large) through
a `.pth` file, and gets lottery-nb itself only from the wheel (`pip install --no-deps`)."""
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def dist(tmp_path_factory):
    "sdist and wheel of this checkout; the wheel is built from the sdist, as `python -m build` does."
    out = tmp_path_factory.mktemp('dist')
    r = run([sys.executable, '-m', 'build', '--no-isolation', '--outdir', out, ROOT])
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (sdist,), (wheel,) = out.glob('*.tar.gz'), out.glob('*.whl')
    return sdist, wheel


@pytest.fixture(scope='module')
def venv(dist, tmp_path_factory):
    "A fresh virtual environment with the wheel installed; returns its bin folder."
    d = tmp_path_factory.mktemp('venv') / 'env'
    r = run([sys.executable, '-m', 'venv', '--without-pip', d])
    assert r.returncode == 0, r.stderr
    py = d / 'bin' / 'python'
    site = Path(run([py, '-c', "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (site / '_reuse_test_env.pth').write_text(sysconfig.get_paths()['purelib'] + '\n')
    r = run([sys.executable, '-m', 'pip', '--python', py, 'install', '--no-deps', '--no-index',
             '--disable-pip-version-check', '-q', dist[1]])
    assert r.returncode == 0, r.stdout + r.stderr
    return d / 'bin'


def test_sdist_has_what_the_wheel_needs(dist):
    names = {n.split('/', 1)[1] for n in tarfile.open(dist[0]).getnames() if '/' in n}
    assert {'settings.ini', 'setup.py', 'pyproject.toml', 'LICENSE', 'CITATION.cff', 'README.md',
            'nbs/figures/fig5_rewind.ipynb'} <= names


def test_wheel_ships_figure_notebooks_and_license(dist):
    names = set(zipfile.ZipFile(dist[1]).namelist())
    figs = sorted(p.name for p in (ROOT / 'nbs' / 'figures').glob('*.ipynb'))
    assert 'lottery_nb/figure_notebooks/fig5_rewind.ipynb' in names
    assert {f'lottery_nb/figure_notebooks/{f}' for f in figs} <= names
    assert any(n.endswith('.dist-info/licenses/LICENSE') for n in names)
    meta = zipfile.ZipFile(dist[1]).read(next(n for n in names if n.endswith('.dist-info/METADATA'))).decode()
    assert 'License-Expression: Apache-2.0' in meta


def test_installed_wheel_runs_outside_a_checkout(venv, tmp_path):
    "From an empty folder: the package is the wheel's, its notebooks are package data, and `lottery-imp --help` runs."
    empty = tmp_path / 'empty'; empty.mkdir()
    code = ("import importlib.resources as r, lottery_nb; nb = r.files('lottery_nb') / 'figure_notebooks' / 'fig5_rewind.ipynb';"
            "print(lottery_nb.__file__); print(nb.is_file(), str(nb))")
    r = run([venv / 'python', '-c', code], cwd=empty)
    assert r.returncode == 0, r.stderr
    where, (ok, nb) = r.stdout.splitlines()[0], r.stdout.splitlines()[1].split(' ', 1)
    assert where.startswith(str(venv.parent)) and ok == 'True' and nb.startswith(str(venv.parent)), r.stdout
    r = run([venv / 'lottery-imp', '--help'], cwd=empty)
    assert r.returncode == 0 and 'usage: lottery-imp' in r.stdout, r.stdout + r.stderr
    assert not list(empty.iterdir())       # --help writes nothing


def test_lottery_figures_from_an_installed_wheel(venv, tmp_path):
    "`pip install` + `lottery-figures --preset smoke --only fig5` works from an empty folder."
    empty = tmp_path / 'empty'; empty.mkdir()
    r = run([venv / 'lottery-figures', '--preset', 'smoke', '--only', 'fig5', '--store', tmp_path / 'runs',
             '--out', tmp_path / 'out', '--no-progress'], cwd=empty)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert list((tmp_path / 'out' / 'smoke').rglob('fig5*.png')) and not list(empty.iterdir())
