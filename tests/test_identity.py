"The run identity: every preset's hash pinned, a new field with a default renames nothing, old config.json files load or are refused in one sentence."
import dataclasses
import json

import pytest

from lottery_nb.config import (PRESETS, STORE_VERSION, ExperimentConfig, LotteryError, RETIRED_FIELDS, get_preset,
                               legacy_key, load_config)

# Changing one of these renames every stored run of that preset: raise STORE_VERSION and say why in 00_config.
PINNED = {'cifar10_resnet20': 'cifar10-resnet20-79a4f5bcd612',
          'cifar100_resnet18': 'cifar100-resnet18-fc44efe79405',
          'imagenet_resnet50': 'imagenet-resnet50-c5d969e9bcc3',
          'cpu': 'mnist1d-mnist1d_cnn-5a969bdb21d8',
          'smoke': 'synthetic-mlp-d9a34cc2ef82'}
# the names version 1 gave the same presets (every field hashed): how a store finds runs written before
LEGACY = {'cifar10_resnet20': 'cifar10-resnet20-d7904baaf349', 'cifar100_resnet18': 'cifar100-resnet18-458222439300',
          'imagenet_resnet50': 'imagenet-resnet50-da24c4370adf', 'cpu': 'mnist1d-mnist1d_cnn-00385513573f',
          'smoke': 'synthetic-mlp-6cf8d2d9b6f8'}


def test_every_preset_pinned():
    assert STORE_VERSION == 2 and set(PINNED) == set(PRESETS)
    assert {k: get_preset(k).key for k in PRESETS} == PINNED
    assert {k: legacy_key(get_preset(k)) for k in PRESETS} == LEGACY


@pytest.mark.parametrize('default', [0, 'off', None, (), {}])
def test_new_field_with_default_keeps_every_hash(default):
    kind = dataclasses.field(default_factory=dict) if default == {} else dataclasses.field(default=default)
    Dummy = dataclasses.make_dataclass('Dummy', [('dummy', object, kind)], bases=(ExperimentConfig,), frozen=True)
    for name, key in PINNED.items():
        d = Dummy(**get_preset(name).to_dict())
        assert d.key == key, name
        assert Dummy(**get_preset(name).to_dict(), dummy='set').key != key   # once set, it is part of the identity


def test_io_only_settings_do_not_rename():
    c = get_preset('cpu')
    same = c.replace(device='auto', eval_batch_size=17, checkpoint_every='3it', name='x', description='y', seeds=[9],
                     rewind_steps=['0it'], levels=2, data_kwargs={'download': True, 'root': '/elsewhere'})
    assert same.key == c.key
    for change in (dict(lr=0.05), dict(data_kwargs={'num_samples': 3000}), dict(model_kwargs={'width': 8}),
                   dict(data_order='per_run'), dict(extra_identity={'model': 'abc'}), dict(prune_method='random')):
        assert c.replace(**change).key != c.key, change


def test_data_order_baseline_is_shared_even_if_the_default_changes():
    # the coordinator will make 'per_run' the default: those runs must not reuse the 'shared' ones
    PerRun = dataclasses.make_dataclass('PerRun', [('data_order', str, dataclasses.field(default='per_run'))],
                                        bases=(ExperimentConfig,), frozen=True)
    c = get_preset('smoke')
    assert PerRun(**{k: v for k, v in c.to_dict().items() if k != 'data_order'}).key != c.key
    assert PerRun(**{**c.to_dict(), 'data_order': 'shared'}).key == c.key


def old_config(tmp_path, **changes):
    "A config.json as version 1 wrote it (no data_order, no extra_identity), with `changes`."
    d = {k: v for k, v in get_preset('smoke').to_dict().items() if k not in ('data_order', 'extra_identity')}
    p = tmp_path / 'config.json'; p.write_text(json.dumps({**d, **changes}))
    return p


def test_old_config_json_loads(tmp_path):
    assert load_config(old_config(tmp_path)) == get_preset('smoke')


def test_removed_field_loads_at_its_harmless_value_else_one_sentence(tmp_path, monkeypatch):
    monkeypatch.setitem(RETIRED_FIELDS, 'mixed_precision', (False, 'fp32 is the only numerics'))
    assert load_config(old_config(tmp_path, mixed_precision=False)) == get_preset('smoke')
    with pytest.raises(LotteryError) as e: load_config(old_config(tmp_path, mixed_precision=True))
    msg = str(e.value)
    assert 'mixed_precision=True, a field removed from lottery-nb (fp32 is the only numerics)' in msg and str(tmp_path) in msg
    assert msg.count('. ') == 0 and msg.endswith('.')


@pytest.mark.parametrize('text, message', [
    ('{"dataset": "synthetic", "model": "mlp", "training_steps": "40it", "turbo": 1}', 'does not know (a newer version wrote it); upgrade lottery-nb'),
    ('{"dataset": "synth', 'is not valid JSON (damaged)'),
    ('[1, 2]', 'is list, not a JSON object of config fields'),
    ('{"dataset": "synthetic", "model": "mlp"}', 'lacks the field(s) training_steps'),
    ('{"dataset": "synthetic", "model": "mlp", "training_steps": "40it", "seeds": 3}', 'is not valid for this lottery-nb (seeds=3 must be a list'),
])
def test_bad_config_json_refused_in_one_sentence(tmp_path, text, message):
    p = tmp_path / 'config.json'; p.write_text(text)
    with pytest.raises(LotteryError) as e: load_config(p)
    assert message in str(e.value) and len(str(e.value).splitlines()) == 1
