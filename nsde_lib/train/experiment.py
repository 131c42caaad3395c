"""One route to a trained model: :func:`train_model` (``nl.train_model``), used by the chapters, by
``python -m nsde_lib train`` (through :func:`nsde_lib.train_run`) and by ``sweep``.

``train_model(config)`` validates the :class:`RunConfig`, looks its request up in the run store
(:mod:`nsde_lib.train.store`) and loads the model from there, or trains it and saves it. Either
way it returns a :class:`Result`: the model on its device, the history, what the hooks recorded
and where the model came from. Hooks record what a chapter needs from inside training (chapter
02's gradient and weight norms); they are part of the request, so they are not part of the store's
key (they change nothing that is trained), and a stored run that lacks a requested record is
trained again once with it, then serves both.
"""
from __future__ import annotations

import datetime
import functools
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

import torch
from torch import nn

from ..runtime import pick_device, rng_states, set_rng_states
from ..theory.propagation import block_weight_norms
from .augment import make_augment
from .config import POINTS, RunConfig, build_model
from .data import load, moons
from .fastpath import FastPath, accelerate
from .loop import History, fit, make_optimizer
from .store import library_hash, open_store

__all__ = ["train_model", "Result", "Hook", "GradNorms", "WeightNorms", "Snapshots", "run_request",
           "load_data", "NATURAL_IMAGES"]

NATURAL_IMAGES = ("cifar10", "stl10", "cifar10.1")  # may be flipped; digits may not


class Hook:
    """Something recorded while a model trains, kept with it in the store.

    Subclasses set :attr:`name` (the key of :attr:`Result.records`) and override what they
    need; :meth:`spec` must name everything that changes what they record.
    """

    name = "hook"
    fit_options: dict = {}

    def spec(self) -> dict:
        """What this hook records, for the store key."""
        return {"hook": self.name}

    def wrap(self, forward: Callable) -> Callable:
        """The training ``forward(model, x)`` with this hook around it."""
        return forward

    def on_epoch(self, epoch: int, model: nn.Module) -> None:
        """Called after each finished epoch (0-based)."""

    def record(self):
        """What to keep: tensors, numbers, strings, and lists/dicts of them."""
        return None


class GradNorms(Hook):
    """The gradient norm of every block at every iteration (``history.grad_norms``)."""

    name = "grad_norms"
    fit_options = {"grad_norms": True}


class WeightNorms(Hook):
    """The blocks' weight norms at the start of every iteration: ``records["weight_norms"]``
    is a list (iterations) of lists (blocks)."""

    name = "weight_norms"

    def __init__(self):
        self.norms: list[list[float]] = []

    def wrap(self, forward):
        def recorded(model, x):
            self.norms.append(block_weight_norms(model))
            return forward(model, x)
        return recorded

    def record(self):
        return self.norms


class Snapshots(Hook):
    """The model's weights after the given epochs (1-based): ``records["snapshots"][epoch]``
    is a state dict (load it into a copy of the model to measure it as it was then).

    Args:
        epochs: after which epochs to keep the weights, e.g. ``(1,)``.
    """

    name = "snapshots"

    def __init__(self, epochs: Sequence[int] = (1,)):
        self.epochs = tuple(sorted({int(e) for e in epochs}))
        self.states: dict[int, dict] = {}

    def spec(self) -> dict:
        return {"hook": self.name, "epochs": list(self.epochs)}

    def on_epoch(self, epoch, model):
        if epoch + 1 in self.epochs:
            self.states[epoch + 1] = {k: v.detach().cpu().clone()
                                      for k, v in model.state_dict().items()}

    def record(self):
        return self.states


@dataclass
class Result:
    """A trained model and where it came from.

    Attributes:
        config: the request.
        model: the network on ``config.device``, in ``eval()`` mode.
        fast: how it runs there (:func:`nsde_lib.accelerate`): ``fast.forward`` keeps the
            model's noise, ``fast.test_forward`` switches it off.
        history: the epochs (test accuracy, loss, ...), divergence, gradient norms if recorded.
        records: ``{hook name: what it recorded}``.
        loaded: True if it came from the run store, False if this call trained it.
        trained_at: when it was trained (UTC, ISO 8601), by this call or an earlier one.
        trained_on: the device type it was trained on (``"cpu"``, ``"cuda"``, ``"mps"``).
        seconds: how long training took.
        key: its key in the run store (``None`` without a store).
        checkpoint: the final checkpoint (epoch, model, optimizer, rng, config).
    """

    config: RunConfig
    model: nn.Module
    fast: FastPath
    history: History
    records: dict = field(default_factory=dict)
    loaded: bool = False
    trained_at: str = ""
    trained_on: str = ""
    seconds: float = 0.0
    key: str | None = None
    checkpoint: dict = field(default_factory=dict, repr=False)

    @property
    def acc(self) -> float:
        """Final test accuracy without noise (NaN for a diverged run)."""
        return self.history.final_test_acc


