"""Fixed-step solvers for drift + diffusion + Poisson-jump SDEs (paper 000, eq. 3).

The SDE object keeps torchsde's contract: ``f(t, y)`` is the drift and ``g(t, y)`` the
diagonal diffusion, both of the shape of ``y``. Two optional extras:

* ``terms(t, y) -> (f, g, J)``: all three at once (``g`` or ``J`` may be ``None``), so that a
  diffusion or jump that depends on the drift (Gaussian dropout, jump dropout) costs one drift
  evaluation per step. :class:`nsde_lib.NeuralSDE` implements it.
* ``jump``: a :class:`nsde_lib.PoissonJump` (rate, sign law, per element or per sample) and
  ``j(t, y)``, the jump size ``J(t, y)`` of the shape of ``y``.

Time grid: ``dt`` is the largest step. Each interval ``[ts[i], ts[i+1]]`` is cut into the fewest
equal steps no longer than ``dt``, so the solver lands on every output time exactly; when the
``ts`` lie on the ``dt`` grid every step is exactly ``dt`` (then the increments agree one for one
with ``torchsde.sdeint(..., dt=dt)``). :func:`time_grid` returns the step times, so a caller who
passes its own Brownian increments knows how many to draw.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from ..checks import one_of, positive, tensor
from .brownian import brownian_increments

__all__ = ["sdeint", "time_grid", "DivergenceError", "METHODS"]

METHODS = ("euler", "milstein")

# While torch.compile traces, a branch on a tensor's value breaks the graph (and syncs with the
# host). The solver then keeps the one check it cannot do without (is the state finite? at the
# end of the solve) and skips the two shortcuts that read tensors early; eager runs take exactly
# the path they always took.
_compiling = getattr(torch.compiler, "is_compiling", None) or torch._dynamo.is_compiling


class DivergenceError(FloatingPointError):
    """The state became NaN or infinite. ``t`` and ``step`` say where (first bad step)."""

    def __init__(self, t: float, step: int):
        self.t, self.step = float(t), int(step)
        super().__init__(
            f"the solution diverged (NaN/Inf) at t={self.t:.6g}, step {self.step}; "
            "try a smaller dt, a smaller noise scale or a smaller step factor")


def as_times(ts) -> list[float]:
    if isinstance(ts, torch.Tensor):
        if ts.dim() != 1:
            raise ValueError(f"ts must be 1-D, got shape {tuple(ts.shape)}")
        ts = ts.detach().cpu().tolist()
    try:
        ts = [float(t) for t in ts]
    except TypeError:
        raise ValueError(f"ts must be a 1-D sequence of times, got {ts!r}") from None
    if len(ts) < 1:
        raise ValueError("ts must hold at least one time")
    if not all(math.isfinite(t) for t in ts):
        raise ValueError(f"ts must be finite, got {ts}")
    if any(b <= a for a, b in zip(ts, ts[1:])):
        raise ValueError(f"ts must be strictly increasing, got {ts}")
    return ts


def time_grid(ts: Sequence[float] | torch.Tensor, dt: float) -> tuple[list[float], list[int]]:
    """Step times of the solver and where the output times fall on them.

    Args:
        ts: output times, strictly increasing, length ``n_out``.
        dt: largest step, ``> 0``.

    Returns:
        ``(grid, index)``: ``grid`` holds the ``n_steps + 1`` times the solver visits, with
        ``grid[index[i]] == ts[i]``. Each interval of ``ts`` is split into
        ``ceil(length / dt)`` equal steps; a slack of a few float32 ulps of the largest time
        (at most 1 % of ``dt``) keeps ``ts`` that lie on the ``dt`` grid, even as float32, at
        one step each.

    Raises:
        ValueError: ``dt <= 0`` or ``ts`` not strictly increasing.
    """
    dt = positive("dt", dt)
    ts = as_times(ts)
    # ts often come as float32 (torch.linspace): a gap meant to be dt can miss it by a few
    # float32 ulps of the largest time. Absorb that rather than add a sliver of a step.
    slack = min(5e-7 * max(1.0, max(abs(t) for t in ts)), 1e-2 * dt)
    grid, index = [ts[0]], [0]
    for a, b in zip(ts, ts[1:]):
        n = max(1, math.ceil((b - a - slack) / dt))
        step = (b - a) / n
        grid.extend(a + step * k for k in range(1, n))
        grid.append(b)
        index.append(len(grid) - 1)
    return grid, index


def _check_shape(name: str, value: torch.Tensor, shape: torch.Size) -> None:
    if not isinstance(value, torch.Tensor) or value.shape != shape:
        got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ValueError(f"the {name} must return a tensor of the state's shape "
                         f"{tuple(shape)}, got {got}")


def _evaluate(sde, t: torch.Tensor, y: torch.Tensor):
    """(f, g, J) at (t, y); g is None for an ODE, J is None without jumps."""
    if hasattr(sde, "terms"):
        return sde.terms(t, y)
    f = sde.f(t, y)
    g = sde.g(t, y) if hasattr(sde, "g") else None
    jump = sde.j(t, y) if getattr(sde, "jump", None) is not None else None
    return f, g, jump


def _milstein_correction(sde, t, y, g, dw, step):
    """½·g·∂g/∂y·(ΔW² − dt) for diagonal noise (g_i depends on y_i only).

    The vector-Jacobian product (∂g/∂y)ᵀ·g equals g_i·∂g_i/∂y_i exactly when the noise is
    diagonal: one backward pass instead of a full Jacobian. When y is not on the graph (the
    first step from a constant y0, or a no-grad simulation) g is evaluated once more on a leaf
    copy of y; with grad enabled the product is still built with ``create_graph``, so the
    diffusion's own parameters get their gradient through it. An SDE whose ``g_dg(t, y)``
    returns the product in closed form skips autograd altogether.
    """
    closed_form = sde.g_dg(t, y) if hasattr(sde, "g_dg") else None
    if closed_form is not None:
        return 0.5 * closed_form * (dw * dw - step)
    # a graph for the correction only when something upstream wants a gradient: the state, or
    # the diffusion's own parameters (g then requires grad even when y does not)
    create = torch.is_grad_enabled() and (y.requires_grad or g.requires_grad)
    with torch.enable_grad():
        if create and y.requires_grad:
            y_, g_ = y, g
        else:
            y_ = y.detach().requires_grad_(True)
            g_ = _evaluate(sde, t, y_)[1]
        if not g_.requires_grad:  # g does not depend on y: the correction vanishes
            return torch.zeros_like(y)
        (gdg,) = torch.autograd.grad(g_, y_, grad_outputs=g_, create_graph=create,
                                     allow_unused=True)
    if gdg is None:
        return torch.zeros_like(y)
    return 0.5 * gdg * (dw * dw - step)


def _channels_last(y: torch.Tensor) -> bool:
    return (y.dim() == 4 and not y.is_contiguous()
            and y.is_contiguous(memory_format=torch.channels_last))


def _check_bm(bm, n_steps, y0):
    shape = (n_steps, *y0.shape)
    if not isinstance(bm, torch.Tensor) or tuple(bm.shape) != shape:
        got = tuple(bm.shape) if isinstance(bm, torch.Tensor) else type(bm).__name__
        raise ValueError(f"bm must hold one Brownian increment per step, shape {shape} "
                         f"(n_steps={n_steps} from time_grid(ts, dt)), got {got}")
    return bm.to(dtype=y0.dtype, device=y0.device)


def _jump_sums(law, n_steps, steps, y0, generator):
    """Per step, the sum of the signs Z over the Poisson(rate·dt) events, (n_steps, *y0.shape).

    Each sample (index 0 of the state) carries its own Poisson clock; the signs are drawn per
    element (dropout) or once per event and sample (stochastic depth). The sum of k signs
    Z = ±1 with P(Z = +1) = 1 − p is 2·Binomial(k, 1 − p) − k.
    """
    batch = y0.shape[0] if y0.dim() > 0 else 1
    rates = law.rate * torch.as_tensor(steps, dtype=torch.float64, device=y0.device)
    counts = torch.poisson(rates.view(-1, 1).expand(n_steps, batch).contiguous(),
                           generator=generator)  # (n_steps, B)
    if y0.dim() == 0:
        counts = counts.view(n_steps)
    elif law.per_sample:
        counts = counts.view(n_steps, batch, *([1] * (y0.dim() - 1)))
    else:
        counts = counts.view(n_steps, batch, *([1] * (y0.dim() - 1))).expand(n_steps, *y0.shape)
    counts = counts.contiguous()
    keep = torch.full_like(counts, 1.0 - law.p)
    plus = torch.binomial(counts, keep, generator=generator)
    return (2 * plus - counts).to(y0.dtype), counts.reshape(n_steps, -1).sum(1)


def sdeint(sde, y0: torch.Tensor, ts, *, dt: float, method: str = "euler",
           bm: torch.Tensor | None = None,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """Integrate dy = f dt + g ⊙ dB + J ⊙ Z dN from ``ts[0]`` and return the states at ``ts``.

    Args:
        sde: object with ``f(t, y)`` and ``g(t, y)`` (torchsde's contract, diagonal noise), or
            ``terms(t, y)``; ``g`` may be missing or return ``None`` (an ODE); optional
            ``jump`` law and ``j(t, y)`` (see the module docstring). ``t`` is a 0-dim tensor.
        y0: initial state of any shape, e.g. ``(B, C, H, W)`` or ``(B, D)``; dimension 0 is the
            sample index for the jump clocks. Never flattened.
        ts: output times, strictly increasing, length ``n_out`` (list or 1-D tensor).
        dt: largest solver step (> 0); see :func:`time_grid`.
        method: ``"euler"`` (Euler–Maruyama; explicit Euler when g = 0, i.e. a ResNet with
            step ``dt``) or ``"milstein"`` (adds ½·g·∂g/∂y·(ΔW² − dt), diagonal noise).
        bm: Brownian increments ``(n_steps, *y0.shape)`` to share one noise path between runs;
            drawn from ``generator`` (or torch's global RNG) when ``None``.
        generator: ``torch.Generator`` for the Brownian increments and jumps.

    Returns:
        Tensor ``(n_out, *y0.shape)``; ``out[0]`` is ``y0``. Gradients flow through by autograd.

    Raises:
        ValueError: bad ``dt``, ``ts``, ``method``, ``bm``, non-finite ``y0`` or terms of the
            wrong shape.
        DivergenceError: the state became NaN/Inf; names the first bad time and step.
    """
    one_of("method", method, METHODS)
    tensor("y0", y0, floating=True)
    # Finiteness of y0 and of each step's state goes into one tensor, read once at the end:
    # on a GPU that is the solve's only host sync. On the CPU, bad input fails at once (under
    # torch.compile at the end, like on a GPU: the early read would break the graph).
    compiling = _compiling()
    finite = torch.empty(1, dtype=torch.bool, device=y0.device)
    finite[0] = torch.isfinite(y0.detach().sum())
    if y0.device.type == "cpu" and not compiling and not finite[0]:
        raise ValueError("y0 holds NaN or Inf values")
    grid, index = time_grid(ts, dt)
    n_steps = len(grid) - 1
    steps = [b - a for a, b in zip(grid, grid[1:])]
    times = torch.tensor(grid, dtype=y0.dtype, device=y0.device)
    out_at = set(index)

    law = getattr(sde, "jump", None)
    jump_sums = jump_counts = None
    if law is not None and law.rate > 0 and n_steps:
        jump_sums, jump_counts = _jump_sums(law, n_steps, steps, y0, generator)
        # one sync, so that steps without events skip the jump; compiled: every step adds its
        # jump term (zero without events) instead of reading the counts on the host
        jump_counts = [1] * n_steps if compiling else jump_counts.tolist()

    dw = _check_bm(bm, n_steps, y0) if bm is not None else None
    outputs, y = [y0], y0
    finite = torch.cat([finite, finite.new_ones(n_steps)])
    for k in range(n_steps):
        t, step = times[k], steps[k]
        f, g, jump = _evaluate(sde, t, y)
        if k == 0:
            _check_shape("drift f(t, y)", f, y.shape)
            if g is not None:
                _check_shape("diffusion g(t, y)", g, y.shape)
            if jump is not None:
                _check_shape("jump size j(t, y)", jump, y.shape)
        y_next = torch.add(y, f, alpha=step)  # fused: one pass over the state per term
        if g is not None:
            if dw is None:  # drawn once, all steps at a time, in y0's memory layout
                dw = brownian_increments(grid, y0.shape, generator=generator, dtype=y0.dtype,
                                         device=y0.device, channels_last=_channels_last(y0))
            y_next = torch.addcmul(y_next, g, dw[k])
            if method == "milstein":
                y_next = y_next + _milstein_correction(sde, t, y, g, dw[k], step)
        if jump is not None and jump_counts is not None and jump_counts[k] > 0:
            y_next = y_next + jump * jump_sums[k]
        y = y_next
        # The sum is non-finite iff an element is (or the sum overflows: a diverged state
        # anyway); one reduction instead of a boolean copy of the state.
        finite[k + 1] = torch.isfinite(y.detach().sum())
        if k + 1 in out_at:
            outputs.append(y)
    if not bool(finite.all()):
        bad = int((~finite).nonzero()[0])
        if bad == 0:
            raise ValueError("y0 holds NaN or Inf values")
        raise DivergenceError(grid[bad], bad)
    return torch.stack(outputs)

