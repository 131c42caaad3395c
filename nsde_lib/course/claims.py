"""The claims a chapter makes about its trained models, recorded with their verdicts.

A chapter's results cells write their sentences from the run's numbers and state a direction
only where every seed agrees; that phrasing stays in the chapter, beside the numbers. What such
a sentence asserts about trained models is also recorded, once, through :func:`claim`: the
claim, whether this run supports it, and the numbers behind the verdict. ``make course`` names
a file per chapter in :data:`CLAIMS_ENV` and gathers them into ``build/claims.json``
(:mod:`coursekit.claims`); without the variable — a reader's kernel, the test suite — a claim
is not written anywhere.

The test suite never pins such a verdict: in quick mode one epoch on a thousand images says
nothing about it, and a trained model's numbers move from one CPU to another. Each record says
whether it came from a quick run.
"""
from __future__ import annotations

import json
import math
import numbers
import os
from pathlib import Path

import numpy as np
import torch

from ..runtime import is_quick

__all__ = ["claim", "read_claims", "CLAIMS_ENV", "CHAPTER_ENV"]

CLAIMS_ENV = "NSDE_CLAIMS"     # the JSON-lines file a chapter's claims are appended to
CHAPTER_ENV = "NSDE_CHAPTER"   # the chapter's name in its records (default: that file's stem)
FIELDS = ("chapter", "text", "held", "evidence", "seeds", "quick")


def _plain(value, where: str):
    """``value`` as JSON: numbers, ``None`` (also for NaN and ±inf, which JSON cannot hold),
    strings and nested lists of them; arrays and tensors become lists, and a float keeps six
    significant digits (a float32 accuracy reads 0.9, not 0.8999999761581421)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(f"{value:.6g}") if math.isfinite(value) else None
    if isinstance(value, (list, tuple)):
        return [_plain(v, where) for v in value]
    raise ValueError(f"{where} must be a number, a string, None or a list of them, "
                     f"got {type(value).__name__}")


def claim(text: str, held, *, evidence: dict | None = None, seeds=None) -> None:
    """Record one claim of this chapter about its trained models and whether this run held it.

    Args:
        text: the claim as one sentence, stated the way the chapter states it when it holds
            (e.g. "... more accurate than the Neural ODE in every seed"), whatever the verdict.
        held: whether this run supports the claim (a Python or NumPy bool).
        evidence: the numbers behind the verdict, ``{label: value}``; a value is a number, a
            string, ``None`` or a list of them (arrays and tensors are turned into lists).
        seeds: the seeds the claim is about.

    Appends ``{"chapter", "text", "held", "evidence", "seeds", "quick"}`` as one JSON line to
    the file named by ``$NSDE_CLAIMS``, and does nothing else: without that variable nothing
    is written, and nothing is returned or printed either way.

    Raises:
        ValueError: an empty ``text``, a ``held`` that is not a bool, or evidence that is not
            a dict of such values.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"text must be a non-empty sentence, got {text!r}")
    if not isinstance(held, (bool, np.bool_)):
        raise ValueError(f"held must be True or False, got {held!r}")
    if evidence is not None and not isinstance(evidence, dict):
        raise ValueError(f"evidence must be a dict {{label: numbers}}, "
                         f"got {type(evidence).__name__}")
    evidence = {str(k): _plain(v, f"evidence[{k!r}]") for k, v in (evidence or {}).items()}
    record = {"text": " ".join(text.split()), "held": bool(held), "evidence": evidence,
              "seeds": _plain(list(seeds), "seeds") if seeds is not None else [],
              "quick": is_quick()}
    path = os.environ.get(CLAIMS_ENV, "").strip()
    if not path:
        return
    path = Path(path)
    record = {"chapter": os.environ.get(CHAPTER_ENV, "").strip() or path.stem, **record}
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(record, ensure_ascii=False) + "\n")


def read_claims(path) -> list[dict]:
    """The records :func:`claim` appended to ``path``, in order (none if the file is missing).

    Raises:
        ValueError: a line that is not one of those records, named by file and line number.
    """
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as err:
            raise ValueError(f"{path}:{number} is not a JSON line: {err}") from err
        if not isinstance(record, dict) or set(record) != set(FIELDS):
            raise ValueError(f"{path}:{number} is not a claim record (fields {', '.join(FIELDS)})")
        records.append(record)
    return records
