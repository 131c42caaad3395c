"""Solver speed, as ratios against baselines timed in the same run.

(a) image-shaped: forward + backward of ``sdeint`` with a conv drift (B=64, C=32, 16×16, 10 steps,
    multiplicative noise) vs a hand-written loop doing the same arithmetic, and vs
    ``torchsde.sdeint(method="euler")`` on the flattened state; one SDE step vs one ODE step.
(b) the slider regime: 1,000 paths of a 2-D state, 1,000 steps, no grad, vs torchsde.

Targets (issue 2): (a) ≤ 1.10× the hand loop, ≥ 1.25× faster than torchsde, SDE step ≤ 1.15× ODE
step; (b) ≥ 5× faster than torchsde and under 100 ms.

    python benchmarks/solver.py [--device cpu|cuda] [--repeats 7]
"""
from __future__ import annotations

import argparse
import math
import statistics
import time

import torch
import torchsde
from torch import nn

import nsde_lib as nl


def timed(fn, repeats: int, device: torch.device) -> float:
    """Median wall time of ``fn()`` in seconds, after one warm-up call."""
    fn()
    samples = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def interleaved(fns: dict, repeats: int, device) -> dict:
    """Time several functions round-robin so that machine load hits them alike."""
    for fn in fns.values():
        fn()
    samples = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            samples[name].append(timed(fn, 1, device))
    return {name: statistics.median(s) for name, s in samples.items()}


class ConvDrift(nn.Module):
    """f(t, y) = conv(relu(y)): one 3×3 convolution, the unit of a conv residual block."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, t, y):
        return self.conv(torch.relu(y))


class Flat(nn.Module):
    """The same SDE on a flattened state, for torchsde (which wants (B, D))."""

    noise_type, sde_type = "diagonal", "ito"

    def __init__(self, drift, sigma, shape):
        super().__init__()
        self.drift, self.sigma, self.shape = drift, sigma, shape

    def f(self, t, y):
        return self.drift(t, y.view(-1, *self.shape)).flatten(1)

    def g(self, t, y):
        return self.sigma * y


def image_regime(device, repeats):
    B, C, H, W, steps, T, sigma = 64, 32, 16, 16, 10, 1.0, 0.5
    dt = T / steps
    torch.manual_seed(0)
    drift = ConvDrift(C).to(device)
    y0 = torch.randn(B, C, H, W, device=device)
    sde = nl.make_sde(drift, "multiplicative", sigma=sigma)
    ode = nl.make_sde(drift, "none")
    ts = [0.0, T]

    def ours():
        y0_ = y0.clone().requires_grad_(True)
        nl.sdeint(sde, y0_, ts, dt=dt)[-1].square().mean().backward()

    def ours_ode():
        y0_ = y0.clone().requires_grad_(True)
        nl.sdeint(ode, y0_, ts, dt=dt)[-1].square().mean().backward()

    def hand():
        y = y0.clone().requires_grad_(True)
        dw = torch.randn(steps, B, C, H, W, device=device) * math.sqrt(dt)
        x = y
        for k in range(steps):
            x = x + drift(k * dt, x) * dt + sigma * x * dw[k]
        x.square().mean().backward()

    def hand_ode():
        x = y0.clone().requires_grad_(True)
        for k in range(steps):
            x = x + drift(k * dt, x) * dt
        x.square().mean().backward()

    flat = Flat(drift, sigma, (C, H, W))
    ts_t = torch.tensor(ts, device=device)

    def theirs():
        y = y0.flatten(1).clone().requires_grad_(True)
        torchsde.sdeint(flat, y, ts_t, dt=dt, method="euler")[-1].square().mean().backward()

    t = interleaved({"nsde_lib.sdeint": ours, "hand loop": hand, "torchsde": theirs,
                     "nsde_lib ODE": ours_ode, "hand ODE loop": hand_ode}, repeats, device)
    print(f"(a) image-shaped: B={B}, C={C}, {H}x{W}, {steps} steps, multiplicative noise, "
          f"forward + backward, {device}")
    for name, sec in t.items():
        print(f"    {name:<16} {1e3 * sec:8.1f} ms")
    ratios = {
        "sdeint / hand loop (target <= 1.10)": t["nsde_lib.sdeint"] / t["hand loop"],
        "torchsde / sdeint (target >= 1.25)": t["torchsde"] / t["nsde_lib.sdeint"],
        "SDE step / ODE step (target <= 1.15)": t["nsde_lib.sdeint"] / t["nsde_lib ODE"],
        # The floor: what drawing and applying the noise costs in a hand loop, no solver at all.
        "hand SDE / hand ODE (the noise itself)": t["hand loop"] / t["hand ODE loop"],
    }
    return ratios


def slider_regime(device, repeats):
    n_paths, steps, T = 1000, 1000, 1.0
    dt = T / steps
    y0 = torch.ones(n_paths, 2, device=device)
    A = torch.tensor([[-0.5, 1.0], [-1.0, -0.5]], device=device)

    def drift(t, y):
        return y @ A.T

    sde = nl.make_sde(drift, "multiplicative", sigma=0.8)
    ts = torch.tensor([0.0, T], device=device)

    @torch.no_grad()
    def ours():
        nl.sdeint(sde, y0, ts, dt=dt)

    @torch.no_grad()
    def theirs():
        torchsde.sdeint(sde, y0, ts, dt=dt, method="euler")

    t = interleaved({"nsde_lib.sdeint": ours, "torchsde": theirs}, repeats, device)
    print(f"(b) slider regime: {n_paths} paths of a 2-D state, {steps} steps, no grad, {device}")
    for name, sec in t.items():
        print(f"    {name:<16} {1e3 * sec:8.1f} ms")
    return {
        "torchsde / sdeint (target >= 5)": t["torchsde"] / t["nsde_lib.sdeint"],
        "sdeint ms (target < 100)": 1e3 * t["nsde_lib.sdeint"],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    device = nl.pick_device(args.device)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    ratios = image_regime(device, args.repeats) | slider_regime(device, args.repeats)
    print("ratios:")
    for name, value in ratios.items():
        print(f"    {name:<40} {value:7.2f}")
    return ratios


if __name__ == "__main__":
    main()
