"""Certification speed: CERTIFY with n0 = 100, n = 10,000 on 500 MNIST-5k test images, against
plain batched inference on the same number of noisy inputs, in the same run.

The base is chapter 06's classifier: 2×2-average-pooled 14×14 digits, an :class:`SDEClassifier`
(Neural ODE) of ``--channels`` channels and ``--steps`` solver steps, smoothed with σ = 0.25
(random weights: what certification costs does not depend on what the weights learned). For
every image, ``Smooth.certify`` is timed (noise from the library's noise source, the forward
passes, the vote counts, the Clopper–Pearson bound), then the plain baseline: the base alone on
the same number of rows in the same batch sizes, fed from a noisy batch drawn beforehand. The two
alternate image by image, so a change in the machine's load hits both alike. Targets (issue 12):
all images in ≤ 5 minutes on a 2-core CPU, and certify / plain ≤ 1.2.

    python benchmarks/certify.py                   # CPU (or the GPU "auto" finds)
    python benchmarks/certify.py --images 50       # a quick look (the ratio; the time scales)
    python benchmarks/certify.py --device cuda --batch 10000
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

import nsde_lib as nl  # noqa: E402


def clock(device):
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter(), time.process_time()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--images", type=int, default=500, help="test images certified")
    parser.add_argument("--n0", type=int, default=100)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--alpha", type=float, default=0.001)
    parser.add_argument("--sigma", type=float, default=0.25)
    parser.add_argument("--batch", type=int, default=1000, help="rows per forward pass")
    parser.add_argument("--channels", type=int, default=16, help="width of the state")
    parser.add_argument("--steps", type=int, default=2, help="solver steps of the block")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args, _ = parser.parse_known_args(argv)  # run_all.py passes shared flags

    if args.threads:
        torch.set_num_threads(args.threads)
    device = nl.pick_device(args.device)
    _, (x, _) = nl.load("mnist5k", pool=2, device=device)
    x = x[:args.images]
    torch.manual_seed(0)
    base = nl.SDEClassifier(1, 10, channels=args.channels, steps=args.steps).to(device).eval()
    smooth = nl.Smooth(base, 10, args.sigma).eval()
    gen = torch.Generator(device=device).manual_seed(0)
    def chunks(m):  # the forward passes of certify: m draws, at most --batch rows each
        return [min(args.batch, m - i) for i in range(0, m, args.batch)]

    sizes = chunks(args.n0) + chunks(args.n)
    noisy = (x[:1] + nl.gaussian_noise((max(sizes), *x.shape[1:]), args.sigma, generator=gen,
                                       device=device)).contiguous()
    with torch.no_grad():
        smooth.certify(x[0], args.n0, min(args.n, args.batch), args.alpha, args.batch,
                       generator=gen)  # warm-up
        base(noisy)

    wall = {"certify": 0.0, "plain": 0.0}
    cpu = dict(wall)
    abstained = 0
    for xi in x:
        w0, c0 = clock(device)
        label, _ = smooth.certify(xi, args.n0, args.n, args.alpha, args.batch, generator=gen)
        w1, c1 = clock(device)
        with torch.no_grad():
            for s in sizes:
                base(noisy[:s]).argmax(1)
        w2, c2 = clock(device)
        wall["certify"] += w1 - w0
        wall["plain"] += w2 - w1
        cpu["certify"] += c1 - c0
        cpu["plain"] += c2 - c1
        abstained += label == nl.ABSTAIN
    rows = len(x) * (args.n0 + args.n)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"device {device}, {torch.get_num_threads()} threads, load average {load:.1f}; "
          f"{len(x)} MNIST-5k test images (14x14); SDEClassifier(channels={args.channels}, "
          f"steps={args.steps}); n0 = {args.n0}, n = {args.n}, batches of {args.batch}")
    for name in ("certify", "plain"):
        print(f"  {name:<8} wall {wall[name]:7.1f} s   cpu {cpu[name]:7.1f} s   "
              f"{rows / wall[name]:8.0f} noisy inputs/s")
    ratio = wall["certify"] / wall["plain"]
    print(f"  certify / plain inference on the same {rows:,} noisy inputs: {ratio:.3f}x wall, "
          f"{cpu['certify'] / cpu['plain']:.3f}x cpu  (target <= 1.2: "
          f"{'met' if ratio <= 1.2 else 'NOT met'})")
    budget = 300 * len(x) / 500
    print(f"  certify time {wall['certify']:.0f} s for {len(x)} images (target: 500 in <= 300 s, "
          f"i.e. {budget:.0f} s here): {'met' if wall['certify'] <= budget else 'NOT met'}; "
          f"{abstained} abstained (random weights)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
