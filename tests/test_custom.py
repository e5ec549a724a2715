"""Bring your own model and data: `custom_config` runs IMP, a path and the adaptive sweep on a plain `nn.Sequential`
over a `TensorDataset`; a changed model or data set (by the factory route, or re-registered under the same name)
never reuses a stored result; each wrong input is one sentence."""
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from lottery_nb.adaptive import AdaptiveSettings, run_adaptive
from lottery_nb.config import ExperimentConfig, LotteryError, get_preset
from lottery_nb.connectivity import interpolation_path
from lottery_nb.custom import custom_config
from lottery_nb.data import DATASETS, TensorDataSet, clear_data_cache, get_data, register_dataset
from lottery_nb.imp import run_imp
from lottery_nb.models import MODELS, register_model


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def blobs(n: int, seed: int, dim: int = 8, classes: int = 4) -> TensorDataset:
    "`classes` well separated Gaussian blobs in `dim` dimensions (the centres are the same for every seed)."
    centres = 3 * torch.randn(classes, dim, generator=torch.Generator().manual_seed(123))
    y = torch.arange(n) % classes
    return TensorDataset(centres[y] + torch.randn(n, dim, generator=torch.Generator().manual_seed(seed)), y)


TRAIN, TEST = blobs(256, 0), blobs(128, 1)
# two levels, one rewind step besides 0: 1 dense run + 2 chains of 2 levels, 40 steps each
SMALL = dict(preset='smoke', levels=2, seeds=(0,), rewind_steps=('0it', '5it'))


def net(width: int = 16):
    return lambda: nn.Sequential(nn.Linear(8, width), nn.ReLU(), nn.Linear(width, 4))


def metrics_files(store: Path) -> dict:
    "metrics.json path -> modification time, for every finished level in the store (adaptive links not followed)."
    return {p: p.stat().st_mtime_ns for p in store.rglob('metrics.json') if not any(q.is_symlink() for q in p.parents)}


def test_imp_path_and_adaptive_on_a_user_model(tmp_path):
    cfg = custom_config(net(), TRAIN, TEST, **SMALL)
    exp = run_imp(cfg, tmp_path, progress=False)
    rows = exp.results()
    assert [(r['rewind_step'], r['level']) for r in rows] == [(0, 0), (0, 1), (0, 2), (5, 0), (5, 1), (5, 2)]
    assert rows[0]['prunable_weights'] == 8 * 16 + 16 * 4 == 192                # the two Linear weights, not the biases
    assert [r['remaining_weights'] for r in rows[:3]] == [192, 192 - 39, 153 - 31]   # ceil(20%) of the remaining per level
    assert all(r['test_error'] < 0.1 for r in rows), rows                       # the blobs are well separated

    path = interpolation_path(exp, (0, 5, 1), (0, 5, 2), betas=(0, 0.5, 1), splits=('test',), progress=False)
    assert path['betas'].tolist() == [0, 0.5, 1]
    assert path['test_error'][0] == exp.metrics(0, 5, 1)['test_error']        # the path's ends are the stored solutions
    assert path['test_error'][-1] == exp.metrics(0, 5, 2)['test_error']
    assert path['test_barrier'] >= 0

    ax = run_adaptive(cfg, tmp_path, AdaptiveSettings(ratios=(0.2, 0.5, 0.8), betas=(0, 0.5, 1)), progress=False)
    last = ax.results()[-1]
    assert last['remaining_weights'] <= ax.target == ax.fixed.metrics(0, 5, 2)['remaining_weights']
    assert ax.sweep(0, last['rewind_step'], 1)['outcomes'][0]['ratio'] == 0.2

    before = metrics_files(tmp_path)    # the same model and data again, from a new config: nothing is trained
    again = custom_config(net(), TRAIN, TEST, **SMALL)
    assert again.key == cfg.key
    run_imp(again, tmp_path, progress=False)
    assert metrics_files(tmp_path) == before


def test_a_wider_model_or_other_data_reuses_nothing(tmp_path):
    cfg = custom_config(net(16), TRAIN, TEST, **SMALL)
    run_imp(cfg, tmp_path, progress=False)
    before = metrics_files(tmp_path)
    for other in (custom_config(net(32), TRAIN, TEST, **SMALL),                       # doubled width
                  custom_config(net(16), TRAIN, TEST, **SMALL, init='factory'),       # other initial weights
                  custom_config(net(16), TensorDataset(TRAIN.tensors[0] + 0.01, TRAIN.tensors[1]), TEST, **SMALL)):  # other data
        assert other.key != cfg.key
        exp = run_imp(other, tmp_path, progress=False)
        assert exp.path.name == other.key and len(exp.results()) == 6
        assert [r['steps'] for r in exp.results()] == [40, 40, 40, 40, 35, 35]     # trained, from step 0 or the rewind step 5
        assert len(list(exp.path.rglob('metrics.json'))) == 5                     # 1 dense run + 2 chains of 2 levels, all new
    assert {p: t for p, t in metrics_files(tmp_path).items() if p in before} == before   # the first run is untouched
    assert len(list(tmp_path.glob('*/config.json'))) == 4


