"""Dormand–Prince 5(4) against scipy.integrate.solve_ivp (the same method, an independent
implementation), the matrix exponential, and its measured order."""
import math

import numpy as np
import pytest
import scipy.linalg
import torch
from scipy.integrate import solve_ivp

import nsde_lib as nl
from nsde_lib import AdaptiveBlock, SolveStats, odeint_dopri5

DTYPE = torch.float64


@pytest.fixture(scope="module")
def linear():
    """y' = A·y with a non-normal, stable A (4×4): exact solution expm(A·t)·y0."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 4)) - 3 * np.eye(4)
    return a, torch.tensor(a), torch.tensor(rng.normal(size=(3, 4)))


def _exact(a, y0, t):
    return (scipy.linalg.expm(a * t) @ y0.numpy().T).T


@pytest.mark.parametrize("rtol", [1e-3, 1e-6, 1e-9])
def test_same_steps_and_accuracy_as_scipy_rk45(linear, rtol):
    """scipy's RK45 is Dormand–Prince with the same controller and starting step: one sample
    takes the very same number of steps and drift evaluations."""
    a, at, y0 = linear
    stats = SolveStats()
    ours = odeint_dopri5(lambda t, y: y @ at.T, y0[:1], [0.0, 2.0], rtol=rtol,
                         atol=rtol * 1e-3, stats=stats)[-1, 0].numpy()
    ref = solve_ivp(lambda t, y: a @ y, (0.0, 2.0), y0[0].numpy(), method="RK45", rtol=rtol,
                    atol=rtol * 1e-3)
    assert stats.accepted == len(ref.t) - 1 and stats.nfe == ref.nfev
    exact = _exact(a, y0[:1], 2.0)[0]
    np.testing.assert_allclose(ours, ref.y[:, -1], rtol=0, atol=1e-3 * rtol)
    assert np.abs(ours - exact).max() < 10 * rtol


def test_nonlinear_problem_matches_scipy_at_the_output_times():
    """Van der Pol (μ = 1), three samples, output on a grid."""
    def vdp(t, y):
        return torch.stack([y[..., 1], (1 - y[..., 0] ** 2) * y[..., 1] - y[..., 0]], -1)

    y0 = torch.tensor([[2.0, 0.0], [0.5, -1.0], [-1.0, 1.0]], dtype=DTYPE)
    ts = [0.0, 1.0, 2.5, 4.0]
    ours = odeint_dopri5(vdp, y0, ts, rtol=1e-10, atol=1e-12)
    for i in range(3):
        ref = solve_ivp(lambda t, y: vdp(t, torch.tensor(y)).numpy(), (0.0, 4.0),
                        y0[i].numpy(), method="DOP853", t_eval=ts, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(ours[:, i].numpy(), ref.y.T, atol=1e-8)


def test_fixed_step_mode_has_order_five(linear):
    a, at, y0 = linear
    exact = _exact(a, y0, 2.0)
    errs = [np.abs(odeint_dopri5(lambda t, y: y @ at.T, y0, [0.0, 2.0], dt=h)[-1].numpy()
                   - exact).max() for h in (0.2, 0.1, 0.05)]
    slopes = [math.log2(e1 / e2) for e1, e2 in zip(errs, errs[1:])]
    assert all(4.5 < s < 6.5 for s in slopes), slopes


def test_every_sample_meets_the_tolerance(linear):
    """A batch whose samples need different steps: each is as accurate as alone."""
    a, at, y0 = linear
    y0 = torch.cat([y0[:1] * 1e-3, y0[1:2] * 10])
    ours = odeint_dopri5(lambda t, y: y @ at.T, y0, [0.0, 2.0], rtol=1e-6, atol=1e-9)[-1]
    exact = _exact(a, y0, 2.0)
    rel = np.abs(ours.numpy() - exact).max(1) / (1e-9 + 1e-6 * np.abs(exact).max(1))
    assert (rel < 10).all(), rel


def test_gradients_through_the_solver_are_the_flow_jacobian(linear):
    """d y(T) / d y0 = expm(A·T) for a linear ODE."""
    a, at, _ = linear
    y0 = torch.ones(1, 4, dtype=DTYPE, requires_grad=True)
    yT = odeint_dopri5(lambda t, y: y @ at.T, y0, [0.0, 1.0], rtol=1e-10, atol=1e-12)[-1]
    jac = torch.stack([torch.autograd.grad(yT[0, i], y0, retain_graph=True)[0][0]
                       for i in range(4)])
    np.testing.assert_allclose(jac.numpy(), scipy.linalg.expm(a), atol=1e-8)


def test_time_dependent_drift_gets_the_time():
    """y' = cos(t): y(T) = sin(T)."""
    out = odeint_dopri5(lambda t, y: torch.cos(t).expand_as(y), torch.zeros(1, 1, dtype=DTYPE),
                        [0.0, 3.0], rtol=1e-10, atol=1e-12)
    assert abs(float(out[-1]) - math.sin(3.0)) < 1e-9


def test_bad_arguments_and_blow_up_are_reported():
    f = lambda t, y: -y  # noqa: E731
    y0 = torch.ones(1, 1, dtype=DTYPE)
    for kwargs, name in [(dict(rtol=0.0), "rtol"), (dict(atol=-1.0), "atol"),
                         (dict(dt=0.0), "dt"), (dict(max_steps=0), "max_steps")]:
        with pytest.raises(ValueError, match=name):
            odeint_dopri5(f, y0, [0.0, 1.0], **kwargs)
    with pytest.raises(ValueError, match="ts"):
        odeint_dopri5(f, y0, [1.0, 0.0])
    with pytest.raises(RuntimeError, match="max_steps"):
        odeint_dopri5(f, y0, [0.0, 100.0], rtol=1e-12, atol=1e-14, max_steps=5)
    with pytest.raises(nl.DivergenceError):  # y' = y², y(0) = 1 blows up at t = 1
        odeint_dopri5(lambda t, y: y * y, y0, [0.0, 2.0], rtol=1e-6, atol=1e-9)


def test_adaptive_block_on_a_classifier_agrees_with_many_euler_steps():
    """The same weights: Euler converges to the adaptive solve at order 1."""
    torch.manual_seed(0)
    model = nl.SDEClassifier(1, 10, channels=4, steps=16).to(DTYPE).eval()
    x = torch.rand(3, 1, 8, 8, dtype=DTYPE)
    adaptive = AdaptiveBlock(model, rtol=1e-5, atol=1e-7)
    with torch.no_grad():
        ref = adaptive(x)
        errs = []
        for steps in (16, 8):
            model.steps = steps
            errs.append(float((model(x) - ref).abs().max()))
    assert errs[0] < 5e-2 and 1.6 < errs[1] / errs[0] < 2.4, errs
    assert adaptive.stats.accepted > 0 and adaptive.stats.nfe == 6 * (
        adaptive.stats.accepted + adaptive.stats.rejected) + 2
