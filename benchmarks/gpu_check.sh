#!/usr/bin/env bash
# The GPU path measured, in at most 5 minutes on one CUDA GPU:
#   1. graph breaks of the classifier under torch.compile (torch._dynamo.explain), on CUDA;
#   2. training throughput of the reference classifier (64 channels, 11 steps, batch 256), bf16
#      autocast + channels_last, eager then torch.compile: ms/step, images/s, share of the card's
#      dense bf16 peak, SDE / ODE time per step  (benchmarks/train_throughput.py);
#   3. the solver benchmark on CUDA (benchmarks/solver.py);
#   4. PGD-20 with EOT-4 on CUDA (benchmarks/attack.py);
#   5. a tiny sweep on the GPU: chapter 04's five models for 2 epochs, local engine, then Ray
#      Tune with four trials per GPU if Ray is installed.
#
# UNTESTED: written in a session without a GPU (issue 15). Every step has its own time limit
# inside an overall budget of 290 s, so one slow step cannot take the whole check down; a step
# that fails or runs out of time is reported and the next one runs.
#
#   bash benchmarks/gpu_check.sh                  # logs and a summary in build/gpu_check/
#   OUT=/some/dir PYTHON=.venv/bin/python bash benchmarks/gpu_check.sh
#   ONLY="sweep_local sweep_ray" bash benchmarks/gpu_check.sh    # some steps again
#
# Needs the project's dependencies (torch with CUDA, torchsde, ...) in $PYTHON; MNIST-5k ships
# with them, so no download is needed. The summary is $OUT/summary.txt.
# DEVICE=cpu runs the same steps on the CPU (a dry run of the script itself: slow, so most steps
# run out of their time; that is how the time limits were checked).
set -u
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
OUT=${OUT:-build/gpu_check}
DEVICE=${DEVICE:-cuda}
export DEVICE
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
BUDGET=${BUDGET:-290}
START=$SECONDS
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"

note() { echo "$*" | tee -a "$SUMMARY"; }

# step NAME LIMIT_S COMMAND...: run with min(LIMIT_S, what is left of the budget)
step() {
    local name=$1 limit=$2
    shift 2
    if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then
        cat > /dev/null  # a skipped step's script on stdin
        return
    fi
    local left=$((BUDGET - (SECONDS - START)))
    if [ "$left" -lt 10 ]; then
        note "--- $name: skipped (the ${BUDGET} s budget is spent)"
        return
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    echo "=== $name (limit ${limit} s)"
    local t0=$SECONDS
    timeout --kill-after=5 "$limit" "$@" > "$OUT/$name.log" 2>&1
    local code=$?
    cat "$OUT/$name.log"
    local status="exit $code"
    [ "$code" -eq 124 ] || [ "$code" -eq 137 ] && status="TIMED OUT after ${limit} s"
    note "--- $name: $status, $((SECONDS - t0)) s"
}

if ! "$PYTHON" - <<'EOF'
import os
import sys
try:
    import torch, torchsde, nsde_lib  # noqa: F401
except ImportError as err:
    sys.exit(f"missing dependency: {err}; install the project (pip install -e '.[dev,ray]')")
if os.environ["DEVICE"] == "cuda" and not torch.cuda.is_available():
    sys.exit("no CUDA GPU visible to torch: this check is for a GPU machine (DEVICE=cpu: dry run)")
EOF
then
    note "gpu_check: cannot run here (see above)"
    exit 2
fi

"$PYTHON" -c "import json, nsde_lib as nl; print(json.dumps(nl.device_report()))" \
    | tee "$OUT/device.json" | sed 's/^/device: /' | tee -a "$SUMMARY"
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv,noheader \
    2>/dev/null | sed 's/^/nvidia-smi: /' | tee -a "$SUMMARY"

# 1. Where torch.compile splits the classifier's forward (CUDA, bf16 autocast as training runs).
step graph_breaks 45 "$PYTHON" - <<'EOF'
import os

import torch
import nsde_lib as nl

