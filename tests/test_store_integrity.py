"""Nothing in the store can be silently wrong (issue 25): every stored result carries a checksum, the execution
environment is part of the provenance, `verify` leaves a running writer's temporary files alone; and the store reads
fast and as tables (issue 26): a finished run is read once, without its data set, by `load_frame` and `store list`."""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import BIN, cli, run, same, snapshot

FIXTURE_DIR = Path(__file__).parent / 'fixtures' / 'store_2c7a6ae'

SMOKE = ['--preset', 'smoke', '--rewind-steps', '5it', '--no-progress']


def store_cmd(*args) -> list:
    return [BIN / 'lottery', 'store', *args]


def flip_digit(text: str, key: str) -> str:
    "`text` (JSON) with one digit of the first number after `\"key\":` changed: what a bit of rot or a stray edit does."
    m = re.search(rf'"{key}": [\[\s]*-?\d*\.?(\d)', text)
    assert m, key
    i = m.start(1)
    return text[:i] + str((int(text[i]) + 1) % 10) + text[i + 1:]


def result_view(store: Path) -> dict:
    "The store's snapshot with the timings of the tensor dicts (planes, rewind points) left out, as JSON's are."
    out = snapshot(store)
    for k, v in out.items():
        if k.endswith('.pt') and isinstance(v, dict):
            out[k] = {n: x for n, x in v.items() if n not in ('wall_time', 'finished_at', '__checksum__')}
    return out


# ------------------------------------------------------------------ checksums on every stored result
def build(store: Path):
    "A smoke store with every kind of stored result: config, levels, paths, a matrix, a projection, a plane, an adaptive run."
    from lottery_nb.adaptive import AdaptiveSettings, run_adaptive
    from lottery_nb.config import get_preset
    from lottery_nb.connectivity import barrier_matrix, error_plane, interpolation_path
    from lottery_nb.paths import projection_path
    from lottery_nb.imp import run_imp
    cfg = get_preset('smoke', rewind_steps=('5it',))
    exp = run_imp(cfg, store, progress=False)
    for a, b in ((0, 1), (0, 2), (1, 2)):   # (the matrix's paths too: a re-run reads each of them)
        interpolation_path(exp, (0, 5, a), (0, 5, b), betas=(0, 0.5, 1), splits='test', progress=False)
    barrier_matrix(exp, 0, 5, betas=(0, 0.5, 1), progress=False)
    projection_path(exp, (0, 5, 1), betas=(0, 0.5, 1), progress=False)
    error_plane(exp, 0, 5, 0, grid=3, progress=False)
    ax = run_adaptive(cfg, store, AdaptiveSettings(subsample=64), progress=False)
    return exp, ax


def test_a_flipped_digit_in_each_kind_of_file_is_named_removed_and_restored(tmp_path, monkeypatch):
    from lottery_nb.config import LotteryError
    from lottery_nb.store import StoreCorrupt, _CHECKED, load_json, load_torch, repair, verify
    monkeypatch.setenv('LOTTERY_CACHE', str(tmp_path / 'cache'))
    store = tmp_path / 'runs'
    exp, ax = build(store)
    ref = result_view(store)
    analysis = sorted(p for p in (exp.path / 'analysis').iterdir() if p.suffix in ('.json', '.pt'))
    kinds = {p.name.split('-')[0] for p in analysis}
    assert kinds == {'path', 'matrix', 'projection_path', 'plane'}, analysis
    sweep = next(ax.path.glob('seed_0/rewind_5/level_*/sweep.json'))
    targets = [(exp.level_dir(0, 5, 1) / 'metrics.json', 'test_error'), (exp.path / 'config.json', 'lr'),
               (ax.threshold_file(0), 'threshold'), (sweep, 'p')] + [(p, 'max_error' if p.name.startswith('matrix') else 'test_error') for p in analysis]
    for f, key in targets:
        _CHECKED.clear()
        if f.suffix == '.pt':   # a plane: one value changed, its checksum kept
            raw = torch.load(f, weights_only=True); raw['test_error'][0, 0] += 0.01; torch.save(raw, f)
        else: f.write_text(flip_digit(f.read_text(), key))
        probs = verify(store)
        assert len(probs) == 1 and probs[0]['path'] in (str(f), str(f.parent)), (f, probs)
        if f.name != 'config.json':   # reading it: one sentence that names it and the repair
            with pytest.raises(StoreCorrupt) as e: (load_torch if f.suffix == '.pt' else load_json)(f)
            msg = str(e.value)
            assert str(f) in msg and '`lottery store repair' in msg and len(msg.splitlines()) == 1, msg
        else:
            with pytest.raises(LotteryError, match='holds a config with hash'): exp.create()
        assert all(p['repaired'] for p in repair(store)) and verify(store) == [] and not f.exists()
        build(store)                                     # the re-run recomputes what was removed
        after = result_view(store)
        assert sorted(after) == sorted(ref) and [k for k in ref if not same(ref[k], after[k])] == [], f
    assert (exp.path / 'config.json').read_text() == json.dumps(exp.cfg.to_dict(), indent=1, sort_keys=True) + '\n'


