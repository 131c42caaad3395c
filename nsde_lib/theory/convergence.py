"""Strong and weak convergence of the solvers on geometric Brownian motion, where the exact
solution x_T = x_0·exp((μ − σ²/2)T + σW_T) is known path by path.

Every step size sees the *same* Brownian paths: the increments of the finest grid are summed
into those of the coarser ones, so the errors at different ``dt`` differ only by the method.
"""
from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import checks
from ..sde.brownian import brownian_increments
from ..sde.solver import METHODS, sdeint
from .gbm import GBM, gbm_exact

__all__ = ["gbm_errors", "fit_order"]


def _dyadic_counts(dts, T):
    counts = [round(T / dt) for dt in dts]
    if any(abs(c * dt - T) > 1e-9 * T or c < 1 for c, dt in zip(counts, dts)):
        raise ValueError(f"every dt must divide T = {T} into a whole number of steps, got {dts}")
    finest = max(counts)
    if any(finest % c for c in counts):
        raise ValueError(f"the step counts T/dt = {counts} must all divide the finest one "
                         f"({finest}), e.g. dt = T·2^-k")
    return counts, finest


def gbm_errors(dts, *, methods=METHODS, mu: float = 1.0, sigma: float = 1.0, x0: float = 1.0,
               T: float = 1.0, n_paths: int = 10000, chunk_size: int = 25000,
               generator: torch.Generator | None = None, progress: bool = False) -> dict:
    """Strong and weak errors at time T of each method, for each step ``dt``.

    * strong error: E|X^dt_T − x_T| (same Brownian path), order 0.5 for Euler–Maruyama and
      1.0 for Milstein;
    * weak error: |E[X^dt_T] − E[x_T]|, order 1.0 for both. It is estimated as the mean of
      X^dt_T − x_T over the coupled paths (E[x_T] = x_0·e^{μT} exactly): the difference has a
      far smaller spread than X^dt_T alone, so the Monte-Carlo noise stays below the bias.

    Args:
        dts: step sizes, each dividing T, all step counts dividing the finest (dyadic).
        methods: solver methods (:data:`nsde_lib.METHODS`).
        mu, sigma, x0, T: the GBM and its horizon.
        n_paths: Monte-Carlo paths.
        chunk_size: paths simulated at once (memory: 8·chunk_size·T/min(dts) bytes).
        generator: seeds the Brownian increments.
        progress: show a tqdm bar over (chunk, method) runs.

    Returns:
        ``{"dt": array, method: {"strong": array, "weak": array, "weak_se": array}}``;
        ``weak_se`` is the standard error of the weak-error estimate.
    """
    for m in methods:
        checks.one_of("method", m, METHODS)
    checks.count("n_paths", n_paths, low=2)
    checks.count("chunk_size", chunk_size)
    dts = [float(dt) for dt in dts]
    counts, finest = _dyadic_counts(dts, T)
    sde = GBM(mu, sigma)
    fine_grid = [T * k / finest for k in range(finest + 1)]
    # sums over chunks of paths: E|d|, E[d], E[d²] per method and dt, d = X^dt_T − x_T
    sums = {m: np.zeros((3, len(dts))) for m in methods}
    starts = range(0, n_paths, chunk_size)
    bar = tqdm(total=len(starts) * len(methods), desc="GBM errors", disable=not progress,
               leave=False)
    for start in starts:
        size = min(chunk_size, n_paths - start)
        dw = brownian_increments(fine_grid, (size,), generator=generator)  # (finest, size)
        exact = gbm_exact(x0, mu, sigma, T, dw.sum(0))
        y0 = torch.full((size,), float(x0), dtype=torch.float64)
        for method in methods:
            for j, (dt, n) in enumerate(zip(dts, counts)):
                bm = dw.view(n, finest // n, size).sum(1)  # the same path, coarser steps
                diff = sdeint(sde, y0, [0.0, T], dt=dt, method=method, bm=bm)[-1] - exact
                sums[method][:, j] += [float(diff.abs().sum()), float(diff.sum()),
                                       float((diff * diff).sum())]
            bar.update()
    bar.close()
    out = {"dt": np.array(dts)}
    for method in methods:
        abs_mean, mean, sq_mean = sums[method] / n_paths
        var = np.maximum(sq_mean - mean ** 2, 0) * n_paths / (n_paths - 1)
        out[method] = {"strong": abs_mean, "weak": np.abs(mean),
                       "weak_se": np.sqrt(var / n_paths)}
    return out


def fit_order(dts, errors) -> float:
    """The slope of log(error) against log(dt): the measured order of convergence."""
    dts, errors = np.asarray(dts, dtype=float), np.asarray(errors, dtype=float)
    if dts.shape != errors.shape or dts.size < 2:
        raise ValueError("dts and errors must be arrays of the same length >= 2")
    if (dts <= 0).any() or (errors <= 0).any():
        raise ValueError("dts and errors must be > 0 to fit a log-log slope")
    return float(np.polyfit(np.log(dts), np.log(errors), 1)[0])
