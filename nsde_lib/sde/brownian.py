"""Brownian motion: the increments every solver and experiment draws (one source), and the same
increments handed to torchsde as a Brownian object."""
from __future__ import annotations

import math

import torch
import torchsde

from .. import checks

__all__ = ["TabulatedBrownian", "brownian_increments", "gaussian_noise"]


class TabulatedBrownian(torchsde.BaseBrownian):
    """A Brownian path given by its increments on a time grid, for ``torchsde.sdeint(bm=...)``.

    torchsde accumulates its step times (t + dt + dt ...), so its queries miss the grid by a
    rounding error; querying a ``BrownianInterval`` there moves the increments by ~1e-8.
    This path answers each query from the nearest grid points instead, so both solvers see
    exactly the same increments.

    Args:
        grid: the ``n_steps + 1`` step times (:func:`nsde_lib.time_grid`).
        dw: increments, shape ``(n_steps, *state_shape)``.
    """

    __slots__ = ("_grid", "_w")

    def __init__(self, grid, dw: torch.Tensor):
        if len(grid) != dw.shape[0] + 1:
            raise ValueError(f"dw must hold len(grid) - 1 = {len(grid) - 1} increments, "
                             f"got {dw.shape[0]}")
        self._grid = torch.as_tensor(grid, dtype=torch.float64)
        self._w = torch.cat([torch.zeros_like(dw[:1]), dw.cumsum(0)])  # W at each grid time

    def _at(self, t) -> torch.Tensor:
        return self._w[int((self._grid - float(t)).abs().argmin())]

    def __call__(self, ta, tb=None, return_U=False, return_A=False):
        if return_U or return_A:
            raise ValueError("TabulatedBrownian has no Levy area; use euler or milstein")
        return self._at(ta) if tb is None else self._at(tb) - self._at(ta)

    def __repr__(self):
        return f"TabulatedBrownian(steps={len(self._grid) - 1}, shape={tuple(self.shape)})"

    @property
    def dtype(self):
        return self._w.dtype

    @property
    def device(self):
        return self._w.device

    @property
    def shape(self):
        return self._w.shape[1:]

    @property
    def levy_area_approximation(self):
        return "none"


def brownian_increments(grid, shape, *, scalar: bool = False,
                        generator: torch.Generator | None = None, dtype=torch.float64,
                        device=None, channels_last: bool = False) -> torch.Tensor:
    """Brownian increments ΔW ~ N(0, Δt) on the steps of ``grid``: the library's one noise source.

    :func:`nsde_lib.sdeint` draws its increments here, and so does everything that shares one
    noise path between two runs (``sdeint(bm=...)``, :func:`nsde_lib.perturbation`, the
    hidden-state gap of chapter 05). All increments come from one ``torch.randn`` call on the
    target device, scaled by sqrt(Δt) in place.

    Args:
        grid: the ``n_steps + 1`` step times (:func:`nsde_lib.time_grid`), strictly increasing.
        shape: the state's shape ``(B, *state)``.
        scalar: one Brownian motion per *sample*, shared by all its components (m = 1, the
            setting of paper 000's Corollary 4.0.1) instead of one per component (diagonal
            noise, what the solver draws by default).
        generator: seeds the draw (a generator on ``device``).
        dtype, device: of the increments (default float64 on the CPU).
        channels_last: for a state ``(B, C, H, W)`` in channels_last memory layout (the GPU
            path): the increments get that layout too, so every update keeps it.

    Returns:
        ``(n_steps, *shape)``; with ``scalar`` the values repeat along the state dimensions.

    Raises:
        ValueError: fewer than 2 grid times, times not increasing, or ``scalar`` together with
            ``channels_last``.
    """
    steps = [float(b) - float(a) for a, b in zip(grid, list(grid)[1:])]
    if len(steps) < 1 or min(steps) <= 0:
        raise ValueError("grid must hold at least 2 strictly increasing times")
    shape = tuple(int(s) for s in shape)
    draw, order = shape, None
    if scalar and len(shape) > 1:
        if channels_last:
            raise ValueError("scalar Brownian motions have no channels_last layout to keep")
        draw = (shape[0], *([1] * (len(shape) - 1)))
    elif channels_last:
        if len(shape) != 4:
            raise ValueError(f"channels_last needs a state (B, C, H, W), got shape {shape}")
        B, C, H, W = shape
        draw, order = (B, H, W, C), (0, 1, 4, 2, 3)
    z = torch.randn((len(steps), *draw), generator=generator, dtype=dtype, device=device)
    if max(steps) - min(steps) <= 1e-12 * max(steps):  # one step size: scale by a number
        z.mul_(math.sqrt(steps[0]))
    else:
        scale = torch.tensor(steps, dtype=torch.float64).sqrt().to(dtype=dtype, device=z.device)
        z.mul_(scale.view(-1, *([1] * len(draw))))
    if order is not None:
        return z.permute(order)
    return z.expand(len(steps), *shape).contiguous() if draw != shape else z


def gaussian_noise(shape, sigma: float, *, generator: torch.Generator | None = None,
                   dtype=torch.float32, device=None) -> torch.Tensor:
    """σ·N(0, I) of the given shape: the increment of a Brownian motion over a time σ².

    The noise of randomized smoothing and of the state at t = 0 of
    :class:`nsde_lib.SDEClassifier`, drawn by :func:`brownian_increments` (the one source).

    Args:
        shape: of the noise, e.g. ``(B, C, H, W)``.
        sigma: its standard deviation σ > 0.
        generator: seeds the draw; it may live on another device than ``device`` (the noise
            is then drawn there and moved, so one seed gives the same noise everywhere).
        dtype, device: of the result (default float32 on the CPU).

    Raises:
        ValueError: ``sigma`` is not a finite number > 0.
    """
    sigma = checks.positive("sigma", sigma)
    where = generator.device if generator is not None else device
    z = brownian_increments([0.0, sigma * sigma], shape, generator=generator, dtype=dtype,
                            device=where)[0]
    return z if device is None else z.to(device)  # a no-op when already there
