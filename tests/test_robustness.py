"""The evaluation helpers: seeded and reproducible, the caller's random stream untouched, the
shared noise path of Fig. 7, the corrupted test set identical for every model."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import nsde_lib as nl
from nsde_lib import corrupt


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return nl.SDEClassifier(1, 10, channels=4, steps=4, noise="multiplicative", sigma=0.5).eval()


@pytest.fixture(scope="module")
def batch():
    gen = torch.Generator().manual_seed(1)
    return torch.rand(12, 1, 10, 10, generator=gen), torch.randint(0, 10, (12,), generator=gen)


def test_predict_proba_is_seeded_and_leaves_the_global_stream_alone(model, batch):
    x, _ = batch
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    a = nl.predict_proba(model, x, K=3, seed=7)
    assert torch.equal(torch.rand(3), before)                  # the caller's stream unchanged
    torch.testing.assert_close(nl.predict_proba(model, x, K=3, seed=7), a, rtol=0, atol=0)
    assert not torch.allclose(nl.predict_proba(model, x, K=3, seed=8), a)  # noise is on
    torch.testing.assert_close(a.sum(1), torch.ones(len(x)))


def test_one_pass_is_the_models_softmax_and_k_passes_average_k_draws(model, batch):
    x, _ = batch
    torch.manual_seed(5)
    with torch.no_grad():
        direct = F.softmax(model(x), 1)
    torch.testing.assert_close(nl.predict_proba(model, x, K=1, seed=5), direct)
    with nl.noise_switch(model, False):                          # deterministic: K is moot
        torch.testing.assert_close(nl.predict_proba(model, x, K=4, seed=1),
                                   nl.predict_proba(model, x, K=1, seed=2))
    assert model.noise_on


def test_noise_switch_needs_a_switch():
    with pytest.raises(TypeError, match="noise_on"):
        with nl.noise_switch(torch.nn.Linear(2, 2), False):
            pass


def test_bad_ensemble_size_is_refused(model, batch):
    with pytest.raises(ValueError, match="K"):
        nl.accuracy(model, *batch, K=0)


def test_attack_accuracy_is_reproducible_and_returns_the_attack(model, batch):
    x, y = batch
    a1, adv1 = nl.attack_accuracy(model, x, y, 0.5, steps=2, eot=2, return_adv=True, seed=3)
    a2, adv2 = nl.attack_accuracy(model, x, y, 0.5, steps=2, eot=2, return_adv=True, seed=3)
    assert a1 == a2 and torch.equal(adv1, adv2)
    assert float((adv1 - x).flatten(1).norm(dim=1).max()) <= 0.5 + 1e-6
    accs = nl.accuracy_vs_eps(model, x, y, [0.0, 0.5], steps=2, progress=False, seed=3)
    assert accs[0] == nl.accuracy(model, x, y, seed=4) and accs[1] == nl.attack_accuracy(
        model, x, y, 0.5, steps=2, seed=3)


def test_corruption_accuracy_sees_the_same_corrupted_images_as_corrupt(model, batch):
    x, y = batch
    table = nl.corruption_accuracy(model, x, y, names=("contrast", "shot_noise"),
                                  severities=(1, 5), progress=False, seed=2)
    assert table.shape == (2, 2)
    idx = nl.CORRUPTIONS.index("shot_noise")
    xc = corrupt(x, "shot_noise", 5, generator=torch.Generator().manual_seed(2 + 1000 * idx + 5))
    assert table[1, 1] == nl.accuracy(model, xc, y, seed=3)
    both = nl.corruption_table({"a": (model, {}), "b": (model, dict(K=3))}, x, y,
                              names=("contrast", "shot_noise"), severities=(1, 5),
                              progress=False, seed=2)
    np.testing.assert_array_equal(both["a"], table)
    assert both["b"].shape == (2, 2)


def test_hidden_state_gap_uses_one_noise_path(model, batch):
    x, _ = batch
    gap = nl.hidden_state_gap(model, x, x.clone(), seed=4)
    assert gap.shape == (model.steps + 1, len(x))
    assert float(gap.abs().max()) == 0.0                      # same input, same path: ε_t ≡ 0
    x_adv = (x + 0.05 * torch.randn_like(x)).clamp(0, 1)
    gap = nl.hidden_state_gap(model, x, x_adv, seed=4)
    with torch.no_grad():
        first = (model.stem(x_adv) - model.stem(x)).flatten(1).norm(dim=1)
        size = model.stem(x).flatten(1).norm(dim=1)
    torch.testing.assert_close(gap[0], first)                 # h_0 is the stem's output
    assert (gap[1:] > 0).all()
    rel = nl.hidden_state_gap(model, x, x_adv, seed=4, relative=True)
    torch.testing.assert_close(rel[0], first / size)
