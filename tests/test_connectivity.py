"""The analysis cache across processes: two processes asking for the same plane compute it once; a plane killed with
SIGKILL at any moment resumes from its last saved chunk to the same bits as an uninterrupted one."""
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import DEADLINE, ENV, ROOT, appears

from lottery_nb.config import get_preset
from lottery_nb.connectivity import error_plane
from lottery_nb.imp import run_imp

CFG = dict(seeds=(0,), rewind_steps=('0it',), levels=1)
PLANE = dict(grid=(61, 41), rows_per_chunk=2, batch_points=3, progress=False)

SCRIPT = """
import json, sys
from lottery_nb.config import get_preset
from lottery_nb.connectivity import error_plane
from lottery_nb.imp import Experiment
exp = Experiment(get_preset('smoke', **{cfg}), sys.argv[1])
chunks = []
res = error_plane(exp, 0, 0, 0, on_chunk=lambda done, rows: chunks.append(done), **{plane})
print(json.dumps({{'chunks': len(chunks), 'sum': float(res['test_loss'].sum())}}), flush=True)
"""


def script():
    return SCRIPT.format(cfg=repr(CFG), plane=repr(PLANE))


@pytest.fixture
def exp(tmp_path):
    return run_imp(get_preset('smoke', **CFG), tmp_path / 'runs', progress=False)


def launch(exp):
    return subprocess.Popen([sys.executable, '-c', script(), str(exp.store)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)


def test_two_processes_compute_a_plane_once(exp):
    procs = [launch(exp) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    res = [json.loads(o[0].strip().splitlines()[-1]) for o in outs]
    rows = PLANE['grid'][0]
    assert sorted(r['chunks'] for r in res) == [0, -(-rows // PLANE['rows_per_chunk'])]  # one computed, one read
    assert res[0]['sum'] == res[1]['sum']
    files = sorted(p.name for p in (exp.path / 'analysis').iterdir() if not p.name.endswith('.lock'))
    assert len(files) == 1 and files[0].startswith('plane-') and files[0].endswith('.pt')


def test_killed_plane_resumes_bitwise(exp):
    analysis = exp.path / 'analysis'
    p = launch(exp)
    t0 = time.time()
    while not list(analysis.glob('plane-*.partial.pt')) and time.time() - t0 < DEADLINE and p.poll() is None:
        time.sleep(0.02)
    rewritten = appears(analysis, 'plane-*.partial.pt')   # kill on an event: the next chunk's save, not after a fixed time
    while not rewritten() and time.time() - t0 < DEADLINE and p.poll() is None:
        time.sleep(0.01)
    p.send_signal(signal.SIGKILL); p.wait()
    assert not list(analysis.glob('plane-*[0-9a-f].pt')), 'the plane finished before it could be killed; make it larger'
    from lottery_nb.store import load_torch
    done = load_torch(next(analysis.glob('plane-*.partial.pt')))['rows_done']
    assert 0 < done < PLANE['grid'][0]
    chunks = []
    resumed = error_plane(exp, 0, 0, 0, on_chunk=lambda d, r: chunks.append(d), **PLANE)
    assert chunks[0] > PLANE['rows_per_chunk'] and chunks[0] >= done  # it went on from the saved rows
    fresh = error_plane(exp, 0, 0, 0, cache=False, **PLANE)
    for k in ('test_error', 'test_loss', 'point_test_error'):
        assert np.array_equal(resumed[k], fresh[k]), k
    left = [q.name for q in analysis.iterdir() if not q.name.endswith('.lock')]
    assert len(left) == 1 and not left[0].startswith('.'), left  # no partial grid, no temporary file