def _hooks(hooks) -> list[Hook]:
    hooks = list(hooks or ())
    for hook in hooks:
        if not isinstance(hook, Hook):
            raise TypeError(f"hooks must be nsde_lib Hook objects (GradNorms(), WeightNorms(), "
                            f"Snapshots(...)), got {type(hook).__name__}")
    names = [h.name for h in hooks]
    if len(set(names)) != len(names):
        raise ValueError(f"hooks must not repeat a kind, got {names}")
    return hooks


def run_request(config: RunConfig) -> dict:
    """Everything that determines a trained model (the run store's key is its hash): the
    config, the library's training code, torch, the device type and precision. Settings that
    train the same model are written one way ("auto" resolved, no noise seed without noise).
    Hooks are not part of it: they record, they do not change what is trained."""
    device = pick_device(config.device)
    precision = "bf16" if config.amp == "bf16" or (config.amp == "auto" and
                                                   device.type == "cuda") else "fp32"
    seed = config.input_noise_seed if config.input_noise > 0 else None
    return {"config": asdict(config) | {"device": device.type, "amp": precision,
                                        "augment": _augment_kind(config),
                                        "input_noise_seed": seed},
            "library": library_hash(), "torch": torch.__version__}


def _specs(hooks) -> list[dict]:
    return sorted((h.spec() for h in hooks), key=lambda s: json.dumps(s, sort_keys=True))


@functools.lru_cache(maxsize=4)
def _cached_data(dataset, n, n_train, n_test, pool, device, noise, noise_seed, moons_noise):
    if dataset in POINTS:  # drawn at the sizes asked for (seed 0; the test set with seed 1)
        train, test = moons(n_train or 1000, n_test or 1000, noise=moons_noise, seed=0,
                            device=torch.device(device))
        return train, test
    kwargs = {"device": torch.device(device)}
    if n is not None:
        kwargs["n"] = n
    train, test = load(dataset, n_train=n_train, n_test=n_test, pool=pool, **kwargs)
    if noise_seed is not None:  # one fixed noisy copy: noisy data, not augmentation
        eps = torch.randn(train[0].shape, generator=torch.Generator().manual_seed(noise_seed))
        train = (train[0] + noise * eps.to(train[0].device), train[1])
    return train, test


def load_data(config: RunConfig, dataset: str | None = None, device=None):
    """``(train, test)`` as ``config`` asks for them (size, pooling, a fixed noisy copy), on
    ``device`` (default ``config.device``); ``dataset`` replaces the config's (evaluation on
    another test set). Kept in memory for the next call with the same arguments."""
    device = pick_device(config.device if device is None else device)
    noise_seed = config.input_noise_seed if dataset is None else None
    return _cached_data(dataset or config.dataset, config.n, config.n_train, config.n_test,
                        config.downsample, str(device), config.input_noise, noise_seed,
                        config.moons_noise)


def train_model(config: RunConfig, *, hooks: Sequence[Hook] = (), store="auto", progress=True,
                desc: str | None = None, on_epoch: Callable | None = None,
                resume: dict | None = None) -> Result:
    """Train the network ``config`` describes, or load it from the run store.

    Args:
        config: the request (validated here).
        hooks: recorders (:class:`GradNorms`, :class:`WeightNorms`, :class:`Snapshots`); their
            records come back in :attr:`Result.records`, from the store too.
        store: ``"auto"`` (the default store, ``NSDE_STORE=off`` for none), ``None``/``False``
            (train regardless and keep nothing), a path or a :class:`nsde_lib.RunStore`.
        progress: a tqdm bar over the epochs.
        desc: the bar's label.
        on_epoch: ``on_epoch(epoch, history, checkpoint)`` after each trained epoch, with the
            checkpoint dict (``epoch``, ``model``, ``optimizer``, ``rng``, ``config``): how
            :func:`nsde_lib.train_run` writes its run folder. Not called for a stored run.
        resume: a checkpoint of this config to continue from (its epochs are not trained again).

    Returns:
        A :class:`Result`; ``result.loaded`` says whether it came from the store. torch's global
        random stream is left as it was, so what a chapter draws afterwards does not depend on
        whether its models were trained or loaded.

    Raises:
        ValueError: a bad setting (naming the field and its allowed values).
    """
    before = rng_states()
    try:
        return _train_or_load(config, hooks, store, progress, desc, on_epoch, resume)
    finally:
        set_rng_states(before)


