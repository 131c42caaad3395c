"""Argument checks for the whole library: one rule and one wording for every value a user passes.

A "number" is one real value: a Python or NumPy scalar, or a 0-d tensor (``dt=torch.tensor(0.1)``
and ``sigma=np.float32(0.5)`` are fine). ``True``/``False`` are not numbers here. Every check
returns the value in its plain form (a float, an int, the name) or raises ``ValueError`` /
``TypeError`` naming the argument and what it may be. No module keeps a private copy.
"""
from __future__ import annotations

import math
import numbers

import torch

__all__ = ["real", "positive", "non_negative", "count", "one_of", "probability", "open_unit",
           "sigma", "rate", "step_factor", "eps", "tensor", "images"]


def real(value) -> float | None:
    """``value`` as a float if it is one real number, else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, torch.Tensor):
        if value.dim() != 0 or value.dtype == torch.bool or value.is_complex():
            return None
        return float(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return None


def positive(name: str, value) -> float:
    """``value`` as a float, or ``ValueError`` naming ``name`` unless it is finite and > 0."""
    x = real(value)
    if x is None or not math.isfinite(x) or x <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return x


def non_negative(name: str, value) -> float:
    """``value`` as a float, or ``ValueError`` naming ``name`` unless it is finite and ≥ 0."""
    x = real(value)
    if x is None or not math.isfinite(x) or x < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return x


def count(name: str, value, low: int = 1) -> int:
    """``value`` itself, or ``ValueError`` naming ``name`` unless it is an integer ≥ ``low``
    (``True``/``False`` are not counts; NumPy integers are)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def one_of(name: str, value, allowed):
    """``value`` itself, or ``ValueError`` naming ``name`` and the allowed values."""
    try:
        ok = value in allowed
    except TypeError:  # an unhashable value asked of a set or dict
        ok = False
    if not ok:
        raise ValueError(f"{name} must be one of {tuple(allowed)}, got {value!r}")
    return value


def probability(value, name: str = "p (drop probability)") -> float:
    """A drop probability: ``value`` as a float in [0, 1), else ``ValueError``."""
    x = real(value)
    if x is None or not 0 <= x < 1:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return x


def open_unit(name: str, value) -> float:
    """A level or share strictly inside (0, 1) (e.g. a significance level α)."""
    x = real(value)
    if x is None or not 0 < x < 1:
        raise ValueError(f"{name} must be in (0, 1), got {value!r}")
    return x


def sigma(value, name: str = "sigma") -> float:
    """A diffusion scale σ ≥ 0."""
    return non_negative(name, value)


def rate(value, name: str = "rate (Poisson jump intensity λ)") -> float:
    """A Poisson jump intensity λ ≥ 0."""
    return non_negative(name, value)


def step_factor(value, name: str = "h (the step factor)") -> float:
    """A ResNet step factor h > 0 (paper 003)."""
    return positive(name, value)


def eps(value, name: str = "eps") -> float:
    """An attack radius ε ≥ 0."""
    return non_negative(name, value)


def tensor(name: str, value, *, dim: int | tuple[int, ...] | None = None,
           floating: bool = False) -> torch.Tensor:
    """``value`` itself if it is a tensor of the given number of dimensions (and a floating
    dtype when asked), else ``TypeError``/``ValueError`` naming ``name``."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    dims = (dim,) if isinstance(dim, int) else dim
    if dims is not None and value.dim() not in dims:
        want = " or ".join(str(d) for d in dims)
        raise ValueError(f"{name} must have {want} dimensions, got shape {tuple(value.shape)}")
    if floating and not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor (e.g. images in [0, 1] as "
                        f"float32), got dtype {value.dtype}; convert with x.float() / 255")
    return value


def images(name: str, x, *, channels: int | None = None, min_size: int = 1) -> torch.Tensor:
    """A float batch of images ``(B, C, H, W)`` with ``channels`` channels and sides of at least
    ``min_size`` pixels, else an error that says which of these it is not."""
    tensor(name, x, dim=4, floating=True)
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{name} must have shape (B, {channels}, H, W) (the model was built "
                         f"for {channels} channel{'s' * (channels != 1)}), got {tuple(x.shape)}")
    if min(x.shape[-2:]) < min_size:
        raise ValueError(f"{name} must be images of at least {min_size}x{min_size} pixels, got "
                         f"{tuple(x.shape[-2:])}")
    return x

