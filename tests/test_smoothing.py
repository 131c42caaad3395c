"""Randomized smoothing against truths that do not depend on our code.

* A linear two-class base f(x) = [w·x + b > 0]: its smoothed classifier has p_A = Φ(d/σ) at
  distance d from the hyperplane, so its exact robust radius is d (Cohen et al. 2019, §3.1).
* A Neural SDE with its noise on in front of the same linear head: p_A = Φ(d/√(σ² + τ²)).
* The Clopper–Pearson bound against SciPy (`binomtest(...).proportion_ci`, the binomial tail).
* PREDICT and CERTIFY are wrong, or fail to abstain, at most at the rate α allows (checked over
  many independent runs, with a tolerance a point estimate or a one-sided test fails).
* The stem's Lipschitz bound against the singular values of the convolution's dense matrix.
"""
import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

import nsde_lib as nl

ABSTAIN = nl.Smooth.ABSTAIN


class Linear2(nn.Module):
    """Two-class linear base: logits (−v, v) with v = w·x + b (x of any shape, flattened)."""

    def __init__(self, w: torch.Tensor, b: float = 0.0):
        super().__init__()
        self.w, self.b = w.flatten(), b

    def forward(self, x):
        v = x.flatten(1) @ self.w.to(x) + self.b
        return torch.stack([-v, v], dim=1)


def unit(shape, seed):
    w = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return w / w.norm()


def point_at(w, distance, seed, offset=0.0):
    """A point at signed distance ``distance`` from the hyperplane w·x + offset = 0 (w unit)."""
    x = torch.randn(w.shape, generator=torch.Generator().manual_seed(1000 + seed),
                    dtype=torch.float64)
    x = x - (x.flatten() @ w.flatten() + offset) * w  # onto the hyperplane
    return x + distance * w


# --- the confidence bound and the cap ------------------------------------------------------------

@pytest.mark.parametrize("k,n,alpha", [(1, 10, 0.05), (7, 10, 0.05), (10, 10, 0.01),
                                       (900, 1000, 0.001), (19_990, 20_000, 0.001),
                                       (5_000, 10_000, 0.1)])
def test_lower_confidence_bound_is_scipys_exact_interval(k, n, alpha):
    ours = nl.lower_confidence_bound(k, n, alpha)
    # the one-sided (1 - alpha) bound is the lower end of the two-sided (1 - 2 alpha) interval
    ref = stats.binomtest(k, n).proportion_ci(confidence_level=1 - 2 * alpha, method="exact").low
    assert ours == pytest.approx(ref, rel=1e-9, abs=1e-12)
    # and it is the p at which k or more successes have probability exactly alpha
    assert stats.binom.sf(k - 1, n, ours) == pytest.approx(alpha, rel=1e-6)


def test_lower_confidence_bound_edges():
    assert nl.lower_confidence_bound(0, 50, 0.01) == 0.0
    assert nl.lower_confidence_bound(50, 50, 0.01) == pytest.approx(0.01 ** (1 / 50), rel=1e-12)
    with pytest.raises(ValueError, match="k must be <= n"):
        nl.lower_confidence_bound(51, 50, 0.01)


def test_every_vote_agreeing_gives_exactly_the_cap_and_nothing_exceeds_it(float64):
    sigma, n, alpha = 0.5, 500, 0.001
    cap = sigma * stats.norm.ppf(alpha ** (1 / n))
    assert nl.radius_cap(sigma, n, alpha) == pytest.approx(cap, rel=1e-12)
    w = unit((3, 4, 4), 0)
    smooth = nl.Smooth(Linear2(w), 2, sigma)
    gen = torch.Generator().manual_seed(0)
    radii = [smooth.certify(point_at(w, d, i), 50, n, alpha, generator=gen)[1]
             for i, d in enumerate((0.3, 0.8, 1.5, 3.0, 10.0, 100.0))]
    assert max(radii) <= cap * (1 + 1e-12)
    assert radii[-1] == pytest.approx(cap, rel=1e-12)  # 100 sigma away: every vote agrees


