"""The data loaders: real MNIST-5k and scikit-learn's two moons, and their failure modes."""
import gzip

import numpy as np
import pytest
import torch

import nsde_lib as nl
from nsde_lib import mnist5k_path, stratified_split


@pytest.fixture(scope="module")
def mnist():
    return nl.mnist5k(seed=0)


def _rows(x: torch.Tensor) -> set:
    return {row.tobytes() for row in x.reshape(len(x), -1).numpy()}


def test_mnist5k_shapes_dtypes_and_range(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    assert x_train.shape == (4000, 1, 28, 28) and x_test.shape == (1000, 1, 28, 28)
    assert x_train.dtype == torch.float32 and y_train.dtype == torch.int64
    assert float(x_train.min()) == 0.0 and float(x_train.max()) == 1.0
    assert x_train.device.type == "cpu"
    # real digits, not noise: about 19 % of MNIST pixels are ink
    assert 0.1 < float((x_train > 0.5).float().mean()) < 0.25


def test_mnist5k_has_500_per_class_split_400_100(mnist):
    (_, y_train), (_, y_test) = mnist
    assert torch.bincount(y_train, minlength=10).tolist() == [400] * 10
    assert torch.bincount(y_test, minlength=10).tolist() == [100] * 10


def test_mnist5k_split_is_fixed_by_the_seed_and_disjoint(mnist):
    (x_train, _), (x_test, _) = mnist
    (x_train2, y_train2), (x_test2, _) = nl.mnist5k(seed=0)
    assert torch.equal(x_train, x_train2) and torch.equal(x_test, x_test2)
    train_rows, test_rows = _rows(x_train), _rows(x_test)
    assert not train_rows & test_rows and len(train_rows | test_rows) == 5000
    (_, _), (x_test3, _) = nl.mnist5k(seed=1)
    assert _rows(x_test3) != test_rows
    assert len(_rows(x_test3) & test_rows) < 400  # a new draw, not a shuffled copy


def test_stratified_split_keeps_proportions_and_is_disjoint():
    y = np.repeat(np.arange(3), [10, 20, 30])
    train, test = stratified_split(y, 0.2, seed=3)
    assert set(train).isdisjoint(test) and len(train) + len(test) == 60
    assert np.bincount(y[test]).tolist() == [2, 4, 6]
    again = stratified_split(y, 0.2, seed=3)
    assert np.array_equal(train, again[0]) and np.array_equal(test, again[1])


def test_mnist5k_subset_keeps_classes_balanced():
    (_, y_train), (_, y_test) = nl.mnist5k(n=200, seed=0)
    assert torch.bincount(y_train).tolist() == [16] * 10
    assert torch.bincount(y_test).tolist() == [4] * 10


@pytest.mark.parametrize("kwargs", [{"n": 19}, {"n": 20}, {"test_fraction": 1.0},
                                    {"test_fraction": 0.0}])
def test_too_little_data_for_the_split_is_a_value_error(kwargs):
    with pytest.raises(ValueError, match="n must be|too few|test_fraction"):
        nl.mnist5k(**kwargs)


def test_a_missing_file_is_a_clear_file_not_found_error(tmp_path, monkeypatch):
    missing = tmp_path / "nope.csv.gz"
    with pytest.raises(FileNotFoundError, match="MNIST-5k file not found.*nope.csv.gz"):
        nl.mnist5k(path=missing)
    monkeypatch.setenv("NSDE_MNIST5K", str(missing))
    assert mnist5k_path() == missing
    with pytest.raises(FileNotFoundError, match="NSDE_MNIST5K|reinstall"):
        nl.mnist5k()


def _write_gz(path, rows):
    with gzip.open(path, "wt") as f:
        for row in rows:
            f.write(",".join(str(v) for v in row) + "\n")
    return path


@pytest.mark.parametrize("kind", ["not-gzip", "truncated", "wrong-width", "pixel-range", "label"])
def test_a_corrupt_file_is_a_value_error(tmp_path, kind):
    good = [[0] * 784 + [c] for c in range(10)] * 2
    path = tmp_path / "mnist.csv.gz"
    if kind == "not-gzip":
        path.write_bytes(b"this is not a gzip file at all")
    elif kind == "truncated":
        _write_gz(path, good)
        path.write_bytes(path.read_bytes()[:40])
    elif kind == "wrong-width":
        _write_gz(path, [[0] * 100 + [1]] * 20)
    elif kind == "pixel-range":
        _write_gz(path, [[300] * 784 + [1]] + good)
    else:
        _write_gz(path, [[0] * 784 + [12]] + good)
    with pytest.raises(ValueError, match="corrupt"):
        nl.mnist5k(path=path)


def test_moons_without_noise_lie_on_the_two_half_circles():
    (x, y), _ = nl.moons(200, 50, noise=0.0, seed=0)
    x, y = x.double(), y
    upper, lower = x[y == 0], x[y == 1]
    torch.testing.assert_close(upper.norm(dim=1), torch.ones(len(upper), dtype=torch.float64),
                               rtol=1e-6, atol=1e-6)
    centre = torch.tensor([1.0, 0.5], dtype=torch.float64)
    torch.testing.assert_close((lower - centre).norm(dim=1),
                               torch.ones(len(lower), dtype=torch.float64), rtol=1e-6, atol=1e-6)


def test_moons_noise_level_seed_and_balance():
    (x, y), (xt, yt) = nl.moons(4000, 1000, noise=0.1, seed=0)
    assert x.shape == (4000, 2) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.bincount(y).tolist() == [2000, 2000] and torch.bincount(yt).tolist() == [500, 500]
    # Gaussian noise of std 0.1 moves points off the circle by about 0.1 (radially)
    radial = torch.cat([x[y == 0].double().norm(dim=1) - 1,
                        (x[y == 1].double() - torch.tensor([1.0, 0.5])).norm(dim=1) - 1])
    assert abs(float(radial.pow(2).mean().sqrt()) - 0.1) < 0.01
    (x2, _), (xt2, _) = nl.moons(4000, 1000, noise=0.1, seed=0)
    assert torch.equal(x, x2) and torch.equal(xt, xt2)
    assert not torch.equal(xt[:500], x[:500])  # test points are a fresh draw


@pytest.mark.parametrize("call,name", [(lambda: nl.moons(1, 10), "n_train"),
                                       (lambda: nl.moons(10, 10, noise=-1), "noise"),
                                       (lambda: nl.load("cifar100"), "dataset"),
                                       (lambda: nl.moons(10, 10, device="tpu"), "device")])
def test_bad_arguments(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_load_by_name_dispatches():
    (x, _), _ = nl.load("moons", n_train=10, n_test=10)
    assert x.shape == (10, 2)
