"""The SDE core against truths that do not depend on it: closed forms, convergence orders,
Poisson statistics and torchsde on the same Brownian increments."""
import math

import numpy as np
import pytest
import torch
import torchsde

import nsde_lib as nl

pytestmark = pytest.mark.usefixtures("float64")  # numbers compared in float64


class Linear:
    """dy = lam·y dt + sigma·y dB (geometric Brownian motion; an ODE when sigma = 0)."""

    def __init__(self, lam, sigma=0.0):
        self.lam, self.sigma = lam, sigma

    def f(self, t, y):
        return self.lam * y

    def g(self, t, y):
        return self.sigma * y


# --- explicit Euler -------------------------------------------------------------------------

@pytest.mark.parametrize("lam,dt,n", [(-2.3, 0.1, 10), (-2.3, 0.5, 8), (0.7, 0.05, 40)])
def test_euler_on_linear_ode_is_the_power_formula(lam, dt, n):
    y0 = torch.tensor([1.0, -0.5])
    out = nl.sdeint(Linear(lam), y0, [0.0, n * dt], dt=dt)
    assert out.shape == (2, 2)
    torch.testing.assert_close(out[-1], y0 * (1 + lam * dt) ** n, rtol=1e-12, atol=0)


def test_euler_on_minus_2_3x_oscillates_and_diverges_past_2_over_2_3():
    """Paper 003, Fig. 1: stable iff |1 + λ·dt| < 1, i.e. dt < 2/2.3 ≈ 0.87."""
    path = lambda dt: nl.sdeint(Linear(-2.3), torch.ones(1), torch.arange(31) * dt, dt=dt)[:, 0]
    unstable = path(0.9)   # 1 − 2.07 = −1.07
    damped = path(0.8)     # 1 − 1.84 = −0.84: oscillates, decays
    smooth = path(0.2)     # 1 − 0.46 = 0.54: monotone
    signs = torch.sign(unstable[1:6])
    assert torch.equal(signs, torch.tensor([-1.0, 1.0, -1.0, 1.0, -1.0]))
    assert unstable[-1].abs() > 5 and damped[-1].abs() < 1e-2
    assert (smooth > 0).all() and (smooth.diff() < 0).all()


def test_output_times_off_the_dt_grid_are_landed_on_exactly():
    lam, ts, dt = -1.3, [0.0, 0.25, 0.7, 1.0], 0.1
    out = nl.sdeint(Linear(lam), torch.ones(1), ts, dt=dt)[:, 0]
    expected, y = [1.0], 1.0
    for a, b, n in zip(ts, ts[1:], [3, 5, 3]):  # the fewest equal steps of at most dt
        y *= (1 + lam * (b - a) / n) ** n
        expected.append(y)
    torch.testing.assert_close(out, torch.tensor(expected), rtol=1e-12, atol=0)
    grid, index = nl.time_grid(ts, dt)
    assert [grid[i] for i in index] == ts and len(grid) == 1 + 3 + 5 + 3
    assert max(b - a for a, b in zip(grid, grid[1:])) <= dt + 1e-15


def test_on_grid_output_times_use_steps_of_exactly_dt():
    grid, index = nl.time_grid([0.0, 0.5, 1.0], 0.125)
    assert index == [0, 4, 8]
    np.testing.assert_allclose(np.diff(grid), 0.125, rtol=0, atol=1e-15)


def test_float32_output_times_on_the_grid_take_one_step_each():
    """torch.linspace in float32 misses the dt grid by an ulp; that must not add steps."""
    for ts, dt in ((torch.linspace(0, 4, 201, dtype=torch.float32), 0.02),
                   (torch.arange(0, 1001, dtype=torch.float32) * 0.1, 0.1)):
        grid, index = nl.time_grid(ts, dt)
        assert len(grid) == len(ts) and index == list(range(len(ts)))
    grid, _ = nl.time_grid([0.0, 0.5], 0.1001)  # off the grid by more than rounding: 5 steps
    assert len(grid) == 6


def test_gradient_through_the_solver_matches_the_closed_form():
    lam = torch.tensor(-0.8, requires_grad=True)
    n, dt = 12, 0.1
    sde = Linear(lam)
    y_T = nl.sdeint(sde, torch.ones(1), [0.0, n * dt], dt=dt)[-1, 0]
    (grad,) = torch.autograd.grad(y_T, lam)
    expected = n * dt * (1 + lam.detach() * dt) ** (n - 1)
    torch.testing.assert_close(grad, expected, rtol=1e-12, atol=0)


