"""Attacks against a maintained implementation (torchattacks' FGSM, PGD, PGDL2 and AutoAttack),
and the sanity checks any attack must pass: the ε-ball, the pixel range, a loss that rises,
accuracy that never rises with a stronger attack, noise that stays on under eval()."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nsde_lib as nl
from nsde_lib.robust import attacks as A
from nsde_lib import mnist5k
from nsde_lib import fit


@pytest.fixture(scope="module")
def torchattacks():
    """The maintained implementation of the cross-checks; the sanity tests run without it."""
    return pytest.importorskip("torchattacks")

DTYPE = torch.float64


def small_cnn():
    """A deterministic conv net for the exact cross-checks (random weights are enough there)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.ReLU(),
                         nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(16 * 7 * 7, 10)).to(DTYPE).eval()


def mlp():
    """A deterministic classifier that trains in a second: 784 → 64 → 10."""
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 64), nn.ReLU(), nn.Linear(64, 10))


class TinySDENet(nn.Module):
    """Linear stem → a Neural SDE on a 32-d state → linear head.

    Multiplicative noise σ·h with σ = 2 (paper 000, §5): strong enough that a single noisy
    pass is a poor guess of the averaged prediction. ``noise_on`` switches the noise,
    independently of ``train()``/``eval()``, as the library's classifiers do.
    """

    def __init__(self, sigma=2.0, width=32, steps=6):
        super().__init__()
        self.stem = nn.Linear(28 * 28, width)
        self.f = nn.Sequential(nn.Tanh(), nn.Linear(width, width))
        self.sde = nl.make_sde(lambda t, y: self.f(y), "multiplicative", sigma=sigma)
        self.head = nn.Linear(width, 10)
        self.steps = steps

    @property
    def noise_on(self):
        return self.sde.noise_on

    @noise_on.setter
    def noise_on(self, on):
        self.sde.noise_on = on

    def forward(self, x):
        y0 = self.stem(x.flatten(1))
        y = nl.sdeint(self.sde, y0, [0.0, 1.0], dt=1.0 / self.steps)[-1]
        return self.head(y)


@pytest.fixture(scope="module")
def data():
    (xtr, ytr), (xte, yte) = mnist5k()
    return (xtr, ytr), (xte[:200].to(DTYPE), yte[:200])


def _trained(model, data, epochs, dtype):
    torch.manual_seed(0)
    fit(model, data[0], epochs=epochs, optimizer="adam", lr=3e-3, device="cpu", progress=False)
    return model.to(dtype).eval()


@pytest.fixture(scope="module")
def cnn():
    return small_cnn()


@pytest.fixture(scope="module")
def net(data):
    """The trained deterministic MLP, in float64."""
    return _trained(mlp(), data, 3, DTYPE)


@pytest.fixture(scope="module")
def sde_net(data):
    """The trained noisy model, in float32 (its tests compare accuracies, not digits)."""
    return _trained(TinySDENet(), data, 3, torch.float32)


@pytest.fixture(scope="module")
def test32(data):
    x, y = data[1]
    return x.float(), y


def accuracy(model, x, y, ensemble=1, seed=0):
    """Accuracy of the mean softmax over ``ensemble`` passes, with a fixed noise seed."""
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        probs = torch.stack([F.softmax(model(x), 1) for _ in range(ensemble)]).mean(0)
    return float((probs.argmax(1) == y).double().mean())


# --- against torchattacks ---------------------------------------------------------------------

@pytest.mark.parametrize("model", ["cnn", "net"])
def test_pgd_linf_without_random_start_equals_torchattacks(request, model, data, torchattacks):
    model = request.getfixturevalue(model)
    x, y = data[1][0][:16], data[1][1][:16]
    theirs = torchattacks.PGD(model, eps=0.1, alpha=0.01, steps=10, random_start=False)(x, y)
    ours = A.pgd(model, x, y, 0.1, norm="linf", steps=10, step_size=0.01, random_start=False)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-9)


