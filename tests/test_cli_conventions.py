"""Command-line conventions (issues 25 and 26): a quiet exit on a closed pipe, `--version` on every alias, `--param`
that cannot override an option, what cannot work refused before training, a full disk under `--out` in the store's
words, a kernel that dies named with how it ended, and the extra dense runs named in the banner and the bar."""
import os
import re
import subprocess
import sys
import textwrap

import pytest

from conftest import BIN, ENV, ROOT, adaptive_cmd, figures_cmd, imp_cmd, run

PIPE_CLOSED = 141   # 128 + SIGPIPE: what a shell shows for git in `git log | head -1`


def closed_stdout(cmd, env=None):
    "Run `cmd` with a stdout pipe whose reader is gone before the command writes (as `| head` that has exited)."
    r, w = os.pipe()
    os.close(r)
    try:
        p = subprocess.run([str(c) for c in cmd], stdout=w, stderr=subprocess.PIPE, text=True, timeout=600, cwd=ROOT,
                           env={**ENV, **(env or {})})
    finally:
        os.close(w)
    return p


@pytest.mark.parametrize('cmd, code', [([BIN / 'lottery', 'imp', '--preset', 'smoke', '--show-config'], PIPE_CLOSED),
                                       ([BIN / 'lottery-imp', '--list-presets'], PIPE_CLOSED),
                                       # argparse drops what it cannot write of --help and --version and exits 0
                                       ([BIN / 'lottery', '--help'], 0), ([BIN / 'lottery', 'imp', '--help'], 0),
                                       ([BIN / 'lottery-figures', '--version'], 0)])
def test_closed_pipe_is_a_quiet_exit(cmd, code):
    p = closed_stdout(cmd)
    assert (p.returncode, p.stderr) == (code, ''), (p.returncode, p.stderr)


def test_closed_pipe_store_list(tmp_path):
    "`lottery store list | head -1` (the store subcommand's own cells are another's; it runs under `lottery`'s guard)."
    (tmp_path / 'runs').mkdir()
    p = closed_stdout([BIN / 'lottery', 'store', 'list', tmp_path / 'runs'])
    assert (p.returncode, p.stderr) == (PIPE_CLOSED, ''), (p.returncode, p.stderr)


def test_head_in_a_shell_exits_0_without_a_message():
    "What a user types: the pipeline exits 0 and nothing is printed on stderr (it printed 'Broken pipe' 3 times in 5)."
    for _ in range(3):
        r = subprocess.run(['bash', '-c', f'{BIN / "lottery"} imp --preset smoke --show-config | head -1'], capture_output=True,
                           text=True, timeout=600, env=ENV)
        assert (r.returncode, r.stdout, r.stderr) == (0, '{\n', ''), (r.returncode, r.stdout, r.stderr)


@pytest.mark.parametrize('cmd', [['lottery-imp'], ['lottery-figures'], ['lottery-adaptive'], ['lottery', 'imp'],
                                 ['lottery', 'figures'], ['lottery', 'adaptive'], ['lottery']])
def test_version_on_every_alias(cmd):
    r = run([BIN / cmd[0], *cmd[1:], '--version'])
    assert r.returncode == 0 and re.fullmatch(r'lottery-nb \S+\n', r.stdout), (r.stdout, r.stderr)


def one_line(r, prog, *words):
    err = r.stderr.strip()
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert len(err.splitlines()) == 1 and err.startswith(f'{prog}: error:') and 'Traceback' not in err, err
    for w in words: assert w in err, (w, err)
    return err


@pytest.mark.parametrize('param, option', [('store="/tmp"', '--store'), ('out_dir="B"', '--out'), ('preset="cpu"', '--preset'),
                                           ('levels=1', '--levels'), ('seeds=[0]', '--seeds'), ('overrides={"lr": 0.05}', '--set')])
def test_param_cannot_override_an_option(tmp_path, param, option):
    store, out = tmp_path / 'runs', tmp_path / 'out'
    r = run(figures_cmd('--preset', 'smoke', '--only', 'fig5', '--param', param, '--store', store, '--out', out, '--no-progress'))
    one_line(r, 'lottery-figures', f'cannot set {param.split("=")[0]}, which {option} sets; use {option} instead.')
    assert not store.exists() and not out.exists()


LEVELS_60 = 'Level 22 would prune the last of the 320 prunable weights (level 21 keeps 1), so 60 levels cannot be trained; use at most 21 levels.'


@pytest.mark.parametrize('cmd, prog', [(imp_cmd, 'lottery-imp'), (adaptive_cmd, 'lottery-adaptive')])
def test_levels_past_zero_weights_refused_before_training(tmp_path, cmd, prog):
    store = tmp_path / 'runs'
    one_line(run(cmd('--preset', 'smoke', '--levels', '60', '--no-progress', store=store)), prog, LEVELS_60)
    assert not store.exists() or not any(store.rglob('*.pt'))


def test_figures_refuse_levels_and_a_short_fig4_before_any_kernel(tmp_path):
    store, out = tmp_path / 'runs', tmp_path / 'out'
    one_line(run(figures_cmd('--preset', 'smoke', '--only', 'fig5', '--levels', '60', '--store', store, '--out', out)),
             'lottery-figures', LEVELS_60)
    short = ['--set', 'training_steps=5it', '--set', 'milestones=', '--rewind-steps', '0it']
    one_line(run(figures_cmd('--preset', 'smoke', '--only', 'fig4', *short, '--store', store, '--out', out)), 'lottery-figures',
             "Training for '5it' (5 steps) is shorter than one epoch (8 batches of 32)")
    one_line(run(adaptive_cmd('--preset', 'smoke', *short, '--no-progress', store=store)), 'lottery-adaptive',
             'shorter than one epoch')
    assert not out.exists() and not (store.exists() and any(store.rglob('*.pt')))   # no kernel, nothing trained


