"""`python -m nsde_lib sweep SPEC --out DIR`, local engine, on tiny MNIST-5k trials: a spec's grid
becomes run folders that `eval` accepts, an interrupted sweep resumes without training a finished
trial again and ends where an uninterrupted one does, every bad spec fails before any trial starts
(naming the key), nothing is overwritten; the repository's specs (sweeps/*.toml) expand and
validate; `--arch resnet` trains exactly what chapter 02 trains by hand."""
import json
import math
import re
from pathlib import Path

import pytest
import torch

import nsde_lib as nl
import nsde_lib.train.loop
import nsde_lib.train.runs
import nsde_lib.train.sweep_runs
from nsde_lib import cli

ROOT = Path(__file__).resolve().parent.parent
TINY = """
[base]
dataset = "mnist5k"
n = 60
channels = 4
steps = 2
batch-size = 20
epochs = 2
schedule = "constant"
device = "cpu"

[grid]
seed = [0, 1]

[[trials]]
noise = "none"

[[trials]]
noise = "additive"
sigma = 0.3
"""
IDS = ["noise=none_seed=0", "noise=none_seed=1", "noise=additive_sigma=0.3_seed=0",
       "noise=additive_sigma=0.3_seed=1"]


def write_spec(tmp_path, text=TINY, name="spec.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def sweep(spec, out, *extra):
    return cli.main(["sweep", str(spec), "--out", str(out), "--no-progress", *extra])


def results(out):
    return [json.loads(line) for line in (Path(out) / "results.jsonl").read_text().splitlines()]


def without_seconds(lines):
    return {r["trial"]: (r["params"], {k: v for k, v in r["metrics"].items() if k != "seconds"})
            for r in lines}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """An uninterrupted sweep of the tiny spec (the reference of the tests below)."""
    tmp = tmp_path_factory.mktemp("sweep")
    out = tmp / "whole"
    assert sweep(write_spec(tmp), out) == 0
    return out


def test_a_sweep_is_a_folder_of_ordinary_runs(finished, capsys):
    assert sorted(p.name for p in (finished / "trials").iterdir()) == sorted(IDS)
    lines = results(finished)
    assert [r["trial"] for r in lines] == IDS  # explicit trials outer, grid inner, spec order
    assert lines[2]["params"] == {"noise": "additive", "sigma": 0.3, "seed": 0}
    for line in lines:  # the results line is the run's final epoch, read back from its folder
        run = finished / "trials" / line["trial"]
        config = json.loads((run / "config.json").read_text())
        assert all(config[k] == v for k, v in line["params"].items())
        assert config["channels"] == 4 and config["epochs"] == 2
        last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
        assert line["metrics"] == {**last, "diverged": False}
    # eval accepts a trial folder as it accepts any run folder
    run = finished / "trials" / IDS[2]
    assert cli.main(["eval", "--run", str(run), "--ensemble", "2", "--device", "cpu"]) == 0
    assert "K=2" in capsys.readouterr().out


def test_each_trial_trains_its_own_config(finished):
    lines = without_seconds(results(finished))
    weights = {t: torch.load(finished / "trials" / t / "checkpoint.pt", weights_only=True)["model"]
               for t in IDS}
    assert not torch.equal(weights[IDS[0]]["stem.weight"], weights[IDS[1]]["stem.weight"])  # seed
    assert lines[IDS[0]][1]["loss"] != lines[IDS[2]][1]["loss"]  # the noise changed training


def test_read_results_gives_the_records_summarize_takes(finished):
    records = nl.read_results(finished)
    assert len(records) == 4 and {r["trial"] for r in records} == set(IDS)
    for r in records:
        line = next(x for x in results(finished) if x["trial"] == r["trial"])
        assert r["acc"] == line["metrics"]["test_acc"] and r["diverged"] is False
        assert [e["epoch"] for e in r["history"].epochs] == [1, 2]  # the whole metrics.jsonl
        assert r["seed"] == line["params"]["seed"] and "seed" in r
    curves = nl.summarize(records, x="seed", group="noise", chance=0.1)
    assert set(curves) == {"none", "additive"} and curves["none"]["n"] == [1, 1]
    by = {(r["noise"], r["seed"]): r["acc"] for r in records}
    assert curves["none"]["median"] == [by["none", 0], by["none", 1]]


def test_interrupted_sweep_resumes_only_what_is_unfinished(tmp_path, finished, monkeypatch):
    spec = write_spec(tmp_path)
    out = tmp_path / "cut"
    calls = {"n": 0}
    evaluate = nsde_lib.train.loop.evaluate

    def crash_in_the_second_trial(*a, **k):  # the machine dies at the end of trial 2, epoch 2
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return evaluate(*a, **k)

    monkeypatch.setattr(nsde_lib.train.loop, "evaluate", crash_in_the_second_trial)
    assert sweep(spec, out, "--no-store") == 130  # trains (the store holds `finished`'s trials)
    monkeypatch.setattr(nsde_lib.train.loop, "evaluate", evaluate)
    assert [r["trial"] for r in results(out)] == IDS[:1]
    first = (out / "trials" / IDS[0] / "checkpoint.pt").read_bytes()
    assert nl.load_checkpoint(out / "trials" / IDS[1] / "checkpoint.pt")["epoch"] == 1

    trained = []
    run_trial = nsde_lib.train.sweep_runs.run_trial

    def spy(config, folder, threads=1, store="auto"):
        trained.append(Path(folder).name)
        return run_trial(config, folder, threads, store)

    monkeypatch.setattr(nsde_lib.train.sweep_runs, "run_trial", spy)
    assert sweep(spec, out) == 2  # without --resume the folder is refused
    assert sweep(spec, out, "--resume", "--no-store") == 0  # resumes from the checkpoints
    assert trained == IDS[1:]  # the finished trial was not run again...
    assert (out / "trials" / IDS[0] / "checkpoint.pt").read_bytes() == first  # ...nor touched
    assert without_seconds(results(out)) == without_seconds(results(finished))
    for tid in IDS:  # and the resumed trial ends with the weights of the uninterrupted one
        a, b = (torch.load(p / "trials" / tid / "checkpoint.pt", weights_only=True)["model"]
                for p in (out, finished))
        assert all(torch.equal(a[k], b[k]) for k in a), tid

    trained.clear()
    assert sweep(spec, out, "--resume") == 0 and trained == []  # all done: nothing runs


def test_a_trial_whose_results_line_was_lost_is_read_back_not_retrained(tmp_path, finished,
                                                                         monkeypatch):
    out = tmp_path / "copy"
    for path in finished.rglob("*"):
        if path.is_file():
            (out / path.relative_to(finished)).parent.mkdir(parents=True, exist_ok=True)
            (out / path.relative_to(finished)).write_bytes(path.read_bytes())
    lines = (out / "results.jsonl").read_text().splitlines()
    # the process died while writing the last line: only half of it is on disk
    (out / "results.jsonl").write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:25])
    before = (out / "trials" / IDS[3] / "checkpoint.pt").read_bytes()
    monkeypatch.setattr(nsde_lib.train.experiment, "fit", lambda *a, **k: pytest.fail("retrained"))
    assert sweep(write_spec(tmp_path), out, "--resume") == 0
    assert (out / "trials" / IDS[3] / "checkpoint.pt").read_bytes() == before
    assert without_seconds(results(out)) == without_seconds(results(finished))
    assert (out / "results.jsonl.dropped").read_text() == lines[-1][:25] + "\n"  # kept