# --- the linear base: the exact robust radius is the distance to the hyperplane -------------------

@pytest.mark.parametrize("shape", [(2,), (3, 4, 4)])
def test_certificate_never_exceeds_the_distance_and_comes_within_20_percent(shape, float64):
    sigma, n, alpha = 0.5, 20_000, 0.001
    w = unit(shape, 1)
    smooth = nl.Smooth(Linear2(w, b=0.3), 2, sigma)
    gen = torch.Generator().manual_seed(1)
    for i, d in enumerate((0.15, 0.25, 0.5, 0.8, 1.2)):   # 0.3 to 2.4 sigma
        for sign, label in ((1, 1), (-1, 0)):
            x = point_at(w, sign * d, i, offset=0.3)
            c, r = smooth.certify(x, 100, n, alpha, batch_size=4096, generator=gen)
            assert c == label
            assert 0.8 * d <= r <= d, (d, r)


def test_a_point_on_the_boundary_abstains(float64):
    w = unit((2,), 2)
    smooth = nl.Smooth(Linear2(w), 2, 1.0)
    gen = torch.Generator().manual_seed(2)
    for i in range(5):
        x = point_at(w, 0.0, i)
        assert smooth.certify(x, 100, 5_000, 0.001, generator=gen) == (ABSTAIN, 0.0)
        assert smooth.predict(x, 5_000, 0.001, generator=gen) == ABSTAIN


def test_far_from_the_boundary_predict_and_certify_agree_with_the_side(float64):
    w = unit((5,), 3)
    smooth = nl.Smooth(Linear2(w), 2, 0.25)
    gen = torch.Generator().manual_seed(3)
    for i, d in enumerate((-1.0, -0.3, 0.3, 1.0)):
        x = point_at(w, d, i)
        assert smooth.predict(x, 1_000, 0.001, generator=gen) == int(d > 0)
        assert smooth.certify(x, 100, 1_000, 0.001, generator=gen)[0] == int(d > 0)


# --- rates: what alpha allows -----------------------------------------------------------------------

TRIALS = 1_000


def at_most(alpha, trials=TRIALS):
    """alpha plus three binomial standard errors: a correct implementation passes with
    probability > 99.8 %, one that is wrong at twice the rate (e.g. a one-sided test, or a
    bound at level 2 alpha) fails."""
    return alpha + 3 * math.sqrt(alpha * (1 - alpha) / trials)


def test_certify_is_wrong_at_most_at_rate_alpha(float64):
    """A certificate is wrong when its radius exceeds the true one (here the distance d)."""
    sigma, alpha, d = 1.0, 0.1, 0.5
    w = unit((2,), 4)
    smooth = nl.Smooth(Linear2(w), 2, sigma)
    gen = torch.Generator().manual_seed(4)
    x = point_at(w, d, 0)
    results = [smooth.certify(x, 20, 100, alpha, generator=gen) for _ in range(TRIALS)]
    wrong = sum(c == 0 or (c == 1 and r > d) for c, r in results)
    assert wrong / TRIALS <= at_most(alpha)
    # a point estimate of p_A in place of the bound is wrong about half of the time
    naive = sum(sigma * stats.norm.ppf(min(max(n_a, 1), 99) / 100) > d for n_a in
                stats.binom.rvs(100, stats.norm.cdf(d / sigma), size=TRIALS, random_state=0))
    assert naive / TRIALS > at_most(alpha)