# --- geometric Brownian motion ----------------------------------------------------------------

def _gbm_errors(method, mu=2.0, sigma=1.0, n_paths=4000, levels=range(3, 8), seed=0):
    """Mean |X_T − exact| for dt = 2^-k on one fine Brownian path per sample."""
    gen = torch.Generator().manual_seed(seed)
    fine = 2 ** max(levels)
    dw_fine = torch.randn(fine, n_paths, generator=gen) / math.sqrt(fine)
    exact = torch.exp((mu - sigma ** 2 / 2) + sigma * dw_fine.sum(0))
    dts, errors = [], []
    for k in levels:
        bm = dw_fine.view(2 ** k, fine // 2 ** k, n_paths).sum(1)  # coarse increments
        x = nl.sdeint(Linear(mu, sigma), torch.ones(n_paths), [0.0, 1.0], dt=2.0 ** -k,
                      method=method, bm=bm)[-1]
        dts.append(2.0 ** -k)
        errors.append(float((x - exact).abs().mean()))
    return np.array(dts), np.array(errors)


@pytest.mark.parametrize("method,order", [("euler", 0.5), ("milstein", 1.0)])
def test_strong_order_on_geometric_brownian_motion(method, order):
    dts, errors = _gbm_errors(method)
    slope = np.polyfit(np.log(dts), np.log(errors), 1)[0]
    assert abs(slope - order) < 0.15, f"{method}: fitted strong order {slope:.2f}"


def test_milstein_closed_form_equals_the_autograd_path():
    """The multiplicative preset's g·∂g/∂y = σ²y must match what autograd finds for Linear."""
    dw = 0.2 * torch.randn(40, 6, generator=torch.Generator().manual_seed(4))
    y0 = torch.linspace(0.5, 2.0, 6)
    preset = nl.make_sde(lambda t, y: 1.5 * y, "multiplicative", sigma=0.8)
    assert preset.g_dg(0.0, y0) is not None
    a = nl.sdeint(preset, y0, [0.0, 2.0], dt=0.05, method="milstein", bm=dw)
    b = nl.sdeint(Linear(1.5, 0.8), y0, [0.0, 2.0], dt=0.05, method="milstein", bm=dw)
    torch.testing.assert_close(a, b, rtol=1e-12, atol=0)


def test_milstein_is_more_accurate_than_euler_on_the_same_path():
    _, e_euler = _gbm_errors("euler")
    _, e_mil = _gbm_errors("milstein")
    assert (e_mil < e_euler).all()


def test_gbm_mean_matches_x0_exp_mu_T():
    mu, sigma, n = 0.5, 0.5, 40000
    gen = torch.Generator().manual_seed(1)
    x = nl.sdeint(Linear(mu, sigma), torch.ones(n), [0.0, 1.0], dt=1 / 256, generator=gen)[-1]
    se = float(x.std()) / math.sqrt(n)
    assert abs(float(x.mean()) - math.exp(mu)) < 4 * se
    assert se < 0.006  # the check is tight enough to catch a wrong drift


# --- torchsde as an independent implementation ----------------------------------------------

class ConvSDE(torch.nn.Module):
    """A conv drift and a state-dependent diagonal diffusion on (B, C, H, W) states."""

    noise_type, sde_type = "diagonal", "ito"

    def __init__(self, shape=None):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)
        self.shape = shape  # set: the state arrives flattened (torchsde) and is reshaped

    def _img(self, y):
        return y if self.shape is None else y.view(-1, *self.shape)

    def _out(self, v, y):
        return v.reshape(y.shape)

    def f(self, t, y):
        return self._out(torch.tanh(self.conv(self._img(y))) * (1 + t), y)

    def g(self, t, y):
        return 0.3 * torch.sin(y) + 0.1


@pytest.mark.parametrize("method", ["euler", "milstein"])
def test_same_increments_same_answer_as_torchsde(method):
    B, shape = 4, (3, 5, 5)
    y0 = torch.randn(B, *shape, generator=torch.Generator().manual_seed(2))
    ts, dt = torch.tensor([0.0, 0.3, 0.6]), 0.05
    grid, _ = nl.time_grid(ts, dt)
    dw = torch.randn(len(grid) - 1, B, *shape, generator=torch.Generator().manual_seed(3))
    dw = dw * math.sqrt(dt)
    bm = nl.TabulatedBrownian(grid, dw.view(len(grid) - 1, B, -1))

    ours = nl.sdeint(ConvSDE(), y0, ts, dt=dt, method=method, bm=dw)
    theirs = torchsde.sdeint(ConvSDE(shape), y0.view(B, -1), ts, bm=bm, dt=dt, method=method)
    assert ours.shape == (3, B, *shape)
    torch.testing.assert_close(ours.view(3, B, -1), theirs, rtol=1e-10, atol=1e-12)


