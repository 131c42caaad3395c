"""Robustness measured the same way for every model: accuracy under attack, under corruption,
and the hidden-state perturbation over depth (paper 000, §5.2–5.4).

A noisy model is evaluated as it is used: its prediction is the mean softmax of ``K`` noisy
passes (``K = 1``: one pass; the Neural ODE is deterministic). Every function takes a ``seed``
and draws all its randomness (random starts, noise during the attack, noise during the
evaluation) inside ``torch.random.fork_rng``, so a result can be recomputed exactly and the
caller's random stream is left alone.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from .. import checks
from ..models.ensemble import Forward, accuracy
from ..runtime import device_of, forked_rng
from ..sde.brownian import brownian_increments
from .attacks import pgd
from .corruptions import CORRUPTIONS, SEVERITIES, corrupt

__all__ = ["attack_accuracy", "accuracy_vs_eps", "corruption_accuracy", "corruption_table",
           "hidden_state_gap"]


def attack_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *,
                    norm: str = "l2", steps: int = 20, eot: int = 1, objective: str = "loss",
                    K: int = 1, step_size: float | None = None, forward: Forward | None = None,
                    batch_size: int = 400, seed: int = 0, return_adv: bool = False,
                    progress: bool = False):
    """Accuracy of the ``K``-pass prediction on PGD adversarial examples of radius ``eps``.

    The attack (random start and noise draws) is seeded by ``seed``, the evaluation by
    ``seed + 1``. Arguments as :func:`nsde_lib.robust.attacks.pgd` and :func:`accuracy`, except
    ``batch_size``: the most images in one forward pass, the ``eot`` copies included (small
    batches keep the activations in cache). ``progress`` shows a bar over the PGD steps.

    Returns:
        The accuracy, or ``(accuracy, x_adv)`` with ``return_adv``.
    """
    device = device_of(model)
    x, y = x.to(device), y.to(device)
    with forked_rng(seed, device):
        gen = torch.Generator(device=device).manual_seed(seed)
        adv = pgd(model, x, y, eps, norm=norm, steps=steps, step_size=step_size, eot=eot,
                  objective=objective, forward=forward,
                  batch_size=max(1, batch_size // eot), generator=gen,
                  channels_last=device.type == "cuda", progress=progress)
    acc = accuracy(model, adv, y, K=K, forward=forward, batch_size=batch_size, seed=seed + 1)
    return (acc, adv) if return_adv else acc


def accuracy_vs_eps(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: Sequence[float],
                    *, progress: bool = True, desc: str = "PGD", **kwargs) -> list[float]:
    """:func:`attack_accuracy` for each radius in ``eps`` (same seed for all), with a bar.

    ``eps = 0`` is the clean accuracy (no attack).
    """
    from tqdm.auto import tqdm

    eps = [checks.eps(e) for e in eps]
    return [attack_accuracy(model, x, y, e, **kwargs) if e > 0 else
            accuracy(model, x, y, K=kwargs.get("K", 1), forward=kwargs.get("forward"),
                     seed=kwargs.get("seed", 0) + 1)
            for e in tqdm(eps, desc=desc, disable=not progress, leave=False)]


def corruption_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                        names: Sequence[str] = CORRUPTIONS,
                        severities: Sequence[int] = SEVERITIES, K: int = 1,
                        forward: Forward | None = None, batch_size: int = 500, seed: int = 0,
                        progress: bool = True) -> np.ndarray:
    """Accuracy under each corruption and severity: shape ``(len(names), len(severities))``.

    The corrupted images depend only on ``seed``, the corruption and the severity (not on the
    model), so every model sees the very same corrupted test set. Table 2 of paper 000 reports
    the mean over corruptions: ``result.mean(0)``. To evaluate several models, use
    :func:`corruption_table` (each corrupted set is made once).
    """
    table = corruption_table({"model": (model, dict(K=K, forward=forward))}, x, y, names=names,
                             severities=severities, batch_size=batch_size, seed=seed,
                             progress=progress)
    return table["model"]


def corruption_table(predictors: dict, x: torch.Tensor, y: torch.Tensor, *,
                     names: Sequence[str] = CORRUPTIONS, severities: Sequence[int] = SEVERITIES,
                     batch_size: int = 500, seed: int = 0, progress: bool = True) -> dict:
    """:func:`corruption_accuracy` for several predictors on one set of corrupted images.

    Args:
        predictors: ``{label: (model, options)}``; ``options`` go to :func:`accuracy` (``K``,
            ``forward``), e.g. ``{"Dropout+TTN": (model, dict(K=8))}``.

    Returns:
        ``{label: array (len(names), len(severities))}``.
    """
    from tqdm.auto import tqdm

    device = device_of(next(iter(predictors.values()))[0])
    x = x.to(device)
    out = {label: np.zeros((len(names), len(severities))) for label in predictors}
    pairs = [(i, n, j, s) for i, n in enumerate(names) for j, s in enumerate(severities)]
    for i, name, j, severity in tqdm(pairs, desc="corruptions", disable=not progress,
                                     leave=False):
        gen = torch.Generator(device=device).manual_seed(
            seed + 1000 * CORRUPTIONS.index(name) + severity)
        xc = corrupt(x, name, severity, generator=gen)
        for label, (model, options) in predictors.items():
            out[label][i, j] = accuracy(model, xc, y, batch_size=batch_size, seed=seed + 1,
                                        **options)
    return out


@torch.no_grad()
def hidden_state_gap(model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor, *,
                     noise_on: bool | None = None, seed: int = 0,
                     relative: bool = False) -> torch.Tensor:
    """ε_t = ‖y_t(x_adv) − y_t(x)‖ over the block's depth, one shared noise path (Fig. 7).

    Both inputs are integrated with the same Brownian increments (paper 000, eq. 13 assumes
    B_t = B'_t), so ε_t measures the input perturbation, not two different noise draws.

    Args:
        model: a classifier with ``hidden_states(x, noise_on=, bm=)`` and ``brownian_shape(x)``
            (:class:`nsde_lib.SDEClassifier`).
        x, x_adv: clean and perturbed images ``(B, C, H, W)``.
        noise_on: draw the noise (default: the model's attribute ``noise_on``).
        seed: seeds the shared Brownian path.
        relative: divide by ‖y_t(x)‖ (each image) instead of the absolute l2 norm.

    Returns:
        ``(steps + 1, B)``: the l2 norm over (C, H, W) of the difference, per time and image.
    """
    device = device_of(model)
    x, x_adv = x.to(device), x_adv.to(device)
    gen = torch.Generator(device=device).manual_seed(seed)
    dtype = next(model.parameters()).dtype
    bm = brownian_increments(model.times, model.brownian_shape(x)[1:], generator=gen,
                             dtype=dtype, device=device)
    was = model.training
    model.eval()
    try:  # jumps (if any) come from a generator: the same seed gives both the same events
        y = model.hidden_states(x, noise_on=noise_on, bm=bm,      # (steps + 1, B, C, H, W)
                                generator=torch.Generator(device=device).manual_seed(seed + 1))
        y_adv = model.hidden_states(x_adv, noise_on=noise_on, bm=bm,
                                    generator=torch.Generator(device=device).manual_seed(seed + 1))
    finally:
        model.train(was)
    gap = (y_adv - y).flatten(2).norm(dim=2)                     # (steps + 1, B)
    return gap / y.flatten(2).norm(dim=2).clamp_min(1e-12) if relative else gap
