"""Randomized smoothing: the robustness that Gaussian noise buys provably.

Cohen, Rosenfeld & Kolter (ICML 2019, Thm. 1): let ``f`` be any classifier and
``g(x) = argmax_c P(f(x + ε) = c)``, ε ~ N(0, σ²I). If the top class has probability
``p_A ≥ p̲_A > 1/2``, then ``g`` is constant on the ℓ2 ball of radius ``σ·Φ⁻¹(p̲_A)`` around
``x``. :class:`Smooth` is their PREDICT and CERTIFY (Algorithm/§3.2 of the paper) with the
interface people know from their code; ``p̲_A`` is a one-sided Clopper–Pearson bound, so a
certificate is wrong with probability at most α.

The base may itself be random (a Neural SDE with its noise on): the theorem only needs the
probability over ε of each class, and noise that does not depend on the input is just more of
the randomness that probability averages over.

A :class:`Smooth` is also a noisy model in the library's sense (``noise_on``, ``forward(x)``
draws one noise sample per row), so the test-time-noise ensemble, EOT attacks and :func:`fit`
(Gaussian augmentation) take it as they take a Neural SDE. The noise comes from the library's one
source, :func:`nsde_lib.gaussian_noise`.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from .. import checks
from ..checks import count, open_unit, positive
from ..models.classifier import NOISE_LEVELS, SDEClassifier, StateClassifier
from ..models.ensemble import accuracy, ensemble_votes
from ..runtime import forked_rng
from ..sde.brownian import gaussian_noise
from ..theory.lipschitz import lipschitz_bound
from .attacks import pgd
from .evaluation import accuracy_vs_eps

__all__ = ["Smooth", "ABSTAIN", "lower_confidence_bound", "radius_cap", "hidden_smooth",
           "certify_dataset", "certified_accuracy", "falsify", "smoothing_model", "smoother_of",
           "smoothing_scores", "SMOOTHING_FAMILIES"]

# chapter 06's models: the undefended Neural ODE, the ODE smoothed by noise on its input, and
# the Neural SDE whose noise starts with a jump at t = 0 (its diffusion continues in the block)
SMOOTHING_FAMILIES = ("ode", "smoothed", "noise-at-0")

ABSTAIN = -1
LIPSCHITZ_MARGIN = 1e-9  # relative, over the exact stem norm: room for its rounding error


def lower_confidence_bound(k: int, n: int, alpha: float) -> float:
    """One-sided (1 − α) Clopper–Pearson lower bound on p from ``k`` successes in ``n`` trials.

    The ``α`` quantile of Beta(k, n − k + 1) (0 when k = 0): the p at which seeing ``k`` or more
    successes has probability exactly α. With k = n it is α^(1/n).
    """
    from scipy.stats import beta

    n = count("n", n)
    k = count("k", k, low=0)
    if k > n:
        raise ValueError(f"k must be <= n = {n}, got {k}")
    alpha = open_unit("alpha", alpha)
    return 0.0 if k == 0 else float(beta.ppf(alpha, k, n - k + 1))


def radius_cap(sigma: float, n: int, alpha: float) -> float:
    """The largest radius :meth:`Smooth.certify` can return from ``n`` samples: σ·Φ⁻¹(α^(1/n)).

    Even when all ``n`` votes agree, p̲_A is only α^(1/n): more robustness than this needs more
    samples, not a better model.
    """
    from scipy.stats import norm

    return positive("sigma", sigma) * float(norm.ppf(lower_confidence_bound(n, n, alpha)))


@contextmanager
def _evaluating(module: nn.Module, grad: bool = False):
    """``eval()`` inside the block; afterwards every submodule gets back its *own* mode (a
    smoothed classifier wrapping a model in eval mode must not leave it in training mode, where
    spectral normalisation would move the weights a Lipschitz bound was computed for)."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        with torch.set_grad_enabled(grad):
            yield module
    finally:
        for m, mode in modes:
            m.training = mode


