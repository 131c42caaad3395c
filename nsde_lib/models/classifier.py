"""The continuous-depth classifier of paper 000 (§5, arXiv Fig. 2): stem → one SDE block → head.

The block is one weight-tied drift network integrated over [0, T] by :func:`nsde_lib.sdeint`;
the diffusion (or jump) preset turns the same network into a Neural ODE or one of the paper's
Neural SDEs (Table 1). Whether the noise is drawn is an explicit switch (the ``noise_on``
attribute, or ``forward(x, noise_on=...)`` for one call), never ``model.training``: an attack
that calls ``eval()`` still sees a noisy model. (``noise=`` names the preset, not the switch.)

Layout follows the authors' reference model: a 3×3 stem without padding (32×32 → 30×30), a drift
of three (GroupNorm → ReLU → 3×3 conv with the time as an extra input channel) plus a closing
GroupNorm, and a GroupNorm → ReLU → global average pool → linear head.

Two options serve randomized smoothing (chapter 06): ``sigma0`` draws Gaussian noise on the
state at t = 0 (the block starts from ``stem(x) + σ₀·ε``), and ``spectral_stem`` spectrally
normalises the stem, the only layer before that noise, so that its Lipschitz constant carries a
certificate from the hidden state back to the image (:func:`nsde_lib.hidden_smooth`).
"""
from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from .. import checks
from ..checks import count, positive
from ..sde.adaptive import SolveStats, odeint_dopri5
from ..sde.brownian import gaussian_noise
from ..sde.neural_sde import SwitchedBySDE, make_sde, noise_switch
from ..sde.solver import METHODS, sdeint

__all__ = ["SDEClassifier", "StateClassifier", "ConvDrift", "TimeConv2d", "FP32GroupNorm",
           "AdaptiveBlock", "CLASSIFIER_NOISES", "NOISE_LEVELS", "at_least_fp32"]

CLASSIFIER_NOISES = ("none", "additive", "multiplicative", "dropout", "jump-dropout")

# The course's one noise level per preset: chapters 04, 05 and 06 and the command line's example
# use these. Chosen by the search of sweeps/04_noise_levels.toml (shown in chapter 04): per preset,
# the largest level whose noise-off test accuracy stays within one point of the Neural ODE's.
NOISE_LEVELS = {
    "none": {},
    "additive": {"sigma": 0.2},
    "multiplicative": {"sigma": 0.3},
    "dropout": {"p": 0.1},
    "jump-dropout": {"p": 0.2, "rate": 1.0},
}