BAD_SPECS = [
    ("[base]\ndepht = 3\n[grid]\nseed = [0]\n", r"unknown option 'depht' in \[base\]"),
    ("[grid]\nsigmaa = [0.1]\n", r"unknown option 'sigmaa' in \[grid\]"),
    ("[grid]\nseed = [0]\n[[trials]]\nnoize = 'additive'\n",
     r"unknown option 'noize' in \[\[trials\]\] #1"),
    ("[grid]\nseed = []\n", r"\[grid\] seed .* is empty"),
    ("[base]\nepochs = 1\n", r"has no trials"),
    ("[grid]\n", r"has no trials"),
    ("[grid]\nseed = 0\n", r"\[grid\] seed .* must be a list"),
    ("[grid]\nepochs = [1, 2.5]\n", r"\[grid\] epochs\[1\] .* must be an integer, got 2.5"),
    ("[base]\nnoise = 1\n[grid]\nseed = [0]\n", r"\[base\] noise in .* must be a string, got 1"),
    ("[grid]\nseed = [0, 0]\n", r"\[grid\] seed .* lists a value twice"),
    ("[base]\nseed = 1\n[grid]\nseed = [0]\n", r"'seed' is both in \[base\] and \[grid\]"),
    ("[base]\nnoise = 'additive'\n[grid]\nsigma = [0.1, -1.0]\n",
     r"trial sigma=-1.0 of .*: sigma must be a finite number >= 0"),
    ("[grid]\nnoise = ['none', 'gaussian']\n", r"\[grid\] noise\[1\] in .*spec.toml must be one of \('none', .*got 'gaussian'"),
    ("[grid]\nnoise = ['multiplicative']\n", r"sigma must be > 0 for noise 'multiplicative'"),
    ("[base]\narch = 'resnet'\n[grid]\nsteps = [2, 4]\n", r"steps is a setting of arch 'sde'"),
    ("[grid]\nseed = [0]\n[extra]\nx = 1\n", r"unknown table 'extra'"),
    ("[grid]\nseed = [0]\n[resources]\ngpus = 1\n", r"\[resources\] key .* must be one of"),
    ("[grid]\nseed = [0]\n[[trials]]\nseed = 3\n",
     r"'seed' of \[\[trials\]\] #1 in .* is also in \[grid\]"),
    ("[grid]\nseed = [0\n", r"is not valid TOML"),
    ("[base]\nseed = [0, 1]\n", r"\[base\] seed in .* is a list: the values to sweep belong"),
    ("[grid]\nseed = [0]\n[[trials]]\nnoise = 'additive'\nsigma = []\n",
     r"\[\[trials\]\] #1 sigma in .* is empty"),
]


