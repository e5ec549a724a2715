"""The store's failures: each is one sentence naming the path and what to do (exit 2 on the command line), and none
leaves anything half-written behind."""
import errno
import hashlib
import json
import os
from pathlib import Path

import filelock
import pytest
import torch

from lottery_nb import store as st
from lottery_nb.cli import imp_main
from lottery_nb.config import ExperimentConfig, LotteryError, get_preset
from lottery_nb.connectivity import interpolation_path
from lottery_nb.imp import run_imp
from lottery_nb.store import Experiment, legacy_hash, list_runs, repair, verify

ARGS = ['--preset', 'smoke', '--seeds', '0', '--rewind-steps', '0it', '--levels', '2', '--no-progress']
CFG = get_preset('smoke', seeds=(0,), rewind_steps=('0it',), levels=2)
OLD = CFG.replace(data_order='shared')   # a run version 1 could have written


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def main(capsys, store, *args):
    "Run the command line in this process; returns (exit status, stderr)."
    st._CHECKED.clear()
    code = imp_main([*ARGS, *args, '--store', str(store)])
    return code, capsys.readouterr().err


def one_sentence(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def files(store):
    return sorted(str(p.relative_to(store)) for p in Path(store).rglob('*'))


def test_store_path_is_a_regular_file(tmp_path, capsys):
    f = tmp_path / 'runs'; f.write_text('not a directory')
    for target in (f, f / 'sub'):
        code, err = main(capsys, target)
        line = one_sentence(err)
        assert code == 2 and str(target) in line and ('is not a directory' in line or 'is a file' in line) and str(f) in line, err
    assert f.read_text() == 'not a directory'


@pytest.mark.parametrize('code_, words', [(errno.ENOSPC, 'the disk is full'), (errno.EACCES, 'permission denied'),
                                          (errno.EROFS, 'read-only')])
def test_write_errors_are_one_sentence_and_leave_nothing(tmp_path, capsys, monkeypatch, code_, words):
    "A failing write inside a chain: exit 2 naming the file; the unfinished level is removed; a re-run completes."
    store = tmp_path / 'runs'
    replace = os.replace
    def failing(src, dst):
        if Path(dst).name == 'mask.pt' and Path(dst).parent.name == 'level_1': raise OSError(code_, os.strerror(code_))
        return replace(src, dst)
    monkeypatch.setattr(st.os, 'replace', failing)
    code, err = main(capsys, store)
    line = one_sentence(err)
    exp = Experiment(CFG, store)
    bad = exp.level_dir(0, 0, 1) / 'mask.pt'
    assert code == 2 and f'Cannot write {str(bad)!r}' in line and words in line, err
    assert exp.is_done(0, 0, 0) and not exp.level_dir(0, 0, 1).exists()       # the dense level stays, level 1 is gone
    assert not [p for p in files(store) if p.endswith('.tmp') or p.endswith('checkpoint.pt')]
    monkeypatch.setattr(st.os, 'replace', replace)
    assert main(capsys, store)[0] == 0 and exp.is_done(0, 0, 2)


def test_failure_at_the_first_write_removes_the_experiment(tmp_path, capsys, monkeypatch):
    def full(fd): raise OSError(errno.ENOSPC, 'No space left on device')
    monkeypatch.setattr(st.os, 'fsync', full)
    store = tmp_path / 'runs'
    code, err = main(capsys, store)
    assert code == 2 and 'config.json' in one_sentence(err) and 'the disk is full' in err
    assert files(store) == []


def test_read_only_finished_store_is_readable(tmp_path, capsys, monkeypatch):
    store = tmp_path / 'runs'
    exp = run_imp(CFG, store, progress=False)
    path = interpolation_path(exp, (0, 0, 1), (0, 0, 2), splits='test', progress=False)
    before = {p: p.stat().st_mtime_ns for p in store.rglob('*')}
    def denied(*a, **k): raise PermissionError(errno.EACCES, 'Permission denied')
    monkeypatch.setattr(filelock.FileLock, 'acquire', denied)   # no lock file can be opened for writing
    monkeypatch.setattr(st, 'atomic_write', denied)              # no file can be written
    monkeypatch.setattr(st, '_writable', lambda p: False)
    code, err = main(capsys, store)
    assert code == 0, err
    again = run_imp(CFG, store, progress=False)
    w, w0 = again.weights(0, 0, 2), exp.weights(0, 0, 2)
    assert again.results() == exp.results() and all(torch.equal(w[k], w0[k]) for k in w0)
    assert interpolation_path(again, (0, 0, 1), (0, 0, 2), splits='test', progress=False)['test_error'].tolist() == path['test_error'].tolist()
    with pytest.warns(UserWarning, match='cannot be written'):
        new = interpolation_path(again, (0, 0, 0), (0, 0, 2), splits='test', progress=False)
    assert new['test_error'][-1] == exp.metrics(0, 0, 2)['test_error']
    assert {p: p.stat().st_mtime_ns for p in store.rglob('*')} == before   # nothing written, nothing removed


def test_damaged_level_is_named_once_with_the_repair_command(tmp_path, capsys):
    store = tmp_path / 'runs'
    assert main(capsys, store)[0] == 0
    exp = Experiment(CFG, store)
    w1 = exp.level_dir(0, 0, 1) / 'weights.pt'
    good = w1.read_bytes()
    w1.write_bytes(good[:100])                       # truncated: found on the re-run of the same command
    code, err = main(capsys, store)
    line = one_sentence(err)
    assert code == 2 and line.count(str(w1)) == 1 and f'run `lottery store repair {store}`' in line, err
    w2 = exp.level_dir(0, 0, 2) / 'weights.pt'
    flipped = bytearray(w2.read_bytes()); flipped[-50] ^= 1; w2.write_bytes(bytes(flipped))   # same size, other bytes
    code, err = main(capsys, store, '--levels', '3')
    assert code == 2 and str(w1) in one_sentence(err)   # the first damaged file read is named
    probs = verify(store)
    assert sorted(p['path'] for p in probs) == sorted([str(w1.parent), str(w2.parent)]), probs
    assert all(p['problem'].startswith('damaged level') for p in probs)
    assert all(p['repaired'] for p in repair(store)) and verify(store) == []
    assert main(capsys, store)[0] == 0
    assert w1.read_bytes() == good                   # recomputed to the same bits
    assert main(capsys, store, '--levels', '3')[0] == 0


def test_repair_removes_unreadable_checkpoints_and_stale_files(tmp_path):
    store = tmp_path / 'runs'
    exp = run_imp(CFG, store, progress=False)
    ck = exp.checkpointer(0, 0, 3); ck.save({'step': 3}); ck.path.write_bytes(b'garbage')
    (exp.path / '.config.json.k1.tmp').write_bytes(b'{')
    probs = verify(store)
    assert sorted((Path(p['path']).name, p['problem']) for p in probs) == [
        ('.config.json.k1.tmp', 'stale temporary file'), ('checkpoint.pt', 'corrupt or truncated')]
    repair(store)
    assert verify(store) == [] and not ck.path.exists() and exp.is_done(0, 0, 2)
    rows = list_runs(store)
    assert [(r['key'], r['kind'], r['seeds'], r['levels']) for r in rows] == [(exp.path.name, 'imp', [0], 2)]
    with pytest.raises(LotteryError, match='is not an experiment of the store'):
        verify(store, 'nope')


def test_stale_temporary_files_are_cleaned_when_a_run_starts(tmp_path):
    store = tmp_path / 'runs'
    exp = run_imp(CFG, store, progress=False)
    stale = [exp.path / '.config.json.a1.tmp', exp.dense_dir(0) / '.rewind_0.pt.b2.tmp',
             exp.level_dir(0, 0, 2) / '.weights.pt.c3.tmp', exp.chain_dir(0, 0) / '.x.d4.tmp']
    for p in stale: p.write_bytes(b'half')
    ref = exp.results()
    again = run_imp(CFG, store, progress=False)
    assert not [p for p in stale if p.exists()] and again.results() == ref


def test_diverged_run_leaves_nothing_behind(tmp_path, capsys):
    store = tmp_path / 'runs'
    exp = run_imp(CFG, store, progress=False)
    keep = files(store)
    code, err = main(capsys, store, '--set', 'lr=1e6')
    assert code == 2 and 'diverged' in one_sentence(err), err
    assert files(store) == keep                      # no config.json, rewind point or lock of the diverged run


LEGACY_FIELDS = ['dataset', 'model', 'training_steps', 'batch_size', 'lr', 'momentum', 'weight_decay', 'optimizer',
                 'schedule', 'milestones', 'gamma', 'warmup', 'prune_fraction', 'prune_scope', 'prune_method',
                 'data_kwargs', 'model_kwargs']


def test_legacy_hash_is_the_first_formula():
    assert legacy_hash(CFG) is None     # version 1 had only the shared batch order: a per-run run has no old name
    d = {k: v for k, v in OLD.to_dict().items() if k in LEGACY_FIELDS}
    assert legacy_hash(OLD) == hashlib.sha256(json.dumps(d, sort_keys=True, separators=(',', ':')).encode()).hexdigest()[:12]
    assert legacy_hash(get_preset('cpu', data_order='shared')) != legacy_hash(OLD)


def test_old_directory_is_adopted(tmp_path, capsys, monkeypatch):
    "A run directory named by the first formula is renamed to the new key, once, and resumed without retraining."
    store = tmp_path / 'runs'
    old = run_imp(OLD.replace(levels=1), store, progress=False)
    old_dir = store / f'{OLD.dataset}-{OLD.model}-{legacy_hash(OLD)}'
    if old.path != old_dir: old.path.rename(old_dir)     # after the new run identity, run_imp no longer writes it
    stamp = (old_dir / 'seed_0' / 'rewind_0' / 'level_1' / 'weights.pt').stat().st_mtime_ns
    monkeypatch.setattr(ExperimentConfig, 'key', property(lambda c: f'{c.dataset}-{c.model}-v2-{c.hash}'))
    assert Experiment(OLD, store).results(everything=True)[-1]['level'] == 1   # readable in place before adoption
    capsys.readouterr()
    exp = run_imp(OLD, store, progress=False)
    err = capsys.readouterr().err
    assert exp.path == store / OLD.key and not old_dir.exists() and err.count('adopted the run directory') == 1, err
    assert (exp.level_dir(0, 0, 1) / 'weights.pt').stat().st_mtime_ns == stamp and exp.is_done(0, 0, 2)
    assert ExperimentConfig.from_dict(json.loads((exp.path / 'config.json').read_text())).hash == OLD.hash
    run_imp(OLD, store, progress=False)
    assert 'adopted' not in capsys.readouterr().err


def test_store_written_before_checksums_is_read_and_resumed(tmp_path, capsys):
    "Levels without a manifest (written before this change) are read, resumed, verified by loading, and repaired."
    store = tmp_path / 'runs'
    exp = run_imp(CFG.replace(levels=1), store, progress=False)
    for m in store.rglob('metrics.json'):   # as written before checksums: no manifest, no checksum of its own
        d = json.loads(m.read_text()); d.pop('files'); d.pop('checksum'); m.write_text(json.dumps(d))
    ref = exp.results()
    more = run_imp(CFG, store, progress=False)
    assert more.results(everything=True)[:2] == ref[:2] and more.is_done(0, 0, 2) and verify(store) == []
    w = exp.level_dir(0, 0, 1) / 'weights.pt'; w.write_bytes(w.read_bytes()[:100])
    assert [Path(p['path']) for p in verify(store)] == [w.parent]
    with pytest.raises(LotteryError, match=f"{str(w)!r} is corrupt or truncated.*run `lottery store repair {store}`"):
        Experiment(CFG, store).weights(0, 0, 1)
    repair(store)
    assert main(capsys, store, '--levels', '3')[0] == 0 and verify(store) == []