class TrainableSDE(torch.nn.Module):
    """Diagonal noise whose drift and diffusion both carry parameters, and whose diffusion
    depends on the state (so Milstein's correction g·∂g/∂y is not zero)."""

    noise_type, sde_type = "diagonal", "ito"

    def __init__(self, d=3):
        super().__init__()
        gen = torch.Generator().manual_seed(4)
        self.W = torch.nn.Parameter(0.5 * torch.randn(d, d, generator=gen, dtype=torch.float64))
        self.b = torch.nn.Parameter(0.1 * torch.randn(d, generator=gen, dtype=torch.float64))
        self.a = torch.nn.Parameter(torch.full((d,), 0.4, dtype=torch.float64))
        self.c = torch.nn.Parameter(torch.linspace(0.5, 1.5, d, dtype=torch.float64))

    def f(self, t, y):
        return torch.tanh(y @ self.W.T + self.b)

    def g(self, t, y):
        return self.a * torch.sin(self.c * y) + 0.2


@pytest.mark.parametrize("method", ["euler", "milstein"])
@pytest.mark.parametrize("y0_grad", [False, True])
def test_gradients_match_torchsde_on_shared_increments(method, y0_grad):
    """d(loss)/d(drift, diffusion, y0) through both solvers on the same increments.

    Reproduces a bug: with y0 off the graph, the first Milstein correction was cut off it, and
    the diffusion's gradients differed from torchsde's by 5-31 % while the values agreed.
    """
    B, d, dt = 4, 3, 0.05
    ts = torch.tensor([0.0, 0.5, 1.0])
    grid, _ = nl.time_grid(ts, dt)
    dw = nl.brownian_increments(grid, (B, d), generator=torch.Generator().manual_seed(6))
    grads = []
    for solve in ("ours", "torchsde"):
        sde = TrainableSDE(d)
        y0 = torch.randn(B, d, generator=torch.Generator().manual_seed(7),
                         dtype=torch.float64).requires_grad_(y0_grad)
        if solve == "ours":
            ys = nl.sdeint(sde, y0, ts, dt=dt, method=method, bm=dw)
        else:
            ys = torchsde.sdeint(sde, y0, ts, bm=nl.TabulatedBrownian(grid, dw), dt=dt,
                                 method=method)
        loss = (ys[1:] ** 2).sum() + ys[-1].sum()
        inputs = list(sde.parameters()) + ([y0] if y0_grad else [])
        grads.append(torch.autograd.grad(loss, inputs))
    for name, ours, theirs in zip(["W", "b", "a", "c", "y0"], *grads):
        torch.testing.assert_close(ours, theirs, rtol=1e-8, atol=1e-10, msg=f"d loss / d {name}")


def test_brownian_interval_queries_agree_up_to_time_rounding():
    """Why TabulatedBrownian exists: torchsde's own path, queried on our grid, is the same
    path up to the ~1e-8 that its accumulated step times cost."""
    B = 3
    bm = torchsde.BrownianInterval(0.0, 1.0, size=(B, 4), dtype=torch.float64, entropy=9)
    grid = nl.time_grid([0.0, 1.0], 0.1)[0]
    dw = torch.stack([bm(a, b) for a, b in zip(grid, grid[1:])])
    sde = nl.make_sde(lambda t, y: -y, "multiplicative", sigma=0.5)
    y0 = torch.ones(B, 4)
    ours = nl.sdeint(sde, y0, [0.0, 1.0], dt=0.1, bm=dw)
    theirs = torchsde.sdeint(sde, y0, torch.tensor([0.0, 1.0]), bm=bm, dt=0.1, method="euler")
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-7)


def test_neural_sde_presets_run_under_torchsde_too():
    drift = lambda t, y: -y  # noqa: E731
    for noise in ("none", "additive", "multiplicative", "dropout"):
        sde = nl.make_sde(drift, noise, sigma=0.5, p=0.3)
        y0 = torch.ones(2, 3)
        dw = 0.3 * torch.randn(10, 2, 3, generator=torch.Generator().manual_seed(5))
        bm = nl.TabulatedBrownian(nl.time_grid([0.0, 1.0], 0.1)[0], dw)
        ours = nl.sdeint(sde, y0, [0.0, 1.0], dt=0.1, bm=dw)
        theirs = torchsde.sdeint(sde, y0, torch.tensor([0.0, 1.0]), bm=bm, dt=0.1,
                                 method="euler")
        torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)


