"""A Neural SDE: a drift network plus a diffusion preset plus a jump preset (paper 000, eq. 3)."""
from __future__ import annotations

import torch
from torch import nn

from .jumps import JumpDropout, PoissonJump, StochasticDepth
from .noise import DIFFUSIONS, make_diffusion

__all__ = ["NeuralSDE", "make_sde", "NOISES"]

NOISES = DIFFUSIONS + ("jump-dropout", "stochastic-depth")


class NeuralSDE(nn.Module):
    """dh = s·f(t, h) dt + G(t, h) dB + J(t, h) ⊙ Z dN, with torchsde's ``f``/``g`` contract.

    Args:
        drift: module or callable ``f(t, y)`` returning a tensor of the shape of ``y``.
        diffusion: callable ``(t, y, fy) -> g`` (see :mod:`nsde_lib.noise`) or ``None``.
        jump: a jump preset with ``size(t, y, fy)`` (see :mod:`nsde_lib.jumps`) or ``None``.
            Its ``drift_scale`` s multiplies the drift (½ for jump dropout, eq. 5).

    Attributes:
        stochastic: when ``False`` the noise is off: no diffusion, and a jump is replaced by its
            mean, rate·E[Z]·J, added to the drift. Independent of ``train()``/``eval()`` on
            purpose: attacks call ``eval()`` and must still see the noise.
    """

    noise_type = "diagonal"
    sde_type = "ito"

    def __init__(self, drift, diffusion=None, jump: PoissonJump | None = None):
        super().__init__()
        self.drift = drift
        self.diffusion = diffusion
        self.jump = jump
        self.stochastic = True

    def terms(self, t: torch.Tensor, y: torch.Tensor):
        """(f, g, J) at (t, y); ``g``/``J`` are ``None`` where absent or switched off."""
        fy = self.drift(t, y)
        g = jump_size = None
        f = fy
        if self.jump is not None:
            f = self.jump.drift_scale * fy
            jump_size = self.jump.size(t, y, fy)
            if not self.stochastic:  # the jump's mean joins the drift
                f = f + self.jump.rate * self.jump.mean_sign * jump_size
                jump_size = None
        if self.stochastic and self.diffusion is not None:
            g = self.diffusion(t, y, fy)
        return f, g, jump_size

    def g_dg(self, t, y):
        """Milstein's g·∂g/∂y in closed form when the diffusion knows it, else ``None``."""
        closed_form = getattr(self.diffusion, "g_dg", None)
        if not self.stochastic or closed_form is None:
            return None
        return closed_form(t, y)

    # torchsde's contract, so torchsde.sdeint can run this model as an oracle.
    def f(self, t, y):
        return self.terms(t, y)[0]

    def g(self, t, y):
        g = self.terms(t, y)[1]
        return torch.zeros_like(y) if g is None else g

    def j(self, t, y):
        return self.terms(t, y)[2]

    def f_and_g(self, t, y):
        f, g, _ = self.terms(t, y)
        return f, torch.zeros_like(y) if g is None else g


def make_sde(drift, noise: str = "none", *, sigma: float = 0.0, p: float = 0.0,
             rate: float = 1.0) -> NeuralSDE:
    """A :class:`NeuralSDE` from a preset name.

    Args:
        drift: the drift ``f(t, y)``.
        noise: one of :data:`NOISES`: ``"none"`` (Neural ODE), ``"additive"`` (σ·I),
            ``"multiplicative"`` (σ·h), ``"dropout"`` (Gaussian dropout, sqrt(p/(1−p))·f),
            ``"jump-dropout"`` (eq. 4, per element) or ``"stochastic-depth"`` (eq. 5).
        sigma: diffusion scale σ ≥ 0 (additive, multiplicative).
        p: drop probability in [0, 1) (dropout presets).
        rate: jump intensity λ ≥ 0 (jump presets).
    """
    if noise not in NOISES:
        raise ValueError(f"noise must be one of {NOISES}, got {noise!r}")
    if noise == "jump-dropout":
        return NeuralSDE(drift, jump=JumpDropout(p, rate))
    if noise == "stochastic-depth":
        return NeuralSDE(drift, jump=StochasticDepth(p, rate))
    return NeuralSDE(drift, make_diffusion(noise, sigma=sigma, p=p))
