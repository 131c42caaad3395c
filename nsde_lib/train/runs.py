"""Training runs on disk: the engine under ``python -m nsde_lib train`` / ``eval``.

A run is a folder holding ``config.json`` (what was asked for), ``metrics.jsonl`` (one JSON line
per finished epoch), ``checkpoint.pt`` (model, optimizer, RNG states and epoch; written
atomically after every epoch, read with ``weights_only=True``) and ``eval.jsonl`` (one line per
``eval``). A run folder that exists is never overwritten: it is resumed (same config) or refused.

A run trains one of two architectures (``arch``): the Neural ODE/SDE classifier of paper 000
(:class:`nsde_lib.SDEClassifier`, the default) or the Euler-view ResNet of paper 003 with step
factor ``h`` (:class:`nsde_lib.EulerResNet`, conv blocks: chapter 02's grid).

On a GPU the fast path is switched on here, not in the model: data held on the device, batch
augmentation on the device, channels_last, bf16 autocast (the SDE state, the noise and the norms
stay float32, see :mod:`nsde_lib.classifier`) and optionally ``torch.compile``.
"""
from __future__ import annotations

import json
import os
import pickle
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from torch import nn

from .. import checks
from ..checks import count, positive
from ..models.classifier import SDEClassifier
from ..models.ensemble import ensemble_accuracy
from ..models.resnet import EulerResNet
from ..runtime import DEVICES, pick_device, rng_states
from .augment import AUGMENTS, make_augment
from .data import load
from .loop import OPTIMIZERS, SCHEDULES, History, fit, make_optimizer

__all__ = ["RunConfig", "train_run", "evaluate_run", "load_run", "read_config", "build_model",
           "save_checkpoint", "load_checkpoint", "make_forward", "accelerate", "FastPath",
           "RunFolderError", "TRAIN_DATASETS", "EVAL_DATASETS", "AMP_MODES", "ARCHS"]

TRAIN_DATASETS = ("mnist5k", "cifar10", "stl10")
EVAL_DATASETS = TRAIN_DATASETS + ("cifar10.1",)
AMP_MODES = ("auto", "bf16", "off")
ARCHS = ("sde", "resnet")
# The fields that describe one architecture only; with the other they must keep their defaults,
# so that a setting that would be ignored is refused instead.
ARCH_FIELDS = {"sde": ("noise", "sigma", "p", "rate", "steps", "T", "method", "spectral_norm"),
               "resnet": ("depth", "h", "bn", "stem_pool", "head_pool")}
STEM_WEIGHTS = {"sde": "stem.weight", "resnet": "stem.0.weight"}  # (C_out, C_in, 3, 3)
# (channels, side) of each data set's images: which test sets a trained model can read.
IMAGE_SHAPES = {"mnist5k": (1, 28), "cifar10": (3, 32), "cifar10.1": (3, 32), "stl10": (3, 96)}
NATURAL_IMAGES = ("cifar10", "stl10", "cifar10.1")  # may be flipped; digits may not
CONFIG, METRICS, CHECKPOINT, EVALS = "config.json", "metrics.jsonl", "checkpoint.pt", "eval.jsonl"
DROPPED = METRICS + ".dropped"  # lines taken out of metrics.jsonl on resume, kept here
CHECKPOINT_KEYS = ("epoch", "model", "optimizer", "rng")


