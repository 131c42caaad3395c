"""The continuous-depth classifier of paper 000 (§5, arXiv Fig. 2): stem → one SDE block → head.

The block is one weight-tied drift network integrated over [0, T] by :func:`nsde_lib.sdeint`;
the diffusion (or jump) preset turns the same network into a Neural ODE or one of the paper's
Neural SDEs (Table 1). Whether the noise is drawn is an explicit switch (``noise=`` or the
``noise_on`` attribute), never ``model.training``: an attack that calls ``eval()`` still sees a
noisy model.

Layout follows the authors' reference model: a 3×3 stem without padding (32×32 → 30×30), a drift
of three (GroupNorm → ReLU → 3×3 conv with the time as an extra input channel) plus a closing
GroupNorm, and a GroupNorm → ReLU → global average pool → linear head.
"""
from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from .checks import count, positive
from .jumps import check_rate
from .noise import check_p, check_sigma
from .sde import make_sde
from .solver import METHODS, sdeint

__all__ = ["SDEClassifier", "ConvDrift", "TimeConv2d", "FP32GroupNorm", "ensemble_predict",
           "ensemble_accuracy", "CLASSIFIER_NOISES"]

CLASSIFIER_NOISES = ("none", "additive", "multiplicative", "dropout", "jump-dropout")


def _at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    """float16/bfloat16 → float32; float32 and float64 pass unchanged (tests run in float64)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


class FP32GroupNorm(nn.GroupNorm):
    """GroupNorm computed in float32 whatever the autocast dtype (bf16 statistics are too coarse).

    Uses ``min(32, channels)`` groups, as the reference model.
    """

    def __init__(self, channels: int):
        super().__init__(min(32, channels), channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return super().forward(_at_least_fp32(x))


class TimeConv2d(nn.Conv2d):
    """3×3 conv whose input is ``[t, x]``: the time enters as a constant extra channel (channel 0).

    The weight has ``in_channels + 1`` input channels, as the reference ``ConcatConv2d``. The time
    channel is never materialised: its contribution is ``t · conv(ones, w_t)``, a (1, C_out, H, W)
    map that differs from a constant only on the zero-padded border. That keeps the big conv at
    ``in_channels`` (64, tensor-core friendly, no concatenation copy) and gives the same numbers.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(in_channels + 1, out_channels, 3, padding=1)

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        w = self.weight  # read once: a spectral-norm parametrization recomputes on every read
        out = F.conv2d(x, w[:, 1:], self.bias, padding=self.padding)  # (B, C_out, H, W)
        ones = x.new_ones(1, 1, *x.shape[-2:])
        time_map = F.conv2d(ones, w[:, :1], padding=self.padding)  # (1, C_out, H, W)
        return out + t.to(out.dtype) * time_map.to(out.dtype)


