"""Data augmentation on the device, a whole batch at a time (no DataLoader workers).

The reference training pads by 4 pixels, takes a random 32×32 crop and (commonly) flips
horizontally. Here that is one gather per batch: each sample's crop offsets and flip become
row/column indices into the zero-padded batch. Gaussian noise on the pixels (the training of
randomized smoothing, Cohen et al. 2019) can follow; it comes from the library's one noise
source, :func:`nsde_lib.brownian_increments`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import checks
from ..checks import count
from ..sde.brownian import brownian_increments

__all__ = ["random_crop_flip", "AUGMENTS", "make_augment"]

AUGMENTS = ("none", "crop", "crop-flip")


def random_crop_flip(x: torch.Tensor, padding: int = 4, flip: bool = True, *,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Random crop of the zero-padded images and random horizontal flip, per sample.

    Args:
        x: images ``(B, C, H, W)`` on any device.
        padding: zero padding on each side; offsets are uniform in ``0..2·padding``.
        flip: flip each image left–right with probability ½.
        generator: a ``torch.Generator`` on ``x``'s device (global RNG when ``None``).

    Returns:
        Tensor ``(B, C, H, W)`` on ``x``'s device, in channels_last memory layout.

    Raises:
        ValueError: ``x`` is not 4-D or ``padding`` is negative.
    """
    checks.tensor("x", x, dim=4)
    count("padding", padding, low=0)
    B, C, H, W = x.shape
    dev = x.device
    offsets = torch.randint(0, 2 * padding + 1, (2, B), generator=generator, device=dev)
    rows = offsets[0, :, None] + torch.arange(H, device=dev)  # (B, H) rows of the padded image
    cols = offsets[1, :, None] + torch.arange(W, device=dev)  # (B, W)
    if flip:
        flipped = torch.rand(B, generator=generator, device=dev) < 0.5
        cols = torch.where(flipped[:, None], cols.flip(1), cols)  # reversed columns = a mirror
    padded = F.pad(x, (padding,) * 4) if padding else x
    batch = torch.arange(B, device=dev)[:, None, None]
    out = padded[batch, :, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2)


def _pixel_noise(x: torch.Tensor, std: float) -> torch.Tensor:
    """``x + std·ε``, ``ε ~ N(0, I)`` (a Brownian increment over a time std²), not clipped to
    [0, 1]: the smoothed classifier of Cohen et al. sees unclipped noisy images."""
    return x + brownian_increments([0.0, std * std], x.shape, dtype=x.dtype, device=x.device)[0]


def make_augment(kind: str, image_size: int, *, input_noise: float = 0.0):
    """``augment(x) -> x`` for :func:`nsde_lib.fit`: ``"none"``, ``"crop"`` or ``"crop-flip"``,
    then Gaussian noise of std ``input_noise`` on every pixel when ``input_noise > 0`` (the
    name :class:`nsde_lib.RunConfig` gives the same setting).

    Padding is 4 pixels for images up to 32 px (the reference's CIFAR/MNIST setting), 8 above
    (its STL-10 setting). Digits must not be flipped: use ``"crop"`` for MNIST.
    Returns ``None`` when there is nothing to do.
    """
    checks.one_of("augment", kind, AUGMENTS)
    input_noise = checks.non_negative("input_noise (std of the pixel noise)", input_noise)
    crop = None
    if kind != "none":
        padding = 4 if image_size <= 32 else 8
        flip = kind == "crop-flip"
        crop = lambda x: random_crop_flip(x, padding, flip)  # noqa: E731
    if input_noise == 0:
        return crop
    if crop is None:
        return lambda x: _pixel_noise(x, input_noise)
    return lambda x: _pixel_noise(crop(x), input_noise)
