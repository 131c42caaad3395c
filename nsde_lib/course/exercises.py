"""Self-checks for the exercises at the end of each notebook."""
from __future__ import annotations

import numpy as np

__all__ = ["check"]


def check(name: str, answer, expected, *, rtol: float = 1e-2, atol: float = 1e-8) -> bool:
    """Compare a learner's ``answer`` with ``expected`` and print a one-line verdict.

    ``answer`` may be ``None`` (not attempted yet); numbers and arrays are compared with
    ``rtol``/``atol``, anything else with ``==``. Never raises on a wrong answer, so a notebook
    with an unfinished exercise still runs top to bottom.

    Returns:
        True when the answer is right.
    """
    if answer is None:
        print(f"{name}: not answered yet")
        return False
    try:
        ok = bool(np.allclose(np.asarray(answer, dtype=float), np.asarray(expected, dtype=float),
                              rtol=rtol, atol=atol))
    except (TypeError, ValueError):
        ok = answer == expected
    if ok:
        print(f"{name}: correct")
    else:
        print(f"{name}: not yet - {_how_far(answer, expected)}")
    return ok


def _how_far(answer, expected) -> str:
    """A hint that does not give the answer away: the relative error, when numbers."""
    try:
        a, e = np.asarray(answer, dtype=float), np.asarray(expected, dtype=float)
        if a.shape != e.shape:
            return f"expected shape {e.shape}, got {a.shape}"
        rel = np.abs(a - e).max() / max(np.abs(e).max(), 1e-12)
        return f"off by {100 * rel:.1f}% (relative)"
    except (TypeError, ValueError):
        return "not the expected value"