def _train_or_load(config, hooks, store, progress, desc, on_epoch, resume) -> Result:
    config.validate()
    hooks = _hooks(hooks)
    db = open_store(store)
    request = run_request(config)
    key = db.key(request) if db is not None else None
    device = pick_device(config.device)
    found = db.get(key, device="cpu") if db is not None else None
    if found is not None:
        recorded = found[1].get("hooks", [])
        if all(spec in recorded for spec in _specs(hooks)):
            return _from_store(config, found, key, device, hooks)
        # trained without these recorders: train again with them (the same model, as hooks
        # change nothing), and keep what the stored run recorded beside the new records

    train_data, test_data = load_data(config)
    torch.manual_seed(config.seed)  # the initial weights depend on the seed only
    model = build_model(config)
    optimizer = make_optimizer(model.parameters(), config.optimizer, config.lr,
                               momentum=config.momentum, weight_decay=config.weight_decay)
    start, rng = 0, None
    if resume is not None:
        model.load_state_dict(resume["model"])
        start, rng = int(resume["epoch"]), resume["rng"]
    fast = accelerate(model, device, amp=config.amp, compile=config.compile)
    if resume is not None:  # after the model moved: the state lands on its device
        optimizer.load_state_dict(resume["optimizer"])
    forward = fast.forward
    for hook in hooks:
        forward = hook.wrap(forward)
    checkpoint = dict(resume or {})

    def after_epoch(epoch, history, opt):
        for hook in hooks:
            hook.on_epoch(epoch, model)
        checkpoint.update(epoch=epoch + 1, model=model.state_dict(), optimizer=opt.state_dict(),
                          rng=rng_states(), config=asdict(config))
        if on_epoch is not None:
            on_epoch(epoch, history, checkpoint)

    kind = _augment_kind(config)
    fresh_noise = config.input_noise if config.input_noise_seed is None else 0.0
    options = {k: v for hook in hooks for k, v in hook.fit_options.items()}
    began = time.perf_counter()
    history = fit(model, train_data, test_data, epochs=config.epochs, optimizer=optimizer,
                  schedule=config.schedule, batch_size=config.batch_size, device=device,
                  seed=config.seed,
                  augment=make_augment(kind, train_data[0].shape[-1], input_noise=fresh_noise),
                  forward=forward, test_forward=fast.test_forward, max_loss=config.max_loss,
                  on_epoch=after_epoch, start_epoch=start, rng_state=rng, progress=progress,
                  desc=desc or _label(config), **options)
    seconds = time.perf_counter() - began
    if not checkpoint:  # diverged in its first epoch: keep the weights it diverged with
        checkpoint.update(epoch=0, model=model.state_dict(), optimizer=optimizer.state_dict(),
                          rng=rng_states(), config=asdict(config))
    records = {h.name: record for h in hooks if (record := h.record()) is not None}
    result = Result(config, model.eval(), fast, history, records, loaded=False,
                    trained_at=_now(), trained_on=device.type, seconds=seconds, key=key,
                    checkpoint=checkpoint)
    if db is not None:
        kept, specs = dict(records), _specs(hooks)
        if found is not None:  # keep the stored run's other records (and their hooks)
            kept = {**found[0].get("records", {}), **kept}
            specs = _specs(hooks) + [s for s in found[1].get("hooks", []) if s not in specs]
        history_kept = history.to_dict()
        if found is not None and not history.grad_norms:
            history_kept["grad_norms"] = found[1]["history"].get("grad_norms", [])
        meta = {"request": request, "hooks": specs, "history": history_kept,
                "trained_at": result.trained_at, "trained_on": device.type, "seconds": seconds}
        db.put(key, {**_cpu(checkpoint), "records": _cpu(kept)}, meta,
               replace=found is not None)
    return result


def _augment_kind(config: RunConfig) -> str:
    """The augmentation a config trains with ("auto": crop-flip for photos, crop for digits,
    none for points)."""
    if config.augment != "auto":
        return config.augment
    if config.dataset in POINTS:
        return "none"
    return "crop-flip" if config.dataset in NATURAL_IMAGES else "crop"


def _from_store(config: RunConfig, found, key: str, device, hooks) -> Result:
    payload, meta = found
    model = build_model(config)
    model.load_state_dict(payload["model"])
    fast = accelerate(model, device, amp=config.amp, compile=config.compile)
    asked = {h.name for h in hooks}
    history = History(**meta["history"])
    if "grad_norms" not in asked:  # what this request asked for, as training would give it
        history.grad_norms = []
    records = {k: v for k, v in payload.get("records", {}).items() if k in asked}
    checkpoint = {k: payload[k] for k in ("epoch", "model", "optimizer", "rng", "config")
                  if k in payload}
    return Result(config, model.eval(), fast, history, records, loaded=True,
                  trained_at=meta["trained_at"], trained_on=meta["trained_on"],
                  seconds=float(meta["seconds"]), key=key, checkpoint=checkpoint)


def _cpu(tree):
    """A copy of nested dicts/lists with every tensor on the CPU (for a device-free file)."""
    if isinstance(tree, torch.Tensor):
        return tree.detach().cpu()
    if isinstance(tree, dict):
        return {k: _cpu(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_cpu(v) for v in tree)
    return tree


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _label(config: RunConfig) -> str:
    if config.arch == "resnet":
        return f"D={config.depth} h={config.h} seed {config.seed}"
    return f"{config.noise} seed {config.seed}"
