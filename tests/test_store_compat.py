"""A store written by an earlier commit is read and resumed by this one. tests/fixtures/store_2c7a6ae was written at
commit 2c7a6ae (scripts/make_store_fixture.sh): a `smoke` IMP run and a `smoke` adaptive run, both with one level."""
import hashlib
import json
import shutil
from pathlib import Path

import torch

from conftest import adaptive_cmd, cli, run

FIXTURE = Path(__file__).parent / 'fixtures' / 'store_2c7a6ae'
IMP, ADAPTIVE = 'synthetic-mlp-2fa44bd329cc', 'synthetic-mlp-2fa44bd329cc-adaptive-fd1523eb8427'


def files(store: Path) -> dict:
    "sha256 and mtime of every regular file (lock files aside), by relative path."
    return {str(p.relative_to(store)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(store.rglob('*')) if p.is_file() and not p.is_symlink() and p.suffix != '.lock'}


def copy(tmp_path) -> Path:
    store = tmp_path / 'runs'
    shutil.copytree(FIXTURE, store, symlinks=True)
    return store


def test_fixture_is_small_and_complete():
    assert sum(p.stat().st_size for p in FIXTURE.rglob('*') if p.is_file()) < 400_000
    assert sorted(p.name for p in FIXTURE.iterdir()) == [IMP, ADAPTIVE]
    assert len(list((FIXTURE / IMP).rglob('metrics.json'))) == 3          # dense + level 1 of rewind 0 and 5


def test_old_imp_store_is_read_then_resumed(tmp_path):
    from lottery_nb.config import get_preset
    from lottery_nb.store import Experiment
    store = copy(tmp_path)
    before = files(store / IMP)
    r = cli('--preset', 'smoke', '--levels', '2', '--no-progress', store=store)
    assert r.returncode == 0, r.stderr
    after = files(store / IMP)
    assert {k: after[k] for k in before} == before          # stored levels: same bytes, never rewritten
    new = sorted(set(after) - set(before))
    assert new == [f'seed_0/rewind_{t}/level_2/{f}' for t in (0, 5)
                   for f in ('losses.pt', 'mask.pt', 'metrics.json', 'weights.pt')]
    assert sorted(p.name for p in store.iterdir()) == [IMP, ADAPTIVE]   # same keys: no new directory
    cfg = get_preset('smoke', levels=2)
    assert cfg.key == IMP
    exp = Experiment(cfg, store)
    for t, L in [(0, 0), (0, 1), (5, 1)]:                    # read values equal the fixture's exactly
        old = json.loads((FIXTURE / IMP / exp.level_dir(0, t, L).relative_to(exp.path) / 'metrics.json').read_text())
        assert exp.metrics(0, t, L) == {k: v for k, v in old.items() if k != 'files'}
    for t in (0, 5):
        m = exp.metrics(0, t, 2)
        assert m['level'] == 2 and 0 < m['density'] < exp.metrics(0, t, 1)['density']
    mask = torch.load(FIXTURE / IMP / 'seed_0/rewind_5/level_1/mask.pt', weights_only=True)
    assert all(torch.equal(mask[k], v) for k, v in exp.mask(0, 5, 1).items())
    v = run([*cli_store_cmd(), 'verify', str(store)])
    assert v.returncode == 0, v.stdout + v.stderr


def test_old_adaptive_store_is_read_as_cached(tmp_path):
    store = copy(tmp_path)
    before = files(store)
    r = run(adaptive_cmd('--preset', 'smoke', '--levels', '1', store=store))
    assert r.returncode == 0, r.stderr
    assert '   0       5      1      256    80.0%  0.60  20.0% (clamped)        7.81' in r.stdout, r.stdout
    assert files(store) == before                            # nothing trained, nothing rewritten
    assert sorted(p.name for p in store.iterdir()) == [IMP, ADAPTIVE]


def cli_store_cmd() -> list:
    from conftest import BIN
    return [BIN / 'lottery', 'store']
