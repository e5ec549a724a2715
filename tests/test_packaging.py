"""A release a user can install: the sdist builds a wheel on its own, the wheel ships the figure notebooks as
`lottery_nb/figure_notebooks/`, and, installed into a fresh virtual environment, its commands run from an empty
folder (no checkout in sight).

The fresh environment (no system site-packages) must not download torch again, so it gets its third-party packages
from this environment, but only those the wheel declares: the distributions of its `Requires-Dist` (no extra) and,
transitively, theirs, linked one by one into a folder that a `.pth` file puts on its path. Anything else of this
environment (the dev extra: nbdev, pytest, jupyterlab, ...) is not importable there, so a run-time import that
`install_requires` forgot fails here. lottery-nb itself comes only from the wheel (`pip install --no-deps`)."""
import email
import importlib.metadata as md
import os
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from conftest import ENV, ROOT, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def dist(tmp_path_factory):
    "sdist and wheel of this checkout; the wheel is built from the sdist, as `python -m build` does."
    out = tmp_path_factory.mktemp('dist')
    r = run([sys.executable, '-m', 'build', '--no-isolation', '--outdir', out, ROOT])
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (sdist,), (wheel,) = out.glob('*.tar.gz'), out.glob('*.whl')
    return sdist, wheel


def wheel_requirements(wheel) -> list:
    "The wheel's `Requires-Dist` entries that hold without an extra (its install_requires)."
    z = zipfile.ZipFile(wheel)
    meta = email.message_from_bytes(z.read(next(n for n in z.namelist() if n.endswith('.dist-info/METADATA'))))
    reqs = [Requirement(r) for r in meta.get_all('Requires-Dist') or []]
    return [r for r in reqs if r.marker is None or r.marker.evaluate({'extra': ''})]


def closure(reqs) -> tuple[dict, list]:
    "name -> Distribution of this environment for `reqs` and their requirements (with the extras asked for); missing names."
    found, missing, todo = {}, [], [(r, set(r.extras)) for r in reqs]
    while todo:
        r, extras = todo.pop()
        key = r.name.lower().replace('_', '-')
        try: d = md.distribution(r.name)
        except md.PackageNotFoundError: missing.append(r.name); continue
        if key in found and not extras: continue
        found[key] = d
        for q in map(Requirement, d.requires or []):
            env = [{'extra': e} for e in extras | {''}]
            if q.marker is None or any(q.marker.evaluate(e) for e in env): todo.append((q, set(q.extras)))
    return found, missing


def link_distributions(dists, folder: Path):
    "Symbolic links in `folder` to the top-level modules, packages and .dist-info folders of `dists`."
    folder.mkdir(parents=True, exist_ok=True)
    for d in dists.values():
        base = Path(d.locate_file(''))
        tops = {f.parts[0] for f in d.files or [] if f.parts and f.parts[0] not in ('..', '__pycache__')
                and not f.parts[0].endswith('.pth')}
        for t in tops:
            if (base / t).exists() and not (folder / t).exists(): (folder / t).symlink_to(base / t)


def venv_env(venv) -> dict:
    "The environment of a command of the fresh venv: its bin first, no PYTHONPATH (the checkout), Jupyter's own folders empty."
    env = {k: v for k, v in ENV.items() if k not in ('PYTHONPATH', 'VIRTUAL_ENV', 'JUPYTER_PATH')}
    jup = venv.parent / 'jupyter-home'
    for sub in ('data', 'config', 'ipython'): (jup / sub).mkdir(parents=True, exist_ok=True)
    return {**env, 'PATH': f"{venv}{os.pathsep}{env.get('PATH', '')}", 'JUPYTER_DATA_DIR': str(jup / 'data'),
            'JUPYTER_CONFIG_DIR': str(jup / 'config'), 'IPYTHONDIR': str(jup / 'ipython')}


def vrun(venv, cmd, cwd):
    "Run `cmd` with the fresh venv's environment only (subprocess.run, as conftest.run, without the test's PYTHONPATH)."
    import subprocess
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=1800, cwd=cwd, env=venv_env(venv))


@pytest.fixture(scope='module')
def venv(dist, tmp_path_factory):
    "A fresh virtual environment with the wheel installed and its declared dependencies linked in; returns its bin folder."
    d = tmp_path_factory.mktemp('venv') / 'env'
    r = run([sys.executable, '-m', 'venv', '--without-pip', d])
    assert r.returncode == 0, r.stderr
    py = d / 'bin' / 'python'
    site = Path(vrun(d / 'bin', [py, '-c', "import sysconfig; print(sysconfig.get_paths()['purelib'])"], d).stdout.strip())
    dists, missing = closure(wheel_requirements(dist[1]))
    assert not [m for m in missing if m.lower() in {r.name.lower() for r in wheel_requirements(dist[1])}], missing
    link_distributions(dists, d.parent / 'deps')
    (site / '_declared_deps.pth').write_text(str(d.parent / 'deps') + '\n')
    # (without the test's PYTHONPATH: the checkout's build leaves lottery_nb.egg-info there, which pip would take
    # for an installed lottery-nb and install nothing)
    r = vrun(d / 'bin', [sys.executable, '-m', 'pip', '--python', py, 'install', '--no-deps', '--no-index',
                         '--disable-pip-version-check', '-q', dist[1]], d.parent)
    assert r.returncode == 0, r.stdout + r.stderr
    return d / 'bin'


