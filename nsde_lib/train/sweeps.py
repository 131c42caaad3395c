"""Hyper-parameter sweeps over seeds, with diverged runs kept and counted, never dropped.

A sweep is a list of configs (dicts of hashable values) times a list of seeds. :func:`sweep` runs
``run(config, seed)`` for each pair that its ``cache`` does not already hold, so figures that share
runs (paper 003's Fig. 3 at depth D is a point of Fig. 4 and Fig. 9 too) train them once.
:func:`summarize` reduces the records to median and spread per group; a diverged run scores what
its network scores, chance accuracy, and is also counted and located so figures can mark it.
"""
from __future__ import annotations

import math
import statistics
from typing import Callable, Iterable

from .. import checks

__all__ = ["sweep", "summarize", "run_key", "run_record", "report_runs", "choose_noise_levels", "level_table"]


def run_key(config: dict, seed: int) -> tuple:
    """The cache key of one run: the config's items in sorted order, then the seed."""
    try:
        key = tuple(sorted(config.items())) + (("seed", seed),)
        hash(key)
    except TypeError as err:
        raise ValueError(f"config values must be hashable (numbers, strings, tuples): {err}") from err
    return key


def sweep(configs: Iterable[dict], run: Callable, *, seeds: Iterable[int],
          cache: dict | None = None, desc: str = "sweep", progress: bool = True) -> list[dict]:
    """Run every config with every seed; return one record per run.

    Args:
        configs: dicts of hashable values, e.g. ``{"depth": 8, "h": 0.1, "lr": 0.1}``.
        run: ``run(config, seed)`` returning a :class:`nsde_lib.train.History`, or a tuple whose
            first item is the History (the rest is kept in the record as ``extra``, e.g. the model).
        seeds: the seeds, e.g. ``range(3)``.
        cache: a dict shared between sweeps; runs found in it are not trained again.
        desc: label of the tqdm bar.

    Returns:
        Records ``{**config, "seed", "acc", "diverged", "diverged_epoch", "diverged_step",
        "history", "extra"}``; ``acc`` is the final test accuracy, NaN for a diverged run.
    """
    from tqdm.auto import tqdm

    configs, seeds = list(configs), list(seeds)
    if not configs or not seeds:
        raise ValueError("a sweep needs at least one config and one seed")
    cache = {} if cache is None else cache
    jobs = [(c, s) for c in configs for s in seeds]
    records = []
    for config, seed in tqdm(jobs, desc=desc, disable=not progress, leave=False):
        key = run_key(config, seed)
        if key not in cache:
            cache[key] = run_record(config, seed, run(config, seed))
        records.append(cache[key])
    return records


def run_record(config: dict, seed: int, result) -> dict:
    """The record of one run, as :func:`sweep` makes it: ``result`` is a History or a tuple
    whose first item is one (the rest is kept as ``extra``)."""
    history, extra = (result[0], result[1:]) if isinstance(result, tuple) else (result, ())
    return {**config, "seed": seed, "acc": history.final_test_acc, "diverged": history.diverged,
            "diverged_epoch": history.diverged_epoch, "diverged_step": history.diverged_step,
            "history": history, "extra": extra}


def summarize(records: list[dict], x: str, group: str, *, chance: float,
              value: str = "acc") -> dict:
    """Median and spread of ``value`` against ``x``, one curve per value of ``group``.

    Args:
        records: from :func:`sweep`.
        x: the swept key (e.g. ``"depth"``); group: the key of the curves (e.g. ``"h"``).
        chance: the score a diverged run counts as (1 / number of classes): its NaN network
            predicts one class for everything.
        value: the record key to summarise.

    Returns:
        ``{group_value: {"x", "median", "lo", "hi", "n", "n_diverged", "diverged_x", "values"}}``,
        lists ordered by x; ``lo``/``hi`` are the min and max over seeds; ``diverged_x`` repeats
        an x once per diverged run there; ``values`` holds, per x, the scores of the runs that
        did not diverge (so a figure can show every seed, not only the median).
    """
    if not 0 <= checks.non_negative("chance", chance) <= 1:
        raise ValueError(f"chance must be in [0, 1], got {chance!r}")
    out: dict = {}
    for g in sorted({r[group] for r in records}):
        mine = [r for r in records if r[group] == g]
        xs = sorted({r[x] for r in mine})
        curve = {"x": xs, "median": [], "lo": [], "hi": [], "n": [], "n_diverged": [],
                 "diverged_x": [], "values": []}
        for xv in xs:
            at = [r for r in mine if r[x] == xv]
            vals = [chance if (r["diverged"] or not math.isfinite(r[value])) else r[value]
                    for r in at]
            n_div = sum(bool(r["diverged"]) for r in at)
            curve["median"].append(statistics.median(vals))
            curve["lo"].append(min(vals))
            curve["hi"].append(max(vals))
            curve["n"].append(len(at))
            curve["n_diverged"].append(n_div)
            curve["diverged_x"].extend([xv] * n_div)
            curve["values"].append([v for r, v in zip(at, vals) if not r["diverged"]])
        out[g] = curve
    return out


