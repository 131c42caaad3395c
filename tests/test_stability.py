"""Stability tools against truths that do not depend on them: the closed-form exponent of
geometric Brownian motion, SVDs of explicit matrices, the DFT of a circular convolution."""
import math

import numpy as np
import pytest
import torch
from torch import nn

import nsde_lib as nl
from nsde_lib import critical_moment_order, operator_norm

pytestmark = pytest.mark.usefixtures("float64")  # numbers compared in float64


class GBM:
    """dx = mu·x dt + sigma·x dB (the toy of paper 000, eq. 11, when mu = 1)."""

    def __init__(self, mu, sigma):
        self.mu, self.sigma = mu, sigma

    def f(self, t, y):
        return self.mu * y

    def g(self, t, y):
        return self.sigma * y


# --- Lyapunov exponents -----------------------------------------------------------------------

@pytest.mark.parametrize("sigma", [0.0, 1.0, 2.8])
def test_lyapunov_exponent_of_the_toy_is_one_minus_sigma_squared_over_two(sigma):
    """Simulated with sdeint (Euler–Maruyama, dt = 1e-3), the exponent is 1 − σ²/2.

    The tolerance (0.06 + 4 standard errors: 0.06 at σ = 0, ≈ 0.19 at σ = 2.8) rejects a solver
    that gets the Itô correction wrong (a Stratonovich reading gives 1 for every σ: off by
    0.5 and 3.92), that drops the noise, or that steps too coarsely (Euler at dt = 0.01 gives
    −3.50 at σ = 2.8).
    """
    T, dt, n = 5.0, 1e-3, 2000
    ts = torch.linspace(0.0, T, 51)
    gen = torch.Generator().manual_seed(0)
    paths = nl.sdeint(GBM(1.0, sigma), torch.ones(n), ts, dt=dt, generator=gen)
    est = nl.lyapunov_exponent(paths, ts)
    theory = nl.gbm_lyapunov(1.0, sigma)
    tol = 0.06 + 4 * est.stderr
    assert abs(est.exponent - theory) < tol, (est, theory)
    if sigma > 0:  # the checks mean something: an Itô/Stratonovich mix-up would fail
        assert sigma ** 2 / 2 > 2 * tol


def test_coarse_euler_is_caught_at_large_sigma():
    """Euler–Maruyama's own exponent E log|1 + dt + σΔW| / dt is −3.50 at σ = 2.8, dt = 0.01."""
    T, n = 5.0, 2000
    ts = torch.linspace(0.0, T, 51)
    paths = nl.sdeint(GBM(1.0, 2.8), torch.ones(n), ts, dt=0.01,
                      generator=torch.Generator().manual_seed(0))
    est = nl.lyapunov_exponent(paths, ts)
    assert abs(est.exponent - nl.gbm_lyapunov(1.0, 2.8)) > 0.06 + 4 * est.stderr


def _exact_gbm(mu, sigma, T, n_times, n_paths, seed):
    gen = torch.Generator().manual_seed(seed)
    ts = torch.linspace(0.0, T, n_times)
    dw = torch.randn(n_times - 1, n_paths, generator=gen) * math.sqrt(T / (n_times - 1))
    w = torch.cat([torch.zeros(1, n_paths), dw.cumsum(0)])
    return ts, 2.0 * torch.exp((mu - sigma ** 2 / 2) * ts[:, None] + sigma * w)


@pytest.mark.parametrize("method,var_factor", [("fit", 6 / 5), ("endpoint", 1.0)])
def test_estimator_on_exact_paths_is_unbiased_with_the_predicted_spread(method, var_factor):
    mu, sigma, T, n = 0.3, 1.5, 4.0, 4000
    ts, paths = _exact_gbm(mu, sigma, T, 801, n, seed=1)
    est = nl.lyapunov_exponent(paths, ts, method=method)
    assert abs(est.exponent - (mu - sigma ** 2 / 2)) < 4 * est.stderr
    predicted = sigma * math.sqrt(var_factor / T)  # std of one path's slope
    assert abs(float(est.per_path.std()) / predicted - 1) < 0.06  # 4000 paths: ±1.1 % s.e.
    assert est.per_path.shape == (n,)