def test_predict_and_certify_abstain_on_the_boundary_at_rate_one_minus_alpha(float64):
    alpha = 0.1
    w = unit((2,), 5)
    smooth = nl.Smooth(Linear2(w), 2, 1.0)
    gen = torch.Generator().manual_seed(5)
    x = point_at(w, 0.0, 0)
    answered = sum(smooth.predict(x, 200, alpha, generator=gen) != ABSTAIN for _ in range(TRIALS))
    assert answered / TRIALS <= at_most(alpha)
    certified = sum(smooth.certify(x, 20, 200, alpha, generator=gen)[0] != ABSTAIN
                    for _ in range(TRIALS))
    assert certified / TRIALS <= at_most(alpha)


def test_predict_returns_the_wrong_class_at_most_at_rate_alpha(float64):
    alpha = 0.05
    w = unit((2,), 6)
    smooth = nl.Smooth(Linear2(w), 2, 1.0)
    gen = torch.Generator().manual_seed(6)
    x = point_at(w, 0.05, 0)  # p_A = 0.52: mostly abstains, but must almost never say 0
    answers = [smooth.predict(x, 200, alpha, generator=gen) for _ in range(TRIALS)]
    assert sum(a == 0 for a in answers) / TRIALS <= at_most(alpha)
    assert sum(a == ABSTAIN for a in answers) > TRIALS / 2


# --- a random base: a Neural SDE with its noise on ---------------------------------------------------

class SDEThenLinear(nn.Module):
    """dy = τ dW on [0, 1] (zero drift, the library's additive Neural SDE), then Linear2."""

    def __init__(self, w, tau):
        super().__init__()
        self.sde = nl.make_sde(lambda t, y: torch.zeros_like(y), "additive", sigma=tau)
        self.head = Linear2(w)

    @property
    def noise_on(self):
        return self.sde.noise_on

    def forward(self, x):
        return self.head(nl.sdeint(self.sde, x, [0.0, 1.0], dt=0.25)[-1])


def test_a_random_base_is_certified_by_the_same_theorem(float64):
    """p_A = Φ(d / √(σ² + τ²)): the certificate is below σ·Φ⁻¹(p_A) < d and close to it."""
    sigma, tau, n, alpha = 0.5, 0.5, 20_000, 0.001
    w = unit((4,), 7)
    base = SDEThenLinear(w, tau)
    assert base.noise_on
    smooth = nl.Smooth(base, 2, sigma)
    gen = torch.Generator().manual_seed(7)
    for i, d in enumerate((0.3, 0.7, 1.2)):
        exact = sigma * d / math.hypot(sigma, tau)
        c, r = smooth.certify(point_at(w, d, i), 100, n, alpha, batch_size=4096, generator=gen)
        assert c == 1 and 0.8 * exact <= r <= exact < d


def test_the_neural_sde_certified_in_hidden_space():
    """hidden_smooth: the stem's bound is the true operator norm (dense SVD), torch's reshaped
    kernel norm understates it, and the image radius is the hidden radius divided by it."""
    torch.manual_seed(0)
    model = nl.SDEClassifier(1, 10, channels=4, steps=2, noise="additive", sigma=0.3,
                             sigma0=0.5, spectral_stem=True).eval()
    smooth = nl.hidden_smooth(model, (1, 8, 8))
    w = model.stem.weight.detach().double()                     # (4, 1, 3, 3), normalised
    basis = torch.eye(64, dtype=torch.float64).view(64, 1, 8, 8)
    dense = torch.nn.functional.conv2d(basis, w).flatten(1)     # (64, 4·6·6): the operator
    exact = float(torch.linalg.svdvals(dense)[0])
    assert exact <= smooth.lipschitz <= exact * (1 + 1e-8)  # an upper bound, and a tight one
    assert nl.lipschitz_bound(model.stem, (1, 8, 8)) <= exact * (1 + 1e-12)  # power: from below
    reshaped = float(torch.linalg.svdvals(w.flatten(1))[0])  # what spectral_norm sets to ~1
    assert reshaped == pytest.approx(1.0, rel=0.02)
    assert exact > 1.2 * reshaped  # ... and understates the operator's norm
    x = torch.rand(1, 8, 8)
    hidden = nl.Smooth(nl.StateClassifier(model), 10, 0.5)
    c_img, r_img = smooth.certify(x, 20, 200, 0.01, generator=torch.Generator().manual_seed(8))
    c_hid, r_hid = hidden.certify(model.stem(x[None])[0].detach(), 20, 200, 0.01,
                                  generator=torch.Generator().manual_seed(8))
    assert c_img == c_hid
    # certifying and attacking through the smoothed classifier leave the model in eval mode, so
    # spectral normalisation cannot move the stem the bound was computed for
    nl.falsify(smooth, x[None], torch.tensor([c_img]), torch.tensor([r_img]), steps=2, eot=2, n=50)
    assert not any(m.training for m in model.modules())
    assert torch.equal(model.stem.weight.detach().double(), w)
    assert r_img == pytest.approx(r_hid / smooth.lipschitz, rel=1e-12)
    assert r_img <= nl.radius_cap(0.5, 200, 0.01) / exact


