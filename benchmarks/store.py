"""The run store: loading a trained model against training it, in the same run.

For each of chapter 04's models of one seed (``sweeps/04_table1.toml``, or its ``[quick]`` table
with ``--quick``), ``nl.train_model`` is timed three ways: with no store (training), into an
empty store (training plus the save), and again from the filled store (the load). The ratio that
matters is load / train: a chapter re-run after a kernel restart pays the load, not the training.
Targets (issue 21): a warm chapter re-runs in 90 s or less, and the whole course in 8 minutes.

    python benchmarks/store.py            # the default models: about 40 s of training each
    python benchmarks/store.py --quick    # the quick models: seconds
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

import nsde_lib as nl  # noqa: E402


def timed(config, store) -> tuple[float, bool]:
    start = time.perf_counter()
    result = nl.train_model(config, store=store, progress=False)
    return time.perf_counter() - start, result.loaded


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the [quick] models")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    spec = nl.course_spec("04_table1", quick=args.quick)
    configs = [nl.RunConfig.from_dict(c | {"device": args.device}) for c in spec.trials.values()
               if c["seed"] == args.seed]
    print(f"{len(configs)} models of sweeps/04_table1.toml{' [quick]' if args.quick else ''}, "
          f"seed {args.seed}, on {nl.pick_device(args.device)}, 1 thread")
    print(f"{'model':<16}{'train':>10}{'train+save':>12}{'load':>10}{'load/train':>12}")
    ratios = []
    with tempfile.TemporaryDirectory() as folder:
        for config in configs:
            train, _ = timed(config, None)
            save, loaded_first = timed(config, folder)
            load, loaded = timed(config, folder)
            assert not loaded_first and loaded, "the store did not serve the saved model"
            ratios.append(load / train)
            print(f"{config.noise:<16}{train:>9.2f}s{save:>11.2f}s{load:>9.3f}s"
                  f"{load / train:>12.4f}")
    print(f"median load / train: {statistics.median(ratios):.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
