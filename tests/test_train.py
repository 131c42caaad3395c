"""The shared training loop: it learns, it records, and a diverging run is a record, not a crash."""
import copy
import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nsde_lib as nl
from nsde_lib import EulerResNet
from nsde_lib import block_grad_norms


@pytest.fixture(scope="module")
def moons():
    return nl.moons(512, 512, noise=0.1, seed=0)


def test_learning_happens_on_an_easy_problem(moons):
    train, test = moons
    torch.manual_seed(0)
    model = EulerResNet(2, 2, depth=4, width=2, hidden=16, h=0.5, bn=False, act="tanh")
    before = nl.evaluate(model, test, device="cpu")
    history = nl.fit(model, train, test, epochs=30, lr=0.1, batch_size=64, device="cpu",
                     progress=False)
    assert not history.diverged and len(history.epochs) == 30
    assert history.final_test_acc > 0.97 > before["acc"]
    assert history.epochs[-1]["loss"] < 0.2 * history.epochs[0]["loss"]
    assert history.final_test_acc == nl.evaluate(model, test, device="cpu")["acc"]


def test_a_diverging_run_is_recorded_with_its_epoch_and_step(moons):
    train, test = moons
    torch.manual_seed(0)
    model = EulerResNet(2, 2, depth=30, width=2, hidden=32, h=1.0, bn=False)  # (1 + 2)^30 growth
    history = nl.fit(model, train, test, epochs=5, lr=10.0, batch_size=64, device="cpu",
                     progress=False)
    assert history.diverged and history.diverged_epoch == 1 and history.diverged_step >= 1
    assert math.isnan(history.final_test_acc)
    json.dumps(history.to_dict())  # still a clean record


class NaNAfter(nn.Module):
    """A linear model whose output turns NaN from its ``bad``-th training call on."""

    def __init__(self, bad):
        super().__init__()
        self.lin, self.calls, self.bad = nn.Linear(2, 2), 0, bad

    def forward(self, x):
        if self.training:
            self.calls += 1
        out = self.lin(x)
        return out * float("nan") if self.training and self.calls >= self.bad else out


def test_a_model_returning_nan_stops_at_that_exact_step(moons):
    train, test = moons
    history = nl.fit(NaNAfter(bad=11), train, test, epochs=3, batch_size=128, device="cpu",
                     progress=False)
    # 512 / 128 = 4 steps per epoch: call 11 is step 3 of epoch 3
    assert history.diverged and (history.diverged_epoch, history.diverged_step) == (3, 3)
    assert [e["epoch"] for e in history.epochs] == [1, 2]


class SolverBlowsUp(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 2)

    def forward(self, x):
        return nl.sdeint(Explode(), self.lin(x), [0.0, 1.0], dt=0.5)[-1]


class Explode:
    def f(self, t, y):
        return y * 1e300


def test_a_divergence_error_from_the_solver_is_recorded_not_raised(moons):
    train, test = moons
    history = nl.fit(SolverBlowsUp(), train, test, epochs=2, device="cpu", progress=False)
    assert history.diverged and (history.diverged_epoch, history.diverged_step) == (1, 1)


def test_per_block_gradient_norms_are_those_of_the_first_batch(moons):
    train, test = moons
    torch.manual_seed(1)
    model = EulerResNet(2, 2, depth=5, width=2, hidden=8, h=0.5, bn=False)
    start = copy.deepcopy(model)
    history = nl.fit(model, train, test, epochs=2, batch_size=100, seed=4, grad_norms=True,
                     device="cpu", progress=False)
    steps_per_epoch = math.ceil(512 / 100)
    assert len(history.grad_norms) == 2 * steps_per_epoch
    assert all(len(norms) == 5 for norms in history.grad_norms)
    # redo the first step by hand: fit's shuffle is a torch.Generator seeded with `seed`
    order = torch.randperm(512, generator=torch.Generator().manual_seed(4))[:100]
    F.cross_entropy(start(train[0][order]), train[1][order]).backward()
    by_hand = [float(torch.cat([p.grad.flatten() for p in b.parameters()]).norm())
               for b in start.blocks]
    assert history.grad_norms[0] == pytest.approx(by_hand, rel=1e-5)
    assert block_grad_norms(start) == pytest.approx(by_hand, rel=1e-6)


def test_the_step_schedule_divides_by_ten_at_half_and_three_quarters(moons):
    train, _ = moons
    model = nn.Linear(2, 2)
    history = nl.fit(model, train, epochs=8, lr=0.4, schedule="step", device="cpu",
                     progress=False)
    assert history.column("lr") == pytest.approx([0.4] * 4 + [0.04] * 2 + [0.004] * 2)
    assert "test_acc" not in history.epochs[0]


def test_same_seed_same_run(moons):
    train, test = moons
    runs = []
    for _ in range(2):
        torch.manual_seed(7)
        model = EulerResNet(2, 2, depth=3, width=2, hidden=8, bn=True)
        runs.append(nl.fit(model, train, test, epochs=2, seed=3, device="cpu",
                           progress=False).column("loss"))
    assert runs[0] == runs[1]


def test_evaluate_counts_correct_argmax_and_restores_the_mode():
    model = nn.Linear(2, 3)
    with torch.no_grad():
        model.weight.copy_(torch.eye(3, 2))
        model.bias.zero_()
    x = torch.tensor([[2.0, 0.0], [0.0, 2.0], [-1.0, -1.0], [3.0, 1.0]])
    y = torch.tensor([0, 1, 2, 1])   # argmax is 0, 1, 2, 0: three right
    model.train()
    result = nl.evaluate(model, (x, y), device="cpu", batch_size=3)
    assert result["acc"] == 0.75 and model.training
    expected = F.cross_entropy(model(x), y).item()
    assert result["loss"] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("kwargs,name", [
    ({"epochs": 0}, "epochs"), ({"epochs": 2.5}, "epochs"), ({"optimizer": "rmsprop"}, "optimizer"),
    ({"schedule": "exponential"}, "schedule"), ({"lr": 0.0}, "lr"), ({"lr": -1}, "lr"),
    ({"batch_size": 0}, "batch_size"), ({"device": "gpu"}, "device"),
])
def test_bad_arguments_raise_value_errors(moons, kwargs, name):
    train, _ = moons
    args = dict(epochs=1, device="cpu", progress=False)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        nl.fit(nn.Linear(2, 2), train, **args)


def test_max_loss_turns_an_exploding_but_finite_run_into_a_diverged_one(moons):
    """Huge steps on logistic regression: the loss grows large but never NaN."""
    train, test = moons
    runs = {}
    for max_loss in (None, 100.0):
        torch.manual_seed(0)
        runs[max_loss] = nl.fit(nn.Linear(2, 2), train, test, epochs=3, lr=1e4, batch_size=64,
                                device="cpu", progress=False, max_loss=max_loss)
    free, capped = runs[None], runs[100.0]
    assert not free.diverged and max(free.column("loss")) > 100.0   # finite, and enormous
    assert capped.diverged and capped.diverged_epoch == 1
    with pytest.raises(ValueError, match="max_loss"):
        nl.fit(nn.Linear(2, 2), train, epochs=1, device="cpu", progress=False, max_loss=0.0)
