"""Where and how the course runs: device choice, quick mode, seeding."""
from __future__ import annotations

import os
import platform
from contextlib import contextmanager

import torch

__all__ = ["pick_device", "device_of", "device_report", "is_quick", "DEVICES",
           "rng_states", "set_rng_states", "forked_rng"]

DEVICES = ("auto", "cpu", "cuda", "mps")


def pick_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks cuda > mps > cpu; a named device must be available.

    Raises:
        ValueError: unknown name, or a named accelerator that this machine does not have.
    """
    if isinstance(device, torch.device):
        return device
    name = str(device).split(":")[0]
    if name not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES} (optionally 'cuda:N'), got {device!r}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is available; "
                         "use device='auto' or 'cpu'")
    if name == "mps" and not (getattr(torch.backends, "mps", None)
                              and torch.backends.mps.is_available()):
        raise ValueError("device 'mps' was asked for but is not available; use 'auto' or 'cpu'")
    return torch.device(device)


def device_of(module: torch.nn.Module) -> torch.device:
    """The device of a module's first parameter (the CPU for a module without parameters)."""
    p = next(module.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def device_report() -> dict:
    """What this machine offers the course: torch version, threads, the device 'auto' picks."""
    dev = pick_device("auto")
    report = {"torch": torch.__version__, "python": platform.python_version(),
              "cpu_threads": torch.get_num_threads(), "device": str(dev)}
    if dev.type == "cuda":
        report["gpu"] = torch.cuda.get_device_name(dev)
        report["gpu_memory_GiB"] = round(torch.cuda.get_device_properties(dev).total_memory
                                         / 2**30, 1)
    return report


def is_quick() -> bool:
    """True when ``NSDE_QUICK`` is set to a true value: notebooks shrink for the test suite."""
    return os.environ.get("NSDE_QUICK", "").strip().lower() in ("1", "true", "yes", "on")


def rng_states() -> dict:
    """torch's global RNG states (CPU, and every CUDA device if any), e.g. for a checkpoint."""
    states = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict) -> None:
    """Restore what :func:`rng_states` returned (CUDA states only where CUDA is there)."""
    torch.set_rng_state(states["cpu"])
    if states.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


@contextmanager
def forked_rng(seed: int | None, device=None):
    """Draw from torch's RNG seeded with ``seed`` inside the block, and leave the caller's random
    stream as it was afterwards (``torch.random.fork_rng``; the CUDA state too when ``device`` is
    a GPU). ``seed=None``: no fork, the global stream as it is."""
    if seed is None:
        yield
        return
    device = torch.device(device) if device is not None else torch.device("cpu")
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