def _chain_model(width):
    def build(num_classes, input_shape):
        return nn.Sequential(nn.Flatten(), nn.Linear(input_shape[-1], width), nn.ReLU(), nn.Linear(width, num_classes))
    return build


def test_reregistering_a_changed_model_or_data_set_under_the_same_name_reuses_nothing(tmp_path):
    cfg = ExperimentConfig(dataset='my_blobs', model='my_net', training_steps='40it', batch_size=32, levels=1,
                           seeds=(0,), device='cpu', checkpoint_every='20it')

    def data(scale):
        def load(device, root):
            (x, y), (xt, yt) = TRAIN.tensors, TEST.tensors
            return TensorDataSet('my_blobs', x * scale, y, xt * scale, yt, 4, device)
        return load
    try:
        register_dataset('my_blobs')(data(1.0))
        register_model('my_net')(_chain_model(16))
        first = run_imp(cfg, tmp_path, progress=False)
        assert first.path.name == cfg.key
        seen = {cfg.key}
        for change in (lambda: register_model('my_net', replace=True)(_chain_model(32)),   # doubled width, same name
                       lambda: register_dataset('my_blobs')(data(2.0))):                  # changed data, same name
            change()
            assert cfg.key not in seen
            exp = run_imp(cfg, tmp_path, progress=False)
            assert exp.path.name == cfg.key and exp.metrics(0, 0, 1)['steps'] == 40
            seen.add(cfg.key)
        assert len(list(tmp_path.glob('*/config.json'))) == 3
        assert exp.metrics(0, 0, 0)['prunable_weights'] == 8 * 32 + 32 * 4
    finally:
        MODELS.pop('my_net', None); DATASETS.pop('my_blobs', None); clear_data_cache()


def test_builtin_names_keep_their_keys():
    from test_identity import PINNED    # the keys every preset must keep
    assert {k: get_preset(k).key for k in PINNED} == PINNED
    assert not any('registered' in get_preset(k).identity() for k in PINNED)


@pytest.mark.parametrize('kwargs, message', [
    (dict(model_fn=lambda: nn.Sequential(nn.ReLU(), nn.Flatten())),
     'The model from model_fn (Sequential) has no prunable layer; IMP prunes the weights of Conv1d, Conv2d, Conv3d and Linear layers, so use at least one.'),
    (dict(model_fn=lambda: nn.Sequential(nn.Linear(5, 4))),
     'The model from model_fn fails on a batch of inputs of shape (2, 8), that is examples of shape (8,) (RuntimeError: mat1 and mat2 shapes cannot be multiplied (2x8 and 5x4)); make its first layer take examples of that shape.'),
    (dict(model_fn=lambda: nn.Sequential(nn.Linear(8, 3))),
     'The model from model_fn returns shape (2, 3) for a batch of 2 inputs; it must return class logits of shape (2, 4), one row of 4 per example.'),
    (dict(model_fn=lambda: nn.Sequential(nn.Linear(8, 4), nn.Flatten(0))),
     'The model from model_fn returns shape (8,) for a batch of 2 inputs; it must return class logits of shape (2, 4), one row of 4 per example.'),
    (dict(model_fn=nn.Linear(8, 4)),
     'model_fn is a Linear module, not a factory; pass a function that builds a new one, e.g. lambda: MyNet(), so that every seed starts from its own weights.'),
    (dict(train=TensorDataset(TRAIN.tensors[0], TRAIN.tensors[1] - 1), num_classes=4),
     'The train labels run from -1 to 2; they must be class indices in [0, 4) for num_classes=4.'),
    (dict(test=TensorDataset(TEST.tensors[0], TEST.tensors[1] * 2), num_classes=4),
     'The test labels run from 0 to 6; they must be class indices in [0, 4) for num_classes=4.'),
    (dict(test=TensorDataset(TEST.tensors[0][:, :6], TEST.tensors[1])),
     'The train examples have shape (8,) and the test examples (6,); they must match.'),
    (dict(train=[TRAIN.tensors[0][i] for i in range(4)]),
     "The train data's items are Tensor objects, not (input, label) pairs; make __getitem__ return (input, label)."),
    (dict(model='mlp'), 'model= cannot be given to custom_config, which sets dataset, model, data_kwargs, model_kwargs, extra_identity from model_fn and the data; change those instead.'),
])
def test_each_bad_input_is_one_sentence(kwargs, message):
    args = {**dict(model_fn=net(), train=TRAIN, test=TEST, preset='smoke'), **kwargs}
    with pytest.raises(LotteryError) as e: custom_config(**args)
    assert str(e.value) == message
    assert str(e.value).replace('e.g. ', '').count('. ') == 0