def at_least_fp32(x: torch.Tensor) -> torch.Tensor:
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
            return super().forward(at_least_fp32(x))


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
    """The drift f(t, y): three (norm → ReLU → time-conv), then a closing norm (reference model).

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

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = y  # (B, C, H, W)
        for norm, conv in zip(self.norms, self.convs):
            out = conv(t, F.relu(norm(out)))
        return self.norms[3](out)


class SDEClassifier(SwitchedBySDE, nn.Module):
    """Conv stem → SDE block on [0, T] with ``steps`` solver steps → norm → ReLU → pool → linear.

    Args:
        in_channels: image channels (1 for MNIST, 3 for CIFAR-10).
        num_classes: number of logits.
        channels: width C of the SDE state (64 in the paper).
        noise: ``"none"`` (Neural ODE), ``"additive"`` (σ·I), ``"multiplicative"`` (σ·y),
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
        sigma0: σ₀ ≥ 0, Gaussian noise on the state at t = 0: the block starts from
            ``stem(x) + σ₀·ε``, ε ~ N(0, I) (a jump of the Brownian path at the start; drawn
            when the noise is on). Certified as a smoothed classifier of the hidden state by
            :func:`nsde_lib.hidden_smooth`.
        spectral_stem: spectral normalisation of the stem conv (torch's, which normalises the
            reshaped kernel; the operator norm on an image, :func:`nsde_lib.lipschitz_bound`,
            can be larger).

    Attributes:
        noise_on: whether ``forward(x)`` draws noise when ``noise_on=None`` (True for noisy
            models, and for ``sigma0 > 0``): the switch of the block's
            :class:`nsde_lib.NeuralSDE`, shared with :func:`nsde_lib.noise_switch`.
            Independent of ``train()``/``eval()``.
        drift: the drift module f(t, y) (for Lipschitz estimates).

    Raises:
        ValueError: any argument out of range, naming it and the allowed values.
    """

    def __init__(self, in_channels: int, num_classes: int, *, channels: int = 64,
                 noise: str = "none", sigma: float = 0.0, p: float = 0.0, rate: float = 1.0,
                 T: float = 1.0, steps: int = 10, method: str = "euler",
                 spectral_norm: bool = False, sigma0: float = 0.0,
                 spectral_stem: bool = False):
        super().__init__()
        count("in_channels", in_channels)
        count("num_classes", num_classes)
        count("channels", channels)
        count("steps", steps)
        checks.one_of("noise", noise, CLASSIFIER_NOISES)
        positive("T", T)
        checks.one_of("method", method, METHODS)
        if method == "milstein" and noise == "dropout":
            raise ValueError("method 'milstein' assumes diagonal noise, which Gaussian-dropout "
                             "noise (g = c·f(y), mixing channels) is not; use method='euler'")
        self.noise, self.sigma = noise, checks.sigma(sigma)
        self.p, self.rate = checks.probability(p), checks.rate(rate)
        self.T, self.steps, self.method = float(T), steps, method
        self.sigma0 = checks.sigma(sigma0, "sigma0")
        self.spectral_stem = bool(spectral_stem)

        self.stem = nn.Conv2d(in_channels, channels, 3)  # no padding, as the reference: 32 → 30
        if spectral_stem:
            self.stem = nn.utils.parametrizations.spectral_norm(self.stem)
        self.drift = ConvDrift(channels, spectral_norm)
        self.head = nn.Sequential(FP32GroupNorm(channels), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                  nn.Flatten(), nn.Linear(channels, num_classes))
        # Kept out of the module tree so the drift's weights appear once in the state dict.
        self.__dict__["_sde"] = make_sde(self.drift, noise, sigma=sigma, p=p, rate=rate)
        if self.sigma0 > 0:  # noise at t = 0 makes even the Neural ODE a random model
            self.noise_on = True

    @property
    def sde(self):
        """The :class:`nsde_lib.NeuralSDE` of the block (``f``/``g``: torchsde's contract)."""
        return self._sde

    @property
    def dt(self) -> float:
        return self.T / self.steps

    @property
    def times(self) -> list[float]:
        """The solver's step times 0, dt, ..., T (the grid of :meth:`hidden_states`)."""
        return [self.T * k / self.steps for k in range(self.steps + 1)]

    def extra_repr(self) -> str:
        return (f"noise={self.noise!r}, sigma={self.sigma}, p={self.p}, rate={self.rate}, "
                f"T={self.T}, steps={self.steps}, method={self.method!r}"
                + (f", sigma0={self.sigma0}" if self.sigma0 else "")
                + (", spectral_stem=True" if self.spectral_stem else ""))

    def _state0(self, x: torch.Tensor) -> torch.Tensor:
        checks.images("x", x, channels=self.stem.in_channels,
                      min_size=self.stem.kernel_size[0])
        # the state (and so the noise draw) stays float32 under bf16 autocast
        return at_least_fp32(self.stem(x))

    def _noise_at_0(self, y0, noise_on, generator):
        """y0 + σ₀·ε when the noise is on and σ₀ > 0 (drawn in y0's dtype, on its device)."""
        on = self.noise_on if noise_on is None else bool(noise_on)
        if not on or self.sigma0 == 0:
            return y0
        return y0 + gaussian_noise(y0.shape, self.sigma0, generator=generator, dtype=y0.dtype,
                                   device=y0.device)

    def _integrate(self, y0, ts, noise_on, bm, generator):
        with noise_switch(self._sde, noise_on), parametrize.cached():
            # sdeint draws all increments in one call, in y0's memory layout; spectral norm
            # runs one power iteration per forward (parametrize.cached)
            return sdeint(self._sde, y0, ts, dt=self.dt, method=self.method, bm=bm,
                          generator=generator)

    def forward(self, x: torch.Tensor, noise_on: bool | None = None) -> torch.Tensor:
        """Logits ``(B, num_classes)`` for images ``x`` of shape ``(B, in_channels, H, W)``.

        Args:
            x: float images, at least 3×3 pixels (the stem's kernel, no padding).
            noise_on: draw the noise (True) or integrate the noise-free dynamics (False; for
                jumps, their mean joins the drift); ``None`` uses the attribute
                :attr:`noise_on`.

        Raises:
            TypeError, ValueError: ``x`` is not a float tensor ``(B, in_channels, H, W)``.
            DivergenceError: the state became NaN/Inf inside the block.
        """
        return self.classify_state(self._noise_at_0(self._state0(x), noise_on, None), noise_on)

    def classify_state(self, y0: torch.Tensor, noise_on: bool | None = None) -> torch.Tensor:
        """Logits ``(B, num_classes)`` from the state at t = 0, ``(B, channels, H', W')``: the
        block (its diffusion or jumps as ``noise_on`` says) and the head. The stem and the
        noise at t = 0 are left out: this is the base classifier a hidden-space smoothed
        classifier adds its own noise to (:class:`StateClassifier`)."""
        return self.head(self._integrate(y0, [0.0, self.T], noise_on, None, None)[-1])

    def hidden_states(self, x: torch.Tensor, *, noise_on: bool | None = None,
                      bm: torch.Tensor | None = None,
                      generator: torch.Generator | None = None) -> torch.Tensor:
        """The path of the SDE block at t = 0, dt, ..., T: shape ``(steps + 1, B, C, H', W')``.

        Args:
            noise_on: as in :meth:`forward`.
            bm: Brownian increments of shape :meth:`brownian_shape` ``(x)``, to run two inputs
                (clean and perturbed, Fig. 7) on one shared noise path.
            generator: draws the noise at t = 0 (``sigma0``), and the increments (and jumps)
                when ``bm`` is ``None``; two calls with equally seeded generators start from
                the same noisy state.
        """
        y0 = self._noise_at_0(self._state0(x), noise_on, generator)
        return self._integrate(y0, self.times, noise_on, bm, generator)

    def brownian_shape(self, x: torch.Tensor) -> tuple[int, ...]:
        """Shape of ``bm`` for :meth:`hidden_states` on ``x``: ``(steps, B, C, H', W')``."""
        B, _, H, W = x.shape
        k, s, pad, d = (self.stem.kernel_size, self.stem.stride, self.stem.padding,
                        self.stem.dilation)
        size = [(n + 2 * pad[i] - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i, n in enumerate((H, W))]
        return (self.steps, B, self.stem.out_channels, *size)


class StateClassifier(nn.Module):
    """An :class:`SDEClassifier` seen from its state at t = 0: ``y0 ↦ logits`` (block, head).

    The base classifier of the Neural SDE as a smoothed classifier (:func:`nsde_lib.hidden_smooth`):
    the smoothed classifier adds the noise at t = 0 itself, so none is drawn here; the block's
    own diffusion (or jumps) follows the model's switch, and the theorem still holds with it,
    because that noise does not depend on the input. Shares the model's weights.
    """

    def __init__(self, model: SDEClassifier):
        super().__init__()
        if not isinstance(model, SDEClassifier):
            raise TypeError(f"model must be an SDEClassifier, got {type(model).__name__}")
        self.model = model

    @property
    def noise_on(self) -> bool:
        return self.model.noise_on

    @noise_on.setter
    def noise_on(self, on: bool) -> None:
        self.model.noise_on = on

    def forward(self, y0: torch.Tensor, noise_on: bool | None = None) -> torch.Tensor:
        """Logits ``(B, num_classes)`` for states ``y0`` of shape ``(B, channels, H', W')``."""
        return self.model.classify_state(y0, noise_on)


class AdaptiveBlock(nn.Module):
    """A trained :class:`nsde_lib.SDEClassifier`'s deterministic block, solved by Dormand–Prince.

    Same weights (stem, drift, head) and horizon ``T``; the block is integrated adaptively to
    ``rtol``/``atol`` (or with ``dt`` fixed fifth-order steps) instead of the model's fixed
    Euler steps. The noise is off: adaptive step control is for the ODE.

    Paper 004 compares fixed-step and adaptive solvers of the same Neural ODE under attack.

    Attributes:
        stats: :class:`nsde_lib.SolveStats` of the last forward pass.
    """

    def __init__(self, model: SDEClassifier, *, rtol: float = 1e-3, atol: float = 1e-4,
                 dt: float | None = None):
        super().__init__()
        if not isinstance(model, SDEClassifier):
            raise TypeError(f"model must be an SDEClassifier, got {type(model).__name__}")
        self.model, self.rtol, self.atol, self.dt = model, rtol, atol, dt
        self.stats = SolveStats()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        y0 = m._state0(x)  # (B, C, H', W')
        self.stats = SolveStats()
        y_T = odeint_dopri5(m.drift, y0, [0.0, m.T], rtol=self.rtol, atol=self.atol,
                            dt=self.dt, stats=self.stats)[-1]
        return m.head(y_T)
