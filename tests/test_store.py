"""The run store: a finished training is reused for the same request and for nothing else; a
save killed half-way is never served; a store moves between machines as one file."""
from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest
import torch

import nsde_lib as nl
from nsde_lib import cli
from nsde_lib.train import experiment

ROOT = Path(__file__).resolve().parent.parent
TINY = dict(n_train=128, n_test=64, downsample=2, channels=4, steps=1, epochs=1, batch_size=64,
            lr=0.1, schedule="constant", augment="none", device="cpu")


def tiny(**changes) -> nl.RunConfig:
    return nl.RunConfig(**(TINY | changes))


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture
def trainings(monkeypatch):
    """Counts the models actually trained (``fit`` calls) through the one route."""
    calls = []
    fit = experiment.fit

    def counting(*args, **kwargs):
        calls.append(kwargs.get("desc"))
        return fit(*args, **kwargs)

    monkeypatch.setattr(experiment, "fit", counting)
    return calls


def test_the_same_request_is_loaded_not_trained(tmp_path, trainings):
    config = tiny(noise="multiplicative", sigma=0.3)
    first = nl.train_model(config, store=tmp_path, progress=False)
    again = nl.train_model(config, store=tmp_path, progress=False)
    assert len(trainings) == 1 and not first.loaded and again.loaded
    assert same_weights(first.model, again.model)
    assert again.history == first.history and again.key == first.key
    assert again.trained_at == first.trained_at and again.trained_on == "cpu"
    x = torch.randn(5, 1, 14, 14)
    assert torch.equal(first.fast.test_forward(first.model, x),
                       again.fast.test_forward(again.model, x))


@pytest.mark.parametrize("change", [{"seed": 1}, {"sigma": 0.31}, {"lr": 0.2},
                                    {"n_train": 192}, {"amp": "bf16"}])
def test_a_changed_config_or_seed_trains_anew(tmp_path, trainings, change):
    base = tiny(noise="multiplicative", sigma=0.3)
    nl.train_model(base, store=tmp_path, progress=False)
    other = nl.train_model(base.replace(**change), store=tmp_path, progress=False)
    assert not other.loaded and len(trainings) == 2
    assert len(nl.RunStore(tmp_path).keys()) == 2
    # and the first request still gets its own model back
    assert nl.train_model(base, store=tmp_path, progress=False).loaded and len(trainings) == 2


def test_hooks_record_without_changing_the_request(tmp_path, trainings):
    config = tiny(arch="resnet", depth=2, h=0.1, stem_pool=2, head_pool=1, steps=11)
    config = config.replace(steps=nl.RunConfig().steps)  # resnet: sde fields at their defaults
    plain = nl.train_model(config, store=tmp_path, progress=False)
    # the stored run lacks these records: trained once more with them, the same model
    watched = nl.train_model(config, hooks=[nl.GradNorms(), nl.WeightNorms()], store=tmp_path,
                             progress=False)
    assert not watched.loaded and len(trainings) == 2 and not plain.history.grad_norms
    assert same_weights(plain.model, watched.model) and watched.key == plain.key
    assert len(watched.records["weight_norms"]) == len(watched.history.grad_norms) == 2
    again = nl.train_model(config, hooks=[nl.WeightNorms(), nl.GradNorms()], store=tmp_path,
                           progress=False)  # the order of the hooks does not matter
    assert again.loaded and again.records == watched.records
    assert again.history.grad_norms == watched.history.grad_norms
    # and a request for fewer records gets just those, from the same entry
    bare = nl.train_model(config, store=tmp_path, progress=False)
    assert bare.loaded and bare.records == {} and bare.history.grad_norms == []
    snap = nl.train_model(config, hooks=[nl.Snapshots((1,))], store=tmp_path, progress=False)
    assert not snap.loaded and len(trainings) == 3
    both = nl.train_model(config, hooks=[nl.Snapshots((1,)), nl.WeightNorms()], store=tmp_path,
                          progress=False)  # the replaced entry kept the earlier records
    assert both.loaded and set(both.records) == {"snapshots", "weight_norms"}
    assert len(nl.RunStore(tmp_path).keys()) == 1


