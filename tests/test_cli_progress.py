"`lottery imp`'s progress off a terminal, two processes sharing one training, and SIGTERM."
import re, signal, subprocess, time
from pathlib import Path

import pytest

from lottery_nb.progress import read_status

from conftest import DEADLINE, imp_cmd, popen, run

LONG = ['--preset', 'smoke', '--levels', '2', '--set', 'training_steps=200it', '--set', 'milestones=150it',
        '--set', 'checkpoint_every=10it']


def test_progress_to_a_pipe_is_whole_lines(tmp_path):
    "Off a terminal: no carriage-return updates, whole lines at most every $LOTTERY_PROGRESS_LINES s and one at the end."
    r = run(imp_cmd('--preset', 'smoke', store=tmp_path), env={'LOTTERY_PROGRESS_LINES': '3600'})
    assert r.returncode == 0, r.stderr[-3000:]
    assert '\r' not in r.stderr, repr(r.stderr[-500:])
    lines = [l for l in r.stderr.splitlines() if l.startswith('training smoke')]
    assert len(lines) == 1 and re.fullmatch(r'training smoke: .*, (\d+)/\1 steps \(100%\), finished', lines[0]), r.stderr


def test_training_shared_by_two_processes_is_counted_once(tmp_path):
    """Two processes on one store divide the units between them; each one's count ends at 100% 'finished' (it was
    left at what it trained itself, 'stopped', and drawn as a failed bar in a notebook)."""
    st = [tmp_path / 'a.status', tmp_path / 'b.status']
    ps = [popen(imp_cmd(*LONG, '--no-progress', store=tmp_path / 'runs'), env={'LOTTERY_PROGRESS_FILE': str(s)}) for s in st]
    for p in ps: assert p.wait(timeout=DEADLINE) == 0
    ends = [read_status(s) for s in st]
    # a process that starts after the other has trained everything finds it all stored: 'cached', with the count read
    for e in ends: assert re.fullmatch(r'training smoke: .*(, (\d+)/\2 steps \(100%\), finished.*|cached \(\d+ steps read from the store\))', e), ends
    assert any('another process' in e or 'found in the store' in e for e in ends), ends


def test_sigterm_says_what_it_stopped_and_a_rerun_resumes(tmp_path):
    store = tmp_path / 'runs'
    p = popen(imp_cmd(*LONG, store=store), env={'LOTTERY_PROGRESS_LINES': '3600'}, stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    while not any(store.rglob('checkpoint.pt')):   # in the middle of a level
        assert p.poll() is None and time.monotonic() - t0 < DEADLINE, 'no checkpoint was written'
        time.sleep(0.05)
    p.send_signal(signal.SIGTERM)
    err = p.communicate(timeout=DEADLINE)[1]
    assert p.returncode == 143, err
    line = [l for l in err.splitlines() if 'SIGTERM' in l]
    assert len(line) == 1 and line[0].startswith('lottery-imp: stopped by SIGTERM while running training smoke') \
        and 're-run the same command to resume' in line[0] and 'Traceback' not in err, err
    r = run(imp_cmd(*LONG, '--no-progress', store=store))
    assert r.returncode == 0 and 'rewind 5: test err %' in r.stdout, r.stderr[-3000:]