def test_shared_brownian_path_gives_identical_runs():
    sde = nl.make_sde(lambda t, y: torch.sin(y), "multiplicative", sigma=1.0)
    y0 = torch.randn(8, 2)
    dw = torch.randn(20, 8, 2) * 0.1
    a = nl.sdeint(sde, y0, [0.0, 2.0], dt=0.1, bm=dw)
    b = nl.sdeint(sde, y0.clone(), [0.0, 2.0], dt=0.1, bm=dw)
    assert torch.equal(a, b)
    c = nl.sdeint(sde, y0, [0.0, 2.0], dt=0.1, bm=torch.randn(20, 8, 2) * 0.1)
    assert not torch.equal(a, c)


def test_generator_makes_runs_reproducible():
    sde = Linear(0.1, 0.5)
    run = lambda s: nl.sdeint(sde, torch.ones(5), [0, 1], dt=0.1,  # noqa: E731
                              generator=torch.Generator().manual_seed(s))
    assert torch.equal(run(7), run(7)) and not torch.equal(run(7), run(8))


# --- jumps --------------------------------------------------------------------------------------

class PureJump:
    """dy = 1 ⊙ Z dN: the state counts signed events."""

    def __init__(self, law):
        self.jump = law

    def f(self, t, y):
        return torch.zeros_like(y)

    def j(self, t, y):
        return torch.ones_like(y)


def _jump_run(law, n=20000, T=2.0, dt=0.5, shape=(1,), seed=0):
    y0 = torch.zeros(n, *shape)
    gen = torch.Generator().manual_seed(seed)
    return nl.sdeint(PureJump(law), y0, [0.0, T], dt=dt, generator=gen)[-1]


def test_jump_counts_are_poisson_in_law():
    """N_T ~ Poisson(λT): mean and variance λT, even with several events per step."""
    rate, T = 3.0, 2.0
    counts = _jump_run(nl.PoissonJump(rate, p=0.0), T=T, dt=0.5)[:, 0]  # λ·dt = 1.5
    assert abs(float(counts.mean()) - rate * T) < 0.1
    assert abs(float(counts.var()) - rate * T) < 0.35
    # more than one event in a step happens: P(N_step >= 2) = 1 − e^{-1.5}(1 + 1.5) ≈ 0.44
    assert float(counts.max()) > 4 * 1  # 4 steps, "at most one" per step could not pass 4
    values, freq = torch.unique(counts, return_counts=True)
    pmf = {int(v): int(c) / len(counts) for v, c in zip(values, freq)}
    for k in range(3, 10):
        assert abs(pmf.get(k, 0) - math.exp(-6) * 6 ** k / math.factorial(k)) < 0.012


def test_jump_signs_follow_p():
    rate, T, p = 3.0, 2.0, 0.25
    y = _jump_run(nl.PoissonJump(rate, p=p), T=T)[:, 0]
    assert abs(float(y.mean()) - rate * T * (1 - 2 * p)) < 0.1
    assert abs(float(y.var()) - rate * T) < 0.35  # Var of compound Poisson: λT·E[Z²]


def test_per_element_and_per_sample_jumps():
    per_elem = _jump_run(nl.PoissonJump(2.0, p=0.5), n=200, shape=(6,))
    per_sample = _jump_run(nl.PoissonJump(2.0, p=0.5, per_sample=True), n=200, shape=(6,))
    assert (per_sample == per_sample[:, :1]).all()
    assert not (per_elem == per_elem[:, :1]).all()


def test_dropout_rewrite_has_the_discrete_blocks_mean():
    """Eq. (4): y + f ⊙ γ and y + ½f + ½f ⊙ Z agree in law; both have mean y + (1 − p)·f."""
    p, n = 0.3, 200000
    y = torch.zeros(n, 1)
    fy = torch.full((n, 1), 2.0)
    gen = torch.Generator().manual_seed(0)
    block = nl.dropout_block(y, fy, p, generator=gen)
    rewrite = nl.jump_rewrite_block(y, fy, p, generator=gen)
    for out in (block, rewrite):
        assert set(out.unique().tolist()) == {0.0, 2.0}
        assert abs(float(out.mean()) - (1 - p) * 2.0) < 0.01  # 4.5 standard errors


