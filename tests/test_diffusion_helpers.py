"""Helpers of chapter 03: convergence on GBM, jump moments, the 2-D flow, band/histogram figures."""
import math

import numpy as np
import pytest
import torch
import torchsde

import nsde_lib as nl
from nsde_lib import GBM, fit_order, gbm_errors, gbm_exact, gbm_mean_euler
from nsde_lib import Flow2D
from nsde_lib import (band_figure, binned, histogram_figure, poisson_figure, set_bands,
                               set_histograms, set_poisson)


# --- convergence --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def errors():
    return gbm_errors(2.0 ** -np.arange(3, 8), n_paths=6000, chunk_size=2500,
                      generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("method,strong,weak", [("euler", 0.5, 1.0), ("milstein", 1.0, 1.0)])
def test_measured_orders_match_theory(errors, method, strong, weak):
    assert abs(fit_order(errors["dt"], errors[method]["strong"]) - strong) < 0.12
    assert abs(fit_order(errors["dt"], errors[method]["weak"]) - weak) < 0.2


def test_weak_error_matches_the_closed_form_mean_of_euler(errors):
    """E[X^dt_T] = x0(1 + μ dt)^{T/dt} for both methods; the estimate sits within 4 s.e."""
    for method in ("euler", "milstein"):
        for dt, err, se in zip(errors["dt"], errors[method]["weak"], errors[method]["weak_se"]):
            exact_bias = abs(gbm_mean_euler(1.0, 1.0, 1.0, dt) - math.e)
            assert abs(err - exact_bias) < 4 * se + 1e-12


def test_gbm_exact_and_its_sde_agree_with_torchsde_on_a_fine_grid():
    """The closed form against an independent solver (torchsde, Milstein, dt = 2^-10)."""
    n, dt = 64, 2.0 ** -10
    grid = nl.time_grid([0.0, 1.0], dt)[0]
    dw = torch.randn(len(grid) - 1, n, 1, generator=torch.Generator().manual_seed(1),
                     dtype=torch.float64) * math.sqrt(dt)
    bm = nl.TabulatedBrownian(grid, dw)
    x = torchsde.sdeint(GBM(1.0, 1.0), torch.ones(n, 1, dtype=torch.float64),
                        torch.tensor([0.0, 1.0], dtype=torch.float64), bm=bm, dt=dt,
                        method="milstein")[-1]
    torch.testing.assert_close(x, gbm_exact(1.0, 1.0, 1.0, 1.0, dw.sum(0)), rtol=2e-2, atol=0)


@pytest.mark.parametrize("dts", [[0.3, 0.1], [0.5, 0.2]])
def test_non_dyadic_steps_are_refused(dts):
    with pytest.raises(ValueError, match="dt"):
        gbm_errors(dts, n_paths=10)


def test_fit_order_recovers_a_power_law():
    dts = 2.0 ** -np.arange(1, 6)
    assert fit_order(dts, 3 * dts ** 1.5) == pytest.approx(1.5)
    with pytest.raises(ValueError):
        fit_order(dts, -dts)


# --- jump moments -------------------------------------------------------------------------------

@pytest.mark.parametrize("p", [0.0, 0.3, 0.5])
def test_jump_dropout_moments_against_simulation_and_the_block(p):
    """Same mean as the dropout block, variance λ·(f/2)² whatever p (Wald's identities)."""
    fy, n = 2.0, 200000
    sde = nl.make_sde(lambda t, y: torch.full_like(y, fy), "jump-dropout", p=p, rate=1.0)
    y = nl.sdeint(sde, torch.zeros(n, 1, dtype=torch.float64), [0.0, 1.0], dt=0.25,
                  generator=torch.Generator().manual_seed(2))[-1, :, 0]
    jump_mean, jump_var = nl.compound_poisson_moments(1.0, 1.0, fy / 2, p)
    block_mean, block_var = nl.dropout_block_moments(fy, p)
    assert abs(float(y.mean()) - (fy / 2 + jump_mean)) < 0.01
    assert abs(float(y.var()) - jump_var) < 0.02
    assert fy / 2 + jump_mean == pytest.approx(block_mean)
    assert block_var == pytest.approx(p * (1 - p) * fy ** 2)


# --- the 2-D flow -------------------------------------------------------------------------------

def test_flow2d_shapes_noise_switch_and_validation():
    torch.manual_seed(0)
    model = Flow2D(width=8, T=1.0, dt=0.25)
    x = torch.randn(5, 2)
    assert model(x).shape == (5, 2)
    assert model.trajectories(x).shape == (5, 5, 2)
    model.set_noise("multiplicative", sigma=0.5)
    a = model.trajectories(x, generator=torch.Generator().manual_seed(1))
    b = model.trajectories(x, generator=torch.Generator().manual_seed(2))
    assert not torch.equal(a, b) and torch.equal(a[0], x)
    for bad, match in [(dict(noise="brownian"), "noise"), (dict(noise="additive", sigma=-1.0), "sigma")]:
        with pytest.raises(ValueError, match=match):
            model.set_noise(**bad)
    with pytest.raises(ValueError, match="T"):
        Flow2D(T=0.0)


def test_flow2d_lipschitz_bound_ignores_time_and_bounds_the_jacobian():
    torch.manual_seed(1)
    drift = Flow2D(width=16).drift.double()
    weights = [layer.linear.weight.detach() for layer in drift.layers]
    expected = math.prod(float(torch.linalg.matrix_norm(w, 2)) for w in weights)
    assert nl.lipschitz_bound(drift) == pytest.approx(expected, rel=1e-6)
    with torch.no_grad():
        for layer in drift.layers:
            layer.time.normal_()
    y = 3 * torch.randn(400, 2, dtype=torch.float64)
    for t in (0.0, 2.0):
        local = nl.local_lipschitz(lambda v: drift(torch.tensor(t), v), y)
        assert float(local.max()) <= expected * (1 + 1e-6)


def test_flow2d_runs_the_same_under_torchsde():
    torch.manual_seed(2)
    model = Flow2D(width=8, dt=0.1).double().set_noise("multiplicative", sigma=0.7)
    x = torch.randn(6, 2, dtype=torch.float64)
    grid = nl.time_grid([0.0, 1.0], 0.1)[0]
    dw = torch.randn(10, 6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3)) * 0.1 ** 0.5
    ours = model.trajectories(x, [0.0, 1.0], bm=dw)
    theirs = torchsde.sdeint(model.sde, x, torch.tensor([0.0, 1.0], dtype=torch.float64),
                             bm=nl.TabulatedBrownian(grid, dw), dt=0.1, method="euler")
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)