def test_store_written_before_checksums_is_verified_and_its_files_listed(tmp_path):
    "The fixture store (written by an old commit): no problem, every file without a checksum counted and listed."
    store = tmp_path / 'runs'
    shutil.copytree(FIXTURE_DIR, store, symlinks=True)
    r = run(store_cmd('verify', store))
    assert r.returncode == 0, r.stdout + r.stderr
    n = int(re.search(r'(\d+) file\(s\) carry no checksum', r.stdout).group(1))
    listed = [l for l in r.stdout.splitlines() if l.startswith('  /')]
    assert len(listed) == min(n, 10) and n >= 4 and any('metrics.json (written before checksums)' in l for l in listed), r.stdout
    assert 'no problems found' in r.stdout
    j = run(store_cmd('verify', '--store', store, '--json'))
    assert j.returncode == 0 and len(json.loads(j.stdout)['unchecked']) == n and json.loads(j.stdout)['problems'] == []



def test_a_rewind_point_a_replay_adds_is_sealed_checked_and_repaired(tmp_path, monkeypatch):
    "A new rewind step on a finished dense run replays its start; the rewind point it adds joins the dense manifest."
    from lottery_nb.config import get_preset
    from lottery_nb.imp import run_imp
    from lottery_nb.store import StoreCorrupt, _CHECKED, audit, repair, verify
    monkeypatch.setenv('LOTTERY_CACHE', str(tmp_path / 'cache'))
    store = tmp_path / 'runs'
    run_imp(get_preset('smoke', rewind_steps=('5it',), levels=1), store, progress=False)
    exp = run_imp(get_preset('smoke', rewind_steps=('5it', '10it'), levels=1), store, progress=False)   # replays to 10
    point = exp.rewind_point(0, 10)
    assert point.name in exp.manifest(0, 10, 0) and verify(store) == []
    assert not [u for u in audit(store)['unchecked'] if u['path'] == str(point)], 'the replayed point is checked'
    before = exp.rewind_state(0, 10)
    raw = torch.load(point, weights_only=True); k = next(iter(raw)); raw[k] = raw[k] + 1; torch.save(raw, point)
    _CHECKED.clear()
    probs = verify(store)
    assert [p['path'] for p in probs] in ([str(point)], [str(point.parent)]), probs   # the point, or its dense run whole
    with pytest.raises(StoreCorrupt, match='lottery store repair'): exp.rewind_state(0, 10)
    assert all(p['repaired'] for p in repair(store)) and not point.exists()
    exp = run_imp(get_preset('smoke', rewind_steps=('5it', '10it'), levels=1), store, progress=False)
    assert verify(store) == [] and all(torch.equal(before[n], v) for n, v in exp.rewind_state(0, 10).items())