def test_jump_dropout_sde_has_the_dropout_mean_per_unit_time():
    """With one event per unit time, ½f dt + ½f ⊙ Z dN has mean (1 − p)·f per unit time."""
    p, n = 0.3, 100000
    sde = nl.make_sde(lambda t, y: torch.full_like(y, 2.0), "jump-dropout", p=p, rate=1.0)
    gen = torch.Generator().manual_seed(1)
    y = nl.sdeint(sde, torch.zeros(n, 1), [0.0, 1.0], dt=0.25, generator=gen)[-1]
    assert abs(float(y.mean()) - (1 - p) * 2.0) < 0.015
    sde.noise_on = False  # noise off: the jump's mean joins the drift
    y_mean = nl.sdeint(sde, torch.zeros(1, 1), [0.0, 1.0], dt=0.25)[-1]
    torch.testing.assert_close(y_mean, torch.full((1, 1), (1 - p) * 2.0))


def test_noise_presets_have_the_papers_coefficients():
    y = torch.tensor([[2.0, -1.0]])
    fy = torch.tensor([[0.5, 3.0]])
    torch.testing.assert_close(nl.Additive(0.3)(0.0, y, fy), torch.full_like(y, 0.3))
    torch.testing.assert_close(nl.Multiplicative(0.3)(0.0, y, fy), 0.3 * y)
    torch.testing.assert_close(nl.GaussianDropout(0.2)(0.0, y, fy), math.sqrt(0.2 / 0.8) * fy)


def test_poisson_event_helpers():
    events = nl.poisson_events(4.0, 2.0, 5000, generator=torch.Generator().manual_seed(3))
    counts = torch.tensor([len(e) for e in events], dtype=torch.float64)
    assert abs(float(counts.mean()) - 8.0) < 0.25 and abs(float(counts.var()) - 8.0) < 1.0
    assert all((e.diff() >= 0).all() and (e >= 0).all() and (e <= 2.0).all() for e in events)
    n_t = nl.counting_paths(events, torch.tensor([0.0, 1.0, 2.0]))
    assert n_t.shape == (3, 5000) and (n_t[0] == 0).all() and torch.equal(n_t[-1], counts.long())


# --- divergence and bad input -------------------------------------------------------------------

def test_divergence_is_reported_with_time_and_step():
    cubic = type("Cubic", (), {"f": lambda self, t, y: y ** 3})()
    y, step, dt = np.float64(3.0), 0, 0.25
    with np.errstate(over="ignore", invalid="ignore"):
        while np.isfinite(y):  # the same arithmetic by hand: where does it overflow?
            y, step = y + dt * y ** 3, step + 1
    with pytest.raises(nl.DivergenceError) as err:
        nl.sdeint(cubic, torch.tensor([3.0]), [0.0, 10.0], dt=dt)
    assert err.value.step == step and err.value.t == pytest.approx(step * dt)
    assert f"step {step}" in str(err.value)


def _sde():
    return nl.make_sde(lambda t, y: -y, "additive", sigma=0.1)


@pytest.mark.parametrize("kwargs,match", [
    (dict(dt=0.0), "dt"), (dict(dt=-0.1), "dt"), (dict(dt=float("nan")), "dt"),
    (dict(ts=[0.0, 1.0, 1.0]), "ts"), (dict(ts=[1.0, 0.0]), "ts"), (dict(ts=[]), "ts"),
    (dict(method="rk4"), "method"),
    (dict(y0=torch.tensor([[float("nan"), 0.0]])), "y0"),
    (dict(y0=torch.tensor([[float("inf"), 0.0]])), "y0"),
    (dict(bm=torch.zeros(3, 1, 2)), "bm"),
    (dict(dt=True), "dt"), (dict(dt="0.1"), "dt"), (dict(dt=torch.full((2,), 0.1)), "dt"),
    (dict(ts=1.0), "ts"),
])
def test_bad_input_is_a_clear_value_error(kwargs, match):
    args = dict(sde=_sde(), y0=torch.zeros(1, 2), ts=[0.0, 1.0], dt=0.1) | kwargs
    with pytest.raises(ValueError, match=match):
        nl.sdeint(args.pop("sde"), args.pop("y0"), args.pop("ts"), **args)