@dataclass
class RunConfig:
    """Everything a training run depends on. Defaults follow the reference code (11 steps of
    1/11 on [0, 1], 64 channels, SGD with momentum, lr 0.1 divided by 10 in steps).

    ``arch`` picks the network: ``"sde"`` (:class:`nsde_lib.SDEClassifier`: ``noise`` ...
    ``spectral_norm``) or ``"resnet"`` (:class:`nsde_lib.EulerResNet` with conv blocks:
    ``depth``, ``h``, ``bn``, ``stem_pool``, ``head_pool``); ``channels`` is the width of the
    state for both. The fields of the other architecture must keep their defaults.
    ``n_train``/``n_test``/``downsample`` shrink the data (:func:`nsde_lib.load`),
    ``input_noise`` adds Gaussian noise of that std to every training image, ``max_loss``
    counts a batch loss above it as divergence (see :func:`nsde_lib.fit`).

    The fields in :attr:`RUNTIME` say *how* to compute, not *what*: they may change when a run
    is resumed (e.g. on another machine); all others must match.
    """

    dataset: str = "mnist5k"
    arch: str = "sde"
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
    depth: int = 8
    h: float = 1.0
    bn: bool = True
    stem_pool: int = 1
    head_pool: int = 1
    n_train: int | None = None
    n_test: int | None = None
    downsample: int = 1
    input_noise: float = 0.0
    max_loss: float | None = None
    device: str = "auto"
    amp: str = "auto"
    compile: bool = False

    RUNTIME = ("device", "amp", "compile")

    def validate(self) -> "RunConfig":
        """Raise ``ValueError`` naming the first bad field and its allowed values."""
        checks.one_of("dataset", self.dataset, TRAIN_DATASETS)
        checks.one_of("arch", self.arch, ARCHS)
        defaults = RunConfig()
        for other, names in ARCH_FIELDS.items():
            for name in names if other != self.arch else ():
                if getattr(self, name) != getattr(defaults, name):
                    raise ValueError(f"{name} is a setting of arch {other!r}, not of "
                                     f"{self.arch!r}: leave it out (default "
                                     f"{getattr(defaults, name)!r}) or use arch {other!r}")
        checks.one_of("augment", self.augment, AUGMENTS + ("auto",))
        checks.one_of("amp", self.amp, AMP_MODES)
        checks.one_of("optimizer", self.optimizer, OPTIMIZERS)
        checks.one_of("schedule", self.schedule, tuple(s for s in SCHEDULES if s))
        if str(self.device).split(":")[0] not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES} (or 'cuda:N'), got {self.device!r}")
        for name in ("epochs", "batch_size", "seed"):
            count(name, getattr(self, name), low=0 if name == "seed" else 1)
        positive("lr", self.lr)
        if self.n is not None and (not isinstance(self.n, int) or self.n < 20):
            raise ValueError(f"n must be None or an integer >= 20, got {self.n!r}")
        for name in ("n_train", "n_test"):
            if getattr(self, name) is not None:
                count(f"{name} (or None)", getattr(self, name))
        count("downsample", self.downsample)
        side = IMAGE_SHAPES[self.dataset][1] // self.downsample
        smallest = 3 if self.arch == "sde" else self.stem_pool  # the stem's kernel / its pool
        if side < smallest:
            raise ValueError(f"downsample {self.downsample} leaves {side}x{side} images of "
                             f"{self.dataset}: too small for arch {self.arch!r} (at least "
                             f"{smallest}x{smallest})")
        checks.non_negative("input_noise (std of Gaussian noise on training images)",
                            self.input_noise)
        if self.max_loss is not None:
            positive("max_loss (or None)", self.max_loss)
        build_model(self, 1, 10)  # the model checks noise, sigma, ..., depth, h, pools
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


class RunFolderError(RuntimeError):
    """A file of a run folder cannot be read (truncated, empty, or not written by this library).

    The message names the file and what to do; nothing in the folder is changed or deleted.
    The command line reports it with its own exit status (3).
    """


def build_model(config: RunConfig, in_channels: int, num_classes: int) -> nn.Module:
    """The network a config describes: an :class:`SDEClassifier` (``arch="sde"``) or an
    :class:`EulerResNet` with conv blocks (``arch="resnet"``, width ``channels``)."""
    if config.arch == "resnet":
        return EulerResNet(in_channels, num_classes, depth=config.depth, width=config.channels,
                           h=config.h, block="conv", bn=config.bn, pool=config.stem_pool,
                           head_pool=config.head_pool)
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
    """Read a checkpoint with ``weights_only=True`` (no arbitrary code from the file).

    Raises:
        RunFolderError: the file is truncated, empty or not a torch file (the message names it
            and says what to do).
    """
    path = Path(path)
    try:
        payload = torch.load(path, map_location=pick_device(device), weights_only=True)
    except Exception as err:  # noqa: BLE001 (torch.load fails in many ways on a bad file)
        reason = ("a weights-only load refused the Python objects in it"
                  if isinstance(err, pickle.UnpicklingError)
                  else f"{type(err).__name__}: {_first_line(err)}")
        raise RunFolderError(
            f"{path} cannot be read ({reason}): it is truncated, empty or not a checkpoint of "
            f"this course. Nothing was changed. Move it aside (e.g. rename it to "
            f"{path.name}.bad) to train the run again from its first epoch with --resume, or "
            f"restore it from a copy") from None
    return payload


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
            f"{path} cannot be read ({type(err).__name__}: {_first_line(err)}); it was cut "
            f"short or edited. Nothing was changed. Restore it (the run's settings are also in "
            f"{CHECKPOINT}['config'] when a checkpoint exists), or start a new run with another "
            f"--out") from None
    return values


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else "no detail"


