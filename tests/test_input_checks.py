"""Every public constructor and forward refuses a wrong type, shape or range with a ValueError or
TypeError naming the argument and what is allowed (each case below failed deep inside torch, or
with an unrelated message, before)."""
import pytest
import torch

import nsde_lib as nl


def drift(t, y):
    return -y


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(diffusion="additive"), TypeError, r"diffusion must be .*nl.make_sde\(drift, 'additive'"),
    (dict(diffusion=0.5), TypeError, "diffusion must be"),
    (dict(jump=0.5), TypeError, "jump must be"),
    (dict(jump=nl.PoissonJump(1.0)), TypeError, "bare PoissonJump .* no jump size"),
])
def test_neural_sde_refuses_what_is_not_a_diffusion_or_a_jump(kwargs, error, match):
    with pytest.raises(error, match=match):
        nl.NeuralSDE(drift, **kwargs)


def test_neural_sde_refuses_a_drift_that_is_not_callable():
    with pytest.raises(TypeError, match="drift must be"):
        nl.NeuralSDE(3.0)


@pytest.mark.parametrize("x,error,match", [
    (torch.rand(2, 1, 2, 2), ValueError, "at least 3x3"),
    (torch.rand(2, 1, 1, 28), ValueError, "at least 3x3"),
    (torch.randint(0, 255, (2, 1, 28, 28), dtype=torch.uint8), TypeError, "floating-point"),
    (torch.rand(2, 3, 28, 28), ValueError, r"\(B, 1, H, W\)"),
    (torch.rand(2, 28, 28), ValueError, "4 dimensions"),
    ("images", TypeError, "torch.Tensor"),
])
def test_classifier_refuses_images_it_cannot_read(x, error, match):
    model = nl.SDEClassifier(1, 10, channels=4, steps=2)
    with pytest.raises(error, match=match):
        model(x)


@pytest.mark.parametrize("block,x,match", [
    ("conv", torch.rand(2, 3, 8, 8), r"\(B, 1, H, W\)"),
    ("conv", torch.rand(2, 64), "4 dimensions"),
    ("mlp", torch.rand(2, 3), r"\(B, 2\) \(in_dim=2\)"),
    ("mlp", torch.rand(2, 2, 1), "2 dimensions"),
])
def test_euler_resnet_refuses_the_wrong_input(block, x, match):
    in_dim = 1 if block == "conv" else 2
    model = nl.EulerResNet(in_dim, 10, depth=2, width=4, block=block)
    with pytest.raises(ValueError, match=match):
        model(x)


@pytest.mark.parametrize("call,match", [
    (lambda: nl.poisson_events(1.0, 1.0, -1), "n_paths"),
    (lambda: nl.poisson_events(1.0, 0.0, 3), "T"),
    (lambda: nl.Flow2D(dt=0), "dt"),
    (lambda: nl.Flow2D(method="rk4"), "method"),
    (lambda: nl.Flow2D()(torch.rand(4, 3)), r"\(B, 2\)"),
    (lambda: nl.SDEClassifier(1, 10, noise="brownian"), "noise must be one of"),
    (lambda: nl.load("moons", pool=2), "x must have 4 dimensions"),
    (lambda: nl.load("mnist5k", n_train=0), "n_train"),
    (lambda: nl.AdaptiveBlock(torch.nn.Linear(2, 2)), "SDEClassifier"),
])
def test_other_entry_points_name_the_argument(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_the_noise_switch_is_one_switch_on_every_noisy_model():
    flow = nl.Flow2D(noise="multiplicative", sigma=0.5)
    clf = nl.SDEClassifier(1, 10, channels=4, steps=2, noise="additive", sigma=0.1)
    for model in (flow, clf, clf.sde):
        assert model.noise_on
        with nl.noise_switch(model, False):
            assert not model.noise_on
        assert model.noise_on
    flow.noise_on = False
    assert not flow.sde.noise_on  # the model's switch is its NeuralSDE's