def test_pgd_linf_with_matched_random_start_equals_torchattacks(net, data, torchattacks):
    x, y = data[1][0][:64], data[1][1][:64]
    torch.manual_seed(5)
    theirs = torchattacks.PGD(net, eps=0.1, alpha=0.02, steps=10, random_start=True)(x, y)
    torch.manual_seed(5)  # torchattacks' start: x + U(-ε, ε) per pixel, clamped
    start = (x + torch.empty_like(x).uniform_(-0.1, 0.1)).clamp(0, 1)
    ours = A.pgd(net, x, y, 0.1, norm="linf", steps=10, step_size=0.02, random_start=start)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-9)
    assert accuracy(net, ours, y) < accuracy(net, x, y) - 0.3


@pytest.mark.parametrize("model", ["cnn", "net"])
def test_pgd_l2_equals_torchattacks_pgdl2_with_and_without_random_start(request, model, data,
                                                                    torchattacks):
    model = request.getfixturevalue(model)
    x, y = data[1][0][:16], data[1][1][:16]
    # torchattacks divides by ‖∇‖ + 1e-10 (of its batch-mean loss), which shortens the steps of
    # confidently classified images (‖∇‖ ~ 1e-9); turned down, the two agree to rounding.
    pgdl2 = lambda **kw: torchattacks.PGDL2(model, eps=1.5, alpha=0.2, steps=10,  # noqa: E731
                                            eps_for_division=1e-300, **kw)
    theirs = pgdl2(random_start=False)(x, y)
    ours = A.pgd(model, x, y, 1.5, norm="l2", steps=10, step_size=0.2, random_start=False)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-9)

    torch.manual_seed(6)
    theirs = pgdl2(random_start=True)(x, y)
    torch.manual_seed(6)  # torchattacks' start: a Gaussian direction times ε·U(0, 1)
    delta = torch.empty_like(x).normal_()
    n = delta.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    r = torch.zeros_like(n).uniform_(0, 1)
    start = (x + delta * r / n * 1.5).clamp(0, 1)
    ours = A.pgd(model, x, y, 1.5, norm="l2", steps=10, step_size=0.2, random_start=start)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-9)


def test_fgsm_equals_torchattacks(net, data, torchattacks):
    x, y = data[1][0][:64], data[1][1][:64]
    theirs = torchattacks.FGSM(net, eps=0.08)(x, y)
    torch.testing.assert_close(A.fgsm(net, x, y, 0.08), theirs, rtol=0, atol=1e-12)


def test_our_pgd_is_about_as_strong_as_autoattack_on_a_deterministic_model(net, test32, torchattacks):
    """AutoAttack (torchattacks' port; version="rand" = APGD-CE + APGD-DLR with 20 EOT draws,
    the official package is not on PyPI) is the reference: PGD-20 must not claim much more
    robustness than it."""
    model = net.float()
    try:
        x, y = test32[0][:100], test32[1][:100]
        aa = torchattacks.AutoAttack(model, norm="Linf", eps=0.08, version="rand", n_classes=10,
                                     seed=0)(x, y)
        ours = A.pgd(model, x, y, 0.08, norm="linf", steps=20,
                     generator=torch.Generator().manual_seed(0))
        acc_aa, acc_ours, clean = (accuracy(model, aa, y), accuracy(model, ours, y),
                                   accuracy(model, x, y))
    finally:
        net.to(DTYPE)
    assert clean > 0.85 and acc_aa < clean - 0.3
    assert acc_aa - 0.03 <= acc_ours <= acc_aa + 0.05, (acc_ours, acc_aa)


