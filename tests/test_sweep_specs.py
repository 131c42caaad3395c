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
    expected = {"01_moons_h.toml": 6, "03_flow.toml": 1,
                "02_depth_h.toml": 30, "02_depth_h_paper.toml": 40, "02_lr.toml": 24,
                "02_no_bn.toml": 18, "02_adam.toml": 18, "02_noisy_inputs.toml": 18,
                "02_h_grid.toml": 36, "04_table1.toml": 15, "04_table1_paper.toml": 15,
                "04_noise_levels.toml": 60, "05_attacked.toml": 4, "05_attacked_paper.toml": 4,
                "06_smoothing_sigma.toml": 18, "06_smoothing_sigma_paper.toml": 12}
    assert len(spec.trials) == expected[name]
    configs = list(spec.trials.values())
    if "paper" in name:  # the papers' scale: CIFAR-10 with the papers' epochs
        assert {c["dataset"] for c in configs} == {"cifar10"}
        assert {c["epochs"] for c in configs} == {{"02": 80, "04": 200, "05": 200,
                                                   "06": 90}[name[:2]]}
        assert spec.resources["gpus-per-trial"] > 0
    seeds = {c["seed"] for c in configs}
    # chapter 05 attacks one seed's models; chapter 03 trains one flow for its figures
    assert len(seeds) >= 3 or name.startswith(("05", "03"))
    quick = nl.load_spec(ROOT / "sweeps" / name, quick=True)  # the chapters' smoke test
    assert len(quick.trials) <= len(spec.trials)


def test_quick_inherit_and_course_level(tmp_path):
    (tmp_path / "parent.toml").write_text(
        "[base]\nepochs = 30\nlr = 0.2\nchannels = 16\n[grid]\nseed = [0, 1, 2]\n"
        "[quick]\nepochs = 2\nseed = [0]\nchannels = 8\n")
    (tmp_path / "child.toml").write_text(
        'inherit = "parent.toml"\n[base]\nlr = 0.1\n[grid]\nseed = [0, 1]\n'
        '[quick]\nchannels = 4\n[[trials]]\nnoise = "none"\n'
        '[[trials]]\nnoise = "multiplicative"\ncourse-level = true\n')
    full = nl.load_spec(tmp_path / "child.toml")
    assert list(full.trials) == ["noise=none_seed=0", "noise=none_seed=1",
                                 "noise=multiplicative_sigma=0.3_seed=0",
                                 "noise=multiplicative_sigma=0.3_seed=1"]
    config = full.trials["noise=multiplicative_sigma=0.3_seed=1"]
    assert (config["epochs"], config["lr"], config["channels"], config["sigma"]) == \
        (30, 0.1, 16, nl.NOISE_LEVELS["multiplicative"]["sigma"])
    quick = nl.load_spec(tmp_path / "child.toml", quick=True)
    assert list(quick.trials) == ["noise=none_seed=0", "noise=multiplicative_sigma=0.3_seed=0"]
    config = quick.trials["noise=none_seed=0"]
    assert (config["epochs"], config["lr"], config["channels"]) == (2, 0.1, 4)
    with pytest.raises(ValueError, match="sets sigma and course-level"):
        nl.parse_spec({"grid": {"seed": [0]}, "trials": [
            {"noise": "additive", "sigma": 0.1, "course-level": True}]})
    with pytest.raises(ValueError, match="course-level .* needs a noise preset"):
        nl.parse_spec({"grid": {"seed": [0]}, "trials": [{"course-level": True}]})
    with pytest.raises(ValueError, match=r"unknown option 'epoch' in \[quick\]"):
        nl.parse_spec({"grid": {"seed": [0]}, "quick": {"epoch": 1}})


def test_chapters_04_05_06_share_one_family_of_models():
    """05's models are chapter 04's trials, config for config (its fourth differs in
    spectral_norm only), and 06's reference ODE is 04's: in default and in quick mode, so the
    run store hands the same trained models to all three chapters."""
    for quick in (False, True):
        table1 = nl.course_spec("04_table1", quick=quick)
        attacked = nl.course_spec("05_attacked", quick=quick).trials
        shared = [tid for tid in attacked if tid in table1.trials]
        assert len(shared) == 3 and all(attacked[t] == table1.trials[t] for t in shared)
        (extra,) = [c for t, c in attacked.items() if t not in shared]
        ode = table1.trials[f"noise=none_seed={extra['seed']}"]
        assert {k for k in ode if ode[k] != extra[k]} == {"spectral_norm"}
        reference = table1.where(noise="none")
        assert list(reference.trials) == [f"noise=none_seed={s}" for s in
                                          sorted({c["seed"] for c in table1.trials.values()})]
    with pytest.raises(ValueError, match="no trial of .* has"):
        table1.where(noise="gaussian")
