"""RunConfig describes every model the course trains: the image classifiers of chapters 02-06 and
the 2-D models of chapters 01 and 03, each exactly as the chapter built it before the one route."""
from __future__ import annotations

import pytest
import torch

import nsde_lib as nl


def same_init(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_the_moons_models_are_the_chapters_models():
    spec01 = nl.course_spec("01_moons_h", quick=False)
    config = nl.RunConfig.from_dict(spec01.trials["h=0.1_seed=2"])
    torch.manual_seed(2)
    built = nl.build_model(config)
    torch.manual_seed(2)
    chapter = nl.EulerResNet(2, 2, depth=10, width=2, hidden=16, h=0.1, bn=False, act="tanh")
    assert same_init(built, chapter)
    (values,) = nl.course_spec("03_flow", quick=False).trials.values()
    config = nl.RunConfig.from_dict(values)
    torch.manual_seed(0)
    built = nl.build_model(config)
    torch.manual_seed(0)
    assert same_init(built, nl.Flow2D(width=32, T=1.0, dt=1 / 32)) and built.dt == 1 / 32
    train, test = nl.load_data(config)
    ref_train, ref_test = nl.moons(1000, 1000, noise=0.15, seed=0)
    assert torch.equal(train[0], ref_train[0]) and torch.equal(test[1], ref_test[1])


@pytest.mark.parametrize("changes, match", [
    (dict(arch="mlp"), "arch 'mlp' needs a data set of points"),
    (dict(dataset="moons"), "arch 'sde' needs an image data set"),
    (dict(dataset="moons", arch="mlp", augment="crop"), "augment 'crop' crops images"),
    (dict(dataset="moons", arch="flow2d", depth=3), "depth is a setting of arch"),
    (dict(moons_noise=0.3), "moons_noise is a setting of dataset 'moons'"),
    (dict(dataset="moons", arch="mlp", act="sigmoid"), "act must be one of"),
])
def test_settings_that_do_not_fit_are_refused(changes, match):
    with pytest.raises(ValueError, match=match):
        nl.RunConfig(**changes).validate()


def test_a_moons_model_trains_through_the_one_route(tmp_path):
    config = nl.RunConfig(dataset="moons", arch="flow2d", channels=8, steps=4, epochs=2,
                          n_train=200, n_test=100, optimizer="adam", lr=0.01,
                          schedule="constant", augment="none", batch_size=50, device="cpu")
    first = nl.train_model(config, store=tmp_path, progress=False)
    again = nl.train_model(config, store=tmp_path, progress=False)
    assert not first.loaded and again.loaded and 0 <= first.acc <= 1
    assert same_init(first.model, again.model)