# --- figures ------------------------------------------------------------------------------------

def test_band_figure_draws_quantiles_and_updates_in_place():
    rng = np.random.default_rng(0)
    ts = np.linspace(0, 1, 5)
    paths = rng.normal(size=(5, 101))
    fig = band_figure(ts, {"a": paths, "b": 2 * paths}, quantiles=(0.1, 0.9))
    assert len(fig.data) == 6
    np.testing.assert_allclose(fig.data[0].y, np.quantile(paths, 0.1, axis=1))
    np.testing.assert_allclose(fig.data[2].y, np.median(paths, axis=1))
    np.testing.assert_allclose(fig.data[4].y, np.quantile(2 * paths, 0.9, axis=1))
    first = fig.data[0]
    set_bands(fig, ts, {"a": paths + 1, "b": paths})
    assert fig.data[0] is first and len(fig.data) == 6  # same traces, new data
    np.testing.assert_allclose(fig.data[2].y, np.median(paths, axis=1) + 1)
    with pytest.raises(ValueError, match="quantiles"):
        band_figure(ts, {"a": paths}, quantiles=(0.6, 0.9))


def test_binned_histograms_match_numpy_and_update_in_place():
    rng = np.random.default_rng(1)
    values = rng.normal(size=5000)
    bins = dict(start=-4.0, end=4.0, size=0.5)
    centers, density = binned(values, bins)
    counts, edges = np.histogram(values, np.arange(-4.0, 4.01, 0.5))
    np.testing.assert_allclose(centers, (edges[:-1] + edges[1:]) / 2)
    np.testing.assert_allclose(density, counts / 5000 / 0.5)
    assert binned(values, bins, "probability")[1].sum() == pytest.approx(counts.sum() / 5000)
    fig = histogram_figure({"x": values}, bins=bins, curves={"pdf": ([0, 1], [1, 1])})
    bar = fig.data[0]
    set_histograms(fig, {"x": values + 1.0}, curves={"pdf": ([0, 1], [2, 2])})
    assert fig.data[0] is bar and list(fig.data[1].y) == [2, 2]
    np.testing.assert_allclose(fig.data[0].y, binned(values + 1.0, bins)[1])
    with pytest.raises(ValueError, match="histnorm"):
        binned(values, bins, "percent")