# ------------------------------------------------------------------ verify while a writer runs; missing stores; keys
def test_verify_leaves_a_held_temporary_file_alone(tmp_path):
    from lottery_nb.config import get_preset
    from lottery_nb.imp import run_imp
    from lottery_nb.store import file_lock, verify
    store = tmp_path / 'runs'
    exp = run_imp(get_preset('smoke', rewind_steps=('5it',), levels=1), store, progress=False)
    tmps = [exp.level_dir(0, 5, 1) / '.weights.pt.ab12.tmp', exp.path / 'analysis' / '.path-0123.json.cd34.tmp']
    for t in tmps: t.parent.mkdir(exist_ok=True); t.write_bytes(b'half')
    with file_lock(exp.unit_lock(0, 5)), file_lock(exp.path / 'analysis' / 'path-0123.lock'):
        assert verify(store) == []                       # their writers hold the locks: being written, not stale
    assert sorted(p['path'] for p in verify(store)) == sorted(map(str, tmps))


def test_missing_store_and_bad_key_give_the_command_lines_sentence(tmp_path):
    from lottery_nb.config import LotteryError
    from lottery_nb.store import list_runs, repair, verify
    for f in (verify, repair, list_runs):
        with pytest.raises(LotteryError, match=r"The store '.*nope' does not exist; give the folder"):
            f(tmp_path / 'nope')
    (tmp_path / 'etc').mkdir(); (tmp_path / 'etc' / 'config.json').write_text('{}')
    store = tmp_path / 'runs'; store.mkdir()
    for action in ('list', 'verify', 'repair'):
        r = run(store_cmd(action, store, '--key', '../etc'))
        assert r.returncode == 2 and "'../etc' is not an experiment of the store" in r.stderr, (action, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------ tables, --store, compact seeds
def test_store_list_json_store_option_and_compact_seeds(tmp_path):
    from lottery_nb.store import load_frame
    store = tmp_path / 'runs'
    assert cli(*SMOKE, '--levels', '1', '--set', 'dense_seeds=3', store=store).returncode == 0
    r = run(store_cmd('list', '--store', store, '--json'))
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert len(rows) == 1 and rows[0]['seeds_text'] == '0 (+2 dense for ε)' and len(rows[0]['seeds']) == 3
    assert rows[0]['levels'] == 1 and not rows[0]['mixed'] and len(rows[0]['environments']) == 1
    table = run(store_cmd('list', store)).stdout
    assert '0 (+2 dense for ε)' in table and rows[0]['environments'][0] in table
    twice = run(store_cmd('list', store, '--store', tmp_path / 'other'))
    assert twice.returncode == 2 and 'given twice' in twice.stderr
    df = load_frame(store)
    assert len(df) == 3 + 1 and {'key', 'kind', 'test_error', 'provenance.environment.threads'} <= set(df.columns)
    assert (df['key'] == rows[0]['key']).all() and sorted(df['level']) == [0, 0, 0, 1]


def test_replot_of_a_finished_run_reads_each_store_file_once_and_no_data(tmp_path):
    "What fig5 reads (run_imp, results, every level's metrics, the threshold, the test-set size): each file once."
    store, cache = tmp_path / 'runs', tmp_path / 'cache'
    assert run([BIN / 'lottery-imp', *SMOKE, '--seeds', '0,1', '--store', store],
               env={'LOTTERY_CACHE': str(cache)}).returncode == 0
    script = f'''
import sys, collections, json
opens = collections.Counter()
sys.addaudithook(lambda ev, args: ev == 'open' and isinstance(args[0], str) and args[0].startswith({str(store)!r})
                 and opens.update([args[0]]))
import lottery_nb.data as data
def no_data(*a, **k): raise SystemExit('the data set was loaded')
data.get_data = no_data
import lottery_nb.paths, lottery_nb.evaluator, lottery_nb.imp
lottery_nb.paths.get_data = lottery_nb.imp.get_data = no_data
from lottery_nb.config import get_preset
from lottery_nb.imp import run_imp
from lottery_nb.connectivity import matching_threshold
from lottery_nb.paths import test_examples
cfg = get_preset('smoke', seeds=(0, 1), rewind_steps=('5it',))
exp = run_imp(cfg, {str(store)!r}, progress=False)
rows = exp.results()
E = [exp.metrics(r['seed'], r['rewind_step'], r['level'])['test_error'] for r in rows]
thr = matching_threshold(exp); n = test_examples(cfg)
print(json.dumps({{'rows': len(rows), 'n': n, 'opens': dict(opens)}}))
'''
    r = run([sys.executable, '-c', script], env={'LOTTERY_CACHE': str(cache)})
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out['rows'] == 2 * 3 and out['n'] > 0
    metrics = [p for p in out['opens'] if p.endswith('metrics.json')]
    assert len(metrics) == 2 + 2 * 2, out['opens']               # every finished level's metrics, read once
    assert max(out['opens'].values()) == 1, out['opens']         # no file of the store is read twice


# ------------------------------------------------------------------ the execution environment in the provenance
def effective_isa(value: str | None) -> str | None:
    env = {} if value is None else {'ONEDNN_MAX_CPU_ISA': value}
    r = run([sys.executable, '-c', 'from lottery_nb.store import onednn_isa; print(onednn_isa())'], env=env)
    return r.stdout.strip().splitlines()[-1] if r.returncode == 0 else None


@pytest.fixture(scope='module')
def other_isa():
    "An `ONEDNN_MAX_CPU_ISA` whose instruction set differs from this CPU's default (AVX2 on AVX-512 machines, as the issue)."
    default = effective_isa(None)
    if default in (None, 'None'): pytest.skip('torch has no oneDNN here: no instruction set to compare')
    for v in ('AVX2', 'SSE41'):
        if effective_isa(v) != default: return v, default
    pytest.skip(f'this CPU runs oneDNN at {default}, which AVX2 and SSE41 do not lower')


def test_resume_under_another_instruction_set_is_refused_then_allowed_and_recorded(tmp_path, other_isa):
    isa, default = other_isa
    store = tmp_path / 'runs'
    assert cli(*SMOKE, '--levels', '1', store=store).returncode == 0
    before = snapshot(store)
    r = run([BIN / 'lottery-imp', *SMOKE, '--levels', '2', '--store', store], env={'ONEDNN_MAX_CPU_ISA': isa})
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert ('Level 1 of seed 0, rewind step 5 was trained in environment' in r.stderr and f'oneDNN {default}' in r.stderr
            and 'would continue it in' in r.stderr and '--allow-mixed-environment' in r.stderr), r.stderr
    assert not [k for k in before if not same(before[k], snapshot(store).get(k))]   # refused before training
    ok = run([BIN / 'lottery-imp', *SMOKE, '--levels', '2', '--allow-mixed-environment', '--store', store],
             env={'ONEDNN_MAX_CPU_ISA': isa})
    assert ok.returncode == 0, ok.stderr
    from lottery_nb.store import list_runs
    row = list_runs(store)[0]
    assert row['mixed'] and len(row['environments']) == 2 and row['levels'] == 2, row
    assert 'MIXED: 2 environments' in run(store_cmd('list', store)).stdout


def test_first_level_on_a_dense_run_of_another_environment_says_so_in_one_line(tmp_path, other_isa):
    isa, default = other_isa
    store = tmp_path / 'runs'
    assert cli(*SMOKE, '--levels', '0', store=store).returncode == 0
    r = run([BIN / 'lottery-imp', *SMOKE, '--levels', '1', '--store', store], env={'ONEDNN_MAX_CPU_ISA': isa})
    assert r.returncode == 0, r.stderr
    said = [l for l in r.stderr.splitlines() if 'the dense run of seed 0 was trained in' in l]
    assert len(said) == 1 and f'oneDNN {default}' in said[0], r.stderr
