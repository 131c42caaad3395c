"""Sweep engines on this machine: chapter 02's default grid (sweeps/02_depth_h.toml, 30 trials).

Times ``run_sweep`` on the same spec, each into a fresh temporary folder, in one run:

* ``local``: one trial after another in this process with all of torch's CPU threads (the way a
  notebook runs its grid);
* ``local-1``: one after another, one thread each (optional: ``--modes``);
* ``ray``: Ray Tune on a local instance, one single-thread trial per core at a time.

Ray's start-up (``ray.init`` of a local instance) and shut-down are timed apart from its trials.
For each mode it prints the wall time, the compute time (the sum of the trials' epoch times as
``metrics.jsonl`` records them: what is left of the wall time is loading data, starting
processes and waiting), the machine's load average before and after, and the ratio against
``local``; when ``local-1`` and ``ray`` both ran, whether their numbers are identical (they
should be: same seeds, same threads).

    python benchmarks/sweep.py                                # 02's grid, local vs ray
    python benchmarks/sweep.py --modes local,local-1,ray      # also one thread, one at a time
    python benchmarks/sweep.py --spec sweeps/04_table1.toml --epochs 2
    python benchmarks/sweep.py --device cuda --gpus-per-trial 0.25
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from nsde_lib import load_spec, run_sweep  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MODES = ("local", "local-1", "ray")


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (1 min) / {five:.2f} (5 min)"


def compute_seconds(out: Path) -> float:
    total = 0.0
    for metrics in (out / "trials").glob("*/metrics.jsonl"):
        for line in metrics.read_text().splitlines():
            total += json.loads(line).get("seconds", 0.0)
    return total


def numbers(out: Path) -> dict:
    lines = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    return {r["trial"]: {k: v for k, v in r["metrics"].items() if k != "seconds"} for r in lines}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=ROOT / "sweeps" / "02_depth_h.toml")
    parser.add_argument("--modes", default="local,ray",
                        help=f"comma-separated, from {', '.join(MODES)} (default local,ray)")
    parser.add_argument("--device", default=None, help="override the spec's device")
    parser.add_argument("--epochs", type=int, default=None, help="override the spec's epochs")
    parser.add_argument("--gpus-per-trial", type=float, default=0.0, help="ray: GPU share")
    parser.add_argument("--ray-cpus", type=int, default=None,
                        help="CPUs of the local Ray instance (default: all)")
    args, _ = parser.parse_known_args(argv)  # run_all.py passes shared flags (e.g. --repeats)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if unknown := [m for m in modes if m not in MODES]:
        parser.error(f"unknown modes {unknown}; choose from {MODES}")

    spec = load_spec(args.spec)
    for config in spec.trials.values():
        if args.device:
            config["device"] = args.device
        if args.epochs:
            config["epochs"] = args.epochs
    cores = os.cpu_count()
    threads = torch.get_num_threads()
    print(f"spec {args.spec.name}: {len(spec.trials)} trials; {cores} CPU cores, torch "
          f"{torch.__version__} with {threads} threads; load before: {load()}", flush=True)

    results, folders = {}, {}
    with tempfile.TemporaryDirectory(prefix="nsde-sweep-bench-") as tmp:
        for mode in modes:
            out = Path(tmp) / mode
            folders[mode] = out
            before = load()
            row = {"load before": before}
            if mode == "ray":
                try:
                    from nsde_lib.train import ray_engine

                    ray_engine.require_ray()
                except ValueError as err:
                    print(f"ray: skipped ({err})", flush=True)
                    continue
                start = time.perf_counter()
                ray_engine.start(1, args.gpus_per_trial, num_cpus=args.ray_cpus)
                row["start"] = time.perf_counter() - start
                start = time.perf_counter()
                run_sweep(spec, out, engine="ray", cpus_per_trial=1,
                          gpus_per_trial=args.gpus_per_trial, progress=False, log=lambda m: None)
                row["trials"] = time.perf_counter() - start
                start = time.perf_counter()
                ray_engine.stop(True)
                row["stop"] = time.perf_counter() - start
                row["wall"] = row["start"] + row["trials"] + row["stop"]
            else:
                cpus = 1 if mode == "local-1" else threads
                start = time.perf_counter()
                run_sweep(spec, out, engine="local", cpus_per_trial=cpus, progress=False,
                          log=lambda m: None)
                row["wall"] = row["trials"] = time.perf_counter() - start
            row["compute"] = compute_seconds(out)
            row["load after"] = load()
            results[mode] = row
            extra = (f" (Ray start {row['start']:.1f} s + trials {row['trials']:.1f} s + stop "
                     f"{row['stop']:.1f} s)" if mode == "ray" else "")
            print(f"{mode}: {row['wall']:.1f} s wall{extra}; load {before} -> "
                  f"{row['load after']}", flush=True)
        same = None
        if "local-1" in results and "ray" in results:
            same = numbers(folders["local-1"]) == numbers(folders["ray"])

    if not results:
        return 1
    print()
    bases = [m for m in ("local", "local-1") if m in results]
    header = f"{'mode':<9}{'wall s':>9}{'trials s':>10}{'compute s':>11}" + "".join(
        f"{'vs ' + b:>12}{'(trials)':>10}" for b in bases)
    print(header)
    print("-" * len(header))
    for mode, row in results.items():
        ratios = "".join(f"{results[b]['wall'] / row['wall']:>11.2f}x"
                         f"{results[b]['wall'] / row['trials']:>9.2f}x" for b in bases)
        print(f"{mode:<9}{row['wall']:>9.1f}{row['trials']:>10.1f}{row['compute']:>11.1f}{ratios}")
    if "ray" in results:
        r = results["ray"]
        print(f"\nRay start-up (ray.init of a local instance): {r['start']:.1f} s; shut-down "
              f"{r['stop']:.1f} s. 'vs local' = local wall / mode wall (> 1: faster); "
              f"'(trials)' leaves Ray's start and stop out.")
    if same is not None:
        print(f"local-1 and ray give identical numbers: {same}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
