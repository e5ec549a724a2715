"The run identity: every preset's hash pinned, a new field with a default renames nothing, old config.json files load or are refused in one sentence."
import dataclasses
import json

import pytest

from lottery_nb.config import (PRESETS, STORE_VERSION, ExperimentConfig, LotteryError, RETIRED_FIELDS, get_preset,
                               legacy_key, load_config)

# Changing one of these renames every stored run of that preset: raise STORE_VERSION and say why in 00_config.
# (The default batch order became 'per_run' and the `cpu` test set 10,000 examples: different results, new keys.)
PINNED = {'cifar10_resnet20': 'cifar10-resnet20-841b522985a2',
          'cifar100_resnet18': 'cifar100-resnet18-cca7b6eb6e33',
          'imagenet_resnet50': 'imagenet-resnet50-e77b9a56843a',
          'cpu': 'mnist1d-mnist1d_cnn-ddd45cf51b77',
          'cpu_fig4': 'mnist1d-mlp-babda0d2da45',
          'smoke': 'synthetic-mlp-2fa44bd329cc',
          'cpu_gpu32': 'mnist1d-mnist1d_cnn-a8fb71b50fc9',     # cpu with capture='reduce-overhead' (issue 27)
          'cpu_fig4_gpu': 'mnist1d-mlp-419944bb24b0'}          # cpu_fig4 with capture='reduce-overhead'
# the keys of the same presets before those two changes (shared order, 1,000 MNIST-1D test examples): they stay the
# keys of those settings, so stored runs of the old order are found with `--set data_order=shared`
OLD = dict(data_order='shared')
PINNED_SHARED = {'cifar10_resnet20': 'cifar10-resnet20-79a4f5bcd612',
                 'cifar100_resnet18': 'cifar100-resnet18-fc44efe79405',
                 'imagenet_resnet50': 'imagenet-resnet50-c5d969e9bcc3',
                 'cpu': 'mnist1d-mnist1d_cnn-5a969bdb21d8',
                 'smoke': 'synthetic-mlp-d9a34cc2ef82'}
# the names version 1 gave the same presets (every field hashed): how a store finds runs written before
LEGACY = {'cifar10_resnet20': 'cifar10-resnet20-d7904baaf349', 'cifar100_resnet18': 'cifar100-resnet18-458222439300',
          'imagenet_resnet50': 'imagenet-resnet50-da24c4370adf', 'cpu': 'mnist1d-mnist1d_cnn-00385513573f',
          'smoke': 'synthetic-mlp-6cf8d2d9b6f8'}


def old_preset(name):
    "The preset as it was before the per-run order and the larger `cpu` test set."
    return get_preset(name, **OLD, **(dict(data_kwargs={}) if name == 'cpu' else {}))


def test_every_preset_pinned():
    assert STORE_VERSION == 2 and set(PINNED) == set(PRESETS)
    assert {k: get_preset(k).key for k in PRESETS} == PINNED
    assert {k: old_preset(k).key for k in PINNED_SHARED} == PINNED_SHARED    # the presets that existed then
    assert {k: legacy_key(old_preset(k)) for k in LEGACY} == LEGACY
    assert {legacy_key(get_preset(k)) for k in PRESETS} == {None}   # version 1 had only the shared order: nothing to adopt


@pytest.mark.parametrize('default', [0, 'off', None, (), {}])
def test_new_field_with_default_keeps_every_hash(default):
    kind = dataclasses.field(default_factory=dict) if default == {} else dataclasses.field(default=default)
    Dummy = dataclasses.make_dataclass('Dummy', [('dummy', object, kind)], bases=(ExperimentConfig,), frozen=True)
    for name, key in PINNED.items():
        d = Dummy(**get_preset(name).to_dict())
        assert d.key == key, name
        if name in PINNED_SHARED: assert Dummy(**old_preset(name).to_dict()).key == PINNED_SHARED[name], name
        assert Dummy(**get_preset(name).to_dict(), dummy='set').key != key   # once set, it is part of the identity


def test_io_only_settings_do_not_rename():
    c = get_preset('cpu')
    same = c.replace(device='auto', eval_batch_size=17, checkpoint_every='3it', name='x', description='y', seeds=[9],
                     rewind_steps=['0it'], levels=2, data_kwargs={**c.data_kwargs, 'download': True, 'root': '/elsewhere'})
    assert same.key == c.key
    for change in (dict(lr=0.05), dict(data_kwargs={'num_samples': 3000}), dict(model_kwargs={'width': 8}),
                   dict(data_order='shared'), dict(extra_identity={'model': 'abc'}), dict(prune_method='random')):
        assert c.replace(**change).key != c.key, change


def test_data_order_default_is_per_run_and_its_baseline_shared():
    c = get_preset('smoke')
    assert c.data_order == 'per_run' and c.identity()['data_order'] == 'per_run'
    assert 'data_order' not in c.replace(data_order='shared').identity()   # the baseline: version 1's behaviour


def old_config(tmp_path, **changes):
    "A config.json as version 1 wrote it (no data_order, no extra_identity), with `changes`."
    d = {k: v for k, v in get_preset('smoke').to_dict().items() if k not in ('data_order', 'extra_identity')}
    p = tmp_path / 'config.json'; p.write_text(json.dumps({**d, **changes}))
    return p


def test_old_config_json_loads(tmp_path):
    assert load_config(old_config(tmp_path)) == get_preset('smoke', data_order='shared')   # as it ran, not today's default


def test_removed_field_loads_at_its_harmless_value_else_one_sentence(tmp_path, monkeypatch):
    monkeypatch.setitem(RETIRED_FIELDS, 'mixed_precision', (False, 'fp32 is the only numerics'))
    assert load_config(old_config(tmp_path, mixed_precision=False)) == get_preset('smoke', data_order='shared')
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


def test_execution_mode_is_recorded_not_hashed():
    "How runs are laid out (group_size, parallel) keeps the key; the mode that fixes their bits is recorded instead."
    import torch
    from lottery_nb.store import execution_mode
    cpu, gpu = torch.device('cpu'), torch.device('cuda')
    for name in PINNED:
        base = get_preset(name, group_size=1)   # (cpu_gpu32 and cpu_fig4_gpu group by default)
        grouped, ddp = base.replace(group_size=4), base.replace(parallel='ddp')
        assert grouped.key == ddp.key == base.key == PINNED[name]
        assert execution_mode(base, cpu) == execution_mode(grouped, cpu) == execution_mode(base, gpu) == 'one-by-one'
        assert execution_mode(grouped, gpu) == 'grouped on cuda'
        assert execution_mode(ddp, gpu, 2) != execution_mode(ddp, gpu, 4) == 'ddp over 4 ranks'
