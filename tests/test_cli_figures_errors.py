"A user's mistake found inside a figure notebook (any LotteryError subclass) is one sentence and exit status 2."
from conftest import figures_cmd, run


def test_diverged_training_in_a_notebook_is_one_sentence(tmp_path):
    r = run(figures_cmd('--preset', 'smoke', '--only', 'fig5', '--set', 'lr=1e6', '--no-progress',
                        '--store', tmp_path / 'runs', '--out', tmp_path / 'out'))
    assert r.returncode == 2, r.stdout + r.stderr
    assert 'Traceback' not in r.stderr and 'fig5 failed:' not in r.stderr, r.stderr
    line = [l for l in r.stderr.splitlines() if l.startswith('lottery-figures: error: fig5:')]
    assert len(line) == 1 and 'diverged' in line[0], r.stderr
