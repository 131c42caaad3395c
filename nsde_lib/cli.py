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
import os
import sys
from dataclasses import asdict, fields
from pathlib import Path

from .runtime import DEVICES
from .train.config import EVAL_DATASETS, RunConfig, config_fields
from .train.data import DatasetMissing
from .train.folders import RunFolderError
from .train.runs import evaluate_run, read_config, train_run
from .train.store import STORE_ENV, RunStore, default_store_root
from .train.sweep_runs import SWEEP_ENGINES, TrialsFailed, load_spec, run_sweep

__all__ = ["main", "EXIT_DIVERGED", "EXIT_BAD_INPUT", "EXIT_RUN_FOLDER", "EXIT_TRIALS_FAILED"]

EXIT_DIVERGED, EXIT_BAD_INPUT, EXIT_RUN_FOLDER, EXIT_TRIALS_FAILED = 1, 2, 3, 4


def _parse_with(info):
    """argparse's ``type`` for a config field: the field's own parser, its error as argparse's."""
    def parse(text: str):
        try:
            return info.parse(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    parse.__name__ = info.kind  # argparse names the type in its message
    return parse


def _no_store(parser) -> None:
    parser.add_argument("--no-store", action="store_true",
                        help=f"train even if the run store holds this run, and keep nothing "
                             f"there (the store: ${STORE_ENV}, default runs/store; "
                             f"{STORE_ENV}=off does the same)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m nsde_lib", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a classifier into a run folder")
    train.add_argument("--out", required=True, help="run folder (never overwritten)")
    train.add_argument("--resume", action="store_true",
                       help="continue the run in --out from its last checkpoint")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    _no_store(train)
    for info in config_fields().values():
        # default None: on --resume an option not given is taken from the run's config
        flag = {"nargs": "?", "const": True} if info.kind == "bool" else {}  # --compile = true
        train.add_argument(f"--{info.flag}", dest=info.name, type=_parse_with(info),
                           default=None, metavar=info.name.upper(), help=info.describe(), **flag)
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
    sw.add_argument("--quick", action="store_true",
                    help="apply the spec's [quick] table: the chapters' quick mode (a smoke test)")
    sw.add_argument("--no-progress", action="store_true", help="no progress bar")
    _no_store(sw)
    st = sub.add_parser("store", help="the run store: list it, pack it into one file, unpack one")
    st.add_argument("action", choices=("info", "pack", "unpack"),
                    help="info: what it holds; pack FILE: every entry into FILE (.tar.gz); "
                         "unpack FILE: add FILE's entries (entries already here are kept)")
    st.add_argument("file", nargs="?", help="the pack file (pack, unpack)")
    return parser


def _train(args) -> int:
    from pathlib import Path

    given = {f.name: getattr(args, f.name) for f in fields(RunConfig)
             if getattr(args, f.name) is not None}
    base = asdict(RunConfig())
    if args.resume and (Path(args.out) / "config.json").exists():
        base = read_config(args.out)  # options not given come from the run
    config = RunConfig.from_dict(base | given)
    history = train_run(config, args.out, resume=args.resume, progress=not args.no_progress,
                        store=None if args.no_store else "auto")
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
    spec = load_spec(args.spec, quick=args.quick)
    lines = run_sweep(spec, args.out, engine=args.engine, resume=args.resume,
                      cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial,
                      progress=not args.no_progress, store=None if args.no_store else "auto")
    diverged = [tid for tid, line in lines.items() if line["metrics"]["diverged"]]
    accs = [line["metrics"]["test_acc"] for line in lines.values()
            if not line["metrics"]["diverged"]]
    spread = f"; test acc {min(accs):.4f}..{max(accs):.4f}" if accs else ""
    print(f"{args.out}: {len(lines)} trials finished ({len(diverged)} diverged){spread}; "
          f"results in {args.out}/results.jsonl")
    return 0


def _store(args) -> int:
    root = default_store_root()
    if root is None:
        raise ValueError(f"the run store is off ({STORE_ENV}={os.environ.get(STORE_ENV)}); set "
                         f"{STORE_ENV} to a folder, or unset it for runs/store")
    store = RunStore(root)
    if args.action != "info" and not args.file:
        raise ValueError(f"store {args.action} needs a FILE, e.g. python -m nsde_lib store "
                         f"{args.action} course-store.tar.gz")
    if args.action == "pack":
        n = store.pack(args.file)
        size = Path(args.file).stat().st_size / 2**20
        print(f"{args.file}: {n} trained runs from {root} ({size:.1f} MiB)")
    elif args.action == "unpack":
        added, present = store.unpack(args.file)
        print(f"{root}: added {added} trained runs from {args.file} ({present} were already "
              f"there)")
    else:
        metas = store.metas()
        seconds = sum(m.get("seconds", 0) for m in metas)
        devices = sorted({m.get("trained_on", "?") for m in metas})
        print(f"{root}: {len(metas)} trained runs ({seconds / 60:.1f} min of training"
              + (f", on {' and '.join(devices)}" if metas else "") + ")")
    return 0


COMMANDS = {"train": _train, "eval": _eval, "sweep": _sweep, "store": _store}


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
