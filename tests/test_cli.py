"""`python -m nsde_lib train / eval` on MNIST-5k at tiny size: run folders, exact resume after an
interruption, no overwriting, atomic weights-only checkpoints, one-line errors."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import nsde_lib as nl
import nsde_lib.train.loop
from nsde_lib import cli
from nsde_lib import mnist5k
from nsde_lib import load_checkpoint, load_run, save_checkpoint


ROOT = Path(__file__).resolve().parent.parent
TINY = ["--dataset", "mnist5k", "--n", "60", "--channels", "4", "--steps", "2",
        "--batch-size", "20", "--device", "cpu", "--no-progress"]


def train(out, *extra):
    return cli.main(["train", *TINY, "--out", str(out), *extra])


def lines(path):
    return [json.loads(x) for x in Path(path).read_text().splitlines()]


def test_train_then_eval_writes_a_complete_run(tmp_path, capsys):
    run = tmp_path / "add"
    assert train(run, "--noise", "additive", "--sigma", "0.3", "--epochs", "2") == 0
    config = json.loads((run / "config.json").read_text())
    assert config["noise"] == "additive" and config["sigma"] == 0.3 and config["epochs"] == 2
    metrics = lines(run / "metrics.jsonl")
    assert [m["epoch"] for m in metrics] == [1, 2]
    assert all(0 <= m["test_acc"] <= 1 and m["loss"] > 0 for m in metrics)
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    assert ckpt["epoch"] == 2 and "stem.weight" in ckpt["model"]

    assert cli.main(["eval", "--run", str(run), "--ensemble", "3", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "w/o TTN" in out and "K=3" in out
    result = lines(run / "eval.jsonl")[-1]
    # the no-noise accuracy, recomputed by hand from the checkpoint
    _, model, _, _ = load_run(run, "cpu")
    _, (x, y) = mnist5k(n=60)
    with torch.no_grad():
        acc = float((model(x, noise_on=False).argmax(1) == y).double().mean())
    assert result["acc_no_ttn"] == pytest.approx(acc, abs=1e-12)
    assert result["K"] == 3 and 0 <= result["acc_ttn"] <= 1


def test_an_ode_run_has_no_test_time_noise_column(tmp_path):
    run = tmp_path / "ode"
    assert train(run, "--epochs", "1") == 0
    assert cli.main(["eval", "--run", str(run), "--ensemble", "5", "--device", "cpu"]) == 0
    assert lines(run / "eval.jsonl")[-1]["acc_ttn"] is None


def test_resume_after_an_interruption_equals_an_uninterrupted_run(tmp_path, monkeypatch):
    # --no-store: the interrupted run must train, not load what "whole" left in the store
    args = ("--noise", "multiplicative", "--sigma", "0.5", "--epochs", "3", "--augment", "crop",
            "--no-store")
    assert train(tmp_path / "whole", *args) == 0

    calls = {"n": 0}
    evaluate = nsde_lib.train.loop.evaluate

    def crash_in_epoch_3(*a, **k):  # the machine dies at the end of epoch 3's training
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return evaluate(*a, **k)

    monkeypatch.setattr(nsde_lib.train.loop, "evaluate", crash_in_epoch_3)
    cut = tmp_path / "cut"
    assert train(cut, *args) == 130
    assert [m["epoch"] for m in lines(cut / "metrics.jsonl")] == [1, 2]  # epoch 3 lost, no more
    assert load_checkpoint(cut / "checkpoint.pt")["epoch"] == 2
    monkeypatch.setattr(nsde_lib.train.loop, "evaluate", evaluate)

    # resume from the run's own config: only --out is needed
    assert cli.main(["train", "--resume", "--no-progress", "--out", str(cut)]) == 0
    whole, resumed = (load_checkpoint(p / "checkpoint.pt") for p in (tmp_path / "whole", cut))
    assert resumed["epoch"] == 3
    for key, value in whole["model"].items():
        assert torch.equal(value, resumed["model"][key]), key
    drop = lambda ms: [{k: v for k, v in m.items() if k != "seconds"} for m in ms]  # noqa: E731
    assert drop(lines(cut / "metrics.jsonl")) == drop(lines(tmp_path / "whole" / "metrics.jsonl"))


def test_a_run_is_never_overwritten(tmp_path, capsys):
    run = tmp_path / "r"
    assert train(run, "--epochs", "1") == 0
    before = (run / "checkpoint.pt").read_bytes()
    assert train(run, "--epochs", "1", "--noise", "additive", "--sigma", "0.1") == 2
    assert "already exists" in capsys.readouterr().err
    assert (run / "checkpoint.pt").read_bytes() == before
    (tmp_path / "file").write_text("mine")
    assert train(tmp_path / "file", "--epochs", "1") == 2
    assert (tmp_path / "file").read_text() == "mine"


def test_finished_run_resume_is_a_no_op(tmp_path, capsys):
    run = tmp_path / "r"
    assert train(run, "--epochs", "1") == 0
    before = (run / "checkpoint.pt").read_bytes()
    assert cli.main(["train", "--resume", "--out", str(run)]) == 0
    assert "nothing to resume" in capsys.readouterr().out
    assert (run / "checkpoint.pt").read_bytes() == before


@pytest.mark.parametrize("argv,match", [
    (["train", "--noise", "gaussian"], "noise must be one of"),
    (["train", "--dataset", "imagenet"], "dataset must be one of"),
    (["train", "--device", "tpu"], "device must be one of"),
    (["train", "--noise", "additive", "--sigma", "-1"], "sigma must be"),
    (["train", "--epochs", "0"], "epochs must be an integer >= 1"),
    (["train", "--noise", "dropout", "--p", "1.5"], "p \\(drop probability\\)"),
    (["train", "--noise", "multiplicative"], "sigma must be > 0 for noise 'multiplicative'"),
    (["train", "--noise", "dropout"], "p must be > 0 for noise 'dropout'"),
    (["train", "--resume"], "no run to resume"),
    (["eval", "--ensemble", "0"], "ensemble \\(K\\) must be"),
    (["eval"], "no finished epoch to evaluate"),
])
def test_bad_input_is_one_clear_line(tmp_path, capsys, argv, match):
    target = ["--out" if argv[0] == "train" else "--run", str(tmp_path / "missing")]
    assert cli.main(argv + target) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert __import__("re").search(match, err), err


def test_eval_on_a_test_set_of_another_shape_fails_before_loading_it(tmp_path, capsys,
                                                                     monkeypatch):
    run = tmp_path / "digits"
    assert train(run, "--epochs", "1") == 0

    def no_loading(*args, **kwargs):
        raise AssertionError("a test set that cannot fit was loaded (or downloaded)")

    monkeypatch.setattr("nsde_lib.train.runs.load_data", no_loading)
    assert cli.main(["eval", "--run", str(run), "--dataset", "cifar10.1"]) == 2
    assert "'cifar10.1' does not fit a model trained on 'mnist5k'" in capsys.readouterr().err


def test_resume_with_a_different_config_names_the_difference(tmp_path, capsys):
    run = tmp_path / "r"
    assert train(run, "--epochs", "1", "--noise", "additive", "--sigma", "0.1") == 0
    assert cli.main(["train", "--resume", "--out", str(run), "--sigma", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "sigma: run has 0.1, asked 0.5" in err
    # how to compute may change on resume (another machine), what to compute may not
    assert cli.main(["train", "--resume", "--out", str(run), "--device", "cpu",
                     "--amp", "off"]) == 0


def test_a_diverging_run_is_reported(tmp_path):
    run = tmp_path / "boom"
    assert train(run, "--epochs", "2", "--noise", "multiplicative", "--sigma", "1e30") == 1
    assert lines(run / "metrics.jsonl")[-1]["diverged"] is True


def test_checkpoints_are_atomic_and_weights_only(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"epoch": 1, "w": torch.ones(3)})

    def broken_save(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"epoch": 2, "w": torch.zeros(3)})
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1  # the old one, whole
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temp file left

    torch.save({"payload": Path("not a tensor")}, tmp_path / "evil.pt")
    with pytest.raises(nl.RunFolderError, match="evil.pt .*weights-only load refused"):
        load_checkpoint(tmp_path / "evil.pt")


def test_python_dash_m_entry_point(tmp_path):
    run = tmp_path / "cli"
    proc = subprocess.run([sys.executable, "-m", "nsde_lib", "train", *TINY, "--epochs", "1",
                           "--out", str(run)], cwd=ROOT, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                               "OMP_NUM_THREADS": "1"},
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "epoch 1/1" in proc.stdout and (run / "checkpoint.pt").is_file()


def test_the_bf16_path_trains_too(tmp_path):
    """The GPU recipe (bf16 autocast, float32 state and norms) exercised on the CPU."""
    run = tmp_path / "bf16"
    assert train(run, "--epochs", "1", "--noise", "dropout", "--p", "0.1", "--amp", "bf16") == 0
    record = lines(run / "metrics.jsonl")[0]
    assert 0 < record["loss"] < 10 and 0 <= record["test_acc"] <= 1
    _, model, _, _ = load_run(run, "cpu")
    assert all(p.dtype == torch.float32 for p in model.parameters())  # weights stay float32


def test_boolean_options_work_as_flags(tmp_path):
    run = tmp_path / "sn"
    assert train(run, "--epochs", "1", "--spectral-norm") == 0
    assert json.loads((run / "config.json").read_text())["spectral_norm"] is True
    keys = load_checkpoint(run / "checkpoint.pt")["model"]
    assert any("parametrizations.weight.original" in k for k in keys)
    _, model, _, _ = load_run(run, "cpu")  # and it loads back into a spectral-norm model
    assert torch.nn.utils.parametrize.is_parametrized(model.drift.convs[0], "weight")
