"""EulerResNet against explicit Euler as the SDE core computes it (g = 0, dt = h)."""
import pytest
import torch
from torch import nn

import nsde_lib as nl
from nsde_lib import EulerResNet
from nsde_lib import block_grad_norms

pytestmark = pytest.mark.usefixtures("float64")  # numbers compared in float64


class BlockDrift:
    """ẋ = F(x) written out by hand from one residual branch (not through ``as_sde``)."""

    def __init__(self, block):
        self.block = block

    def f(self, t, y):
        return self.block(y)


@pytest.mark.parametrize("block,bn,shape", [("mlp", False, (16, 3)), ("mlp", True, (16, 3)),
                                            ("conv", True, (4, 1, 8, 8))])
@pytest.mark.parametrize("h", [1.0, 0.1, 0.37])
def test_shared_weights_equal_sdeint_with_g_zero_and_dt_h(block, bn, shape, h):
    torch.manual_seed(0)
    depth = 7
    model = EulerResNet(shape[1], 4, depth=depth, width=3, h=h, block=block, bn=bn, shared=True,
                        act="tanh")
    model.eval() if bn else model.train()
    x = torch.randn(shape)
    with torch.no_grad():
        logits, states = model(x, return_states=True)
        x0 = model.stem(x)
        euler = nl.sdeint(BlockDrift(model.blocks[0]), x0,
                          [k * h for k in range(depth + 1)], dt=h)
    assert states.shape == (depth + 1, *x0.shape)
    torch.testing.assert_close(states, euler, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(logits, model.head(euler[-1]), rtol=1e-12, atol=1e-12)


def test_bn_in_training_mode_also_equals_sdeint():
    """With batch statistics F depends on the whole batch; sdeint passes the batch whole too."""
    torch.manual_seed(1)
    model = EulerResNet(2, 2, depth=5, width=4, h=0.2, bn=True, shared=True).train()
    x = torch.randn(32, 2)
    x0 = model.stem(x)
    with torch.no_grad():
        euler = nl.sdeint(BlockDrift(model.blocks[0]), x0, [0.0, model.T], dt=0.2)[-1]
        resnet = model.propagate(x0)
    torch.testing.assert_close(resnet, euler, rtol=1e-12, atol=1e-12)


def test_unshared_blocks_are_euler_on_a_piecewise_constant_vector_field():
    torch.manual_seed(2)
    model = EulerResNet(3, 2, depth=6, width=5, h=0.25, bn=False, act="tanh")
    x0 = model.stem(torch.randn(10, 3))
    with torch.no_grad():
        euler = nl.sdeint(model.as_sde(), x0, [0.25 * k for k in range(7)], dt=0.25)
        states = model.propagate(x0, return_states=True)
    torch.testing.assert_close(states, euler, rtol=1e-12, atol=1e-12)


def test_one_block_is_one_euler_step_of_size_h():
    torch.manual_seed(3)
    model = EulerResNet(4, 3, depth=1, width=6, h=0.3, bn=False)
    x = torch.randn(5, 4)
    x0 = model.stem(x)
    states = model(x, return_states=True)[1]
    torch.testing.assert_close(states[1] - states[0], 0.3 * model.blocks[0](x0),
                               rtol=1e-12, atol=1e-12)


def test_linear_blocks_give_the_matrix_power():
    """F(x) = A x (identity activation, no bias): x_D = (I + hA)^D x_0 exactly."""
    torch.manual_seed(4)
    d, depth, h = 3, 9, 0.4
    model = EulerResNet(d, 2, depth=depth, width=d, h=h, bn=False, act="identity", shared=True)
    first, second = model.blocks[0].F[0], model.blocks[0].F[2]
    with torch.no_grad():
        first.bias.zero_()
        second.bias.zero_()
    A = second.weight @ first.weight
    x = torch.randn(7, d)
    expected = x @ torch.linalg.matrix_power(torch.eye(d) + h * A, depth).T
    torch.testing.assert_close(model.propagate(x), expected, rtol=1e-10, atol=1e-12)


def test_shapes_stem_head_and_return_states():
    torch.manual_seed(5)
    conv = EulerResNet(1, 10, depth=3, width=4, block="conv", pool=4, head_pool=7)
    x = torch.rand(6, 1, 28, 28)
    logits, states = conv(x, return_states=True)
    assert logits.shape == (6, 10) and states.shape == (4, 6, 4, 7, 7)
    conv.eval()
    torch.testing.assert_close(conv(x), conv(x, return_states=True)[0])
    mlp = EulerResNet(2, 2, depth=4, width=2, hidden=16)
    assert isinstance(mlp.stem, nn.Identity)  # 2-D points stay 2-D through the blocks
    assert mlp(torch.randn(5, 2), return_states=True)[1].shape == (5, 5, 2)
    assert isinstance(EulerResNet(2, 2, depth=1, width=8).stem, nn.Linear)


def test_shared_weights_are_one_module_and_blocks_are_found_for_grad_norms():
    shared = EulerResNet(2, 2, depth=5, width=4, shared=True)
    free = EulerResNet(2, 2, depth=5, width=4)
    one_block = sum(p.numel() for p in shared.blocks[0].parameters())
    assert shared.blocks[0] is shared.blocks[4] and len(shared.blocks) == 5
    assert sum(p.numel() for p in free.parameters()) - sum(p.numel() for p in shared.parameters()) \
        == 4 * one_block
    loss = free(torch.randn(8, 2)).sum()
    loss.backward()
    norms = block_grad_norms(free)
    assert len(norms) == 5 and all(n > 0 for n in norms)


def test_kaiming_init_is_he_normal_in_the_blocks():
    torch.manual_seed(6)
    model = EulerResNet(64, 2, depth=2, width=256, bn=False)
    w = model.blocks[0].F[0].weight.detach()
    assert abs(float(w.std()) - (2 / 256) ** 0.5) < 0.05 * (2 / 256) ** 0.5
    assert float(model.blocks[0].F[0].bias.detach().abs().max()) == 0.0


@pytest.mark.parametrize("kwargs,name", [
    ({"h": 0.0}, "h"), ({"h": -0.1}, "h"), ({"h": float("nan")}, "h"), ({"h": "1"}, "h"),
    ({"depth": 0}, "depth"), ({"depth": 2.5}, "depth"), ({"width": 0}, "width"),
    ({"block": "transformer"}, "block"), ({"act": "gelu"}, "act"), ({"init": "xavier"}, "init"),
    ({"pool": 0}, "pool"), ({"hidden": -1}, "hidden"),
])
def test_bad_arguments_raise_value_errors_that_name_them(kwargs, name):
    args = dict(depth=2, width=4, h=1.0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        EulerResNet(2, 2, **args)