def test_library_code_is_part_of_the_key(tmp_path, trainings, monkeypatch):
    copy = tmp_path / "nsde_lib"
    shutil.copytree(ROOT / "nsde_lib", copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = nl.library_hash(copy)
    assert before == nl.library_hash()
    drift = copy / "models" / "classifier.py"
    text = drift.read_text()
    drift.write_text(text.replace("import torch\n", "import torch  # a comment\n", 1)
                     .replace('"""', '"""Reworded. ', 1))
    assert nl.library_hash(copy) == before      # comments and docstrings train nothing
    drift.write_text(text.replace('count("steps", steps)', 'count("steps", steps, low=2)', 1))
    edited = nl.library_hash(copy)
    assert edited != before                     # one line of training code: another key
    figures = copy / "course" / "plotting.py"
    figures.write_text(figures.read_text() + "\nCOLOUR = 'red'\n")
    assert nl.library_hash(copy) == edited      # the course's figures do not train anything

    config = tiny()
    nl.train_model(config, store=tmp_path / "store", progress=False)
    monkeypatch.setattr(experiment, "library_hash", lambda: edited)
    assert not nl.train_model(config, store=tmp_path / "store", progress=False).loaded
    assert len(trainings) == 2


def test_no_store_trains_and_keeps_nothing(tmp_path, trainings, monkeypatch):
    config = tiny()
    nl.train_model(config, store=tmp_path, progress=False)
    assert not nl.train_model(config, store=None, progress=False).loaded
    monkeypatch.setenv("NSDE_STORE", "off")
    assert nl.open_store() is None
    assert not nl.train_model(config, progress=False).loaded
    monkeypatch.setenv("NSDE_STORE", str(tmp_path))
    assert nl.train_model(config, progress=False).loaded
    assert len(trainings) == 3 and len(nl.RunStore(tmp_path).keys()) == 1


KILLED_SAVE = textwrap.dedent("""
    import sys, time
    import nsde_lib as nl
    from nsde_lib.train import store
    config = nl.RunConfig(**{tiny})
    write_json = store.write_json

    def slow(path, data):   # the meta file is written last: stop before it, with run.pt on disk
        print("saving", flush=True)
        time.sleep(120)

    store.write_json = slow
    nl.train_model(config, store=sys.argv[1], progress=False)
""")


def test_a_save_killed_half_way_is_never_served(tmp_path, trainings):
    code = KILLED_SAVE.format(tiny=repr(TINY))
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "saving"
        assert any(tmp_path.glob(".incoming/*/run.pt"))  # half an entry is on disk...
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
        proc.stdout.close()
    db = nl.RunStore(tmp_path)
    assert db.keys() == []                               # ...and it is not an entry
    result = nl.train_model(tiny(), store=tmp_path, progress=False)
    assert not result.loaded and len(trainings) == 1     # trained again, then stored
    assert db.keys() == [result.key]
    assert nl.train_model(tiny(), store=tmp_path, progress=False).loaded


def test_a_damaged_entry_is_moved_aside_and_trained_again(tmp_path, trainings):
    first = nl.train_model(tiny(), store=tmp_path, progress=False)
    entry = nl.RunStore(tmp_path).path(first.key) / "run.pt"
    entry.write_bytes(entry.read_bytes()[:100])
    with pytest.warns(UserWarning, match="cannot be read.*moved it to"):
        again = nl.train_model(tiny(), store=tmp_path, progress=False)
    assert not again.loaded and len(trainings) == 2
    aside = list(entry.parent.parent.glob(f"{first.key}.bad-*"))
    assert len(aside) == 1 and (aside[0] / "run.pt").stat().st_size == 100  # kept, not deleted
    assert nl.train_model(tiny(), store=tmp_path, progress=False).loaded


def test_pack_and_unpack_round_trip(tmp_path, trainings):
    a, b = tmp_path / "instructor", tmp_path / "laptop"
    made = [nl.train_model(tiny(seed=s), store=a, progress=False) for s in (0, 1)]
    pack = tmp_path / "course-store.tar.gz"
    assert nl.RunStore(a).pack(pack) == 2
    with pytest.raises(FileExistsError, match="never overwritten"):
        nl.RunStore(a).pack(pack)
    assert nl.RunStore(b).unpack(pack) == (2, 0)
    assert nl.RunStore(b).unpack(pack) == (0, 2)        # already there: kept as they are
    for result in made:
        loaded = nl.train_model(result.config, store=b, progress=False)
        assert loaded.loaded and same_weights(loaded.model, result.model)
    assert len(trainings) == 2


def test_unpack_refuses_a_file_that_is_not_a_pack(tmp_path):
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        (tmp_path / "x").write_text("x")
        tar.add(tmp_path / "x", arcname="../../outside.txt")
    with pytest.raises(ValueError, match="not a store entry file"):
        nl.RunStore(tmp_path / "store").unpack(evil)
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").rglob("*.txt"))
    (tmp_path / "plain.txt").write_text("hello")
    with pytest.raises(ValueError, match="is not a store pack"):
        nl.RunStore(tmp_path / "store").unpack(tmp_path / "plain.txt")


def test_train_run_writes_its_folder_from_the_store(tmp_path, trainings):
    config = tiny(noise="additive", sigma=0.2, epochs=2)
    nl.train_run(config, tmp_path / "a", store=tmp_path / "s", progress=False, log=print)
    nl.train_run(config, tmp_path / "b", store=tmp_path / "s", progress=False, log=print)
    assert len(trainings) == 1
    for name in ("config.json", "metrics.jsonl"):
        one, two = ((tmp_path / r / name).read_text() for r in "ab")
        assert one == two, name
    ca, cb = (nl.load_checkpoint(tmp_path / r / "checkpoint.pt") for r in "ab")
    assert ca["epoch"] == cb["epoch"] == 2
    assert all(torch.equal(ca["model"][k], cb["model"][k]) for k in ca["model"])


def test_cli_store_commands(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NSDE_STORE", str(tmp_path / "s"))
    args = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()]
    assert cli.main(["train", "--no-progress", "--out", str(tmp_path / "r1"), *args]) == 0
    assert cli.main(["train", "--no-progress", "--out", str(tmp_path / "r2"), *args]) == 0
    assert "loaded from the run store" in capsys.readouterr().out
    assert cli.main(["train", "--no-progress", "--no-store", "--out", str(tmp_path / "r3"),
                     *args]) == 0
    assert "loaded" not in capsys.readouterr().out
    assert cli.main(["store", "info"]) == 0
    assert "1 trained runs" in capsys.readouterr().out
    assert cli.main(["store", "pack", str(tmp_path / "p.tar.gz")]) == 0
    monkeypatch.setenv("NSDE_STORE", str(tmp_path / "t"))
    assert cli.main(["store", "unpack", str(tmp_path / "p.tar.gz")]) == 0
    assert "added 1 trained runs" in capsys.readouterr().out
    assert cli.main(["store", "pack"]) == 2
    assert "needs a FILE" in capsys.readouterr().err
    monkeypatch.setenv("NSDE_STORE", "off")
    assert cli.main(["store", "info"]) == 2
    assert "the run store is off" in capsys.readouterr().err


def test_cli_help_and_spec_errors_come_from_the_field_metadata(tmp_path, capsys):
    fields = nl.config_fields()
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    helps = "".join(capsys.readouterr().out.split())  # argparse wraps (and breaks at hyphens)
    for name, info in fields.items():
        text = "".join(info.describe().replace("%%", "%").split())
        assert f"--{info.flag}" in helps and text in helps, name
    assert "oneofnone,additive,multiplicative,dropout,jump-dropout" in helps
    # the same allowed values and type words in the spec parser's errors and the CLI's
    with pytest.raises(ValueError) as spec_err:
        nl.parse_spec({"base": {"noise": "gaussian"}, "grid": {"seed": [0]}})
    with pytest.raises(ValueError) as field_err:
        fields["noise"].check("gaussian")
    assert str(field_err.value).split("must")[1] in str(spec_err.value)
    with pytest.raises(ValueError, match="epochs in spec must be an integer, got 2.5"):
        nl.parse_spec({"base": {"epochs": 2.5}, "grid": {"seed": [0]}})
    with pytest.raises(SystemExit):
        cli.main(["train", "--out", str(tmp_path / "x"), "--epochs", "2.5"])
    assert "--epochs must be an integer, got '2.5'" in capsys.readouterr().err


def test_settings_that_train_the_same_model_share_an_entry(tmp_path, trainings):
    nl.train_model(tiny(), store=tmp_path, progress=False)
    # a noise seed without noise, and "auto" augmentation that means "crop" for digits
    assert nl.train_model(tiny(input_noise_seed=123), store=tmp_path, progress=False).loaded
    crop = nl.train_model(tiny(augment="crop"), store=tmp_path, progress=False)
    assert nl.train_model(tiny(augment="auto"), store=tmp_path, progress=False).loaded
    assert not crop.loaded and len(trainings) == 2


def test_training_or_loading_leaves_the_random_stream_as_it_was(tmp_path):
    torch.manual_seed(123)
    expected = torch.rand(3)
    for _ in range(2):  # trained, then loaded: the draws after it are the same
        torch.manual_seed(123)
        nl.train_model(tiny(noise="additive", sigma=0.2), store=tmp_path, progress=False)
        assert torch.equal(torch.rand(3), expected)