class Smooth(nn.Module):
    """The smoothed classifier g(x) = argmax_c P(base(x + ε) = c), ε ~ N(0, σ²I).

    Args:
        base: a module (or callable) mapping a batch ``(B, *shape)`` to logits
            ``(B, num_classes)``; it may be random (its noise independent of the input).
        num_classes: number of classes (≥ 2).
        sigma: σ > 0, the noise scale (in the units of the input, or of ``encoder``'s output).
        encoder: a deterministic map applied *before* the noise (e.g. a network's stem): the
            classifier is then ``g(e(x))`` with g smoothed in the space of ``e(x)``.
        lipschitz: an upper bound on the Lipschitz constant of ``encoder`` (ℓ2 to ℓ2): a ball
            of radius R around ``e(x)`` contains the image of the ball of radius R / L around
            ``x``, so certified radii are divided by it. Must be 1 without an encoder.

    Attributes:
        ABSTAIN: −1, what :meth:`predict` and :meth:`certify` return when unsure.
        noise_on: ``forward`` adds the noise (True by default; the base's own noise, if any,
            follows the base's switch).

    Raises:
        TypeError: ``base`` or ``encoder`` is not callable.
        ValueError: ``num_classes < 2``, ``sigma <= 0`` or a bad ``lipschitz``.
    """

    ABSTAIN = ABSTAIN

    def __init__(self, base: Callable[[torch.Tensor], torch.Tensor], num_classes: int,
                 sigma: float, *, encoder: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 lipschitz: float = 1.0):
        super().__init__()
        if not callable(base):
            raise TypeError(f"base must be a module or callable returning logits "
                            f"(batch, num_classes), got {type(base).__name__}")
        if encoder is not None and not callable(encoder):
            raise TypeError(f"encoder must be None or a module/callable, got "
                            f"{type(encoder).__name__}")
        self.num_classes = count("num_classes", num_classes, low=2)
        self.sigma = positive("sigma", sigma)
        self.lipschitz = positive("lipschitz", lipschitz)
        if encoder is None and self.lipschitz != 1.0:
            raise ValueError(f"lipschitz bounds the encoder; without one it must be 1, got "
                             f"{lipschitz!r}")
        self.base, self.encoder = base, encoder  # modules are registered (.to(), .eval())
        self.noise_on = True

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, sigma={self.sigma}"
                + (f", lipschitz={self.lipschitz:.4g}" if self.encoder is not None else ""))

    # --- the noisy model --------------------------------------------------------------------

    def _device(self, x: torch.Tensor) -> torch.device:
        p = next(self.parameters(), None)
        return p.device if p is not None else x.device

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.encoder is None else self.encoder(x)

    def _logits(self, z: torch.Tensor, noise_on: bool | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """base(z + σ·ε) for codes ``z`` (B, ...), with the output's shape checked."""
        if (self.noise_on if noise_on is None else noise_on):
            z = z + gaussian_noise(z.shape, self.sigma, generator=generator, dtype=z.dtype,
                                   device=z.device)
        logits = self.base(z)
        if not (isinstance(logits, torch.Tensor) and logits.shape == (len(z), self.num_classes)):
            got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
            raise ValueError(f"base must return logits of shape (batch, num_classes) = "
                             f"({len(z)}, {self.num_classes}), got {got}")
        return logits

    def forward(self, x: torch.Tensor, noise_on: bool | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Logits of the base on one noisy copy of each input: ``(B, num_classes)``.

        Args:
            x: inputs ``(B, *shape)``.
            noise_on: add the Gaussian noise (default: the attribute :attr:`noise_on`).
            generator: seeds the noise (torch's global RNG when ``None``).
        """
        checks.tensor("x", x, floating=True)
        return self._logits(self._encode(x), noise_on, generator)

    # --- Monte Carlo ------------------------------------------------------------------------

    def votes(self, x: torch.Tensor, n: int, *, batch_size: int = 1000,
              generator: torch.Generator | None = None) -> torch.Tensor:
        """How many of ``n`` noisy copies of each input the base puts in each class.

        Args:
            x: inputs ``(B, *shape)`` (a batch; see :meth:`certify` for one input).
            n: noise draws per input.
            batch_size: the most rows in one forward pass of the base.
            generator: seeds the noise.

        Returns:
            Counts ``(B, num_classes)`` (int64), each row summing to ``n``.
        """
        n, batch_size = count("n", n), count("batch_size", batch_size)
        checks.tensor("x", x, floating=True)
        with _evaluating(self):
            z = self._encode(x.to(self._device(x)))
            return self._votes(z, n, batch_size, generator)

    def _votes(self, z, n, batch_size, generator):
        out = torch.zeros(len(z), self.num_classes, dtype=torch.long, device=z.device)
        forward = lambda model, rows: model._logits(rows, generator=generator)  # noqa: E731
        for i in range(0, len(z), batch_size):
            zb = z[i:i + batch_size]
            per_pass = max(1, batch_size // len(zb))  # draws of every input in one forward
            for done in range(0, n, per_pass):
                out[i:i + len(zb)] += ensemble_votes(self, zb, min(per_pass, n - done),
                                                     forward=forward)
        return out

    def _one(self, x, name="x"):
        checks.tensor(name, x, floating=True)
        return self._encode(x.to(self._device(x)).unsqueeze(0))  # (1, *code)

    def predict(self, x: torch.Tensor, n: int, alpha: float, batch_size: int = 1000, *,
                generator: torch.Generator | None = None) -> int:
        """PREDICT: the class g(x), or :attr:`ABSTAIN`; wrong with probability at most α.

        Counts ``n`` votes and returns the top class only if a two-sided binomial test rejects
        that the top two are equally likely at level α.

        Args:
            x: one input, without a batch dimension, any shape the base reads as ``x[None]``.
            n: noise draws (≥ 1). alpha: the level, in (0, 1).
            batch_size: the most rows in one forward pass. generator: seeds the noise.
        """
        n, batch_size = count("n", n), count("batch_size", batch_size)
        alpha = open_unit("alpha", alpha)
        from scipy.stats import binomtest

        with _evaluating(self):
            counts = self._votes(self._one(x), n, batch_size, generator)[0].cpu()
        top2 = counts.topk(2)
        n_a, n_b = int(top2.values[0]), int(top2.values[1])
        if binomtest(n_a, n_a + n_b, 0.5).pvalue > alpha:
            return ABSTAIN
        return int(top2.indices[0])

    def certify(self, x: torch.Tensor, n0: int, n: int, alpha: float, batch_size: int = 1000, *,
                generator: torch.Generator | None = None) -> tuple[int, float]:
        """CERTIFY: ``(class, radius)`` with g constant on the ℓ2 ball of that radius around
        ``x`` (wrong with probability at most α), or ``(ABSTAIN, 0.0)``.

        ``n0`` draws guess the top class; ``n`` fresh draws bound its probability from below
        (Clopper–Pearson); the radius is σ·Φ⁻¹(p̲_A) (divided by the encoder's Lipschitz bound),
        at most :func:`radius_cap`.

        Args:
            x: one input, without a batch dimension.
            n0: draws to select the class (≥ 1). n: draws to estimate its probability (≥ 1).
            alpha: the level, in (0, 1).
            batch_size: the most rows in one forward pass. generator: seeds the noise.
        """
        n0, n = count("n0", n0), count("n", n)
        alpha, batch_size = open_unit("alpha", alpha), count("batch_size", batch_size)
        from scipy.stats import norm

        with _evaluating(self):
            z = self._one(x)
            guess = int(self._votes(z, n0, batch_size, generator)[0].argmax())
            n_a = int(self._votes(z, n, batch_size, generator)[0, guess])
        p_lower = lower_confidence_bound(n_a, n, alpha)
        if p_lower < 0.5:
            return ABSTAIN, 0.0
        return guess, self.sigma * float(norm.ppf(p_lower)) / self.lipschitz


def hidden_smooth(model: SDEClassifier, image_shape) -> Smooth:
    """A Neural SDE with noise at t = 0 (``sigma0``) as a smoothed classifier of its image.

    The block starts from ``stem(x) + σ₀·ε``: that *is* a smoothed classifier of the hidden state
    ``y0 = stem(x)``, certified there with radius R; a stem with Lipschitz constant L moves y0 by
    at most L·‖δ‖ when the image moves by δ, so the image is certified with radius R / L. L is
    the norm of the stem's convolution as an operator on an image of ``image_shape`` (not of
    its reshaped kernel, which spectral normalisation sets to 1 and which understates it), from
    the operator's written-down AᵀA (:func:`nsde_lib.operator_norm` with ``exact=True``: power
    iteration would stop just *below* it, overstating every radius), plus
    :data:`LIPSCHITZ_MARGIN` for rounding. The block's own
    diffusion may stay on (a random base). The bound is for the stem's weights as they are now:
    build the smoothed classifier after training.

    Args:
        model: an :class:`nsde_lib.SDEClassifier` with ``sigma0 > 0``; its stem is the encoder.
        image_shape: one image's shape ``(C, H, W)`` (the stem's norm depends on it).

    Raises:
        TypeError: not an SDEClassifier. ValueError: ``sigma0 == 0``.
    """
    if not isinstance(model, SDEClassifier):
        raise TypeError(f"model must be an SDEClassifier, got {type(model).__name__}")
    if model.sigma0 == 0:
        raise ValueError("model.sigma0 must be > 0: without noise at t = 0 there is nothing to "
                         "certify (build the model with sigma0=...)")
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != 3:
        raise ValueError(f"image_shape must be (C, H, W), got {image_shape!r}")
    with _evaluating(model, grad=True):  # in training mode spectral norm moves the weight
        lip = lipschitz_bound(model.stem, shape, exact=True) * (1 + LIPSCHITZ_MARGIN)
    smooth = Smooth(StateClassifier(model), model.head[-1].out_features, model.sigma0,
                    encoder=model.stem, lipschitz=lip)
    smooth.training = model.training  # so that eval()/train() round trips keep the model's mode
    return smooth


def certify_dataset(smooth: Smooth, x: torch.Tensor, *, n0: int = 100, n: int = 1000,
                    alpha: float = 0.001, batch_size: int = 1000, seed: int = 0,
                    progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """:meth:`Smooth.certify` for every input of ``x`` ``(N, *shape)``, noise seeded by ``seed``.

    Returns:
        ``(classes, radii)``: int64 ``(N,)`` (−1 = abstain) and float64 ``(N,)``, on the CPU.
    """
    from tqdm.auto import tqdm

    checks.tensor("x", x, floating=True)
    gen = torch.Generator(device=smooth._device(x)).manual_seed(seed)
    classes, radii = [], []
    for xi in tqdm(x, desc=f"certify (n = {n})", disable=not progress, leave=False):
        c, r = smooth.certify(xi, n0, n, alpha, batch_size, generator=gen)
        classes.append(c)
        radii.append(r)
    return torch.tensor(classes, dtype=torch.int64), torch.tensor(radii, dtype=torch.float64)


def certified_accuracy(classes: torch.Tensor, radii: torch.Tensor, y: torch.Tensor,
                       at: Sequence[float]) -> np.ndarray:
    """Share of inputs certified correct with radius ≥ r, for each r in ``at`` (Cohen et al.'s
    curve; at r = 0 the smoothed classifier's accuracy, abstentions counted wrong)."""
    correct = (classes.cpu() == y.cpu()).numpy()
    radii = radii.cpu().numpy()
    return np.array([float((correct & (radii >= checks.non_negative("r", r))).mean())
                     for r in at])


def falsify(smooth: Smooth, x: torch.Tensor, classes: torch.Tensor, radii: torch.Tensor, *,
            shrink: float = 0.99, steps: int = 20, eot: int = 16, n: int = 1000,
            alpha: float = 0.001, batch_size: int = 1000, seed: int = 0,
            progress: bool = False) -> dict:
    """Try to break each certificate: attack g inside its own certified ball, then ask g again.

    For every input certified with radius R > 0, ℓ2-PGD on the *soft* smoothed classifier (the
    cross-entropy of the mean softmax of ``eot`` noisy copies, Salman et al. 2019, i.e.
    :func:`nsde_lib.robust.attacks.pgd` with ``objective="ensemble"``) looks for a point at distance
    ``shrink·R`` that is not the certified class; :meth:`Smooth.predict` then classifies it.
    A certificate that holds lets no prediction flip, except with probability about 2α (the
    certificate and the prediction may each be wrong with probability α).

    Returns:
        dict with ``attacked`` (how many certificates), ``flipped`` (predictions now another
        class), ``abstained`` (now unsure; allowed), ``eps`` and ``after`` (per attacked input).
    """
    from tqdm.auto import tqdm

    positive("shrink", shrink)
    device = smooth._device(x)
    gen = torch.Generator(device=device).manual_seed(seed)
    todo = [i for i in range(len(x)) if int(classes[i]) != ABSTAIN and float(radii[i]) > 0]
    eps, after = [], []
    for i in tqdm(todo, desc="attacking certificates", disable=not progress, leave=False):
        xi = x[i:i + 1].to(device)
        label = torch.tensor([int(classes[i])], device=device)
        e = shrink * float(radii[i])
        with forked_rng(seed + i, device):
            adv = pgd(smooth, xi, label, e, norm="l2", steps=steps, eot=eot,
                      objective="ensemble", generator=gen)
        eps.append(e)
        after.append(smooth.predict(adv[0], n, alpha, batch_size, generator=gen))
    after_t = torch.tensor(after, dtype=torch.int64)
    before = classes[todo].cpu() if todo else torch.zeros(0, dtype=torch.int64)
    return {"attacked": len(todo), "flipped": int(((after_t != before) & (after_t != ABSTAIN)).sum()),
            "abstained": int((after_t == ABSTAIN).sum()), "eps": np.array(eps),
            "after": after_t}


def smoothing_model(family: str, sigma: float = 0.0, *, in_channels: int = 1,
                    num_classes: int = 10, **arch) -> nn.Module:
    """One of chapter 06's models, untrained; each is a noisy model trained as it is (``fit``).

    Args:
        family: ``"ode"`` (the Neural ODE, ``sigma`` ignored), ``"smoothed"`` (a Neural ODE
            inside :class:`Smooth` with σ = ``sigma``: training it is Gaussian augmentation) or
            ``"noise-at-0"`` (an :class:`nsde_lib.SDEClassifier` with additive noise: σ·ε on the
            state at t = 0, after a spectrally normalised stem, then the course's additive
            diffusion through the block, :data:`nsde_lib.NOISE_LEVELS`).
        sigma: the noise scale σ > 0 of the two noisy families (at t = 0 for ``"noise-at-0"``).
        **arch: ``channels``, ``steps``, ``T`` ... of the :class:`nsde_lib.SDEClassifier`.
    """
    checks.one_of("family", family, SMOOTHING_FAMILIES)
    if family == "ode":
        return SDEClassifier(in_channels, num_classes, **arch)
    sigma = positive("sigma", sigma)
    if family == "smoothed":
        return Smooth(SDEClassifier(in_channels, num_classes, **arch), num_classes, sigma)
    return SDEClassifier(in_channels, num_classes, noise="additive", sigma0=sigma,
                         spectral_stem=True, **NOISE_LEVELS["additive"], **arch)


def smoother_of(model: nn.Module, image_shape) -> Smooth | None:
    """The smoothed classifier that certifies ``model``: itself if it is a :class:`Smooth`, its
    hidden-space form (:func:`hidden_smooth`) for an SDEClassifier with noise at t = 0, else
    ``None`` (nothing to certify)."""
    if isinstance(model, Smooth):
        return model
    if isinstance(model, SDEClassifier) and model.sigma0 > 0:
        return hidden_smooth(model, image_shape)
    return None


def smoothing_scores(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                     eps: Sequence[float] = (0.5,),
                     radii: Sequence[float] = (0.25, 0.5), K: int = 8, eot: int = 4,
                     steps: int = 10, n0: int = 100, n: int = 1000, alpha: float = 0.001,
                     batch_size: int = 1000, seed: int = 0, certify: bool = True,
                     progress: bool = False) -> dict:
    """One noisy model, three numbers: clean accuracy, EOT-PGD accuracy, certified accuracy.

    The empirical side is measured as chapter 05 measures it (the mean softmax of ``K`` noisy
    passes; ℓ2-PGD with ``eot`` noise draws per gradient, or plain PGD for a deterministic
    model); the certified side is :func:`certify_dataset` on :func:`smoother_of` ``(model)``
    (radii in image space; nothing is certified for a model without noise, the Neural ODE;
    ``certify=False`` skips it when the caller certifies other inputs itself).

    Returns:
        dict: ``clean`` (float), ``pgd`` (one accuracy per ε), and for a certifiable model:
        ``certified`` (one per radius), ``classes`` and ``radii`` (per input), ``lipschitz``
        (of the encoder before the noise; 1 for input smoothing).
    """
    smooth = smoother_of(model, x.shape[1:])
    noisy = getattr(model, "noise_on", True)
    out = {"clean": accuracy(model, x, y, K=K, seed=seed),
           "pgd": accuracy_vs_eps(model, x, y, list(eps), norm="l2", steps=steps,
                                  eot=eot if noisy else 1, K=K, seed=seed, progress=progress)}
    if smooth is not None:
        out["lipschitz"] = smooth.lipschitz
    if smooth is not None and certify:
        classes, rads = certify_dataset(smooth, x, n0=n0, n=n, alpha=alpha,
                                        batch_size=batch_size, seed=seed, progress=progress)
        out.update(certified=certified_accuracy(classes, rads, y, radii), classes=classes,
                   radii=rads)
    return out