def test_eot_pgd_matches_autoattack_rand_on_a_noisy_model_and_single_draw_pgd_does_not(
        sde_net, test32, torchattacks):
    """The lesson of obfuscated gradients: against a random model, PGD through one noise draw
    over-reports robustness; EOT-PGD does not, and is no weaker than AutoAttack's randomised
    version (APGD-CE + APGD-DLR, 20 EOT draws each)."""
    x, y = test32[0][:64], test32[1][:64]
    torch.manual_seed(0)
    aa = torchattacks.AutoAttack(sde_net, norm="L2", eps=1.0, version="rand", n_classes=10,
                                 seed=0)(x, y)
    torch.manual_seed(1)
    single = A.pgd(sde_net, x, y, 1.0, norm="l2", steps=20, eot=1)
    torch.manual_seed(1)
    eot = A.pgd(sde_net, x, y, 1.0, norm="l2", steps=20, eot=16)
    acc = {k: accuracy(sde_net, v, y, ensemble=32) for k, v in
           dict(clean=x, aa=aa, single=single, eot=eot).items()}
    assert acc["clean"] > 0.7 and acc["aa"] < acc["clean"] - 0.2, acc
    # torchattacks' port runs APGD for 10 iterations (the official AutoAttack: 100), so it is
    # a weak reference here: EOT-PGD-20 must be at least as strong ...
    assert acc["eot"] <= acc["aa"] + 0.03, acc
    # ... and stronger than the same attack through single noise draws.
    assert acc["eot"] < acc["single"], acc


# --- sanity -------------------------------------------------------------------------------------

@pytest.mark.parametrize("norm,eps", [("linf", 0.1), ("l2", 1.0)])
@pytest.mark.parametrize("start", [True, False])
def test_iterates_stay_in_the_ball_and_the_pixel_range(net, data, norm, eps, start):
    x, y = data[1][0][:64], data[1][1][:64]
    adv = A.pgd(net, x, y, eps, norm=norm, steps=5, step_size=eps, random_start=start)
    delta = (adv - x).flatten(1)
    size = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
    assert (size <= eps * (1 + 1e-9)).all()
    assert adv.min() >= 0 and adv.max() <= 1
    assert (size > 0.5 * eps).float().mean() > 0.9  # the budget is actually used


def test_uniform_l2_start_fills_the_ball_by_volume():
    x = torch.full((4000, 1, 2, 2), 0.5, dtype=DTYPE)  # d = 4, far from the pixel bounds
    r = (A.uniform_in_ball(x, 0.4, "l2", generator=torch.Generator().manual_seed(0)) - x)
    r = r.flatten(1).norm(dim=1) / 0.4
    # uniform in a 4-ball: P(radius ≤ s) = s⁴, so the median radius is 0.5^(1/4)
    assert abs(float(r.median()) - 0.5 ** 0.25) < 0.02 and float(r.max()) <= 1 + 1e-12


def test_the_loss_goes_up(net, data):
    x, y = data[1][0][:64], data[1][1][:64]
    history = []
    adv = A.pgd(net, x, y, 0.05, norm="linf", steps=10, random_start=False, history=history)
    with torch.no_grad():
        before = F.cross_entropy(net(x), y, reduction="none")
        after = F.cross_entropy(net(adv), y, reduction="none")
    assert (after > before).double().mean() > 0.95
    assert len(history[0]) == 10 and history[0][-1] > 1.5 * history[0][0]
    torch.testing.assert_close(torch.tensor(history[0][0], dtype=DTYPE), before.sum())


def test_accuracy_never_rises_with_eps_or_steps(net, data):
    x, y = data[1]
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    by_eps = [accuracy(net, A.pgd(net, x, y, e, steps=10, generator=gen()), y)
              for e in (0.0, 0.02, 0.04, 0.06, 0.1)]
    by_steps = [accuracy(net, A.pgd(net, x, y, 0.04, steps=s, step_size=0.01,
                                    random_start=False), y) for s in (1, 2, 4, 8, 16)]
    assert all(b <= a for a, b in zip(by_eps, by_eps[1:])) and by_eps[-1] < by_eps[0] - 0.5
    assert all(b <= a for a, b in zip(by_steps, by_steps[1:])) and by_steps[-1] < by_steps[0]


def test_accuracy_never_rises_with_more_eot_draws(sde_net, test32):
    x, y = test32
    accs = []
    for k in (1, 4, 16):
        torch.manual_seed(3)
        adv = A.pgd(sde_net, x, y, 0.06, norm="linf", steps=10, eot=k)
        accs.append(accuracy(sde_net, adv, y, ensemble=32))
    assert all(b <= a for a, b in zip(accs, accs[1:])) and accs[-1] < accs[0], accs