def test_window_and_norm_over_state_dimensions():
    """A vector state's norm: x_t = e^{-2t}·v has exponent −2 exactly, whatever v."""
    ts = torch.linspace(0.0, 3.0, 31)
    v = torch.tensor([[3.0, -4.0], [0.5, 0.1]])  # (n_paths, 2)
    paths = torch.exp(-2 * ts)[:, None, None] * v  # (T, 2, 2)
    for method in ("fit", "endpoint"):
        est = nl.lyapunov_exponent(paths, ts, method=method, t_min=1.0, t_max=2.5)
        torch.testing.assert_close(est.per_path, torch.full((2,), -2.0))
    logs = nl.log_norms(paths)
    torch.testing.assert_close(logs[0], torch.tensor([math.log(5.0), math.log(math.hypot(.5, .1))]))


def test_moment_versus_almost_sure_exponents():
    """E|x_t|^p grows at p(μ − σ²/2 + pσ²/2): p = 1 gives μ, the slope at p = 0 is μ − σ²/2."""
    mu, sigma = 1.0, 2.8
    assert nl.gbm_moment_exponent(mu, sigma, 1.0) == pytest.approx(mu)
    slope = (nl.gbm_moment_exponent(mu, sigma, 1e-6) - 0) / 1e-6
    assert slope == pytest.approx(nl.gbm_lyapunov(mu, sigma), rel=1e-5)
    p_star = critical_moment_order(mu, sigma)
    assert nl.gbm_moment_exponent(mu, sigma, p_star) == pytest.approx(0, abs=1e-12)
    # and on exact paths: the sample mean of x_T^p for small p follows the formula
    ts, paths = _exact_gbm(mu, 1.0, 1.0, 2, 200000, seed=2)
    for p in (0.5, 1.0):
        m = float((paths[-1] / 2.0).pow(p).mean())
        assert math.log(m) == pytest.approx(nl.gbm_moment_exponent(mu, 1.0, p), abs=0.02)


@pytest.mark.parametrize("bad,match", [
    (dict(method="median"), "method"), (dict(t_min=5.0), "window"),
    (dict(ts=torch.linspace(0, 1, 7)), "ts"),
])
def test_lyapunov_bad_input(bad, match):
    args = dict(paths=torch.ones(5, 3), ts=torch.linspace(0, 1, 5)) | bad
    with pytest.raises(ValueError, match=match):
        nl.lyapunov_exponent(args.pop("paths"), args.pop("ts"), **args)


def test_lyapunov_refuses_zero_and_nan_paths():
    ts = torch.linspace(0, 1, 3)
    with pytest.raises(ValueError, match="exactly 0"):
        nl.lyapunov_exponent(torch.tensor([[1.0], [0.0], [1.0]]), ts)
    with pytest.raises(ValueError, match="NaN"):
        nl.lyapunov_exponent(torch.tensor([[1.0], [float("nan")], [1.0]]), ts)


# --- shared Brownian paths and the perturbation ε_t ---------------------------------------------

def _drift():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 3))


@pytest.mark.parametrize("noise", ["multiplicative", "additive", "dropout", "jump-dropout"])
def test_identical_inputs_on_a_shared_path_give_zero_perturbation(noise):
    net = _drift()
    sde = nl.make_sde(lambda t, y: net(y), noise, sigma=1.5, p=0.3, rate=4.0)
    y0 = torch.randn(6, 3, generator=torch.Generator().manual_seed(1))
    eps = nl.perturbation(sde, y0, y0.clone(), torch.linspace(0, 2, 11), dt=0.05,
                          generator=torch.Generator().manual_seed(2))
    assert eps.shape == (11, 6, 3)
    assert torch.equal(eps, torch.zeros_like(eps))
    eps = nl.perturbation(sde, y0, y0.clone(), torch.linspace(0, 2, 11), dt=0.05)  # global RNG
    assert torch.equal(eps, torch.zeros_like(eps))
    # a different noise path for the second input would not give zero: the sharing matters
    a = nl.sdeint(sde, y0, [0.0, 2.0], dt=0.05, generator=torch.Generator().manual_seed(2))
    b = nl.sdeint(sde, y0, [0.0, 2.0], dt=0.05, generator=torch.Generator().manual_seed(3))
    assert (a - b).abs().max() > 1e-3