class ConvDrift(nn.Module):
    """The drift f(t, h): three (norm → ReLU → time-conv), then a closing norm (reference model).

    Args:
        channels: C of the state ``(B, C, H, W)``.
        spectral_norm: wrap each conv in ``torch.nn.utils.parametrizations.spectral_norm``
            (paper 004: a smaller Lipschitz constant of the dynamics).
    """

    def __init__(self, channels: int, spectral_norm: bool = False):
        super().__init__()
        self.norms = nn.ModuleList(FP32GroupNorm(channels) for _ in range(4))
        convs = [TimeConv2d(channels, channels) for _ in range(3)]
        if spectral_norm:
            convs = [nn.utils.parametrizations.spectral_norm(c) for c in convs]
        self.convs = nn.ModuleList(convs)

    def forward(self, t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        out = h  # (B, C, H, W)
        for norm, conv in zip(self.norms, self.convs):
            out = conv(t, F.relu(norm(out)))
        return self.norms[3](out)


class SDEClassifier(nn.Module):
    """Conv stem → SDE block on [0, T] with ``steps`` solver steps → norm → ReLU → pool → linear.

    Args:
        in_channels: image channels (1 for MNIST, 3 for CIFAR-10).
        num_classes: number of logits.
        channels: width C of the SDE state (64 in the paper).
        noise: ``"none"`` (Neural ODE), ``"additive"`` (σ·I), ``"multiplicative"`` (σ·h),
            ``"dropout"`` (Gaussian dropout, sqrt(p/(1−p))·f, eq. 7) or ``"jump-dropout"``
            (dropout as Poisson jumps, eq. 4).
        sigma: diffusion scale σ ≥ 0 (additive, multiplicative).
        p: drop probability in [0, 1) (dropout, jump-dropout).
        rate: jump intensity λ ≥ 0 (jump-dropout).
        T: integration horizon (> 0).
        steps: solver steps; dt = T / steps.
        method: ``"euler"`` or ``"milstein"`` (not with ``"dropout"``: its diffusion mixes
            channels through f, so the diagonal Milstein correction would be wrong).
        spectral_norm: spectral normalisation of the drift convs.

    Attributes:
        noise_on: whether ``forward(x)`` draws noise when ``noise=None`` (True for noisy
            models). Independent of ``train()``/``eval()``.
        drift: the drift module f(t, h) (for Lipschitz estimates).

    Raises:
        ValueError: any argument out of range, naming it and the allowed values.
    """

    def __init__(self, in_channels: int, num_classes: int, *, channels: int = 64,
                 noise: str = "none", sigma: float = 0.0, p: float = 0.0, rate: float = 1.0,
                 T: float = 1.0, steps: int = 10, method: str = "euler",
                 spectral_norm: bool = False):
        super().__init__()
        count("in_channels", in_channels)
        count("num_classes", num_classes)
        count("channels", channels)
        count("steps", steps)
        if noise not in CLASSIFIER_NOISES:
            raise ValueError(f"noise must be one of {CLASSIFIER_NOISES}, got {noise!r}")
        positive("T", T)
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        if method == "milstein" and noise == "dropout":
            raise ValueError("method 'milstein' assumes diagonal noise, which Gaussian-dropout "
                             "noise (g = c·f(h), mixing channels) is not; use method='euler'")
        self.noise, self.sigma = noise, check_sigma(sigma)
        self.p, self.rate = check_p(p), check_rate(rate)
        self.T, self.steps, self.method = float(T), steps, method
        self.noise_on = noise != "none"

        self.stem = nn.Conv2d(in_channels, channels, 3)  # no padding, as the reference: 32 → 30
        self.drift = ConvDrift(channels, spectral_norm)
        self.head = nn.Sequential(FP32GroupNorm(channels), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                  nn.Flatten(), nn.Linear(channels, num_classes))
        # Kept out of the module tree so the drift's weights appear once in the state dict.
        self.__dict__["_sde"] = make_sde(self.drift, noise, sigma=sigma, p=p, rate=rate)

    @property
    def sde(self):
        """The :class:`nsde_lib.NeuralSDE` of the block (``f``/``g``: torchsde's contract)."""
        return self._sde

    @property
    def dt(self) -> float:
        return self.T / self.steps

    def extra_repr(self) -> str:
        return (f"noise={self.noise!r}, sigma={self.sigma}, p={self.p}, rate={self.rate}, "
                f"T={self.T}, steps={self.steps}, method={self.method!r}")

    def _state0(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.stem.in_channels:
            raise ValueError(f"x must have shape (B, {self.stem.in_channels}, H, W), "
                             f"got {tuple(x.shape)}")
        # the state (and so the noise draw) stays float32 under bf16 autocast
        return _at_least_fp32(self.stem(x))

    def _integrate(self, h0, ts, noise, bm, generator):
        on = self.noise_on if noise is None else bool(noise)
        sde, was = self._sde, self._sde.stochastic
        sde.stochastic = on
        try:  # sdeint draws all increments in one call, in h0's memory layout
            with parametrize.cached():  # spectral norm: one power iteration per forward
                return sdeint(sde, h0, ts, dt=self.dt, method=self.method, bm=bm,
                              generator=generator)
        finally:
            sde.stochastic = was

    def forward(self, x: torch.Tensor, noise: bool | None = None) -> torch.Tensor:
        """Logits ``(B, num_classes)`` for images ``x`` of shape ``(B, in_channels, H, W)``.

        Args:
            noise: draw the noise (True) or integrate the noise-free dynamics (False; for
                jumps, their mean joins the drift); ``None`` uses :attr:`noise_on`.

        Raises:
            DivergenceError: the state became NaN/Inf inside the block.
        """
        h_T = self._integrate(self._state0(x), [0.0, self.T], noise, None, None)[-1]
        return self.head(h_T)

    def hidden_states(self, x: torch.Tensor, *, noise: bool | None = None,
                      bm: torch.Tensor | None = None,
                      generator: torch.Generator | None = None) -> torch.Tensor:
        """The path of the SDE block at t = 0, dt, ..., T: shape ``(steps + 1, B, C, H', W')``.

        Args:
            noise: as in :meth:`forward`.
            bm: Brownian increments of shape :meth:`brownian_shape` ``(x)``, to run two inputs
                (clean and perturbed, Fig. 7) on one shared noise path.
            generator: draws the increments (and jumps) when ``bm`` is ``None``.
        """
        ts = [self.T * k / self.steps for k in range(self.steps + 1)]
        return self._integrate(self._state0(x), ts, noise, bm, generator)

    def brownian_shape(self, x: torch.Tensor) -> tuple[int, ...]:
        """Shape of ``bm`` for :meth:`hidden_states` on ``x``: ``(steps, B, C, H', W')``."""
        B, _, H, W = x.shape
        k, s, pad, d = (self.stem.kernel_size, self.stem.stride, self.stem.padding,
                        self.stem.dilation)
        size = [(n + 2 * pad[i] - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i, n in enumerate((H, W))]
        return (self.steps, B, self.stem.out_channels, *size)


def ensemble_predict(model: nn.Module, x: torch.Tensor, K: int) -> torch.Tensor:
    """Test-time-noise ensemble: the mean of softmax over ``K`` noisy passes, ``(B, num_classes)``.

    Gradients flow through (for attacks averaging over the noise); wrap the call in
    ``torch.no_grad()`` to evaluate. A Neural ODE (``noise="none"``) is deterministic: one pass.

    Raises:
        ValueError: ``K`` is not an integer >= 1.
    """
    count("K", K)
    passes = 1 if getattr(model, "noise", None) == "none" else K
    probs = 0.0
    for _ in range(passes):
        probs = probs + F.softmax(_at_least_fp32(model(x, noise=True)), dim=1)
    return probs / passes


@torch.no_grad()
def ensemble_accuracy(model: nn.Module, data, Ks, *, noise: bool = True, batch_size: int = 500,
                      channels_last: bool = False, amp: bool = False,
                      progress: bool = False) -> list[float]:
    """Accuracy of the K-pass ensemble for every K in ``Ks``, from one run of max(K) passes.

    The softmax is summed pass by pass, and the prediction after k passes is the K = k
    ensemble of :func:`ensemble_predict`: every K on the same draws, so the curve over K is
    not blurred by independent noise.

    Args:
        model: a classifier with ``model(x, noise=...)``.
        data: ``(x, y)`` test tensors, moved batch by batch to the model's device.
        Ks: ensemble sizes (integers >= 1).
        noise: False evaluates the noise-free model (one pass serves every K).
        batch_size: images per pass.
        channels_last: hand the images over in channels_last layout (GPU).
        amp: run under bf16 autocast.
        progress: a tqdm bar over the batches.

    Returns:
        One accuracy in [0, 1] per entry of ``Ks``, in their order.
    """
    from tqdm.auto import tqdm

    Ks = [count("K", k) for k in Ks]
    deterministic = not noise or getattr(model, "noise", None) == "none"
    passes = 1 if deterministic else max(Ks)
    device = next(model.parameters()).device
    x, y = data
    correct = [0] * len(Ks)
    for i in tqdm(range(0, len(x), batch_size), disable=not progress, leave=False,
                  desc="test-time ensembles"):
        xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        probs = 0.0
        for k in range(1, passes + 1):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                logits = model(xb, noise=noise)
            probs = probs + F.softmax(_at_least_fp32(logits), dim=1)
            hits = int((probs.argmax(1) == yb).sum())
            for j, K in enumerate(Ks):
                if K == k or (deterministic and k == 1):
                    correct[j] += hits
    return [c / len(x) for c in correct]