def _write_json(path: Path, data) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def _append_line(path: Path, record: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _read_metrics(path: Path) -> tuple[list[dict], list[str]]:
    """The epoch records of ``metrics.jsonl`` and the raw lines that are not records.

    A process killed while appending leaves a torn last line: it is returned among the bad
    lines, and the epoch it belonged to is trained again (its checkpoint was never written).
    A bad line anywhere else means the file was damaged otherwise: ``RunFolderError``.
    """
    if not path.is_file():
        return [], []
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    records, bad = [], []
    for i, line in enumerate(lines):
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
            records.append(record)
        except ValueError as err:
            if i < len(lines) - 1:
                raise RunFolderError(
                    f"{path}, line {i + 1}, cannot be read ({_first_line(err)}); only a torn last "
                    f"line is recovered automatically. Nothing was changed. Repair or remove "
                    f"that line, then run the command again") from None
            bad.append(line)
    return records, bad


# --- the fast path -------------------------------------------------------------------------------

def make_forward(device, *, amp: bool = False, channels_last: bool = False,
                 noise: bool | None = None):
    """``forward(model, x) -> logits`` for :func:`nsde_lib.fit` / :func:`nsde_lib.evaluate`.

    Args:
        device: the device the model runs on (autocast needs its type).
        amp: bf16 autocast (the classifier keeps its state, noise and norms in float32).
        channels_last: hand the images over in channels_last layout.
        noise: passed to the model (``None``: ``model(x)``, i.e. its ``noise_on``; a model
            without noise takes ``None`` only).
    """
    device_type = pick_device(device).type

    def forward(model, x):
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=amp):
            return model(x) if noise is None else model(x, noise=noise)

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


def _no_noise(model: nn.Module) -> bool | None:
    """The ``noise`` argument of a noise-free pass: ``False`` for a noisy model (one with
    ``noise_on``), ``None`` for a network that has no noise to switch off."""
    return False if hasattr(model, "noise_on") else None


def accelerate(model: nn.Module, device="auto", *, amp: str = "auto",
               compile: bool = False) -> FastPath:
    """Move ``model`` to ``device`` and switch on what makes it fast there (in place).

    On CUDA: channels_last, bf16 autocast (``amp="auto"``), cuDNN autotuning and, with
    ``compile``, ``torch.compile`` (in place: the state dict keeps its keys). On the CPU: nothing
    but the move, unless ``amp="bf16"``.

    Raises:
        ValueError: unknown ``amp`` or device.
    """
    checks.one_of("amp", amp, AMP_MODES)
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
                    make_forward(device, amp=use_amp, channels_last=cuda,
                                 noise=_no_noise(model)),
                    use_amp, cuda)


def _data(dataset: str, config: RunConfig, device: torch.device):
    kwargs = {"device": device}
    if config.n is not None:
        kwargs["n"] = config.n
    return load(dataset, n_train=config.n_train, n_test=config.n_test, pool=config.downsample,
                **kwargs)


# --- train ---------------------------------------------------------------------------------------

