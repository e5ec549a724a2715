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
    import sys, torch
    from pathlib import Path
    torch.set_num_threads(1)
    from lottery_nb.config import get_preset
    from lottery_nb.data import get_data
    from lottery_nb.distributed import init_distributed, is_writer, train_ddp
    from lottery_nb.models import get_model
    out = Path(sys.argv[1])
    rank, world = init_distributed('gloo')
    cfg = get_preset('smoke', batch_size=32, checkpoint_every='10it')
    data = get_data(cfg.dataset, **cfg.data_kwargs)
    plan = cfg.resolve(data.steps_per_epoch(cfg.batch_size))
    model = get_model(cfg.model, data.num_classes, data.input_shape, seed=0, **cfg.model_kwargs)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    class Ck:
        def load(self): return None
        def save(self, st): (out / f'ck_w{world}_rank{rank}').write_text(str(st['step']))
        def clear(self): pass
    res = train_ddp(model, data, cfg, plan, 0, init, checkpointer=Ck())
    if is_writer(): torch.save(res, out / f'result_world{world}.pt')
''')


def test_ddp_two_gloo_processes_match_one(tmp_path):
    script = tmp_path / 'ddp.py'; script.write_text(SCRIPT)
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    for k in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT'): env.pop(k, None)
    one = subprocess.run([sys.executable, str(script), str(tmp_path)], env=env, capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([str(BIN / 'torchrun'), '--standalone', '--nproc_per_node=2', str(script), str(tmp_path)],
                         env=env, capture_output=True, text=True, timeout=900)
    assert two.returncode == 0, two.stderr[-3000:]
    r1, r2 = (torch.load(tmp_path / f'result_world{w}.pt', weights_only=True) for w in (1, 2))
    for k, v in r1['state'].items():
        if v.is_floating_point():
            rel = ((r2['state'][k] - v).norm() / v.norm().clamp_min(1e-12)).item()
            assert rel < 1e-5, (k, rel)
    assert torch.allclose(r1['losses'], r2['losses'], rtol=1e-5, atol=1e-6)
    assert (tmp_path / 'ck_w2_rank0').exists() and not (tmp_path / 'ck_w2_rank1').exists()  # rank 0 alone writes
