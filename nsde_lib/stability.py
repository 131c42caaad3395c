"""Stability of SDE solutions (paper 000, §4): Lyapunov exponents and Lipschitz constants.

* :func:`lyapunov_exponent` measures the almost-sure exponent lim (1/t)·log‖x_t‖ (Def. 4.1 B)
  from simulated paths.
* :func:`perturbation` runs two inputs through one SDE on the *same* Brownian path and returns
  ε_t = h^e_t − h_t (eq. 13).
* :func:`lipschitz_bound` bounds the Lipschitz constant L of a network by the product of its
  layers' operator norms (Corollary 4.0.1 wants L); :func:`local_lipschitz` measures the
  Jacobian's largest singular value at given points (a lower estimate of L).
* :func:`gbm_lyapunov` and :func:`gbm_moment_exponent`: the closed forms for geometric Brownian
  motion dx = μx dt + σx dB (the toy of eq. 11 has μ = 1) that the estimates are checked against.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .solver import sdeint, time_grid

__all__ = ["LyapunovEstimate", "log_norms", "lyapunov_exponent", "perturbation",
           "gbm_lyapunov", "gbm_moment_exponent", "critical_moment_order",
           "spectral_norms", "lipschitz_bound", "local_lipschitz", "operator_norm"]


# --- Lyapunov exponents -------------------------------------------------------------------------

class LyapunovEstimate(NamedTuple):
    """An almost-sure exponent measured from ``n_paths`` paths.

    Attributes:
        exponent: mean over paths of the per-path slope (a float).
        stderr: standard error of that mean, std(per_path) / sqrt(n_paths) (NaN for one path).
        per_path: the per-path slopes, shape ``(n_paths,)``, float64.
    """

    exponent: float
    stderr: float
    per_path: torch.Tensor


def log_norms(paths: torch.Tensor) -> torch.Tensor:
    """log‖x_t‖ per path: shape ``(T, n_paths)`` from paths ``(T, n_paths, *state)``.

    The norm is Euclidean over everything after dimension 1 (|x| for scalar states, paths of
    shape ``(T, n_paths)``); a single path of shape ``(T,)`` becomes ``(T, 1)``. Float64.

    Raises:
        ValueError: non-finite values, or a path that is exactly 0 (log‖x‖ = −∞; in floating
            point this means the path underflowed: shorten the horizon).
    """
    if not isinstance(paths, torch.Tensor):
        raise ValueError(f"paths must be a torch.Tensor, got {type(paths).__name__}")
    x = paths.detach().to(torch.float64)
    if x.dim() == 1:
        x = x[:, None]
    if x.dim() < 2:
        raise ValueError(f"paths must have shape (T, n_paths, ...), got {tuple(paths.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("paths hold NaN or Inf values; the simulation diverged")
    norms = x.flatten(2).norm(dim=2) if x.dim() > 2 else x.abs()  # (T, n_paths)
    if (norms == 0).any():
        t, i = (norms == 0).nonzero()[0].tolist()
        raise ValueError(f"path {i} is exactly 0 at time index {t}: log‖x‖ = -inf "
                         "(underflow?); use a shorter horizon or a smaller window")
    return norms.log()


def lyapunov_exponent(paths: torch.Tensor, ts, *, t_min: float | None = None,
                      t_max: float | None = None, method: str = "fit") -> LyapunovEstimate:
    """Estimate the almost-sure exponent λ = lim (1/t)·log‖x_t‖ from simulated paths.

    Each path gives one slope of log‖x_t‖ against t over the window ``[t_min, t_max]``; the
    estimate is their mean, with its standard error. Two estimators:

    * ``"fit"``: the least-squares slope over every time in the window. The intercept absorbs
      log‖x_0‖ and any transient before the exponential regime.
    * ``"endpoint"``: (log‖x_{t_max}‖ − log‖x_{t_min}‖) / (t_max − t_min).

    For x_t = x_0·exp(λt + σB_t) (geometric Brownian motion) both are unbiased; their variances
    per path are σ²/(t_max − t_min) for the endpoint and 6/5 of that for the fit (on a fine
    grid). Averaging over paths is what paper 000 does in Fig. 4 "to cancel out the volatility".

    Args:
        paths: ``(T, n_paths, *state)``, ``(T, n_paths)`` or ``(T,)`` (see :func:`log_norms`).
        ts: the ``T`` times of the paths (list or 1-D tensor).
        t_min, t_max: the window (default: all of ``ts``); at least 2 times must fall in it.
        method: ``"fit"`` or ``"endpoint"``.

    Returns:
        :class:`LyapunovEstimate` ``(exponent, stderr, per_path)``.

    Raises:
        ValueError: shapes that disagree, a window with fewer than 2 times, an unknown
            ``method``, non-finite or zero paths.
    """
    if method not in ("fit", "endpoint"):
        raise ValueError(f"method must be 'fit' or 'endpoint', got {method!r}")
    logs = log_norms(paths)  # (T, n_paths)
    t = torch.as_tensor(ts, dtype=torch.float64).detach().cpu().flatten()
    if len(t) != logs.shape[0]:
        raise ValueError(f"ts has {len(t)} times but paths has {logs.shape[0]} "
                         "(paths must be (len(ts), n_paths, ...))")
    lo = t[0].item() if t_min is None else float(t_min)
    hi = t[-1].item() if t_max is None else float(t_max)
    keep = (t >= lo - 1e-12) & (t <= hi + 1e-12)
    if int(keep.sum()) < 2:
        raise ValueError(f"the window [t_min, t_max] = [{lo}, {hi}] holds {int(keep.sum())} of "
                         "the times ts; it needs at least 2")
    t, logs = t[keep].to(logs.device), logs[keep]
    if method == "endpoint":
        slopes = (logs[-1] - logs[0]) / (t[-1] - t[0])
    else:
        tc = t - t.mean()
        slopes = (tc[:, None] * (logs - logs.mean(0))).sum(0) / (tc * tc).sum()
    n = slopes.numel()
    stderr = float(slopes.std() / math.sqrt(n)) if n > 1 else math.nan
    return LyapunovEstimate(float(slopes.mean()), stderr, slopes.cpu())


def gbm_lyapunov(mu: float, sigma: float) -> float:
    """Almost-sure exponent of dx = μx dt + σx dB: μ − σ²/2 (paper 000, §4.1 with μ = 1)."""
    return mu - sigma ** 2 / 2


def gbm_moment_exponent(mu: float, sigma: float, p: float = 1.0) -> float:
    """Growth rate of E|x_t|^p for geometric Brownian motion: p·(μ − σ²/2 + p·σ²/2).

    p = 1 gives μ: the mean x_0·e^{μt} does not feel the noise at all. The almost-sure exponent
    μ − σ²/2 is the slope of this curve at p = 0.
    """
    return p * (mu - sigma ** 2 / 2 + p * sigma ** 2 / 2)


def critical_moment_order(mu: float, sigma: float) -> float:
    """The p > 0 where E|x_t|^p switches from decay to growth: 1 − 2μ/σ² (needs σ > 0).

    Moments of order below it decay, above it grow; it is positive exactly when the solution is
    almost surely stable (σ² > 2μ).
    """
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma!r}")
    return 1 - 2 * mu / sigma ** 2


# --- two inputs, one Brownian path --------------------------------------------------------------

def perturbation(sde, y0: torch.Tensor, y0_perturbed: torch.Tensor, ts, *, dt: float,
                 method: str = "euler", bm: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """ε_t = h^e_t − h_t for two inputs driven by one Brownian path (paper 000, eq. 13).

    Both runs use the same increments ``bm`` (drawn once here when ``None``) and, for jumps,
    the same draws: the second run starts from a copy of the generator's state.

    Args:
        sde: anything :func:`nsde_lib.sdeint` accepts.
        y0, y0_perturbed: the clean and the perturbed input, same shape ``(B, *state)``.
        ts, dt, method: as for :func:`nsde_lib.sdeint`.
        bm: increments ``(n_steps, *y0.shape)``; pass them to control the noise (e.g. one
            scalar Brownian motion per sample, as in Corollary 4.0.1).
        generator: draws ``bm`` (when ``None``) and the jumps; default: a fresh one seeded
            from torch's global RNG.

    Returns:
        ε, shape ``(len(ts), *y0.shape)``; ε[0] = y0_perturbed − y0.
    """
    if not isinstance(y0, torch.Tensor) or not isinstance(y0_perturbed, torch.Tensor) \
            or y0.shape != y0_perturbed.shape:
        raise ValueError("y0 and y0_perturbed must be tensors of the same shape, got "
                         f"{getattr(y0, 'shape', y0)} and "
                         f"{getattr(y0_perturbed, 'shape', y0_perturbed)}")
    if generator is None:  # a private generator, so that both runs can replay the same draws
        seed = int(torch.randint(0, 2 ** 62, (1,)))
        generator = torch.Generator(device=y0.device).manual_seed(seed)
    if bm is None:
        grid, _ = time_grid(ts, dt)
        steps = torch.tensor(grid, dtype=torch.float64).diff().to(y0.dtype)
        bm = torch.randn((len(grid) - 1, *y0.shape), generator=generator, dtype=y0.dtype,
                         device=y0.device)
        bm = bm * steps.sqrt().to(y0.device).view(-1, *([1] * y0.dim()))
    state = generator.get_state()
    clean = sdeint(sde, y0, ts, dt=dt, method=method, bm=bm, generator=generator)
    generator.set_state(state)
    perturbed = sdeint(sde, y0_perturbed, ts, dt=dt, method=method, bm=bm, generator=generator)
    return perturbed - clean


# --- Lipschitz constants ------------------------------------------------------------------------

def operator_norm(linear: Callable[[torch.Tensor], torch.Tensor], input_shape, *,
                  n_iter: int = 200, tol: float = 1e-9,
                  generator: torch.Generator | None = None, dtype=torch.float64,
                  device=None) -> float:
    """Largest singular value of a linear map by power iteration on AᵀA.

    Aᵀ is never written down: autograd's vector-Jacobian product of the map *is* Aᵀu, so any
    bias-free linear function works (a matrix, a convolution with its padding and stride, a
    pooling). Each iterate ‖Av‖ (‖v‖ = 1) is below the true norm and increases to it; the loop
    stops when it changes by less than ``tol`` (relative).

    Args:
        linear: bias-free linear map taking a tensor of ``input_shape``.
        input_shape: the shape of its input, batch dimension included (e.g. ``(1, C, H, W)``).
        n_iter: maximum number of iterations.
        tol: relative change at which to stop.
        generator: seeds the random start vector.

    Returns:
        ‖A‖₂ as a float.
    """
    v = torch.randn(tuple(input_shape), generator=generator, dtype=dtype)
    v = (v / v.norm()).to(device) if device is not None else v / v.norm()
    sigma = 0.0
    for _ in range(n_iter):
        with torch.enable_grad():
            x = v.detach().requires_grad_(True)
            y = linear(x)
            (ata_v,) = torch.autograd.grad(y, x, grad_outputs=y.detach())
        new = float(y.detach().norm())
        norm = ata_v.norm()
        if norm == 0:  # the start vector lies in the kernel (or A = 0)
            return new
        v = ata_v / norm
        if abs(new - sigma) <= tol * max(new, 1e-300):
            return new
        sigma = new
    return sigma


# Lipschitz constants of elementwise activations: sup |φ'|.
_GELU_MAX = 1.1289  # sup of d/dx [x·Φ(x)], at x ≈ 0.7518
_SILU_MAX = 1.0998  # sup of d/dx [x·sigmoid(x)], at x ≈ 2.3994
_ACTIVATIONS = {
    nn.ReLU: 1.0, nn.ReLU6: 1.0, nn.Tanh: 1.0, nn.Hardtanh: 1.0, nn.Softsign: 1.0,
    nn.Softplus: 1.0, nn.Sigmoid: 0.25, nn.GELU: _GELU_MAX, nn.SiLU: _SILU_MAX,
    nn.Identity: 1.0, nn.Flatten: 1.0, nn.Unflatten: 1.0,
}


def _layers(module: nn.Module, prefix: str):
    """(name, leaf) in the order the input goes through them."""
    hook = getattr(module, "lipschitz_modules", None)
    if callable(hook):
        children = [(f"{prefix}[{i}]", m) for i, m in enumerate(hook())]
    elif isinstance(module, nn.Sequential):
        children = [(f"{prefix}.{n}" if prefix else n, m) for n, m in module.named_children()]
    else:
        yield prefix or type(module).__name__, module
        return
    for name, child in children:
        yield from _layers(child, name)


def _leaf_norm(m: nn.Module, shape, **power) -> float:
    """Operator norm of one layer acting on inputs of ``shape`` (batch of 1 included)."""
    for kind, value in _ACTIVATIONS.items():
        if isinstance(m, kind):
            return value
    if isinstance(m, nn.LeakyReLU):
        return max(1.0, abs(m.negative_slope))
    if isinstance(m, nn.ELU):
        return max(1.0, m.alpha)
    if isinstance(m, nn.Dropout):
        return 1.0 if not m.training else 1.0 / (1.0 - m.p)
    if isinstance(m, nn.Linear):
        w = m.weight.detach().double()
        return operator_norm(lambda x: x @ w.T, (1, w.shape[1]), device=w.device, **power)
    conv = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d)
    linear_pools = (nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)
    if isinstance(m, conv + linear_pools):
        if shape is None:
            raise ValueError(f"input_shape is needed to bound a {type(m).__name__} layer (its "
                             "norm depends on the image size); pass e.g. input_shape=(C, H, W)")
        device = next(iter(m.parameters()), torch.empty(0)).device
        if isinstance(m, conv):
            w = m.weight.detach().double()
            if isinstance(m, (nn.ConvTranspose1d, nn.ConvTranspose2d)):
                conv_t = F.conv_transpose1d if isinstance(m, nn.ConvTranspose1d) \
                    else F.conv_transpose2d
                apply = lambda x: conv_t(x, w, None, m.stride, m.padding,  # noqa: E731
                                         m.output_padding, m.groups, m.dilation)
            else:  # the module's own forward keeps its padding mode; bias dropped
                apply = lambda x: m._conv_forward(x, w, None)  # noqa: E731
        else:
            apply = m
        return operator_norm(apply, (1, *shape), device=device, **power)
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        if m.training or m.running_var is None:
            raise ValueError(f"{type(m).__name__} in training mode normalises by batch "
                             "statistics and has no fixed Lipschitz constant; call model.eval()")
        scale = m.running_var.detach().double().add(m.eps).rsqrt()
        if m.weight is not None:
            scale = scale * m.weight.detach().double()
        return float(scale.abs().max())
    if isinstance(m, (nn.MaxPool1d, nn.MaxPool2d)):
        k = torch.nn.modules.utils._pair(m.kernel_size)
        s = torch.nn.modules.utils._pair(m.stride or m.kernel_size)
        overlap = math.ceil(k[0] / s[0]) * (math.ceil(k[1] / s[1])
                                            if isinstance(m, nn.MaxPool2d) else 1)
        return math.sqrt(overlap)  # each input sits in at most `overlap` windows
    raise ValueError(f"lipschitz_bound does not know the layer {type(m).__name__}; supported: "
                     "Linear, Conv1d/2d/3d, ConvTranspose1d/2d, average/max pooling, BatchNorm "
                     "(eval), Dropout and the usual activations, composed by nn.Sequential or "
                     "a module's lipschitz_modules() method")


def spectral_norms(module: nn.Module, input_shape=None, *, n_iter: int = 200,
                   tol: float = 1e-9, generator: torch.Generator | None = None
                   ) -> list[tuple[str, float]]:
    """The operator norm (Lipschitz constant) of each layer of ``module``, in order.

    The layers are found through ``nn.Sequential`` containers, or a module's own
    ``lipschitz_modules()`` method (the list of layers its input goes through one after the
    other, e.g. the y-path of a time-conditioned layer whose time term does not depend on y).
    Linear maps (Linear, convolutions, average pooling) get :func:`operator_norm` on the true
    operator; convolutions on an input of the layer's real shape, because the norm of a
    convolution depends on the image size and its padding, not only on its kernel.

    Args:
        module: the network (put it in ``eval()`` if it has BatchNorm or Dropout).
        input_shape: shape of one input without the batch dimension, e.g. ``(C, H, W)``;
            needed when there are convolutions or pooling, optional otherwise.
        n_iter, tol, generator: for :func:`operator_norm`.

    Returns:
        ``[(layer name, norm), ...]``.

    Raises:
        ValueError: a layer it cannot bound, or a missing ``input_shape``.
    """
    shape = None if input_shape is None else tuple(int(s) for s in input_shape)
    power = dict(n_iter=n_iter, tol=tol, generator=generator)
    out = []
    for name, layer in _layers(module, ""):
        out.append((name, _leaf_norm(layer, shape, **power)))
        if shape is not None:  # the next layer sees this one's output shape
            param = next(iter(layer.parameters()), None)
            probe = torch.zeros((1, *shape), dtype=param.dtype if param is not None else None,
                                device=param.device if param is not None else None)
            with torch.no_grad():
                shape = tuple(layer(probe).shape[1:])
    return out


def lipschitz_bound(module: nn.Module, input_shape=None, *, n_iter: int = 200,
                    tol: float = 1e-9, generator: torch.Generator | None = None) -> float:
    """Upper bound on the Lipschitz constant of ``module``: the product of its layers' norms.

    For a composition, Lip(φ_k ∘ … ∘ φ_1) ≤ Π Lip(φ_i) (biases do not count). The bound is
    usually loose for deep networks (the worst directions of consecutive layers need not line
    up); :func:`local_lipschitz` gives the matching lower estimate. Each factor comes from power
    iteration, which converges from below to within ``tol``. See :func:`spectral_norms`.
    """
    return math.prod(norm for _, norm in spectral_norms(module, input_shape, n_iter=n_iter,
                                                        tol=tol, generator=generator))


def local_lipschitz(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                    n_iter: int = 50, *, tol: float = 1e-7,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """‖∂f/∂x‖₂ at each point of a batch, by power iteration on JᵀJ (autograd, no Jacobian).

    The largest of these over many points is a *lower* estimate of the Lipschitz constant
    (the supremum of the Jacobian norm); :func:`lipschitz_bound` is an upper one.

    Args:
        f: maps a batch ``(B, *shape)`` to ``(B, *out)``, each sample on its own (no batch
            statistics), e.g. ``lambda y: drift(t, y)``.
        x: points, ``(B, *shape)``.
        n_iter: maximum iterations; stops earlier once every sample changes by < ``tol``.
        generator: seeds the start vectors.

    Returns:
        Estimates ``(B,)`` of the largest singular value of the Jacobian at each point.
    """
    if not isinstance(x, torch.Tensor) or x.dim() < 1:
        raise ValueError("x must be a batch of points, shape (B, *shape)")
    shape = (-1, *([1] * (x.dim() - 1)))
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        y = f(x)
        # Jv by the double-vjp trick: Jᵀu is linear in u, and its vjp with v is Jv (plain
        # reverse mode, much cheaper here than torch.func's forward mode)
        u = torch.zeros_like(y, requires_grad=True)
        (jt_u,) = torch.autograd.grad(y, x, grad_outputs=u, create_graph=True)
        v = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        v = v / v.flatten(1).norm(dim=1).clamp_min(1e-300).view(shape)
        sigma = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for _ in range(n_iter):
            (jv,) = torch.autograd.grad(jt_u, u, grad_outputs=v, retain_graph=True)
            new = jv.flatten(1).norm(dim=1)
            (jtjv,) = torch.autograd.grad(y, x, grad_outputs=jv, retain_graph=True)
            v = jtjv / jtjv.flatten(1).norm(dim=1).clamp_min(1e-300).view(shape)
            done = bool(((new - sigma).abs() <= tol * new.clamp_min(1e-300)).all())
            sigma = new
            if done:
                break
    return sigma.detach()
