"""Run folders a user finds damaged: an unreadable checkpoint or config is one line naming the file
and what to do, with its own exit status (3, not divergence's 1); a torn last line of
metrics.jsonl is recovered by training that epoch again; nothing a user saved is deleted."""
import json
from pathlib import Path

import pytest
import torch

import nsde_lib as nl
from nsde_lib import cli

TINY = ["--dataset", "mnist5k", "--n", "60", "--channels", "4", "--steps", "2",
        "--batch-size", "20", "--device", "cpu", "--no-progress"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A two-epoch run, copied afresh for every test that damages it."""
    run = tmp_path_factory.mktemp("runs") / "ok"
    assert cli.main(["train", *TINY, "--epochs", "2", "--out", str(run)]) == 0
    return {p.name: p.read_bytes() for p in run.iterdir()}


def copy_of(finished, tmp_path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    for name, data in finished.items():
        (run / name).write_bytes(data)
    return run


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    return err


@pytest.mark.parametrize("damage", ["truncated", "empty", "foreign", "not a checkpoint"])
@pytest.mark.parametrize("command", ["eval", "resume"])
def test_an_unreadable_checkpoint_is_named_with_its_own_exit_status(finished, tmp_path, capsys,
                                                                     damage, command):
    run = copy_of(finished, tmp_path)
    ckpt = run / "checkpoint.pt"
    good = ckpt.read_bytes()
    if damage == "truncated":
        ckpt.write_bytes(good[: len(good) // 2])
    elif damage == "empty":
        ckpt.write_bytes(b"")
    elif damage == "foreign":
        torch.save({"weights": torch.zeros(3)}, ckpt)
    else:
        ckpt.write_text("hello")
    damaged = ckpt.read_bytes()
    argv = (["eval", "--run", str(run), "--device", "cpu"] if command == "eval"
            else ["train", "--resume", "--no-progress", "--out", str(run)])
    assert cli.main(argv) == cli.EXIT_RUN_FOLDER == 3
    err = one_line(capsys)
    assert str(ckpt) in err and "Nothing was changed" in err
    assert ckpt.read_bytes() == damaged                      # nothing touched
    assert {p.name for p in run.iterdir()} == set(finished)  # nothing added or deleted


@pytest.mark.parametrize("command", ["eval", "resume"])
def test_a_truncated_config_is_named(finished, tmp_path, capsys, command):
    run = copy_of(finished, tmp_path)
    text = (run / "config.json").read_text()
    (run / "config.json").write_text(text[: len(text) // 2])
    argv = (["eval", "--run", str(run), "--device", "cpu"] if command == "eval"
            else ["train", "--resume", "--no-progress", "--out", str(run)])
    assert cli.main(argv) == 3
    err = one_line(capsys)
    assert "config.json" in err and "JSONDecodeError" in err


def unfinished(finished, tmp_path) -> Path:
    """The two-epoch run as if it had been asked for three and stopped after two."""
    run = copy_of(finished, tmp_path)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps(config | {"epochs": 3}))
    return run


def test_a_torn_last_metrics_line_is_recovered_by_training_that_epoch_again(finished, tmp_path):
    run = unfinished(finished, tmp_path)
    # the machine died while appending epoch 3: its line is torn, its checkpoint never written
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 3, "loss": 0.5, "train_')
    assert cli.main(["train", "--resume", "--no-progress", "--out", str(run)]) == 0
    epochs = [json.loads(x)["epoch"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]
    assert nl.load_checkpoint(run / "checkpoint.pt")["epoch"] == 3
    assert '"train_' in (run / "metrics.jsonl.dropped").read_text()  # kept, not deleted


def test_a_damaged_line_inside_metrics_is_named(finished, tmp_path, capsys):
    run = unfinished(finished, tmp_path)
    lines = (run / "metrics.jsonl").read_text().splitlines()
    (run / "metrics.jsonl").write_text("{oops\n" + "\n".join(lines[1:]) + "\n")
    before = (run / "metrics.jsonl").read_text()
    assert cli.main(["train", "--resume", "--no-progress", "--out", str(run)]) == 3
    assert "metrics.jsonl, line 1" in one_line(capsys)
    assert (run / "metrics.jsonl").read_text() == before


def test_divergence_keeps_exit_status_1(tmp_path):
    assert cli.EXIT_DIVERGED == 1 != cli.EXIT_RUN_FOLDER
