"""The Ray Tune engine of :func:`nsde_lib.run_sweep` (``--engine ray``).

Ray is an optional extra (``pip install -e ".[ray]"``): this module imports it only inside its
functions, and nothing else in the library imports this module except when a sweep asks for
Ray. Each trial of the sweep is one Tune trial of a function trainable that calls the sweep's
``run_trial`` (the same code the local engine runs, so the same seeds give the same numbers);
it reserves ``cpus`` CPUs (and torch uses that many threads) and ``gpus`` of a GPU (a share, e.g.
0.25: four trials per card; 0: Ray hides the GPUs, the trial runs on CPUs).

Where Ray runs: the cluster ``RAY_ADDRESS`` names (``ray start --head`` on the head node,
``ray start --address=HEAD:6379`` on the others), else a local instance started here and shut
down afterwards. On a cluster the sweep folder and the data must be on a file system every node
mounts (the trials write their run folders there), and ``nsde_lib`` must be installed on every
node; the results line of each trial is written by this process as the trial reports.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable
from unittest import mock  # patch.dict: set environment variables for a while, then restore

__all__ = ["require_ray", "start", "stop", "run_trials"]


def require_ray() -> None:
    """``ValueError`` saying how to install Ray Tune, unless it is importable."""
    try:
        import ray  # noqa: F401
        from ray import tune  # noqa: F401
    except ImportError:
        raise ValueError("engine 'ray' needs Ray Tune, an optional extra: pip install -e "
                         "'.[ray]' (or pip install 'ray[tune]'); or use --engine local") from None


def start(cpus: int, gpus: float, *, num_cpus: int | None = None) -> bool:
    """Connect to ``RAY_ADDRESS``'s cluster or start a local Ray; check it can hold a trial.

    Args:
        cpus, gpus: what one trial reserves.
        num_cpus: CPUs of a local instance (default: all of this machine's).

    Returns:
        True when this call started or connected Ray (then :func:`stop` shuts it down), False
        when Ray was already running in this process (e.g. a test's instance).

    Raises:
        ValueError: a local instance without the CPUs or the GPU a trial asks for (on a
            cluster an autoscaler may still add them, so nothing is refused there).
    """
    require_ray()
    import ray

    address = os.environ.get("RAY_ADDRESS")
    started = not ray.is_initialized()
    if started:
        _init(address, num_cpus)
    if not address:
        _check_fits(cpus, gpus, started)
    return started


def _init(address: str | None, num_cpus: int | None) -> None:
    import ray

    options = dict(include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    if address:
        ray.init(address=address, **options)
        return
    # The local workers must import this very nsde_lib, whatever directory Ray starts them in:
    # its folder goes first on the PYTHONPATH that Ray's processes inherit from this one (a
    # runtime_env would do the same but costs ~10 s per worker start here).
    root = str(Path(__file__).resolve().parents[2])
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != root]
    with mock.patch.dict(os.environ, {"PYTHONPATH": os.pathsep.join([root] + paths)}):
        try:
            ray.init(num_cpus=num_cpus, **options)
        except Exception as err:  # noqa: BLE001 (Ray raises a bare Exception for this)
            # Ray gives its raylet a fixed 30 s to register; on a busy machine that can pass.
            if "timed out during startup" not in str(err):
                raise
            ray.shutdown()
            ray.init(num_cpus=num_cpus, **options)


def _check_fits(cpus: int, gpus: float, started: bool) -> None:
    """A trial that asks for more than a local instance has would wait forever: refuse it."""
    import ray

    have = ray.cluster_resources()
    short = None
    if have.get("CPU", 0) < cpus:
        short = (f"cpus_per_trial = {cpus} but the local Ray instance has "
                 f"{have.get('CPU', 0):g} CPUs")
    elif gpus > 0 and have.get("GPU", 0) < gpus:
        short = (f"gpus_per_trial = {gpus:g} but the local Ray instance has "
                 f"{have.get('GPU', 0):g} GPUs; use --gpus-per-trial 0 on this machine")
    if short:
        stop(started)
        raise ValueError(short)


def stop(started: bool) -> None:
    """Shut Ray down if :func:`start` started it."""
    if started:
        import ray

        ray.shutdown()


def _last_line(error) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def run_trials(jobs: dict[str, tuple[dict, str]], run_trial: Callable,
               on_result: Callable[[str, dict], None], *, cpus: int, gpus: float,
               storage: Path) -> dict[str, str]:
    """Run ``run_trial(config, folder, cpus)`` for every job as a Ray Tune trial.

    Args:
        jobs: ``{trial id: (config dict, absolute run folder)}``.
        run_trial: the sweep's trial function (returns the final metrics).
        on_result: called here, in the driver, as each trial reports ``(trial id, metrics)``.
        cpus, gpus: what each trial reserves; torch runs ``cpus`` threads.
        storage: where Tune keeps its own experiment state (a new subfolder per call).

    Returns:
        ``{trial id: error}`` of the trials that raised.
    """
    from ray import tune

    def trainable(params: dict) -> None:
        config, folder = jobs[params["trial"]]
        tune.report({"metrics_json": json.dumps(run_trial(config, folder, cpus))})

    class Collect(tune.Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            if "metrics_json" in result:
                on_result(trial.config["trial"], json.loads(result["metrics_json"]))

    storage.mkdir(parents=True, exist_ok=True)
    name = f"tune-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"  # never an earlier one's
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": cpus, "gpu": gpus}),
        param_space={"trial": tune.grid_search(list(jobs))},
        # reuse_actors: a worker process runs trial after trial, importing torch only once
        tune_config=tune.TuneConfig(num_samples=1, reuse_actors=True,
                                    trial_dirname_creator=lambda trial: trial.config["trial"]),
        run_config=tune.RunConfig(name=name, storage_path=str(storage.resolve()), verbose=0,
                                  callbacks=[Collect()],
                                  failure_config=tune.FailureConfig(max_failures=0)))
    with mock.patch.dict(os.environ, {"RAY_AIR_NEW_OUTPUT": "0"}):  # silent at verbose=0
        grid = tuner.fit()
    return {result.config["trial"]: _last_line(result.error)
            for result in grid if result.error is not None}
