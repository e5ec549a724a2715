"torchrun helpers: chain split, and DDP over 2 gloo processes equal to one process with the same global batch."
import json, os, shutil, signal, subprocess, sys, textwrap, time
from pathlib import Path

import pytest
import torch

from lottery_nb.config import LotteryError, get_preset
from lottery_nb.distributed import dist_env, eval_share, idle_message, is_writer, split_chains

BIN = Path(sys.executable).parent


def test_split_is_deterministic_and_complete():
    chains = [(s, r) for s in range(4) for r in (0, 250, 2000)]
    for world in (1, 2, 3, 5, 12, 16):
        parts = [split_chains(chains, r, world) for r in range(world)]
        assert sorted(c for p in parts for c in p) == sorted(chains)
        assert parts == [split_chains(chains, r, world) for r in range(world)]
    assert idle_message(12, 16) .startswith('World size 16 exceeds the 12 independent chain(s): rank(s) 12, 13, 14, 15 will idle')
    with pytest.raises(LotteryError, match='rank=2 is not in 0..1'): split_chains(chains, 2, 2)
    with pytest.raises(LotteryError, match="RANK='x' is not an integer"): dist_env({'RANK': 'x'})
    assert is_writer({}) and not is_writer({'RANK': '1', 'WORLD_SIZE': '2'})


SCRIPT = textwrap.dedent('''
    import io, os, sys, torch
    from pathlib import Path
    torch.set_num_threads(1)
    from lottery_nb.config import get_preset
    from lottery_nb.data import get_data
    from lottery_nb.distributed import init_distributed, is_writer, leave_distributed, train_ddp
    from lottery_nb.models import get_model
    out, tag = Path(sys.argv[1]), sys.argv[2]
    rank, world = init_distributed('gloo')
    cfg = get_preset('smoke', batch_size=32, checkpoint_every='10it')
    data = get_data(cfg.dataset, **cfg.data_kwargs)
    plan = cfg.resolve(data.steps_per_epoch(cfg.batch_size))
    model = get_model(cfg.model, data.num_classes, data.input_shape, seed=0, **cfg.model_kwargs)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    class Ck:  # a file checkpointer; marks which rank saved
        p = out / f'ck_{tag}.pt'
        def load(self): return torch.load(self.p, weights_only=True) if self.p.exists() else None
        def save(self, st):
            (out / f'saved_{tag}_w{world}_rank{rank}').write_text(str(st['step']))
            buf = io.BytesIO(); torch.save(st, buf); tmp = self.p.with_suffix('.tmp'); tmp.write_bytes(buf.getvalue()); os.replace(tmp, self.p)
            if tag == 'resume' and st['step'] == 20 and not (out / 'killed_once').exists():
                (out / 'killed_once').write_text('x'); os._exit(1)  # die right after the checkpoint, as a kill would
        def clear(self): pass
    res = train_ddp(model, data, cfg, plan, 0, init, checkpointer=Ck())
    if is_writer(): torch.save(res, out / f'result_{tag}_world{world}.pt')
    leave_distributed()
''')


def launch(script, out, tag, nproc):
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    for k in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT'): env.pop(k, None)
    cmd = [sys.executable, str(script)] if nproc == 1 else [str(BIN / 'torchrun'), '--standalone', f'--nproc_per_node={nproc}', str(script)]
    return subprocess.run(cmd + [str(out), tag], env=env, capture_output=True, text=True, timeout=900)


def test_ddp_two_gloo_processes_match_one(tmp_path):
    "2 gloo processes (torchrun) with the global batch split in two equal one process with the whole batch (mlp, no BatchNorm)."
    script = tmp_path / 'ddp.py'; script.write_text(SCRIPT)
    one = launch(script, tmp_path, 'one', 1); assert one.returncode == 0, one.stderr
    two = launch(script, tmp_path, 'two', 2); assert two.returncode == 0, two.stderr[-3000:]
    r1, r2 = (torch.load(tmp_path / f'result_{t}_world{w}.pt', weights_only=True) for t, w in (('one', 1), ('two', 2)))
    for k, v in r1['state'].items():
        if v.is_floating_point():
            rel = ((r2['state'][k] - v).norm() / v.norm().clamp_min(1e-12)).item()
            assert rel < 1e-5, (k, rel)
    assert torch.allclose(r1['losses'], r2['losses'], rtol=1e-5, atol=1e-6)  # the recorded loss is the global batch's
    assert (tmp_path / 'saved_two_w2_rank0').exists() and not (tmp_path / 'saved_two_w2_rank1').exists()  # rank 0 alone writes
    # killed right after its checkpoint at step 20, then relaunched: both ranks resume from rank 0's file
    killed = launch(script, tmp_path, 'resume', 2)
    assert killed.returncode != 0 and (tmp_path / 'killed_once').exists() and not (tmp_path / 'result_resume_world2.pt').exists()
    again = launch(script, tmp_path, 'resume', 2); assert again.returncode == 0, again.stderr[-3000:]
    r3 = torch.load(tmp_path / 'result_resume_world2.pt', weights_only=True)
    assert torch.equal(r3['losses'], r2['losses']) and all(torch.equal(r3['state'][k], r2['state'][k]) for k in r2['state'])