device = os.environ["DEVICE"]
torch.manual_seed(0)
for noise, kw in [("none", {}), ("multiplicative", {"sigma": 1.0}),
                  ("jump-dropout", {"p": 0.05, "rate": 1.0})]:
    model = nl.SDEClassifier(3, 10, channels=64, steps=11, noise=noise, **kw)
    fast = nl.accelerate(model, device, amp="auto")
    x = torch.rand(32, 3, 32, 32, device=device)
    for name, forward in (("train", fast.forward), ("test", fast.test_forward)):
        torch._dynamo.reset()
        ex = torch._dynamo.explain(lambda x: forward(model, x))(x)
        sizes = [sum(1 for n in g.graph.nodes if n.op.startswith("call")) for g in ex.graphs]
        where = sorted({f"{b.user_stack[-1].filename.split('nsde_lib/')[-1]}:"
                        f"{b.user_stack[-1].lineno}" for b in ex.break_reasons if b.user_stack})
        print(f"{noise:>15} {name}: {ex.graph_count} graphs (ops {sizes}), "
              f"{ex.graph_break_count} breaks at {where}")
EOF

# 2. Training throughput: eager, then compiled (bf16 autocast and channels_last on CUDA).
step throughput_eager 60 "$PYTHON" benchmarks/train_throughput.py --device "$DEVICE" \
    --json "$OUT/throughput_eager.json"
step throughput_compile 110 "$PYTHON" benchmarks/train_throughput.py --device "$DEVICE" --compile \
    --json "$OUT/throughput_compile.json"

# 3. The solver and 4. the attack on CUDA.
step solver 45 "$PYTHON" benchmarks/solver.py --device "$DEVICE" --repeats 5
step attack 40 "$PYTHON" benchmarks/attack.py --device "$DEVICE"

# 5. A tiny sweep on the GPU: chapter 04's models (sweeps/04_table1.toml) for 2 epochs.
SPEC="$OUT/tiny_gpu_sweep.toml"
sed -e 's/^epochs = 30$/epochs = 2/' -e 's/^seed = \[0, 1, 2\]$/seed = [0]/' \
    sweeps/04_table1.toml > "$SPEC"
echo "device = \"$DEVICE\"" > "$OUT/device.toml.part"
# device goes into [base]: insert it after the [base] header
sed -i '/^\[base\]$/r '"$OUT/device.toml.part" "$SPEC" && rm -f "$OUT/device.toml.part"
rm -rf "$OUT/sweep_local" "$OUT/sweep_ray"
step sweep_local 45 "$PYTHON" -m nsde_lib sweep "$SPEC" --out "$OUT/sweep_local" --no-progress
if "$PYTHON" -c "import ray.tune" 2>/dev/null; then
    step sweep_ray 60 "$PYTHON" -m nsde_lib sweep "$SPEC" --out "$OUT/sweep_ray" \
        --engine ray --gpus-per-trial "$([ "$DEVICE" = cuda ] && echo 0.25 || echo 0)" --no-progress
else
    note "--- sweep_ray: skipped (Ray is not installed: pip install -e '.[ray]')"
fi

# Summary: the lines that carry the figures.
{
    echo
    echo "== figures"
    grep -h -E "graphs \(ops" "$OUT/graph_breaks.log" 2>/dev/null
    for f in throughput_eager throughput_compile; do
        echo "[$f]"
        grep -h -E "^device:|^ODE|^SDE|SDE / ODE|bf16 peak" "$OUT/$f.log" 2>/dev/null
    done
    echo "[solver]"
    grep -h -A20 "^ratios:" "$OUT/solver.log" 2>/dev/null
    echo "[attack]"
    grep -h -E "wall|target" "$OUT/attack.log" 2>/dev/null
    echo "[sweeps]"
    grep -h -E "trials finished|error" "$OUT/sweep_local.log" "$OUT/sweep_ray.log" 2>/dev/null
    if [ -f "$OUT/sweep_local/results.jsonl" ] && [ -f "$OUT/sweep_ray/results.jsonl" ]; then
        "$PYTHON" - "$OUT" <<'EOF'
import json, sys
from pathlib import Path

def final(name):
    lines = (Path(sys.argv[1]) / name / "results.jsonl").read_text().splitlines()
    return {r["trial"]: r["metrics"].get("test_acc") for r in map(json.loads, lines)}

local, ray = final("sweep_local"), final("sweep_ray")
print("test accuracy, local vs ray (cuDNN may pick other kernels: close, not equal):")
for trial in local:
    print(f"  {trial:<40} {local[trial]}  {ray.get(trial)}")
EOF
    fi
    echo "total: $((SECONDS - START)) s"
} | tee -a "$SUMMARY"
