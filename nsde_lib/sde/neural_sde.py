"""A Neural SDE: a drift network plus a diffusion preset plus a jump preset (paper 000, eq. 3),
and the one noise switch every noisy model of the library shares."""
from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

from .. import checks
from .diffusions import DIFFUSIONS, make_diffusion
from .jumps import JumpDropout, PoissonJump, StochasticDepth

__all__ = ["NeuralSDE", "make_sde", "NOISES", "noise_switch", "SwitchedBySDE"]

NOISES = DIFFUSIONS + ("jump-dropout", "stochastic-depth")


class NeuralSDE(nn.Module):
    """dy = s·f(t, y) dt + G(t, y) dB + J(t, y) ⊙ Z dN, with torchsde's ``f``/``g`` contract.

    Paper 000 writes the state as h_t; here it is y (torchsde's name), and h is kept for the
    ResNet step factor.

    Args:
        drift: module or callable ``f(t, y)`` returning a tensor of the shape of ``y``.
        diffusion: callable ``(t, y, fy) -> g`` (:class:`nsde_lib.Additive`,
            :class:`nsde_lib.Multiplicative`, :class:`nsde_lib.GaussianDropout`) or ``None``.
        jump: a jump preset with ``size(t, y, fy)`` (:class:`nsde_lib.JumpDropout`,
            :class:`nsde_lib.StochasticDepth`) or ``None``. Its ``drift_scale`` s multiplies the
            drift (½ for the dropout jumps of eqs. 4–5).

    Attributes:
        noise_on: when ``False`` the noise is off: no diffusion, and a jump is replaced by its
            mean, rate·E[Z]·J, added to the drift. ``True`` by default when there is a
            diffusion or a jump. Independent of ``train()``/``eval()`` on purpose: attacks call
            ``eval()`` and must still see the noise. Flip it for a block of code with
            :func:`noise_switch`.

    Raises:
        TypeError: a ``drift``, ``diffusion`` or ``jump`` of the wrong kind (e.g. the name of a
            preset: use :func:`make_sde` for presets by name).
    """

    noise_type = "diagonal"
    sde_type = "ito"

    def __init__(self, drift, diffusion=None, jump: PoissonJump | None = None):
        super().__init__()
        if not callable(drift):
            raise TypeError(f"drift must be a module or callable f(t, y), got "
                            f"{type(drift).__name__}")
        if diffusion is not None and (isinstance(diffusion, str) or not callable(diffusion)):
            hint = (f"; for a preset by name use nl.make_sde(drift, {diffusion!r}, sigma=...)"
                    if isinstance(diffusion, str) else "")
            raise TypeError(f"diffusion must be None or a callable (t, y, fy) -> g such as "
                            f"nl.Additive(0.1), got {diffusion!r}{hint}")
        if jump is not None and not (isinstance(jump, PoissonJump) and callable(
                getattr(jump, "size", None))):
            raise TypeError(f"jump must be None or a jump preset with a size (nl.JumpDropout(p), "
                            f"nl.StochasticDepth(p)), got {jump!r}"
                            + ("; a bare PoissonJump is only the law of the events, it has no "
                               "jump size" if isinstance(jump, PoissonJump) else ""))
        self.drift = drift
        self.diffusion = diffusion
        self.jump = jump
        self.noise_on = diffusion is not None or jump is not None

    def terms(self, t: torch.Tensor, y: torch.Tensor):
        """(f, g, J) at (t, y); ``g``/``J`` are ``None`` where absent or switched off."""
        fy = self.drift(t, y)
        g = jump_size = None
        f = fy
        if self.jump is not None:
            f = self.jump.drift_scale * fy
            jump_size = self.jump.size(t, y, fy)
            if not self.noise_on:  # the jump's mean joins the drift
                f = f + self.jump.rate * self.jump.mean_sign * jump_size
                jump_size = None
        if self.noise_on and self.diffusion is not None:
            g = self.diffusion(t, y, fy)
        return f, g, jump_size

    def g_dg(self, t, y):
        """Milstein's g·∂g/∂y in closed form when the diffusion knows it, else ``None``."""
        closed_form = getattr(self.diffusion, "g_dg", None)
        if not self.noise_on or closed_form is None:
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


@contextmanager
def noise_switch(model, on: bool | None):
    """Set ``model.noise_on`` for the duration of a ``with`` block, then restore it.

    The one switch of every noisy model in the library (:class:`NeuralSDE`,
    :class:`nsde_lib.SDEClassifier`, :class:`nsde_lib.Flow2D`); their ``forward(x, noise_on=...)``
    uses it. ``on=None`` leaves the switch as it is.

    Raises:
        TypeError: the model has no ``noise_on`` switch.
    """
    if not hasattr(model, "noise_on"):
        raise TypeError(f"{type(model).__name__} has no noise_on switch (a NeuralSDE, "
                        "SDEClassifier or Flow2D has one)")
    was = model.noise_on
    if on is not None:
        model.noise_on = bool(on)
    try:
        yield model
    finally:
        model.noise_on = was


class SwitchedBySDE:
    """Mixin for a model whose noise lives in its :class:`NeuralSDE` ``self.sde``: the model's
    ``noise_on`` *is* that SDE's switch, so there is one switch, not two to keep in step."""

    @property
    def noise_on(self) -> bool:
        return self.sde.noise_on

    @noise_on.setter
    def noise_on(self, on: bool) -> None:
        self.sde.noise_on = bool(on)


def make_sde(drift, noise: str = "none", *, sigma: float = 0.0, p: float = 0.0,
             rate: float = 1.0) -> NeuralSDE:
    """A :class:`NeuralSDE` from a preset name.

    Args:
        drift: the drift ``f(t, y)``.
        noise: one of :data:`NOISES`: ``"none"`` (Neural ODE), ``"additive"`` (σ·I),
            ``"multiplicative"`` (σ·y), ``"dropout"`` (Gaussian dropout, sqrt(p/(1−p))·f),
            ``"jump-dropout"`` (eq. 4, per element) or ``"stochastic-depth"`` (eq. 5).
        sigma: diffusion scale σ ≥ 0 (additive, multiplicative).
        p: drop probability in [0, 1) (dropout presets).
        rate: jump intensity λ ≥ 0 (jump presets).
    """
    checks.one_of("noise", noise, NOISES)
    if noise == "jump-dropout":
        return NeuralSDE(drift, jump=JumpDropout(p, rate))
    if noise == "stochastic-depth":
        return NeuralSDE(drift, jump=StochasticDepth(p, rate))
    return NeuralSDE(drift, make_diffusion(noise, sigma=sigma, p=p))