# ---------------------------------------------------------------- lottery imp --ddp
from conftest import appears, differences, imp_cmd, popen, run, same, snapshot   # noqa: E402

# the smoke preset (MLP, no BatchNorm) with levels long enough for a kill to land mid-level: 3 x 200-step trainings
DDP_ARGS = ['--preset', 'smoke', '--rewind-steps', '0it', '--levels', '2', '--set', 'training_steps=200it',
            '--set', 'milestones=150it', '--set', 'checkpoint_every=10it', '--no-progress']


def torchrun_imp(*args, nproc=2):
    "`torchrun --standalone --nproc_per_node=N -m lottery_nb.cli imp ...`, as a user types it."
    return [BIN / 'torchrun', '--standalone', f'--nproc_per_node={nproc}', '-m', 'lottery_nb.cli', 'imp', *args]


def ok(p):
    assert p.returncode == 0, p.stderr[-3000:]
    return p


@pytest.fixture(scope='module')
def ddp_stores(tmp_path_factory):
    "The same experiment trained by one process and by 2 gloo ranks with --ddp (same global batch 32)."
    d = tmp_path_factory.mktemp('ddp')
    ok(run(imp_cmd(*DDP_ARGS, store=d / 'one')))
    two = ok(run(torchrun_imp(*DDP_ARGS, '--ddp', '--store', d / 'two')))
    return d, snapshot(d / 'one'), snapshot(d / 'two'), two


def rel_err(a: dict, b: dict) -> float:
    "Largest relative error ||a - b|| / ||a|| over the floating-point tensors of two state dicts."
    return max(((b[k] - v).norm() / v.norm().clamp_min(1e-12)).item() for k, v in a.items() if v.is_floating_point())


def test_cli_ddp_matches_one_process(ddp_stores):
    """`lottery imp --ddp` over 2 gloo ranks equals one process with the same global batch.

    The only difference is the order of the gradient sums (two half-batch means averaged instead of one mean over
    the batch): float rounding, measured at most 4.4e-7 relative on the weights after 200 steps. The tolerance is 1e-5
    relative on every stored weight tensor and 1e-5 on every recorded loss; masks, steps and test errors are equal."""
    d, one, two, p = ddp_stores
    assert p.stdout.count('level  density') == 1                 # the summary on rank 0 only
    assert set(one) == set(two)                                  # the same files, in the same run directory
    key = next(iter(one)).split('/')[0]
    assert two[f'{key}/config.json']['parallel'] == 'ddp' and one[f'{key}/config.json']['parallel'] == 'chains'
    levels = [k.rsplit('/', 1)[0] for k in one if k.endswith('metrics.json')]
    assert len(levels) == 3                                      # dense + 2 levels
    for lv in levels:
        assert same(one[f'{lv}/mask.pt'], two[f'{lv}/mask.pt']), lv
        assert rel_err(one[f'{lv}/weights.pt'], two[f'{lv}/weights.pt']) < 1e-5, lv
        assert torch.allclose(one[f'{lv}/losses.pt'], two[f'{lv}/losses.pt'], rtol=1e-5, atol=1e-5), lv
        m1, m2 = one[f'{lv}/metrics.json'], two[f'{lv}/metrics.json']
        assert (m1['test_error'], m1['train_error'], m1['steps']) == (m2['test_error'], m2['train_error'], m2['steps']), lv
    assert rel_err(one[f'{key}/seed_0/dense/rewind_0.pt'], two[f'{key}/seed_0/dense/rewind_0.pt']) == 0   # w_0: the same init


def test_cli_ddp_killed_and_resumed_equals_uninterrupted(ddp_stores, tmp_path):
    "2 DDP ranks SIGKILLed on rank 0's checkpoint of level 2, then relaunched: every stored file equals the run never killed."
    d, _, two, _ = ddp_stores
    store = tmp_path / 'runs'
    event = appears(store, '*/seed_0/rewind_0/level_2/checkpoint.pt')
    p, t0, seen = popen(torchrun_imp(*DDP_ARGS, '--ddp', '--store', store), start_new_session=True), time.monotonic(), False
    try:   # torchrun and its two workers share a new session: the kill takes them all
        while time.monotonic() - t0 < 900 and p.poll() is None:
            if event(): seen = True; break
            time.sleep(0.01)
        running = p.poll() is None
        if running: os.killpg(p.pid, signal.SIGKILL)
    finally:
        p.wait()
    assert seen and running
    mid = snapshot(store)
    assert not any(k.endswith('level_2/metrics.json') for k in mid)      # level 2 was cut off
    ok(run(torchrun_imp(*DDP_ARGS, '--ddp', '--store', store)))
    assert not differences(two, snapshot(store))
    assert not list(store.rglob('checkpoint.pt')) and not list(store.rglob('*.tmp'))


