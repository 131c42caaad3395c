"""Diffusion terms G(t, y) of paper 000 (§3.1 and §5), as diagonal noise.

Each diffusion is called as ``diffusion(t, y, fy)`` where ``fy`` is the drift's value at the
same point (Gaussian dropout scales it), and returns ``g`` of the shape of ``y``. Where it is
known in closed form, ``g_dg(t, y)`` gives Milstein's g·∂g/∂y without an autograd pass.
"""
from __future__ import annotations

import math

import torch

from .. import checks

__all__ = ["Additive", "Multiplicative", "GaussianDropout", "make_diffusion", "DIFFUSIONS"]

DIFFUSIONS = ("none", "additive", "multiplicative", "dropout")


class Additive:
    """G = σ·I (eq. 8): the same Gaussian kick for every feature."""

    def __init__(self, sigma: float):
        self.sigma = checks.sigma(sigma)

    def __call__(self, t, y: torch.Tensor, fy: torch.Tensor) -> torch.Tensor:
        return y.new_full(y.shape, self.sigma)

    def g_dg(self, t, y: torch.Tensor) -> torch.Tensor:
        """g·∂g/∂y for Milstein: zero, the noise does not depend on the state."""
        return torch.zeros_like(y)

    def __repr__(self):
        return f"Additive(sigma={self.sigma})"


class Multiplicative:
    """G = σ·y: noise proportional to the state (paper 000's σ·h_t of §4.2, the setting of eq. 16
    and Corollary 4.0.1, and of §5); the toy of eq. 11. Not the paper's eq. 9, whose "multiplicative"
    noise f·W_t scales with the drift, as Gaussian dropout (eq. 7) does."""

    def __init__(self, sigma: float):
        self.sigma = checks.sigma(sigma)

    def __call__(self, t, y: torch.Tensor, fy: torch.Tensor) -> torch.Tensor:
        return self.sigma * y

    def g_dg(self, t, y: torch.Tensor) -> torch.Tensor:
        """g·∂g/∂y = σ²·y in closed form, so Milstein needs no autograd pass."""
        return self.sigma ** 2 * y

    def __repr__(self):
        return f"Multiplicative(sigma={self.sigma})"


class GaussianDropout:
    """G = sqrt(p / (1 − p))·diag f (eq. 7): dropout's variance with a Gaussian shape."""

    def __init__(self, p: float):
        self.p = checks.probability(p)
        self.scale = math.sqrt(self.p / (1 - self.p))

    def __call__(self, t, y: torch.Tensor, fy: torch.Tensor) -> torch.Tensor:
        return self.scale * fy

    def __repr__(self):
        return f"GaussianDropout(p={self.p})"


def make_diffusion(kind: str, *, sigma: float = 0.0, p: float = 0.0):
    """The diffusion named ``kind`` (one of :data:`DIFFUSIONS`); ``None`` for ``"none"``."""
    checks.one_of("noise", kind, DIFFUSIONS)
    if kind == "none":
        return None
    if kind == "additive":
        return Additive(sigma)
    if kind == "multiplicative":
        return Multiplicative(sigma)
    return GaussianDropout(p)
