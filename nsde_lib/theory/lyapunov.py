"""Stability of SDE solutions (paper 000, §4), measured: Lyapunov exponents from simulated paths
and the perturbation between two inputs driven by one Brownian path.

* :func:`lyapunov_exponent` measures the almost-sure exponent lim (1/t)·log‖x_t‖ (Def. 4.1 B).
* :func:`perturbation` runs two inputs through one SDE on the *same* Brownian path and returns
  ε_t = y^e_t − y_t (eq. 13; paper 000 writes the state as h).

The closed forms they are checked against live in :mod:`nsde_lib.theory.gbm`; the Lipschitz
constant of Corollary 4.0.1 in :mod:`nsde_lib.theory.lipschitz`.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch

from ..sde.brownian import brownian_increments
from ..sde.solver import sdeint, time_grid

__all__ = ["LyapunovEstimate", "log_norms", "lyapunov_exponent", "perturbation"]


# --- Lyapunov exponents -------------------------------------------------------------------------

class LyapunovEstimate(NamedTuple):
    """An almost-sure exponent measured from ``n_paths`` paths.

    Attributes:
        exponent: mean over paths of the per-path slope (a float).
        stderr: standard error of that mean, std(per_path) / sqrt(n_paths) (NaN for one path).
        per_path: the per-path slopes, shape ``(n_paths,)``, float64.
    """

    exponent: float
    stderr: float
    per_path: torch.Tensor


def log_norms(paths: torch.Tensor) -> torch.Tensor:
    """log‖x_t‖ per path: shape ``(T, n_paths)`` from paths ``(T, n_paths, *state)``.

    The norm is Euclidean over everything after dimension 1 (|x| for scalar states, paths of
    shape ``(T, n_paths)``); a single path of shape ``(T,)`` becomes ``(T, 1)``. Float64.

    Raises:
        ValueError: non-finite values, or a path that is exactly 0 (log‖x‖ = −∞; in floating
            point this means the path underflowed: shorten the horizon).
    """
    if not isinstance(paths, torch.Tensor):
        raise ValueError(f"paths must be a torch.Tensor, got {type(paths).__name__}")
    x = paths.detach().to(torch.float64)
    if x.dim() == 1:
        x = x[:, None]
    if x.dim() < 2:
        raise ValueError(f"paths must have shape (T, n_paths, ...), got {tuple(paths.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("paths hold NaN or Inf values; the simulation diverged")
    norms = x.flatten(2).norm(dim=2) if x.dim() > 2 else x.abs()  # (T, n_paths)
    if (norms == 0).any():
        t, i = (norms == 0).nonzero()[0].tolist()
        raise ValueError(f"path {i} is exactly 0 at time index {t}: log‖x‖ = -inf "
                         "(underflow?); use a shorter horizon or a smaller window")
    return norms.log()


def lyapunov_exponent(paths: torch.Tensor, ts, *, t_min: float | None = None,
                      t_max: float | None = None, method: str = "fit") -> LyapunovEstimate:
    """Estimate the almost-sure exponent κ = lim (1/t)·log‖x_t‖ from simulated paths.

    Each path gives one slope of log‖x_t‖ against t over the window ``[t_min, t_max]``; the
    estimate is their mean, with its standard error. Two estimators:

    * ``"fit"``: the least-squares slope over every time in the window. The intercept absorbs
      log‖x_0‖ and any transient before the exponential regime.
    * ``"endpoint"``: (log‖x_{t_max}‖ − log‖x_{t_min}‖) / (t_max − t_min).

    For x_t = x_0·exp(κt + σB_t) (geometric Brownian motion) both are unbiased; their variances
    per path are σ²/(t_max − t_min) for the endpoint and 6/5 of that for the fit (on a fine
    grid). Averaging over paths is what paper 000 does in Fig. 4 "to cancel out the volatility".

    Args:
        paths: ``(T, n_paths, *state)``, ``(T, n_paths)`` or ``(T,)`` (see :func:`log_norms`).
        ts: the ``T`` times of the paths (list or 1-D tensor).
        t_min, t_max: the window (default: all of ``ts``); at least 2 times must fall in it.
        method: ``"fit"`` or ``"endpoint"``.

    Returns:
        :class:`LyapunovEstimate` ``(exponent, stderr, per_path)``.

    Raises:
        ValueError: shapes that disagree, a window with fewer than 2 times, an unknown
            ``method``, non-finite or zero paths.
    """
    if method not in ("fit", "endpoint"):
        raise ValueError(f"method must be 'fit' or 'endpoint', got {method!r}")
    logs = log_norms(paths)  # (T, n_paths)
    t = torch.as_tensor(ts, dtype=torch.float64).detach().cpu().flatten()
    if len(t) != logs.shape[0]:
        raise ValueError(f"ts has {len(t)} times but paths has {logs.shape[0]} "
                         "(paths must be (len(ts), n_paths, ...))")
    lo = t[0].item() if t_min is None else float(t_min)
    hi = t[-1].item() if t_max is None else float(t_max)
    keep = (t >= lo - 1e-12) & (t <= hi + 1e-12)
    if int(keep.sum()) < 2:
        raise ValueError(f"the window [t_min, t_max] = [{lo}, {hi}] holds {int(keep.sum())} of "
                         "the times ts; it needs at least 2")
    t, logs = t[keep].to(logs.device), logs[keep]
    if method == "endpoint":
        slopes = (logs[-1] - logs[0]) / (t[-1] - t[0])
    else:
        tc = t - t.mean()
        slopes = (tc[:, None] * (logs - logs.mean(0))).sum(0) / (tc * tc).sum()
    n = slopes.numel()
    stderr = float(slopes.std() / math.sqrt(n)) if n > 1 else math.nan
    return LyapunovEstimate(float(slopes.mean()), stderr, slopes.cpu())


# --- two inputs, one Brownian path --------------------------------------------------------------

def perturbation(sde, y0: torch.Tensor, y0_perturbed: torch.Tensor, ts, *, dt: float,
                 method: str = "euler", bm: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """ε_t = y^e_t − y_t for two inputs driven by one Brownian path (paper 000, eq. 13).

    Both runs use the same increments ``bm`` (drawn once here when ``None``) and, for jumps,
    the same draws: the second run starts from a copy of the generator's state.

    Args:
        sde: anything :func:`nsde_lib.sdeint` accepts.
        y0, y0_perturbed: the clean and the perturbed input, same shape ``(B, *state)``.
        ts, dt, method: as for :func:`nsde_lib.sdeint`.
        bm: increments ``(n_steps, *y0.shape)``; pass them to control the noise (e.g. one
            scalar Brownian motion per sample, as in Corollary 4.0.1).
        generator: draws ``bm`` (when ``None``) and the jumps; default: a fresh one seeded
            from torch's global RNG.

    Returns:
        ε, shape ``(len(ts), *y0.shape)``; ε[0] = y0_perturbed − y0.
    """
    if not isinstance(y0, torch.Tensor) or not isinstance(y0_perturbed, torch.Tensor) \
            or y0.shape != y0_perturbed.shape:
        raise ValueError("y0 and y0_perturbed must be tensors of the same shape, got "
                         f"{getattr(y0, 'shape', y0)} and "
                         f"{getattr(y0_perturbed, 'shape', y0_perturbed)}")
    if generator is None:  # a private generator, so that both runs can replay the same draws
        seed = int(torch.randint(0, 2 ** 62, (1,)))
        generator = torch.Generator(device=y0.device).manual_seed(seed)
    if bm is None:
        bm = brownian_increments(time_grid(ts, dt)[0], y0.shape, generator=generator,
                                 dtype=y0.dtype, device=y0.device)
    state = generator.get_state()
    clean = sdeint(sde, y0, ts, dt=dt, method=method, bm=bm, generator=generator)
    generator.set_state(state)
    perturbed = sdeint(sde, y0_perturbed, ts, dt=dt, method=method, bm=bm, generator=generator)
    return perturbed - clean
