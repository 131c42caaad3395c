"""Poisson jumps: the jump term J(y, t) ⊙ Z dN of paper 000 (eq. 3; the paper writes the state
as h_t) and its presets.

A jump law says how often events come (``rate`` λ, per unit time, one clock per sample), which
sign they take (Z = −1 with probability ``p``, else +1) and whether one sign is drawn per element
(dropout, eq. 4) or per sample (stochastic depth, eq. 5). The solver draws the events; a jump
preset also says how large each one is, ``size(t, y, fy)``, given the drift value ``fy``.
"""
from __future__ import annotations

import torch

from .. import checks

__all__ = ["PoissonJump", "JumpDropout", "StochasticDepth",
           "dropout_block", "jump_rewrite_block", "poisson_events", "counting_paths",
           "compound_poisson_moments", "dropout_block_moments"]


class PoissonJump:
    """Law of a compound Poisson jump: events at ``rate``; signs ±1 with P(Z = −1) = ``p``.

    Args:
        rate: intensity λ ≥ 0 (events per unit time, per sample).
        p: probability of the sign −1, in [0, 1).
        per_sample: one sign per event and sample (stochastic depth) instead of per element.
    """

    drift_scale = 1.0

    def __init__(self, rate: float, p: float = 0.5, per_sample: bool = False):
        self.rate, self.p = checks.rate(rate), checks.probability(p)
        self.per_sample = bool(per_sample)

    @property
    def mean_sign(self) -> float:
        """E[Z] = (1 − p) − p."""
        return 1.0 - 2.0 * self.p

    def __repr__(self):
        return (f"{type(self).__name__}(rate={self.rate}, p={self.p}, "
                f"per_sample={self.per_sample})")


class JumpDropout(PoissonJump):
    """Dropout as a jump (eqs. 4–5): drift ½·f, jumps of size ½·f ⊙ Z.

    The paper writes eq. (4) as h_t + ½f + 2f ⊙ Z (its state h_t is our y); expanding f ⊙ γ with
    Z = 2γ − 1 gives y + ½f + ½f ⊙ Z, which is what a block with γ ~ Bernoulli(1 − p) computes.
    With one event per unit time (``rate=1``) the expected change per unit time is (1 − p)·f, the
    mean of the discrete dropout block.
    """

    drift_scale = 0.5

    def __init__(self, p: float, rate: float = 1.0, per_sample: bool = False):
        super().__init__(rate, p, per_sample)

    def size(self, t, y: torch.Tensor, fy: torch.Tensor) -> torch.Tensor:
        return 0.5 * fy


class StochasticDepth(JumpDropout):
    """Stochastic depth as a jump (eq. 5): the whole residual is kept or dropped per sample."""

    def __init__(self, p: float, rate: float = 1.0):
        super().__init__(p, rate, per_sample=True)


def _bernoulli_keep(shape, p, like, generator):
    return (torch.rand(shape, generator=generator, dtype=like.dtype, device=like.device)
            >= p).to(like.dtype)


def dropout_block(y: torch.Tensor, fy: torch.Tensor, p: float, *, per_sample: bool = False,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """The discrete block of Fig. 2: y + f ⊙ γ with γ ~ Bernoulli(1 − p), shapes as ``y``."""
    shape = (y.shape[0],) + (1,) * (y.dim() - 1) if per_sample else y.shape
    return y + fy * _bernoulli_keep(shape, checks.probability(p), y, generator)


def jump_rewrite_block(y: torch.Tensor, fy: torch.Tensor, p: float, *, per_sample: bool = False,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """The same block written as drift + jump (eq. 4): y + ½f + ½f ⊙ Z, Z = 2γ − 1."""
    shape = (y.shape[0],) + (1,) * (y.dim() - 1) if per_sample else y.shape
    z = 2 * _bernoulli_keep(shape, checks.probability(p), y, generator) - 1
    return y + 0.5 * fy + 0.5 * fy * z


def poisson_events(rate: float, T: float, n_paths: int, *,
                   generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """Event times of ``n_paths`` Poisson processes on [0, T].

    Draws N ~ Poisson(λT) per path, then N uniform times, sorted: the order statistics
    property of the Poisson process.

    Returns:
        list of ``n_paths`` 1-D float64 tensors of increasing event times.
    """
    rate, T = checks.rate(rate), checks.positive("T", T)
    n_paths = checks.count("n_paths", n_paths)
    counts = torch.poisson(torch.full((n_paths,), rate * T, dtype=torch.float64),
                           generator=generator).long()
    times = torch.rand(int(counts.sum()), generator=generator, dtype=torch.float64) * T
    # One sort for all paths instead of one per path (a slider redraws thousands of paths): the
    # key path·2T + t orders by path, then by time, since every t lies in [0, T).
    path = torch.repeat_interleave(torch.arange(n_paths, dtype=torch.float64), counts)
    order = (path * (2 * T) + times).argsort()
    return list(times[order].split(counts.tolist()))


def counting_paths(events: list[torch.Tensor], ts: torch.Tensor) -> torch.Tensor:
    """N_t on the grid ``ts`` for each path of ``events``: shape ``(len(ts), n_paths)``."""
    return torch.stack([torch.searchsorted(e, ts, right=True) for e in events], dim=1)


def compound_poisson_moments(rate: float, T: float, size: float, p: float) -> tuple[float, float]:
    """Mean and variance of Σ_{k ≤ N_T} size·Z_k, N_T ~ Poisson(λT), Z = ±1, P(Z = −1) = p.

    Wald's identities: mean λT·size·E[Z] = λT·size·(1 − 2p); variance λT·size²·E[Z²] = λT·size²
    (it does not depend on p: even with p = 0 the number of events is random).
    """
    rate, p = checks.rate(rate), checks.probability(p)
    T = checks.positive("T", T)
    return rate * T * size * (1 - 2 * p), rate * T * size ** 2


def dropout_block_moments(fy: float, p: float) -> tuple[float, float]:
    """Mean and variance of the change f·γ made by a dropout block, γ ~ Bernoulli(1 − p)."""
    p = checks.probability(p)
    return (1 - p) * fy, p * (1 - p) * fy ** 2