def test_ddp_bad_input(tmp_path, monkeypatch, capsys):
    "--ddp with group training, without torchrun, on CPU with BatchNorm, with a batch the ranks cannot share, or on CUDA without CUDA: one sentence, nothing written."
    store = tmp_path / 'runs'
    for args, msg in [(['--preset', 'smoke', '--ddp', '--group-size', '2'],
                       "parallel='ddp' (--ddp) trains one run at a time over all ranks and cannot be combined with group_size=2"),
                      (['--preset', 'smoke', '--ddp'], "parallel='ddp' (--ddp) needs a torchrun launch, but WORLD_SIZE and RANK are not set")]:
        p = run(imp_cmd(*args, store=store))   # the command a user types, without torchrun
        assert p.returncode == 2 and msg in p.stderr and len(p.stderr.strip().splitlines()) == 1, (args, p.stderr[-2000:])
    from lottery_nb.cli import imp_main   # as rank 0 of a torchrun launch of 2 or 3 (each refused before it joins a process group)
    cases = [(['--preset', 'cpu'], '2', "DDP of a model with BatchNorm ('mnist1d_cnn') needs CUDA devices for SyncBatchNorm, but training runs on cpu"),
             (['--preset', 'smoke'], '3', 'batch_size=32 cannot be split evenly over 3 ranks')]
    if not torch.cuda.is_available():   # a CUDA device on a machine without CUDA stays the clear error it is
        cases.append((['--preset', 'smoke', '--set', 'device=cuda'], '2', "device='cuda' was asked for but CUDA is not available on this machine"))
    for args, world, msg in cases:
        for k, v in (('RANK', '0'), ('WORLD_SIZE', world), ('LOCAL_RANK', '0')): monkeypatch.setenv(k, v)
        assert imp_main([*args, '--ddp', '--store', str(store), '--no-progress']) == 2
        err = capsys.readouterr().err
        assert msg in err and len(err.strip().splitlines()) == 1, (args, err)
    assert not store.exists() or not any(store.iterdir())


EVAL_SCRIPT = textwrap.dedent('''
    import json, sys, torch
    torch.set_num_threads(1)
    import torch.distributed as dist
    from lottery_nb.data import get_data
    from lottery_nb.distributed import evaluate_ddp, init_distributed
    from lottery_nb.models import get_model
    from lottery_nb.training import evaluate
    rank, world = init_distributed('gloo')
    data = get_data('synthetic', num_train=300, num_test=128)
    model = get_model('mlp', data.num_classes, data.input_shape, seed=0, hidden=[16])   # the same weights on every rank
    calls = []
    model.register_forward_hook(lambda m, i, o: calls.append(len(i[0])))
    out = {}
    for split, bs, limit in (('test', 50, None), ('test', 1000, None), ('train', 32, None), ('train', 7, 101)):
        calls.clear(); shared = evaluate_ddp(model, data, split, bs, limit); mine = list(calls)
        out[f'{split}-{bs}-{limit}'] = dict(shared=shared, alone=evaluate(model, data, split, bs, limit), batches=mine)
    json.dump(out, open(f'{sys.argv[1]}/eval_rank{rank}_world{world}.json', 'w'))
    dist.barrier(); dist.destroy_process_group()   # leave together: a rank exiting with the group alive may abort
''')


@pytest.mark.parametrize('nproc', [2, 3])
def test_evaluation_shared_by_ranks_equals_one_process(tmp_path, nproc):
    """`evaluate_ddp` over gloo ranks: each rank runs only its block of whole batches, and the result on every rank is
    one process's `evaluate`: the error counts exactly, the loss to 1e-12 relative (the same per-batch sums added in the
    same order; only a different summation order could move it, by float rounding)."""
    script = tmp_path / 'ev.py'; script.write_text(EVAL_SCRIPT)
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    for k in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT'): env.pop(k, None)
    p = subprocess.run([str(BIN / 'torchrun'), '--standalone', f'--nproc_per_node={nproc}', str(script), str(tmp_path)],
                       env=env, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    res = [json.loads((tmp_path / f'eval_rank{r}_world{nproc}.json').read_text()) for r in range(nproc)]
    sizes = {'test-50-None': (128, 50), 'test-1000-None': (128, 1000), 'train-32-None': (300, 32), 'train-7-101': (101, 7)}
    for key, (n, bs) in sizes.items():
        for r in range(nproc):
            sh, al = res[r][key]['shared'], res[r][key]['alone']
            assert sh['n'] == al['n'] == n, key
            assert round(sh['error'] * n) == round(al['error'] * n), (key, r, sh, al)   # error counts: exactly equal
            assert sh['loss'] == pytest.approx(al['loss'], rel=1e-12), (key, r)
            assert sh == res[0][key]['shared']                                   # every rank gets the same numbers
            mine = eval_share(n, bs, r, nproc)                                   # and ran only its own batches
            assert res[r][key]['batches'] == [min(bs, n - b * bs) for b in mine], (key, r)
        assert sum(len(res[r][key]['batches']) for r in range(nproc)) == -(-n // bs)   # every batch once
