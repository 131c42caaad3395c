"""An adaptive ODE solver (Dormand–Prince 5(4)) for the deterministic block
(:class:`nsde_lib.AdaptiveBlock` solves a trained classifier's block with it).

Paper 004 compares fixed-step and adaptive solvers of the same Neural ODE under attack: an
adaptive solver picks its steps from the state, so the network it computes is not the one the
fixed-step training saw, and its gradient is the gradient of a different function. Here the
accepted steps are differentiated by autograd; the choice of step sizes is not (it depends on
the input only through a rejected/accepted decision), as in ``torchdiffeq``.

The step controller is the textbook one (Hairer, Nørsett & Wanner, *Solving ODEs I*, §II.4):
error per sample = RMS of ``err / (atol + rtol·max(|y|, |y_new|))``; a step is accepted when
the largest per-sample error of the batch is ≤ 1, so every image meets the tolerance.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from ..checks import count, positive
from .solver import DivergenceError, as_times

__all__ = ["odeint_dopri5", "SolveStats"]

# Dormand–Prince 5(4) tableau: nodes c, stages a, 5th-order weights b, error weights b − b*.
_C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0)
_A = ((),
      (1 / 5,),
      (3 / 40, 9 / 40),
      (44 / 45, -56 / 15, 32 / 9),
      (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
      (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
      (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84))
_B = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0)
_E = (71 / 57600, 0.0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40)


@dataclass
class SolveStats:
    """What a solve cost: accepted and rejected steps, drift evaluations, smallest/largest step."""

    accepted: int = 0
    rejected: int = 0
    nfe: int = 0
    dt_min: float = math.inf
    dt_max: float = 0.0


def _weighted(ks, weights):
    out = None
    for w, k in zip(weights, ks):
        if w != 0.0:
            out = w * k if out is None else out + w * k
    return out


def _error_norm(err, y, y_new, rtol, atol):
    """Largest per-sample RMS of the scaled error (dimension 0 is the sample)."""
    scale = atol + rtol * torch.maximum(y.abs(), y_new.abs())
    ratio = (err / scale).flatten(1) if err.dim() > 1 else (err / scale).view(1, -1)
    return float(ratio.pow(2).mean(1).sqrt().max())


def _initial_step(f, t0, y0, f0, rtol, atol, span):
    """Hairer's starting step: small enough for the first derivative's scale, order-5 aware."""
    with torch.no_grad():
        scale = atol + rtol * y0.abs()
        d0 = float((y0 / scale).pow(2).mean().sqrt())
        d1 = float((f0 / scale).pow(2).mean().sqrt())
        dt0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
        dt0 = min(dt0, span)
        f1 = f(t0 + dt0, y0 + dt0 * f0)
        d2 = float(((f1 - f0) / scale).pow(2).mean().sqrt()) / dt0
        dt1 = max(1e-6, dt0 * 1e-3) if max(d1, d2) <= 1e-15 else (0.01 / max(d1, d2)) ** (1 / 5)
    return min(100 * dt0, dt1, span)


def odeint_dopri5(f: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], y0: torch.Tensor,
                  ts, *, rtol: float = 1e-3, atol: float = 1e-6, dt: float | None = None,
                  max_steps: int = 10_000, stats: SolveStats | None = None) -> torch.Tensor:
    """Solve dy/dt = f(t, y) with Dormand–Prince 5(4), adaptive (default) or with a fixed step.

    Args:
        f: drift ``f(t, y)``; ``t`` is a 0-dim tensor of ``y``'s dtype, ``y`` of ``y0``'s shape.
        y0: initial state, any shape; dimension 0 indexes independent samples (the tolerance
            holds for each).
        ts: output times, strictly increasing (list or 1-D tensor); the solver lands on each.
        rtol, atol: relative and absolute tolerances (> 0).
        dt: a fixed step instead of adaptive control (the fifth-order Runge–Kutta method, each
            interval cut into equal steps ≤ dt), to compare fixed and adaptive solves.
        max_steps: give up after this many attempted steps.
        stats: a :class:`SolveStats` to fill in.

    Returns:
        ``(len(ts), *y0.shape)``; ``out[0]`` is ``y0``. Differentiable through the steps taken.

    Raises:
        ValueError: bad ``ts``, tolerances, ``dt`` or ``max_steps``.
        DivergenceError: NaN/Inf in the state, or the step size collapsing.
        RuntimeError: more than ``max_steps`` steps (names the time reached).
    """
    times = as_times(ts)
    rtol, atol = positive("rtol", rtol), positive("atol", atol)
    if dt is not None:
        dt = positive("dt (None for adaptive steps)", dt)
    count("max_steps", max_steps)
    stats = stats if stats is not None else SolveStats()

    def call(t, y):
        stats.nfe += 1
        return f(torch.as_tensor(t, dtype=y.dtype, device=y.device), y)

    out, y, t = [y0], y0, times[0]
    k1 = call(t, y)
    dt_next = dt if dt is not None else _initial_step(call, t, y, k1, rtol, atol, times[-1] - t)
    attempts = 0
    for t_out in times[1:]:
        if dt is not None:  # the fewest equal steps no longer than dt, landing on t_out
            n = max(1, math.ceil((t_out - t) / dt - 1e-9))
            grid = [t + (t_out - t) * k / n for k in range(1, n)] + [t_out]
        while t < t_out:
            attempts += 1
            if attempts > max_steps:
                raise RuntimeError(f"odeint_dopri5 took more than max_steps={max_steps} steps "
                                   f"and reached t={t:.6g} of {times[-1]:.6g}; loosen rtol/atol")
            if dt is not None:
                t_next = grid.pop(0)
            else:  # land on t_out rather than leave a sliver of a step
                t_next = t_out if t + 1.01 * dt_next >= t_out else t + dt_next
            step = t_next - t
            ks = [k1]
            for i in range(1, 7):
                ks.append(call(t + _C[i] * step, y + step * _weighted(ks, _A[i])))
            y_new = y + step * _weighted(ks, _B)  # the 7th stage's state: f there is k1 next
            if not bool(torch.isfinite(y_new).all()):
                raise DivergenceError(t_next, stats.accepted + 1)
            accept = True
            if dt is None:
                with torch.no_grad():
                    err = _error_norm(step * _weighted(ks, _E), y, y_new, rtol, atol)
                accept = err <= 1.0
                factor = 10.0 if err == 0 else min(10.0, max(0.2, 0.9 * err ** -0.2))
                dt_next = step * (factor if accept else min(factor, 1.0))
                if dt_next < 1e-12 * max(1.0, abs(t)):
                    raise DivergenceError(t, stats.accepted + 1)
            if accept:
                t, y, k1 = t_next, y_new, ks[6]
                stats.accepted += 1
                stats.dt_min, stats.dt_max = min(stats.dt_min, step), max(stats.dt_max, step)
            else:
                stats.rejected += 1
        out.append(y)
    return torch.stack(out)
