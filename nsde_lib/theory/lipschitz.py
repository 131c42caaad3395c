"""Lipschitz constants (Corollary 4.0.1 of paper 000 wants L; paper 004 controls it): one power
iteration serves every norm in the library.

* :func:`operator_norm`: the largest singular value of a linear map (a matrix, a convolution on
  an image of a given size, a pooling);
* :func:`local_lipschitz`: ‖∂f/∂x‖₂ at given points (a *lower* estimate of L), per sample or for
  the whole batch map (BatchNorm in training mode couples the samples);
* :func:`spectral_norms` / :func:`lipschitz_bound`: each layer's norm and their product (an
  *upper* bound on L).

All three run :func:`power_iteration` on AᵀA with autograd's vector-Jacobian products: Aᵀ (or
the Jacobian J) is never written down. Power iteration rises to the norm from below, and slowly
when the top singular values are close (a smoothing convolution's are); where the norm must be an
*upper* bound (a certificate, :func:`nsde_lib.hidden_smooth`) and the input is small,
``operator_norm(..., exact=True)`` writes AᵀA down instead and takes its largest eigenvalue.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..checks import count, positive

__all__ = ["power_iteration", "operator_norm", "local_lipschitz", "spectral_norms",
           "lipschitz_bound"]


def power_iteration(apply: Callable[[torch.Tensor], torch.Tensor],
                    apply_t: Callable[[torch.Tensor], torch.Tensor], v: torch.Tensor, *,
                    per_sample: bool = False, n_iter: int = 200,
                    tol: float = 1e-9) -> torch.Tensor:
    """Largest singular value of a linear map A by power iteration on AᵀA.

    Each iterate ‖A v‖ (‖v‖ = 1) is below σ_max(A) and rises to it; the loop stops once every
    estimate moves by less than ``tol`` (relative) from one iteration to the next.

    Args:
        apply: v ↦ A v. apply_t: w ↦ Aᵀ w.
        v: the start vector, shape ``(B, ...)`` (random, so that it is not orthogonal to the
            top singular vector).
        per_sample: A acts on each sample on its own (block-diagonal over dimension 0): one
            σ per sample. Otherwise one σ for the map of the whole tensor.
        n_iter: most iterations. tol: relative change at which to stop.

    Returns:
        σ estimates, shape ``(B,)`` with ``per_sample``, else a 0-d tensor.
    """
    count("n_iter", n_iter)
    tol = positive("tol", tol)

    def norms(w):
        return w.flatten(1).norm(dim=1) if per_sample else w.norm()

    def unit(w):
        n = norms(w).clamp_min(1e-300)
        return w / (n.view(-1, *([1] * (w.dim() - 1))) if per_sample else n)

    v, sigma = unit(v), None
    for _ in range(n_iter):
        av = apply(v)
        new = norms(av).detach()
        done = sigma is not None and bool(((new - sigma).abs()
                                           <= tol * new.clamp_min(1e-300)).all())
        sigma = new
        if done:
            break
        v = unit(apply_t(av))  # AᵀA v, normalised; zero if v fell into the kernel
    return sigma


def _start(shape, generator, dtype, device):
    # drawn on the CPU, so that one seed gives one start vector on every device
    return torch.randn(tuple(shape), generator=generator, dtype=dtype).to(device)


EXACT_MAX_INPUTS = 20_000  # inputs of a map whose AᵀA exact=True writes down (n² entries)


def operator_norm(linear: Callable[[torch.Tensor], torch.Tensor], input_shape, *,
                  n_iter: int = 200, tol: float = 1e-9,
                  generator: torch.Generator | None = None, dtype=torch.float64,
                  device=None, exact: bool = False) -> float:
    """‖A‖₂ of a bias-free linear map, by :func:`power_iteration` (or exactly, for small inputs).

    Aᵀ is never written down: autograd's vector-Jacobian product of the map *is* Aᵀu, so any
    bias-free linear function works (a matrix, a convolution with its padding and stride, a
    pooling). The norm of a convolution is that of the operator on an input of
    ``input_shape`` (its padding and the image size matter), not that of its reshaped kernel.

    Args:
        linear: bias-free linear map taking a tensor of ``input_shape``.
        input_shape: the shape of its input, batch dimension included (e.g. ``(1, C, H, W)``).
        n_iter, tol: see :func:`power_iteration`.
        generator: seeds the random start vector.
        exact: write AᵀA down (its columns AᵀA·e_i, a batch of basis inputs at a time; the map
            must act on each sample of the batch on its own, ``input_shape[0] == 1``) and return
            the square root of its largest eigenvalue: the norm to rounding error, from above as
            often as from below, where power iteration is always below. For inputs of at most
            :data:`EXACT_MAX_INPUTS` numbers (a 14×14 or 28×28 image).

    Returns:
        ‖A‖₂ as a float.
    """
    if exact:
        return _exact_norm(linear, tuple(input_shape), dtype, device)
    def apply_t(w):
        with torch.enable_grad():
            x = torch.zeros(tuple(input_shape), dtype=w.dtype, device=w.device,
                            requires_grad=True)
            (out,) = torch.autograd.grad(linear(x), x, grad_outputs=w)
        return out

    v = _start(input_shape, generator, dtype, device)
    with torch.no_grad():
        return float(power_iteration(lambda u: linear(u), apply_t, v, n_iter=n_iter, tol=tol))


def _exact_norm(linear, input_shape, dtype, device, chunk: int = 256) -> float:
    n = math.prod(input_shape[1:])
    if input_shape[0] != 1 or n > EXACT_MAX_INPUTS:
        raise ValueError(f"exact=True needs input_shape (1, ...) of at most {EXACT_MAX_INPUTS} "
                         f"numbers, got {input_shape}; use power iteration (exact=False)")
    gram = torch.empty(n, n, dtype=dtype, device=device)
    for i in range(0, n, chunk):
        k = min(chunk, n - i)
        basis = torch.zeros(k, n, dtype=dtype, device=device)
        basis[:, i:i + k] = torch.eye(k, dtype=dtype, device=device)
        with torch.enable_grad():
            x = basis.view(k, *input_shape[1:]).requires_grad_(True)
            out = linear(x)
            # AᵀA e for the k basis vectors: the vector-Jacobian product with A e itself
            (ata,) = torch.autograd.grad(out, x, grad_outputs=out.detach())
        gram[:, i:i + k] = ata.reshape(k, n).T
    return math.sqrt(max(float(torch.linalg.eigvalsh((gram + gram.T) / 2)[-1]), 0.0))


def local_lipschitz(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                    n_iter: int = 50, *, tol: float = 1e-7, per_sample: bool = True,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """‖∂f/∂x‖₂ at each point of a batch, by :func:`power_iteration` on JᵀJ (autograd, no J).

    The largest of these over many points is a *lower* estimate of the Lipschitz constant
    (the supremum of the Jacobian norm); :func:`lipschitz_bound` is an upper one.

    Args:
        f: maps a batch ``(B, *shape)`` to ``(B, *out)``, e.g. ``lambda y: drift(t, y)``.
        x: points, ``(B, *shape)``.
        n_iter: most iterations; stops earlier once every estimate changes by < ``tol``.
        per_sample: each sample on its own (f has no batch statistics), one norm per point;
            ``False``: the norm of the Jacobian of the whole batch map ``(B, *shape) →
            (B, *out)``, as BatchNorm in training mode couples the samples.
        generator: seeds the start vectors.

    Returns:
        Estimates ``(B,)`` (``per_sample``) or a 0-d tensor of the largest singular value.
    """
    if not isinstance(x, torch.Tensor) or x.dim() < 1:
        raise ValueError("x must be a batch of points, shape (B, *shape)")
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        y = f(x)
        # Jv by the double-vjp trick: Jᵀu is linear in u, and its vjp with v is Jv (plain
        # reverse mode, much cheaper here than torch.func's forward mode)
        u = torch.zeros_like(y, requires_grad=True)
        (jt_u,) = torch.autograd.grad(y, x, grad_outputs=u, create_graph=True)
        jv = lambda v: torch.autograd.grad(jt_u, u, grad_outputs=v, retain_graph=True)[0]  # noqa: E731
        jtw = lambda w: torch.autograd.grad(y, x, grad_outputs=w, retain_graph=True)[0]  # noqa: E731
        v = _start(x.shape, generator, x.dtype, x.device)
        sigma = power_iteration(jv, jtw, v, per_sample=per_sample, n_iter=n_iter, tol=tol)
    return sigma.detach()


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
                   tol: float = 1e-9, generator: torch.Generator | None = None,
                   exact: bool = False) -> list[tuple[str, float]]:
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
        n_iter, tol, generator, exact: for :func:`operator_norm` (``exact``: each linear
            layer's norm from its written-down AᵀA, for small inputs).

    Returns:
        ``[(layer name, norm), ...]``.

    Raises:
        ValueError: a layer it cannot bound, or a missing ``input_shape``.
    """
    shape = None if input_shape is None else tuple(int(s) for s in input_shape)
    power = dict(n_iter=n_iter, tol=tol, generator=generator, exact=exact)
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
                    tol: float = 1e-9, generator: torch.Generator | None = None,
                    exact: bool = False) -> float:
    """Upper bound on the Lipschitz constant of ``module``: the product of its layers' norms.

    For a composition, Lip(φ_k ∘ … ∘ φ_1) ≤ Π Lip(φ_i) (biases do not count). The bound is
    usually loose for deep networks (the worst directions of consecutive layers need not line
    up); :func:`local_lipschitz` gives the matching lower estimate. Each factor comes from power
    iteration, which converges from below to within ``tol``, or with ``exact`` from the layer's
    written-down AᵀA (small inputs; a bound that stays a bound). See :func:`spectral_norms`.
    """
    return math.prod(norm for _, norm in spectral_norms(module, input_shape, n_iter=n_iter,
                                                        tol=tol, generator=generator,
                                                        exact=exact))