def test_perturbation_of_a_linear_sde_is_the_euler_product():
    """dx = a·x dt + σ·x dB is linear, so ε follows the same recursion: ε_N = ε_0 Π(1 + a dt + σΔW)."""
    a, sigma, dt, n_steps = 0.7, 1.3, 0.01, 200
    grid, _ = nl.time_grid([0.0, n_steps * dt], dt)
    bm = nl.brownian_increments(grid, (4, 2), scalar=True, generator=torch.Generator().manual_seed(3))
    y0 = torch.tensor([[1.0, 2.0], [0.0, 1.0], [-1.0, 0.5], [3.0, 3.0]])
    eps0 = 1e-3 * torch.ones(4, 2)
    eps = nl.perturbation(GBM(a, sigma), y0, y0 + eps0, [0.0, n_steps * dt], dt=dt, bm=bm)
    expected = eps0 * torch.prod(1 + a * dt + sigma * bm, dim=0)
    torch.testing.assert_close(eps[-1], expected, rtol=1e-9, atol=1e-15)


def test_scalar_brownian_increments_are_shared_by_components_and_have_variance_dt():
    grid = nl.time_grid([0.0, 1.0], 0.25)[0]
    dw = nl.brownian_increments(grid, (20000, 3), scalar=True,
                                generator=torch.Generator().manual_seed(4))
    assert dw.shape == (4, 20000, 3) and torch.equal(dw[..., 0], dw[..., 2])
    assert abs(float(dw[..., 0].var()) - 0.25) < 0.01
    diag = nl.brownian_increments(grid, (20000, 3), generator=torch.Generator().manual_seed(4))
    assert abs(float(torch.corrcoef(diag[0].T)[0, 1])) < 0.03


def test_corollary_4_0_1_bound_holds_for_a_lipschitz_drift():
    """dε = [f(h+ε) − f(h)] dt + σ ε dB with one scalar B: exponent ≤ L − σ²/2 (and close to
    the ODE's own exponent minus σ²/2 for a linear drift)."""
    torch.manual_seed(5)
    w = torch.randn(2, 2)
    f = lambda t, y: torch.tanh(y @ w.T)  # noqa: E731
    L = float(torch.linalg.matrix_norm(w, 2))
    sigma, T, dt, n = 2.0, 5.0, 5e-3, 200
    ts = torch.linspace(0.0, T, 51)
    grid, _ = nl.time_grid(ts, dt)
    bm = nl.brownian_increments(grid, (n, 2), scalar=True, generator=torch.Generator().manual_seed(6))
    y0 = torch.randn(n, 2, generator=torch.Generator().manual_seed(7))
    sde = nl.make_sde(f, "multiplicative", sigma=sigma)
    eps = nl.perturbation(sde, y0, y0 + 1e-4, ts, dt=dt, bm=bm)
    est = nl.lyapunov_exponent(eps, ts)
    assert est.exponent < L - sigma ** 2 / 2 + 3 * est.stderr + 0.05
    assert est.exponent < 0  # here σ² > 2L: almost surely exponentially stable


# --- Lipschitz constants ------------------------------------------------------------------------

def test_lipschitz_bound_of_a_linear_map_is_its_spectral_norm():
    torch.manual_seed(0)
    layer = nn.Linear(5, 7)
    expected = float(torch.linalg.matrix_norm(layer.weight.detach(), ord=2))
    assert nl.lipschitz_bound(layer) == pytest.approx(expected, rel=1e-7)
    assert nl.lipschitz_bound(nn.Sequential(layer)) == pytest.approx(expected, rel=1e-7)


def test_lipschitz_bound_of_a_sequential_is_the_product_of_svd_norms():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 16), nn.Sigmoid(),
                        nn.Linear(16, 3))
    svd = [float(torch.linalg.svdvals(m.weight.detach())[0]) for m in net if isinstance(m, nn.Linear)]
    expected = svd[0] * svd[1] * 0.25 * svd[2]
    assert nl.lipschitz_bound(net) == pytest.approx(expected, rel=1e-6)
    names = [name for name, _ in nl.spectral_norms(net)]
    assert names == ["0", "1", "2", "3", "4"]
    # an upper bound: never below the Jacobian norm at any point
    x = torch.randn(256, 4)
    assert float(nl.local_lipschitz(net, x).max()) <= nl.lipschitz_bound(net) * (1 + 1e-6)


