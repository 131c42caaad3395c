"""The CIFAR-10-C corruptions against independent implementations (Pillow, SciPy, colorsys,
torchvision's JPEG codec), their statistics, and what a benchmark needs: shapes, ranges,
determinism, and damage that grows with the severity."""
import colorsys
import warnings

import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.signal
import torch
from PIL import Image

from nsde_lib.robust import corruptions as C
from nsde_lib import mnist5k


@pytest.fixture(scope="module")
def digits():
    """16 real MNIST-5k test digits, (16, 1, 28, 28) float64 in [0, 1]."""
    _, (x, _) = mnist5k()
    return x[:16].double()


@pytest.fixture(scope="module")
def photos():
    """8 smooth random colour images (16, 3, 32, 32) in [0, 1]: CIFAR-shaped, with structure."""
    rng = np.random.default_rng(0)
    x = ndi.gaussian_filter(rng.random((8, 3, 32, 32)), (0, 0, 2, 2))
    lo, hi = x.min(axis=(1, 2, 3), keepdims=True), x.max(axis=(1, 2, 3), keepdims=True)
    return torch.tensor((x - lo) / (hi - lo))


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


# --- the published constants and the interface ---------------------------------------------------

def test_constants_are_the_published_ones():
    """Spot checks against make_cifar_c.py (hendrycks/robustness)."""
    assert C.severity_constant("gaussian_noise", 1) == 0.04
    assert C.severity_constant("shot_noise", 5) == 50
    assert C.severity_constant("defocus_blur", 4) == (1, 0.2)
    assert C.severity_constant("jpeg_compression", 3) == 58
    assert C.severity_constant("pixelate", 5) == 0.65
    assert C.severity_constant("contrast", 5) == 0.15
    # zoom factors: what np.arange(1, c, 0.01) yields for the published end points
    for sev, end in zip(C.SEVERITIES, (1.06, 1.11, 1.16, 1.21, 1.26)):
        assert C.severity_constant("zoom_blur", sev) == len(np.arange(1, end, 0.01))
    assert len(C.CORRUPTIONS) >= 8


@pytest.mark.parametrize("bad", [0, 6, -1, 2.0, True, "3"])
def test_severity_outside_1_to_5_is_refused(digits, bad):
    with pytest.raises(ValueError, match="severity"):
        C.corrupt(digits, "contrast", bad)


def test_unknown_corruption_and_bad_images_are_refused(digits):
    with pytest.raises(ValueError, match="corruption must be one of"):
        C.corrupt(digits, "fog", 1)
    with pytest.raises(ValueError, match="x must"):
        C.corrupt(digits[:, 0], "contrast", 1)            # no channel axis
    with pytest.raises(ValueError, match="x must"):
        C.corrupt(digits * 2, "contrast", 1)              # outside [0, 1]
    with pytest.raises(ValueError, match="x must"):
        C.corrupt((digits * 255).to(torch.uint8), "contrast", 1)


@pytest.mark.parametrize("name", C.CORRUPTIONS)
def test_shape_range_dtype_and_determinism(digits, photos, name):
    for x in (digits, photos.float()):
        a = C.corrupt(x, name, 3, generator=_gen(1))
        b = C.corrupt(x, name, 3, generator=_gen(1))
        assert a.shape == x.shape and a.dtype == x.dtype
        assert a.min() >= 0 and a.max() <= 1
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("name", C.CORRUPTIONS)
def test_damage_grows_with_severity(digits, photos, name):
    """Mean distance to the clean images rises strictly from severity 1 to 5, same seed."""
    for x in (digits, photos):
        dist = [float((C.corrupt(x, name, s, generator=_gen(2)) - x).abs().mean())
                for s in C.SEVERITIES]
        assert all(b > a for a, b in zip(dist, dist[1:])), (name, dist)
        assert dist[0] > 0