def test_install_requires_holds_the_run_time_packages(dist):
    "What `lottery figures` and the figure notebooks import at run time is in install_requires, not only in the dev extra."
    names = {r.name.lower().replace('_', '-') for r in wheel_requirements(dist[1])}
    assert {'torch', 'papermill', 'scrapbook', 'ipykernel', 'jupyter-client', 'matplotlib', 'tqdm', 'filelock'} <= names, names
    assert not names & {'nbdev', 'pytest', 'jupyterlab', 'execnb'}, names


def test_fresh_venv_sees_only_declared_packages(venv, tmp_path):
    "The test environment is honest: the wheel's dependencies import there, the dev extra does not."
    code = ("import importlib.util as u; print(' '.join(n for n in ['torch', 'papermill', 'scrapbook', 'ipykernel', "
            "'nbdev', 'pytest', 'jupyterlab', 'execnb'] if u.find_spec(n)))")
    r = vrun(venv, [venv / 'python', '-c', code], tmp_path)
    assert r.returncode == 0 and r.stdout.split() == ['torch', 'papermill', 'scrapbook', 'ipykernel'], r.stdout + r.stderr
    code = ("import sys; from jupyter_client.kernelspec import KernelSpecManager as K; "
            "print(K().get_kernel_spec('python3').argv[0] == sys.executable, sys.executable)")
    r = vrun(venv, [venv / 'python', '-c', code], tmp_path)      # papermill's kernel is this environment's Python
    assert r.returncode == 0 and r.stdout.split() == ['True', str(venv / 'python')], r.stdout + r.stderr
    r = vrun(venv, [sys.executable, '-m', 'pip', '--python', venv / 'python', 'check', '--disable-pip-version-check'], tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr     # every requirement of every linked distribution is there too


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
    r = vrun(venv, [venv / 'python', '-c', code], empty)
    assert r.returncode == 0, r.stderr
    where, (ok, nb) = r.stdout.splitlines()[0], r.stdout.splitlines()[1].split(' ', 1)
    assert where.startswith(str(venv.parent)) and ok == 'True' and nb.startswith(str(venv.parent)), r.stdout
    r = vrun(venv, [venv / 'lottery-imp', '--help'], empty)
    assert r.returncode == 0 and 'usage: lottery-imp' in r.stdout, r.stdout + r.stderr
    assert not list(empty.iterdir())       # --help writes nothing


def test_lottery_figures_from_an_installed_wheel(venv, tmp_path):
    "`pip install` + `lottery-figures --preset smoke --only fig5` works from an empty folder."
    empty = tmp_path / 'empty'; empty.mkdir()
    r = vrun(venv, [venv / 'lottery-figures', '--preset', 'smoke', '--only', 'fig5', '--store', tmp_path / 'runs',
                    '--out', tmp_path / 'out', '--no-progress'], empty)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert list((tmp_path / 'out' / 'smoke').rglob('fig5*.png')) and not list(empty.iterdir())


def test_setup_sh_picks_the_torch_build_and_says_why(tmp_path):
    """scripts/setup.sh before it installs anything: without a GPU it tries PyTorch's CPU wheel index and, when that
    cannot be reached, falls back to the default build quickly; with a GPU (a stub nvidia-smi) it takes the default
    CUDA build. A fake checkout whose torch-less .venv is already stamped, so that nothing is installed."""
    import time
    for f in ('settings.ini', 'setup.py', 'scripts/setup.sh'):
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True); (tmp_path / f).write_text((ROOT / f).read_text())
    assert run([sys.executable, '-m', 'venv', '--without-pip', tmp_path / '.venv']).returncode == 0
    (tmp_path / '.venv' / '.lottery-nb-installed').touch()
    stub = tmp_path / 'stub'; stub.mkdir()
    path = ':'.join(p for p in ENV['PATH'].split(':') if not (Path(p) / 'nvidia-smi').exists())   # no GPU here
    unreachable = 'http://127.0.0.1:9/whl/cpu'                                                      # the discard port: refused
    t = time.perf_counter()
    r = run(['bash', 'scripts/setup.sh'], cwd=tmp_path, env={'PATH': path, 'TORCH_CPU_INDEX': unreachable})
    assert r.returncode == 0, r.stderr
    assert time.perf_counter() - t < 120                                       # bounded by its 10 s limit, not pip's retries
    assert r.stdout.strip().splitlines() == [
        f'setup: torch  installed: no GPU (no working nvidia-smi), but {unreachable} could not be reached (5 s limit), so the default build']
    (stub / 'nvidia-smi').write_text('#!/bin/sh\necho "GPU 0: stub"\n'); (stub / 'nvidia-smi').chmod(0o755)
    r = run(['bash', 'scripts/setup.sh'], cwd=tmp_path, env={'PATH': f'{stub}:{path}', 'TORCH_CPU_INDEX': unreachable})
    assert r.returncode == 0 and r.stdout.strip().splitlines() == [
        'setup: torch  installed: nvidia-smi finds a GPU, so the default (CUDA) build'], r.stdout + r.stderr
