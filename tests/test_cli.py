"The lottery imp command (and its alias lottery-imp): a run, its table, and every kind of bad input (one sentence, exit 2, nothing written)."
import pytest

from conftest import cli


def test_smoke_run_prints_table(store):
    r = cli('--preset', 'smoke', '--no-progress', store=store)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    head = next(i for i, l in enumerate(lines) if l.strip().startswith('level'))
    assert 'rewind 0: test err %' in lines[head] and 'rewind 5: test err %' in lines[head]
    body = [l.split() for l in lines[head + 2:] if not l.startswith('*')]
    # 320 prunable weights: 320 -> 256 -> 256 - ceil(0.2 * 256) = 204 (63.75%)
    assert [b[0] for b in body] == ['0', '1', '2'] and [b[1] for b in body] == ['100.0%', '80.0%', '63.7%']
    # one seed: its error alone, no '± 0.00 (1)'; the matching levels marked against the dense error + ε, ε with its n
    assert '±' not in r.stdout and all(b[2] != '±' for b in body)
    assert lines[-1] == '* matching: mean test error <= ' + lines[-1].split('<= ')[1] and 'ε = 0 (one dense run' in lines[-1]
    assert body[0][-2] == '*'   # level 0 is the dense error itself: matching
    # a second run finds everything stored
    again = cli('--preset', 'smoke', '--no-progress', store=store)
    assert again.returncode == 0 and again.stdout.splitlines()[head:] == lines[head:]


@pytest.mark.parametrize('args, message', [
    (['--preset', 'cifar11'], "Unknown preset 'cifar11'; choose one of"),
    (['--preset', 'smoke', '--set', 'prune_fraction=1.5'], 'prune_fraction=1.5 is outside (0, 1)'),
    (['--preset', 'smoke', '--set', 'prune_fraction=0'], 'prune_fraction=0.0 is outside (0, 1)'),
    (['--preset', 'smoke', '--rewind-steps', '0it,500it'], "Rewind step '500it' (500 steps) is past the end of training"),
    (['--preset', 'smoke', '--rewind-steps', '5steps'], "Step '5steps' is malformed"),
    (['--preset', 'smoke', '--set', 'training_steps=1.5ep'], "Step '1.5ep' is malformed"),
    (['--preset', 'smoke', '--set', 'dataset=cifar1000'], 'cifar1000'),
    (['--preset', 'smoke', '--set', 'model=resnet9'], 'resnet9'),
    (['--preset', 'smoke', '--set', 'learning_rate=0.1'], "Unknown config field 'learning_rate'"),
    (['--preset', 'smoke', '--set', 'optimizer=adam'], "optimizer='adam' is not allowed"),
    (['--preset', 'smoke', '--set', 'device=cuda:7'], 'cuda:7'),
])
def test_bad_input_one_sentence_nothing_written(store, args, message):
    r = cli(*args, '--no-progress', store=store)
    assert r.returncode == 2, (r.stdout, r.stderr)
    err = r.stderr.strip()
    assert message in err and err.startswith('lottery-imp: error:') and 'Traceback' not in err
    assert len(err.splitlines()) == 1
    assert not store.exists() or not any(store.iterdir())


def test_missing_cifar_says_where_and_how(store, tmp_path):
    r = cli('--preset', 'cifar10_resnet20', '--set', f'data_kwargs={{"root": "{tmp_path}/nodata"}}', '--no-progress', store=store)
    assert r.returncode == 2 and 'nodata' in r.stderr and 'download' in r.stderr, r.stderr
    assert not store.exists() or not any(store.iterdir())


def test_list_presets_and_show_config():
    r = cli('--list-presets')
    assert r.returncode == 0 and all(p in r.stdout for p in ('cifar10_resnet20', 'cifar100_resnet18', 'imagenet_resnet50', 'cpu', 'smoke'))
    s = cli('--preset', 'smoke', '--set', 'lr=0.05', '--show-config')
    assert s.returncode == 0 and '"lr": 0.05' in s.stdout