def test_noise_corruptions_differ_between_seeds_and_blurs_do_not_use_the_generator(digits):
    a = C.corrupt(digits, "gaussian_noise", 2, generator=_gen(1))
    b = C.corrupt(digits, "gaussian_noise", 2, generator=_gen(2))
    assert not torch.equal(a, b)
    torch.testing.assert_close(C.corrupt(digits, "defocus_blur", 2, generator=_gen(1)),
                               C.corrupt(digits, "defocus_blur", 2, generator=_gen(2)))


def test_corrupt_all_recreates_any_single_entry(digits):
    entries = list(C.corrupt_all(digits[:4], names=("shot_noise", "contrast"), seed=3))
    assert [(n, s) for n, s, _ in entries] == [(n, s) for n in ("shot_noise", "contrast")
                                               for s in C.SEVERITIES]
    again = dict(((n, s), x) for n, s, x in C.corrupt_all(digits[:4], names=("shot_noise",),
                                                          seed=3))
    torch.testing.assert_close(again[("shot_noise", 4)], entries[3][2], rtol=0, atol=0)


# --- independent implementations -----------------------------------------------------------------

@pytest.mark.parametrize("severity", C.SEVERITIES)
def test_jpeg_matches_torchvisions_codec(digits, photos, severity):
    """Pillow (ours, as in make_cifar_c.py) and torchvision's libjpeg give the same images."""
    io_ = pytest.importorskip("torchvision.io")
    quality = C.severity_constant("jpeg_compression", severity)
    for x in (digits, photos):
        ours = C.corrupt(x, "jpeg_compression", severity)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torchvision >= 0.29
            images = list((x * 255).round().to(torch.uint8))
            ref = torch.stack(io_.decode_jpeg(io_.encode_jpeg(images, quality=quality)))
        assert (ours - ref.double() / 255).abs().max() <= 1.5 / 255


@pytest.mark.parametrize("severity", C.SEVERITIES)
def test_pixelate_matches_pillow_box_resampling(digits, photos, severity):
    c = C.severity_constant("pixelate", severity)
    for x in (digits, photos):
        h = x.shape[-1]
        ours = C.corrupt(x, "pixelate", severity)
        ref = np.empty(x.shape, dtype=np.float64)
        for b in range(x.shape[0]):
            for ch in range(x.shape[1]):
                im = Image.fromarray(x[b, ch].numpy().astype(np.float32), mode="F")
                im = im.resize((int(h * c), int(h * c)), Image.BOX).resize((h, h), Image.BOX)
                ref[b, ch] = np.asarray(im)
        np.testing.assert_allclose(ours.numpy(), ref, atol=2e-6)


@pytest.mark.parametrize("severity", C.SEVERITIES)
def test_gaussian_blur_matches_scipy(photos, severity):
    sigma = C.severity_constant("gaussian_blur", severity)
    ref = ndi.gaussian_filter(photos.numpy(), sigma=(0, 0, sigma, sigma), mode="nearest",
                              truncate=4.0)
    np.testing.assert_allclose(C.corrupt(photos, "gaussian_blur", severity).numpy(),
                               np.clip(ref, 0, 1), atol=1e-12)


@pytest.mark.parametrize("severity", C.SEVERITIES)
def test_defocus_blur_matches_a_hand_built_disk_and_scipy_correlation(photos, severity):
    radius, alias = C.severity_constant("defocus_blur", severity)
    grid = np.arange(-8, 9)
    xx, yy = np.meshgrid(grid, grid)
    disk = ((xx ** 2 + yy ** 2) <= radius ** 2).astype(np.float64)
    disk /= disk.sum()
    g = np.exp(-np.array([1.0, 0.0, 1.0]) / (2 * alias ** 2))
    g /= g.sum()
    kernel = scipy.signal.convolve2d(disk, np.outer(g, g), mode="same")
    ref = np.stack([[ndi.correlate(img, kernel, mode="mirror") for img in chans]
                    for chans in photos.numpy()])           # mirror = OpenCV's REFLECT_101
    np.testing.assert_allclose(C.corrupt(photos, "defocus_blur", severity).numpy(),
                               np.clip(ref, 0, 1), atol=1e-12)
    np.testing.assert_allclose(C.defocus_kernel(radius, alias).sum().item(), 1.0, atol=1e-12)


