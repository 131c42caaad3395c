"""The test-time-noise ensemble (paper 000, §5.1): a noisy model predicts the mean softmax of K
noisy passes. One implementation serves training-time evaluation, attacks, robustness and the
smoothed classifier.

The K draws of a batch ``(B, ...)`` go through the model as one batch ``(K·B, ...)``: draw k is
rows ``k·B … k·B + B − 1`` (:func:`stack_draws`), so K noise draws cost one batched call, and an
attack that averages its gradient over the same draws (EOT) stacks them the same way. A model
whose noise is off (a Neural ODE, ``noise_on = False``) is deterministic: one pass serves every K.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..checks import count
from ..runtime import device_of, forked_rng
from .classifier import at_least_fp32

__all__ = ["stack_draws", "ensemble_predict", "ensemble_votes", "predict_proba", "accuracy",
           "ensemble_accuracy", "Forward"]

Forward = Callable[[nn.Module, torch.Tensor], torch.Tensor]


def stack_draws(x: torch.Tensor, K: int) -> torch.Tensor:
    """``x`` repeated K times along the batch: ``(K·B, ...)``, draw k at rows ``k·B …``."""
    return x.repeat(K, *([1] * (x.dim() - 1))) if K > 1 else x


def _passes(model, K: int) -> int:
    # a model without a switch (an adaptive solve, a plain network) is run K times all the same
    return K if getattr(model, "noise_on", True) else 1


def _draws(model, x, K, forward):
    """Logits of K noisy copies of ``x`` from one batched call: ``(passes·B, n)``, K, passes."""
    K = count("K", K)
    passes = _passes(model, K)
    stacked = stack_draws(x, passes)
    return (model(stacked) if forward is None else forward(model, stacked)), K, passes


def ensemble_predict(model: nn.Module, x: torch.Tensor, K: int = 1, *,
                     forward: Forward | None = None, running: bool = False) -> torch.Tensor:
    """Mean softmax over ``K`` noisy passes of ``x``: ``(B, num_classes)``.

    Gradients flow through (an attack can differentiate the ensemble itself); wrap the call in
    ``torch.no_grad()`` to evaluate, or use :func:`predict_proba`.

    Args:
        model: a classifier returning logits; its noise follows its own switch (``noise_on``).
        x: inputs ``(B, ...)``.
        K: noisy passes, ≥ 1.
        forward: ``forward(model, x) -> logits`` instead of ``model(x)``.
        running: return ``(K, B, num_classes)`` instead, row k the mean of the first k + 1
            passes (every ensemble size on the same draws).

    Raises:
        ValueError: ``K`` is not an integer >= 1.
    """
    logits, K, passes = _draws(model, x, K, forward)
    probs = F.softmax(at_least_fp32(logits), dim=1).view(passes, len(x), -1)
    if not running:
        return probs.mean(0)
    sizes = torch.arange(1, passes + 1, device=probs.device, dtype=probs.dtype)
    means = probs.cumsum(0) / sizes.view(-1, 1, 1)
    return means if passes == K else means.expand(K, *means.shape[1:])


def ensemble_votes(model: nn.Module, x: torch.Tensor, K: int = 1, *,
                   forward: Forward | None = None) -> torch.Tensor:
    """How often each class is the argmax over ``K`` noisy passes of ``x``: ``(B, num_classes)``
    integer counts summing to K per row (the hard-vote twin of :func:`ensemble_predict`; what a
    smoothed classifier counts, :class:`nsde_lib.Smooth`).

    ``model``, ``x``, ``K`` and ``forward`` are as for :func:`ensemble_predict` (the K draws go
    through as one batch of ``K·B`` rows, :func:`stack_draws`); ``K`` must be an integer ≥ 1.
    """
    logits, K, passes = _draws(model, x, K, forward)
    hits = F.one_hot(logits.argmax(1), logits.shape[1]).view(passes, len(x), -1)  # (K, B, n)
    return hits.sum(0) * (K // passes)


@torch.no_grad()
def predict_proba(model: nn.Module, x: torch.Tensor, *, K: int = 1,
                  forward: Forward | None = None, batch_size: int = 500,
                  seed: int | None = None, channels_last: bool | None = None,
                  running: bool = False, progress: bool = False) -> torch.Tensor:
    """:func:`ensemble_predict` for a whole data set, in ``eval()`` mode, batch by batch.

    Each forward holds at most ``batch_size`` images: ``batch_size // K`` inputs, each repeated
    for the K noise draws. ``channels_last`` (default: on a GPU) hands images over in that
    layout: faster convolutions, same values.

    Args:
        seed: draw the noise from this seed inside ``torch.random.fork_rng`` (the caller's
            random stream is left alone); ``None``: torch's global RNG as it is.
        running: return ``(K, N, num_classes)``, every ensemble size 1..K on the same draws.
        progress: a tqdm bar over the batches.

    Returns:
        ``(N, num_classes)`` (or ``(K, N, num_classes)``), on the model's device.
    """
    from tqdm.auto import tqdm

    K, batch_size = count("K (ensemble size)", K), count("batch_size", batch_size)
    device = device_of(model)
    channels_last = device.type == "cuda" if channels_last is None else channels_last
    chunk = max(1, batch_size // _passes(model, K))
    was = model.training
    model.eval()
    out = []
    try:
        with forked_rng(seed, device):
            for i in tqdm(range(0, len(x), chunk), desc="test-time ensembles", leave=False,
                          disable=not progress):
                xb = x[i:i + chunk].to(device)
                if channels_last and xb.dim() == 4:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                out.append(ensemble_predict(model, xb, K, forward=forward, running=running))
    finally:
        model.train(was)
    return torch.cat(out, dim=1 if running else 0)


def ensemble_accuracy(model: nn.Module, data, Ks: Sequence[int], *,
                      forward: Forward | None = None, batch_size: int = 500,
                      seed: int | None = None, channels_last: bool | None = None,
                      progress: bool = False) -> list[float]:
    """Accuracy of the K-pass ensemble for every K in ``Ks``, from one run of max(K) passes.

    The prediction after k passes is the K = k ensemble, so every K is measured on the same
    draws and the curve over K is not blurred by independent noise.

    Args:
        data: ``(x, y)`` test tensors, moved batch by batch to the model's device.
        Ks: ensemble sizes (integers >= 1).
        forward: ``forward(model, x) -> logits``, e.g. a fast path's forward (bf16,
            channels_last) or one with the noise off (then one pass serves every K).
        batch_size, seed, channels_last, progress: as for :func:`predict_proba`.

    Returns:
        One accuracy in [0, 1] per entry of ``Ks``, in their order.
    """
    Ks = [count("K", k) for k in Ks]
    x, y = data
    probs = predict_proba(model, x, K=max(Ks), forward=forward, batch_size=batch_size,
                          seed=seed, channels_last=channels_last, running=True,
                          progress=progress)                              # (K, N, classes)
    hits = (probs.argmax(2) == y.to(probs.device)).double().mean(1).cpu()  # (K,)
    return [float(hits[k - 1]) for k in Ks]


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, K: int = 1,
             forward: Forward | None = None, batch_size: int = 500, seed: int | None = 0
             ) -> float:
    """Share of ``x`` whose ``K``-pass mean prediction is ``y`` (:func:`predict_proba`), with
    the noise drawn from ``seed`` so the number can be recomputed exactly."""
    return ensemble_accuracy(model, (x, y), [K], forward=forward, batch_size=batch_size,
                             seed=seed)[0]
