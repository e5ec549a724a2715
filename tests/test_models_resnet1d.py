"The builtin 1D ResNet for MNIST-1D (`mnist1d_resnet`, bench/calibrate_regime.py): a builtin model, trainable, groupable."
import pytest
import torch

from lottery_nb.config import LotteryError, get_preset, run_identity
from lottery_nb.data import get_data
from lottery_nb.models import builtin_model, count_params, get_model, prunable_names
from lottery_nb.training import evaluate, train

torch.set_num_threads(1)
RES = dict(model='mnist1d_resnet', model_kwargs=dict(widths=[8, 16], blocks=1))


def test_builtin_adds_nothing_to_the_identity_but_its_options():
    assert builtin_model('mnist1d_resnet')
    ident = run_identity(get_preset('cpu', **RES))
    assert 'registered' not in ident
    assert ident['model'] == 'mnist1d_resnet' and ident['model_kwargs'] == {'widths': [8, 16], 'blocks': 1}
    assert get_preset('cpu', **RES).key != get_preset('cpu', model='mnist1d_resnet').key


def test_layout_and_prunable_tensors():
    m = get_model('mnist1d_resnet', 10, (1, 40), seed=0, widths=(16, 32, 64), blocks=3)
    names = prunable_names(m)
    assert len(names) == 22 and names[0] == 'conv.weight' and names[-1] == 'fc.weight'
    assert sum('shortcut' in n for n in names) == 2
    assert count_params(m, prunable=True) == sum(dict(m.named_parameters())[n].numel() for n in names)
    assert m(torch.randn(3, 1, 40)).shape == (3, 10)


@pytest.mark.parametrize('kw,msg', [(dict(widths=()), "ResNet widths () are not allowed"),
                                    (dict(widths=(16, 0)), "ResNet widths (16, 0) are not allowed"),
                                    (dict(blocks=True), "ResNet blocks per stage True is not allowed"),
                                    (dict(depth=20), "Unknown option 'depth' for model 'mnist1d_resnet'")])
def test_bad_options_one_sentence(kw, msg):
    with pytest.raises(LotteryError, match=msg.replace('(', r'\(').replace(')', r'\)')):
        get_model('mnist1d_resnet', 10, (1, 40), seed=0, **kw)


def test_trains_deterministically_and_learns():
    cfg = get_preset('cpu', **RES, training_steps='60it', milestones=(), rewind_steps=('0it',), lr=0.1)
    data = get_data('synthetic', length=40)
    plan = cfg.resolve(data.steps_per_epoch(cfg.batch_size))
    m = get_model(cfg.model, data.num_classes, data.input_shape, seed=0, **cfg.model_kwargs)
    init = {k: v.clone() for k, v in m.state_dict().items()}
    before = evaluate(m, data, 'train')['loss']
    a, b = (train(m, data, cfg, plan, 0, init) for _ in range(2))
    assert all(torch.equal(a['state'][k], b['state'][k]) for k in a['state'])   # the same computation twice: bitwise
    m.load_state_dict(a['state'])
    after = evaluate(m, data, 'train')
    assert after['loss'] < 0.5 * before and after['error'] < 0.2, (before, after)


def test_groups_like_the_other_builtin_models():
    from lottery_nb.group import GroupedModel, stack_states
    ms = [get_model('mnist1d_resnet', 10, (1, 40), seed=s, widths=[8, 16]) for s in range(2)]
    gm = GroupedModel(ms[0], 2); gm.load_state_dict(stack_states([m.state_dict() for m in ms]))
    x = torch.randn(2, 4, 1, 40)
    for mode in (True, False):
        gm.train(mode); [m.train(mode) for m in ms]
        out = gm(x)
        for r, m in enumerate(ms): assert torch.allclose(out[r], m(x[r]), atol=1e-6, rtol=0), (mode, r)