@pytest.mark.parametrize("text,match", BAD_SPECS)
def test_a_bad_spec_fails_before_any_trial_naming_the_key(tmp_path, capsys, monkeypatch, text,
                                                          match):
    monkeypatch.setattr(nsde_lib.train.sweep_runs, "run_trial",
                        lambda *a, **k: pytest.fail("a trial started"))
    out = tmp_path / "out"
    assert sweep(write_spec(tmp_path, text), out) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert re.search(match, err), err
    assert not out.exists()  # nothing was written either


def test_an_out_folder_holding_another_sweep_is_refused_and_kept(tmp_path, finished, capsys,
                                                                 monkeypatch):
    monkeypatch.setattr(nsde_lib.train.sweep_runs, "run_trial",
                        lambda *a, **k: pytest.fail("a trial started"))
    snapshot = {p: p.read_bytes() for p in finished.rglob("*") if p.is_file()}
    other = write_spec(tmp_path, TINY.replace("channels = 4", "channels = 6"), "other.toml")
    assert sweep(other, finished, "--resume") == 2
    assert re.search(r"holds another sweep: trial noise=none_seed=0 has channels = 4, the spec "
                     r"asks 6", capsys.readouterr().err)
    more = write_spec(tmp_path, TINY.replace("seed = [0, 1]", "seed = [0, 1, 2]"), "more.toml")
    assert sweep(more, finished, "--resume") == 2
    assert "holds another sweep (trial noise=none_seed=2 is not in it)" in capsys.readouterr().err
    assert sweep(other, finished) == 2
    assert "already exists and holds another sweep" in capsys.readouterr().err
    assert sweep(other, tmp_path / "nothing-here", "--resume") == 2
    assert "no sweep to resume" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in finished.rglob("*") if p.is_file()} == snapshot


def test_a_failing_trial_is_reported_and_the_others_are_kept(tmp_path, capsys, monkeypatch):
    run_trial = nsde_lib.train.sweep_runs.run_trial

    def broken_second(config, folder, threads=1, store="auto"):
        if Path(folder).name == IDS[1]:
            raise RuntimeError("disk full")
        return run_trial(config, folder, threads, store)

    monkeypatch.setattr(nsde_lib.train.sweep_runs, "run_trial", broken_second)
    out = tmp_path / "out"
    assert sweep(write_spec(tmp_path), out) == cli.EXIT_TRIALS_FAILED
    err = capsys.readouterr().err
    assert f"1 of 4 trials failed ({IDS[1]}: RuntimeError: disk full)" in err
    assert [r["trial"] for r in results(out)] == [IDS[0]] + IDS[2:]


