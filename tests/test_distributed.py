"torchrun helpers: chain split, and DDP over 2 gloo processes equal to one process with the same global batch."
import os, shutil, subprocess, sys, textwrap
from pathlib import Path

import pytest
import torch

from lottery_nb.config import LotteryError, get_preset
from lottery_nb.distributed import dist_env, idle_message, is_writer, split_chains

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
    from lottery_nb.distributed import init_distributed, is_writer, train_ddp
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