@pytest.mark.parametrize("cin,side,padding,stride", [(1, 14, 0, 1), (3, 9, 1, 2), (2, 12, 2, 1)])
def test_exact_operator_norm_is_the_dense_matrix_norm_and_power_iteration_stays_below(
        cin, side, padding, stride):
    """operator_norm(exact=True) against the SVD of the convolution's matrix built here with
    NumPy loops (an independent implementation); power iteration never overshoots it."""
    rng = np.random.default_rng(cin + side)
    w = rng.standard_normal((5, cin, 3, 3))
    out_side = (side + 2 * padding - 3) // stride + 1
    matrix = np.zeros((5 * out_side * out_side, cin * side * side))
    for co in range(5):
        for i in range(out_side):
            for j in range(out_side):
                row = (co * out_side + i) * out_side + j
                for ci in range(cin):
                    for a in range(3):
                        for b in range(3):
                            r, c = i * stride + a - padding, j * stride + b - padding
                            if 0 <= r < side and 0 <= c < side:
                                matrix[row, (ci * side + r) * side + c] += w[co, ci, a, b]
    truth = np.linalg.svd(matrix, compute_uv=False)[0]
    conv = nn.Conv2d(cin, 5, 3, padding=padding, stride=stride).double()
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(w))
    assert nl.lipschitz_bound(conv, (cin, side, side), exact=True) == pytest.approx(truth, rel=1e-10)
    assert nl.lipschitz_bound(conv, (cin, side, side)) <= truth * (1 + 1e-12)
    with pytest.raises(ValueError, match="exact=True"):
        nl.operator_norm(lambda x: x, (2, 3), exact=True)


def test_sdeclassifier_noise_at_t0():
    torch.manual_seed(0)
    model = nl.SDEClassifier(1, 10, channels=4, steps=2, sigma0=0.7).eval()
    assert model.noise_on  # a Neural ODE with a random start is a random model
    x = torch.rand(64, 1, 8, 8)
    with torch.no_grad():
        y0 = model.stem(x)
        assert torch.equal(model(x, noise_on=False), model.classify_state(y0, noise_on=False))
        path = model.hidden_states(x, generator=torch.Generator().manual_seed(1))
        again = model.hidden_states(x, generator=torch.Generator().manual_seed(1))
    assert torch.equal(path, again)
    drawn = (path[0] - y0).flatten()
    assert abs(float(drawn.std()) - 0.7) < 0.7 * 4 / math.sqrt(2 * drawn.numel())
    assert abs(float(drawn.mean())) < 4 * 0.7 / math.sqrt(drawn.numel())


# --- the attack on the smoothed classifier --------------------------------------------------------

