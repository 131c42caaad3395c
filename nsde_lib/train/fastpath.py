"""The device fast path: how a model runs fast where it trains and is evaluated.

On a GPU it is switched on here, not in the model: channels_last, bf16 autocast (the SDE state,
the noise and the norms stay float32, see :mod:`nsde_lib.models.classifier`), cuDNN autotuning
and optionally ``torch.compile``. On the CPU nothing changes unless bf16 is asked for.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .. import checks
from ..runtime import pick_device
from .config import AMP_MODES

__all__ = ["make_forward", "FastPath", "accelerate", "noise_free"]


def make_forward(device, *, amp: bool = False, channels_last: bool = False,
                 noise_on: bool | None = None):
    """``forward(model, x) -> logits`` for :func:`nsde_lib.fit` / :func:`nsde_lib.evaluate`.

    Args:
        device: the device the model runs on (autocast needs its type).
        amp: bf16 autocast (the classifier keeps its state, noise and norms in float32).
        channels_last: hand the images over in channels_last layout.
        noise_on: passed to the model (``None``: ``model(x)``, i.e. its ``noise_on``; a model
            without noise takes ``None`` only).
    """
    device_type = pick_device(device).type

    def forward(model, x):
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=amp):
            return model(x) if noise_on is None else model(x, noise_on=noise_on)

    return forward


@dataclass
class FastPath:
    """How a model runs on its device (see :func:`accelerate`).

    Attributes:
        forward: ``forward(model, x)`` for training (noise as the model's ``noise_on``).
        test_forward: the same without noise (the "w/o TTN" accuracy).
        amp: bf16 autocast is on.
        channels_last: images and activations use the channels_last layout.
    """

    forward: object
    test_forward: object
    amp: bool
    channels_last: bool


def noise_free(model: nn.Module) -> bool | None:
    """The ``noise_on`` argument of a noise-free pass: ``False`` for a noisy model (one with
    ``noise_on``), ``None`` for a network that has no noise to switch off."""
    return False if hasattr(model, "noise_on") else None


def accelerate(model: nn.Module, device="auto", *, amp: str = "auto",
               compile: bool = False) -> FastPath:
    """Move ``model`` to ``device`` and switch on what makes it fast there (in place).

    On CUDA: channels_last, bf16 autocast (``amp="auto"``), cuDNN autotuning and, with
    ``compile``, ``torch.compile`` (in place: the state dict keeps its keys). On the CPU: nothing
    but the move, unless ``amp="bf16"``.

    Raises:
        ValueError: unknown ``amp`` or device.
    """
    checks.one_of("amp", amp, AMP_MODES)
    device = pick_device(device)
    cuda = device.type == "cuda"
    use_amp = amp == "bf16" or (amp == "auto" and cuda)
    model.to(device)
    if cuda:
        model.to(memory_format=torch.channels_last)
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest conv
    if compile:
        model.compile()
    return FastPath(make_forward(device, amp=use_amp, channels_last=cuda),
                    make_forward(device, amp=use_amp, channels_last=cuda,
                                 noise_on=noise_free(model)),
                    use_amp, cuda)
