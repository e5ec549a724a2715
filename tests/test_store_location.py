"""One store location for the notebook, the CLI and Python: `$LOTTERY_STORE`, else `runs/` in the project root, never
the notebook's own folder. A figure notebook opened from `nbs/figures` after a CLI run re-plots without training."""
import os
from pathlib import Path

from conftest import BIN, ROOT, TIMINGS, figures_cmd, run

from lottery_nb.config import default_store, project_root


def test_project_root_is_found_from_the_figure_folder(monkeypatch):
    monkeypatch.delenv('LOTTERY_STORE', raising=False)
    monkeypatch.chdir(ROOT / 'nbs' / 'figures')
    assert project_root() == ROOT
    assert default_store() == ROOT / 'runs'


def test_environment_variable_wins(monkeypatch, tmp_path):
    monkeypatch.setenv('LOTTERY_STORE', str(tmp_path / 'elsewhere'))
    monkeypatch.chdir(ROOT / 'nbs' / 'figures')
    assert default_store() == tmp_path / 'elsewhere'


def files(store: Path) -> dict:
    "Every stored training file of a store (analysis caches aside) with its size and modification time."
    return {str(p.relative_to(store)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in store.rglob('*') if p.is_file() and 'analysis' not in p.parts and not p.name.endswith('.lock')}


def test_figure_notebook_from_its_own_folder_replots_what_the_cli_trained(tmp_path):
    store, env = tmp_path / 'runs', {'LOTTERY_STORE': str(tmp_path / 'runs')}
    r = run(figures_cmd('--preset', 'smoke', '--out', tmp_path / 'out', '--only', 'fig5', '--no-progress'), cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    before = files(store)
    assert any(k.endswith('metrics.json') for k in before), before
    # Run All from the notebook's folder, with no store parameter: papermill as a reader in JupyterLab would run it.
    out, root_runs = tmp_path / 'again.ipynb', ROOT / 'runs'
    root_before = files(root_runs) if root_runs.is_dir() else {}
    r = run([BIN / 'papermill', ROOT / 'nbs' / 'figures' / 'fig5_rewind.ipynb', out, '-p', 'preset', 'smoke',
             '-p', 'out_dir', str(tmp_path / 'out2'), '--cwd', ROOT / 'nbs' / 'figures'], cwd=ROOT / 'nbs' / 'figures', env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert files(store) == before, 'the notebook trained or rewrote stored levels'
    assert not (ROOT / 'nbs' / 'figures' / 'runs').exists()
    assert (files(root_runs) if root_runs.is_dir() else {}) == root_before, 'the notebook ignored $LOTTERY_STORE'


def test_python_functions_default_to_the_same_store(monkeypatch, tmp_path):
    "`run_imp`, `run_adaptive` and `Experiment` without a store use `default_store()`, not ./runs of the caller's folder."
    import torch
    from lottery_nb.adaptive import AdaptiveSettings, run_adaptive
    from lottery_nb.config import get_preset
    from lottery_nb.imp import run_imp
    from lottery_nb.store import Experiment
    torch.set_num_threads(1)
    monkeypatch.setenv('LOTTERY_STORE', str(tmp_path / 'shared'))
    monkeypatch.chdir(tmp_path)
    cfg = get_preset('smoke', levels=1, rewind_steps=['5it'])
    exp = run_imp(cfg, progress=False)
    assert exp.path == tmp_path / 'shared' / cfg.key and Experiment(cfg).path == exp.path
    ax = run_adaptive(cfg, settings=AdaptiveSettings(ratios=[0.5]), progress=False)
    assert str(ax.path).startswith(str(tmp_path / 'shared')) and not (tmp_path / 'runs').exists()