def test_poisson_figure_updates_in_place():

    events = nl.poisson_events(2.0, 3.0, 50, generator=torch.Generator().manual_seed(4))
    fig = poisson_figure(events, 3.0, 2.0, n_show=2)
    steps = [y for y in fig.data[0].y if y is not None]
    assert max(steps) == max(len(events[0]), len(events[1]))
    assert sorted(fig.data[2].x) == sorted(len(e) for e in events)
    pmf = np.asarray(fig.data[3].y)
    assert pmf.sum() == pytest.approx(1, abs=1e-6) and pmf[6] == pytest.approx(
        math.exp(-6) * 6 ** 6 / math.factorial(6))
    more = nl.poisson_events(5.0, 3.0, 50, generator=torch.Generator().manual_seed(4))
    set_poisson(fig, more, 3.0, 5.0, n_show=2)
    assert sorted(fig.data[2].x) == sorted(len(e) for e in more)



def test_noise_flow_draws_the_chosen_end_points_by_class_and_the_shown_paths():
    g = np.random.default_rng(5)
    paths, labels = g.normal(size=(4, 10, 2)), np.arange(10) % 3 % 2     # classes 0,1,0,0,1,0,…
    fig = nl.noise_flow_figure(torch.nn.Linear(2, 2))
    nl.set_noise_flow(fig, np.arange(4), paths, labels, np.array([0, 1]), "t", ends=slice(None, None, 2))
    for c in (0, 1):
        keep = [i for i in range(0, 10, 2) if labels[i] == c]
        np.testing.assert_array_equal(fig.data[2 + c].x, paths[-1, keep, 0])
        np.testing.assert_array_equal(fig.data[2 + c].y, paths[-1, keep, 1])
        path = np.asarray(fig.data[c].y, dtype=float)                    # one path, then a gap
        np.testing.assert_array_equal(path[:4], paths[:, c, 1])
    nl.set_noise_flow(fig, np.arange(4), paths, labels, np.array([0, 1]), "t")
    assert len(fig.data[2].x) + len(fig.data[3].x) == 10


def test_extent_holds_every_finite_value_with_its_margin_and_fixes_the_flow_axes():
    values = np.array([[-1.0, np.nan], [3.0, 0.5]])
    assert nl.extent(values, pad=0.25) == [-2.0, 4.0]
    assert nl.extent([2.0]) == pytest.approx([1.9, 2.1])                  # one value: a margin still
    with pytest.raises(ValueError, match="values"):
        nl.extent([np.nan])
    fig = nl.flow_figure(("a", "b"), ranges=[([-1, 1], [-2, 2]), ([0, 5], [3, 4])])
    assert list(fig.layout.xaxis2.range) == [0, 5] and list(fig.layout.yaxis.range) == [-2, 2]
    assert nl.flow_figure(("a",)).layout.xaxis.range is None              # no ranges: autorange
    with pytest.raises(ValueError, match="ranges"):
        nl.flow_figure(("a", "b"), ranges=[([-1, 1], [-2, 2])])
