"Bad command-line input: exit status 2, one line on stderr naming the value, nothing written, nothing trained."
import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run(cmd, *args, cwd=ROOT, env=None):
    "Run a console script of this venv as a user would."
    return subprocess.run([str(BIN / cmd), *args], capture_output=True, text=True, timeout=600, cwd=cwd,
                          env={**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONUNBUFFERED': '1', **(env or {})})


def one_line_error(r, prog, *words):
    err = r.stderr.strip()
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert len(err.splitlines()) == 1 and err.startswith(f'{prog}: error:') and 'Traceback' not in err, err
    for w in words: assert w in err, (w, err)
    return err


BAD_RUN_ARGS = [
    (['--seeds', '1.5'], "'1.5'"), (['--seeds', '1e3'], "'1e3'"), (['--seeds', ''], "seeds='' is empty"),
    (['--seeds', '-1'], "'-1'"), (['--rewind-steps', '1.5'], "Step '1.5' is malformed"),
    (['--rewind-steps', ''], "rewind_steps='' is empty"), (['--set', 'data_kwargs=[1]'], "data_kwargs='[1]' is not a JSON object"),
    (['--set', 'data_kwargs=abc'], "data_kwargs='abc' is not a JSON object"), (['--set', 'seeds=1.5'], "'1.5'"),
    (['--levels', '1.5'], "--levels: '1.5' is not an integer >= 0"), (['--levels', '-2'], "'-2' is not an integer >= 0"),
    (['--set', 'lr'], "Override 'lr' is not of the form key=value"),
]


@pytest.mark.parametrize('cmd, prog', [(['lottery', 'imp'], 'lottery imp'), (['lottery-imp'], 'lottery-imp'),
                                       (['lottery', 'adaptive'], 'lottery adaptive')])
@pytest.mark.parametrize('args, message', BAD_RUN_ARGS)
def test_bad_run_arguments(tmp_path, cmd, prog, args, message):
    store = tmp_path / 'runs'
    r = run(*cmd, '--preset', 'smoke', '--store', str(store), '--no-progress', *args)
    one_line_error(r, prog, message)
    assert not store.exists()


@pytest.mark.parametrize('args, message', [
    (['--only', ''], 'The list of figures is empty'), (['--only', 'fig9'], 'Unknown figure fig9;'),
    (['--seeds', '1.5'], "'1.5'"), (['--seeds', ''], "seeds='' is empty"), (['--levels', 'x'], "'x' is not an integer"),
    (['--rewind-steps', '1.5'], "Step '1.5' is malformed"), (['--set', 'data_kwargs=abc'], 'not a JSON object'),
    (['--set', 'prune_fraction=3'], 'prune_fraction=3.0 is outside (0, 1)'),
    (['--only', 'fig3', '--param', 'grid=big'], "Parameter grid='big' has type str; fig3 needs int"),
    (['--only', 'fig5', '--param', 'grid=21'], 'Unknown parameter grid for fig5'),
    (['--jobs', '0'], "'0' is not a positive integer"), (['--preset', 'nope'], "Unknown preset 'nope'"),
])
@pytest.mark.parametrize('cmd, prog', [(['lottery', 'figures'], 'lottery figures'), (['lottery-figures'], 'lottery-figures')])
def test_bad_figures_arguments_before_any_kernel(tmp_path, cmd, prog, args, message):
    store, out = tmp_path / 'runs', tmp_path / 'figures'
    r = run(*cmd, '--preset', 'smoke', '--store', str(store), '--out', str(out), '--no-progress', *args)
    one_line_error(r, prog, message)
    assert not store.exists() and not out.exists()   # no kernel ran: nothing was written anywhere


@pytest.mark.parametrize('args, message', [(['--ratios', ''], "ratios='' is empty"), (['--ratios', 'a,b'], "ratios='a,b' is not a comma-separated"),
                                           (['--floor', 'x'], "--floor: invalid float value: 'x'"), (['--subsample', '0'], "'0' is not a positive integer")])
def test_bad_adaptive_settings(tmp_path, args, message):
    store = tmp_path / 'runs'
    one_line_error(run('lottery-adaptive', '--preset', 'smoke', '--store', str(store), *args), 'lottery-adaptive', message)
    assert not store.exists()


def test_store_path_is_a_file(tmp_path):
    f = tmp_path / 'runs'; f.write_text('not a folder')
    err = one_line_error(run('lottery', 'imp', '--preset', 'smoke', '--levels', '0', '--store', str(f), '--no-progress'), 'lottery imp')
    assert 'runs' in err
    assert f.read_text() == 'not a folder'


@pytest.mark.skipif(os.geteuid() == 0, reason='root ignores file permissions')
def test_read_only_store(tmp_path):
    store = tmp_path / 'runs'; store.mkdir(); store.chmod(0o555)
    try: err = one_line_error(run('lottery', 'imp', '--preset', 'smoke', '--levels', '0', '--store', str(store), '--no-progress'), 'lottery imp')
    finally: store.chmod(0o755)
    assert 'runs' in err and list(store.iterdir()) == []


def test_os_errors_reaching_the_command_line_are_one_sentence(monkeypatch, capsys):
    import lottery_nb.imp
    from lottery_nb import cli
    for code, words in [(errno.ENOSPC, 'the disk is full'), (errno.EROFS, 'read-only'), (errno.EACCES, 'permission denied'),
                        (errno.ENOTDIR, 'not a folder')]:
        def boom(*a, **k): raise OSError(code, os.strerror(code), '/store/x/weights.pt')
        monkeypatch.setattr(lottery_nb.imp, 'run_imp', boom)
        assert cli.main(['imp', '--preset', 'smoke', '--store', '/store', '--no-progress']) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith('lottery imp: error:') and "'/store/x/weights.pt'" in err and words in err, err


def test_lottery_version_help_and_usage():
    v = run('lottery', '--version')
    assert v.returncode == 0 and v.stdout.startswith('lottery-nb ')
    h = run('lottery', '--help')
    assert h.returncode == 0 and all(s in h.stdout for s in ('imp', 'adaptive', 'figures'))
    for cmd in (['lottery', 'adaptive'], ['lottery-adaptive']):
        a = run(*cmd, '--help')
        assert a.returncode == 0 and all(o in a.stdout for o in ('--ratios', '--floor', '--target-density', '--subsample', '--threshold',
                                                                '--ddof', '--rule', '--full-paths', '--stop-when-unmatched', '--store'))
    one_line_error(run('lottery'), 'lottery', 'subcommand')
    one_line_error(run('lottery', 'train'), 'lottery', "invalid choice: 'train'")


def test_help_does_not_import_torch():
    code = "import sys; from lottery_nb.cli import main\ntry: main(['imp', '--help'])\nexcept SystemExit: pass\nprint('torch' in sys.modules)"
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert r.stdout.strip().splitlines()[-1] == 'False', r.stdout


def test_kernel_threads_go_to_the_kernel_only(tmp_path, monkeypatch):
    "run_figures passes OMP_NUM_THREADS to the kernels' environment; the calling process's environment is untouched."
    import nbformat
    from lottery_nb.figures import run_notebook
    monkeypatch.delenv('OMP_NUM_THREADS', raising=False)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import os\nprint(os.environ.get('OMP_NUM_THREADS'))")])
    path = tmp_path / 'env.ipynb'; nbformat.write(nb, path)
    (tmp_path / 'out').mkdir()
    res = run_notebook('env', path, {}, tmp_path / 'out', env={'OMP_NUM_THREADS': '3'})
    assert res['ok'], res
    out = nbformat.read(tmp_path / 'out' / 'env.ipynb', as_version=4)
    assert out.cells[0].outputs[0]['text'].strip() == '3'
    assert 'OMP_NUM_THREADS' not in os.environ


def test_fig3_plane_levels_checked_before_training(tmp_path):
    "fig3's plane_levels is checked against levels in its setup cell: the notebook fails there, nothing is trained."
    r = run('lottery', 'figures', '--preset', 'smoke', '--only', 'fig3', '--param', 'plane_levels=[99]', '--no-progress',
            '--store', str(tmp_path / 'runs'), '--out', str(tmp_path / 'out'))
    assert r.returncode == 2, r.stdout + r.stderr   # a LotteryError in the notebook: the user's mistake
    assert 'Traceback' not in r.stderr and 'fig3 at cell [' in r.stderr and 'Parameter plane_levels has [99]; planes exist for levels 0..1' in r.stderr
    assert not (tmp_path / 'runs').exists()


def test_empty_store_or_out_is_refused(tmp_path, capsys):
    "`--store ''` meant ./runs without a word; `--out ''` likewise the current folder: both are refused, nothing written."
    from lottery_nb import cli
    for argv, msg in [(['imp', '--preset', 'smoke', '--store', ''], "--store '' is empty"),
                      (['adaptive', '--preset', 'smoke', '--store', ' '], "--store ' ' is empty"),
                      (['store', 'verify', ''], "the store '' is empty"),
                      (['figures', '--preset', 'smoke', '--only', 'fig5', '--out', ''], "--out '' is empty")]:
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and msg in err, err


def test_runner_names_stay_importable_from_cli():
    "The figure runner moved to `lottery_nb.figures`; `lottery_nb.cli` re-exports the names users imported from it."
    from lottery_nb import cli, figures
    for n in ['FIGURES', 'HEARTBEAT_ENV', 'KERNEL_NOISE', 'available_figures', 'figure_jobs', 'figures_dir', 'forwarded',
              'heartbeat_line', 'heartbeat_lines', 'heartbeat_seconds', 'kernel_noise', 'notebook_parameters',
              'run_figures', 'run_notebook', 'user_errors']:
        assert getattr(cli, n) is getattr(figures, n), n
    import test_architecture   # and the runner does not import the command line (no cycle)
    assert 'cli' not in test_architecture.import_graph()['figures']
