"""The training loop every notebook shares: tensors on the device, a history, no crash on NaN.

Data are pairs ``(x, y)`` of tensors (see :mod:`nsde_lib.train.data`); batches are index slices of
them, so a small data set held on the GPU trains with no DataLoader in the way.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .. import checks
from ..checks import count, positive
from ..runtime import pick_device, set_rng_states
from ..sde.solver import DivergenceError

__all__ = ["fit", "evaluate", "History", "make_optimizer", "make_schedule",
           "OPTIMIZERS", "SCHEDULES", "block_grad_norms"]

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = (None, "constant", "step", "cosine")


@dataclass
class History:
    """What happened during :func:`fit`; JSON-ready through :meth:`to_dict`.

    Attributes:
        epochs: one dict per finished epoch: ``epoch``, ``loss``, ``train_acc``, ``test_acc``,
            ``test_loss``, ``lr``, ``seconds``.
        grad_norms: per iteration, the gradient norm of each block (when asked for).
        diverged: the loss or the state became NaN/Inf (or the loss passed ``max_loss``);
            training stopped there.
        diverged_epoch, diverged_step: where (1-based epoch, iteration within it).
    """

    epochs: list[dict] = field(default_factory=list)
    grad_norms: list[list[float]] = field(default_factory=list)
    diverged: bool = False
    diverged_epoch: int | None = None
    diverged_step: int | None = None

    @property
    def final_test_acc(self) -> float:
        """Test accuracy after the last epoch; NaN for a run that diverged."""
        if self.diverged or not self.epochs:
            return math.nan
        return self.epochs[-1]["test_acc"]

    def column(self, key: str) -> list:
        return [e[key] for e in self.epochs]

    def to_dict(self) -> dict:
        return asdict(self)


def make_optimizer(params, name: str, lr: float, *, momentum: float = 0.9,
                   weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """SGD with momentum (papers' default) or Adam."""
    lr = positive("lr", lr)
    checks.one_of("optimizer (or a torch optimizer)", name, OPTIMIZERS)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


def make_schedule(optimizer, schedule, epochs: int):
    """Per-epoch learning-rate schedule.

    ``None``/``"constant"``; ``"step"``: ÷10 at 50 % and 75 % of the epochs (paper 003: epochs
    40 and 60 of 80); ``"cosine"``; or a callable ``epoch -> factor``.
    """
    if schedule in (None, "constant"):
        factor = lambda e: 1.0  # noqa: E731
    elif schedule == "step":
        factor = lambda e: 0.1 ** ((e >= epochs // 2) + (e >= (3 * epochs) // 4))  # noqa: E731
    elif schedule == "cosine":
        factor = lambda e: 0.5 * (1 + math.cos(math.pi * e / epochs))  # noqa: E731
    elif callable(schedule):
        factor = schedule
    else:
        raise ValueError(f"schedule must be one of {SCHEDULES} or a callable, got {schedule!r}")
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def block_grad_norms(model: nn.Module) -> list[float]:
    """Gradient norm of each block: ``model.blocks`` if it has them, else each child module."""
    blocks = getattr(model, "blocks", None)
    modules = list(blocks) if blocks is not None else [m for _, m in model.named_children()]
    norms = []
    for module in modules:
        grads = [p.grad.detach().pow(2).sum() for p in module.parameters() if p.grad is not None]
        norms.append(float(torch.stack(grads).sum().sqrt()) if grads else 0.0)
    return norms


def _forward(model, x, forward):
    return model(x) if forward is None else forward(model, x)


@torch.no_grad()
def evaluate(model: nn.Module, data, *, batch_size: int = 500, device="auto",
             forward: Callable | None = None) -> dict:
    """Accuracy and mean cross-entropy of ``model`` on ``data = (x, y)`` in ``eval()`` mode.

    ``forward(model, x) -> logits`` replaces ``model(x)`` (e.g. to average noisy passes).
    """
    device = pick_device(device)
    x, y = data
    was_training = model.training
    model.eval()
    correct, loss = 0, 0.0
    for i in range(0, len(x), batch_size):
        xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
        logits = _forward(model, xb, forward)
        loss += float(F.cross_entropy(logits.float(), yb, reduction="sum"))
        correct += int((logits.argmax(1) == yb).sum())
    model.train(was_training)
    return {"acc": correct / len(x), "loss": loss / len(x)}


def fit(model: nn.Module, train, test=None, *, epochs: int, optimizer="sgd", lr: float = 0.1,
        momentum: float = 0.9, weight_decay: float = 0.0, schedule=None, batch_size: int = 128,
        device="auto", seed: int = 0, grad_norms: bool = False, clip: float | None = None,
        augment: Callable | None = None, forward: Callable | None = None,
        test_forward: Callable | None = None, on_epoch: Callable | None = None,
        start_epoch: int = 0, progress: bool = True, desc: str = "training",
        max_loss: float | None = None, rng_state: dict | None = None) -> History:
    """Train ``model`` with cross-entropy; record a :class:`History`.

    Args:
        model: the network; moved to ``device``.
        train, test: pairs ``(x, y)`` of tensors; ``test`` may be ``None``.
        epochs: number of epochs (≥ 1).
        optimizer: ``"sgd"`` (momentum), ``"adam"`` or a ready ``torch.optim.Optimizer``.
        lr, momentum, weight_decay: optimizer settings (ignored for a ready optimizer).
        schedule: see :func:`make_schedule`.
        batch_size: examples per step.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...
        seed: fixes the shuffling and torch's global RNG (noise draws) for this run.
        grad_norms: record :func:`block_grad_norms` at every iteration.
        clip: clip the total gradient norm to this value.
        augment: ``augment(x) -> x`` applied to each training batch on the device.
        forward, test_forward: ``f(model, x) -> logits`` for training / test evaluation.
        on_epoch: ``on_epoch(epoch, history, optimizer)`` after each epoch (checkpoints).
        start_epoch: first epoch index (to resume); the shuffles of the epochs before it are
            replayed, so a resumed run sees the batches an uninterrupted one would.
        progress: show a tqdm bar over epochs.
        max_loss: a batch loss above this also counts as diverged (a run that is exploding
            but has not reached Inf yet); ``None``: only NaN/Inf do.
        rng_state: torch RNG states (:func:`nsde_lib.runtime.rng_states`, saved after the
            last finished epoch) restored after seeding: a resumed run draws the same noise.

    Returns:
        The :class:`History`. A NaN/Inf loss or a :class:`DivergenceError` from the solver
        stops training and is recorded (``diverged``, epoch, step), not raised.
    """
    from tqdm.auto import tqdm

    count("epochs", epochs)
    count("batch_size", batch_size)
    count("start_epoch", start_epoch, low=0)
    if max_loss is not None:
        positive("max_loss (or None)", max_loss)
    device = pick_device(device)
    model.to(device)
    torch.manual_seed(seed)
    shuffle = torch.Generator().manual_seed(seed)
    if rng_state is not None:
        set_rng_states(rng_state)
    opt = optimizer if isinstance(optimizer, torch.optim.Optimizer) else make_optimizer(
        model.parameters(), optimizer, lr, momentum=momentum, weight_decay=weight_decay)
    sched = make_schedule(opt, schedule, epochs)
    with warnings.catch_warnings():  # stepping the schedule ahead before any optimizer step
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(start_epoch):
            sched.step()
    x_train, y_train = train
    for _ in range(start_epoch):  # replay the shuffles of the epochs already done
        torch.randperm(len(x_train), generator=shuffle)
    history = History()
    bar = tqdm(range(start_epoch, epochs), desc=desc, disable=not progress, leave=False)
    for epoch in bar:
        model.train()
        start, total, correct, seen = time.perf_counter(), 0.0, 0, 0
        order = torch.randperm(len(x_train), generator=shuffle)
        for step, i in enumerate(range(0, len(x_train), batch_size), start=1):
            idx = order[i:i + batch_size].to(x_train.device)
            xb, yb = x_train[idx].to(device), y_train[idx].to(device)
            if augment is not None:
                xb = augment(xb)
            try:
                logits = _forward(model, xb, forward)
                loss = F.cross_entropy(logits.float(), yb)
            except DivergenceError:
                loss = torch.tensor(math.nan)
            exploding = max_loss is not None and float(loss.detach()) > max_loss
            if not torch.isfinite(loss) or exploding:
                history.diverged, history.diverged_epoch, history.diverged_step = True, epoch + 1, step
                bar.close()
                return history
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if grad_norms:
                history.grad_norms.append(block_grad_norms(model))
            if clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            total += float(loss.detach()) * len(yb)
            correct += int((logits.argmax(1) == yb).sum())
            seen += len(yb)
        record = {"epoch": epoch + 1, "loss": total / seen, "train_acc": correct / seen,
                  "lr": opt.param_groups[0]["lr"]}
        sched.step()
        if test is not None:
            result = evaluate(model, test, device=device, forward=test_forward)
            record.update(test_acc=result["acc"], test_loss=result["loss"])
        record["seconds"] = time.perf_counter() - start
        history.epochs.append(record)
        bar.set_postfix(loss=f"{record['loss']:.3f}", test_acc=f"{record.get('test_acc', 0):.3f}")
        if on_epoch is not None:
            on_epoch(epoch, history, opt)
    return history
