"""A continuous-depth classifier for 2-D points: y_0 = x, dy = f(t, y) dt + noise, logits = W·y_T.

The state stays 2-D, so every hidden state is a point of the plane and the whole network is a
flow of the point cloud you can watch (chapter 03). The drift is a small time-conditioned MLP;
time enters each layer as a learned bias t·u, so the drift's Lipschitz constant in y does not
depend on t and :func:`nsde_lib.lipschitz_bound` bounds it for every t at once.
"""
from __future__ import annotations

import torch
from torch import nn

from .. import checks
from ..checks import count
from ..sde.neural_sde import SwitchedBySDE, make_sde, noise_switch
from ..sde.solver import METHODS, sdeint

__all__ = ["TimeLinear", "TimeMLP", "Flow2D"]


class TimeLinear(nn.Module):
    """y ↦ W·y + b + t·u: a linear layer whose bias moves with time t."""

    def __init__(self, d_in: int, d_out: int):
        super().__init__()
        self.linear = nn.Linear(d_in, d_out)
        self.time = nn.Parameter(torch.zeros(d_out))

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.linear(y) + t * self.time

    def lipschitz_modules(self) -> list[nn.Module]:
        """The map in y is the linear layer alone (the time term is constant in y)."""
        return [self.linear]


class TimeMLP(nn.Module):
    """The drift f(t, y): ``dim → width → … → dim`` with tanh, each layer time-conditioned.

    Args:
        dim: state dimension (2 for points of the plane).
        width: hidden width.
        depth: number of hidden layers (≥ 1).

    Shapes: ``y`` is ``(B, dim)``, ``t`` a 0-dim tensor; returns ``(B, dim)``.
    """

    def __init__(self, dim: int = 2, width: int = 32, depth: int = 2):
        super().__init__()
        for name, value in (("dim", dim), ("width", width), ("depth", depth)):
            count(name, value)
        sizes = [dim] + [width] * depth + [dim]
        self.layers = nn.ModuleList(TimeLinear(a, b) for a, b in zip(sizes, sizes[1:]))
        self.act = nn.Tanh()

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        z = y
        for layer in self.layers[:-1]:
            z = self.act(layer(t, z))
        return self.layers[-1](t, z)

    def lipschitz_modules(self) -> list[nn.Module]:
        """The layers y goes through, in order (for :func:`nsde_lib.lipschitz_bound`)."""
        out = []
        for layer in self.layers[:-1]:
            out += [layer, self.act]
        return out + [self.layers[-1]]


class Flow2D(SwitchedBySDE, nn.Module):
    """Neural ODE/SDE classifier of 2-D points (paper 000, eq. 3, on the plane).

    Args:
        n_classes: number of classes of the linear readout.
        width, depth: of the drift :class:`TimeMLP`.
        T: horizon of the flow.
        dt: solver step.
        noise, sigma, p, rate: the noise preset (see :func:`nsde_lib.make_sde`); change it later
            with :meth:`set_noise`. ``"none"`` is a Neural ODE.
        method: ``"euler"`` or ``"milstein"``.

    Attributes:
        drift: the :class:`TimeMLP` f(t, y).
        readout: ``nn.Linear(2, n_classes)`` on y_T.
        sde: the :class:`nsde_lib.NeuralSDE` of the current preset (shares the drift).
        noise_on: the noise switch, as on every noisy model (see :func:`nsde_lib.noise_switch`);
            ``forward``/``trajectories`` take ``noise_on=`` to override it for one call.
    """

    def __init__(self, n_classes: int = 2, *, width: int = 32, depth: int = 2, T: float = 1.0,
                 dt: float = 0.1, noise: str = "none", sigma: float = 0.0, p: float = 0.0,
                 rate: float = 1.0, method: str = "euler"):
        super().__init__()
        count("n_classes", n_classes)
        self.T, self.dt = checks.positive("T", T), checks.positive("dt", dt)
        self.method = checks.one_of("method", method, METHODS)
        self.drift = TimeMLP(2, width, depth)
        self.readout = nn.Linear(2, n_classes)
        self.set_noise(noise, sigma=sigma, p=p, rate=rate)

    def set_noise(self, noise: str, *, sigma: float = 0.0, p: float = 0.0,
                  rate: float = 1.0) -> "Flow2D":
        """Choose the noise preset (one of :data:`nsde_lib.NOISES`; its switch starts on);
        returns ``self``."""
        self.__dict__["sde"] = make_sde(self.drift, noise, sigma=sigma, p=p, rate=rate)
        self.noise, self.sigma, self.p, self.rate = noise, float(sigma), float(p), float(rate)
        return self

    def trajectories(self, x: torch.Tensor, ts=None, *, dt: float | None = None,
                     noise_on: bool | None = None, bm: torch.Tensor | None = None,
                     generator: torch.Generator | None = None) -> torch.Tensor:
        """Hidden states at the times ``ts`` (default: every step of [0, T]).

        Args:
            x: points ``(B, 2)``.
            ts: output times in [0, T].
            dt: solver step (default: the model's).
            noise_on: draw the noise (default: the attribute :attr:`noise_on`).
            bm: Brownian increments to share between runs (see :func:`nsde_lib.sdeint`).

        Returns:
            ``(len(ts), B, 2)``.
        """
        checks.tensor("x", x, dim=2, floating=True)
        if x.shape[1] != 2:
            raise ValueError(f"x must be points of the plane, shape (B, 2), got {tuple(x.shape)}")
        dt = self.dt if dt is None else dt
        if ts is None:
            n = max(1, round(self.T / dt))
            ts = torch.linspace(0.0, self.T, n + 1, dtype=x.dtype, device=x.device)
        with noise_switch(self.sde, noise_on):
            return sdeint(self.sde, x, ts, dt=dt, method=self.method, bm=bm,
                          generator=generator)

    def forward(self, x: torch.Tensor, *, dt: float | None = None,
                noise_on: bool | None = None,
                bm: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Logits ``(B, n_classes)`` of the points ``x`` ``(B, 2)``, one pass (noisy when the
        noise is on)."""
        y_T = self.trajectories(x, [0.0, self.T], dt=dt, noise_on=noise_on, bm=bm,
                                generator=generator)[-1]
        return self.readout(y_T)