def test_noise_stays_on_under_eval_and_the_model_is_restored(sde_net, test32):
    x, y = test32[0][:16], test32[1][:16]
    sde_net.train()
    flags = [p.requires_grad for p in sde_net.parameters()]
    seen = []
    forward = lambda m, z: (seen.append(m.training), m(z))[1]  # noqa: E731
    g1 = A.input_gradient(sde_net, x, y, forward=forward)[1]
    g2 = A.input_gradient(sde_net, x, y, forward=forward)[1]
    assert not torch.allclose(g1, g2)                      # two noise draws
    A.pgd(sde_net, x, y, 0.5, norm="l2", steps=2, forward=forward)
    assert seen[-1] is False                               # the attack ran in eval() ...
    assert sde_net.training and sde_net.noise_on           # ... and put everything back
    assert [p.requires_grad for p in sde_net.parameters()] == flags
    sde_net.eval()
    sde_net.noise_on = False                               # noise off: a deterministic model
    try:
        torch.testing.assert_close(A.input_gradient(sde_net, x, y)[1],
                                   A.input_gradient(sde_net, x, y)[1])
    finally:
        sde_net.noise_on = True


def test_eot_on_a_deterministic_model_is_the_plain_gradient(net, data):
    x, y = data[1][0][:32], data[1][1][:32]
    for objective in A.OBJECTIVES:
        torch.testing.assert_close(A.input_gradient(net, x, y, eot=5, objective=objective)[1],
                                   A.input_gradient(net, x, y)[1])


def test_attack_loss_objectives_by_hand():
    torch.manual_seed(0)
    logits, y = torch.randn(3 * 4, 10, dtype=DTYPE), torch.randint(0, 10, (4,))
    probs = F.softmax(logits, 1).view(3, 4, 10)
    mean_ce = -torch.log(probs[:, torch.arange(4), y]).sum() / 3
    ensemble = -torch.log(probs.mean(0)[torch.arange(4), y]).sum()
    torch.testing.assert_close(A.attack_loss(logits, y, 3, "loss"), mean_ce)
    torch.testing.assert_close(A.attack_loss(logits, y, 3, "ensemble"), ensemble)
    assert ensemble <= mean_ce  # Jensen: −log of a mean ≤ mean of −log


def test_batches_give_the_same_attack(net, data):
    x, y = data[1][0][:50], data[1][1][:50]
    whole = A.pgd(net, x, y, 0.1, steps=5, random_start=False)
    torch.testing.assert_close(A.pgd(net, x, y, 0.1, steps=5, random_start=False,
                                     batch_size=16), whole)


def test_zero_eps_returns_the_clean_images(net, data):
    x, y = data[1][0][:8], data[1][1][:8]
    torch.testing.assert_close(A.pgd(net, x, y, 0.0), x, rtol=0, atol=0)
    torch.testing.assert_close(A.fgsm(net, x, y, 0.0), x, rtol=0, atol=0)


@pytest.mark.parametrize("kwargs,name", [
    (dict(eps=-0.1), "eps"), (dict(eps=float("nan")), "eps"), (dict(norm="l1"), "norm"),
    (dict(steps=0), "steps"), (dict(steps=2.5), "steps"), (dict(eot=0), "eot"),
    (dict(objective="mean"), "objective"), (dict(step_size=-1.0), "step_size"),
    (dict(batch_size=0), "batch_size")])
def test_bad_arguments_name_themselves(net, data, kwargs, name):
    x, y = data[1][0][:4], data[1][1][:4]
    args = dict(eps=0.1) | kwargs
    with pytest.raises(ValueError, match=name):
        A.pgd(net, x, y, **args)


def test_bad_inputs_are_refused(net, data):
    x, y = data[1][0][:4], data[1][1][:4]
    with pytest.raises(ValueError, match="eps"):
        A.fgsm(net, x, y, -1.0)
    with pytest.raises(ValueError, match="norm"):
        A.fgsm(net, x, y, 0.1, norm="l0")
    with pytest.raises(ValueError, match="pixel range"):
        A.pgd(net, x * 3, y, 0.1)
    with pytest.raises(ValueError, match="labels"):
        A.pgd(net, x, y[:2], 0.1)
