"""Sweeps whose results a chapter shows but does not recompute (too long for a laptop run).

Each was run once with ``python -m nsde_lib sweep sweeps/NAME.toml --out runs/NAME``; its
``sweep.json`` and ``results.jsonl`` are copied to ``nsde_lib/course/results/NAME/`` so that they
ship with the package (hosted notebooks have no repository around them). Rerun the command to
check them on your machine: the trial folders it writes are what ``eval`` reads.
"""
from __future__ import annotations

import json
from pathlib import Path

from .. import checks
from ..train.sweep_runs import read_results

__all__ = ["RESULTS_DIR", "course_results", "results_provenance"]

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _folder(name: str) -> Path:
    names = sorted(p.name for p in RESULTS_DIR.iterdir() if p.is_dir())
    checks.one_of("name (a sweep shipped with the course)", name, names)
    return RESULTS_DIR / name


def course_results(name: str) -> list[dict]:
    """The records of the shipped sweep ``name`` (:func:`nsde_lib.read_results`)."""
    return read_results(_folder(name))


def results_provenance(name: str) -> str:
    """One line on where the shipped sweep ``name`` comes from and how to rerun it."""
    spec = json.loads((_folder(name) / "sweep.json").read_text())
    n = len(spec["trials"])
    return (f"{n} trials of sweeps/{name}.toml, run with `python -m nsde_lib sweep "
            f"sweeps/{name}.toml --out runs/{name}` (rerun it to check them on your machine)")