def test_data_of_the_wrong_shape_for_a_registered_model_is_one_sentence_before_training(tmp_path):
    try:
        register_model('my_net')(lambda num_classes, input_shape: nn.Sequential(nn.Linear(5, num_classes)))
        with pytest.raises(LotteryError) as e: run_imp(ExperimentConfig('synthetic', 'my_net', '10it', device='cpu'), tmp_path, progress=False)
        assert str(e.value).startswith("Model 'my_net' fails on a batch of inputs of shape (2, 1, 16), that is examples of shape (1, 16) (RuntimeError:")
        assert not any(tmp_path.iterdir())
    finally:
        MODELS.pop('my_net', None)


def test_unknown_names_point_to_the_registry_and_the_factory_route(tmp_path):
    with pytest.raises(LotteryError) as e: run_imp(get_preset('smoke', dataset='mydata'), tmp_path, progress=False)
    msg = str(e.value)
    assert msg.startswith("Data set 'mydata' is unknown; use one of: ")
    assert "register your own loader with `lottery_nb.data.register_dataset('mydata')`, or pass your tensors or Dataset to `lottery_nb.custom.custom_config`." in msg
    with pytest.raises(LotteryError) as e: run_imp(get_preset('smoke', model='mynet'), tmp_path, progress=False)
    assert str(e.value).endswith("register your own builder with `lottery_nb.models.register_model('mynet')`, or pass a model factory to `lottery_nb.custom.custom_config`.")
    assert not any(tmp_path.iterdir())


def test_a_factory_that_changes_after_custom_config_is_refused(tmp_path):
    width = {'n': 16}
    cfg = custom_config(lambda: nn.Sequential(nn.Linear(8, width['n']), nn.ReLU(), nn.Linear(width['n'], 4)), TRAIN, TEST, **SMALL)
    width['n'] = 32     # the factory now builds another model than the one the key was made for
    with pytest.raises(LotteryError) as e: run_imp(cfg, tmp_path, progress=False)
    assert f"model_fn now builds another model than the one registered as {cfg.model!r}; call custom_config again" in str(e.value)
    assert not any(tmp_path.iterdir())


class Scaled(nn.Module):
    "A model whose behaviour depends on a plain attribute: no weight, no buffer, the same `forward` source."
    def __init__(self, scale: float):
        super().__init__(); self.body, self.scale = net()(), scale
    def forward(self, x): return self.body(x) * self.scale


def test_an_attribute_used_in_forward_is_part_of_the_key(tmp_path):
    "`self.scale = 2.0` instead of 1.0 is another experiment: a new key, trained from scratch, not the stored results."
    one = custom_config(lambda: Scaled(1.0), TRAIN, TEST, **SMALL)
    exp = run_imp(one, tmp_path, progress=False)
    before = metrics_files(tmp_path)
    assert custom_config(lambda: Scaled(1.0), TRAIN, TEST, **SMALL).key == one.key       # the same model keeps its key
    two = custom_config(lambda: Scaled(2.0), TRAIN, TEST, **SMALL)
    assert two.key != one.key and two.extra_identity['model'] != one.extra_identity['model']
    assert two.extra_identity['data'] == one.extra_identity['data']
    exp2 = run_imp(two, tmp_path, progress=False)
    assert exp2.path.name == two.key and len(list(exp2.path.rglob('metrics.json'))) == 5   # all trained anew
    assert {p: t for p, t in metrics_files(tmp_path).items() if p in before} == before
    assert exp.metrics(0, 0, 0)['test_loss'] != exp2.metrics(0, 0, 0)['test_loss']


def test_an_attribute_changed_after_custom_config_is_refused(tmp_path):
    "The factory's model computes something else than when its key was made: refused before anything is stored."
    scale = {'s': 1.0}
    cfg = custom_config(lambda: Scaled(scale['s']), TRAIN, TEST, **SMALL)
    scale['s'] = 2.0     # same structure and weights, other outputs
    with pytest.raises(LotteryError) as e: run_imp(cfg, tmp_path, progress=False)
    assert f"model_fn now builds another model than the one registered as {cfg.model!r}; call custom_config again" in str(e.value)
    assert not any(tmp_path.iterdir())
    scale['s'] = 1.0
    assert run_imp(cfg, tmp_path, progress=False).path.name == cfg.key


class Clamped(nn.Module):
    "Issue 26's model: `forward` clamps the logits at `self.clip`, which no logit reaches at initialisation."
    def __init__(self, clip=None):
        super().__init__(); self.body, self.clip = net()(), clip
    def forward(self, x):
        h = self.body(x)
        return h if self.clip is None else h.clamp(max=self.clip)


