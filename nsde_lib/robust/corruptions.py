"""Common corruptions of CIFAR-10-C (Hendrycks & Dietterich, ICLR 2019), made locally on tensors.

Paper 000's Table 2 tests models trained on clean images against CIFAR-10-C at five severities.
The data set is a download; the recipe is public, so we apply the same corruptions to any batch
of images ``(B, C, H, W)`` in [0, 1], 1-channel (MNIST-5k) or 3-channel (CIFAR-10), on any
device.

The severity constants are the published ones, from ``make_cifar_c.py`` in
github.com/hendrycks/robustness (``ImageNet-C/create_c/make_cifar_c.py``): the list ``c`` of each
corruption, indexed by ``severity - 1``. They were tuned for 32×32 images; on 28×28 MNIST they
are used unchanged (pixel units). The code here is our own: separable convolutions, Pillow's
BOX resampling written as a matrix, and Pillow's JPEG codec (the one the recipe uses). The
published pipeline finally stores uint8 images; these functions return float images (JPEG alone
is quantised, by nature).

Nine of the 15 benchmark corruptions are here (the weather ones need image files or
ImageMagick, glass blur is a per-pixel Python loop, elastic needs OpenCV's affine warp), plus
two of the four extra "validation" corruptions:

====================  ======================================  =============================
name                  what                                     constant per severity 1..5
====================  ======================================  =============================
gaussian_noise        x + N(0, c²)                             c = .04 .06 .08 .09 .10
shot_noise            Poisson(c·x) / c                         c = 500 250 100 75 50
impulse_noise         salt and pepper on a fraction c          c = .01 .02 .03 .05 .07
defocus_blur          disk of radius r, antialiased by σ       (r, σ) = (.3,.4) (.4,.5)
                                                               (.5,.6) (1,.2) (1.5,.1)
zoom_blur             mean of zooms 1, 1.01, ... (n of them)   n = 7 12 16 21 26
contrast              (x − mean)·c + mean                      c = .75 .5 .4 .3 .15
brightness            HSV value + c                            c = .05 .1 .15 .2 .3
pixelate              BOX down to c·size, BOX back up          c = .95 .9 .85 .75 .65
jpeg_compression      JPEG at quality c                        c = 80 65 58 50 40
speckle_noise (extra) x + x·N(0, c²)                           c = .06 .1 .12 .16 .2
gaussian_blur (extra) Gaussian filter of std c (pixels)        c = .4 .6 .7 .8 1
====================  ======================================  =============================

Every result is clipped to [0, 1], as the published code does.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["corrupt", "corrupt_all", "CORRUPTIONS", "SEVERITIES", "severity_constant",
           "pil_box_matrix", "defocus_kernel", "gaussian_kernel1d"]

SEVERITIES = (1, 2, 3, 4, 5)

# The published constants (make_cifar_c.py, hendrycks/robustness), index = severity − 1.
_CONSTANTS = {
    "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),
    "shot_noise": (500, 250, 100, 75, 50),
    "impulse_noise": (0.01, 0.02, 0.03, 0.05, 0.07),
    "defocus_blur": ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),
    # np.arange(1, c, 0.01) with c = 1.06, 1.11, 1.16, 1.21, 1.26 yields 7, 12, 16, 21, 26
    # factors (floating-point rounding keeps the end point in the first two only).
    "zoom_blur": (7, 12, 16, 21, 26),
    "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),
    "brightness": (0.05, 0.1, 0.15, 0.2, 0.3),
    "pixelate": (0.95, 0.9, 0.85, 0.75, 0.65),
    "jpeg_compression": (80, 65, 58, 50, 40),
    "speckle_noise": (0.06, 0.10, 0.12, 0.16, 0.20),
    "gaussian_blur": (0.4, 0.6, 0.7, 0.8, 1.0),
}

CORRUPTIONS = tuple(_CONSTANTS)


def severity_constant(name: str, severity: int):
    """The published constant of corruption ``name`` at ``severity`` (1–5)."""
    _check(name, severity)
    return _CONSTANTS[name][severity - 1]


def _check(name, severity):
    if name not in _CONSTANTS:
        raise ValueError(f"corruption must be one of {CORRUPTIONS}, got {name!r}")
    if isinstance(severity, bool) or not isinstance(severity, int) \
            or severity not in SEVERITIES:
        raise ValueError(f"severity must be an integer in 1..5, got {severity!r}")


def _check_images(x):
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] not in (1, 3):
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be images (B, C, H, W) with C = 1 or 3, got {shape}")
    if not x.is_floating_point():
        raise ValueError(f"x must be a float tensor in [0, 1], got dtype {x.dtype}")
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError("x must lie in [0, 1]")


# --- noise -------------------------------------------------------------------------------------

def _gaussian_noise(x, c, gen):
    return x + c * torch.randn(x.shape, generator=gen, dtype=x.dtype, device=x.device)


def _shot_noise(x, c, gen):
    # c photons per unit intensity: the count is Poisson(c·x), the image its rescaled count.
    return torch.poisson(x * c, generator=gen) / c


def _impulse_noise(x, c, gen):
    # scikit-image's "s&p": each value is hit with probability c, then set to 1 or 0 (½ each).
    hit = torch.rand(x.shape, generator=gen, dtype=x.dtype, device=x.device) < c
    salt = torch.rand(x.shape, generator=gen, dtype=x.dtype, device=x.device) < 0.5
    return torch.where(hit, salt.to(x.dtype), x)


def _speckle_noise(x, c, gen):
    return x + x * c * torch.randn(x.shape, generator=gen, dtype=x.dtype, device=x.device)


# --- blur --------------------------------------------------------------------------------------

def gaussian_kernel1d(sigma: float, truncate: float = 4.0) -> torch.Tensor:
    """scipy.ndimage's Gaussian weights: radius ``int(truncate·σ + ½)``, summing to 1 (float64)."""
    radius = int(truncate * sigma + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    w = torch.exp(-0.5 * (t / sigma) ** 2)
    return w / w.sum()


def _filter2d(x, kernel, padding_mode):
    """Correlate each channel with a 2-D kernel (kh, kw), same size out, border ``padding_mode``."""
    kh, kw = kernel.shape
    c = x.shape[1]
    padded = F.pad(x, (kw // 2, kw // 2, kh // 2, kh // 2), mode=padding_mode)
    weight = kernel.to(x).expand(c, 1, kh, kw)
    return F.conv2d(padded, weight, groups=c)


def _gaussian_blur(x, sigma, gen):
    # scikit-image's gaussian(): scipy's gaussian_filter, mode "nearest" (replicate), truncate 4.
    w = gaussian_kernel1d(sigma)
    return _filter2d(_filter2d(x, w.view(1, -1), "replicate"), w.view(-1, 1), "replicate")


def defocus_kernel(radius: float, alias_blur: float) -> torch.Tensor:
    """The defocus "disk" of make_cifar_c.py, cropped to its non-zero support (float64).

    A 17×17 indicator of x² + y² ≤ r², normalised, then smoothed by OpenCV's 3×3 Gaussian of
    std ``alias_blur`` (weights exp(−k²/2σ²), k = −1, 0, 1, normalised).
    """
    grid = torch.arange(-8, 9, dtype=torch.float64)
    yy, xx = torch.meshgrid(grid, grid, indexing="ij")
    disk = ((xx ** 2 + yy ** 2) <= radius ** 2).to(torch.float64)
    disk = disk / disk.sum()
    g = torch.exp(-torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64) / (2 * alias_blur ** 2))
    g = g / g.sum()
    smooth = F.conv2d(disk.view(1, 1, 17, 17), (g.view(-1, 1) * g.view(1, -1)).view(1, 1, 3, 3),
                      padding=1)[0, 0]
    rows = smooth.abs().sum(1).nonzero()
    cols = smooth.abs().sum(0).nonzero()
    r0, r1 = int(rows.min()), int(rows.max())
    c0, c1 = int(cols.min()), int(cols.max())
    half = max(8 - r0, r1 - 8, 8 - c0, c1 - 8)  # symmetric crop keeps the centre
    return smooth[8 - half:9 + half, 8 - half:9 + half]


def _defocus_blur(x, c, gen):
    # OpenCV's filter2D default border is BORDER_REFLECT_101, torch's "reflect".
    return _filter2d(x, defocus_kernel(*c), "reflect")


def _clipped_zoom(x, factor):
    """Zoom the centre of each image by ``factor`` (bilinear) and crop back to the same size."""
    h, w = x.shape[-2:]
    ch, cw = math.ceil(h / factor), math.ceil(w / factor)
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = x[..., top:top + ch, left:left + cw]
    # scipy.ndimage.zoom(order=1) maps corners to corners: bilinear with align_corners=True.
    size = (round(ch * factor), round(cw * factor))
    zoomed = F.interpolate(crop, size=size, mode="bilinear", align_corners=True)
    t, l = (size[0] - h) // 2, (size[1] - w) // 2
    return zoomed[..., t:t + h, l:l + w]


def _zoom_blur(x, n, gen):
    total = torch.zeros_like(x)
    for k in range(n):
        total = total + _clipped_zoom(x, 1.0 + 0.01 * k)
    return (x + total) / (n + 1)


# --- photometric and digital ---------------------------------------------------------------------

def _contrast(x, c, gen):
    mean = x.mean(dim=(2, 3), keepdim=True)  # per image and channel
    return (x - mean) * c + mean


def _brightness(x, c, gen):
    # Adding c to the HSV value V = max over channels keeps hue and saturation: every channel
    # scales by V'/V (a black pixel, V = 0, becomes grey V'). On one channel: x + c.
    value = x.amax(dim=1, keepdim=True)
    new = (value + c).clamp(max=1.0)
    scaled = x * (new / value.clamp_min(1e-12))
    return torch.where(value > 0, scaled, new.expand_as(x))


def pil_box_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """Pillow's BOX resampling along one axis as an ``(n_out, n_in)`` matrix (float64).

    Pillow weighs input pixel j for output pixel i by box((j + ½ − c)/s), c = (i + ½)·n_in/n_out
    the source centre, s = max(n_in/n_out, 1) the filter scale, box(t) = 1 on (−½, ½]; each
    row is normalised. Downsizing averages the pixels whose centres fall in the output pixel;
    upsizing copies the nearest.
    """
    scale = n_in / n_out
    filterscale = max(scale, 1.0)
    support = 0.5 * filterscale
    m = torch.zeros(n_out, n_in, dtype=torch.float64)
    for i in range(n_out):
        centre = (i + 0.5) * scale
        lo = max(int(centre - support + 0.5), 0)
        hi = min(int(centre + support + 0.5), n_in)
        for j in range(lo, hi):
            t = (j - centre + 0.5) / filterscale
            m[i, j] = 1.0 if -0.5 < t <= 0.5 else 0.0
        m[i] /= m[i].sum()
    return m


def _resize_box(x, size):
    rows = pil_box_matrix(x.shape[-2], size[0]).to(x)
    cols = pil_box_matrix(x.shape[-1], size[1]).to(x)
    return torch.einsum("ih,bchw,jw->bcij", rows, x, cols)


def _pixelate(x, c, gen):
    h, w = x.shape[-2:]
    return _resize_box(_resize_box(x, (int(h * c), int(w * c))), (h, w))


def _jpeg(x, quality, gen):
    # Pillow's codec, as make_cifar_c.py uses; it takes 8-bit images, one at a time.
    import io

    import numpy as np
    from PIL import Image

    images = (x.detach().cpu().double() * 255).round().to(torch.uint8).numpy()
    out = np.empty(images.shape, dtype=np.uint8)
    for i, img in enumerate(images):
        rgb = img.shape[0] == 3
        buf = io.BytesIO()
        Image.fromarray(img.transpose(1, 2, 0) if rgb else img[0]).save(buf, "JPEG",
                                                                          quality=quality)
        decoded = np.asarray(Image.open(buf))
        out[i] = decoded.transpose(2, 0, 1) if rgb else decoded[None]
    return torch.from_numpy(out).to(device=x.device, dtype=x.dtype) / 255


_FUNCTIONS = {
    "gaussian_noise": _gaussian_noise, "shot_noise": _shot_noise,
    "impulse_noise": _impulse_noise, "defocus_blur": _defocus_blur, "zoom_blur": _zoom_blur,
    "contrast": _contrast, "brightness": _brightness, "pixelate": _pixelate,
    "jpeg_compression": _jpeg, "speckle_noise": _speckle_noise, "gaussian_blur": _gaussian_blur,
}


def corrupt(x: torch.Tensor, name: str, severity: int, *,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """Apply corruption ``name`` at ``severity`` to a batch of images.

    Args:
        x: images ``(B, C, H, W)``, C = 1 or 3, float in [0, 1], on any device.
        name: one of :data:`CORRUPTIONS`.
        severity: 1 (mild) to 5 (severe).
        generator: ``torch.Generator`` (on ``x``'s device) for the random corruptions; the
            same seed gives the same corrupted images.

    Returns:
        Corrupted images of ``x``'s shape, dtype and device, in [0, 1].

    Raises:
        ValueError: unknown ``name``, ``severity`` outside 1..5, ``x`` not images in [0, 1].
    """
    _check(name, severity)
    _check_images(x)
    out = _FUNCTIONS[name](x, _CONSTANTS[name][severity - 1], generator)
    return out.clamp(0.0, 1.0)


def corrupt_all(x: torch.Tensor, names=CORRUPTIONS, severities=SEVERITIES, *, seed: int = 0):
    """Yield ``(name, severity, corrupted x)`` for every pair, each seeded from ``seed``.

    Each pair gets its own generator seeded from ``seed``, the corruption's place in
    :data:`CORRUPTIONS` and the severity, so any one entry can be recreated alone.
    """
    for name in names:
        for severity in severities:
            _check(name, severity)
            index = CORRUPTIONS.index(name)
            gen = torch.Generator(device=x.device).manual_seed(seed + 1000 * index + severity)
            yield name, severity, corrupt(x, name, severity, generator=gen)
