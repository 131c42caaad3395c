"""How information travels through an :class:`~nsde_lib.models.resnet.EulerResNet`, measured.

Backwards (paper 003, Prop. 1): the gradient of the loss with respect to each block state,
‖∂L/∂x_n‖, and the bound ‖∂L/∂x_0‖ ≤ ‖∂L/∂x_D‖·(1 − h + h(1 + W)^D), where W bounds the norm of
every block's Jacobian ∂F_i/∂x_i. Forwards (Prop. 2): how far a perturbation of x_0 has moved the
states, ‖x_n^ε − x_n‖, against ε + h·n·W, and against ε·Π_i (1 + h·W_i) with the Jacobian norms W_i
measured at the clean states (:func:`product_bound` of :func:`jacobian_norms`).

What W is here: the spectral norm (largest singular value) of the Jacobian of F_i with respect
to its input, evaluated at the states the batch actually reaches, estimated by power iteration on
JᵀJ with two autograd passes per iteration (never forming J). In training mode BatchNorm couples
the samples of a batch, so J is the Jacobian of the whole batch map ``(B, *state) → (B, *state)``;
that is the operator the batch gradient really flows through. In ``eval()`` mode it is
block-diagonal and the estimate is the largest per-sample norm.

All measurements leave the model as they found it: BatchNorm running statistics are restored and
the train/eval mode is put back.
"""
from __future__ import annotations

import contextlib
import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .. import checks
from ..checks import count, positive
from .lipschitz import local_lipschitz

__all__ = ["state_grad_norms", "jacobian_norms", "prop1_bound", "product_bound", "prop2_bound",
           "perturbation_growth", "block_weight_norms", "WeightNormRecorder", "kept_state"]


@contextlib.contextmanager
def kept_state(model: nn.Module, train: bool):
    """Run in ``train``/eval mode and restore the mode and every buffer (BN statistics) after."""
    buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
    was_training = model.training
    model.train(train)
    try:
        yield model
    finally:
        model.train(was_training)
        with torch.no_grad():
            for name, b in model.named_buffers():
                b.copy_(buffers[name])


def _states(model, x0: torch.Tensor) -> list[torch.Tensor]:
    """x_0, ..., x_D as separate graph nodes (a stacked copy would cut the chain rule)."""
    states = [x0]
    for block in model.blocks:
        states.append(states[-1] + model.h * block(states[-1]))
    return states


def state_grad_norms(model, x: torch.Tensor, y: torch.Tensor, *, train_mode: bool = True,
                     loss_fn=F.cross_entropy) -> torch.Tensor:
    """‖∂L/∂x_n‖ for n = 0..D, the norms of the back-propagated information (eq. 6).

    Args:
        model: an :class:`~nsde_lib.models.resnet.EulerResNet` (uses ``stem``, ``blocks``, ``h``,
            ``head``).
        x: a batch of inputs; y: its labels ``(B,)``.
        train_mode: BatchNorm with batch statistics, as during training (the default).
        loss_fn: ``loss_fn(logits, y)``, the batch-mean cross-entropy by default (what
            :func:`nsde_lib.train.fit` minimises).

    Returns:
        Tensor ``(D + 1,)``: the Frobenius norm over the batch of ∂L/∂x_n; index 0 is ∂L/∂x_0,
        the gradient at the input of the first block, index D the gradient at the head's input.
    """
    with kept_state(model, train_mode), torch.enable_grad():
        x0 = model.stem(x).detach().requires_grad_(True)
        states = _states(model, x0)
        loss = loss_fn(model.head(states[-1]), y)
        grads = torch.autograd.grad(loss, states)
    return torch.stack([g.norm() for g in grads]).detach()


def jacobian_norms(model, x: torch.Tensor, *, n_iter: int = 50, tol: float = 1e-4,
                   train_mode: bool = True, seed: int = 0) -> torch.Tensor:
    """W_i = ‖∂F_i/∂x_i‖₂ at the states the batch reaches, for every block i (Prop. 1's W).

    Args:
        model: an :class:`~nsde_lib.models.resnet.EulerResNet`.
        x: a batch of inputs (the states x_i are computed from it).
        n_iter: most power iterations per block (each costs two backward passes through one
            block); tol: stop a block's iteration once the estimate rises by less than this
            fraction.
        train_mode: BatchNorm with batch statistics (the Jacobian of the whole batch map).
        seed: start vector of the power iteration.

    Returns:
        Tensor ``(D,)`` of spectral-norm estimates (from below; see the module docstring).
    """
    count("n_iter", n_iter)
    generator = torch.Generator().manual_seed(seed)
    with kept_state(model, train_mode):
        with torch.no_grad():
            states = _states(model, model.stem(x))
        norms = [float(local_lipschitz(block, s, n_iter, tol=tol, per_sample=False,
                                       generator=generator))
                 for block, s in zip(model.blocks, states[:-1])]
    return torch.tensor(norms, dtype=torch.float64)


def product_bound(h: float, W: Sequence[float] | torch.Tensor) -> float:
    """Π_i (1 + h·W_i): the chain rule's own bound on ‖∂L/∂x_0‖ / ‖∂L/∂x_D‖.

    From eq. 4, ∂x_{i+1}/∂x_i = I + h·∂F_i/∂x_i, whose norm is at most 1 + h·W_i. Forwards, the
    same product bounds ‖x_D^ε − x_D‖ / ε when every block F_i is W_i-Lipschitz (each step gives
    ‖x_{i+1}^ε − x_{i+1}‖ ≤ (1 + h·W_i)·‖x_i^ε − x_i‖); with Jacobian norms at the clean states
    (:func:`jacobian_norms`, from below) in place of Lipschitz constants it is an estimate that a
    perturbation reaching more stretched states can exceed.
    """
    h = checks.step_factor(h)
    W = torch.as_tensor(W, dtype=torch.float64)
    if (W < 0).any():
        raise ValueError("the Jacobian norms W must be >= 0")
    return float(torch.prod(1 + h * W))


