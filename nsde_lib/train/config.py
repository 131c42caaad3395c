"""What a training run is: :class:`RunConfig`, each field with its type, allowed values and help.

Every field carries its help text and, where the values are a fixed set, its allowed values in
the dataclass metadata. The command line (``python -m nsde_lib train --help``), the sweep spec
parser (``sweeps/*.toml``) and :meth:`RunConfig.validate` all read them from here, so a setting
is described, typed and checked in one place.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from torch import nn

from .. import checks
from ..checks import count, positive
from ..models.classifier import CLASSIFIER_NOISES, SDEClassifier
from ..models.flow2d import Flow2D
from ..models.resnet import EulerResNet
from ..runtime import DEVICES
from ..sde.solver import METHODS
from .augment import AUGMENTS
from .loop import OPTIMIZERS, SCHEDULES

__all__ = ["RunConfig", "build_model", "config_fields", "FieldInfo", "TRAIN_DATASETS",
           "EVAL_DATASETS", "AMP_MODES", "ARCHS", "IMAGE_SHAPES", "DATA_SHAPES"]

TRAIN_DATASETS = ("mnist5k", "cifar10", "stl10", "moons")
EVAL_DATASETS = TRAIN_DATASETS + ("cifar10.1",)
AMP_MODES = ("auto", "bf16", "off")
ARCHS = ("sde", "resnet", "mlp", "flow2d")
ACTIVATIONS = ("relu", "tanh")
# (channels, side) of each data set's images: which test sets a trained model can read.
IMAGE_SHAPES = {"mnist5k": (1, 28), "cifar10": (3, 32), "cifar10.1": (3, 32), "stl10": (3, 96)}
POINTS = ("moons",)          # data sets of 2-D points, read by arch mlp and flow2d
# (input channels or coordinates, classes) of each data set
DATA_SHAPES = {"mnist5k": (1, 10), "cifar10": (3, 10), "cifar10.1": (3, 10), "stl10": (3, 10),
               "moons": (2, 2)}


def _option(default, help: str, choices: tuple | None = None):
    """A config field: its default, its help text and (if fixed) its allowed values."""
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass
class RunConfig:
    """Everything a training run depends on. Defaults follow the reference code (11 steps of
    1/11 on [0, 1], 64 channels, SGD with momentum, lr 0.1 divided by 10 in steps).

    ``arch`` picks the network: ``"sde"`` (:class:`nsde_lib.SDEClassifier`: ``noise`` ...
    ``spectral_stem``), ``"resnet"`` (:class:`nsde_lib.EulerResNet` with conv blocks:
    ``depth``, ``h``, ``bn``, ``stem_pool``, ``head_pool``), and on the 2-D points of
    ``dataset="moons"`` (``moons_noise``) ``"mlp"`` (an EulerResNet with MLP blocks: ``depth``,
    ``h``, ``bn``, ``hidden``, ``act``) or ``"flow2d"`` (:class:`nsde_lib.Flow2D`: the noise
    fields, ``steps``, ``T``, ``method``); ``channels`` is the width of the state for all. The
    fields of the other architectures must keep their defaults (see :attr:`ARCH_FIELDS`). Each field's
    help and allowed values: :func:`config_fields` (or ``python -m nsde_lib train --help``).

    The fields in :attr:`RUNTIME` say *how* to compute, not *what*: they may change when a run
    is resumed (e.g. on another machine); all others must match.
    """

    dataset: str = _option("mnist5k", "the training set", TRAIN_DATASETS)
    arch: str = _option("sde", "sde: the Neural ODE/SDE classifier of chapters 04-06; resnet: "
                               "the Euler-view conv ResNet of chapter 02; mlp: the Euler-view "
                               "ResNet of 2-D points of chapter 01; flow2d: the Neural ODE/SDE "
                               "of 2-D points of chapter 03", ARCHS)
    noise: str = _option("none", "the noise preset of the SDE block", CLASSIFIER_NOISES)
    sigma: float = _option(0.0, "diffusion scale σ >= 0 (additive, multiplicative)")
    p: float = _option(0.0, "drop probability in [0, 1) (dropout, jump-dropout)")
    rate: float = _option(1.0, "jump intensity of the Poisson jumps >= 0 (jump-dropout)")
    sigma0: float = _option(0.0, "std of Gaussian noise on the state at t = 0 (chapter 06's "
                                 "noise-at-0 models)")
    spectral_stem: bool = _option(False, "spectral normalisation of the stem conv")
    channels: int = _option(64, "width of the state (SDE channels, ResNet width)")
    steps: int = _option(11, "solver steps on [0, T]")
    T: float = _option(1.0, "integration horizon")
    method: str = _option("euler", "the SDE solver", METHODS)
    spectral_norm: bool = _option(False, "spectral normalisation of the drift convs")
    epochs: int = _option(100, "epochs >= 1")
    batch_size: int = _option(128, "images per step")
    optimizer: str = _option("sgd", "the optimizer (SGD with momentum, or Adam)", OPTIMIZERS)
    lr: float = _option(0.1, "learning rate")
    momentum: float = _option(0.9, "SGD momentum")
    weight_decay: float = _option(0.0, "L2 penalty")
    schedule: str = _option("step", "learning-rate schedule (step: ÷10 at 50% and 75% of the "
                                    "epochs)", tuple(s for s in SCHEDULES if s))
    augment: str = _option("auto", "augmentation (auto: crop-flip for photos, crop for digits)",
                           AUGMENTS + ("auto",))
    seed: int = _option(0, "seed of the initial weights, shuffling, noise and augmentation")
    n: int | None = _option(None, "keep only the first n images of the loader (quick runs)")
    depth: int = _option(8, "resnet: residual blocks D")
    h: float = _option(1.0, "resnet: step factor h > 0 (1 = the original ResNet)")
    bn: bool = _option(True, "resnet: BatchNorm in the blocks")
    hidden: int = _option(16, "mlp: width inside each residual block")
    act: str = _option("relu", "mlp: the activation inside each block", ACTIVATIONS)
    stem_pool: int = _option(1, "resnet: average-pool factor after the stem (28x28 -> 7x7 for 4)")
    head_pool: int = _option(1, "resnet: the head pools the state to head_pool x head_pool")
    n_train: int | None = _option(None, "keep the first n_train training images")
    n_test: int | None = _option(None, "keep the first n_test test images")
    moons_noise: float = _option(0.2, "moons: std of the Gaussian noise on the points (train "
                                      "and test)")
    downsample: int = _option(1, "average-pool the images by this factor (2: 28x28 -> 14x14)")
    input_noise: float = _option(0.0, "std of Gaussian noise added to the training images")
    input_noise_seed: int | None = _option(None, "none: fresh input noise in every batch "
                                                 "(augmentation); an integer: one fixed noisy "
                                                 "copy of the training images, drawn with it")
    max_loss: float | None = _option(None, "a batch loss above this counts as diverged (none: "
                                           "only NaN/Inf)")
    device: str = _option("auto", "where to train (or cuda:N)", DEVICES)
    amp: str = _option("auto", "bf16 autocast (auto: on CUDA)", AMP_MODES)
    compile: bool = _option(False, "torch.compile the model")

    RUNTIME = ("device", "amp", "compile")
    # The fields that describe one architecture only; with the other they must keep their
    # defaults, so that a setting that would be ignored is refused instead.
    ARCH_FIELDS = {"sde": ("noise", "sigma", "p", "rate", "sigma0", "spectral_stem", "steps",
                           "T", "method", "spectral_norm"),
                   "resnet": ("depth", "h", "bn", "stem_pool", "head_pool"),
                   "mlp": ("depth", "h", "bn", "hidden", "act"),
                   "flow2d": ("noise", "sigma", "p", "rate", "steps", "T", "method")}

    def validate(self) -> "RunConfig":
        """Raise ``ValueError`` naming the first bad field and its allowed values."""
        for info in config_fields().values():
            info.check(getattr(self, info.name))
        defaults = RunConfig()
        mine = self.ARCH_FIELDS[self.arch]
        for other, names in self.ARCH_FIELDS.items():
            for name in names:
                if name not in mine and getattr(self, name) != getattr(defaults, name):
                    raise ValueError(f"{name} is a setting of arch {other!r}, not of "
                                     f"{self.arch!r}: leave it out (default "
                                     f"{getattr(defaults, name)!r}) or use arch {other!r}")
        points = self.arch in ("mlp", "flow2d")
        if points != (self.dataset in POINTS):
            wanted = (f"a data set of points ({', '.join(POINTS)})" if points else
                      f"an image data set ({', '.join(d for d in TRAIN_DATASETS if d not in POINTS)})")
            raise ValueError(f"arch {self.arch!r} needs {wanted}, got dataset {self.dataset!r}")
        if self.dataset not in POINTS and self.moons_noise != defaults.moons_noise:
            raise ValueError(f"moons_noise is a setting of dataset 'moons', not of "
                             f"{self.dataset!r}: leave it out")
        for name in ("epochs", "batch_size", "seed"):
            count(name, getattr(self, name), low=0 if name == "seed" else 1)
        positive("lr", self.lr)
        if self.n is not None and (not isinstance(self.n, int) or self.n < 20):
            raise ValueError(f"n must be None or an integer >= 20, got {self.n!r}")
        for name in ("n_train", "n_test"):
            if getattr(self, name) is not None:
                count(f"{name} (or None)", getattr(self, name))
        count("downsample", self.downsample)
        if self.dataset in POINTS:
            if self.downsample != 1:
                raise ValueError(f"downsample pools images; dataset {self.dataset!r} is points: "
                                 f"leave it at 1")
            if self.augment not in ("auto", "none"):
                raise ValueError(f"augment {self.augment!r} crops images; dataset "
                                 f"{self.dataset!r} is points: use 'none' (or 'auto')")
            checks.non_negative("moons_noise", self.moons_noise)
        side = IMAGE_SHAPES[self.dataset][1] // self.downsample if self.dataset not in POINTS \
            else None
        smallest = 3 if self.arch == "sde" else self.stem_pool  # the stem's kernel / its pool
        if side is not None and side < smallest:
            raise ValueError(f"downsample {self.downsample} leaves {side}x{side} images of "
                             f"{self.dataset}: too small for arch {self.arch!r} (at least "
                             f"{smallest}x{smallest})")
        checks.non_negative("input_noise (std of Gaussian noise on training images)",
                            self.input_noise)
        if self.input_noise_seed is not None:  # with input_noise 0 the copy is the images
            count("input_noise_seed (or None)", self.input_noise_seed, low=0)
        if self.max_loss is not None:
            positive("max_loss (or None)", self.max_loss)
        build_model(self)  # the model checks noise, sigma, ..., depth, h, pools
        # A noise of scale 0 is the Neural ODE under another name: say so rather than train it.
        scale = {"additive": "sigma", "multiplicative": "sigma", "dropout": "p"}.get(self.noise)
        if scale and getattr(self, scale) == 0:
            raise ValueError(f"{scale} must be > 0 for noise {self.noise!r} ({scale} = 0 is the "
                             f"Neural ODE: use noise 'none')")
        return self

    def science(self) -> dict:
        """The fields a resumed run must share with the original."""
        return {k: v for k, v in asdict(self).items() if k not in self.RUNTIME}

    def replace(self, **changes) -> "RunConfig":
        """A copy with ``changes`` (unknown names are refused, as in :meth:`from_dict`)."""
        return RunConfig.from_dict(asdict(self) | changes)

    @classmethod
    def from_dict(cls, values: dict) -> "RunConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; allowed: {sorted(known)}")
        return cls(**values)


@dataclass(frozen=True)
class FieldInfo:
    """One :class:`RunConfig` field as the command line and the spec parser see it.

    Attributes:
        name: the field (``batch_size``); ``flag`` is its command-line name (``batch-size``).
        kind: ``"int"``, ``"float"``, ``"bool"`` or ``"str"``.
        optional: ``None`` is allowed (written ``none`` on the command line).
        default, help, choices: from the field's declaration (``choices`` may be ``None``).
    """

    name: str
    kind: str
    optional: bool
    default: Any
    help: str
    choices: tuple | None

    @property
    def flag(self) -> str:
        return self.name.replace("_", "-")

    WORDS = {"int": "an integer", "float": "a number", "bool": "true or false",
             "str": "a string"}

    def typed(self, value, where: str | None = None):
        """``value`` (as TOML or JSON gives it) as this field's type: an int is fine for a
        float, 2.5 is not an int, a string is not a number.

        Raises:
            ValueError: naming ``where`` (default the field) and the expected type.
        """
        if value is None and self.optional:
            return None
        ok = {"int": isinstance(value, int) and not isinstance(value, bool),
              "float": isinstance(value, (int, float)) and not isinstance(value, bool),
              "bool": isinstance(value, bool), "str": isinstance(value, str)}[self.kind]
        if not ok:
            none = " (or none)" if self.optional else ""
            raise ValueError(f"{where or self.name} must be {self.WORDS[self.kind]}{none}, got "
                             f"{value!r}")
        value = float(value) if self.kind == "float" else value
        self.check(value, where)
        return value

    def parse(self, text: str):
        """A command-line string as this field's value (``none`` for an optional field)."""
        if self.optional and text.lower() == "none":
            return None
        if self.kind == "bool":
            words = {"1": True, "true": True, "yes": True, "on": True,
                     "0": False, "false": False, "no": False, "off": False}
            if text.lower() not in words:
                raise ValueError(f"--{self.flag} must be true or false, got {text!r}")
            return words[text.lower()]
        try:
            return {"int": int, "float": float, "str": str}[self.kind](text)
        except ValueError:
            raise ValueError(f"--{self.flag} must be {self.WORDS[self.kind]}, got "
                             f"{text!r}") from None

    def check(self, value, where: str | None = None) -> None:
        """Refuse a value outside :attr:`choices` (a device may also be ``cuda:N``)."""
        if self.choices is None or value is None:
            return
        if self.name == "device" and str(value).split(":")[0] in self.choices:
            return
        checks.one_of(where or self.name, value, self.choices)

    def describe(self) -> str:
        """The help line: the text, the allowed values in words, the default."""
        allowed = f"; one of {', '.join(map(str, self.choices))}" if self.choices else ""
        default = "none" if self.default is None else self.default
        if isinstance(default, bool):
            default = str(default).lower()
        return f"{self.help}{allowed} (default {default})".replace("%", "%%")


