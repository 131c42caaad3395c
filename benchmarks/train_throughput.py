"""Training throughput of the CIFAR-shaped reference model: Neural ODE vs multiplicative SDE.

Images per second of forward + backward (synthetic 3×32×32 images, 64 channels, 11 solver steps,
as the reference model), measured for both models in alternating rounds within one run, and the
ratio of their times (target: SDE ≤ 1.15 × ODE: drawing and adding the noise must stay cheap).
On a GPU it also prints the achieved FLOP rate (convs and linear layers, counted by
torch.utils.flop_counter) as a fraction of the card's dense bf16 peak (target ≥ 20 %).

    python benchmarks/train_throughput.py                   # the current device ("auto")
    python benchmarks/train_throughput.py --device cuda --compile
    python benchmarks/train_throughput.py --peak-tflops 989 # a card missing from the table
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from nsde_lib import SDEClassifier  # noqa: E402
from nsde_lib import accelerate  # noqa: E402
from nsde_lib import pick_device  # noqa: E402

# Dense (no sparsity) bf16 tensor-core peaks in TFLOP/s, from the vendors' data sheets.
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100 NVL": 835.0, "H100 PCIe": 756.0, "H100": 989.0,
                    "GH200": 989.0, "A100": 312.0, "L40S": 362.0, "L40": 181.0, "L4": 121.0,
                    "A10G": 70.0, "A10": 125.0, "RTX 4090": 165.0, "RTX 3090": 71.0}
MODES = {"ODE": dict(noise="none"), "SDE (multiplicative)": dict(noise="multiplicative",
                                                               sigma=1.0)}


def peak_tflops(device: torch.device, override: float | None) -> float | None:
    if override:
        return override
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, value in PEAK_BF16_TFLOPS.items():  # most specific names first
        if key in name:
            return value
    return None


def build(mode: str, device: torch.device, args, *, compile: bool | None = None):
    """The model of ``mode`` on ``device`` with the library's fast path (as the CLI trains)."""
    torch.manual_seed(0)
    model = SDEClassifier(3, 10, channels=args.channels, steps=args.steps, **MODES[mode])
    fast = accelerate(model, device, amp=args.amp,
                      compile=args.compile if compile is None else compile)
    return model, fast.forward


def train_step(model, forward, x, y):
    loss = F.cross_entropy(forward(model, x).float(), y)
    loss.backward()
    model.zero_grad(set_to_none=True)


def count_flops(model, forward, x, y) -> int:
    with FlopCounterMode(display=False) as counter:
        train_step(model, forward, x, y)
    return counter.get_total_flops()


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, default=None,
                        help="images per step (default 256 on a GPU, 8 on the CPU)")
    parser.add_argument("--iters", type=int, default=None, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating ODE/SDE rounds")
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--steps", type=int, default=11)
    parser.add_argument("--compile", action="store_true", help="torch.compile both models")
    parser.add_argument("--amp", default="auto", choices=("auto", "bf16", "off"))
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="dense bf16 peak of the card, if it is not in the table")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    device = pick_device(args.device)
    gpu = device.type == "cuda"
    batch = args.batch or (256 if gpu else 8)
    iters = args.iters or (20 if gpu else 2)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 3, 32, 32, generator=gen).to(device)
    y = torch.randint(0, 10, (batch,), generator=gen).to(device)

    models = {mode: build(mode, device, args) for mode in MODES}
    flops = {}
    for mode, (model, forward) in models.items():
        flops[mode] = count_flops(*build(mode, device, args, compile=False), x, y)  # eager copy
        for _ in range((3 if gpu else 1) + (3 if args.compile else 0)):  # cuDNN autotune, compile
            train_step(model, forward, x, y)
    sync(device)

    seconds = {mode: [] for mode in MODES}
    for _ in range(args.rounds):  # alternate, so drifting machine load hits both alike
        for mode, (model, forward) in models.items():
            sync(device)
            start = time.perf_counter()
            for _ in range(iters):
                train_step(model, forward, x, y)
            sync(device)
            seconds[mode].append((time.perf_counter() - start) / iters)

    peak = peak_tflops(device, args.peak_tflops)
    name = torch.cuda.get_device_name(device) if gpu else f"cpu ({torch.get_num_threads()} threads)"
    bf16 = gpu if args.amp == "auto" else args.amp == "bf16"
    print(f"device: {name}; batch {batch}, {args.channels} channels, {args.steps} steps, "
          f"compile={args.compile}, bf16={'on' if bf16 else 'off'}")
    header = f"{'model':<22}{'ms/step':>10}{'images/s':>11}{'TFLOP/s':>10}{'% bf16 peak':>13}"
    print(header)
    print("-" * len(header))
    results = {}
    for mode in MODES:
        step = statistics.median(seconds[mode])
        tflops = flops[mode] / step / 1e12
        share = f"{100 * tflops / peak:.1f}" if peak else "n/a"
        print(f"{mode:<22}{1e3 * step:>10.1f}{batch / step:>11.0f}{tflops:>10.3f}{share:>13}")
        results[mode] = {"seconds_per_step": step, "images_per_s": batch / step,
                         "flops_per_step": flops[mode], "tflops": tflops,
                         "peak_fraction": tflops / peak if peak else None}
    ode, sde = (statistics.median(seconds[m]) for m in MODES)
    ratio = sde / ode
    print(f"\nSDE / ODE time per step: {ratio:.3f}   (target <= 1.15: "
          f"{'met' if ratio <= 1.15 else 'NOT met'})")
    if peak:
        best = max(r["peak_fraction"] for r in results.values())
        print(f"best share of the bf16 peak ({peak:.0f} TFLOP/s): {100 * best:.1f} %   "
              f"(target >= 20 %: {'met' if best >= 0.2 else 'NOT met'})")
    elif gpu:
        print("bf16 peak of this card unknown: pass --peak-tflops to get the share")
    if args.json:
        args.json.write_text(json.dumps({"device": name, "batch": batch, "ratio": ratio,
                                         "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