def prop1_bound(h: float, W: float, depth: int) -> float:
    """Paper 003, Prop. 1: ‖∂L/∂x_0‖ ≤ ‖∂L/∂x_D‖·(1 − h + h(1 + W)^D).

    For 0 < h ≤ 1 this is at least :func:`product_bound` with all W_i = W, because (1 + hW)^D is
    convex in h and equals the right-hand side at h = 0 and h = 1. For h > 1 it is *not* a bound
    (the convexity runs the other way): use :func:`product_bound`.

    Args:
        h: step factor (> 0). W: a bound on every block's Jacobian norm (≥ 0). depth: D (≥ 1).

    Returns:
        The factor 1 − h + h(1 + W)^D (``inf`` when it overflows a float).
    """
    h = checks.step_factor(h)
    count("depth", depth)
    W = checks.non_negative("W", W)
    try:
        return 1 - h + h * (1 + W) ** depth
    except OverflowError:
        return math.inf


def prop2_bound(eps: float, h: float, depth: int, W: float) -> float:
    """Paper 003, Prop. 2 (eq. 12): ε_D ≤ ε + h·D·W, where every block satisfies
    ‖F(x_i^ε) − F(x_i)‖ ≤ W and ‖x_0^ε − x_0‖ ≤ ε."""
    h = checks.step_factor(h)
    count("depth", depth, low=0)
    eps, W = checks.eps(eps), checks.non_negative("W", W)
    return eps + h * depth * W


def perturbation_growth(model, x: torch.Tensor, eps: float, *, relative: bool = True,
                        train_mode: bool = False, seed: int = 0) -> dict:
    """Prop. 2 measured: push x_0 by ε in a random direction and follow the gap through the blocks.

    Each sample's first-block input x_0 gets x_0^ε = x_0 + ε_s·u_s with u_s a random unit vector,
    ε_s = ε (``relative=False``) or ε·‖x_0‖ for that sample (``relative=True``, comparable across
    networks whose stems scale differently). Eval mode by default: at test time BatchNorm uses its
    running statistics, so every sample is on its own.

    Returns:
        dict of tensors ``(D + 1,)``: ``gap`` ‖x_n^ε − x_n‖, ``ratio`` gap / ε_s (1 at n = 0),
        ``bound`` ε_s + h·n·W_s with W_s the sample's largest ‖F_i(x_i^ε) − F_i(x_i)‖ over the
        blocks (eq. 12, per sample), and ``bound_ratio`` bound / ε_s, all means over the batch;
        ``ratio_max`` the largest gap / ε_s over the batch. ``bound`` reads its W off the same two
        runs whose gap it bounds, so gap ≤ bound holds by construction (the triangle inequality
        of eq. 11): it shows how loose eq. 12 is, it cannot test it. A bound that can fail takes
        its numbers from elsewhere, e.g. ε_s·:func:`product_bound` of :func:`jacobian_norms`.
    """
    eps = positive("eps", eps)
    generator = torch.Generator().manual_seed(seed)
    with kept_state(model, train_mode), torch.no_grad():
        x0 = model.stem(x)
        u = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)
        u = u / u.flatten(1).norm(dim=1).view(-1, *[1] * (x0.dim() - 1))
        scale = eps * (x0.flatten(1).norm(dim=1) if relative else torch.ones(len(x0)))
        scale = scale.to(x0)
        clean = torch.stack(_states(model, x0))
        noisy = torch.stack(_states(model, x0 + scale.view(-1, *[1] * (x0.dim() - 1)) * u))
    gap = (noisy - clean).flatten(2).norm(dim=2)                      # (D + 1, B)
    step_gap = (noisy.diff(dim=0) - clean.diff(dim=0)).flatten(2).norm(dim=2) / model.h
    W = step_gap.max(dim=0).values                                     # (B,)
    n = torch.arange(len(gap), dtype=gap.dtype, device=gap.device).view(-1, 1)
    bound = scale.view(1, -1) + model.h * n * W.view(1, -1)
    return {"gap": gap.mean(1).cpu(), "ratio": (gap / scale.view(1, -1)).mean(1).cpu(),
            "bound": bound.mean(1).cpu(), "bound_ratio": (bound / scale.view(1, -1)).mean(1).cpu(),
            "ratio_max": (gap / scale.view(1, -1)).max(dim=1).values.cpu()}


def block_weight_norms(model) -> list[float]:
    """Frobenius norm of all the weights of each block (paper 003, Fig. 2's 'weights')."""
    return [float(torch.sqrt(sum(p.detach().pow(2).sum() for p in block.parameters())))
            for block in model.blocks]


class WeightNormRecorder:
    """A ``forward`` for :func:`nsde_lib.train.fit` that also records the blocks' weight norms.

    ``fit(model, ..., forward=rec)`` calls ``rec(model, x)`` once per training iteration, before
    the step: ``rec.norms[k]`` is the list of block weight norms that iteration k started from.
    """

    def __init__(self):
        self.norms: list[list[float]] = []

    def __call__(self, model, x):
        self.norms.append(block_weight_norms(model))
        return model(x)