@pytest.mark.parametrize("make,match", [
    (lambda: nl.make_sde(lambda t, y: y, "additive", sigma=-1.0), "sigma"),
    (lambda: nl.make_sde(lambda t, y: y, "multiplicative", sigma=-0.1), "sigma"),
    (lambda: nl.make_sde(lambda t, y: y, "dropout", p=1.0), "p"),
    (lambda: nl.make_sde(lambda t, y: y, "dropout", p=-0.1), "p"),
    (lambda: nl.make_sde(lambda t, y: y, "jump-dropout", p=0.2, rate=-1.0), "rate"),
    (lambda: nl.make_sde(lambda t, y: y, "brownian"), "noise"),
    (lambda: nl.PoissonJump(-2.0), "rate"),
    (lambda: nl.make_sde(lambda t, y: y, "additive", sigma=True), "sigma"),
    (lambda: nl.make_sde(lambda t, y: y, "dropout", p=np.float32(1.0)), "p"),
])
def test_bad_noise_parameters_are_clear_value_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_numpy_and_0d_tensor_numbers_are_numbers():
    """dt, σ and p as NumPy scalars or 0-d tensors give exactly the float answer."""
    ts, y0 = [0.0, 1.0], torch.ones(4, 2)
    bm = torch.randn(4, 4, 2) * 0.5
    expected = nl.sdeint(nl.make_sde(lambda t, y: -y, "multiplicative", sigma=0.5), y0, ts,
                         dt=0.25, bm=bm)
    for number in (np.float32, np.float64, torch.tensor):
        sde = nl.make_sde(lambda t, y: -y, "multiplicative", sigma=number(0.5))
        got = nl.sdeint(sde, y0, ts, dt=number(0.25), bm=bm)
        torch.testing.assert_close(got, expected, rtol=0, atol=0)
    assert nl.make_sde(lambda t, y: y, "dropout", p=np.float64(0.2)).diffusion.p == 0.2


def test_scalar_state_with_jumps():
    """A 0-d state counts its events too: N_T ~ Poisson(λT) in mean and variance."""
    rate, T = 3.0, 2.0
    ends = [nl.sdeint(PureJump(nl.PoissonJump(rate, p=0.0)), torch.tensor(0.0), [0.0, T], dt=0.5,
                      generator=torch.Generator().manual_seed(seed))[-1] for seed in range(2000)]
    counts = torch.stack(ends)
    assert counts.shape == (2000,)
    assert abs(float(counts.mean()) - rate * T) < 0.25  # 4.5 standard errors
    assert abs(float(counts.var()) - rate * T) < 1.0


def test_stochastic_depth_sde_keeps_or_drops_the_whole_residual():
    """Eq. (5) as a jump: every coordinate of a sample jumps together, by ±½f per event, and
    the mean change per unit time (one event per unit time) is (1 − p)·f, as stochastic depth."""
    p, n = 0.3, 50000
    f = torch.tensor([2.0, -1.0, 0.5])
    sde = nl.make_sde(lambda t, y: f.expand_as(y), "stochastic-depth", p=p, rate=1.0)
    gen = torch.Generator().manual_seed(2)
    y = nl.sdeint(sde, torch.zeros(n, 3), [0.0, 1.0], dt=0.25, generator=gen)[-1]
    # One sign per sample and event: the state is always (½ + k/2)·f for the sample's net sign sum k.
    ratio = y / f
    torch.testing.assert_close(ratio, ratio[:, :1].expand_as(ratio))
    torch.testing.assert_close(y.mean(0), (1 - p) * f, atol=0.02, rtol=0)  # ≥ 4 standard errors
    per_element = nl.make_sde(lambda t, y: f.expand_as(y), "jump-dropout", p=p, rate=1.0)
    y_el = nl.sdeint(per_element, torch.zeros(n, 3), [0.0, 1.0], dt=0.25, generator=gen)[-1]
    assert not torch.equal(y_el / f, (y_el / f)[:, :1].expand_as(y_el))


def test_terms_of_the_wrong_shape_are_named():
    wrong_f = type("F", (), {"f": lambda s, t, y: y[:, :1], "g": lambda s, t, y: y})()
    wrong_g = type("G", (), {"f": lambda s, t, y: y, "g": lambda s, t, y: y.sum(1)})()
    with pytest.raises(ValueError, match="drift"):
        nl.sdeint(wrong_f, torch.zeros(2, 3), [0.0, 1.0], dt=0.5)
    with pytest.raises(ValueError, match="diffusion"):
        nl.sdeint(wrong_g, torch.zeros(2, 3), [0.0, 1.0], dt=0.5)