def _check_run_folder(config: RunConfig, out: Path, resume: bool) -> dict | None:
    """The checkpoint to resume from (or ``None``); refuses to overwrite or to mix configs."""
    if not resume:
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise FileExistsError(
                f"{out} already exists and is not empty; a run is never overwritten. Continue it "
                f"with --resume, or choose another --out")
        return None
    stored = RunConfig.from_dict(read_config(out)).science()
    _read_metrics(out / METRICS)  # a damaged metrics file stops the resume before any work
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
              progress: bool = True, log=print) -> History:
    """Train the network ``config`` describes, writing the run folder ``out``.

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
        _load_weights(model, checkpoint, out / CHECKPOINT)
        start, rng = int(checkpoint["epoch"]), checkpoint["rng"]
    fast = accelerate(model, device, amp=config.amp, compile=config.compile)
    if checkpoint is not None:  # after the model moved: the state lands on its device
        optimizer.load_state_dict(checkpoint["optimizer"])

    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / CONFIG, asdict(config))
    _trim_metrics(out, start)
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
                  seed=config.seed,
                  augment=make_augment(kind, train[0].shape[-1], noise=config.input_noise),
                  forward=fast.forward, test_forward=fast.test_forward, max_loss=config.max_loss,
                  on_epoch=on_epoch, start_epoch=start, rng_state=rng, progress=progress,
                  desc=out.name)
    if history.diverged:
        _append_line(out / METRICS, {"diverged": True, "epoch": history.diverged_epoch,
                                     "step": history.diverged_step})
        log(f"{out}: training diverged (NaN/Inf) in epoch {history.diverged_epoch}, step "
            f"{history.diverged_step}; try a smaller lr or noise scale")
    return history


def _trim_metrics(out: Path, start: int) -> None:
    """Keep the epoch lines up to the checkpoint's epoch in ``metrics.jsonl``; the lines of
    epochs that will be trained again (and a torn last line) move to ``metrics.jsonl.dropped``,
    so nothing that was written is lost."""
    path = out / METRICS
    records, bad = _read_metrics(path)
    kept = [r for r in records if r.get("epoch", 0) <= start]
    dropped = [json.dumps(r) for r in records if r.get("epoch", 0) > start] + bad
    if dropped:
        with open(out / DROPPED, "a") as f:
            f.write("".join(line + "\n" for line in dropped))
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))
    os.replace(tmp, path)


def _load_weights(model: nn.Module, checkpoint: dict, path: Path) -> None:
    try:
        model.load_state_dict(checkpoint["model"])
    except (RuntimeError, TypeError, KeyError) as err:
        raise RunFolderError(
            f"{path} holds weights that do not fit the run's config ({_first_line(err)}). "
            f"Nothing was changed. Point --run/--out at the folder this checkpoint belongs to, "
            f"or move it aside to train the run again") from None


# --- eval ---------------------------------------------------------------------------------------

def load_run(run: str | os.PathLike, device="auto") -> tuple[RunConfig, nn.Module, dict]:
    """``(config, model, checkpoint)`` of a run folder; the model on ``device`` (see
    :func:`accelerate`), in eval mode.

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
        raise RunFolderError(f"{run / CONFIG} is not a run config ({_first_line(err)}); "
                             f"nothing was changed") from None
    config.device = str(device)
    checkpoint = _check_payload(load_checkpoint(run / CHECKPOINT), run / CHECKPOINT)
    if config.arch not in STEM_WEIGHTS:
        raise RunFolderError(f"{run / CONFIG} names arch {config.arch!r}, not one of {ARCHS}; "
                             f"nothing was changed")
    key = STEM_WEIGHTS[config.arch]
    stem = checkpoint["model"].get(key) if isinstance(checkpoint["model"], dict) else None
    if not isinstance(stem, torch.Tensor) or stem.dim() != 4:
        kind = "SDEClassifier" if config.arch == "sde" else "EulerResNet"
        raise RunFolderError(f"{run / CHECKPOINT} holds no {kind} weights (no 4-D "
                             f"{key!r}); nothing was changed")
    model = build_model(config, stem.shape[1], 10)
    _load_weights(model, checkpoint, run / CHECKPOINT)
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
        checks.one_of("dataset", dataset, EVAL_DATASETS)
    count("batch_size", batch_size)
    config, model, checkpoint = load_run(run, device)
    name = dataset or config.dataset
    if IMAGE_SHAPES[name] != IMAGE_SHAPES[config.dataset]:  # before any download
        raise ValueError(f"dataset {name!r} does not fit a model trained on {config.dataset!r}")
    dev = pick_device(device)
    _, test = _data(name, config, dev)
    cuda = dev.type == "cuda"
    amp = config.amp == "bf16" or (config.amp == "auto" and cuda)
    torch.manual_seed(seed)
    clean = ensemble_accuracy(model, test, [1], batch_size=batch_size,
                              forward=make_forward(dev, amp=amp, channels_last=cuda,
                                                   noise=_no_noise(model)))[0]
    noisy = None
    if config.noise != "none":
        noisy = ensemble_accuracy(model, test, [ensemble], batch_size=batch_size,
                                  forward=make_forward(dev, amp=amp, channels_last=cuda))[0]
    result = {"epoch": int(checkpoint["epoch"]), "dataset": name, "K": ensemble,
              "acc_no_ttn": clean, "acc_ttn": noisy}
    _append_line(Path(run) / EVALS, result)
    return result