def config_fields() -> dict[str, FieldInfo]:
    """``{name: FieldInfo}`` of every :class:`RunConfig` field, in declaration order."""
    out = {}
    for f in fields(RunConfig):
        kind = str(f.type).replace(" | None", "")
        out[f.name] = FieldInfo(f.name, kind, "None" in str(f.type), f.default,
                                f.metadata.get("help", ""), f.metadata.get("choices"))
    return out


def build_model(config: RunConfig) -> nn.Module:
    """The network a config describes, for its data set's inputs and classes
    (:data:`DATA_SHAPES`): an :class:`SDEClassifier` (``arch="sde"``), an :class:`EulerResNet`
    with conv blocks (``"resnet"``, width ``channels``) or with MLP blocks on 2-D points
    (``"mlp"``, hidden width ``hidden``, activation ``act``), or a :class:`Flow2D` (``"flow2d"``,
    ``channels`` the width of its drift, ``dt = T / steps``)."""
    in_channels, num_classes = DATA_SHAPES[config.dataset]
    if config.arch == "resnet":
        return EulerResNet(in_channels, num_classes, depth=config.depth, width=config.channels,
                           h=config.h, block="conv", bn=config.bn, pool=config.stem_pool,
                           head_pool=config.head_pool)
    if config.arch == "mlp":
        return EulerResNet(in_channels, num_classes, depth=config.depth, width=config.channels,
                           hidden=config.hidden, h=config.h, bn=config.bn, act=config.act)
    if config.arch == "flow2d":
        return Flow2D(num_classes, width=config.channels, T=config.T,
                      dt=config.T / config.steps, noise=config.noise, sigma=config.sigma,
                      p=config.p, rate=config.rate, method=config.method)
    return SDEClassifier(in_channels, num_classes, channels=config.channels, noise=config.noise,
                         sigma=config.sigma, p=config.p, rate=config.rate, T=config.T,
                         steps=config.steps, method=config.method,
                         spectral_norm=config.spectral_norm, sigma0=config.sigma0,
                         spectral_stem=config.spectral_stem)