def _explicit_matrix(op, shape):
    """The matrix of a linear map, column by column from the basis vectors."""
    n = int(np.prod(shape))
    basis = torch.eye(n).view(n, *shape)
    with torch.no_grad():
        return torch.stack([op(e[None]).flatten() for e in basis], dim=1)


@pytest.mark.parametrize("kwargs", [dict(padding=1), dict(padding=1, stride=2),
                                    dict(padding=0), dict(padding=1, padding_mode="circular")])
def test_conv_operator_norm_matches_the_svd_of_its_matrix(kwargs):
    torch.manual_seed(2)
    conv = nn.Conv2d(2, 3, 3, **kwargs).double()
    shape = (2, 5, 5)
    matrix = _explicit_matrix(lambda x: conv(x) - conv(torch.zeros_like(x)), shape)
    expected = float(torch.linalg.svdvals(matrix)[0])
    assert nl.lipschitz_bound(conv, shape) == pytest.approx(expected, rel=1e-6)
    # not the norm of the reshaped kernel, which ignores padding, stride and image size
    kernel_norm = float(torch.linalg.matrix_norm(conv.weight.detach().flatten(1), 2))
    assert abs(kernel_norm - expected) > 1e-3 * expected


def test_circular_conv_norm_is_the_largest_dft_coefficient():
    """One channel, circular padding: the operator is diagonalised by the 2-D DFT."""
    torch.manual_seed(3)
    conv = nn.Conv2d(1, 1, 3, padding=1, padding_mode="circular", bias=False).double()
    n = 8
    k = torch.zeros(n, n)
    k[:3, :3] = conv.weight.detach()[0, 0]
    expected = float(torch.fft.fft2(k).abs().max())
    assert nl.lipschitz_bound(conv, (1, n, n)) == pytest.approx(expected, rel=1e-6)


def test_conv_network_shapes_propagate_through_pooling_and_flatten():
    torch.manual_seed(4)
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
                        nn.Flatten(), nn.Linear(2 * 3 * 3, 4)).double().eval()
    norms = dict(nl.spectral_norms(net, (1, 6, 6)))
    assert norms["2"] == pytest.approx(0.5, rel=1e-6)  # 2x2 average: ‖A‖ = 1/2
    whole = _explicit_matrix(lambda x: net[2](net[0](x) - net[0](torch.zeros_like(x))), (1, 6, 6))
    assert norms["0"] * norms["2"] >= float(torch.linalg.svdvals(whole)[0]) * (1 - 1e-9)


def test_batchnorm_and_maxpool_rules():
    bn = nn.BatchNorm1d(3)
    bn.running_var = torch.tensor([4.0, 0.25, 1.0])
    bn.weight.data = torch.tensor([1.0, 1.0, -3.0])
    with pytest.raises(ValueError, match="eval"):
        nl.lipschitz_bound(bn)
    bn.eval()
    assert nl.lipschitz_bound(bn) == pytest.approx(3 / math.sqrt(1 + bn.eps), rel=1e-9)
    assert nl.lipschitz_bound(nn.MaxPool2d(2), (1, 4, 4)) == 1.0
    assert nl.lipschitz_bound(nn.MaxPool2d(3, stride=1), (1, 5, 5)) == pytest.approx(3.0)


def test_lipschitz_bad_input_is_named():
    with pytest.raises(ValueError, match="input_shape"):
        nl.lipschitz_bound(nn.Conv2d(1, 1, 3))
    with pytest.raises(ValueError, match="MultiheadAttention"):
        nl.lipschitz_bound(nn.MultiheadAttention(4, 2))


def test_operator_norm_of_a_diagonal_map():
    d = torch.tensor([0.5, -3.0, 2.0])
    assert operator_norm(lambda x: x * d, (1, 3)) == pytest.approx(3.0, rel=1e-8)


def test_local_lipschitz_matches_the_svd_of_the_jacobian():
    torch.manual_seed(5)
    net = nn.Sequential(nn.Linear(3, 10), nn.Tanh(), nn.Linear(10, 2))
    x = torch.randn(5, 3)
    est = nl.local_lipschitz(net, x, n_iter=200, tol=1e-12)
    for i in range(5):
        jac = torch.autograd.functional.jacobian(net, x[i])
        assert float(est[i]) == pytest.approx(float(torch.linalg.svdvals(jac)[0]), rel=1e-6)
