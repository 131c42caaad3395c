"""Brownian increments the two solvers can share: ours as a tensor, torchsde's as an object."""
from __future__ import annotations

import torch
import torchsde

__all__ = ["TabulatedBrownian", "brownian_increments"]


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
                        device=None) -> torch.Tensor:
    """Brownian increments ΔW ~ N(0, Δt) on the steps of ``grid``, for ``sdeint(bm=...)``.

    Args:
        grid: the ``n_steps + 1`` step times (:func:`nsde_lib.time_grid`).
        shape: the state's shape ``(B, *state)``.
        scalar: one Brownian motion per *sample*, shared by all its components (m = 1, the
            setting of paper 000's Corollary 4.0.1) instead of one per component (diagonal
            noise, what the solver draws by default).
        generator: seeds the draw.

    Returns:
        ``(n_steps, *shape)``; with ``scalar`` the values repeat along the state dimensions.
    """
    steps = torch.as_tensor(grid, dtype=torch.float64).diff()
    if len(steps) < 1 or (steps <= 0).any():
        raise ValueError("grid must hold at least 2 strictly increasing times")
    shape = tuple(int(s) for s in shape)
    draw = (shape[0], *([1] * (len(shape) - 1))) if scalar and len(shape) > 1 else shape
    z = torch.randn((len(steps), *draw), generator=generator, dtype=dtype)
    dw = z * steps.sqrt().to(dtype).view(-1, *([1] * len(draw)))
    dw = dw.expand(len(steps), *shape).contiguous()
    return dw if device is None else dw.to(device)