def report_runs(records: list[dict], key: str, *, chance: float) -> None:
    """Print one line per run of a :func:`sweep`: its ``key`` value, h, seed and outcome (the
    final test accuracy, or where it diverged; a run at chance accuracy is flagged)."""
    for r in records:
        if r["diverged"]:
            status = f"diverged in epoch {r['diverged_epoch']}, step {r['diverged_step']}"
        else:
            status = f"test accuracy {r['acc']:.3f}"
            if r["acc"] < chance + 0.02:
                status += " (chance: trained to nothing)"
        print(f"  {key} = {r[key]!s:<6} h = {r['h']:<4} seed {r['seed']}: {status}")


# Which option of a noise preset is its level (the search varies it; jump-dropout's rate stays).
LEVEL_OPTIONS = {"additive": "sigma", "multiplicative": "sigma", "dropout": "p",
                 "jump-dropout": "p"}


def choose_noise_levels(records: list[dict], *, tolerance: float = 0.01,
                        levels: dict | None = None) -> dict:
    """The rule behind :data:`nsde_lib.NOISE_LEVELS`: per noise preset, the largest level whose
    median test accuracy over the seeds stays within ``tolerance`` of the Neural ODE's median.

    Args:
        records: the search's records (:func:`nsde_lib.read_results`), each with ``noise``, the
            preset's level (``sigma`` or ``p``, plus ``rate`` for jumps) and ``acc``.
        tolerance: accuracy (a share, 0.01 = one point) a preset may lose against the ODE.
        levels: which option is a preset's level (default :data:`LEVEL_OPTIONS`: ``p`` for the
            dropout presets, ``sigma`` for the others).

    Returns:
        ``{preset: {option: value, ...}}`` like :data:`nsde_lib.NOISE_LEVELS` (``{}`` for
        ``"none"``); a preset with no level inside the tolerance is left out.

    Raises:
        ValueError: no Neural ODE among the records.
    """
    levels = levels or LEVEL_OPTIONS

    def median(rs):
        return statistics.median(r["acc"] if math.isfinite(r["acc"]) else 0.0 for r in rs)

    ode = [r for r in records if r["noise"] == "none"]
    if not ode:
        raise ValueError("the records hold no Neural ODE (noise 'none') to compare with")
    chosen = {"none": {}}
    for noise, option in levels.items():
        mine = [r for r in records if r["noise"] == noise]
        ok = [v for v in sorted({r[option] for r in mine})
              if median([r for r in mine if r[option] == v]) >= median(ode) - tolerance]
        if ok:
            best = next(r for r in mine if r[option] == ok[-1])
            chosen[noise] = {option: ok[-1]} | ({"rate": best["rate"]} if "rate" in best else {})
    return chosen


def level_table(records: list[dict], *, levels: dict | None = None) -> str:
    """The search as text: one line per preset and level (default: the Neural ODE, then the
    presets of :data:`LEVEL_OPTIONS`), the test accuracy of each seed and their median (%)."""
    levels = levels or {"none": None, **LEVEL_OPTIONS}
    lines = [f"{'noise':<15}{'level':>12}   test accuracy per seed (%)         median"]
    for noise, option in levels.items():
        mine = [r for r in records if r["noise"] == noise]
        for v in sorted({r.get(option) for r in mine} if option else {None}):
            rs = sorted((r for r in mine if option is None or r[option] == v), key=lambda r: r["seed"])
            accs = [100 * r["acc"] if math.isfinite(r["acc"]) else float("nan") for r in rs]
            label = "" if option is None else f"{option} = {v:g}"
            lines.append(f"{noise:<15}{label:>12}   " + " ".join(f"{a:6.1f}" for a in accs).ljust(33)
                         + f"{statistics.median(accs):6.1f}")
    return "\n".join(lines)
