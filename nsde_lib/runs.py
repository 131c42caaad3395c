"""Training runs on disk: the engine under ``python -m nsde_lib train`` / ``eval``.

A run is a folder holding ``config.json`` (what was asked for), ``metrics.jsonl`` (one JSON line
per finished epoch), ``checkpoint.pt`` (model, optimizer, RNG states and epoch; written
atomically after every epoch, read with ``weights_only=True``) and ``eval.jsonl`` (one line per
``eval``). A run folder that exists is never overwritten: it is resumed (same config) or refused.

On a GPU the fast path is switched on here, not in the model: data held on the device, batch
augmentation on the device, channels_last, bf16 autocast (the SDE state, the noise and the norms
stay float32, see :mod:`nsde_lib.classifier`) and optionally ``torch.compile``.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch

from .augment import AUGMENTS, make_augment
from .checks import count, positive
from .classifier import SDEClassifier, ensemble_accuracy
from .data import load
from .runtime import DEVICES, pick_device, rng_states
from .train import OPTIMIZERS, SCHEDULES, History, fit, make_optimizer

__all__ = ["RunConfig", "train_run", "evaluate_run", "load_run", "build_model",
           "save_checkpoint", "load_checkpoint", "make_forward", "accelerate", "FastPath",
           "TRAIN_DATASETS",
           "EVAL_DATASETS", "AMP_MODES"]

TRAIN_DATASETS = ("mnist5k", "cifar10", "stl10")
EVAL_DATASETS = TRAIN_DATASETS + ("cifar10.1",)
AMP_MODES = ("auto", "bf16", "off")
# (channels, side) of each data set's images: which test sets a trained model can read.
IMAGE_SHAPES = {"mnist5k": (1, 28), "cifar10": (3, 32), "cifar10.1": (3, 32), "stl10": (3, 96)}
NATURAL_IMAGES = ("cifar10", "stl10", "cifar10.1")  # may be flipped; digits may not
CONFIG, METRICS, CHECKPOINT, EVALS = "config.json", "metrics.jsonl", "checkpoint.pt", "eval.jsonl"


@dataclass
class RunConfig:
    """Everything a training run depends on. Defaults follow the reference code (11 steps of
    1/11 on [0, 1], 64 channels, SGD with momentum, lr 0.1 divided by 10 in steps).

    The fields in :attr:`RUNTIME` say *how* to compute, not *what*: they may change when a run
    is resumed (e.g. on another machine); all others must match.
    """

    dataset: str = "mnist5k"
    noise: str = "none"
    sigma: float = 0.0
    p: float = 0.0
    rate: float = 1.0
    channels: int = 64
    steps: int = 11
    T: float = 1.0
    method: str = "euler"
    spectral_norm: bool = False
    epochs: int = 100
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "step"
    augment: str = "auto"
    seed: int = 0
    n: int | None = None
    device: str = "auto"
    amp: str = "auto"
    compile: bool = False

    RUNTIME = ("device", "amp", "compile")

    def validate(self) -> "RunConfig":
        """Raise ``ValueError`` naming the first bad field and its allowed values."""
        _one_of("dataset", self.dataset, TRAIN_DATASETS)
        _one_of("augment", self.augment, AUGMENTS + ("auto",))
        _one_of("amp", self.amp, AMP_MODES)
        _one_of("optimizer", self.optimizer, OPTIMIZERS)
        _one_of("schedule", self.schedule, tuple(s for s in SCHEDULES if s))
        if str(self.device).split(":")[0] not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES} (or 'cuda:N'), got {self.device!r}")
        for name in ("epochs", "batch_size", "seed"):
            count(name, getattr(self, name), low=0 if name == "seed" else 1)
        positive("lr", self.lr)
        if self.n is not None and (not isinstance(self.n, int) or self.n < 20):
            raise ValueError(f"n must be None or an integer >= 20, got {self.n!r}")
        build_model(self, 1, 10)  # the classifier checks noise, sigma, p, rate, steps, T, ...
        # A noise of scale 0 is the Neural ODE under another name: say so rather than train it.
        scale = {"additive": "sigma", "multiplicative": "sigma", "dropout": "p"}.get(self.noise)
        if scale and getattr(self, scale) == 0:
            raise ValueError(f"{scale} must be > 0 for noise {self.noise!r} ({scale} = 0 is the "
                             f"Neural ODE: use noise 'none')")
        return self

    def science(self) -> dict:
        """The fields a resumed run must share with the original."""
        return {k: v for k, v in asdict(self).items() if k not in self.RUNTIME}

    @classmethod
    def from_dict(cls, values: dict) -> "RunConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; allowed: {sorted(known)}")
        return cls(**values)


def _one_of(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


def build_model(config: RunConfig, in_channels: int, num_classes: int) -> SDEClassifier:
    """The :class:`SDEClassifier` a config describes."""
    return SDEClassifier(in_channels, num_classes, channels=config.channels, noise=config.noise,
                         sigma=config.sigma, p=config.p, rate=config.rate, T=config.T,
                         steps=config.steps, method=config.method,
                         spectral_norm=config.spectral_norm)


# --- checkpoints -------------------------------------------------------------------------------

def save_checkpoint(path: str | os.PathLike, payload: dict) -> None:
    """``torch.save`` to a temporary file in the same folder, fsync, then rename over ``path``.

    A crash mid-write leaves the previous checkpoint intact (rename is atomic on POSIX).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_checkpoint(path: str | os.PathLike, device="cpu") -> dict:
    """Read a checkpoint with ``weights_only=True`` (no arbitrary code from the file)."""
    return torch.load(Path(path), map_location=pick_device(device), weights_only=True)


