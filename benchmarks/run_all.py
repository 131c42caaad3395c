"""`make bench`: run every benchmark in this folder, one after the other, and print their tables.

Each benchmark times its candidates against baselines in the same run and prints ratios; none of
them is a pass/fail test. Extra arguments (e.g. ``--device cuda``) are passed to each one.
"""
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    scripts = sorted(p for p in HERE.glob("*.py") if p.name != Path(__file__).name)
    failed = []
    for script in scripts:
        print(f"\n=== {script.name} ===", flush=True)
        start = time.perf_counter()
        code = subprocess.call([sys.executable, str(script), *sys.argv[1:]])
        print(f"--- {script.name}: {time.perf_counter() - start:.0f} s, exit {code}", flush=True)
        if code:
            failed.append(script.name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