def test_a_diverged_trial_is_a_result_not_a_failure(tmp_path):
    text = ("[base]\ndataset = 'mnist5k'\nn = 60\nchannels = 4\nsteps = 2\nbatch-size = 20\n"
            "epochs = 2\ndevice = 'cpu'\nmax-loss = 1.0\n"
            "[grid]\nseed = [0]\n")
    out = tmp_path / "out"
    assert sweep(write_spec(tmp_path, text), out) == 0
    (line,) = results(out)
    assert line["metrics"] == {"diverged": True, "diverged_epoch": 1, "diverged_step": 1}
    (record,) = nl.read_results(out)
    assert record["diverged"] and math.isnan(record["acc"])


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "sweeps").glob("*.toml")))
def test_the_specs_in_the_repository_expand_and_validate(name):
    spec = nl.load_spec(ROOT / "sweeps" / name)
    expected = {"02_depth_h.toml": 30, "02_depth_h_paper.toml": 40, "04_table1.toml": 15,
                "04_table1_paper.toml": 15, "04_noise_levels.toml": 60,
                "06_smoothing_sigma.toml": 9, "06_smoothing_sigma_paper.toml": 12}
    assert len(spec.trials) == expected[name]
    configs = list(spec.trials.values())
    if "paper" in name:  # the papers' scale: CIFAR-10 with the papers' epochs
        assert {c["dataset"] for c in configs} == {"cifar10"}
        assert {c["epochs"] for c in configs} == {{"02": 80, "04": 200, "06": 90}[name[:2]]}
        assert spec.resources["gpus-per-trial"] > 0
    seeds = {c["seed"] for c in configs}
    assert len(seeds) >= 3


def test_the_04_specs_train_the_course_noise_levels():
    """Table 1's specs use nl.NOISE_LEVELS; the search that chose them includes each level."""
    for name in ("04_table1.toml", "04_table1_paper.toml"):
        configs = list(nl.load_spec(ROOT / "sweeps" / name).trials.values())
        assert {c["noise"] for c in configs} == set(nl.NOISE_LEVELS)
        for c in configs:
            assert all(c[k] == v for k, v in nl.NOISE_LEVELS[c["noise"]].items()), c
    search = list(nl.load_spec(ROOT / "sweeps" / "04_noise_levels.toml").trials.values())
    for noise, levels in nl.NOISE_LEVELS.items():
        assert any(c["noise"] == noise and all(c[k] == v for k, v in levels.items())
                   for c in search), noise
    params = nl.load_spec(ROOT / "sweeps" / "04_noise_levels.toml").params
    assert params["noise=additive_sigma=0.2_seed=1"] == {"noise": "additive", "sigma": 0.2,
                                                         "seed": 1}


def test_the_02_spec_is_notebook_02s_depth_sweep():
    spec = nl.load_spec(ROOT / "sweeps" / "02_depth_h.toml")
    combos = {(c["depth"], c["h"], c["seed"]) for c in spec.trials.values()}
    assert combos == {(d, h, s) for d in (2, 4, 8, 16, 32) for h in (1.0, 0.1) for s in (0, 1, 2)}
    config = next(iter(spec.trials.values()))
    assert (config["arch"], config["channels"], config["stem_pool"], config["head_pool"],
            config["epochs"], config["lr"], config["schedule"], config["augment"],
            config["max_loss"]) == ("resnet", 8, 4, 7, 3, 0.1, "constant", "none", 1e4)