def test_falsify_breaks_no_certificate_but_breaks_an_overstated_one(float64):
    """Inside the certified ball no prediction flips; past the true radius (the distance to the
    hyperplane) the same attack does flip them: it has teeth."""
    w = unit((1, 6, 6), 9)
    smooth = nl.Smooth(Linear2(w, b=-float(w.sum()) * 0.5), 2, 0.25)
    xs = torch.stack([point_at(w, d, i, offset=-float(w.sum()) * 0.5).clamp(0, 1)
                      for i, d in enumerate((0.2, 0.3, -0.25, 0.4))])
    classes, radii = nl.certify_dataset(smooth, xs, n0=50, n=2_000, alpha=0.001, seed=0)
    assert (classes != ABSTAIN).all()
    held = nl.falsify(smooth, xs, classes, radii, steps=20, eot=32, n=2_000, seed=0)
    assert held["attacked"] == 4 and held["flipped"] == 0
    broken = nl.falsify(smooth, xs, classes, radii, shrink=3.0, steps=20, eot=32, n=2_000, seed=0)
    assert broken["flipped"] >= 3


# --- the pieces --------------------------------------------------------------------------------------

def test_votes_sum_to_n_and_a_deterministic_base_votes_one_class(float64):
    w = unit((2,), 10)
    smooth = nl.Smooth(Linear2(w), 2, 0.1)
    xs = torch.stack([point_at(w, 5.0, 0), point_at(w, -5.0, 1), point_at(w, 0.0, 2)])
    votes = smooth.votes(xs, 1_000, batch_size=128, generator=torch.Generator().manual_seed(0))
    assert votes.shape == (3, 2) and votes.sum(1).tolist() == [1_000] * 3
    assert votes[0].tolist() == [0, 1_000] and votes[1].tolist() == [1_000, 0]
    assert abs(int(votes[2, 1]) - 500) < 4 * math.sqrt(250)
    model = nn.Sequential(nn.Flatten(), nn.Linear(2, 3))
    assert nl.ensemble_votes(model, xs, 7).sum(1).tolist() == [7, 7, 7]


def test_same_generator_same_certificate_and_batch_size_only_moves_the_draws(float64):
    w = unit((2,), 11)
    smooth = nl.Smooth(Linear2(w), 2, 0.5)
    x = point_at(w, 0.4, 0)
    run = lambda seed, bs: smooth.certify(x, 50, 3_000, 0.01, bs,  # noqa: E731
                                          generator=torch.Generator().manual_seed(seed))
    assert run(0, 500) == run(0, 500)
    assert run(0, 500) != run(1, 500)


def test_smooth_is_a_noisy_model_for_the_ensemble_and_the_attacks():
    torch.manual_seed(0)
    base = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    smooth = nl.Smooth(base, 3, 0.3)
    x = torch.rand(5, 1, 4, 4)
    assert torch.equal(smooth(x, noise_on=False), base(x))
    assert not torch.equal(smooth(x), base(x))
    probs = nl.predict_proba(smooth, x, K=4, seed=0)
    assert probs.shape == (5, 3) and torch.allclose(probs.sum(1), torch.ones(5))


def test_gaussian_noise_has_the_right_law_and_follows_its_generator():
    z = nl.gaussian_noise((200_000,), 0.3, generator=torch.Generator().manual_seed(0),
                          dtype=torch.float64)
    assert abs(float(z.std()) - 0.3) < 4 * 0.3 / math.sqrt(2 * 200_000)
    assert abs(float(z.mean())) < 4 * 0.3 / math.sqrt(200_000)
    again = nl.gaussian_noise((200_000,), 0.3, generator=torch.Generator().manual_seed(0),
                              dtype=torch.float64)
    assert torch.equal(z, again)


def test_certified_accuracy_counts_correct_and_far_enough():
    classes = torch.tensor([0, 1, ABSTAIN, 2, 1])
    radii = torch.tensor([0.5, 0.1, 0.0, 1.0, 0.3], dtype=torch.float64)
    y = torch.tensor([0, 1, 1, 0, 1])
    assert nl.certified_accuracy(classes, radii, y, [0.0, 0.2, 0.5, 1.0]).tolist() == \
        [0.6, 0.4, 0.2, 0.0]