def test_a_clamp_the_probe_does_not_reach_gives_a_new_key(tmp_path):
    "`clip=None` and `clip=3.0` compute the same at initialisation but train differently: two keys, two runs."
    from lottery_nb.models import init_open_lth, model_fingerprint
    def seeded(clip):
        torch.manual_seed(0); m = Clamped(clip); init_open_lth(m); return m
    none = custom_config(lambda: Clamped(None), TRAIN, TEST, **SMALL)
    probe = get_data(none.dataset).subset('train', 2, 0)[0]           # the batch custom_config probes
    a, b = seeded(None), seeded(3.0)
    with torch.no_grad():   # the weights, forward's source and the outputs on the probe at initialisation agree
        assert model_fingerprint(a) == model_fingerprint(b) and a(probe).max() < 3
        assert torch.equal(a(probe), b(probe))
    three = custom_config(lambda: Clamped(3.0), TRAIN, TEST, **SMALL)
    assert three.key != none.key and three.extra_identity['model'] != none.extra_identity['model']
    assert custom_config(lambda: Clamped(3.0), TRAIN, TEST, **SMALL).key == three.key      # and it keeps its key
    first = run_imp(none, tmp_path, progress=False)
    before = metrics_files(tmp_path)
    second = run_imp(three, tmp_path, progress=False)
    assert second.path.name == three.key and len(list(second.path.rglob('metrics.json'))) == 5   # all trained anew
    assert {p: t for p, t in metrics_files(tmp_path).items() if p in before} == before
    assert first.metrics(0, 0, 0)['test_loss'] != second.metrics(0, 0, 0)['test_loss']   # the clamp did act


def test_version_and_model_name_are_the_explicit_identity():
    "What no fingerprint sees (code in another module, state outside the model) is said with `version=` or `model_name=`."
    plain = custom_config(net(), TRAIN, TEST, **SMALL)
    v2 = custom_config(net(), TRAIN, TEST, **SMALL, version='2')
    assert v2.key != plain.key and v2.extra_identity['version'] == '2' and v2.model == plain.model
    assert custom_config(net(), TRAIN, TEST, **SMALL, version='2').key == v2.key
    assert custom_config(net(), TRAIN, TEST, **SMALL, version=2).key not in (v2.key, plain.key)
    named = custom_config(net(), TRAIN, TEST, **SMALL, model_name='net_v2')
    assert named.key != plain.key and named.key.split('-')[2] == 'net_v2'
    with pytest.raises(LotteryError) as e: custom_config(net(), TRAIN, TEST, **SMALL, version=True)
    assert str(e.value) == ("version=True is not allowed; give a string or an integer (e.g. version=2) that you change "
                            "whenever the model changes in a way its fingerprint cannot see.")


MODULE = '''
import torch
from torch import nn
SCALE = 2.0
def act(h): return torch.relu(h) * SCALE
class Clamped(nn.Module):
    def __init__(self, clip):
        super().__init__(); self.lin, self.clip = nn.Linear(8, 4), clip
        self.tags, self.opts = {'narrow', 'wide', 'deep'}, {'b': 1, 'a': (2, 3)}
    def forward(self, x):
        h = act(self.lin(x)) if 'fast' not in {'slow', 'exact', 'safe'} else self.lin(x)
        return h.clamp(max=self.clip)
'''
SCRIPT = '''
import sys, torch
torch.set_num_threads(1); sys.path.insert(0, sys.argv[1])
from clampnet import Clamped
from lottery_nb.custom import custom_config
x, y = torch.randn(64, 8, generator=torch.Generator().manual_seed(0)), torch.arange(64) % 4
for clip in (3.0, 3.5): print(custom_config(lambda: Clamped(clip), (x, y), (x[:32], y[:32]), preset='smoke').key)
'''


def test_a_model_from_a_file_keeps_its_key_in_every_process(tmp_path):
    "Sets, dicts and frozen-set constants are hashed sorted: other hash seeds give the same keys; the clip still counts."
    import sys
    from conftest import run
    def keys_of(**env):   # (the test environment: one torch thread, the suite's timeout)
        r = run([sys.executable, '-c', SCRIPT, tmp_path], env=env)
        assert r.returncode == 0, r.stderr[-3000:]
        return r.stdout.split()
    (tmp_path / 'clampnet.py').write_text(MODULE)
    keys = [keys_of(PYTHONHASHSEED=seed) for seed in ('1', '2')]
    assert keys[0] == keys[1] and len(set(keys[0])) == 2, keys
    (tmp_path / 'clampnet.py').write_text(MODULE.replace('SCALE = 2.0', 'SCALE = 2.5'))   # a module constant forward uses
    edited = keys_of()
    assert not set(edited) & set(keys[0])