def _write_json(path: Path, data) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def _append_line(path: Path, record: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _read_lines(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --- the fast path -------------------------------------------------------------------------------

def make_forward(device, *, amp: bool = False, channels_last: bool = False,
                 noise: bool | None = None):
    """``forward(model, x) -> logits`` for :func:`nsde_lib.fit` / :func:`nsde_lib.evaluate`.

    Args:
        device: the device the model runs on (autocast needs its type).
        amp: bf16 autocast (the classifier keeps its state, noise and norms in float32).
        channels_last: hand the images over in channels_last layout.
        noise: passed to the model (``None``: its ``noise_on``).
    """
    device_type = pick_device(device).type

    def forward(model, x):
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=amp):
            return model(x, noise=noise)

    return forward


@dataclass
class FastPath:
    """How a model runs on its device (see :func:`accelerate`).

    Attributes:
        forward: ``forward(model, x)`` for training (noise as the model's ``noise_on``).
        test_forward: the same without noise (the "w/o TTN" accuracy).
        amp: bf16 autocast is on.
        channels_last: images and activations use the channels_last layout.
    """

    forward: object
    test_forward: object
    amp: bool
    channels_last: bool


def accelerate(model: SDEClassifier, device="auto", *, amp: str = "auto",
               compile: bool = False) -> FastPath:
    """Move ``model`` to ``device`` and switch on what makes it fast there (in place).

    On CUDA: channels_last, bf16 autocast (``amp="auto"``), cuDNN autotuning and, with
    ``compile``, ``torch.compile`` (in place: the state dict keeps its keys). On the CPU: nothing
    but the move, unless ``amp="bf16"``.

    Raises:
        ValueError: unknown ``amp`` or device.
    """
    _one_of("amp", amp, AMP_MODES)
    device = pick_device(device)
    cuda = device.type == "cuda"
    use_amp = amp == "bf16" or (amp == "auto" and cuda)
    model.to(device)
    if cuda:
        model.to(memory_format=torch.channels_last)
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest conv
    if compile:
        model.compile()
    return FastPath(make_forward(device, amp=use_amp, channels_last=cuda),
                    make_forward(device, amp=use_amp, channels_last=cuda, noise=False),
                    use_amp, cuda)


def _data(dataset: str, config: RunConfig, device: torch.device):
    kwargs = {"device": device}
    if config.n is not None:
        kwargs["n"] = config.n
    return load(dataset, **kwargs)


# --- train ---------------------------------------------------------------------------------------

def _check_run_folder(config: RunConfig, out: Path, resume: bool) -> dict | None:
    """The checkpoint to resume from (or ``None``); refuses to overwrite or to mix configs."""
    if not resume:
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise FileExistsError(
                f"{out} already exists and is not empty; a run is never overwritten. Continue it "
                f"with --resume, or choose another --out")
        return None
    if not (out / CONFIG).is_file():
        raise FileNotFoundError(f"no run to resume at {out} (no {CONFIG}); start it without "
                                f"--resume")
    stored = RunConfig.from_dict(json.loads((out / CONFIG).read_text())).science()
    given = config.science()
    diff = {k: (stored[k], given[k]) for k in stored if stored[k] != given[k]}
    if diff:
        listed = ", ".join(f"{k}: run has {a!r}, asked {b!r}" for k, (a, b) in diff.items())
        raise ValueError(f"--resume of {out} with a different config ({listed}); resume with "
                         f"the run's own settings or start a new run with another --out")
    return load_checkpoint(out / CHECKPOINT) if (out / CHECKPOINT).is_file() else None


def train_run(config: RunConfig, out: str | os.PathLike, *, resume: bool = False,
              progress: bool = True, log=print) -> History:
    """Train the classifier ``config`` describes, writing the run folder ``out``.

    Args:
        config: the run's settings (validated here).
        out: run folder; created. If it exists: with ``resume`` the run continues from its last
            checkpoint (at most the unfinished epoch is lost), else ``FileExistsError``.
        progress: tqdm bar over epochs.
        log: where one-line messages go.

    Returns:
        The :class:`nsde_lib.train.History` of the epochs trained in this call.

    Raises:
        ValueError: a bad setting, or ``resume`` with a config different from the run's.
        FileExistsError: ``out`` exists and ``resume`` is False.
        FileNotFoundError: ``resume`` of a run that does not exist; ``DatasetMissing``.
    """
    config.validate()
    out = Path(out)
    checkpoint = _check_run_folder(config, out, resume)
    device = pick_device(config.device)
    train, test = _data(config.dataset, config, device)
    torch.manual_seed(config.seed)  # the initial weights depend on the seed only
    model = build_model(config, train[0].shape[1], 10)
    optimizer = make_optimizer(model.parameters(), config.optimizer, config.lr,
                               momentum=config.momentum, weight_decay=config.weight_decay)
    start, rng = 0, None
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        start, rng = int(checkpoint["epoch"]), checkpoint["rng"]
    fast = accelerate(model, device, amp=config.amp, compile=config.compile)
    if checkpoint is not None:  # after the model moved: the state lands on its device
        optimizer.load_state_dict(checkpoint["optimizer"])

    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / CONFIG, asdict(config))
    kept = [r for r in _read_lines(out / METRICS) if r.get("epoch", 0) <= start]
    _write_json_lines(out / METRICS, kept)  # drop an epoch logged after the last checkpoint
    if start >= config.epochs:
        log(f"{out}: all {config.epochs} epochs are done; nothing to resume")
        return History()
    if start:
        log(f"{out}: resuming after epoch {start} of {config.epochs}")

    def on_epoch(epoch, history, opt):
        _append_line(out / METRICS, history.epochs[-1])
        save_checkpoint(out / CHECKPOINT, {"epoch": epoch + 1, "model": model.state_dict(),
                                           "optimizer": opt.state_dict(), "rng": rng_states(),
                                           "config": asdict(config)})

    kind = config.augment
    if kind == "auto":
        kind = "crop-flip" if config.dataset in NATURAL_IMAGES else "crop"
    history = fit(model, train, test, epochs=config.epochs, optimizer=optimizer,
                  schedule=config.schedule, batch_size=config.batch_size, device=device,
                  seed=config.seed, augment=make_augment(kind, train[0].shape[-1]),
                  forward=fast.forward, test_forward=fast.test_forward,
                  on_epoch=on_epoch, start_epoch=start, rng_state=rng, progress=progress,
                  desc=out.name)
    if history.diverged:
        _append_line(out / METRICS, {"diverged": True, "epoch": history.diverged_epoch,
                                     "step": history.diverged_step})
        log(f"{out}: training diverged (NaN/Inf) in epoch {history.diverged_epoch}, step "
            f"{history.diverged_step}; try a smaller lr or noise scale")
    return history