@pytest.mark.parametrize("severity", [1, 3, 5])
def test_zoom_blur_matches_scipy_zoom(digits, severity):
    n = C.severity_constant("zoom_blur", severity)
    img = digits[:4, 0].numpy()
    total = np.zeros_like(img)
    h = img.shape[-1]
    for k in range(n):
        z = 1 + 0.01 * k
        ch = int(np.ceil(h / z))
        top = (h - ch) // 2
        zoomed = ndi.zoom(img[:, top:top + ch, top:top + ch], (1, z, z), order=1)
        trim = (zoomed.shape[-1] - h) // 2
        total += zoomed[:, trim:trim + h, trim:trim + h]
    ref = np.clip((img + total) / (n + 1), 0, 1)
    np.testing.assert_allclose(C.corrupt(digits[:4], "zoom_blur", severity)[:, 0].numpy(), ref,
                               atol=1e-10)


@pytest.mark.parametrize("severity", C.SEVERITIES)
def test_brightness_is_hsv_value_plus_c_per_pixel(photos, severity):
    c = C.severity_constant("brightness", severity)
    x = photos[:2]
    x[0, :, 0, 0] = 0.0                                     # a black pixel becomes grey
    ours = C.corrupt(x, "brightness", severity).permute(0, 2, 3, 1).reshape(-1, 3).numpy()
    ref = []
    for r, g, b in x.permute(0, 2, 3, 1).reshape(-1, 3).numpy():
        h, s, v = colorsys.rgb_to_hsv(r, g, b)
        ref.append(colorsys.hsv_to_rgb(h, s, min(v + c, 1.0)))
    np.testing.assert_allclose(ours, np.array(ref), atol=1e-12)


def test_brightness_on_one_channel_adds_c(digits):
    np.testing.assert_allclose(C.corrupt(digits, "brightness", 2).numpy(),
                               np.clip(digits.numpy() + 0.1, 0, 1), atol=1e-12)


def test_contrast_keeps_each_channel_mean_and_scales_its_spread(photos):
    out = C.corrupt(photos, "contrast", 4)                  # c = 0.3, never clips
    torch.testing.assert_close(out.mean((2, 3)), photos.mean((2, 3)))
    torch.testing.assert_close(out.std((2, 3)), 0.3 * photos.std((2, 3)))


# --- the noise models' statistics ------------------------------------------------------------------

def test_noise_statistics_match_their_laws():
    x = torch.full((1, 1, 400, 500), 0.3, dtype=torch.float64)    # 200k pixels, no clipping
    gen = _gen(7)
    d = C.corrupt(x, "gaussian_noise", 5, generator=gen) - x                     # N(0, 0.1²)
    assert abs(float(d.mean())) < 1e-3 and abs(float(d.std()) - 0.10) < 1e-3
    s = C.corrupt(x, "shot_noise", 5, generator=gen)              # Poisson(15)/50
    assert abs(float(s.mean()) - 0.3) < 2e-3 and abs(float(s.var()) - 0.3 / 50) < 2e-4
    assert torch.allclose(s * 50, (s * 50).round())               # integer photon counts
    p = C.corrupt(x, "impulse_noise", 5, generator=gen)           # 7 % hit, half salt
    hit = float((p != 0.3).double().mean())
    salt = float((p == 1).double().mean())
    assert abs(hit - 0.07) < 2e-3 and abs(salt - 0.035) < 2e-3
    k = C.corrupt(x, "speckle_noise", 5, generator=gen) - x       # 0.3·N(0, 0.2²)
    assert abs(float(k.std()) - 0.06) < 1e-3
