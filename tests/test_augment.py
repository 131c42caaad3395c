"""Batch augmentation on the device: every output must be an exact crop (maybe mirrored) of the
zero-padded input, with offsets and flips drawn uniformly."""
import math

import pytest
import torch
import torch.nn.functional as F

from nsde_lib import make_augment, random_crop_flip


def _which_crop(out, img, padding):
    """(dy, dx, flipped) of every crop of the padded ``img`` equal to ``out`` (brute force)."""
    padded = F.pad(img, (padding,) * 4)
    H, W = img.shape[-2:]
    found = []
    for dy in range(2 * padding + 1):
        for dx in range(2 * padding + 1):
            crop = padded[:, dy:dy + H, dx:dx + W]
            for flipped, candidate in ((False, crop), (True, crop.flip(-1))):
                if torch.equal(candidate, out):
                    found.append((dy, dx, flipped))
    return found


def test_each_image_is_one_crop_of_the_padded_input():
    x = torch.rand(64, 3, 6, 5, generator=torch.Generator().manual_seed(0)) + 0.1  # no zeros
    out = random_crop_flip(x, 2, True, generator=torch.Generator().manual_seed(1))
    assert out.shape == x.shape and out.is_contiguous(memory_format=torch.channels_last)
    matches = [_which_crop(o, i, 2) for o, i in zip(out, x)]
    assert all(len(m) == 1 for m in matches)  # positive pixels: the crop is unique
    offsets = {m[0][:2] for m in matches}
    assert len(offsets) > 12  # 25 possible offsets, 64 draws
    assert 16 < sum(m[0][2] for m in matches) < 48  # flips: Binomial(64, ½), ±4 sd


def test_offsets_and_flips_are_uniform():
    n, padding = 20000, 2
    x = torch.arange(5.0).view(1, 1, 1, 5).expand(n, 1, 5, 5) + 1  # each column its own value
    out = random_crop_flip(x, padding, True, generator=torch.Generator().manual_seed(2))
    row = out[:, 0, 2]  # the middle row always comes from a row of the image
    # it is a crop of [0 0 1 2 3 4 5 0 0], maybe mirrored: 10 distinct candidates
    padded = [0, 0, 1, 2, 3, 4, 5, 0, 0]
    crops = [padded[k:k + 5] for k in range(5)]
    candidates = torch.tensor(crops + [c[::-1] for c in crops], dtype=row.dtype)  # (10, 5)
    match = (row[:, None, :] == candidates[None]).all(-1)  # (n, 10)
    assert (match.sum(1) == 1).all()
    which = match.float().argmax(1)
    counts = torch.bincount(which % 5, minlength=5).double()
    expected = n / 5
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 18.5  # chi-square, 4 degrees of freedom, p = 0.001
    flipped = which >= 5
    frac = float(flipped.double().mean())
    assert abs(frac - 0.5) < 4 * math.sqrt(0.25 / n)


def test_no_padding_no_flip_is_the_identity_and_crop_never_flips():
    x = torch.rand(8, 1, 5, 5)
    torch.testing.assert_close(random_crop_flip(x, 0, False), x, rtol=0, atol=0)
    digits = torch.rand(50, 1, 8, 8) + 0.1
    crop = make_augment("crop", 8)(digits)  # padding 4: every crop overlaps the image
    matches = [_which_crop(o, i, 4) for o, i in zip(crop, digits)]
    assert all(len(m) == 1 and not m[0][2] for m in matches)


def test_bad_input():
    with pytest.raises(ValueError, match="padding"):
        random_crop_flip(torch.rand(2, 1, 4, 4), -1)
    with pytest.raises(ValueError, match="x must"):
        random_crop_flip(torch.rand(1, 4, 4))
    with pytest.raises(ValueError, match="augment"):
        make_augment("mixup", 32)
    assert make_augment("none", 32) is None
