"""The run store under stress: a run killed at any moment resumes to the same bits; two processes share a store;
damaged files are named. Kills are triggered by file events (a checkpoint written, a level finished), never by
timers, and each test checks that the run was unfinished when it was killed."""
import torch

from conftest import cli, differences, imp_cmd, kill_on, appears, leftovers, popen, snapshot, TIMEOUT

# Long enough that kills land inside levels, short enough for CI: 3 levels x 2 rewind steps of 240 steps.
ARGS = ['--preset', 'smoke', '--set', 'training_steps=240it', '--set', 'milestones=120it,180it',
        '--set', 'checkpoint_every=30it', '--rewind-steps', '0it,40it', '--levels', '3', '--no-progress']
# The moments of the kills, in order: inside the dense training, right after a level, inside a pruned level, after a level.
EVENTS = ('**/checkpoint.pt', '**/metrics.json', '**/level_*/checkpoint.pt', '**/metrics.json')


def finished(store):
    return len(list(store.rglob('metrics.json')))


def test_kill_anywhere_then_resume_is_bitwise_identical(tmp_path):
    ref, killed = tmp_path / 'ref', tmp_path / 'killed'
    r = cli(*ARGS, store=ref)
    assert r.returncode == 0, r.stderr
    total = finished(ref)
    assert total == 7       # dense + 3 levels x 2 rewind steps
    # kill -9 the same command at several moments (mid-level, between levels), resuming each time
    for pattern in EVENTS:
        k = kill_on(imp_cmd(*ARGS, store=killed), appears(killed, pattern))
        assert k.seen and k.running, (pattern, k)
        assert finished(killed) < total, pattern       # the run was unfinished when it was killed
    r2 = cli(*ARGS, store=killed)
    assert r2.returncode == 0, r2.stderr
    assert not differences(snapshot(ref), snapshot(killed))
    assert not leftovers(killed), leftovers(killed)


def test_interrupted_level_resumes_from_checkpoint(tmp_path):
    "A kill after a checkpoint leaves checkpoint.pt; the re-run continues from it instead of starting over."
    store = tmp_path / 'runs'
    args = [*ARGS, '--set', 'training_steps=2400it', '--set', 'milestones=1200it']
    k = kill_on(imp_cmd(*args, store=store), appears(store, '**/checkpoint.pt'))
    assert k.seen and k.running, k
    ck = list(store.rglob('checkpoint.pt'))
    assert ck, 'no checkpoint was written'
    assert not list(store.rglob('metrics.json'))    # killed inside the dense training
    step = torch.load(ck[0], weights_only=True)['step']
    assert step > 0 and step % 30 == 0


def test_two_processes_share_a_store(tmp_path):
    import subprocess
    ref, shared = tmp_path / 'ref', tmp_path / 'shared'
    args = [*ARGS, '--seeds', '0,1']
    assert cli(*args, store=ref).returncode == 0
    procs = [popen(imp_cmd(*args, store=shared), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=TIMEOUT) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert not differences(snapshot(ref), snapshot(shared))
    # both printed the same complete table
    tail = lambda s: s[s.index('level'):]
    assert tail(outs[0][0]) == tail(outs[1][0])


def test_damaged_store_file_is_named(tmp_path):
    store = tmp_path / 'runs'
    assert cli(*ARGS, '--levels', '1', store=store).returncode == 0
    w = next(store.rglob('rewind_0/level_1/weights.pt'))
    w.write_bytes(w.read_bytes()[:100])
    r = cli(*ARGS, '--levels', '2', store=store)
    assert r.returncode == 2 and str(w) in r.stderr and 'corrupt or truncated' in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
