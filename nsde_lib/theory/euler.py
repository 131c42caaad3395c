"""Explicit Euler on the test equation ẋ = a·x (paper 003, Fig. 1, where a = −2.3): the
amplification factor 1 + a·dt and the largest stable step. With dt = h this is a residual block's
step factor. The functions take the coefficient a as ``lam``; the course writes it a, because λ
is the Poisson jump rate (paper 000's symbol)."""
from __future__ import annotations

import math

import numpy as np
import torch

from ..checks import positive
from ..sde.solver import sdeint

__all__ = ["LinearODE", "euler_factor", "euler_stability_limit", "euler_solution"]


class LinearODE:
    """ẋ = a·x (a = ``lam``) with torchsde's contract (``f(t, y)``, no diffusion), so
    :func:`nsde_lib.sdeint` runs explicit Euler on it and ``sdeint(LinearODE(a), x0, [0, n·dt],
    dt=dt)[-1]`` is (1 + a·dt)^n·x0."""

    def __init__(self, lam: float):
        self.lam = float(lam)

    def f(self, t, y: torch.Tensor) -> torch.Tensor:
        return self.lam * y

    def __repr__(self):
        return f"LinearODE(lam={self.lam})"


def euler_factor(lam: complex, dt: float) -> complex:
    """1 + a·dt (a = ``lam``): explicit Euler on ẋ = a·x multiplies the state by this each step.

    The Euler solution is x_n = (1 + a·dt)^n x_0, so it decays iff |1 + a·dt| < 1 (paper 003,
    Fig. 1, with dt = h).
    """
    dt = positive("dt", dt)
    return 1 + lam * dt


def euler_stability_limit(lam: complex) -> float:
    """The largest step for which explicit Euler on ẋ = a·x (a = ``lam``) decays: |1 + a·dt| < 1
    iff dt < −2·Re(a)/|a|² (2/|a| for real a < 0).

    Raises:
        ValueError: Re(a) >= 0: the equation itself does not decay, no step makes Euler decay.
    """
    lam = complex(lam)
    if not lam.real < 0:
        raise ValueError(f"lam must have a negative real part (a decaying equation), got {lam!r}")
    return -2 * lam.real / abs(lam) ** 2


def euler_solution(lam: float, dt: float, T: float) -> tuple[np.ndarray, np.ndarray]:
    """Explicit Euler on ẋ = a·x (a = ``lam``), x(0) = 1, with step ``dt`` up to the first step
    at or past ``T``.

    Returns:
        ``(ts, xs)``: the step times and the Euler points x_n = (1 + a·dt)^n, NumPy float64,
        computed by :func:`nsde_lib.sdeint` (so they are the solver's own numbers).
    """
    dt, T = positive("dt", dt), positive("T", T)
    n = max(1, math.ceil(T / dt - 1e-9))
    ts = [k * dt for k in range(n + 1)]
    xs = sdeint(LinearODE(lam), torch.ones(1, dtype=torch.float64), ts, dt=dt)[:, 0]
    return np.array(ts), xs.numpy()
