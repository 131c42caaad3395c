"""Training runs on disk: the engine under ``python -m nsde_lib train`` / ``eval``.

A run is a folder holding ``config.json`` (what was asked for), ``metrics.jsonl`` (one JSON line
per finished epoch), ``checkpoint.pt`` (model, optimizer, RNG states and epoch; written
atomically after every epoch, read with ``weights_only=True``) and ``eval.jsonl`` (one line per
``eval``). A run folder that exists is never overwritten: it is resumed (same config) or refused.

:func:`train_run` is :func:`nsde_lib.train_model` plus the folder: a run the store already holds is
loaded from it and written out, so ``train`` on the command line and a chapter asking for the
same config share one trained model. What a config means: :mod:`nsde_lib.train.config`.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from .. import checks
from ..checks import count
from ..models.ensemble import ensemble_accuracy
from .config import ARCHS, DATA_SHAPES, EVAL_DATASETS, IMAGE_SHAPES, RunConfig, build_model
from .experiment import load_data, train_model
from .fastpath import FastPath, accelerate
from .folders import (RunFolderError, append_line, first_line, load_checkpoint, read_jsonl,
                      refuse_overwrite, rewrite_jsonl, save_checkpoint, write_json)
from .loop import History

__all__ = ["train_run", "evaluate_run", "load_run", "read_config", "read_metrics",
           "CONFIG", "METRICS", "CHECKPOINT", "EVALS"]

CONFIG, METRICS, CHECKPOINT, EVALS = "config.json", "metrics.jsonl", "checkpoint.pt", "eval.jsonl"
CHECKPOINT_KEYS = ("epoch", "model", "optimizer", "rng")


def _check_payload(payload, path: Path) -> dict:
    """A checkpoint of :func:`train_run` has these keys; anything else is another file."""
    missing = [k for k in CHECKPOINT_KEYS if not isinstance(payload, dict) or k not in payload]
    if missing:
        raise RunFolderError(
            f"{path} is not a checkpoint written by `python -m nsde_lib train` (no "
            f"{', '.join(repr(k) for k in missing)}). Nothing was changed. Move it aside to train "
            f"the run again with --resume, or point --run/--out at the right folder")
    return payload


def read_config(run: str | os.PathLike) -> dict:
    """The ``config.json`` of a run folder as a dict.

    Raises:
        FileNotFoundError: the folder has no ``config.json``.
        RunFolderError: it exists but is not readable JSON of a run config.
    """
    path = Path(run) / CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"no run to resume at {Path(run)} (no {CONFIG}); start it "
                                f"without --resume, or check the folder name")
    try:
        values = json.loads(path.read_text())
        if not isinstance(values, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise RunFolderError(
            f"{path} cannot be read ({type(err).__name__}: {first_line(err)}); it was cut "
            f"short or edited. Nothing was changed. Restore it (the run's settings are also in "
            f"{CHECKPOINT}['config'] when a checkpoint exists), or start a new run with another "
            f"--out") from None
    return values


def read_metrics(run: str | os.PathLike) -> dict:
    """The final-epoch metrics of a finished run folder, with ``diverged`` (and where).

    Raises:
        RunFolderError: ``metrics.jsonl`` is missing or damaged.
    """
    records, _ = read_jsonl(Path(run) / METRICS)
    epochs = [r for r in records if "diverged" not in r]
    stop = next((r for r in records if r.get("diverged")), None)
    if not epochs and stop is None:
        raise RunFolderError(f"{Path(run) / METRICS} holds no finished epoch; nothing was "
                             f"changed")
    metrics = dict(epochs[-1]) if epochs else {}
    metrics["diverged"] = stop is not None
    if stop is not None:
        metrics["diverged_epoch"], metrics["diverged_step"] = stop["epoch"], stop["step"]
    return metrics


# --- train ---------------------------------------------------------------------------------------

def _check_run_folder(config: RunConfig, out: Path, resume: bool) -> dict | None:
    """The checkpoint to resume from (or ``None``); refuses to overwrite or to mix configs."""
    if not resume:
        refuse_overwrite(out, "a run")
        return None
    stored = RunConfig.from_dict(read_config(out)).science()
    read_jsonl(out / METRICS)  # a damaged metrics file stops the resume before any work
    given = config.science()
    diff = {k: (stored[k], given[k]) for k in stored if stored[k] != given[k]}
    if diff:
        listed = ", ".join(f"{k}: run has {a!r}, asked {b!r}" for k, (a, b) in diff.items())
        raise ValueError(f"--resume of {out} with a different config ({listed}); resume with "
                         f"the run's own settings or start a new run with another --out")
    if not (out / CHECKPOINT).is_file():
        return None
    return _check_payload(load_checkpoint(out / CHECKPOINT), out / CHECKPOINT)


def train_run(config: RunConfig, out: str | os.PathLike, *, resume: bool = False,
              progress: bool = True, log=print, store="auto") -> History:
    """Train the network ``config`` describes (:func:`nsde_lib.train_model`), writing the run folder
    ``out``.

    Args:
        config: the run's settings (validated here).
        out: run folder; created. If it exists: with ``resume`` the run continues from its last
            checkpoint (at most the unfinished epoch is lost), else ``FileExistsError``.
        progress: tqdm bar over epochs.
        log: where one-line messages go.
        store: the run store (see :func:`nsde_lib.train_model`): a run it holds is loaded and its
            folder written from it; ``None`` trains regardless.

    Returns:
        The :class:`nsde_lib.train.History` of the run.

    Raises:
        ValueError: a bad setting, or ``resume`` with a config different from the run's.
        FileExistsError: ``out`` exists and ``resume`` is False.
        FileNotFoundError: ``resume`` of a run that does not exist; ``DatasetMissing``.
    """
    config.validate()
    out = Path(out)
    checkpoint = _check_run_folder(config, out, resume)
    start = int(checkpoint["epoch"]) if checkpoint is not None else 0
    if start >= config.epochs:
        log(f"{out}: all {config.epochs} epochs are done; nothing to resume")
        return History()
    if start:
        log(f"{out}: resuming after epoch {start} of {config.epochs}")
    prepared = []

    def prepare():  # at the first finished epoch, or after loading: a run that cannot start
        if not prepared:  # (no data, a bad device) leaves no folder behind
            out.mkdir(parents=True, exist_ok=True)
            write_json(out / CONFIG, asdict(config))
            _trim_metrics(out, start)
            prepared.append(True)

    def on_epoch(epoch, history, state):
        prepare()
        append_line(out / METRICS, history.epochs[-1])
        save_checkpoint(out / CHECKPOINT, state)

    result = train_model(config, store=store, progress=progress, desc=out.name,
                         on_epoch=on_epoch, resume=checkpoint)
    prepare()
    history = result.history
    if result.loaded:  # the store's run: write the folder as training would have
        for record in history.epochs[start:]:
            append_line(out / METRICS, record)
        save_checkpoint(out / CHECKPOINT, result.checkpoint)
        log(f"{out}: loaded from the run store (trained {result.trained_at} on "
            f"{result.trained_on})")
    if history.diverged:
        append_line(out / METRICS, {"diverged": True, "epoch": history.diverged_epoch,
                                    "step": history.diverged_step})
        log(f"{out}: training diverged (NaN/Inf) in epoch {history.diverged_epoch}, step "
            f"{history.diverged_step}; try a smaller lr or noise scale")
    return history


def _trim_metrics(out: Path, start: int) -> None:
    """Keep the epoch lines up to the checkpoint's epoch in ``metrics.jsonl``; the lines of
    epochs that will be trained again (and a torn last line) move to ``metrics.jsonl.dropped``,
    so nothing that was written is lost."""
    records, torn = read_jsonl(out / METRICS)
    kept = [r for r in records if r.get("epoch", 0) <= start and "diverged" not in r]
    dropped = [json.dumps(r) for r in records if r not in kept] + torn
    rewrite_jsonl(out / METRICS, kept, dropped)


def _load_weights(model: nn.Module, checkpoint: dict, path: Path) -> None:
    try:
        model.load_state_dict(checkpoint["model"])
    except (RuntimeError, TypeError, KeyError) as err:
        raise RunFolderError(
            f"{path} holds weights that do not fit the run's config ({first_line(err)}). "
            f"Nothing was changed. Point --run/--out at the folder this checkpoint belongs to, "
            f"or move it aside to train the run again") from None


# --- eval ---------------------------------------------------------------------------------------

def load_run(run: str | os.PathLike, device="auto") -> tuple[RunConfig, nn.Module, dict,
                                                              FastPath]:
    """``(config, model, checkpoint, fast)`` of a run folder; the model on ``device`` in eval
    mode, ``fast`` how it runs there (:func:`nsde_lib.accelerate`).

    Raises:
        FileNotFoundError: no run (config or checkpoint) at ``run``.
    """
    run = Path(run)
    if not (run / CONFIG).is_file() or not (run / CHECKPOINT).is_file():
        raise FileNotFoundError(f"no finished epoch to evaluate at {run} (need {CONFIG} and "
                                f"{CHECKPOINT}); train it first: python -m nsde_lib train ...")
    try:
        config = RunConfig.from_dict(read_config(run))
    except (TypeError, ValueError) as err:
        raise RunFolderError(f"{run / CONFIG} is not a run config ({first_line(err)}); "
                             f"nothing was changed") from None
    config.device = str(device)
    checkpoint = _check_payload(load_checkpoint(run / CHECKPOINT), run / CHECKPOINT)
    if config.arch not in ARCHS:
        raise RunFolderError(f"{run / CONFIG} names arch {config.arch!r}, not one of {ARCHS}; "
                             f"nothing was changed")
    if not isinstance(checkpoint["model"], dict):
        raise RunFolderError(f"{run / CHECKPOINT} holds no state dict under 'model'; nothing "
                             f"was changed")
    model = build_model(config)
    _load_weights(model, checkpoint, run / CHECKPOINT)
    fast = accelerate(model, device, amp=config.amp, compile=config.compile)
    return config, model.eval(), checkpoint, fast


def _shape(dataset: str):
    """What a model reads: (channels, side) of an image data set, the coordinates of points."""
    return IMAGE_SHAPES.get(dataset, ("points", DATA_SHAPES[dataset][0]))


def evaluate_run(run: str | os.PathLike, *, ensemble: int = 1, dataset: str | None = None,
                 device="auto", batch_size: int = 500, seed: int = 0) -> dict:
    """Test accuracy of a run without and with test-time noise (TTN); appends to ``eval.jsonl``.

    Args:
        run: the run folder.
        ensemble: K, the noisy passes averaged (softmax mean) for "with TTN".
        dataset: evaluate on another test set of the same image size (``"cifar10.1"`` for a
            CIFAR-10 run); default: the run's.
        device: where to evaluate.
        batch_size: test images per pass.
        seed: seeds the test-time noise.

    Returns:
        ``{"epoch", "dataset", "K", "acc_no_ttn", "acc_ttn"}``; ``acc_ttn`` is ``None`` for a
        Neural ODE (no noise to keep, as "–" in Table 1).

    Raises:
        ValueError: ``ensemble`` < 1, an unknown or incompatible ``dataset``.
        FileNotFoundError: no run at ``run``; ``DatasetMissing``.
    """
    count("ensemble (K)", ensemble)
    dataset = dataset or None
    if dataset is not None:
        checks.one_of("dataset", dataset, EVAL_DATASETS)
    count("batch_size", batch_size)
    config, model, checkpoint, fast = load_run(run, device)
    name = dataset or config.dataset
    if _shape(name) != _shape(config.dataset):  # before any download
        raise ValueError(f"dataset {name!r} does not fit a model trained on {config.dataset!r}")
    _, test = load_data(config, dataset=name, device=device)
    torch.manual_seed(seed)
    clean = ensemble_accuracy(model, test, [1], batch_size=batch_size,
                              forward=fast.test_forward)[0]
    noisy = None
    if config.noise != "none" or config.sigma0 > 0:
        noisy = ensemble_accuracy(model, test, [ensemble], batch_size=batch_size,
                                  forward=fast.forward)[0]
    result = {"epoch": int(checkpoint["epoch"]), "dataset": name, "K": ensemble,
              "acc_no_ttn": clean, "acc_ttn": noisy}
    append_line(Path(run) / EVALS, result)
    return result
