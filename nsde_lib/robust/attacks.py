"""Gradient attacks that stay honest on random models: FGSM, PGD (l∞, l2), EOT.

A model with test-time noise is a random function, so the gradient through one noise draw is
not the gradient of what the model predicts on average. Expectation over Transformation (EOT,
Athalye et al. 2018) averages the gradient over ``eot`` noise draws; ``objective="ensemble"``
goes one step further and differentiates the loss of the averaged prediction itself (the
test-time-noise ensemble of paper 000, §5.1). Each gradient is one forward pass of ``eot·B``
images, so the noise draws cost one batched call, not a Python loop.

The attacks call ``model.eval()`` (and restore the mode afterwards) but never touch the
model's noise switch: the classifiers of this library keep their noise independent of
``training`` on purpose, so the attack sees the same random model that is evaluated.

Inputs are images in the pixel range ``[lower, upper]`` (default [0, 1]); every iterate is
projected onto the ε-ball around the clean image and clamped to that range.
"""
from __future__ import annotations

import math
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from .. import checks
from ..checks import count, positive
from ..models.ensemble import Forward, stack_draws

__all__ = ["fgsm", "pgd", "attack_loss", "input_gradient", "project", "uniform_in_ball",
           "NORMS", "OBJECTIVES"]

NORMS = ("linf", "l2")
OBJECTIVES = ("loss", "ensemble")

# --- argument checks ---------------------------------------------------------------------------

def check_norm(norm) -> str:
    """``"linf"`` or ``"l2"`` (any case; ``"inf"`` is read as ``"linf"``), else ``ValueError``."""
    name = str(norm).lower() if isinstance(norm, str) else norm
    return checks.one_of("norm", "linf" if name == "inf" else name, NORMS)


