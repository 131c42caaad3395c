"""The downloadable data sets, offline: the real CIFAR-10 loader on a tiny fixture written in
CIFAR's own on-disk format (pickled batches + batches.meta, checked by torchvision's md5 lists),
CIFAR-10.1 from .npy files, and clear messages when the data are missing."""
import hashlib
import pickle
import urllib.error

import numpy as np
import pytest
import torch
from torchvision.datasets import CIFAR10

from nsde_lib import cli
from nsde_lib import DatasetMissing, cifar10, cifar10_1, load, stl10


CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck"]


def _md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_cifar(root, per_batch=4, n_test=5, seed=0):
    """cifar-10-batches-py as the CIFAR site ships it: rows of 3072 bytes, R then G then B
    planes, each 32×32 row-major. Returns {file name: (data, labels)}."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    batches = {}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        n = n_test if name == "test_batch" else per_batch
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, n).tolist()
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": name, "labels": labels, "data": data,
                         "filenames": [f"{name}_{i}.png" for i in range(n)]}, f)
        batches[name] = (data, labels)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": CLASSES, "num_cases_per_batch": per_batch,
                     "num_vis": 3072}, f)
    return batches


@pytest.fixture
def cifar_root(tmp_path, monkeypatch):
    """A CIFAR-10 fixture whose checksums torchvision accepts (its md5 lists point at it)."""
    batches = write_cifar(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    monkeypatch.setattr(CIFAR10, "train_list",
                        [[f"data_batch_{i}", _md5(folder / f"data_batch_{i}")]
                         for i in range(1, 6)])
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", _md5(folder / "test_batch")]])
    monkeypatch.setattr(CIFAR10, "meta", dict(CIFAR10.meta, md5=_md5(folder / "batches.meta")))
    monkeypatch.setattr(CIFAR10, "download", _offline)
    return tmp_path, batches


def _offline(self):
    raise urllib.error.URLError("[Errno -2] Name or service not known")


def test_cifar10_loader_reads_the_on_disk_format(cifar_root):
    root, batches = cifar_root
    (x, y), (xt, yt) = cifar10(root=root, download=False)
    assert x.shape == (20, 3, 32, 32) and xt.shape == (5, 3, 32, 32)
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    train_rows = np.concatenate([batches[f"data_batch_{i}"][0] for i in range(1, 6)])
    train_labels = sum((batches[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    # channel c of image i is bytes [1024c, 1024(c+1)) of its row, 32×32 row-major
    expected = torch.from_numpy(train_rows.reshape(-1, 3, 32, 32).astype(np.float32)) / 255
    torch.testing.assert_close(x, expected, rtol=0, atol=0)
    assert y.tolist() == train_labels and yt.tolist() == batches["test_batch"][1]
    assert float(xt[2, 1, 5, 7]) == pytest.approx(
        batches["test_batch"][0][2, 1024 + 5 * 32 + 7] / 255.0, rel=1e-6)  # G plane, row 5, col 7
    (xs, ys), (xts, _) = load("cifar10", root=root, download=False, n=7)
    assert xs.shape[0] == 7 and xts.shape[0] == 5 and torch.equal(xs, x[:7])


def test_checksums_that_do_not_match_are_a_missing_data_set(tmp_path):
    write_cifar(tmp_path)  # torchvision's real md5 lists: the fixture is "corrupt"
    with pytest.raises(DatasetMissing) as err:
        cifar10(root=tmp_path, download=False)
    message = str(err.value)
    assert str(tmp_path) in message and "cifar-10-python.tar.gz" in message
    assert "download=False" in message


def test_offline_download_says_how_to_get_the_data(tmp_path, monkeypatch):
    monkeypatch.setattr(CIFAR10, "download", _offline)
    with pytest.raises(DatasetMissing, match="download failed.*internet access"):
        cifar10(root=tmp_path / "empty")
    assert issubclass(DatasetMissing, FileNotFoundError)


def test_stl10_missing_is_a_clear_message(tmp_path):
    with pytest.raises(DatasetMissing, match="STL-10 is not in"):
        stl10(root=tmp_path, download=False)


def test_cifar10_1_pairs_cifar10_train_with_its_own_test_set(cifar_root):
    root, _ = cifar_root
    folder = root / "cifar10.1"
    folder.mkdir()
    rng = np.random.default_rng(1)
    data = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)  # published layout: N, H, W, C
    labels = rng.integers(0, 10, 6)
    np.save(folder / "cifar10.1_v6_data.npy", data)
    np.save(folder / "cifar10.1_v6_labels.npy", labels)
    (x, _), (xt, yt) = cifar10_1(root=root, download=False)
    assert x.shape == (20, 3, 32, 32) and xt.shape == (6, 3, 32, 32)
    torch.testing.assert_close(xt, torch.from_numpy(data).permute(0, 3, 1, 2).float() / 255)
    assert yt.tolist() == labels.tolist()
    np.save(folder / "cifar10.1_v6_data.npy", data[:, :16])  # wrong image size
    with pytest.raises(ValueError, match="corrupt"):
        cifar10_1(root=root, download=False)


def test_cifar10_1_missing_is_a_clear_message(cifar_root):
    root, _ = cifar_root
    with pytest.raises(DatasetMissing, match="CIFAR-10.1"):
        cifar10_1(root=root, download=False)


def test_the_cli_reports_missing_data_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(CIFAR10, "download", _offline)
    monkeypatch.setenv("NSDE_DATA", str(tmp_path / "nothing"))
    status = cli.main(["train", "--dataset", "cifar10", "--epochs", "1",
                       "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("error: CIFAR-10 is not in")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()  # nothing half-made


def test_a_cifar10_run_trains_on_the_fixture(cifar_root, monkeypatch, tmp_path):
    root, _ = cifar_root
    monkeypatch.setenv("NSDE_DATA", str(root))
    status = cli.main(["train", "--dataset", "cifar10", "--noise", "dropout", "--p", "0.2",
                       "--channels", "4", "--steps", "1", "--epochs", "1", "--batch-size", "8",
                       "--device", "cpu", "--no-progress", "--out", str(tmp_path / "run")])
    assert status == 0 and (tmp_path / "run" / "checkpoint.pt").is_file()
