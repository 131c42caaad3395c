"""`--engine ray`: the same tiny spec gives the same numbers (and weights, to the bit) as the local
engine, and a sweep begun locally is finished by Ray running only its unfinished trials. One Ray
instance (2 CPUs) serves the whole module. Ray is an optional extra: `make test` installs it
(pip install -e ".[dev,ray]"); without it these tests skip."""
import json
from pathlib import Path

import pytest
import torch

ray = pytest.importorskip("ray", reason="Ray Tune is an optional extra: pip install -e '.[ray]'")
pytest.importorskip("ray.tune")

from nsde_lib import cli  # noqa: E402
from nsde_lib.train import ray_engine, sweep_runs  # noqa: E402

SPEC = """
[base]
n-train = 48
n-test = 40
downsample = 2
augment = "crop"
channels = 4
steps = 3
batch-size = 16
epochs = 2
schedule = "cosine"
device = "cpu"

[grid]
seed = [3]

[[trials]]
noise = "none"

[[trials]]
noise = "multiplicative"
sigma = 0.5

[[trials]]
noise = "jump-dropout"
p = 0.1
rate = 2.0
"""


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance for the module (starting one costs seconds)."""
    started = ray_engine.start(1, 0, num_cpus=2)
    yield
    ray_engine.stop(started)


def sweep(spec, out, *extra):
    return cli.main(["sweep", str(spec), "--out", str(out), "--no-progress", *extra])


def lines(out):
    return {r["trial"]: r for r in (json.loads(x) for x in
                                    (Path(out) / "results.jsonl").read_text().splitlines())}


def same_numbers(a, b):
    drop = lambda m: {k: v for k, v in m.items() if k != "seconds"}  # noqa: E731
    assert a.keys() == b.keys()
    for tid in a:
        assert a[tid]["params"] == b[tid]["params"]
        assert drop(a[tid]["metrics"]) == drop(b[tid]["metrics"]), tid


def same_weights(out_a, out_b, tids):
    for tid in tids:
        a, b = (torch.load(Path(o) / "trials" / tid / "checkpoint.pt", weights_only=True)["model"]
                for o in (out_a, out_b))
        assert all(torch.equal(a[k], b[k]) for k in a), tid


def test_ray_and_local_engines_give_the_same_numbers(tmp_path, local_ray):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    # --no-store: each engine trains (the store would hand Ray the models the local run made)
    assert sweep(spec, tmp_path / "local", "--no-store") == 0
    assert sweep(spec, tmp_path / "ray", "--engine", "ray", "--no-store") == 0
    local, on_ray = lines(tmp_path / "local"), lines(tmp_path / "ray")
    assert len(local) == 3
    same_numbers(local, on_ray)  # loss, accuracies, lr: equal, not close
    same_weights(tmp_path / "local", tmp_path / "ray", local)
    assert ray.is_initialized()  # the module's instance was used, not shut down

    # a sweep begun locally and interrupted, then finished on Ray: only the unfinished trials
    part = tmp_path / "part"
    run_trial, ran = sweep_runs.run_trial, []

    def dies_in_trial_3(config, folder, threads=1, store="auto"):
        if len(ran) == 2:
            raise KeyboardInterrupt
        ran.append(Path(folder).name)
        return run_trial(config, folder, threads, store)

    sweep_runs.run_trial = dies_in_trial_3
    try:
        assert sweep(spec, part, "--no-store") == 130
    finally:
        sweep_runs.run_trial = run_trial
    assert list(lines(part)) == ran
    done = {tid: (part / "trials" / tid / "checkpoint.pt").read_bytes() for tid in ran}
    assert sweep(spec, part, "--engine", "ray", "--resume", "--no-store") == 0
    assert {tid: (part / "trials" / tid / "checkpoint.pt").read_bytes() for tid in ran} == done
    same_numbers(lines(part), local)
    same_weights(part, tmp_path / "local", local)


def test_ray_refuses_a_gpu_share_the_local_instance_does_not_have(tmp_path, capsys, local_ray):
    """A trial that could never be placed would wait forever: the sweep says so instead,
    before any file is written."""
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    assert sweep(spec, tmp_path / "out", "--engine", "ray", "--gpus-per-trial", "0.5") == 2
    assert "gpus_per_trial = 0.5 but the local Ray instance has 0 GPUs" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert ray.is_initialized()  # a Ray this sweep did not start is left running
