"Under torchrun (chains split over ranks) rank 0 prints one banner and one complete summary; other ranks print nothing."
import re, sys
from pathlib import Path

from lottery_nb.cli import wait_for_run
from lottery_nb.config import get_preset
from lottery_nb.imp import run_imp

from conftest import run

BIN = Path(sys.executable).parent
ARGS = ['--preset', 'smoke', '--levels', '2', '--set', 'training_steps=200it', '--set', 'milestones=150it', '--no-progress']


def test_rank0_waits_for_every_chain_and_prints_once(tmp_path):
    """Rank 0's own work is stored already (dense run and rewind-0 chain), so it ends long before rank 1, which trains
    the rewind-5 chain: the old code printed rank 0's table at once with '-' for the rewind-5 levels, and a banner per rank."""
    store = tmp_path / 'runs'
    first = run([BIN / 'lottery', 'imp', *ARGS, '--rewind-steps', '0it', '--store', store])
    assert first.returncode == 0, first.stderr[-3000:]
    p = run([BIN / 'torchrun', '--standalone', '--nproc_per_node=2', '-m', 'lottery_nb.cli', 'imp', *ARGS,
             '--rewind-steps', '0it,5it', '--store', store])
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.count('lottery imp: preset smoke') == 1, p.stdout     # one banner, rank 0's
    assert p.stdout.count('rewind 5: test err %') == 1, p.stdout         # one table
    rows = [l for l in p.stdout.splitlines() if re.match(r'\s*\d+\s+\d+\.\d%', l)]
    cells = [re.findall(r'\d+\.\d\d \(1\)', l) for l in rows]                 # one seed: 'mean (1)', '-' when missing
    assert len(rows) == 3 and all(len(c) == 2 for c in cells) and ' - ' not in ''.join(rows), p.stdout   # levels 0..2, both rewind steps filled
    assert 'Traceback' not in p.stderr, p.stderr[-3000:]


def test_wait_for_run_reads_the_store(tmp_path):
    cfg = get_preset('smoke', rewind_steps=('0it',), levels=1)
    exp = run_imp(cfg, tmp_path, progress=False)
    assert wait_for_run(exp, poll=0.01, timeout=5)
    (exp.level_dir(0, 0, 1) / 'metrics.json').unlink()                   # a chain another rank has not finished
    assert not wait_for_run(exp, poll=0.01, timeout=0.05)