def _check_inputs(x, y, bounds):
    if not isinstance(x, torch.Tensor) or x.dim() < 2:
        raise ValueError(f"x must be a tensor (B, ...) of images, got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    if not isinstance(y, torch.Tensor) or y.shape != x.shape[:1]:
        raise ValueError(f"y must be a tensor of {x.shape[0]} labels, got "
                         f"{tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__}")
    lower, upper = bounds
    if not lower < upper:
        raise ValueError(f"bounds must be (lower, upper) with lower < upper, got {bounds!r}")
    if x.numel() and (x.min() < lower - 1e-6 or x.max() > upper + 1e-6):
        raise ValueError(f"x must lie in the pixel range {bounds}, got values in "
                         f"[{float(x.min()):.3g}, {float(x.max()):.3g}]")


# --- the pieces of an attack -------------------------------------------------------------------

@contextmanager
def attacking(model: nn.Module):
    """``eval()`` and frozen weights for the duration of an attack; both restored afterwards.

    Freezing the weights saves their gradients (a third of the backward pass): an attack needs
    the gradient with respect to the input only. The noise switch is left alone.
    """
    was_training = model.training
    frozen = [p for p in model.parameters() if p.requires_grad]
    model.eval()
    for p in frozen:
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p in frozen:
            p.requires_grad_(True)
        model.train(was_training)


def _per_sample(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A (B,) tensor shaped to broadcast against ``like`` (B, ...)."""
    return v.view(-1, *([1] * (like.dim() - 1)))


def _l2(v: torch.Tensor) -> torch.Tensor:
    return v.flatten(1).norm(dim=1)


def attack_loss(logits: torch.Tensor, y: torch.Tensor, eot: int = 1,
                objective: str = "loss") -> torch.Tensor:
    """The quantity an attack ascends, summed over the batch.

    Args:
        logits: ``(eot·B, n_classes)``, the ``eot`` noise draws stacked draw by draw
            (rows ``k·B .. k·B + B − 1`` are draw ``k``).
        y: true labels, ``(B,)``.
        eot: number of noise draws K.
        objective: ``"loss"``: the mean over draws of the cross-entropy (its gradient is the
            EOT gradient, the average of the per-draw gradients); ``"ensemble"``: the
            cross-entropy of the averaged prediction, −log((1/K)·Σ_k softmax_k[y]), i.e. the
            loss of the test-time-noise ensemble. Equal when ``eot == 1``.

    Returns:
        A scalar: the sum over the B images (so that per-image gradients do not depend on how
        the images are batched).
    """
    checks.one_of("objective", objective, OBJECTIVES)
    if logits.dtype not in (torch.float32, torch.float64):
        logits = logits.float()  # half-precision logits (autocast): the loss in fp32
    if objective == "loss" or eot == 1:
        return F.cross_entropy(logits, y.repeat(eot), reduction="sum") / eot
    logp = F.log_softmax(logits, dim=1).view(eot, -1, logits.shape[1])  # (K, B, n)
    log_mean = torch.logsumexp(logp, dim=0) - math.log(eot)                      # (B, n)
    return F.nll_loss(log_mean, y, reduction="sum")


def input_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eot: int = 1,
                   objective: str = "loss", forward: Forward | None = None,
                   channels_last: bool = False):
    """∇_x of :func:`attack_loss` at ``x``, with the ``eot`` draws in one forward pass.

    Args:
        model: the classifier (returns logits); its noise, if any, is drawn anew per image.
        x: images ``(B, C, H, W)``. y: labels ``(B,)``.
        eot: noise draws K ≥ 1; the K copies of the batch go through as one ``(K·B, ...)``
            forward. objective: see :func:`attack_loss`.
        forward: ``forward(model, x) -> logits`` instead of ``model(x)``.
        channels_last: hand images ``(B, C, H, W)`` to the model in channels_last layout
            (CPU and GPU convolutions run faster on it; the values are the same).

    Returns:
        ``(loss, grad)``: the per-image losses summed (a float) and the gradient ``(B, ...)``.
    """
    xg = x.detach().requires_grad_(True)
    stacked = stack_draws(xg, eot)  # (K·B, ...): draw k at rows k·B ..
    if channels_last and stacked.dim() == 4:
        stacked = stacked.contiguous(memory_format=torch.channels_last)
    with torch.enable_grad():
        logits = model(stacked) if forward is None else forward(model, stacked)
        loss = attack_loss(logits, y, eot, objective)
        (grad,) = torch.autograd.grad(loss, xg)
    return float(loss.detach()), grad


def project(x_adv: torch.Tensor, x: torch.Tensor, eps: float, norm: str,
            bounds=(0.0, 1.0)) -> torch.Tensor:
    """The nearest point to ``x_adv`` in the ε-ball around ``x`` (per image), then the pixel range.

    l∞: clip δ to [−ε, ε]; l2: scale δ down to norm ε when it is longer. Clamping to the pixel
    range afterwards keeps the point in the ball: it only moves pixels towards ``x``, which
    lies inside the range.
    """
    delta = x_adv - x
    if norm == "linf":
        delta = delta.clamp(-eps, eps)
    else:
        length = _l2(delta)
        factor = torch.where(length > eps, eps / length.clamp_min(1e-30),
                             torch.ones_like(length))
        delta = delta * _per_sample(factor, delta)
    return (x + delta).clamp(*bounds)


def uniform_in_ball(x: torch.Tensor, eps: float, norm: str, *, bounds=(0.0, 1.0),
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """A uniformly random point of the ε-ball around each image, clamped to the pixel range.

    l∞: δ ~ U[−ε, ε] per pixel. l2: a uniform direction times a radius ε·U^(1/d), which is
    uniform in the ball's volume (d = pixels per image).
    """
    if norm == "linf":
        u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        delta = (2 * u - 1) * eps
    else:
        direction = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        direction = direction / _per_sample(_l2(direction).clamp_min(1e-30), x)
        d = x[0].numel()
        radius = eps * torch.rand(x.shape[0], generator=generator, dtype=x.dtype,
                                  device=x.device) ** (1.0 / d)
        delta = direction * _per_sample(radius, x)
    return (x + delta).clamp(*bounds)


def _ascent_step(x_adv, grad, step_size, norm):
    if norm == "linf":
        return x_adv + step_size * grad.sign()
    length = _l2(grad)
    # A zero gradient (a saturated or dead image) gives no direction: stay put, no NaN.
    unit = grad / _per_sample(torch.where(length > 0, length, torch.ones_like(length)), grad)
    return x_adv + step_size * unit


# --- the attacks --------------------------------------------------------------------------------

def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, norm: str = "linf",
        steps: int = 20, step_size: float | None = None,
        random_start: bool | torch.Tensor = True,
        eot: int = 1, objective: str = "loss", forward: Forward | None = None,
        bounds=(0.0, 1.0), batch_size: int | None = None, channels_last: bool = False,
        generator: torch.Generator | None = None, history: list | None = None,
        progress: bool = False) -> torch.Tensor:
    """Projected gradient ascent on the loss inside an ε-ball (Madry et al. 2018).

    Each step moves by ``step_size`` along the gradient's sign (l∞) or its unit direction (l2),
    projects back onto the ball around ``x`` and clamps to the pixel range. With ``eot > 1``
    each gradient averages ``eot`` noise draws (EOT); ``objective="ensemble"`` attacks the
    averaged prediction instead (see :func:`attack_loss`).

    Args:
        model: classifier returning logits; put in ``eval()`` with frozen weights during the
            attack, its noise switch untouched (noise stays on if it was on).
        x: clean images ``(B, C, H, W)`` inside ``bounds``. y: labels ``(B,)``.
        eps: radius ε ≥ 0 of the ball (pixel units; ``0`` returns ``x``).
        norm: ``"linf"`` or ``"l2"``.
        steps: number of gradient steps ≥ 1.
        step_size: length of each step; default ``2.5·eps/steps`` (Madry et al.), enough to
            cross the ball from a corner.
        random_start: start at a uniform point of the ball (:func:`uniform_in_ball`); ``False``
            starts at ``x``; a tensor of ``x``'s shape is used as the starting point (it is
            projected first), e.g. to match another implementation's start.
        eot: noise draws per gradient, K ≥ 1.
        objective: ``"loss"`` or ``"ensemble"`` (:func:`attack_loss`).
        forward: ``forward(model, x) -> logits`` instead of ``model(x)``.
        bounds: the valid pixel range.
        batch_size: attack this many images at a time (memory: each forward holds
            ``eot·batch_size`` images); default all at once.
        channels_last: see :func:`input_gradient`.
        generator: for the random start (the model's noise uses its own source).
        history: a list; when given, the summed loss of each step's gradient is appended
            (one list of ``steps`` floats per batch).
        progress: a tqdm bar over the gradient steps of all batches.

    Returns:
        Adversarial images of ``x``'s shape, detached, inside the ball and the pixel range.

    Raises:
        ValueError: ε < 0, unknown ``norm``/``objective``, ``steps``/``eot`` < 1, a bad
            ``step_size``, ``x`` outside ``bounds``, mismatched ``y``.
    """
    eps, norm = checks.eps(eps), check_norm(norm)
    steps, eot = count("steps", steps), count("eot", eot)
    checks.one_of("objective", objective, OBJECTIVES)
    if step_size is None:
        step_size = 2.5 * eps / steps
    else:
        step_size = positive("step_size", step_size)
    _check_inputs(x, y, bounds)
    start = random_start
    if isinstance(start, torch.Tensor) and start.shape != x.shape:
        raise ValueError(f"random_start as a tensor must have x's shape {tuple(x.shape)}, "
                         f"got {tuple(start.shape)}")
    if batch_size is not None:
        batch_size = count("batch_size", batch_size)
    if eps == 0:
        return x.detach().clone()
    from tqdm.auto import tqdm

    chunk = batch_size or len(x)
    out = []
    bar = tqdm(total=steps * -(-len(x) // chunk), desc=f"PGD-{steps}", disable=not progress,
               leave=False)
    with attacking(model):
        for i in range(0, len(x), chunk):
            xb, yb = x[i:i + chunk].detach(), y[i:i + chunk]
            sb = start[i:i + chunk] if isinstance(start, torch.Tensor) else start
            out.append(_pgd_batch(model, xb, yb, eps, norm, steps, float(step_size), sb, eot,
                                  objective, forward, channels_last, bounds, generator,
                                  history, bar))
    bar.close()
    return torch.cat(out)


def _pgd_batch(model, x, y, eps, norm, steps, step_size, start, eot, objective, forward,
               channels_last, bounds, generator, history, bar):
    if isinstance(start, torch.Tensor):
        x_adv = project(start.to(x), x, eps, norm, bounds)
    elif start:
        x_adv = uniform_in_ball(x, eps, norm, bounds=bounds, generator=generator)
    else:
        x_adv = x.clone()
    losses = []
    for _ in range(steps):
        loss, grad = input_gradient(model, x_adv, y, eot=eot, objective=objective,
                                    forward=forward, channels_last=channels_last)
        losses.append(loss)
        x_adv = project(_ascent_step(x_adv, grad, step_size, norm), x, eps, norm, bounds)
        bar.update()
    if history is not None:
        history.append(losses)
    return x_adv.detach()


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *,
         norm: str = "linf", eot: int = 1, objective: str = "loss",
         forward: Forward | None = None, bounds=(0.0, 1.0),
         batch_size: int | None = None, channels_last: bool = False) -> torch.Tensor:
    """The fast gradient sign method (Goodfellow et al. 2015): one step of length ε from ``x``.

    l∞: x + ε·sign(∇); l2: x + ε·∇/‖∇‖ (the "fast gradient method"). Same arguments as
    :func:`pgd`; it is :func:`pgd` with one step of size ε and no random start.
    """
    eps = checks.eps(eps)
    return pgd(model, x, y, eps, norm=norm, steps=1, step_size=eps if eps > 0 else 1.0,
               random_start=False, eot=eot, objective=objective, forward=forward,
               bounds=bounds, batch_size=batch_size, channels_last=channels_last)
