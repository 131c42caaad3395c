"""``python -m nsde_lib``: train and evaluate Neural ODE / SDE classifiers, sweep grids of them.

Examples::

    python -m nsde_lib train --dataset cifar10 --noise multiplicative --sigma 0.3 \\
        --epochs 100 --device cuda --out runs/mult
    python -m nsde_lib train --resume --out runs/mult          # after an interruption
    python -m nsde_lib eval --run runs/mult --ensemble 20
    python -m nsde_lib eval --run runs/mult --ensemble 20 --dataset cifar10.1
    python -m nsde_lib sweep sweeps/02_depth_h.toml --out sweeps/out/02      # a grid of runs
    python -m nsde_lib sweep sweeps/02_depth_h.toml --out sweeps/out/02 --engine ray
    python -m nsde_lib sweep sweeps/02_depth_h.toml --out sweeps/out/02 --resume

A run folder holds config.json, metrics.jsonl (one line per epoch), checkpoint.pt and
eval.jsonl; see :mod:`nsde_lib.train.runs`. A sweep folder holds sweep.json, results.jsonl (one
line per finished trial) and trials/<id>/, one run folder per trial; see
:mod:`nsde_lib.train.sweep_runs`. Every failure is one line on stderr with its own exit
status: 1 training diverged, 2 bad input, 3 a run folder's file cannot be read (it is named, and
nothing in the folder is changed), 4 some trials of a sweep failed (the others are saved),
130 interrupted.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, fields

from .models.classifier import CLASSIFIER_NOISES
from .runtime import DEVICES
from .train.augment import AUGMENTS
from .train.data import DatasetMissing
from .train.runs import (AMP_MODES, EVAL_DATASETS, TRAIN_DATASETS, RunConfig, RunFolderError,
                         evaluate_run, read_config, train_run)
from .train.sweep_runs import SWEEP_ENGINES, TrialsFailed, load_spec, run_sweep

__all__ = ["main", "EXIT_DIVERGED", "EXIT_BAD_INPUT", "EXIT_RUN_FOLDER", "EXIT_TRIALS_FAILED"]

EXIT_DIVERGED, EXIT_BAD_INPUT, EXIT_RUN_FOLDER, EXIT_TRIALS_FAILED = 1, 2, 3, 4

_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def _optional_int(text: str):
    return None if text.lower() == "none" else int(text)


def _optional_float(text: str):
    return None if text.lower() == "none" else float(text)


_HELP = {
    "dataset": f"one of {TRAIN_DATASETS}",
    "arch": "sde (the Neural ODE/SDE classifier) or resnet (the Euler-view ResNet of chapter 02)",
    "noise": f"one of {CLASSIFIER_NOISES}",
    "sigma": "diffusion scale σ >= 0 (additive, multiplicative)",
    "p": "drop probability in [0, 1) (dropout, jump-dropout)",
    "rate": "jump intensity λ >= 0 (jump-dropout)", "channels": "width of the state (SDE channels, ResNet width)",
    "steps": "solver steps on [0, T]", "T": "integration horizon", "method": "euler or milstein",
    "spectral_norm": "spectral normalisation of the drift convs (flag, or true/false)",
    "epochs": "epochs >= 1", "batch_size": "images per step", "optimizer": "sgd or adam",
    "lr": "learning rate", "momentum": "SGD momentum", "weight_decay": "L2 penalty",
    "schedule": "constant, step (÷10 at 50%% and 75%%) or cosine",
    "augment": f"one of {AUGMENTS} or auto (crop-flip for photos, crop for digits)",
    "seed": "seed of shuffling, noise and augmentation",
    "n": "keep only the first n images (quick runs)",
    "depth": "resnet: residual blocks D", "h": "resnet: step factor h > 0 (1 = the original ResNet)",
    "bn": "resnet: BatchNorm in the blocks (true/false)",
    "stem_pool": "resnet: average-pool factor after the stem (28x28 -> 7x7 for 4)",
    "head_pool": "resnet: the head pools the state to head_pool x head_pool",
    "n_train": "keep the first n_train training images", "n_test": "keep the first n_test test images",
    "downsample": "average-pool the images by this factor (2: 28x28 -> 14x14)",
    "input_noise": "std of Gaussian noise added to every training image",
    "max_loss": "a batch loss above this counts as diverged (none: only NaN/Inf)",
    "device": f"one of {DEVICES}",
    "amp": f"one of {AMP_MODES} (bf16 autocast; auto = on CUDA)",
    "compile": "torch.compile the model (flag, or true/false)",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m nsde_lib", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a classifier into a run folder")
    train.add_argument("--out", required=True, help="run folder (never overwritten)")
    train.add_argument("--resume", action="store_true",
                       help="continue the run in --out from its last checkpoint")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    defaults = RunConfig()
    for f in fields(RunConfig):
        kind = {"int | None": _optional_int, "float | None": _optional_float,
                "bool": _bool}.get(f.type, _TYPES.get(f.type, str))
        # default None: on --resume an option not given is taken from the run's config
        flag = {"nargs": "?", "const": True} if f.type == "bool" else {}  # --compile = true
        train.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=kind,
                           default=None, metavar=f.name.upper(), **flag,
                           help=f"{_HELP.get(f.name, '')} (default {getattr(defaults, f.name)})")
    ev = sub.add_parser("eval", help="test accuracy without / with test-time noise")
    ev.add_argument("--run", required=True, help="run folder")
    ev.add_argument("--ensemble", type=int, default=1, metavar="K",
                    help="noisy passes averaged for 'with TTN' (>= 1)")
    ev.add_argument("--dataset", default=None, help=f"test set, one of {EVAL_DATASETS}")
    ev.add_argument("--device", default="auto", help=f"one of {DEVICES}")
    ev.add_argument("--batch-size", type=int, default=500, help="test images per pass")
    ev.add_argument("--seed", type=int, default=0, help="seed of the test-time noise")
    sw = sub.add_parser("sweep", help="train every trial of a spec file (a grid of runs)")
    sw.add_argument("spec", help="TOML spec: [base] options, [grid] lists, optional [[trials]]")
    sw.add_argument("--out", required=True, help="sweep folder (never overwritten)")
    sw.add_argument("--engine", default="local", choices=SWEEP_ENGINES,
                    help="local: one trial after another here; ray: Ray Tune trials on a local "
                         "Ray or the cluster RAY_ADDRESS names (default local)")
    sw.add_argument("--resume", action="store_true",
                    help="run only the unfinished trials of the sweep in --out")
    sw.add_argument("--cpus-per-trial", type=int, default=None, metavar="N",
                    help="torch threads per trial, and the CPUs Ray reserves for one (default: "
                         "the spec's [resources], else 1; the same N gives the same numbers "
                         "under both engines)")
    sw.add_argument("--gpus-per-trial", type=float, default=None, metavar="F",
                    help="ray: share of a GPU per trial, e.g. 0.25 (default: the spec's, else 0)")
    sw.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _train(args) -> int:
    from pathlib import Path

    given = {f.name: getattr(args, f.name) for f in fields(RunConfig)
             if getattr(args, f.name) is not None}
    base = asdict(RunConfig())
    if args.resume and (Path(args.out) / "config.json").exists():
        base = read_config(args.out)  # options not given come from the run
    config = RunConfig.from_dict(base | given)
    history = train_run(config, args.out, resume=args.resume, progress=not args.no_progress)
    if history.diverged:
        return EXIT_DIVERGED
    if history.epochs:
        last = history.epochs[-1]
        print(f"{args.out}: epoch {last['epoch']}/{config.epochs}, loss {last['loss']:.4f}, "
              f"train acc {last['train_acc']:.4f}, test acc (no noise) {last['test_acc']:.4f}")
    return 0


def _eval(args) -> int:
    result = evaluate_run(args.run, ensemble=args.ensemble, dataset=args.dataset,
                          device=args.device, batch_size=args.batch_size, seed=args.seed)
    ttn = "–" if result["acc_ttn"] is None else f"{100 * result['acc_ttn']:.2f}"
    print(f"{args.run} (epoch {result['epoch']}) on {result['dataset']}:")
    print(f"  accuracy w/o TTN        {100 * result['acc_no_ttn']:.2f} %")
    print(f"  accuracy w/ TTN (K={result['K']:<3}) {ttn} %")
    return 0


def _sweep(args) -> int:
    spec = load_spec(args.spec)
    lines = run_sweep(spec, args.out, engine=args.engine, resume=args.resume,
                      cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial,
                      progress=not args.no_progress)
    diverged = [tid for tid, line in lines.items() if line["metrics"]["diverged"]]
    accs = [line["metrics"]["test_acc"] for line in lines.values()
            if not line["metrics"]["diverged"]]
    spread = f"; test acc {min(accs):.4f}..{max(accs):.4f}" if accs else ""
    print(f"{args.out}: {len(lines)} trials finished ({len(diverged)} diverged){spread}; "
          f"results in {args.out}/results.jsonl")
    return 0


COMMANDS = {"train": _train, "eval": _eval, "sweep": _sweep}


def main(argv=None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 diverged, 2 bad input, 3 a run
    folder's file cannot be read, 4 some trials of a sweep failed, 130 interrupted)."""
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except TrialsFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_TRIALS_FAILED
    except RunFolderError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_RUN_FOLDER
    except (ValueError, TypeError, FileExistsError, FileNotFoundError, DatasetMissing) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("\ninterrupted; continue with --resume (at most the unfinished epoch is lost)",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