def _write_json_lines(path: Path, records: list[dict]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in records))
    os.replace(tmp, path)


# --- eval ---------------------------------------------------------------------------------------

def load_run(run: str | os.PathLike, device="auto") -> tuple[RunConfig, SDEClassifier, dict]:
    """``(config, model, checkpoint)`` of a run folder; the model on ``device`` (see
    :func:`accelerate`), in eval mode.

    Raises:
        FileNotFoundError: no run (config or checkpoint) at ``run``.
    """
    run = Path(run)
    if not (run / CONFIG).is_file() or not (run / CHECKPOINT).is_file():
        raise FileNotFoundError(f"no finished epoch to evaluate at {run} (need {CONFIG} and "
                                f"{CHECKPOINT}); train it first: python -m nsde_lib train ...")
    config = RunConfig.from_dict(json.loads((run / CONFIG).read_text()))
    config.device = str(device)
    checkpoint = load_checkpoint(run / CHECKPOINT)
    in_channels = checkpoint["model"]["stem.weight"].shape[1]
    model = build_model(config, in_channels, 10)
    model.load_state_dict(checkpoint["model"])
    accelerate(model, device, amp=config.amp, compile=config.compile)
    return config, model.eval(), checkpoint


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
        _one_of("dataset", dataset, EVAL_DATASETS)
    if not (isinstance(batch_size, int) and batch_size >= 1):
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    config, model, checkpoint = load_run(run, device)
    name = dataset or config.dataset
    if IMAGE_SHAPES[name] != IMAGE_SHAPES[config.dataset]:  # before any download
        raise ValueError(f"dataset {name!r} does not fit a model trained on {config.dataset!r}")
    dev = pick_device(device)
    _, test = _data(name, config, dev)
    cuda = dev.type == "cuda"
    amp = config.amp == "bf16" or (config.amp == "auto" and cuda)
    torch.manual_seed(seed)
    clean = ensemble_accuracy(model, test, [1], noise=False, batch_size=batch_size,
                              channels_last=cuda, amp=amp)[0]
    noisy = None
    if config.noise != "none":
        noisy = ensemble_accuracy(model, test, [ensemble], batch_size=batch_size,
                                  channels_last=cuda, amp=amp)[0]
    result = {"epoch": int(checkpoint["epoch"]), "dataset": name, "K": ensemble,
              "acc_no_ttn": clean, "acc_ttn": noisy}
    _append_line(Path(run) / EVALS, result)
    return result