# --- bad input -----------------------------------------------------------------------------------------

def test_bad_arguments_name_themselves():
    base = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    x = torch.rand(2, 2)
    for sigma in (0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="sigma"):
            nl.Smooth(base, 3, sigma)
    with pytest.raises(ValueError, match="num_classes"):
        nl.Smooth(base, 1, 0.5)
    with pytest.raises(TypeError, match="base"):
        nl.Smooth("resnet", 3, 0.5)
    with pytest.raises(ValueError, match="lipschitz"):
        nl.Smooth(base, 3, 0.5, lipschitz=2.0)
    smooth = nl.Smooth(base, 3, 0.5)
    for kwargs, name in ((dict(n0=0), "n0"), (dict(n=0), "n"), (dict(alpha=0.0), "alpha"),
                         (dict(alpha=1.0), "alpha"), (dict(alpha=-1), "alpha"),
                         (dict(batch_size=0), "batch_size"), (dict(n0=2.5), "n0")):
        args = dict(n0=10, n=100, alpha=0.01, batch_size=10) | kwargs
        with pytest.raises(ValueError, match=name):
            smooth.certify(x, **args)
    with pytest.raises(ValueError, match="n"):
        smooth.predict(x, 0, 0.01)
    with pytest.raises(ValueError, match="alpha"):
        smooth.predict(x, 10, 1.5)
    with pytest.raises(ValueError, match="batch_size"):
        smooth.predict(x, 10, 0.01, 0)
    wrong = nl.Smooth(nn.Sequential(nn.Flatten(), nn.Linear(4, 5)), 3, 0.5)
    with pytest.raises(ValueError, match=r"base must return logits of shape \(batch, num_classes\)"):
        wrong.certify(x, 10, 100, 0.01)
    flat = nl.Smooth(lambda z: z.sum(dim=(1, 2)), 3, 0.5)
    with pytest.raises(ValueError, match="base must return logits"):
        flat.predict(x, 10, 0.01)
    with pytest.raises(TypeError, match="x"):
        smooth.certify([[0.0, 1.0]], 10, 100, 0.01)


def test_hidden_smooth_needs_noise_at_t0():
    with pytest.raises(ValueError, match="sigma0"):
        nl.hidden_smooth(nl.SDEClassifier(1, 10, channels=4, steps=1), (1, 8, 8))
    with pytest.raises(TypeError, match="SDEClassifier"):
        nl.hidden_smooth(nn.Linear(2, 2), (1, 8, 8))
    with pytest.raises(ValueError, match="sigma0"):
        nl.SDEClassifier(1, 10, sigma0=-1.0)


def test_the_chapter_models_and_what_certifies_them():
    ode = nl.smoothing_model("ode", channels=4, steps=1)
    smoothed = nl.smoothing_model("smoothed", 0.25, channels=4, steps=1)
    sde = nl.smoothing_model("noise-at-0", 0.5, channels=4, steps=1).eval()
    assert isinstance(ode, nl.SDEClassifier) and not ode.noise_on
    assert isinstance(smoothed, nl.Smooth) and smoothed.sigma == 0.25
    assert sde.sigma0 == 0.5 and sde.spectral_stem and sde.noise == "additive"
    assert sde.sigma == nl.NOISE_LEVELS["additive"]["sigma"]  # the course's level in the block
    assert nl.smoother_of(ode, (1, 8, 8)) is None
    assert nl.smoother_of(smoothed, (1, 8, 8)) is smoothed
    hidden = nl.smoother_of(sde, (1, 8, 8))
    assert hidden.encoder is sde.stem and hidden.sigma == 0.5 and hidden.lipschitz > 0
    with pytest.raises(ValueError, match="family"):
        nl.smoothing_model("bayesian", 0.25)
    with pytest.raises(ValueError, match="sigma"):
        nl.smoothing_model("smoothed", 0.0)
