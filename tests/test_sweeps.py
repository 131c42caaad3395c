"""Sweeps keep diverged runs (counted, placed at chance), reuse cached runs, and plot them."""
import math

import pytest
import torch

import nsde_lib as nl
from nsde_lib import sweep_figure
from nsde_lib import euler_factor, euler_stability_limit
from nsde_lib import History


def fake_history(acc=None, diverged_at=None):
    h = History()
    if diverged_at is not None:
        h.diverged, h.diverged_epoch, h.diverged_step = True, *diverged_at
    else:
        h.epochs.append({"epoch": 1, "test_acc": acc})
    return h


# accuracy of every (depth, h, seed); None marks a run that diverges
TABLE = {(2, 1.0): [0.9, 0.8, 0.85], (8, 1.0): [0.6, None, None],
         (2, 0.1): [0.95, 0.93, 0.94], (8, 0.1): [0.96, 0.97, 0.92]}


def table_run(calls):
    def run(config, seed):
        calls.append((config["depth"], config["h"], seed))
        acc = TABLE[(config["depth"], config["h"])][seed]
        return fake_history(acc) if acc is not None else fake_history(diverged_at=(2, 5)), "model"
    return run


def test_sweep_records_every_run_and_reuses_the_cache():
    calls, cache = [], {}
    configs = [{"depth": d, "h": h} for d in (2, 8) for h in (1.0, 0.1)]
    records = nl.sweep(configs, table_run(calls), seeds=range(3), cache=cache, progress=False)
    assert len(records) == len(calls) == 12
    div = [r for r in records if r["diverged"]]
    assert [(r["depth"], r["h"], r["seed"]) for r in div] == [(8, 1.0, 1), (8, 1.0, 2)]
    assert all(math.isnan(r["acc"]) and r["diverged_epoch"] == 2 and r["diverged_step"] == 5
               for r in div)
    assert records[0]["extra"] == ("model",)
    calls.clear()
    nl.sweep([{"h": 1.0, "depth": 8}], table_run(calls), seeds=[0, 1], cache=cache,
             progress=False)
    assert calls == []  # key order in the config does not matter; nothing is trained twice


def test_summarize_counts_diverged_runs_at_chance():
    records = nl.sweep([{"depth": d, "h": h} for d in (2, 8) for h in (1.0, 0.1)],
                       table_run([]), seeds=range(3), progress=False)
    summary = nl.summarize(records, x="depth", group="h", chance=0.1)
    red, blue = summary[1.0], summary[0.1]
    assert red["x"] == [2, 8] and red["n"] == [3, 3] and red["n_diverged"] == [0, 2]
    assert red["median"] == pytest.approx([0.85, 0.1]) and red["lo"] == pytest.approx([0.8, 0.1])
    assert red["hi"] == pytest.approx([0.9, 0.6]) and red["diverged_x"] == [8, 8]
    assert blue["median"] == pytest.approx([0.94, 0.96]) and blue["n_diverged"] == [0, 0]
    assert red["values"] == [pytest.approx([0.9, 0.8, 0.85]), pytest.approx([0.6])]


def test_sweep_figure_marks_each_diverged_run():
    records = nl.sweep([{"depth": d, "h": h} for d in (2, 8) for h in (1.0, 0.1)],
                       table_run([]), seeds=range(3), progress=False)
    fig = sweep_figure(nl.summarize(records, x="depth", group="h", chance=0.1),
                      x_title="depth", chance=0.1)
    crosses = [t for t in fig.data if t.marker is not None and t.marker.symbol == "x"]
    assert len(crosses) == 1 and list(crosses[0].x) == [8, 8]
    assert list(crosses[0].y) == [0.1, 0.1]
    assert {t.name for t in fig.data if t.mode == "lines+markers"} == {"h = 1.0", "h = 0.1"}
    dots = [t for t in fig.data if t.name == "h = 1.0: one run"]
    assert len(dots) == 1 and list(dots[0].x) == [2, 2, 2, 8]


def test_bad_sweeps_raise():
    with pytest.raises(ValueError, match="hashable"):
        nl.sweep([{"depth": [2]}], table_run([]), seeds=[0], progress=False)
    with pytest.raises(ValueError, match="at least one"):
        nl.sweep([], table_run([]), seeds=[0], progress=False)
    with pytest.raises(ValueError, match="chance"):
        nl.summarize([], x="depth", group="h", chance=2.0)


# --- explicit Euler's stability region (paper 003, Fig. 1) ----------------------------------

class Linear:
    def __init__(self, lam):
        self.lam = lam

    def f(self, t, y):
        return self.lam * y


@pytest.mark.parametrize("lam", [-2.3, -0.5, -10.0])
def test_stability_limit_separates_decay_from_growth_in_the_solver(lam):
    limit = euler_stability_limit(lam)
    assert limit == pytest.approx(2 / abs(lam), rel=1e-15)
    for dt, decays in ((0.97 * limit, True), (1.03 * limit, False)):
        y = nl.sdeint(Linear(lam), torch.ones(1, dtype=torch.float64), [0.0, 400 * dt], dt=dt)
        assert (abs(float(y[-1])) < 1) == decays
        assert float(y[-1]) == pytest.approx(euler_factor(lam, dt) ** 400, rel=1e-9)


def test_complex_eigenvalue_limit_lies_on_the_unit_circle():
    lam = complex(-1.0, 2.0)
    limit = euler_stability_limit(lam)
    assert limit == pytest.approx(0.4)
    assert abs(euler_factor(lam, limit)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="lam"):
        euler_stability_limit(0.5)
    with pytest.raises(ValueError, match="dt"):
        euler_factor(-1.0, 0.0)


def _rec(noise, acc, seed, **level):
    return {"noise": noise, "acc": acc, "seed": seed, **level}


def test_choose_noise_levels_takes_the_largest_level_within_the_tolerance():
    records = [_rec("none", a, s) for s, a in enumerate((0.90, 0.94, 0.92))]   # median 0.92
    records += [_rec("additive", a, s, sigma=0.1) for s, a in enumerate((0.93, 0.91, 0.95))]
    records += [_rec("additive", a, s, sigma=0.3) for s, a in enumerate((0.912, 0.90, 0.93))]
    records += [_rec("additive", a, s, sigma=1.0) for s, a in enumerate((0.5, 0.95, 0.6))]
    records += [_rec("jump-dropout", a, s, p=0.1, rate=1.0) for s, a in enumerate((0.7,) * 3)]
    records += [_rec("dropout", float("nan"), s, p=0.05) for s in range(3)]       # diverged
    chosen = nl.choose_noise_levels(records, tolerance=0.01)
    assert chosen == {"none": {}, "additive": {"sigma": 0.3}}   # 0.912 >= 0.92 - 0.01; 0.6 not
    assert nl.choose_noise_levels(records, tolerance=0.25)["jump-dropout"] == {"p": 0.1, "rate": 1.0}
    with pytest.raises(ValueError, match="Neural ODE"):
        nl.choose_noise_levels(records[3:])
    table = nl.level_table(records)
    assert "sigma = 0.3" in table and "91.2" in table


def test_the_shipped_search_gives_the_course_noise_levels():
    """nl.NOISE_LEVELS is what the rule picks from the shipped results of its search."""
    search = nl.course_results("04_noise_levels")
    assert {r["noise"] for r in search} == set(nl.NOISE_LEVELS)
    assert nl.choose_noise_levels(search, tolerance=0.01) == nl.NOISE_LEVELS
