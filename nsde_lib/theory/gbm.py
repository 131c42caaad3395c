"""Geometric Brownian motion dx = μx dt + σx dB: the SDE whose every property the course can
check in closed form (paper 000's toy of eq. 11 is μ = 1).

The exact solution x_t = x_0·exp((μ − σ²/2)t + σW_t) path by path, the mean of Euler–Maruyama,
the almost-sure (Lyapunov) exponent μ − σ²/2 and the growth rate of every moment E|x_t|^q.
"""
from __future__ import annotations

import numpy as np
import torch

from ..checks import positive

__all__ = ["GBM", "gbm_exact", "gbm_mean_euler", "gbm_lyapunov", "gbm_moment_exponent",
           "critical_moment_order"]


class GBM:
    """dx = μx dt + σx dB with torchsde's contract (so torchsde can run it too)."""

    noise_type, sde_type = "diagonal", "ito"

    def __init__(self, mu: float = 1.0, sigma: float = 1.0):
        self.mu, self.sigma = float(mu), float(sigma)

    def f(self, t, y):
        return self.mu * y

    def g(self, t, y):
        return self.sigma * y


def gbm_exact(x0, mu: float, sigma: float, t, w):
    """x_t = x_0·exp((μ − σ²/2)·t + σ·W_t), elementwise (tensors or floats)."""
    if isinstance(w, torch.Tensor):
        return x0 * torch.exp((mu - sigma ** 2 / 2) * t + sigma * w)
    return x0 * np.exp((mu - sigma ** 2 / 2) * t + sigma * np.asarray(w))


def gbm_mean_euler(x0: float, mu: float, T: float, dt: float) -> float:
    """E[x_T] of Euler–Maruyama (and of Milstein) on GBM: x_0·(1 + μ·dt)^{T/dt}.

    Each step multiplies by a factor whose mean is 1 + μ·dt, independently of the past; the
    exact mean is x_0·e^{μT}, so the weak error is first order in dt.
    """
    return x0 * (1 + mu * dt) ** round(T / dt)


def gbm_lyapunov(mu: float, sigma: float) -> float:
    """Almost-sure exponent of dx = μx dt + σx dB: μ − σ²/2 (paper 000, §4.1 with μ = 1)."""
    return mu - sigma ** 2 / 2


def gbm_moment_exponent(mu: float, sigma: float, q: float = 1.0) -> float:
    """Growth rate of E|x_t|^q for geometric Brownian motion: q·(μ − σ²/2 + q·σ²/2).

    q = 1 gives μ: the mean x_0·e^{μt} does not feel the noise at all. The almost-sure exponent
    μ − σ²/2 is the slope of this curve at q = 0. (q is the moment's order; p is kept for a
    drop probability.)
    """
    return q * (mu - sigma ** 2 / 2 + q * sigma ** 2 / 2)


def critical_moment_order(mu: float, sigma: float) -> float:
    """The order q > 0 where E|x_t|^q switches from decay to growth: 1 − 2μ/σ² (needs σ > 0).

    Moments of order below it decay, above it grow; it is positive exactly when the solution is
    almost surely stable (σ² > 2μ).
    """
    sigma = positive("sigma", sigma)
    return 1 - 2 * mu / sigma ** 2