FAULTS = textwrap.dedent('''
    """Test faults injected into `lottery` and its kernels (issue 25, 26): `LOTTERY_TEST_ENOSPC=<folder>` makes every
    write under <folder> fail as a full disk would, in the process named by `LOTTERY_TEST_WHERE` ('main' or 'kernel');
    `LOTTERY_TEST_KILL_KERNEL=1` kills a kernel with SIGKILL when it imports lottery_nb.plots (no error is recorded)."""
    import builtins, errno, os, sys
    def _kernel(): return 'ipykernel' in ' '.join(sys.argv)
    _under, _where = os.environ.get('LOTTERY_TEST_ENOSPC'), os.environ.get('LOTTERY_TEST_WHERE', 'main')
    if _under:
        _open = builtins.open
        def open(file, mode='r', *a, **k):
            if (isinstance(file, (str, os.PathLike)) and any(c in mode for c in 'wax+')
                    and os.path.abspath(os.fspath(file)).startswith(_under) and _kernel() == (_where == 'kernel')):
                raise OSError(errno.ENOSPC, 'No space left on device', os.fspath(file))
            return _open(file, mode, *a, **k)
        builtins.open = open
    if os.environ.get('LOTTERY_TEST_KILL_KERNEL'):
        import importlib.abc, signal
        class _Kill(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name == 'lottery_nb.plots' and _kernel(): os.kill(os.getpid(), signal.SIGKILL)
        sys.meta_path.insert(0, _Kill())
''')


@pytest.fixture
def faults(tmp_path):
    d = tmp_path / 'site'; d.mkdir(); (d / 'sitecustomize.py').write_text(FAULTS)
    return {'PYTHONPATH': os.pathsep.join([str(d)] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p])}


@pytest.mark.parametrize('where', ['main', 'kernel'])
def test_full_disk_under_out_is_the_stores_sentence(tmp_path, faults, where):
    """A full disk under --out, met by `lottery figures` writing the executed notebook (main) or by the notebook saving
    its figure (kernel): the store's sentence and exit status 2 (it was 'fig2 at OSError: [Errno 28] ...', exit 1)."""
    out = tmp_path / 'out'
    r = run(figures_cmd('--preset', 'smoke', '--only', 'fig1', '--store', tmp_path / 'runs', '--out', out, '--no-progress'),
            env={**faults, 'LOTTERY_TEST_ENOSPC': str(out), 'LOTTERY_TEST_WHERE': where})
    assert r.returncode == 2, (r.stdout, r.stderr)
    line = [l for l in r.stderr.splitlines() if l.startswith('lottery-figures: error: fig1: ')]
    assert len(line) == 1 and re.fullmatch(rf"lottery-figures: error: fig1: Cannot write '{re.escape(str(out))}/smoke/\S+': "
                                           r"the disk is full; free some space and re-run to resume\.", line[0]), r.stderr
    assert 'Traceback' not in r.stderr and 'fig1 failed:' not in r.stderr, r.stderr


def test_a_kernel_that_dies_is_named_with_how_it_ended(tmp_path, faults):
    "No recorded error, no message: the failure says which notebook, that SIGKILL ended its kernel, and where its log is."
    out = tmp_path / 'out'
    r = run(figures_cmd('--preset', 'smoke', '--only', 'fig5', '--store', tmp_path / 'runs', '--out', out, '--no-progress'),
            env={**faults, 'LOTTERY_TEST_KILL_KERNEL': '1'})
    assert r.returncode == 1, (r.stdout, r.stderr)
    last = r.stderr.strip().splitlines()[-1]
    log = out / 'smoke' / 'notebooks' / 'fig5_rewind.stderr.log'
    assert last.startswith('lottery-figures: 1 notebook failed: fig5 at DeadKernelError') and 'its kernel was killed by SIGKILL' in last \
        and str(log) in last, r.stderr
    assert log.exists()


def test_extra_dense_runs_named_in_banner_and_bar(tmp_path, monkeypatch):
    "The banner says how much of the training the extra dense runs for ε are; the bar calls them 'ε run i/n'."
    r = run(imp_cmd('--preset', 'smoke', '--set', 'dense_seeds=3', '--no-progress', store=tmp_path / 'runs'))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    # 3 dense runs of 40 steps, 2 levels from rewind 0 (40 steps) and 5 (35 steps): 120 + 150 = 270 steps
    assert lines[1] == ("  plus 2 extra dense runs for ε (the spread of the dense test error over 3 runs; the bar says 'ε run i/2'): "
                        "80 of the 270 training steps (30%)"), r.stdout
    assert lines[-1].startswith('* matching: mean test error <= ') and lines[-1].endswith(', the std over 3 dense runs'), r.stdout
    import lottery_nb.progress as lp
    from lottery_nb.config import get_preset
    from lottery_nb.imp import run_imp
    seen = []
    real = lp.write_status
    monkeypatch.setattr(lp, 'write_status', lambda text, path=None: (seen.append(text), real(text, path))[1])
    monkeypatch.setenv(lp.PROGRESS_ENV, str(tmp_path / 'nb.status'))
    run_imp(get_preset('smoke', dense_seeds=3, levels=1), tmp_path / 'runs2', progress=False)
    units = {m.group(1) for s in seen if (m := re.match(r'training smoke: ([^,]+), \d+/', s))}
    assert {'dense level 0 (seed 0)', 'ε run 1/2', 'ε run 2/2'} <= units, units
    assert not any(re.search(r'seed \d{6,}', s) for s in seen), seen   # no derived 19-digit seed in the bar
