"""Attack speed: PGD-20 with EOT-4 on 1,000 MNIST-5k test images, and plain PGD-20 in the same run.

The model is notebook 05's MNIST-sized Neural SDE: 2×2-average-pooled 14×14 digits, 16
channels, 4 solver steps, multiplicative noise (random weights: the cost of an attack does not
depend on what the weights learned). EOT-4 means every gradient averages 4 noise draws, batched
as one forward of 4·B images, so it should cost about 4× plain PGD (target, issue 6: ≤ 60 s on a
2-core CPU). Prints wall and CPU time of each, their ratio, and the gradient throughput.

    python benchmarks/attack.py                    # CPU (or the GPU "auto" finds)
    python benchmarks/attack.py --threads 1        # on a shared machine: no OpenMP contention
    python benchmarks/attack.py --device cuda --images 10000
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from nsde_lib import pgd  # noqa: E402
from nsde_lib import SDEClassifier  # noqa: E402
from nsde_lib import mnist5k  # noqa: E402
from nsde_lib import pick_device  # noqa: E402


def timed(fn, device):
    if device.type == "cuda":
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - wall, time.process_time() - cpu


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--images", type=int, default=1000, help="test images attacked")
    parser.add_argument("--channels", type=int, default=16, help="width of the SDE state")
    parser.add_argument("--steps", type=int, default=4, help="solver steps of the block")
    parser.add_argument("--pool", type=int, default=2, help="input average-pool factor")
    parser.add_argument("--batch", type=int, default=100,
                        help="images per attack batch (each forward holds eot times as many)")
    parser.add_argument("--eot", type=int, default=4)
    parser.add_argument("--pgd-steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args, _ = parser.parse_known_args(argv)  # run_all.py passes shared flags (e.g. --repeats)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    _, (x, y) = mnist5k(device=device)
    if args.pool > 1:
        x = F.avg_pool2d(x, args.pool)
    reps = -(-args.images // len(x))
    x, y = x.repeat(reps, 1, 1, 1)[:args.images], y.repeat(reps)[:args.images]
    torch.manual_seed(0)
    model = SDEClassifier(1, 10, channels=args.channels, steps=args.steps,
                          noise="multiplicative", sigma=1.0).to(device).eval()
    attack = dict(eps=1.0, norm="l2", steps=args.pgd_steps, batch_size=args.batch,
                  channels_last=device.type == "cuda")
    pgd(model, x[:32], y[:32], eot=args.eot, **(attack | dict(steps=1)))  # warm-up

    print(f"device {device}, {torch.get_num_threads()} threads; {len(x)} MNIST-5k test images; "
          f"SDEClassifier(channels={args.channels}, steps={args.steps}) on "
          f"{tuple(x.shape[1:])} inputs; l2-PGD-{args.pgd_steps}, batches of {args.batch}")
    rows = {}
    for name, eot in ((f"PGD-{args.pgd_steps} + EOT-{args.eot}", args.eot),
                      (f"PGD-{args.pgd_steps}", 1)):
        wall, cpu = timed(lambda: pgd(model, x, y, eot=eot, **attack), device)
        rows[name] = wall
        grads = len(x) * args.pgd_steps * eot
        print(f"  {name:<18} wall {wall:7.1f} s   cpu {cpu:7.1f} s   "
              f"{grads / wall:8.0f} image-gradients/s")
    (eot_name, eot_wall), (plain_name, plain_wall) = rows.items()
    print(f"  {eot_name} / {plain_name}: {eot_wall / plain_wall:.2f}× "
          f"(the {args.eot} draws cost {args.eot}× the images)")
    print(f"  target: {eot_name} on 1000 images ≤ 60 s on a 2-core CPU -> "
          f"{'met' if eot_wall <= 60 * len(x) / 1000 else 'NOT met'} here ({eot_wall:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
