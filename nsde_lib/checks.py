"""Argument checks shared by the library: one rule and one wording for every number a user passes.

A "number" is one real value: a Python or NumPy scalar, or a 0-d tensor (``dt=torch.tensor(0.1)``
and ``sigma=np.float32(0.5)`` are fine). ``True``/``False`` are not numbers here.
"""
from __future__ import annotations

import math
import numbers

import torch


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
    (``True``/``False`` are not counts)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return value