def test_resnet_runs_train_what_chapter_02_trains_by_hand(tmp_path):
    """`train --arch resnet` = EulerResNet + nl.fit with the notebook's arguments, bit for bit."""
    out = tmp_path / "resnet"
    args = ["--arch", "resnet", "--depth", "3", "--h", "0.1", "--channels", "4",
            "--stem-pool", "4", "--head-pool", "7", "--n", "80", "--epochs", "2",
            "--batch-size", "16", "--lr", "0.1", "--schedule", "constant", "--augment", "none",
            "--max-loss", "1e4", "--seed", "3", "--device", "cpu", "--no-progress"]
    assert cli.main(["train", *args, "--out", str(out)]) == 0
    train, test = nl.mnist5k(n=80)
    torch.manual_seed(3)
    model = nl.EulerResNet(1, 10, depth=3, width=4, h=0.1, block="conv", bn=True, pool=4,
                           head_pool=7)
    history = nl.fit(model, train, test, epochs=2, optimizer="sgd", lr=0.1, batch_size=16,
                     device="cpu", seed=3, max_loss=1e4, progress=False)
    saved = nl.load_checkpoint(out / "checkpoint.pt")["model"]
    assert all(torch.equal(value, saved[key]) for key, value in model.state_dict().items())
    metrics = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["test_acc"] for m in metrics] == history.column("test_acc")
    _, loaded, _, _ = nl.load_run(out, "cpu")  # and eval reads it back (no test-time noise)
    assert isinstance(loaded, nl.EulerResNet)
    assert cli.main(["eval", "--run", str(out), "--ensemble", "3", "--device", "cpu"]) == 0
    result = json.loads((out / "eval.jsonl").read_text().splitlines()[-1])
    assert result["acc_ttn"] is None
    assert result["acc_no_ttn"] == pytest.approx(history.final_test_acc, abs=1e-12)


@pytest.mark.parametrize("argv,match", [
    (["--arch", "transformer"], "arch must be one of"),
    (["--depth", "4"], "depth is a setting of arch 'resnet', not of 'sde'"),
    (["--arch", "resnet", "--noise", "additive", "--sigma", "0.1"],
     "noise is a setting of arch 'sde'"),
    (["--arch", "resnet", "--h", "0"], "h \\(the step factor\\) must be"),
    (["--downsample", "10"], "downsample 10 leaves 2x2 images"),
    (["--input-noise", "-0.1"], "input_noise .* must be a finite number >= 0"),
    (["--n-train", "0"], "n_train \\(or None\\) must be an integer >= 1"),
    (["--max-loss", "0"], "max_loss \\(or None\\) must be"),
])
def test_the_new_train_options_refuse_bad_values(tmp_path, capsys, argv, match):
    assert cli.main(["train", *argv, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and re.search(match, err), err
    assert not (tmp_path / "r").exists()


def test_data_options_shrink_the_data_as_nl_load_does(tmp_path):
    out = tmp_path / "small"
    assert cli.main(["train", "--n-train", "50", "--n-test", "30", "--downsample", "2",
                     "--channels", "4", "--steps", "2", "--epochs", "1", "--batch-size", "25",
                     "--device", "cpu", "--no-progress", "--out", str(out)]) == 0
    config, model, _, _ = nl.load_run(out, "cpu")
    (x, y), (xt, yt) = nl.load("mnist5k", n_train=50, n_test=30, pool=2)
    assert x.shape == (50, 1, 14, 14) and xt.shape == (30, 1, 14, 14)
    with torch.no_grad():
        acc = float((model(xt, noise_on=False).argmax(1) == yt).double().mean())
    metrics = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert metrics["test_acc"] == pytest.approx(acc, abs=1e-12)  # tested on those 30 images


def test_input_noise_adds_gaussian_pixels_of_that_std():
    x = torch.full((200, 1, 14, 14), 0.5)
    for sigma in (0.12, 0.5):
        noisy = nl.make_augment("none", 14, input_noise=sigma)(x)
        eps = (noisy - x).flatten()
        assert abs(float(eps.mean())) < 4 * sigma / math.sqrt(eps.numel())  # 4 standard errors
        assert float(eps.std()) == pytest.approx(sigma, rel=0.02)
    assert nl.make_augment("none", 14, input_noise=0.0) is None
    crop = nl.make_augment("crop", 14, input_noise=0.3)(torch.zeros(8, 1, 14, 14))
    assert crop.shape == (8, 1, 14, 14) and float(crop.abs().max()) > 0  # crop, then noise
